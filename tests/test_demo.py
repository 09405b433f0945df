"""`aezoo demo` end to end (1 training epoch, 1 QAT epoch), and its pretrained-entry step."""

from __future__ import annotations

import json
import shutil

import pytest

pytestmark = pytest.mark.slow  # trains, compresses or converts models: the full suite runs it

from zoo import catalog, pretrained
from training.cli import main


SERIES_KEY = "conv1d_ae/kdd_tsad_135/class_0"


@pytest.fixture(scope="module")
def demo(small_split, tmp_path_factory):
    """The demo with a saved_models folder that holds only the repository's series entry (the series part loads it;
    without it, the series part trains one), on the small subset of Fashion-MNIST class 0 (conftest's small_split:
    the same code path, a fifth of the images; the series part reads its real recording)."""
    from training import data
    base = tmp_path_factory.mktemp("demo")
    empty = base / "no_saved_models"
    repo = catalog.saved_models_dir()
    entries = catalog.read_manifest(repo)["entries"]
    if SERIES_KEY in entries:
        shutil.copytree(repo / SERIES_KEY, empty / SERIES_KEY)
        pretrained.record_entry(entries[SERIES_KEY], empty)
    mp = pytest.MonkeyPatch()
    mp.setenv(catalog.ENV, str(empty))
    full = data.one_class_split
    mp.setattr(data, "one_class_split", lambda source, k, *a, **kw: small_split if (source, k) == ("fashion_mnist", 0)
               else full(source, k, *a, **kw))
    try:
        code = main(["demo", "--epochs", "1", "--min-steps", "0", "--out", str(base / "out")])
    finally:
        mp.undo()
    assert code == 0
    return base / "out"


@pytest.mark.slow
def test_demo_writes_the_entry_plots_and_summary(demo, capsys):
    for name in catalog.ENTRY_FILES:
        assert (demo / "entry" / name).is_file(), name
    summary = json.loads((demo / "demo.json").read_text())
    m = summary["entry"]["metrics"]
    # The zoo's default detector: nap, so int16x8 by post-training quantization (no QAT model to report).
    assert summary["entry"]["quant"] == "int16x8" and "qat" not in m
    assert m["int16x8"]["auroc"] > 0.6 and m["pca"]["auroc"] > 0.8 and m["knn"]["auroc"] > 0.8
    assert summary["entry"]["score"] == "nap" and summary["pretrained"] is None
    for name in ("run/plots/training_curves.png", "run/plots/reconstructions.png", "run/int16x8/plots/roc.png",
                 "run/int16x8/plots/reconstructions.png", "run/int16x8/plots/score_histogram.png"):
        assert (demo / name).stat().st_size > 5_000, name
    assert len(summary["detector_scores"]) == 10
    series = summary["series"]  # the sensor part: a real recording streamed through StreamDetector
    assert series["verdicts"] == (series["samples"] - series["window"]) // series["hop"] + 1
    assert series["events"] and (demo / "series" / "stream.png").stat().st_size > 5_000


@pytest.mark.slow
def test_demo_loads_a_pretrained_entry_when_there_is_one(demo, small_split, tmp_path, monkeypatch, capsys):
    """The demo's entry, put in a saved_models folder, is loaded by step 5 through from_zoo (sha256-checked):
    its scores are the ones the demo's own bundle gave on the same images (two load paths agree)."""
    import numpy as np

    from training.cli.demo import _pretrained as _demo_pretrained
    from training.data import class_names

    root = tmp_path / "saved_models"
    shutil.copytree(demo / "entry", root / "conv_ae" / "fashion_mnist" / "class_0")
    record = json.loads((demo / "demo.json").read_text())["entry"]
    pretrained.record_entry(record, root)
    monkeypatch.setenv(catalog.ENV, str(root))
    split = small_split  # what the demo ran on
    names = class_names("fashion_mnist")
    idx = np.array([np.flatnonzero(split.test_labels == c)[0] for c in range(len(names))])  # the demo's images
    result = _demo_pretrained(0, split.x_test[idx], split.test_labels[idx], names, record)
    out = capsys.readouterr().out
    assert "sha256 verified" in out and result["entry"] == "conv_ae/fashion_mnist/class_0"
    demo_scores = json.loads((demo / "demo.json").read_text())["detector_scores"]
    assert result["scores"] == pytest.approx([demo_scores[n] for n in names])
    assert result["quant"] == "int16x8" and result["device_auroc"] == record["metrics"]["int16x8"]["auroc"]
