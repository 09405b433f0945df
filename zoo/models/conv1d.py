"""Temporal convolutional autoencoder for sensor series: strided convolutions along time, transposed-convolution decoder."""

from __future__ import annotations

from typing import Any

from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.models import common
from zoo.registry import register_model


@register_model(input_kinds=("series",), score="nap")
def conv1d_ae(
    input_shape: tuple[int, int] = (64, 1),
    latent_dim: int = 16,
    *,
    filters: tuple[int, ...] = (8, 16, 16, 32),
    kernel_size: int = 5,
) -> Any:
    """Temporal convolutional autoencoder: stride-2 convolutions along time, dense code, transposed convolutions.

    A window of W samples x C channels -> W/2 -> W/4 -> W/8 -> W/16 (x32) -> ``latent`` -> back to
    W x C exactly (odd lengths too), linear output (inputs are standardized readings).

    Args:
        input_shape: (window, channels). Defaults to (64, 1).
        latent_dim: width of the linear code layer ``latent``. Defaults to 16.
        filters: encoder filters per stride-2 convolution; the decoder mirrors them.
            Defaults to (8, 16, 16, 32): with the nap score, full int8 models of 47,016 bytes (64 x 6,
            basic_motions), 54,104 (128 x 1) and 61,952 (183 x 1, kdd_tsad_135); 69,520 at 256 x 1.
        kernel_size: odd temporal kernel length. Defaults to 5.

    Returns:
        An uncompiled ``keras.Model`` named "conv1d_ae".
    """
    shape = common.check_input_shape("conv1d_ae", input_shape, ("series",))
    latent_dim = common.check_int("conv1d_ae", "latent_dim", latent_dim)
    filters = common.check_ints("conv1d_ae", "filters", filters)
    kernel_size = common.check_odd("conv1d_ae", "kernel_size", kernel_size)
    inputs = keras.Input(shape=shape, name="input")
    h, sizes = common.temporal_encoder(inputs, filters, kernel_size)
    code = keras.layers.Dense(latent_dim, name="latent")(h)
    outputs = common.temporal_decoder(code, filters, kernel_size, sizes, shape)
    return keras.Model(inputs, outputs, name="conv1d_ae")
