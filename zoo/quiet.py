"""Silence what native libraries (TensorFlow, the TFLite converter, LiteRT) print straight to stderr.

Their C++ logging writes to file descriptor 2 before or beside Python, so no Python
setting hides it; this redirects the descriptor for the duration of a call. Python
exceptions and warnings raised meanwhile still surface. ``AEZOO_TF_LOGS=1`` shows
everything. TensorFlow-free: the device runtime uses it too.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

ENV = "AEZOO_TF_LOGS"


def showing_native_logs() -> bool:
    """True when the user asked to see the native libraries' logs."""
    return os.environ.get(ENV) == "1"


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send file descriptor 2 to /dev/null while the block runs (unless ``AEZOO_TF_LOGS=1``)."""
    if showing_native_logs():
        yield
        return
    try:
        sys.stderr.flush()
        saved = os.dup(2)
    except (OSError, ValueError):  # no real fd 2 (e.g. some notebook frontends)
        yield
        return
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)
