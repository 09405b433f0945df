"""The one place that imports TensorFlow and Keras for the whole project.

TFMOT 0.8 only wraps Keras 2 models, so the project uses ``tf_keras`` everywhere.
``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, otherwise
``tf.keras`` resolves to Keras 3 and TFMOT rejects the models. Every module gets
``tf`` and ``keras`` from here and never imports ``keras`` or ``tensorflow`` itself.
"""

from __future__ import annotations

import contextlib
import contextvars
import os
from typing import Any, Iterator

from zoo.quiet import native_stderr_silenced, showing_native_logs

os.environ["TF_USE_LEGACY_KERAS"] = "1"
# Level 3 also hides TensorFlow's native ERROR lines, such as tf.data's "NodeDef mentions attribute
# use_unbounded_threadpool" (a version-skew notice, not an error of ours); Python exceptions still surface.
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2" if showing_native_logs() else "3")


with native_stderr_silenced():
    import tensorflow as tf  # noqa: E402
    import tf_keras as keras  # noqa: E402

    tf.config.list_physical_devices()  # device probing (the cuInit message) happens here

if not showing_native_logs():
    # tf_keras' "Callback method ... is slow compared to the batch time" on tiny datasets, and the like.
    tf.get_logger().setLevel("ERROR")

_VERSION: contextvars.ContextVar[int] = contextvars.ContextVar("aezoo_keras_version", default=2)


def keras3() -> Any:
    """The Keras 3 package (TensorFlow's own ``keras``), imported on first use."""
    import keras as keras_3

    return keras_3


def active_version() -> int:
    """The Keras the variant functions build with now: 2 (tf_keras, the default) or 3."""
    return _VERSION.get()


@contextlib.contextmanager
def building_with(version: int) -> Iterator[None]:
    """Build zoo variants with Keras ``version`` (2: tf_keras, 3: Keras 3) inside the block."""
    from zoo.errors import UserError

    if version not in (2, 3):
        raise UserError(f"keras_version must be 2 (tf_keras) or 3. Received: keras_version={version!r}")
    token = _VERSION.set(version)
    try:
        yield
    finally:
        _VERSION.reset(token)


class _ActiveKeras:
    """The Keras module of :func:`active_version`: what ``zoo.models`` builds with, so one variant
    function makes a tf_keras or a Keras 3 model."""

    def __getattr__(self, name: str) -> Any:
        return getattr(keras if _VERSION.get() == 2 else keras3(), name)


active = _ActiveKeras()


def version_of(model: Any) -> int:
    """2 for a tf_keras model, 3 for a Keras 3 one."""
    return 2 if isinstance(model, keras.Model) else 3


__all__ = ["tf", "keras", "active", "building_with", "active_version", "keras3", "version_of"]
