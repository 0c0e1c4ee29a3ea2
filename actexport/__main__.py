"""`python -m actexport`."""

import sys

from actexport.cli import main

sys.exit(main())
