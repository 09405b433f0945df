#!/usr/bin/env bash
# The main job end to end: set up, then run `aezoo demo`.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
exec .venv/bin/aezoo demo "$@"
