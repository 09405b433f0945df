"""The vector input kind on the training side: feature vectors from a ``.csv`` (with a header), ``.npz`` (``x``/``y``) or ``.npy``.

Vectors are standardized with the mean and scale of the normal training rows, and
that standardization travels into the bundle (the device applies it to raw rows).
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from training.inputs.base import DEFAULT_LABEL_COLUMN, InputUnit, OneClassSplit, Source, refuse_series_options, register_input, split_arrays, standardization
from zoo.errors import UserError

VECTOR_SUFFIXES = (".csv", ".npz", ".npy")


@register_input
class VectorUnit(InputUnit):
    """Feature files: one vector per row, class labels in a column (CSV) or ``y`` (.npz)."""

    name = "vector"

    def claims(self, source: Source) -> bool:
        return source.path.suffix.lower() in VECTOR_SUFFIXES

    def check(self, source: Source) -> None:
        if not source.path.is_file():
            raise UserError(f"feature file not found: {source.name!r}")
        if source.image_size is not None or source.color_mode is not None:
            raise UserError(f"--image-size, --grayscale and --rgb apply to images, not to the feature file {source.name}")
        if source.test_data is not None and not Path(source.test_data).expanduser().is_file():
            raise UserError(f"test data file not found: {source.test_data!r}")
        refuse_series_options(source)

    def load_split(self, source: Source, split: str) -> tuple[np.ndarray, np.ndarray]:
        if split == "train":
            return _load_vectors(str(source.path), source.label_column)
        if split == "test" and source.test_data is not None:
            x, y = _load_vectors(source.test_data, source.label_column)
            features = _load_vectors(str(source.path), source.label_column)[0].shape[1]
            if x.shape[1] != features:
                raise UserError(f"{source.test_data} (--test-data) has {x.shape[1]} features per row, the training "
                                f"file {source.name} {features}: expected the same columns in both")
            return x, y
        raise UserError(f"the feature data {source.name} has no {split!r} split" +
                        (" (give the labelled test rows with --test-data FILE)" if split == "test" else ""))

    def has_test(self, source: Source) -> bool:
        return source.test_data is not None

    def class_names(self, source: Source) -> list[str]:
        labels = _load_vectors(str(source.path), source.label_column)[1]
        if source.test_data is not None:
            labels = np.concatenate([labels, _load_vectors(source.test_data, source.label_column)[1]])
        return [str(i) for i in range(int(labels.max()) + 1)]

    def describe(self, source: Source) -> dict:
        splits = ["train", "test"] if source.test_data else ["train"]
        arrays = {s: self.load_split(source, s) for s in splits}
        return {"name": source.name, "version": "vectors", "location": str(source.path.resolve()),
                "input_shape": list(arrays["train"][0].shape[1:]), "dtype": "float32",
                "splits": {s: int(len(a[0])) for s, a in arrays.items()}, "class_names": self.class_names(source)}

    def one_class_split(self, source: Source, normal_class: int) -> OneClassSplit:
        def fit(x_train: np.ndarray):
            mean, scale = standardization(x_train, (0,))
            record = {"kind": "vector", "features": int(x_train.shape[1]), "mean": mean.tolist(), "scale": scale.tolist(),
                      "fitted_on": "normal training rows"}
            return record, lambda a: ((a - mean) / scale).astype(np.float32)

        return split_arrays(self, source, normal_class, fit)

    def bundle_preprocessing(self, record: dict, input_shape: list[int]) -> dict:
        return {k: record[k] for k in ("kind", "features", "mean", "scale")}


def _load_vectors(path: str, label_column: str) -> tuple[np.ndarray, np.ndarray]:
    """(features float32 (N, F), labels int64): every row is class 0 when the file has no labels."""
    p = Path(path).expanduser()
    stat = p.stat()
    return _read_vectors(str(p), label_column, (stat.st_size, stat.st_mtime_ns))


@functools.lru_cache(maxsize=16)
def _read_vectors(path: str, label_column: str, stamp: tuple) -> tuple[np.ndarray, np.ndarray]:
    from edge.inputs import read_csv

    del stamp  # only the cache key
    p = Path(path)
    suffix = p.suffix.lower()
    if suffix == ".csv":
        _, _, names = read_csv(p)
        if label_column not in names and label_column != DEFAULT_LABEL_COLUMN:
            # A named label column that is not there (a typo) would train the labels as a feature, all rows normal.
            raise UserError(f"{p} has no column {label_column!r} (--label-column). Received columns: {names}")
        x, y, _ = read_csv(p, label_column=label_column if label_column in names else None)
    elif suffix == ".npz":
        try:
            with np.load(p, allow_pickle=False) as data:
                if "x" not in data.files:
                    raise UserError(f"{p} must hold an array 'x' (features, N x F) and optionally 'y' (labels). "
                                    f"Received arrays: {data.files}")
                x, y = data["x"], data["y"] if "y" in data.files else None
        except (OSError, ValueError, EOFError) as exc:
            raise UserError(f"{p} is not a readable .npz file: {exc}") from None
    else:
        try:
            x, y = np.load(p, allow_pickle=False), None
        except (OSError, ValueError, EOFError) as exc:
            raise UserError(f"{p} is not a readable numeric .npy file: {exc}") from None
    x = np.asarray(x)
    if x.ndim != 2 or x.shape[0] < 1 or x.dtype.kind not in "fiu":
        raise UserError(f"{p}: expected numeric features shaped (rows, features). Received: shape={x.shape}, dtype={x.dtype}")
    bad = np.flatnonzero(~np.isfinite(x.astype(np.float64)).all(axis=1))
    if bad.size:
        raise UserError(f"{p}: row {int(bad[0])} holds NaN or infinite values ({bad.size} such rows)")
    y = np.zeros(len(x), np.int64) if y is None else np.asarray(y)
    if y.shape != (len(x),) or y.dtype.kind not in "iu" or (y < 0).any():
        raise UserError(f"{p}: labels must be non-negative integers, one per row. Received: shape={y.shape}, dtype={y.dtype}")
    return x.astype(np.float32), y.astype(np.int64)
