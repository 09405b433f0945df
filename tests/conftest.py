"""Shared fixtures: the real Fashion-MNIST, prepared once, and one-class splits of it."""

from __future__ import annotations

from pathlib import Path

import pytest


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

    512 train and 128 validation images of class 0, and the first 1,000 test
    images (all classes, roughly 10% normal). Same fields as a OneClassSplit.
    """
    import dataclasses

    s = fashion_mnist_split
    return dataclasses.replace(
        s,
        x_train=s.x_train[:512],
        x_val=s.x_val[:128],
        x_test=s.x_test[:1000],
        y_test=s.y_test[:1000],
        test_labels=s.test_labels[:1000],
    )
