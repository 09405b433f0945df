"""Shared fixtures: the real Fashion-MNIST (prepared once), one-class splits of it, and one tiny trained run.

Tests that train or convert many models are marked ``slow``; ``pytest -m "not slow"`` is the fast tier.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[1]


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
    """The one-class split of PROTOCOL.md for normal class 0 (5,400 / 600 / 10,000 images)."""
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


@pytest.fixture(scope="session")
def tiny_run(small_split, tmp_path_factory):
    """One conv_ae run (nap score, 3 epochs) on :func:`small_split`: (run folder, TrainResult)."""
    import training

    out = tmp_path_factory.mktemp("tiny") / "run"
    result = training.train(model="conv_ae", normal_class=0, epochs=3, min_steps=0, split=small_split, out=out,
                            plots=False, verbose=0)
    return out, result


@pytest.fixture(scope="session")
def tiny_bundle(tiny_run, small_split, tmp_path_factory):
    """The int8 bundle of :func:`tiny_run` (exported from its detector, threshold on the small split)."""
    from training import runs
    from training.convert import export_detector

    run, result = tiny_run
    prov = runs.provenance(result.config.to_dict(), run=run.name, class_names=list(small_split.class_names))
    return export_detector(result.detector, tmp_path_factory.mktemp("bundle") / "int8", x_train=small_split.x_train,
                           x_val=small_split.x_val, class_names=list(small_split.class_names), provenance=prov,
                           preprocessing=small_split.preprocessing, n_representative=200)


def blobs(n: int, *, anomalous: bool = False, seed: int = 0, size: int = 28) -> np.ndarray:
    """Generated 28x28x1 images: a Gaussian blob (normal), plus salt noise (anomalous)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size] / (size - 1)
    cx, cy = rng.uniform(0.3, 0.7, (2, n, 1, 1))
    img = np.exp(-((xx - cx) ** 2 + (yy - cy) ** 2) / 0.02)
    if anomalous:
        img = np.clip(img + (rng.random((n, size, size)) < 0.1), 0, 1)
    return img[..., None].astype(np.float32)


def export_model(model, out, *, quant="int8", x_train, x_val, names, fmt="bundle", score="mse", overwrite=False):
    """Export a bare Keras autoencoder: wrap it in a detector (score fitted on ``x_train``, threshold on ``x_val``)."""
    from training.convert import export_detector
    from training.detector import AutoencoderDetector

    detector = AutoencoderDetector(network=model, score=score).calibrate(x_train, x_val)
    prov = {"dataset": "fashion_mnist", "normal_class": 1, "seed": 0, "model": model.name, "params": {}}
    return export_detector(detector, out, quant=quant, x_train=x_train, x_val=x_val, class_names=list(names),
                           provenance=prov, preprocessing={}, fmt=fmt, n_representative=300, overwrite=overwrite)
