#!/usr/bin/env bash
# Build the runtime-only wheel (autoencoder-zoo-runtime) into DIR (default dist/): edge/ and the
# TensorFlow-free modules of zoo/ that it uses. On a device: pip install DIR/autoencoder_zoo_runtime-*.whl
set -euo pipefail
cd "$(dirname "$0")/.."
out="$(realpath -m "${1:-dist}")"
python="${PYTHON:-python3}"
stage="$(mktemp -d)"
trap 'rm -rf "$stage"' EXIT
cp scripts/runtime-pyproject.toml "$stage/pyproject.toml"
mkdir -p "$stage/edge" "$stage/zoo"
cp edge/*.py "$stage/edge/"
cp zoo/__init__.py zoo/catalog.py zoo/errors.py zoo/files.py zoo/lazy.py zoo/quiet.py "$stage/zoo/"
mkdir -p "$out"
"$python" -m pip wheel --no-deps -q -w "$out" "$stage"
ls "$out"/autoencoder_zoo_runtime-*.whl
