"""The one place that imports TensorFlow and Keras for the whole project.

TFMOT 0.8 only wraps Keras 2 models, so the project uses ``tf_keras`` everywhere.
``TF_USE_LEGACY_KERAS`` must be set before TensorFlow is first imported, otherwise
``tf.keras`` resolves to Keras 3 and TFMOT rejects the models. Every module gets
``tf`` and ``keras`` from here and never imports ``keras`` or ``tensorflow`` itself.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import tensorflow as tf  # noqa: E402
import tf_keras as keras  # noqa: E402

__all__ = ["tf", "keras"]
