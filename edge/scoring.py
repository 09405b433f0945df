"""Anomaly scores from a model's outputs, in numpy only: the same arithmetic on the device and in training.

A score kind is one small function registered with :func:`score_kind`: it names the
model outputs it reads and turns them (with the input batch and the kind's JSON
parameters) into one number per image, higher = more anomalous. The training side
(``training.scores``) builds the Keras graph that produces those outputs and fits
its parameters; this module is the only place the final number is computed, so a
float Keras model, an int8 LiteRT model and a microcontroller agree by construction.

TensorFlow-free and scikit-learn-free: the device runtime imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Mapping

import numpy as np

from zoo.errors import UserError

# Structural similarity constants of Wang et al. (2004), as in scikit-image's
# defaults for float images in [0, 1]: 7x7 uniform window, sample covariance.
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03

Outputs = Mapping[str, np.ndarray]


@dataclass(frozen=True)
class ScoreKind:
    """A registered score: the outputs it reads and the numpy function that reduces them."""

    name: str
    outputs: tuple[str, ...]
    reduce: Callable[[np.ndarray, Outputs, dict], np.ndarray]
    summary: str


SCORE_KINDS: dict[str, ScoreKind] = {}


def score_kind(name: str, outputs: tuple[str, ...]) -> Callable:
    """Register ``fn(x, outputs, params) -> scores`` as score kind ``name`` reading ``outputs``."""

    def register(fn: Callable[[np.ndarray, Outputs, dict], np.ndarray]) -> Callable:
        SCORE_KINDS[name] = ScoreKind(name, outputs, fn, (fn.__doc__ or "").strip().split("\n", 1)[0])
        return fn

    return register


def get_kind(name: str) -> ScoreKind:
    """The registered kind ``name``; an unknown one is a UserError listing the valid kinds."""
    if name not in SCORE_KINDS:
        raise UserError(f"unknown score kind; expected one of {', '.join(SCORE_KINDS)}. Received: kind={name!r}")
    return SCORE_KINDS[name]


def compute(kind: str, x: np.ndarray, outputs: Outputs, params: dict | None = None) -> np.ndarray:
    """Return one float64 score per row of ``x`` from the model ``outputs`` (dequantized to float)."""
    spec = SCORE_KINDS.get(kind) or get_kind(kind)
    missing = [o for o in spec.outputs if o not in outputs]
    if missing:
        raise UserError(f"score {kind!r} needs the model outputs {list(spec.outputs)}; missing {missing}. "
                        f"Received outputs: {sorted(outputs)}")
    return np.asarray(spec.reduce(x, outputs, params or {}), dtype=np.float64)


def _per_row(a: np.ndarray) -> np.ndarray:
    return a.reshape(len(a), -1)


def _residual(x: np.ndarray, out: Outputs) -> np.ndarray:
    x_hat = np.asarray(out["reconstruction"])
    if np.shape(x) != x_hat.shape:
        raise UserError(f"images and reconstructions must have the same shape. Received: {np.shape(x)} and {x_hat.shape}")
    return np.subtract(x, x_hat, dtype=np.float64).reshape(len(x_hat), -1)


@score_kind("mse", ("reconstruction",))
def _mse(x: np.ndarray, out: Outputs, params: dict) -> np.ndarray:
    """Mean squared reconstruction error per image."""
    r = _residual(x, out)
    return np.einsum("ij,ij->i", r, r) / r.shape[1]


@score_kind("mae", ("reconstruction",))
def _mae(x: np.ndarray, out: Outputs, params: dict) -> np.ndarray:
    """Mean absolute reconstruction error per image."""
    return np.abs(_residual(x, out)).mean(axis=1)


@score_kind("ssim", ("reconstruction",))
def _ssim(x: np.ndarray, out: Outputs, params: dict) -> np.ndarray:
    """1 - mean structural similarity of image and reconstruction (7x7 window)."""
    return 1.0 - ssim(x, out["reconstruction"])


@score_kind("elbo", ("reconstruction", "z_mean", "z_log_var"))
def _elbo(x: np.ndarray, out: Outputs, params: dict) -> np.ndarray:
    """Negative ELBO per input value: (squared error + KL(q(z|x) || N(0, I))) / D, decoded at z_mean."""
    r = _residual(x, out)
    mean = _per_row(np.asarray(out["z_mean"], np.float64))
    log_var = _per_row(np.asarray(out["z_log_var"], np.float64))
    kl = -0.5 * np.sum(1.0 + log_var - mean**2 - np.exp(log_var), axis=1)
    return (np.einsum("ij,ij->i", r, r) + kl) / r.shape[1]


@score_kind("nap", ("whitened",))
def _nap(x: np.ndarray, out: Outputs, params: dict) -> np.ndarray:
    """Squared norm of the whitened hidden-activation features (Mahalanobis distance along the encoder)."""
    w = _per_row(np.asarray(out["whitened"], np.float64))
    return np.einsum("ij,ij->i", w, w)


def score_reconstruction(x: np.ndarray, x_hat: np.ndarray, kind: str = "mse") -> np.ndarray:
    """Return one score per image from images and reconstructions (``kind``: mse, mae or ssim)."""
    if kind not in ("mse", "mae", "ssim"):
        raise UserError(f"a reconstruction score is one of mse, mae, ssim. Received: kind={kind!r}")
    x = np.asarray(x)
    if x.ndim < 2:
        raise UserError(f"expected a batch with shape (N, ...). Received: x.shape={x.shape}")
    return compute(kind, x, {"reconstruction": x_hat})


def _box_sum(a: np.ndarray, w: int) -> np.ndarray:
    """Sum over every w x w window of axes 1 and 2 ('valid' mode), via integral images."""
    c = np.cumsum(np.cumsum(a, axis=1), axis=2)
    c = np.pad(c, [(0, 0), (1, 0), (1, 0)] + [(0, 0)] * (a.ndim - 3))
    return c[:, w:, w:] - c[:, :-w, w:] - c[:, w:, :-w] + c[:, :-w, :-w]


def ssim(x: np.ndarray, y: np.ndarray, *, data_range: float = 1.0, batch_size: int = 512) -> np.ndarray:
    """Return the mean structural similarity of each image pair, shape (N,).

    Uses a 7x7 uniform window over the valid region, sample covariance and the
    constants K1=0.01, K2=0.03 (scikit-image's ``structural_similarity``
    defaults); channels are averaged. Identical images give 1.0.
    """
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if x.ndim == 3:
        x, y = x[..., None], y[..., None]
    if x.ndim != 4 or x.shape != y.shape:
        raise UserError(
            f"ssim expects two batches of images of the same shape (N, H, W[, C]). Received: {x.shape} and {y.shape}"
        )
    w = SSIM_WINDOW
    if x.shape[1] < w or x.shape[2] < w:
        raise UserError(f"ssim needs images of at least {w}x{w} pixels. Received: shape={x.shape}")
    npix = w * w
    cov_norm = npix / (npix - 1)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    out = np.empty(x.shape[0], dtype=np.float64)
    # Chunks keep the five filtered copies of the batch small in memory.
    for start in range(0, x.shape[0], batch_size):
        a, b = x[start : start + batch_size], y[start : start + batch_size]
        ux = _box_sum(a, w) / npix
        uy = _box_sum(b, w) / npix
        vx = cov_norm * (_box_sum(a * a, w) / npix - ux * ux)
        vy = cov_norm * (_box_sum(b * b, w) / npix - uy * uy)
        vxy = cov_norm * (_box_sum(a * b, w) / npix - ux * uy)
        s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
        out[start : start + len(a)] = s.reshape(len(a), -1).mean(axis=1)
    return out
