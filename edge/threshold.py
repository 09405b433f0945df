"""Threshold calibration on normal validation scores, and the one threshold record a run and a bundle keep."""

from __future__ import annotations

import warnings

import numpy as np

from zoo.errors import UserError

THRESHOLD_METHODS = ("percentile", "mean_std", "best_f1")


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


def threshold_record(scores: np.ndarray, *, method: str = "percentile", percentile: float = 99.0, k: float = 3.0,
                     calibrated_on: str = "normal validation images", labels: np.ndarray | None = None) -> dict:
    """Calibrate a threshold on ``scores`` and describe it: the record kept in threshold.json and detector.json.

    Returns:
        ``{"value", "method", "percentile", "k", "calibrated_on", "n_images", "fraction_above",
        "score_mean", "score_std"}``.
    """
    scores = np.asarray(scores, np.float64).ravel()
    value = calibrate_threshold(scores, method, percentile=percentile, k=k, labels=labels)
    return {"value": value, "method": method, "percentile": float(percentile), "k": float(k),
            "calibrated_on": calibrated_on, "n_images": int(scores.size),
            "fraction_above": float(np.mean(scores > value)),
            "score_mean": float(scores.mean()), "score_std": float(scores.std())}
