"""What every input kind shares on the training side: the data source, the one-class split, the unit interface.

An input kind is one unit (:class:`InputUnit`) registered with :func:`register_input`:
it says which sources are its own, loads their splits, names their classes, fits
the preprocessing on normal training data and builds the one-class split of
docs/PROTOCOL.md. Its device side is the unit of the same name in ``edge.inputs``, which
applies the preprocessing the bundle records.
"""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from zoo.errors import UserError

# The validation hold-out is part of the protocol, not of a training run, so it
# has its own constant seed: every run and every model sees the same inputs.
HOLDOUT_SEED = 20_240_601
HOLDOUT_FRACTION = 0.1
# A normal class needs enough inputs to train on and to calibrate a threshold with.
MIN_CLASS_IMAGES = 20


# A vector CSV's label column: the default is optional in a file, a name the user gives is required.
DEFAULT_LABEL_COLUMN = "label"


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from, and how its inputs are converted.

    Attributes:
        name: a named TFDS dataset (``training.inputs.named.DATASETS``), an image folder
            (``root/<split>/<label>/*``), a ``.csv``/``.npz``/``.npy`` file of feature vectors,
            a UCR/UEA ``.ts`` series set, or a recording (a TimeEval ``.csv`` with a
            ``timestamp`` column, or ``.npy`` [T, C] with ``input_kind="series"``): the train data.
        data_dir: TFDS data directory for named datasets (None: TFDS's default).
        image_size: (height, width) to resize images of a folder to (None: as stored).
        color_mode: "grayscale" or "rgb" for a folder's images (None: grayscale when all are).
        test_data: for files, the file of the labelled test data (None: no test split).
        label_column: the CSV column with the class labels of vectors.
        input_kind: "image", "vector" or "series"; None infers it from ``name``.
        window, hop: for series, the window length and the hop between windows (None:
            chosen from the normal training data, recorded in the split's preprocessing).
        aggregate: for series sets, how a series' window scores become its score ("mean" or "max").
    """

    name: str
    data_dir: str | None = None
    image_size: tuple | None = None
    color_mode: str | None = None
    test_data: str | None = None
    label_column: str = DEFAULT_LABEL_COLUMN
    input_kind: str | None = None
    window: int | None = None
    hop: int | None = None
    aggregate: str | None = None

    @property
    def path(self) -> Path:
        """The folder or file of a user's own data."""
        return Path(os.path.expanduser(self.name))

    @property
    def kind(self) -> str:
        """The input kind that reads this source ("image", "vector" or "series")."""
        return unit_for(self).name

    @property
    def unit(self) -> "InputUnit":
        """The training-side unit of this source's input kind."""
        return unit_for(self)


@dataclass
class Units:
    """How a split's model inputs (windows) map onto what the protocol scores: the series of a set, or the samples
    of a recording. Images and vectors have none (each input is scored on its own).

    Attributes:
        how: "series" (a series' score aggregates its windows' scores) or "points" (a sample's
            score is the largest score of the windows that cover it).
        val, test: per window of ``x_val``/``x_test``: its series (0..G-1) or its start sample.
        aggregate: "mean" or "max" for "series".
        window: the window length. val_length, test_length: samples of the val block and test recording.
        reference: for recordings, the standardized normal training part [T, C] (the matrix profile's AB-join).
        signal: for recordings, the standardized test recording [T, C] (for plots).
    """

    how: str
    val: np.ndarray
    test: np.ndarray
    aggregate: str = "max"
    window: int = 0
    val_length: int = 0
    test_length: int = 0
    reference: np.ndarray | None = dataclasses.field(default=None, repr=False)
    signal: np.ndarray | None = dataclasses.field(default=None, repr=False)

    def scores(self, window_scores: np.ndarray, part: str) -> np.ndarray:
        """One score per unit of ``part`` ("val" or "test") from the scores of its windows."""
        from edge.inputs import aggregate, point_scores

        index = self.val if part == "val" else self.test
        if self.how == "series":
            return aggregate(np.asarray(window_scores, np.float64), index, self.aggregate)
        return point_scores(np.asarray(window_scores, np.float64), index, self.window,
                            self.val_length if part == "val" else self.test_length)

    def location(self, test_window_scores: np.ndarray) -> int:
        """The sample a recording's detector points at: the centre of its highest-scoring test window."""
        return int(self.test[int(np.argmax(test_window_scores))] + self.window // 2)


@dataclass
class OneClassSplit:
    """The one-class protocol of docs/PROTOCOL.md for one normal class.

    Attributes:
        dataset: Dataset name or path.
        normal_class: Class id treated as normal.
        x_train: Normal train inputs minus the validation hold-out (5,400 for Fashion-MNIST;
            for series, the windows of the normal training series or recording part).
        x_val: The held-out normal inputs (600): the only data for early stopping,
            model selection and threshold calibration.
        x_test: All test inputs (10,000); empty when the source has no test split.
        y_test: 1 (anomaly) where the test unit's class is not ``normal_class``, else 0; one per
            test input, or per test series / test sample when ``units`` says so.
        test_labels: Original class ids of the test units.
        class_names: Names indexed by class id.
        preprocessing: how raw inputs became these arrays (images: size and color mode;
            vectors and series: the standardization fitted on normal training data; series:
            window and hop): what a bundle reapplies.
        units: for series, how window scores become the scores of series or samples (None: one input, one unit).
    """

    dataset: str
    normal_class: int
    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]
    preprocessing: dict = dataclasses.field(default_factory=dict)
    units: Units | None = None

    @property
    def has_test(self) -> bool:
        """True when there are test units of the normal class and of others (anomaly metrics are defined)."""
        return len(self.y_test) > 0 and 0 < int(self.y_test.sum()) < len(self.y_test)

    @property
    def protocol(self) -> str:
        """One sentence: what this split trains on, chooses on and tests on (recorded with results)."""
        n = len(self.y_test)
        if self.units is None:
            return (f"PROTOCOL.md one-class: train on 90% of the normal class's training inputs, choose on the other 10%, "
                    f"test on all {n} test inputs (anomaly = any other class)")
        if self.units.how == "series":
            return (f"PROTOCOL.md one-class series: train on the windows of 90% of the normal class's training series, "
                    f"choose on the other 10%, test on all {n} test series, each scored by the {self.units.aggregate} of "
                    "its window scores (anomaly = any other class)")
        return ("PROTOCOL.md recording: train on the normal training recording less its last block, choose on that block, "
                f"test on all {n} samples of the test recording, each scored by its highest-scoring covering window "
                "(anomaly = labelled anomalous sample)")

    def unit_scores(self, window_scores: np.ndarray, part: str) -> np.ndarray:
        """The scores of the units the protocol evaluates ("val" or "test") from the scores of the model's inputs."""
        return np.asarray(window_scores) if self.units is None else self.units.scores(window_scores, part)


@dataclass
class AllClassesSplit:
    """Every class of a dataset, for models trained without labels.

    Attributes:
        dataset: dataset name or path.
        x_train, train_labels: the train split minus the validation hold-out (54,000 for Fashion-MNIST).
        x_val, val_labels: the hold-out: a fixed 10% of each class's train images (the
            same images the one-class protocol holds out for that class).
        x_test, test_labels: the whole test split.
        class_names: names indexed by class id.
    """

    dataset: str
    x_train: np.ndarray
    train_labels: np.ndarray
    x_val: np.ndarray
    val_labels: np.ndarray
    x_test: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]

    @property
    def x_train_all(self) -> np.ndarray:
        """The whole train split (train + hold-out), for the probe and the quantizer."""
        return np.concatenate([self.x_train, self.x_val])

    @property
    def train_all_labels(self) -> np.ndarray:
        """Labels of :attr:`x_train_all`."""
        return np.concatenate([self.train_labels, self.val_labels])


def holdout_indices(labels: np.ndarray, normal_class: int, fraction: float = HOLDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted train and validation indices of one class's inputs.

    A fixed ``fraction`` of the class's inputs (at least one), chosen with the
    constant :data:`HOLDOUT_SEED`, is held out, so the split depends only on the data.
    """
    idx = np.flatnonzero(labels == normal_class)
    n_val = max(1, int(round(fraction * len(idx))))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(idx))
    return np.sort(idx[order[n_val:]]), np.sort(idx[order[:n_val]])


def standardization(x: np.ndarray, axis: tuple[int, ...]) -> tuple[np.ndarray, np.ndarray]:
    """(mean, scale) over ``axis`` of normal training data; a constant feature keeps scale 1 (it stays as it is)."""
    x64 = np.asarray(x, np.float64)  # float32 squares of values near 1e20 overflow to inf
    mean, scale = x64.mean(axis=axis), x64.std(axis=axis)
    if not (np.isfinite(mean).all() and np.isfinite(scale).all() and np.abs(scale).max(initial=0) <= 3.4e38):
        raise UserError("the normal training data's per-feature spread does not fit float32 (values near ±1e19 or "
                        "more): rescale those columns before training")
    return mean, np.where(scale > 1e-12 * np.maximum(1.0, np.abs(mean)), scale, 1.0)


# -- the unit interface -----------------------------------------------------------------------------------

_UNITS: dict[str, "InputUnit"] = {}


def register_input(cls: type["InputUnit"]) -> type["InputUnit"]:
    """Register an input kind's training unit (an instance of ``cls``) under ``cls.name``; ``edge.inputs`` must know it."""
    from edge.inputs import INPUT_KINDS

    if cls.name not in INPUT_KINDS:
        raise AssertionError(f"input kind {cls.name!r} has no device unit in edge.inputs")
    _UNITS[cls.name] = cls()
    return cls


def input_kinds() -> tuple[str, ...]:
    """The registered input kinds."""
    return tuple(_UNITS)


def unit_named(kind: str) -> "InputUnit":
    """The registered unit of input kind ``kind``."""
    if kind not in _UNITS:
        raise UserError(f"unknown input kind; expected one of {', '.join(_UNITS)}. Received: {kind!r}")
    return _UNITS[kind]


def unit_for(source: Source) -> "InputUnit":
    """The unit that reads ``source``: the one ``source.input_kind`` names, else the first that claims it."""
    if source.input_kind is not None:
        if source.input_kind not in _UNITS:
            raise UserError(f"input_kind must be one of {', '.join(_UNITS)}. Received: input_kind={source.input_kind!r}")
        return _UNITS[source.input_kind]
    for unit in _UNITS.values():
        if unit.claims(source):
            return unit
    return _UNITS["image"]  # a path that is nothing else: the image unit's check names every form a dataset takes


class InputUnit:
    """One input kind on the training side. Subclasses are small: each method is one step of the data stage."""

    name: ClassVar[str] = ""

    def claims(self, source: Source) -> bool:
        """True when ``source`` (without an explicit ``input_kind``) is data of this kind."""
        raise NotImplementedError

    def check(self, source: Source) -> None:
        """Raise UserError unless the source exists and its options suit this kind."""
        raise NotImplementedError

    def load_split(self, source: Source, split: str) -> tuple[Any, np.ndarray]:
        """A whole split as (inputs, int64 class labels)."""
        raise NotImplementedError

    def has_test(self, source: Source) -> bool:
        """True when the source has labelled test data."""
        raise NotImplementedError

    def class_names(self, source: Source) -> list[str]:
        """Class names indexed by class id."""
        raise NotImplementedError

    def describe(self, source: Source) -> dict:
        """Where the data is, the input shape, split sizes and classes."""
        raise NotImplementedError

    def normal_class_count(self, source: Source) -> int:
        """How many classes (0..n-1) can be the normal one: all of them unless the kind says otherwise."""
        return len(self.class_names(source))

    def one_class_split(self, source: Source, normal_class: int) -> OneClassSplit:
        """The one-class split of docs/PROTOCOL.md, preprocessing fitted on the normal training inputs only."""
        raise NotImplementedError

    def bundle_preprocessing(self, record: dict, input_shape: list[int]) -> dict:
        """The ``preprocessing`` section of detector.json from the split's record (what ``edge.inputs`` applies)."""
        raise NotImplementedError


def refuse_series_options(source: Source) -> None:
    """Refuse the series options for a source of another kind."""
    given = [f"--{n}" for n in ("window", "hop", "aggregate") if getattr(source, n) is not None]
    if given:
        raise UserError(f"{', '.join(given)} apply to series (recordings and .ts sets), not to {source.name}")


def split_arrays(unit: InputUnit, source: Source, normal_class: int, fit: Any) -> OneClassSplit:
    """The one-class split of a kind whose inputs are scored one by one (images, vectors).

    ``fit(x_train) -> (record, apply)`` fits the kind's preprocessing on the normal training
    inputs; ``apply`` maps raw inputs to model inputs.
    """
    names = unit.class_names(source)
    x, labels = unit.load_split(source, "train")
    check_normal_count(source, names, normal_class, int((labels == normal_class).sum()))
    train_idx, val_idx = holdout_indices(labels, normal_class)
    x_test, test_labels = unit.load_split(source, "test") if unit.has_test(source) else (x[:0], labels[:0])
    record, apply = fit(x[train_idx])
    return OneClassSplit(
        dataset=source.name, normal_class=normal_class, x_train=apply(x[train_idx]), x_val=apply(x[val_idx]),
        x_test=apply(x_test), y_test=(test_labels != normal_class).astype(np.int64), test_labels=test_labels,
        class_names=names, preprocessing=record,
    )


def check_normal_count(source: Source, names: list[str], normal_class: int, count: int, what: str = "training inputs") -> None:
    """Refuse a normal class with fewer than :data:`MIN_CLASS_IMAGES` training inputs."""
    if count < MIN_CLASS_IMAGES:
        raise UserError(f"class {normal_class} ({names[normal_class]}) of {source.name} has {count} {what}; "
                        f"at least {MIN_CLASS_IMAGES} are needed to train and calibrate a threshold")
