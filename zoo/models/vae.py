"""Variational autoencoders (dense and convolutional), ELBO scoring and prior sampling.

Loss scaling: training compiles with loss "mse", the per-pixel mean squared
error. ``Sampling`` adds ``beta * KL / D`` (D = number of input values), so the
training loss is ``(SSE + beta * KL) / D``: with ``beta = 1`` this is the
negative ELBO divided by D, up to a constant, for a Gaussian decoder with
variance 1/2. ``negative_elbo`` returns that same quantity per image.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.keras import active as keras  # tf_keras, or Keras 3 inside zoo.keras.building_with(3)
from zoo.layers import kl_divergence, layer
from zoo.models import common
from zoo.registry import register_model


def _variational_code(h: Any, latent_dim: int, beta: float, input_size: int) -> Any:
    z_mean = keras.layers.Dense(latent_dim, name="z_mean")(h)
    z_log_var = keras.layers.Dense(latent_dim, name="z_log_var")(h)
    return layer("Sampling")(beta, scale=1.0 / input_size, name="z")([z_mean, z_log_var])


@register_model
def vae(
    input_shape: tuple[int, ...] = (28, 28, 1),
    latent_dim: int = 16,
    *,
    beta: float = 1.0,
    hidden_units: tuple[int, ...] = (20,),
) -> Any:
    """Dense variational autoencoder: ``z_mean``/``z_log_var`` heads, sampled ``z``, sigmoid decoder.

    Args:
        input_shape: (height, width, channels) or (features,) with values in [0, 1], or a
            series window (window, channels) of standardized readings (linear output).
            Defaults to (28, 28, 1).
        latent_dim: number of latent Gaussians. Defaults to 16.
        beta: weight of the KL term, >= 0 (loss = (SSE + beta * KL) / D). Defaults to 1.0,
            the plain ELBO, fixed a priori (not chosen on any test data).
        hidden_units: encoder hidden widths, mirrored by the decoder. Defaults to (20,).

    Returns:
        An uncompiled ``keras.Model`` named "vae"; in inference ``z = z_mean``.
    """
    shape = common.check_input_shape("vae", input_shape, ("image", "series", "vector"))
    latent_dim = common.check_int("vae", "latent_dim", latent_dim)
    beta = common.check_float("vae", "beta", beta, 0.0)
    hidden_units = common.check_ints("vae", "hidden_units", hidden_units)
    inputs = keras.Input(shape=shape, name="input")
    h = common.dense_encoder(inputs, hidden_units)
    z = _variational_code(h, latent_dim, beta, math.prod(shape))
    outputs = common.dense_decoder(z, hidden_units, shape)
    return keras.Model(inputs, outputs, name="vae")


@register_model(input_kinds=("image",), score="nap")
def conv_vae(
    input_shape: tuple[int, int, int] = (28, 28, 1),
    latent_dim: int = 16,
    *,
    beta: float = 1.0,
    filters: tuple[int, ...] = (8, 16, 32),
    kernel_size: int = 3,
) -> Any:
    """Convolutional VAE: the ``conv_ae`` encoder/decoder around ``z_mean``/``z_log_var`` and ``z``.

    Args:
        input_shape: (height, width, channels), values in [0, 1]. Defaults to (28, 28, 1).
        latent_dim: number of latent Gaussians. Defaults to 16.
        beta: weight of the KL term, >= 0 (loss = (SSE + beta * KL) / D). Defaults to 1.0,
            the plain ELBO, fixed a priori (not chosen on any test data).
        filters: encoder filters per stride-2 convolution. Defaults to (8, 16, 32).
        kernel_size: convolution kernel size. Defaults to 3.

    Returns:
        An uncompiled ``keras.Model`` named "conv_vae"; in inference ``z = z_mean``.
    """
    shape = common.check_input_shape("conv_vae", input_shape, ("image",))
    latent_dim = common.check_int("conv_vae", "latent_dim", latent_dim)
    beta = common.check_float("conv_vae", "beta", beta, 0.0)
    filters = common.check_ints("conv_vae", "filters", filters)
    kernel_size = common.check_int("conv_vae", "kernel_size", kernel_size)
    inputs = keras.Input(shape=shape, name="input")
    h, sizes = common.conv_encoder(inputs, filters, kernel_size)
    z = _variational_code(h, latent_dim, beta, math.prod(shape))
    outputs = common.conv_decoder(z, filters, kernel_size, sizes, shape[-1])
    return keras.Model(inputs, outputs, name="conv_vae")


def _require_vae(model: Any) -> None:
    if not common.is_variational(model):
        raise UserError(f"This needs a variational model (layers z_mean and z_log_var). Received: model={model.name!r}")


def negative_elbo(model: Any, x: np.ndarray, *, samples: int = 0, seed: int = 0, batch_size: int = 256) -> np.ndarray:
    """Return one negative-ELBO score per image of ``x`` (higher = more anomalous).

    Score = (sum of squared errors + KL(q(z|x) || N(0, I))) / D, i.e. the negative
    ELBO divided by the number of input values D, up to a constant, for a Gaussian
    decoder with variance 1/2: the units of the training loss with beta = 1.

    Args:
        model: a VAE from the zoo (or loaded from a .keras file).
        x: float32 array of shape (n, *input_shape): images in [0, 1] or standardized series windows.
        samples: 0 decodes the mean ``z_mean`` (deterministic); k > 0 averages the
            reconstruction error over k draws of z from q(z|x). Defaults to 0.
        seed: seed of the draws when ``samples > 0``. Defaults to 0.
        batch_size: images per forward pass. Defaults to 256.
    """
    _require_vae(model)
    samples = common.check_int("negative_elbo", "samples", samples, low=0)
    x = np.asarray(x, dtype=np.float32)
    heads = keras.Model(model.input, [model.get_layer("z_mean").output, model.get_layer("z_log_var").output])
    mean, log_var = heads.predict(x, batch_size=batch_size, verbose=0)
    dec = common.decoder(model)
    axes = tuple(range(1, x.ndim))
    d = math.prod(x.shape[1:])

    def sse(z: np.ndarray) -> np.ndarray:
        x_hat = dec.predict(z, batch_size=batch_size, verbose=0)
        return np.sum((x_hat - x) ** 2, axis=axes)

    if samples == 0:
        rec = sse(mean)
    else:
        rng = np.random.default_rng(seed)
        draws = (mean + np.exp(0.5 * log_var) * rng.standard_normal(mean.shape).astype(np.float32) for _ in range(samples))
        rec = np.mean([sse(z) for z in draws], axis=0)
    kl = kl_divergence(mean, log_var).numpy()
    return ((rec + kl) / d).astype(np.float32)


def sample(model: Any, n: int, seed: int = 0) -> np.ndarray:
    """Decode ``n`` draws from the prior N(0, I): inputs of the model's shape (images in [0, 1], series windows standardized)."""
    _require_vae(model)
    n = common.check_int("sample", "n", n)
    latent_dim = model.get_layer("z_mean").units
    z = np.random.default_rng(seed).standard_normal((n, latent_dim)).astype(np.float32)
    return common.decoder(model).predict(z, batch_size=256, verbose=0)


