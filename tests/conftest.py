"""Shared fixtures: the real Fashion-MNIST (prepared once), one-class splits of it, and one tiny trained run.

Tests that train or convert many models are marked ``slow``; ``pytest -m "not slow"`` is the fast tier.
"""

from __future__ import annotations

import dataclasses
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
# What a device process and the CLI parser must never import (TensorFlow, Keras, TFMOT, TFDS, scikit-learn).
HEAVY_MODULES = ("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tensorflow_datasets", "sklearn")


# The test files by their measured time, longest first (BENCHMARKS.md, "The test suite"). With --dist loadfile a
# file runs on one worker and xdist hands the files out in collection order (with --no-loadscope-reorder; by
# default it orders them by test count, which put few-but-slow files such as the distribution tests last, a
# minute-long tail on one worker): the longest first leaves the short ones to even out the end.
LONGEST_FIRST = ("test_zoo.py", "test_training.py", "test_compress.py", "test_distribute.py", "test_pretrained.py",
                 "test_edge.py", "test_series.py", "test_representation.py", "test_stream.py", "test_demo.py",
                 "test_report.py", "test_runtime_install.py", "test_reliability.py", "test_edge_micro.py")


def pytest_collection_modifyitems(items: list) -> None:
    """Order the items file by file as :data:`LONGEST_FIRST` says (files it does not name last; within a file, as
    written)."""
    rank = {name: i for i, name in enumerate(LONGEST_FIRST)}
    items.sort(key=lambda item: rank.get(Path(str(item.fspath)).name, len(rank)))


def run_without_tensorflow(code: str, *args: str, env: dict | None = None, cwd: Path = REPO) -> str:
    """Run ``code`` (with ``args`` in sys.argv) in a fresh interpreter; fail if it raised or imported any of
    :data:`HEAVY_MODULES`; return what it printed. The one "no TensorFlow" check of the suite."""
    check = (f"{code}\nimport sys as _sys\n_bad = sorted({{m.split('.')[0] for m in _sys.modules}} & set({HEAVY_MODULES!r}))\n"
             "assert not _bad, 'imported ' + ', '.join(_bad)\n")
    proc = subprocess.run([sys.executable, "-c", check, *args], capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


@pytest.fixture(scope="session")
def fashion_mnist_ready() -> Path:
    """Ensure the real TFDS ``fashion_mnist`` is prepared in the default TFDS data dir.

    Prepares it from the local IDX mirror the first time (about 20 s, then never
    again); fails with the data layer's clear error when neither the mirror nor
    the network is available. Returns the prepared dataset directory.
    """
    from training import data

    return Path(data.prepared_builder("fashion_mnist").data_path)


@pytest.fixture(scope="session")
def fashion_mnist_split(fashion_mnist_ready):
    """The one-class split of docs/PROTOCOL.md for normal class 0 (5,400 / 600 / 10,000 images)."""
    from training.data import one_class_split

    return one_class_split("fashion_mnist", 0)


@pytest.fixture(scope="session")
def small_split(fashion_mnist_split):
    """A cheap subset of :func:`fashion_mnist_split` for quick training tests.

    1,024 train and 128 validation images of class 0, and the first 1,000 test images
    (all classes, roughly 10% normal). Same fields as a OneClassSplit.
    """
    s = fashion_mnist_split
    return dataclasses.replace(s, x_train=s.x_train[:1024], x_val=s.x_val[:128], x_test=s.x_test[:1000],
                               y_test=s.y_test[:1000], test_labels=s.test_labels[:1000])


@pytest.fixture
def on_small_split(small_split, monkeypatch):
    """CLI commands on a tiny run (trained on :func:`small_split`) load that split too: the same data, a tenth of the time."""
    from training import data

    monkeypatch.setattr(data, "one_class_split", lambda *args, **kwargs: small_split)
    return small_split


@pytest.fixture(scope="session")
def tiny_run(small_split, tmp_path_factory):
    """One conv_ae run (nap score, 3 epochs) on :func:`small_split`: (run folder, TrainResult)."""
    import training

    out = tmp_path_factory.mktemp("tiny") / "run"
    result = training.train(model="conv_ae", normal_class=0, epochs=3, min_steps=0, split=small_split, out=out,
                            plots=False, verbose=0)
    return out, result


@pytest.fixture(scope="session")
def tiny_mse_run(small_split, tmp_path_factory):
    """A one-epoch conv_ae run folder with the mse score (what compression and reports start from)."""
    import training

    out = tmp_path_factory.mktemp("runs") / "tiny"
    training.train(model="conv_ae", score="mse", normal_class=0, epochs=1, min_steps=0, split=small_split, out=out,
                   plots=False, verbose=0)
    return out


def export_model(model, out, *, quant="int8", x_train, x_val, names, fmt="bundle", score="mse", overwrite=False):
    """Export a bare Keras autoencoder: wrap it in a detector (score fitted on ``x_train``, threshold on ``x_val``)."""
    from training.convert import export_detector
    from training.detector import AutoencoderDetector

    detector = AutoencoderDetector(network=model, score=score).calibrate(x_train, x_val)
    prov = {"dataset": "fashion_mnist", "normal_class": 1, "seed": 0, "model": model.name, "params": {}}
    return export_detector(detector, out, quant=quant, x_train=x_train, x_val=x_val, class_names=list(names),
                           provenance=prov, preprocessing={}, fmt=fmt, n_representative=300, overwrite=overwrite)
