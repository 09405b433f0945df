"""Fully-connected autoencoder: images (flattened) or plain feature vectors.

Why the dense families default to 20 hidden units: a full-int8 TFLite file stores,
per output channel, an int32 bias and per-channel quantization data (28 bytes),
so the 784-wide output layer alone costs about 22 KiB beyond its weights; 20
hidden units keep the 28x28x1 model under the 64 KiB budget of docs/PROTOCOL.md.
"""

from __future__ import annotations

from typing import Any

from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.models import common
from zoo.registry import register_model


@register_model
def dense_ae(input_shape: tuple[int, ...] = (28, 28, 1), latent_dim: int = 16, *, hidden_units: tuple[int, ...] = (20,)) -> Any:
    """Dense autoencoder: input -> ReLU hidden layers -> linear code -> mirror -> sigmoid.

    Args:
        input_shape: (height, width, channels) or (features,) with values in [0, 1], or a
            series window (window, channels) of standardized readings (linear output).
            Defaults to (28, 28, 1).
        latent_dim: width of the linear code layer ``latent``. Defaults to 16.
        hidden_units: widths of the encoder's hidden layers (the decoder mirrors
            them). Defaults to (20,): about 32k parameters, under 60 KiB as int8 for 28x28x1.

    Returns:
        An uncompiled ``keras.Model`` named "dense_ae".
    """
    shape = common.check_input_shape("dense_ae", input_shape, ("image", "series", "vector"))
    latent_dim = common.check_int("dense_ae", "latent_dim", latent_dim)
    hidden_units = common.check_ints("dense_ae", "hidden_units", hidden_units)
    inputs = keras.Input(shape=shape, name="input")
    h = common.dense_encoder(inputs, hidden_units)
    code = keras.layers.Dense(latent_dim, name="latent")(h)
    outputs = common.dense_decoder(code, hidden_units, shape)
    return keras.Model(inputs, outputs, name="dense_ae")
