"""The one place that imports TensorFlow and Keras for the whole project.

TFMOT 0.8 only wraps Keras 2 models, so the project uses ``tf_keras`` everywhere.
``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, otherwise
``tf.keras`` resolves to Keras 3 and TFMOT rejects the models. Every module gets
``tf`` and ``keras`` from here and never imports ``keras`` or ``tensorflow`` itself.
"""

from __future__ import annotations

import contextlib
import os
import sys
from typing import Iterator

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


@contextlib.contextmanager
def _quiet_native_stderr() -> Iterator[None]:
    """Hide what TensorFlow's C++ side prints while it loads (CUDA probing, oneDNN notes).

    absl writes these before TF_CPP_MIN_LOG_LEVEL is read, so no variable silences
    them; set AEZOO_TF_LOGS=1 to see them. Python exceptions still surface normally.
    """
    if os.environ.get("AEZOO_TF_LOGS") == "1":
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


with _quiet_native_stderr():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # device probing (the cuInit message) happens here

__all__ = ["tf", "keras"]
