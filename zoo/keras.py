"""The one place that imports TensorFlow and Keras for the whole project.

TFMOT 0.8 only wraps Keras 2 models, so the project uses ``tf_keras`` everywhere.
``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, otherwise
``tf.keras`` resolves to Keras 3 and TFMOT rejects the models. Every module gets
``tf`` and ``keras`` from here and never imports ``keras`` or ``tensorflow`` itself.
"""

from __future__ import annotations

import os

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

__all__ = ["tf", "keras"]
