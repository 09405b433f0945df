"""Sparse autoencoder: a penalty on the code's activations (L1 or KL to a target rho)."""

from __future__ import annotations

import math
from typing import Any

from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.models import common
from zoo.registry import register_model


@register_model
def sparse_ae(
    input_shape: tuple[int, ...] = (28, 28, 1),
    latent_dim: int = 32,
    *,
    sparsity: str = "kl",
    sparsity_weight: float = 3.0,
    rho: float = 0.05,
    hidden_units: tuple[int, ...] = (20,),
) -> Any:
    """Dense autoencoder with a sparsity penalty on its code.

    The penalty is added per example divided by the number of input values D, in
    the units of the per-pixel "mse" loss: loss = (SSE + sparsity_weight * P) / D.

    Args:
        input_shape: (height, width, channels) or (features,); values in [0, 1].
            Defaults to (28, 28, 1).
        latent_dim: width of the code layer ``latent``. Defaults to 32.
        sparsity: "kl": sigmoid code, P = sum over units of KL(rho || mean
            activation over the batch) (Ng's sparse autoencoder); "l1": ReLU code,
            P = sum of |code|. Defaults to "kl", the classic sparse
            autoencoder, fixed a priori (not chosen on any test data).
        sparsity_weight: weight of the penalty, >= 0 (0 gives a plain AE with the
            same code activation). Defaults to 3.0 (the weight in Ng's CS294A notes).
        rho: target mean activation for "kl", in (0, 1). Defaults to 0.05.
        hidden_units: encoder hidden widths, mirrored by the decoder. Defaults to (20,).

    Returns:
        An uncompiled ``keras.Model`` named "sparse_ae".
    """
    shape = common.check_input_shape("sparse_ae", input_shape, ("image", "series", "vector"))
    latent_dim = common.check_int("sparse_ae", "latent_dim", latent_dim)
    sparsity, sparsity_weight, rho = common.check_sparsity("sparse_ae", sparsity, sparsity_weight, rho)
    hidden_units = common.check_ints("sparse_ae", "hidden_units", hidden_units)
    inputs = keras.Input(shape=shape, name="input")
    h = common.dense_encoder(inputs, hidden_units)
    activation = "sigmoid" if sparsity == "kl" else "relu"
    code = keras.layers.Dense(latent_dim, activation=activation, name="latent")(h)
    code = common.sparsify(code, sparsity, sparsity_weight, rho, math.prod(shape))
    outputs = common.dense_decoder(code, hidden_units, shape)
    return keras.Model(inputs, outputs, name="sparse_ae")
