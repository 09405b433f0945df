"""A new threshold for a bundle from normal inputs collected on the device, without TensorFlow.

Deployments drift (a new camera, a re-mounted sensor): :func:`recalibrate` scores normal
inputs with the bundle's own model, sets the threshold with the method training used
(``edge.threshold``), and compares the new scores with the calibration data the bundle
records, so a shift is reported with its figures instead of being absorbed silently.
``Detector.calibrate`` and ``aezoo calibrate`` are its two doors; the old bundle is never changed.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass
from importlib import metadata

import numpy as np

from edge.threshold import threshold_record
from zoo.errors import UserError

# Methods that need only normal inputs (best_f1 needs labeled anomalies, which a device does not have).
CALIBRATION_METHODS = ("percentile", "mean_std")
MIN_INPUTS = 20
# A shift is reported when the mean moves by more than this many of the recorded standard deviations ...
MEAN_SHIFT = 0.5
# ... or the fraction above the old threshold is further than this many binomial standard errors from the recorded one.
FRACTION_SIGMAS = 3.0


@dataclass
class Calibration:
    """What :func:`recalibrate` found: the new threshold record, the one it replaces, and how the scores compare."""

    threshold: dict
    previous: dict
    comparison: dict
    warning: str | None

    def to_dict(self) -> dict:
        """The calibration as a JSON-ready dictionary (what the new bundle's provenance records)."""
        return asdict(self)


def min_inputs(method: str, percentile: float) -> int:
    """The fewest normal inputs a threshold is set from: MIN_INPUTS, and for a percentile p enough inputs that about
    one lies above it (100 / (100 - p): 100 for the 99th)."""
    if method == "percentile" and percentile < 100.0:
        return max(MIN_INPUTS, math.ceil(100.0 / (100.0 - percentile) - 1e-9))
    return MIN_INPUTS


def settings(previous: dict, method: str | None, percentile: float | None, k: float | None) -> tuple[str, float, float]:
    """(method, percentile, k): what is given, else what the bundle's threshold was set with (best_f1 becomes the
    percentile it was carried over as, since the device has no labeled anomalies)."""
    recorded = previous.get("method")
    method = method or (recorded if recorded in CALIBRATION_METHODS else "percentile")
    if method not in CALIBRATION_METHODS:
        raise UserError(f"a device recalibrates with one of {', '.join(CALIBRATION_METHODS)} (normal inputs only). "
                        f"Received: method={method!r}")
    percentile = float(previous.get("percentile", 99.0) if percentile is None else percentile)
    k = float(previous.get("k", 3.0) if k is None else k)
    if not 0.0 < percentile <= 100.0 or not math.isfinite(k):
        raise UserError(f"expected a percentile in (0, 100] and a finite k. Received: percentile={percentile}, k={k}")
    return method, percentile, k


def recalibrate(scores: np.ndarray, previous: dict, *, method: str | None = None, percentile: float | None = None,
                k: float | None = None, source: str = "normal inputs collected on the device") -> Calibration:
    """Set a new threshold on the scores of normal inputs and compare them with the bundle's calibration record.

    Args:
        scores: the bundle's scores of inputs known to be normal.
        previous: the bundle's threshold record (detector.json ``threshold``).
        method, percentile, k: as in training (``edge.threshold``); None takes the bundle's.
        source: what the inputs were, recorded as ``calibrated_on``.

    Raises:
        UserError: too few inputs for the method (the count is named), or non-finite scores.
    """
    scores = np.asarray(scores, np.float64).ravel()
    method, percentile, k = settings(previous, method, percentile, k)
    need = min_inputs(method, percentile)
    if scores.size < need:
        what = f"the {percentile:g}th percentile" if method == "percentile" else "mean + k * std"
        raise UserError(f"a threshold at {what} needs at least {need} normal inputs. Received: {scores.size}")
    record = threshold_record(scores, method=method, percentile=percentile, k=k, calibrated_on=source)
    comparison, warning = compare(previous, scores)
    return Calibration(threshold=record, previous=dict(previous), comparison=comparison, warning=warning)


def compare(previous: dict, scores: np.ndarray) -> tuple[dict, str | None]:
    """How ``scores`` compare with the recorded calibration scores; a plain warning with the figures when they look shifted.

    Two figures: the mean's move in recorded standard deviations (shifted beyond MEAN_SHIFT), and the fraction of
    the new scores above the old threshold against the recorded fraction (shifted beyond FRACTION_SIGMAS binomial
    standard errors of both samples).
    """
    n = scores.size
    above = float(np.mean(scores > previous["value"]))
    figures = {"inputs": int(n), "score_mean": float(scores.mean()), "score_std": float(scores.std()),
               "fraction_above_previous_threshold": above}
    reasons = []
    f0, n0 = previous.get("fraction_above"), previous.get("n_images")
    if f0 is not None:
        p = min(max(float(f0), 1.0 / max(n, 1)), 0.5)  # a recorded 0 would make any new input above it "significant"
        se = math.sqrt(p * (1 - p) * (1.0 / n + (1.0 / n0 if n0 else 0.0)))
        figures["recorded_fraction_above"] = float(f0)
        if abs(above - float(f0)) > FRACTION_SIGMAS * se:
            reasons.append(f"{100 * above:.1f}% of them score above the old threshold {previous['value']:.6g} "
                           f"(the calibration data: {100 * float(f0):.1f}%)")
    mean0, std0 = previous.get("score_mean"), previous.get("score_std")
    if mean0 is not None and std0:
        move = (figures["score_mean"] - float(mean0)) / float(std0)
        figures.update(recorded_score_mean=float(mean0), recorded_score_std=float(std0), mean_shift_in_std=float(move))
        if abs(move) > MEAN_SHIFT:
            reasons.append(f"their mean score {figures['score_mean']:.6g} is {move:+.2f} recorded standard deviations "
                           f"from the calibration data's {float(mean0):.6g}")
    warning = None
    if reasons:
        warning = ("the new inputs look shifted from the data the bundle was calibrated on: " + "; ".join(reasons)
                   + ". The new threshold follows them: make sure they are normal (a changed sensor or camera, "
                   "not a fault).")
    return figures, warning


def provenance(spec: dict, calibration: Calibration) -> dict:
    """The new bundle's provenance: the old one, with this calibration appended to its ``recalibrations``."""
    entry = {"date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "by": "edge.calibrate (no TensorFlow)",
             "versions": {name: _version(name) for name in ("ai-edge-litert", "numpy")}, **calibration.to_dict()}
    entry.pop("threshold")  # it is the spec's threshold record
    old = dict(spec["provenance"])
    return {**old, "recalibrations": [*old.get("recalibrations", []), entry]}


def _version(name: str) -> str | None:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None
