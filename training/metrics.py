"""Detection metrics of the evaluation protocol, computed with scikit-learn."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


def detection_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    test_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Return the protocol's metrics for anomaly scores (anomaly = positive class).

    Args:
        y_true: 1 for an anomaly, 0 for a normal image.
        scores: one score per image, higher = more anomalous.
        threshold: an image is flagged as anomalous when its score is above it.
        test_labels: original class ids, for the per-class breakdown.
        class_names: names of the original classes, indexed by class id.

    Returns:
        A JSON-ready dict: auroc, auprc, precision, recall, f1, fpr (false
        positives among normal test images), threshold, counts and, with
        ``test_labels``, ``per_class``: for each original class its images,
        the fraction flagged as anomalous and its mean score (for anomalous
        classes the flagged fraction is the recall; for the normal class it is
        the false-positive rate).
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(scores, dtype=np.float64).ravel()
    y_pred = (scores > threshold).astype(int)
    tn, fp, fn, tp = skm.confusion_matrix(y_true, y_pred, labels=[0, 1]).ravel()
    out = {
        "auroc": float(skm.roc_auc_score(y_true, scores)),
        "auprc": float(skm.average_precision_score(y_true, scores)),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "fpr": float(fp / (fp + tn)) if fp + tn else 0.0,
        "threshold": float(threshold),
        "n_normal": int((y_true == 0).sum()),
        "n_anomalous": int((y_true == 1).sum()),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    if test_labels is not None:
        test_labels = np.asarray(test_labels).ravel()
        per_class = []
        for c in np.unique(test_labels):
            mask = test_labels == c
            anomalous = bool(y_true[mask].max() == 1)
            per_class.append(
                {
                    "class": int(c),
                    "name": str(class_names[int(c)]) if class_names is not None else str(int(c)),
                    "anomalous": anomalous,
                    "n": int(mask.sum()),
                    # recall_score on a one-class subset: the fraction of the class flagged.
                    "flagged": float(skm.recall_score(np.ones(mask.sum(), int), y_pred[mask], zero_division=0)),
                    "mean_score": float(scores[mask].mean()),
                }
            )
        out["per_class"] = per_class
    return out


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (false-positive rates, true-positive rates) of the ROC curve."""
    fpr, tpr, _ = skm.roc_curve(np.asarray(y_true).astype(int), np.asarray(scores, dtype=np.float64))
    return fpr, tpr


def format_metrics(metrics: dict, *, title: str = "") -> str:
    """Return a short human-readable summary of :func:`detection_metrics` output."""
    lines = [title] if title else []
    lines.append(
        f"AUROC {metrics['auroc']:.4f}  AUPRC {metrics['auprc']:.4f}  at threshold {metrics['threshold']:.6g}: "
        f"precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  F1 {metrics['f1']:.3f}  "
        f"FPR {metrics['fpr']:.3f}"
    )
    for row in metrics.get("per_class", []):
        what = "recall" if row["anomalous"] else "FPR (normal class)"
        lines.append(f"  {row['class']:>2} {row['name']:<14} {what:<19} {row['flagged']:.3f}  mean score {row['mean_score']:.5f}")
    return "\n".join(lines)
