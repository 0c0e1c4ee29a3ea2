"""`python -m actexport`."""

import sys

from actexport.entry import main

sys.exit(main())
