"""Denoising autoencoder: trained on corrupted inputs to reconstruct the clean ones."""

from __future__ import annotations

from typing import Any

from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.models import common
from zoo.registry import register_model


@register_model(input_kinds=("image", "vector"))  # its gaussian corruption clips to [0, 1]: not for standardized series
def denoising_ae(
    input_shape: tuple[int, ...] = (28, 28, 1),
    latent_dim: int = 16,
    *,
    corruption: str = "gaussian",
    strength: float = 0.2,
    hidden_units: tuple[int, ...] = (20,),
) -> Any:
    """Dense denoising autoencoder: a ``corrupt`` layer, then the ``dense_ae`` architecture.

    The corruption is active only when ``training=True``: the loss compares the
    reconstruction of the corrupted input with the clean input, and the model in
    inference (and its TFLite export) is the plain reconstructor.

    Args:
        input_shape: (height, width, channels) or (features,); values in [0, 1].
            Defaults to (28, 28, 1).
        latent_dim: width of the linear code layer ``latent``. Defaults to 16.
        corruption: "gaussian" (additive noise, std ``strength``, clipped to [0, 1]),
            "salt_pepper" (a ``strength`` fraction of values set to 0 or 1) or
            "mask" (a ``strength`` fraction set to 0). Defaults to "gaussian".
        strength: noise std or corrupted fraction, in (0, 1]. Defaults to 0.2.
        hidden_units: encoder hidden widths, mirrored by the decoder. Defaults to (20,).

    Returns:
        An uncompiled ``keras.Model`` named "denoising_ae".
    """
    shape = common.check_input_shape("denoising_ae", input_shape, ("image", "vector"))
    latent_dim = common.check_int("denoising_ae", "latent_dim", latent_dim)
    corruption, strength = common.check_corruption("denoising_ae", corruption, strength)
    hidden_units = common.check_ints("denoising_ae", "hidden_units", hidden_units)
    inputs = keras.Input(shape=shape, name="input")
    x = common.corrupt(inputs, corruption, strength)
    h = common.dense_encoder(x, hidden_units)
    code = keras.layers.Dense(latent_dim, name="latent")(h)
    outputs = common.dense_decoder(code, hidden_units, shape)
    return keras.Model(inputs, outputs, name="denoising_ae")