@register_model(input_kinds=("series",), score="nap")
def conv1d_vae(
    input_shape: tuple[int, int] = (64, 1),
    latent_dim: int = 16,
    *,
    beta: float = 1.0,
    filters: tuple[int, ...] = (8, 16, 16, 32),
    kernel_size: int = 5,
) -> Any:
    """Temporal convolutional VAE: the ``conv1d_ae`` encoder/decoder around ``z_mean``/``z_log_var`` and ``z``.

    Args:
        input_shape: (window, channels) of standardized readings. Defaults to (64, 1).
        latent_dim: number of latent Gaussians. Defaults to 16.
        beta: weight of the KL term, >= 0. Defaults to 1.0, fixed a priori.
        filters: encoder filters per stride-2 convolution. Defaults to (8, 16, 16, 32).
        kernel_size: odd temporal kernel length. Defaults to 5.

    Returns:
        An uncompiled ``keras.Model`` named "conv1d_vae"; in inference ``z = z_mean``.
    """
    shape = common.check_input_shape("conv1d_vae", input_shape, ("series",))
    latent_dim = common.check_int("conv1d_vae", "latent_dim", latent_dim)
    beta = common.check_float("conv1d_vae", "beta", beta, 0.0)
    filters = common.check_ints("conv1d_vae", "filters", filters)
    kernel_size = common.check_odd("conv1d_vae", "kernel_size", kernel_size)
    inputs = keras.Input(shape=shape, name="input")
    h, sizes = common.temporal_encoder(inputs, filters, kernel_size)
    z = _variational_code(h, latent_dim, beta, math.prod(shape))
    outputs = common.temporal_decoder(z, filters, kernel_size, sizes, shape)
    return keras.Model(inputs, outputs, name="conv1d_vae")
