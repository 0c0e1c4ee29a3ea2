#!/usr/bin/env bash
# The README's first quick-start command: the pinned CPU stack, then `actexport verify --all`.
set -euo pipefail
cd "$(dirname "$0")/.."
python3 -m venv .venv && .venv/bin/pip install -c ci/constraints-cpu.txt -e '.[cpu]' && .venv/bin/actexport verify --all
