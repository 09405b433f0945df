#!/usr/bin/env bash
# Sets up everything the project needs on a fresh Debian machine: the Debian
# Fashion-MNIST package (when apt is available), a virtual environment in .venv
# and the project with its test extra. Safe to run again: it skips what is done.
set -euo pipefail
cd "$(dirname "$0")/.."

SUDO=""
if [ "$(id -u)" != "0" ] && command -v sudo >/dev/null 2>&1; then SUDO="sudo"; fi

apt_install() {
    if command -v apt-get >/dev/null 2>&1; then
        $SUDO apt-get update -qq || true
        DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "$@"
    else
        echo "setup: apt-get not available; install $* yourself" >&2
        return 1
    fi
}

if [ ! -f /usr/share/datasets/fashion-mnist/train-images-idx3-ubyte.gz ]; then
    echo "setup: installing Debian package dataset-fashion-mnist (real Fashion-MNIST)"
    apt_install dataset-fashion-mnist || echo "setup: no local Fashion-MNIST; TFDS will try to download it" >&2
fi

PY="${PYTHON:-}"
if [ -z "$PY" ]; then
    for cand in python3.11 python3.12 python3.10 python3; do
        if command -v "$cand" >/dev/null 2>&1; then PY="$cand"; break; fi
    done
fi
"$PY" -c 'import sys; assert sys.version_info >= (3, 10), sys.version' \
    || { echo "setup: Python >= 3.10 is required (found $($PY --version))" >&2; exit 1; }

if [ ! -x .venv/bin/python ]; then
    if ! "$PY" -m venv .venv 2>/dev/null; then
        rm -rf .venv
        apt_install "python3-venv" || true
        "$PY" -m venv .venv
    fi
fi

stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
    .venv/bin/python -m pip install -q --upgrade pip
    # setuptools announces every editable install of a flat layout (zoo/, training/, edge/ at the top) with a
    # notice that packages in the working directory take precedence: here, that is the point.
    PYTHONWARNINGS="ignore:Editable installation" .venv/bin/python -m pip install -q -e ".[test,micro,quantizer,signing]"
    touch "$stamp"
fi
echo "setup: ready ($(.venv/bin/python --version), venv in .venv)"
