"""Detection metrics of the evaluation protocol, computed with scikit-learn."""

from __future__ import annotations

from typing import Sequence

import numpy as np
from sklearn import metrics as skm


# Recall is reported at these false-positive rates, the thresholds set on normal validation scores.
FPR_TARGETS = (0.01, 0.05)
# The UCR anomaly archive's rule: the detector's location must fall within the labelled range widened by this many samples.
UCR_MARGIN = 100


def ranking_metrics(y_true: np.ndarray, scores: np.ndarray) -> dict:
    """AUROC and AUPRC, or None with the reason when the labels hold one class only (JSON has no NaN)."""
    if y_true.min() == y_true.max():
        reason = "the test data holds only " + ("anomalies" if y_true.min() == 1 else "normal inputs")
        return {"auroc": None, "auprc": None, "undefined_because": reason}
    return {"auroc": float(skm.roc_auc_score(y_true, scores)), "auprc": float(skm.average_precision_score(y_true, scores))}


def recall_at_fpr(y_true: np.ndarray, scores: np.ndarray, val_scores: np.ndarray) -> dict:
    """Recall of anomalies at thresholds set on normal validation scores for 1% and 5% false positives.

    Returns ``{"0.01": {"threshold", "recall", "test_fpr"}, "0.05": {...}}``: the threshold is the
    (1 - rate) quantile of ``val_scores`` (no test label chooses it); ``test_fpr`` is what it gives on
    the normal test inputs.
    """
    y_true = np.asarray(y_true).astype(int).ravel()
    scores = np.asarray(scores, np.float64).ravel()
    out = {}
    for rate in FPR_TARGETS:
        t = float(np.quantile(np.asarray(val_scores, np.float64), 1.0 - rate))
        flagged = scores > t
        out[f"{rate:g}"] = {"threshold": t,
                            "recall": float(flagged[y_true == 1].mean()) if (y_true == 1).any() else None,
                            "test_fpr": float(flagged[y_true == 0].mean()) if (y_true == 0).any() else None}
    return out


