"""Convolutional autoencoder: stride-2 convolutions, transposed-convolution decoder."""

from __future__ import annotations

from typing import Any

from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.models import common
from zoo.registry import register_model


@register_model(input_kinds=("image",), score="nap")
def conv_ae(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    latent_dim: int = 16,
    *,
    filters: tuple[int, ...] = (8, 16, 32),
    kernel_size: int = 3,
) -> Any:
    """Convolutional autoencoder: stride-2 Conv2D encoder, dense code, Conv2DTranspose decoder.

    28x28 -> 14 -> 7 -> 4 (x32 channels) -> ``latent`` -> 4 -> 7 -> 14 -> 28; the decoder
    mirrors the encoder's sizes exactly (odd sizes too).

    Args:
        input_shape: (height, width, channels), values in [0, 1]. Defaults to (28, 28, 1).
        latent_dim: width of the linear code layer ``latent``. Defaults to 16: with 32
            the post-training int8 model exceeds the 64 KiB budget of docs/PROTOCOL.md.
        filters: encoder filters per stride-2 convolution; the decoder mirrors them.
            Defaults to (8, 16, 32).
        kernel_size: convolution kernel size. Defaults to 3.

    Returns:
        An uncompiled ``keras.Model`` named "conv_ae".
    """
    shape = common.check_input_shape("conv_ae", input_shape, ("image",))
    latent_dim = common.check_int("conv_ae", "latent_dim", latent_dim)
    filters = common.check_ints("conv_ae", "filters", filters)
    kernel_size = common.check_int("conv_ae", "kernel_size", kernel_size)
    inputs = keras.Input(shape=shape, name="input")
    h, sizes = common.conv_encoder(inputs, filters, kernel_size)
    code = keras.layers.Dense(latent_dim, name="latent")(h)
    outputs = common.conv_decoder(code, filters, kernel_size, sizes, shape[-1])
    return keras.Model(inputs, outputs, name="conv_ae")
