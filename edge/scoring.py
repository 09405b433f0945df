"""Anomaly scores and threshold calibration in numpy only.

This module is TensorFlow-free (and scikit-learn-free) because the device
runtime uses it: the detector on a device must compute exactly the score the
threshold was calibrated on during training.
"""

from __future__ import annotations

import warnings

import numpy as np

from zoo.errors import UserError

SCORE_KINDS = ("mse", "mae", "ssim")
THRESHOLD_METHODS = ("percentile", "mean_std", "best_f1")

# Structural similarity constants of Wang et al. (2004), as in scikit-image's
# defaults for float images in [0, 1]: 7x7 uniform window, sample covariance.
SSIM_WINDOW = 7
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def score_reconstruction(x: np.ndarray, x_hat: np.ndarray, kind: str = "mse") -> np.ndarray:
    """Return one anomaly score per image from images and their reconstructions.

    Args:
        x: images, shape (N, ...) (NHWC or flat), values in [0, 1].
        x_hat: reconstructions, the same shape as ``x``.
        kind: "mse" (mean squared error per image), "mae" (mean absolute
            error) or "ssim" (1 - mean structural similarity; images must be
            NHWC or NHW, at least 7x7). Defaults to "mse".

    Returns:
        float64 array of shape (N,); higher means more anomalous.
    """
    if kind not in SCORE_KINDS:
        raise UserError(f"score kind must be one of {', '.join(SCORE_KINDS)}. Received: kind={kind!r}")
    x = np.asarray(x, dtype=np.float64)
    x_hat = np.asarray(x_hat, dtype=np.float64)
    if x.shape != x_hat.shape:
        raise UserError(
            f"images and reconstructions must have the same shape. Received: x.shape={x.shape}, x_hat.shape={x_hat.shape}"
        )
    if x.ndim < 2:
        raise UserError(f"expected a batch of images with shape (N, ...). Received: x.shape={x.shape}")
    n = x.shape[0]
    if kind == "mse":
        return np.mean(np.square(x - x_hat).reshape(n, -1), axis=1)
    if kind == "mae":
        return np.mean(np.abs(x - x_hat).reshape(n, -1), axis=1)
    return 1.0 - ssim(x, x_hat)


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


def calibrate_threshold(
    scores: np.ndarray,
    method: str = "percentile",
    *,
    percentile: float = 99.0,
    k: float = 3.0,
    labels: np.ndarray | None = None,
) -> float:
    """Return a threshold on anomaly scores; an image is anomalous when its score is above it.

    Args:
        scores: scores of normal validation images; for "best_f1", the scores
            of the user's own labeled images (normal and anomalous).
        method: "percentile" (the ``percentile``-th percentile of the scores),
            "mean_std" (mean + ``k`` * standard deviation) or "best_f1" (the
            threshold with the best F1 on ``labels``, 1 = anomaly). Without any
            labeled anomaly, "best_f1" warns and falls back to "percentile".
            Defaults to "percentile".
        percentile: in (0, 100]. Defaults to 99.0.
        k: number of standard deviations for "mean_std". Defaults to 3.0.
        labels: 0/1 labels for "best_f1", the same length as ``scores``.

    Returns:
        The threshold as a Python float.
    """
    if method not in THRESHOLD_METHODS:
        raise UserError(f"threshold method must be one of {', '.join(THRESHOLD_METHODS)}. Received: method={method!r}")
    scores = np.asarray(scores, dtype=np.float64).ravel()
    if scores.size == 0 or not np.all(np.isfinite(scores)):
        raise UserError(f"threshold calibration needs a non-empty array of finite scores. Received: {scores.size} scores")
    if not 0.0 < float(percentile) <= 100.0:
        raise UserError(f"percentile must be in (0, 100]. Received: percentile={percentile}")
    if method == "best_f1":
        if labels is not None:
            labels = np.asarray(labels).ravel()
            if labels.shape != scores.shape or not np.isin(labels, (0, 1)).all():
                raise UserError(
                    f"best_f1 labels must be 0 (normal) or 1 (anomaly), one per score. Received: labels.shape={labels.shape}, "
                    f"scores.shape={scores.shape}"
                )
        if labels is None or not labels.any():
            warnings.warn(
                "best_f1 threshold needs labeled anomalies (labels with at least one 1), and none were given: "
                f"falling back to the {percentile:g}th percentile of the scores, which are assumed to be normal.",
                UserWarning,
                stacklevel=2,
            )
            method = "percentile"
        elif labels.all():
            raise UserError("best_f1 needs normal images too (labels with at least one 0). Received: only anomalies")
        else:
            return _best_f1_threshold(scores, labels.astype(bool))
    if method == "percentile":
        return float(np.percentile(scores, percentile))
    return float(scores.mean() + float(k) * scores.std())


def _best_f1_threshold(scores: np.ndarray, labels: np.ndarray) -> float:
    """Threshold between two consecutive distinct scores that maximizes F1 of ``score > t``."""
    order = np.argsort(-scores, kind="stable")
    s, y = scores[order], labels[order]
    tp = np.cumsum(y)
    fp = np.cumsum(~y)
    # Only cut where the score changes: tied images fall on the same side.
    last = np.r_[s[1:] != s[:-1], True]
    tp, fp, idx = tp[last], fp[last], np.flatnonzero(last)
    f1 = 2 * tp / (2 * tp + fp + (y.sum() - tp))
    best = int(np.argmax(f1))
    i = idx[best]
    below = s[i + 1] if i + 1 < len(s) else s[i] - max(1e-12, abs(s[i]) * 1e-6)
    return float((s[i] + below) / 2.0)
