"""Datasets as numpy arrays, and the one-class split of docs/PROTOCOL.md: the one door to the input kinds.

A dataset is described by a :class:`Source`: one of the named TensorFlow Datasets
(:data:`DATASETS`, stored in the TFDS data directory: ``data_dir``, else
``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), a user's image folder in TFDS's
ImageFolder layout (``root/<split>/<label>/<image files>``), a file of feature
vectors (``.csv`` with a header, ``.npz`` with arrays ``x`` and ``y``, ``.npy`` of
features only), a UCR/UEA ``.ts`` series set, or a sensor recording (a TimeEval
``.csv``: ``timestamp``, channels, ``is_anomaly``; or ``.npy`` [T, C]).

Each source belongs to one input kind (``training.inputs``: image, vector, series),
whose unit loads it, names its classes, fits its preprocessing on normal training
data and builds its one-class split; this module only asks which unit a source is
for. Importing it downloads and prepares nothing.
"""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from training.inputs import AllClassesSplit, OneClassSplit, Source, holdout_indices
from training.inputs.base import HOLDOUT_FRACTION, HOLDOUT_SEED, MIN_CLASS_IMAGES
from training.inputs.named import DATASETS, prepared_builder
from zoo.errors import UserError

__all__ = ["DATASETS", "HOLDOUT_FRACTION", "HOLDOUT_SEED", "MIN_CLASS_IMAGES", "AllClassesSplit", "OneClassSplit", "Source",
           "all_classes_split", "as_source", "check_source", "class_names", "describe", "has_test_split", "holdout_indices",
           "load_split", "one_class_split", "prepared_builder"]


def as_source(dataset: Any, data_dir: str | os.PathLike | None = None) -> Source:
    """A :class:`Source` from a Source, a dataset name or a path; checked to exist and to suit its kind's options."""
    source = dataset if isinstance(dataset, Source) else None
    if source is None:
        if not isinstance(dataset, (str, os.PathLike)):
            raise UserError("Expected a dataset name or the path of an image folder, vector file, .ts set or recording. "
                            f"Received: {dataset!r}")
        source = Source(os.fspath(dataset), data_dir=os.fspath(data_dir) if data_dir is not None else None)
    source.unit.check(source)
    return source


def check_source(dataset: Any, normal_class: Any = None) -> Source:
    """Raise UserError unless the dataset exists and ``normal_class`` (when given) is one of its class ids."""
    source = as_source(dataset)
    if normal_class is not None:
        n = len(normal_classes(source))
        if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or not 0 <= normal_class < n:
            which = f"an integer in 0..{n - 1}" if n > 1 else "0 (a recording has one normal class)"
            raise UserError(f"normal class must be {which} for {source.name}. Received: normal_class={normal_class!r}")
    return source


def normal_classes(dataset: Any) -> list[int]:
    """The class ids that can be the normal class of the one-class protocol: every class, or 0 for a recording."""
    source = as_source(dataset)
    return list(range(source.unit.normal_class_count(source)))


def load_split(dataset: Any, split: str, *, data_dir: str | os.PathLike | None = None) -> tuple[Any, np.ndarray]:
    """Load a whole split: float32 images NHWC in [0, 1], raw feature vectors, or a list of raw series; int64 labels.

    Named datasets and folders are decoded once per process and cached; the returned
    arrays are read-only (copy them to modify). For a file, "train" is the file itself
    and "test" its ``test_data``. A recording's labels are its per-sample 0/1 labels.

    Raises:
        UserError: unknown dataset or split, unreadable files, or data that cannot be obtained.
    """
    source = as_source(dataset, data_dir)
    return source.unit.load_split(source, split)


def has_test_split(source: Source) -> bool:
    """True when the source has labelled test data (anomaly metrics can be computed)."""
    return source.unit.has_test(source)


def class_names(dataset: Any) -> list[str]:
    """Return the class names of a dataset, indexed by class id (needs no prepared data for TFDS's own)."""
    source = as_source(dataset)
    return source.unit.class_names(source)


def describe(dataset: Any, *, data_dir: str | os.PathLike | None = None) -> dict:
    """Describe a dataset: where it is stored, the input shape, split sizes, classes (named ones are prepared first)."""
    source = as_source(dataset, data_dir)
    return {"input_kind": source.kind, **source.unit.describe(source), "csv_headers": csv_headers(source)}


def csv_headers(source: Source) -> list[str]:
    """How the first row of each CSV file of ``source`` was read (header or data), a line each."""
    from edge.inputs import describe_csv

    paths = [str(source.path), source.test_data]
    return [describe_csv(p) for p in paths if p is not None and p.lower().endswith(".csv")]


def one_class_split(dataset: Any = "fashion_mnist", normal_class: int = 0, *,
                    data_dir: str | os.PathLike | None = None) -> OneClassSplit:
    """Build the one-class split of docs/PROTOCOL.md for ``normal_class``.

    Args:
        dataset: One of :data:`DATASETS`, a folder or file path, or a :class:`Source`.
        normal_class: The class id treated as normal (a recording's is 0).
        data_dir: TFDS data directory; defaults to TFDS's.

    Returns:
        A :class:`OneClassSplit`; the same inputs every run (the validation hold-out uses
        the constant :data:`HOLDOUT_SEED`, not a training seed). Without a test split
        the test arrays are empty. Series are cut into windows (``split.units`` maps
        window scores to series or sample scores).

    Raises:
        UserError: unknown dataset, a class id out of range, or a class with fewer than
            :data:`MIN_CLASS_IMAGES` training inputs.
    """
    source = check_source(as_source(dataset, data_dir), normal_class)
    return source.unit.one_class_split(source, int(normal_class))


def all_classes_split(dataset: Any = "fashion_mnist", *, data_dir: str | os.PathLike | None = None) -> AllClassesSplit:
    """The train split of every class with a deterministic 10% validation hold-out, and the test split.

    The hold-out is the union of :func:`holdout_indices` over the classes: stratified,
    fixed by the constant seed, identical every run.
    """
    source = as_source(dataset, data_dir)
    if source.kind == "series":
        raise UserError(f"one model on all classes is for images and vectors; {source.name} is series data. "
                        "Train one detector per normal class instead (--normal-class all)")
    x, labels = load_split(source, "train")
    x_test, test_labels = load_split(source, "test") if has_test_split(source) else (x[:0], labels[:0])
    val_idx = np.sort(np.concatenate([holdout_indices(labels, int(k))[1] for k in np.unique(labels)]))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return AllClassesSplit(
        dataset=source.name, x_train=x[train_idx], train_labels=labels[train_idx], x_val=x[val_idx],
        val_labels=labels[val_idx], x_test=x_test, test_labels=test_labels, class_names=class_names(source),
    )
