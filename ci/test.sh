#!/usr/bin/env bash
# The README's test command (its second quick-start block), run by .ci/run.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv && .venv/bin/pip install -c ci/constraints-cpu.txt -e '.[test]' && .venv/bin/python -m pytest
