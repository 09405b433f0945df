"""Do the runtimes reach the same verdict? One bundle, the same inputs, every runtime's scores and verdicts compared.

A bundle evaluated on a workstation runs on a board with LiteRT's XNNPACK kernels or on a
microcontroller with TFLite Micro's reference kernels; their int8 arithmetic rounds
differently, and a score can amplify the difference. :func:`measure` scores the same inputs
on LiteRT's two kernel sets (and takes the scores of other runtimes, e.g. the float Keras
model or TFLite Micro, with their own thresholds) and :func:`compare` reports, for every
pair, the fraction of inputs with the same verdict and, for runtimes of the same model, the
score differences in units of the threshold. TensorFlow-free: a device runs it
(``aezoo agreement``); the export and the zoo record its figures.
"""

from __future__ import annotations

from itertools import combinations
from typing import Mapping

import numpy as np

from edge.detector import KERNELS, Detector

# The int8 runtimes of one model: their scores are comparable number for number.
SAME_MODEL = {"litert_default", "litert_reference", "tflite_micro"}


def kernel_scores(model: bytes, spec: dict, x: np.ndarray, *, prepared: bool = False) -> dict[str, np.ndarray]:
    """The bundle's scores of device inputs ``x`` (or of inputs ``Detector.prepare`` returned, with ``prepared``) on
    each of LiteRT's kernel sets, as ``litert_<kernels>``."""
    detectors = {f"litert_{k}": Detector(model, spec, kernels=k) for k in KERNELS}
    return {k: d.score_prepared(x) if prepared else d.score(x) for k, d in detectors.items()}


def compare(scores: Mapping[str, np.ndarray], thresholds: Mapping[str, float]) -> dict:
    """Every pair of runtimes: verdict agreement and (same model) score differences relative to the threshold.

    Args:
        scores: runtime name -> one score per input (the same inputs, the same order).
        thresholds: runtime name -> its threshold (an input is anomalous above it).

    Returns:
        ``{"inputs": n, "flagged": {runtime: fraction}, "pairs": {"a vs b": {"verdicts_agree", "disagree",
        ["score_diff_p99", "score_diff_max"]}}, "min_verdicts_agree": ...}``; score differences are
        ``|a - b| / threshold`` (0.05 = 5% of the threshold; None when the threshold is 0), and the largest
        ``|a - b|`` in score units.
    """
    names = list(scores)
    n = len(scores[names[0]])
    verdicts = {k: np.asarray(scores[k]) > thresholds[k] for k in names}
    pairs = {}
    for a, b in combinations(names, 2):
        agree = verdicts[a] == verdicts[b]
        pair = {"verdicts_agree": float(agree.mean()) if n else 1.0, "disagree": int((~agree).sum())}
        if a in SAME_MODEL and b in SAME_MODEL and n:
            diff = np.abs(np.asarray(scores[a], np.float64) - scores[b])
            unit = abs(thresholds[a])  # a threshold of 0 (a detector that scores every normal input 0) has no scale
            pair.update(score_diff_p99=float(np.percentile(diff, 99)) / unit if unit else None,
                        score_diff_max=float(diff.max()) / unit if unit else None,
                        score_diff_max_absolute=float(diff.max()))
        pairs[f"{a} vs {b}"] = pair
    return {"inputs": int(n), "flagged": {k: float(v.mean()) if n else 0.0 for k, v in verdicts.items()},
            "pairs": pairs, "min_verdicts_agree": min((p["verdicts_agree"] for p in pairs.values()), default=1.0)}


def measure(model: bytes, spec: dict, x: np.ndarray, *, others: Mapping[str, tuple[np.ndarray, float]] | None = None,
            inputs: str = "", prepared: bool = False) -> dict:
    """:func:`compare` of the bundle on LiteRT's default and reference kernels, and ``others`` (name -> (scores,
    threshold)) on the same device inputs ``x``; ``inputs`` says what they were (recorded with the figures)."""
    scores = kernel_scores(model, spec, x, prepared=prepared)
    threshold = float(spec["threshold"]["value"])
    thresholds = {k: threshold for k in scores}
    for name, (s, t) in (others or {}).items():
        scores[name], thresholds[name] = np.asarray(s, np.float64), float(t)
    return {"on": inputs, **compare(scores, thresholds)}


def summary(report: dict) -> str:
    """One line per pair: agreement in percent and disagreeing inputs (and score differences for one model)."""
    lines = [f"{report['inputs']} inputs{' (' + report['on'] + ')' if report.get('on') else ''}:"]
    for pair, p in report["pairs"].items():
        diff = (f"; score difference p99 {100 * p['score_diff_p99']:.2f}%, max {100 * p['score_diff_max']:.2f}% of the "
                "threshold") if p.get("score_diff_p99") is not None else \
            (f"; largest score difference {p['score_diff_max_absolute']:.6g}" if "score_diff_max_absolute" in p else "")
        lines.append(f"  {pair}: same verdict on {100 * p['verdicts_agree']:.2f}% ({p['disagree']} differ){diff}")
    return "\n".join(lines)
