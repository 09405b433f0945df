"""Recalibration on the device (``Detector.calibrate``, ``aezoo calibrate``): a new threshold from normal inputs,
the same methods as training, a warning when the inputs look shifted, and the old bundle never changed."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from edge import Detector
from edge.calibrate import compare, min_inputs
from edge.cli import main as runtime_main
from zoo.errors import UserError

REPO = Path(__file__).resolve().parents[1]
BUNDLE = REPO / "saved_models" / "conv_ae" / "fashion_mnist" / "class_0" / "detector"


@pytest.fixture(scope="module")
def bundle():
    if not BUNDLE.is_dir():
        pytest.skip("no pretrained conv_ae bundle in saved_models/")
    return BUNDLE


@pytest.fixture(scope="module")
def normal(fashion_mnist_split):
    """Normal images the bundle never saw in its own calibration: class 0 of the test split, as uint8 like a camera's."""
    s = fashion_mnist_split
    return np.rint(s.x_test[s.test_labels == 0][:300] * 255).astype(np.uint8)


def _digests(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in sorted(folder.iterdir())}


def test_the_new_threshold_is_the_percentile_of_the_given_scores_and_the_old_bundle_stays(bundle, normal, tmp_path):
    before = _digests(bundle)
    det = Detector.load(bundle)
    old = det.threshold_
    scores = det.score(normal)
    result = det.calibrate(normal)
    assert det.threshold_ == result.threshold["value"] == pytest.approx(np.percentile(scores, 99.0), rel=1e-12)
    assert det.threshold_ != old and result.previous["value"] == old and result.warning is None
    assert result.threshold["n_images"] == 300 and result.comparison["inputs"] == 300
    det.save(tmp_path / "new")
    again = Detector.load(tmp_path / "new")  # integrity sealed again: it loads, with the new threshold
    assert again.threshold_ == det.threshold_ and again.score(normal[:5]) == pytest.approx(scores[:5], rel=1e-12)
    assert again.spec["provenance"]["recalibrations"][-1]["previous"]["value"] == old
    assert _digests(bundle) == before


def test_mean_std_and_the_bundles_own_settings(bundle, normal):
    det = Detector.load(bundle)
    scores = det.score(normal)
    det.calibrate(normal, method="mean_std", k=2.5)
    assert det.threshold_ == pytest.approx(scores.mean() + 2.5 * scores.std(), rel=1e-12)
    assert det.spec["threshold"]["method"] == "mean_std" and det.spec["threshold"]["k"] == 2.5
    with pytest.raises(UserError, match="percentile, mean_std"):
        det.calibrate(normal, method="best_f1")


def test_too_few_inputs_are_refused_with_the_count(bundle, normal):
    det = Detector.load(bundle)
    assert min_inputs("percentile", 99.0) == 100 and min_inputs("percentile", 95.0) == 20
    with pytest.raises(UserError, match=r"at least 100 normal inputs. Received: 30"):
        det.calibrate(normal[:30])
    det.calibrate(normal[:30], percentile=95.0)  # enough for the 95th


def test_shifted_inputs_are_reported_with_the_figures():
    previous = {"value": 3.0, "fraction_above": 0.01, "n_images": 600, "score_mean": 1.0, "score_std": 0.7}
    rng = np.random.default_rng(0)
    same = rng.normal(1.0, 0.7, 400)
    figures, warning = compare(previous, same)
    assert warning is None and abs(figures["mean_shift_in_std"]) < 0.2
    figures, warning = compare(previous, same + 1.5)
    assert "look shifted" in warning and "above the old threshold" in warning and "standard deviations" in warning
    assert figures["fraction_above_previous_threshold"] > 0.1 and figures["mean_shift_in_std"] == pytest.approx(
        1.5 / 0.7 + (same.mean() - 1.0) / 0.7)


def test_cli_writes_a_new_bundle_and_refuses_bad_calls(bundle, normal, tmp_path, capsys):
    np.save(tmp_path / "normal.npy", normal)
    np.save(tmp_path / "few.npy", normal[:30])
    np.save(tmp_path / "wrong.npy", np.zeros((200, 14, 14), np.uint8))
    before = _digests(bundle)
    out = tmp_path / "new"
    assert runtime_main(["calibrate", str(bundle), str(tmp_path / "normal.npy"), "--out", str(out), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["threshold"]["value"] == Detector.load(out).threshold_
    assert "aezoo calibrate" in report["threshold"]["calibrated_on"]
    cases = [([str(tmp_path / "few.npy"), "--out", str(tmp_path / "a")], "at least 100 normal inputs. Received: 30"),
             ([str(tmp_path / "wrong.npy"), "--out", str(tmp_path / "b")], "expected"),
             ([str(tmp_path / "normal.npy"), "--out", str(out)], "already holds a detector bundle"),
             ([str(tmp_path / "normal.npy"), "--out", str(bundle), "--overwrite"], "the old bundle is never changed"),
             ([str(tmp_path / "normal.npy"), "--out", str(tmp_path / "c"), "--percentile", "0"], "percentile in (0, 100]")]
    for args, message in cases:
        assert runtime_main(["calibrate", str(bundle), *args]) == 2, args
        err = capsys.readouterr().err
        assert message in err and "Traceback" not in err, err
    assert not any((tmp_path / name).exists() for name in "abc")
    assert _digests(bundle) == before
