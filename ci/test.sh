#!/usr/bin/env bash
# The README's test command: a fresh virtual environment, the pinned CPU stack, the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -c ci/constraints-cpu.txt -e '.[test]'
.venv/bin/python -m pytest "$@"
