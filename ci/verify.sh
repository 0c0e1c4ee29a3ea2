#!/usr/bin/env bash
# The README's first command: install the pinned CPU stack and gate on `actexport verify --all`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv
.venv/bin/pip install -q -c ci/constraints-cpu.txt -e '.[cpu]'
.venv/bin/actexport verify --all "$@"