def detection_metrics(
    y_true: np.ndarray,
    scores: np.ndarray,
    threshold: float,
    *,
    val_scores: np.ndarray | None = None,
    test_labels: np.ndarray | None = None,
    class_names: Sequence[str] | None = None,
) -> dict:
    """Return the protocol's metrics for anomaly scores (anomaly = positive class).

    Args:
        y_true: 1 for an anomaly, 0 for a normal image.
        scores: one score per image, higher = more anomalous.
        threshold: an image is flagged as anomalous when its score is above it.
        val_scores: scores of the normal validation images, for recall at 1% and 5% FPR.
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
        **ranking_metrics(y_true, scores),
        "precision": float(skm.precision_score(y_true, y_pred, zero_division=0)),
        "recall": float(skm.recall_score(y_true, y_pred, zero_division=0)),
        "f1": float(skm.f1_score(y_true, y_pred, zero_division=0)),
        "fpr": float(fp / (fp + tn)) if fp + tn else 0.0,
        "threshold": float(threshold),
        "n_normal": int((y_true == 0).sum()),
        "n_anomalous": int((y_true == 1).sum()),
        "confusion": {"tn": int(tn), "fp": int(fp), "fn": int(fn), "tp": int(tp)},
    }
    if val_scores is not None:
        out["recall_at_fpr"] = recall_at_fpr(y_true, scores, val_scores)
    if test_labels is not None:
        out["per_class"] = _per_class(y_true, scores, y_pred, np.asarray(test_labels).ravel(), class_names)
    return out


def _per_class(y_true: np.ndarray, scores: np.ndarray, y_pred: np.ndarray, test_labels: np.ndarray,
               class_names: Sequence[str] | None) -> list[dict]:
    """For each original class: its inputs, the fraction flagged (recall, or FPR for the normal class), its mean score."""
    rows = []
    for c in np.unique(test_labels):
        mask = test_labels == c
        rows.append({
            "class": int(c),
            "name": str(class_names[int(c)]) if class_names is not None else str(int(c)),
            "anomalous": bool(y_true[mask].max() == 1),
            "n": int(mask.sum()),
            "flagged": float(y_pred[mask].mean()),
            "mean_score": float(scores[mask].mean()),
        })
    return rows


def events(labels: np.ndarray) -> list[tuple[int, int]]:
    """The labelled anomalies of a recording as (first, last) sample index of each run of 1s."""
    y = np.concatenate([[0], np.asarray(labels).astype(np.int8).ravel(), [0]])
    edges = np.flatnonzero(np.diff(y))
    return [(int(a), int(b) - 1) for a, b in zip(edges[::2], edges[1::2])]


def recording_metrics(labels: np.ndarray, point_scores: np.ndarray, threshold: float, location: int) -> dict:
    """Event-level metrics of a recording at the calibrated threshold, and the UCR archive's location rule.

    An event (a run of labelled samples) is found when any of its samples is flagged; a false
    alarm is a run of flagged samples that touches no event, counted per 10,000 samples. With a
    single event, ``ucr_hit`` says whether ``location`` (the detector's highest-scoring place) lies
    within the event widened by :data:`UCR_MARGIN` samples on each side.
    """
    flagged = np.asarray(point_scores) > threshold
    labelled = events(labels)
    found = sum(bool(flagged[a : b + 1].any()) for a, b in labelled)
    alarms = [(a, b) for a, b in events(flagged) if not np.asarray(labels)[a : b + 1].any()]
    out = {"events": len(labelled), "events_found": found, "event_recall": found / len(labelled) if labelled else None,
           "false_alarms": len(alarms), "false_alarms_per_10k": 1e4 * len(alarms) / max(len(flagged), 1),
           "location": int(location)}
    if len(labelled) == 1:
        a, b = labelled[0]
        out["ucr_range"] = [a, b]
        out["ucr_hit"] = bool(a - UCR_MARGIN <= location <= b + UCR_MARGIN)
    return out


def roc_curve(y_true: np.ndarray, scores: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Return (false-positive rates, true-positive rates) of the ROC curve."""
    fpr, tpr, _ = skm.roc_curve(np.asarray(y_true).astype(int), np.asarray(scores, dtype=np.float64))
    return fpr, tpr


def format_metrics(metrics: dict, *, title: str = "") -> str:
    """Return a short human-readable summary of :func:`detection_metrics` output."""
    lines = [title] if title else []
    if metrics["auroc"] is None:
        lines.append(f"AUROC and AUPRC undefined: {metrics['undefined_because']}")
        return "\n".join(lines)
    at = metrics.get("recall_at_fpr", {})
    extra = "".join(f"  recall@{float(k):.0%}FPR {v['recall']:.3f}" for k, v in at.items() if v["recall"] is not None)
    lines.append(
        f"AUROC {metrics['auroc']:.4f}  AUPRC {metrics['auprc']:.4f}{extra}  at threshold {metrics['threshold']:.6g}: "
        f"precision {metrics['precision']:.3f}  recall {metrics['recall']:.3f}  F1 {metrics['f1']:.3f}  "
        f"FPR {metrics['fpr']:.3f}"
    )
    if "events" in metrics:
        ucr = f"; UCR rule ({UCR_MARGIN} samples): {'hit' if metrics['ucr_hit'] else 'miss'} at {metrics['location']} " \
              f"(labelled {metrics['ucr_range'][0]}..{metrics['ucr_range'][1]})" if "ucr_hit" in metrics else ""
        recall = "–" if metrics["event_recall"] is None else f"{metrics['event_recall']:.3f}"
        lines.append(f"  events found {metrics['events_found']}/{metrics['events']} (recall {recall}), "
                     f"{metrics['false_alarms_per_10k']:.2f} false alarms per 10,000 samples{ucr}")
    for row in metrics.get("per_class", []):
        what = "recall" if row["anomalous"] else "FPR (normal class)"
        lines.append(f"  {row['class']:>2} {row['name']:<14} {what:<19} {row['flagged']:.3f}  mean score {row['mean_score']:.5f}")
    return "\n".join(lines)
