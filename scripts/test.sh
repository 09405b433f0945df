#!/usr/bin/env bash
# Set up, then run the test suite.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Unused imports and undefined names fail the tests before pytest starts (about a second).
.venv/bin/ruff check --quiet . || { echo "test: ruff found unused or undefined names (above); fix them" >&2; exit 1; }
exec .venv/bin/python -m pytest "$@"
