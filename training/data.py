"""Datasets as numpy arrays, and the one-class split of PROTOCOL.md.

A dataset is described by a :class:`Source`: one of the named TensorFlow Datasets
(:data:`DATASETS`, stored in the TFDS data directory: ``data_dir``, else
``$TFDS_DATA_DIR``, else ``~/tensorflow_datasets``), a user's image folder in TFDS's
ImageFolder layout (``root/<split>/<label>/<image files>``), or a file of feature
vectors (``.csv`` with a header, ``.npz`` with arrays ``x`` and ``y``, ``.npy`` of
features only).

When a named dataset is not prepared yet, the first load prepares it:
``fashion_mnist`` from the local copy of its IDX files when there is one (see
:mod:`training.fashion_mnist_local`: offline, verified against the upstream
checksums, the same examples TFDS would download), otherwise every dataset from
TFDS's download. Without data, a local copy or network, the error says how to
get the data instead of letting TFDS retry its downloads for minutes.

Image folders are read with Pillow (``edge.inputs.decode_image``, the device's own
decoder): any format Pillow opens, hidden files skipped, other files refused by
name; ``image_size`` resizes and ``color_mode`` converts, exactly as an exported
bundle will. Feature vectors are standardized with the mean and scale of the normal
training rows, and that standardization travels into the bundle.

Importing this module downloads and prepares nothing.
"""

from __future__ import annotations

import dataclasses
import functools
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from zoo.errors import UserError
from zoo.files import atomic_path
from zoo.keras import tf

import tensorflow_datasets as tfds  # noqa: E402  (after zoo.keras: Keras 2)

from training import fashion_mnist_local  # noqa: E402

DATASETS = ("fashion_mnist", "mnist", "cifar10")

# Where TFDS downloads each dataset from: probed before a download so that no
# network fails in seconds rather than after TFDS's ten retries per file.
_DOWNLOAD_HOSTS = {
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
    "mnist": ("storage.googleapis.com", 443),
    "cifar10": ("www.cs.toronto.edu", 443),
}
_PROBE_TIMEOUT_S = 5.0

# The validation hold-out is part of the protocol, not of a training run, so it
# has its own constant seed: every run and every model sees the same images.
HOLDOUT_SEED = 20_240_601
HOLDOUT_FRACTION = 0.1
# A normal class needs enough inputs to train on and to calibrate a threshold with.
MIN_CLASS_IMAGES = 20
VECTOR_SUFFIXES = (".csv", ".npz", ".npy")
COLOR_MODES = ("grayscale", "rgb")

_DECODE_BATCH = 10_000


def _network_reachable(host: str, port: int, timeout: float = _PROBE_TIMEOUT_S) -> bool:
    """Return True when a TCP connection to ``host:port`` opens within ``timeout`` seconds."""
    # getaddrinfo has no timeout of its own, so the whole probe runs in a daemon thread.
    result: list[bool] = []

    def probe() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                result.append(True)
        except OSError:
            result.append(False)

    thread = threading.Thread(target=probe, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(result and result[0])


def _no_data_message(name: str, data_dir: str | None) -> str:
    where = data_dir or "the default TFDS data directory ($TFDS_DATA_DIR or ~/tensorflow_datasets)"
    if name == "fashion_mnist":
        return (
            f"Dataset 'fashion_mnist' is not prepared in {where}, there is no local copy of its IDX files "
            f"in {fashion_mnist_local.mirror_dir()}, and TFDS cannot download it (no network). Get it one of two "
            "ways: (1) install Debian's dataset-fashion-mnist package (`apt-get install dataset-fashion-mnist`), "
            f"or point --mirror DIR / ${fashion_mnist_local.MIRROR_ENV} at a directory with the four Fashion-MNIST "
            "IDX .gz files, then run `aezoo data prepare fashion_mnist`; or (2) run with internet access so "
            "TFDS downloads it."
        )
    return (
        f"Dataset {name!r} is not prepared in {where} and TFDS needs to download it, but the download "
        f"failed (no network?). Run `aezoo data prepare {name}` on a machine with internet access "
        "(or copy a prepared TFDS data directory and pass --data-dir / set $TFDS_DATA_DIR)."
    )


def prepared_builder(
    name: str,
    *,
    data_dir: str | os.PathLike | None = None,
    mirror: str | os.PathLike | None = None,
) -> tfds.core.DatasetBuilder:
    """Return the TFDS builder of a named dataset, preparing the data first if needed.

    Order: data already prepared in ``data_dir`` is used as is; else
    ``fashion_mnist`` is prepared from its local mirror when one is present (or
    was chosen explicitly with ``mirror`` / ``$AEZOO_FASHION_MNIST_DIR``: offline,
    verified, identical to the download); else TFDS downloads the dataset.

    Args:
        name: One of :data:`DATASETS`.
        data_dir: TFDS data directory; defaults to TFDS's.
        mirror: Directory of the Fashion-MNIST IDX files (``fashion_mnist`` only).

    Raises:
        UserError: unknown name, a bad mirror file, or no way to get the data.
    """
    if name not in DATASETS:
        raise UserError(f"Expected one of {', '.join(DATASETS)}. Received: name={name!r}")
    if mirror is not None and name != "fashion_mnist":
        raise UserError(f"A local mirror is only supported for fashion_mnist. Received: name={name!r}, mirror={mirror!r}")
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    builder = tfds.builder(name, data_dir=data_dir)
    if builder.is_prepared():
        return builder
    if name == "fashion_mnist" and (
        fashion_mnist_local.mirror_explicit(mirror) or fashion_mnist_local.mirror_present(mirror)
    ):
        fashion_mnist_local.prepare(mirror, data_dir)
        return tfds.builder(name, data_dir=data_dir)
    if not _network_reachable(*_DOWNLOAD_HOSTS[name]):
        raise UserError(_no_data_message(name, data_dir))
    print(f"aezoo: downloading and preparing TFDS {name} into {builder.data_path} (once)", file=sys.stderr)
    try:
        builder.download_and_prepare()
    except Exception as exc:  # TFDS raises many kinds (requests, OSError, checksum errors)
        raise UserError(f"{_no_data_message(name, data_dir)} TFDS said: {type(exc).__name__}: {exc}") from exc
    return builder


def _split_names(builder: tfds.core.DatasetBuilder) -> list[str]:
    return sorted(builder.info.splits.keys())


def _check_split(builder: tfds.core.DatasetBuilder, name: str, split: str) -> None:
    if split not in builder.info.splits:
        raise UserError(
            f"Dataset {name!r} has splits {', '.join(_split_names(builder))}. Received: split={split!r}"
        )


def _to_numpy(ds: tf.data.Dataset) -> tuple[np.ndarray, np.ndarray]:
    """The dataset's uint8 images and int64 labels, decoded in large batches."""
    parts = list(tfds.as_numpy(ds.batch(_DECODE_BATCH).prefetch(1)))
    if not parts:
        raise UserError("The split has no images.")
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts]).astype(np.int64)


def _decoded(builder: tfds.core.DatasetBuilder, name: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    """The split's uint8 images and labels, from a cache of decoded arrays beside the TFDS data.

    Decoding a TFDS split takes seconds (every image is a PNG); each command and
    worker process would pay it again. The cache (``aezoo_cache/NAME/VERSION/SPLIT.npz``
    under the data dir) is checked against the split's size and rebuilt when it does
    not match; where the data dir is read-only, the split is decoded every time.
    """
    n = builder.info.splits[split].num_examples
    cache = Path(builder.data_dir).parents[1] / "aezoo_cache" / name / str(builder.version) / f"{split}.npz"
    try:
        with np.load(cache) as f:
            images, labels = f["images"], f["labels"]
        if len(images) == len(labels) == n and images.dtype == np.uint8:
            return images, labels
    except (OSError, ValueError, KeyError):
        pass
    images, labels = _to_numpy(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False))
    try:
        with atomic_path(cache) as tmp:
            np.savez(tmp, images=images, labels=labels)
    except OSError:
        pass
    return images, labels


@functools.lru_cache(maxsize=8)
def _load_named(name: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    builder = prepared_builder(name, data_dir=data_dir)
    _check_split(builder, name, split)
    raw, labels = _decoded(builder, name, split)
    images = raw.astype(np.float32) / np.float32(255.0)
    # Shared by every caller in the process, so nobody may change them in place.
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


# -- sources ----------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Source:
    """Where a dataset comes from, and how its images are converted.

    Attributes:
        name: one of :data:`DATASETS`, an image folder (``root/<split>/<label>/*``), or a
            ``.csv``/``.npz``/``.npy`` file of feature vectors (the train rows).
        data_dir: TFDS data directory for named datasets (None: TFDS's default).
        image_size: (height, width) to resize images of a folder to (None: as stored).
        color_mode: "grayscale" or "rgb" for a folder's images (None: grayscale when all are).
        test_data: for vectors, the file of labelled test rows (None: no test split).
        label_column: the CSV column with the class labels.
    """

    name: str
    data_dir: str | None = None
    image_size: tuple | None = None
    color_mode: str | None = None
    test_data: str | None = None
    label_column: str = "label"

    @property
    def kind(self) -> str:
        """"named", "folder" or "vectors"."""
        if self.name in DATASETS:
            return "named"
        return "vectors" if Path(self.name).suffix.lower() in VECTOR_SUFFIXES else "folder"

    @property
    def path(self) -> Path:
        """The folder or file of a user's own data."""
        return Path(os.path.expanduser(self.name))


def as_source(dataset: Any, data_dir: str | os.PathLike | None = None) -> Source:
    """A :class:`Source` from a Source, a dataset name or a path; checked to exist."""
    source = dataset if isinstance(dataset, Source) else None
    if source is None:
        if not isinstance(dataset, (str, os.PathLike)):
            raise UserError(f"Expected a dataset name or the path of an image folder or vector file. Received: {dataset!r}")
        source = Source(os.fspath(dataset), data_dir=os.fspath(data_dir) if data_dir is not None else None)
    if source.kind == "named":
        _check_options(source)
        return source
    if source.kind == "folder" and not source.path.is_dir():
        raise UserError(f"Unknown dataset {source.name!r}: expected one of {', '.join(DATASETS)}, the path of an existing "
                        f"image folder (root/<split>/<label>/*.png), or a .csv/.npz/.npy file of feature vectors. "
                        f"Received: {source.name!r}")
    if source.kind == "vectors" and not source.path.is_file():
        raise UserError(f"feature file not found: {source.name!r}")
    _check_options(source)
    return source


def _check_options(source: Source) -> None:
    if source.color_mode is not None and source.color_mode not in COLOR_MODES:
        raise UserError(f"color_mode must be one of {', '.join(COLOR_MODES)}. Received: color_mode={source.color_mode!r}")
    if source.image_size is not None:
        size = source.image_size
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                         and 8 <= v <= 1024 for v in size)):
            raise UserError(f"image_size must be (height, width), integers in 8..1024. Received: image_size={size!r}")
    if source.kind == "vectors" and (source.image_size is not None or source.color_mode is not None):
        raise UserError(f"--image-size, --grayscale and --rgb apply to images, not to the feature file {source.name}")
    if source.kind == "named" and (source.image_size is not None or source.color_mode is not None):
        raise UserError(f"--image-size, --grayscale and --rgb apply to image folders; {source.name} is used as TFDS "
                        "stores it")
    if source.kind != "vectors" and source.test_data is not None:
        raise UserError(f"--test-data goes with a feature file (.csv/.npz/.npy). Received: dataset={source.name!r}")
    if source.test_data is not None and not Path(source.test_data).expanduser().is_file():
        raise UserError(f"test data file not found: {source.test_data!r}")


def check_source(dataset: Any, normal_class: Any = None) -> Source:
    """Raise UserError unless the dataset exists and ``normal_class`` (when given) is one of its class ids."""
    source = as_source(dataset)
    if normal_class is not None:
        n = len(class_names(source))
        if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or not 0 <= normal_class < n:
            raise UserError(f"normal class must be an integer in 0..{n - 1} for {source.name}. Received: normal_class={normal_class!r}")
    return source


# -- image folders ------------------------------------------------------------------------------------------


def _visible(path: Path) -> bool:
    return not path.name.startswith(".")


def _folder_labels(source: Source) -> list[str]:
    splits = [p for p in sorted(source.path.iterdir()) if p.is_dir() and _visible(p)] if source.path.is_dir() else []
    if not splits:
        raise UserError(f"{source.path} is not an image folder: expected split folders such as train/ and test/, each with "
                        "one folder per class (root/<split>/<label>/<images>). Received: no split folders")
    train = source.path / "train" if (source.path / "train").is_dir() else splits[0]
    labels = [p.name for p in sorted(train.iterdir()) if p.is_dir() and _visible(p)]
    if not labels:
        raise UserError(f"{train} has no class folders: expected {train}/<label>/<images>. Received: none")
    return labels


def _load_folder(source: Source, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = source.path / split
    if not root.is_dir():
        have = sorted(p.name for p in source.path.iterdir() if p.is_dir() and _visible(p))
        raise UserError(f"{source.path} has no {split!r} split. Received splits: {have}")
    labels = _folder_labels(source)
    files = tuple((f, i) for i, label in enumerate(labels) if (root / label).is_dir()
                  for f in sorted((root / label).iterdir()) if f.is_file() and _visible(f))
    if not files:
        raise UserError(f"{root} has no image files in its class folders {labels}")
    # The files' sizes and times are part of the cache key: an edited folder is read again.
    return _decode_folder(source, root, files, tuple((f.stat().st_size, f.stat().st_mtime_ns) for f, _ in files))


@functools.lru_cache(maxsize=16)
def _decode_folder(source: Source, root: Path, files: tuple, stamps: tuple) -> tuple[np.ndarray, np.ndarray]:
    from edge.inputs import IMAGE_MODES, decode_image

    del stamps  # only the cache key
    mode = IMAGE_MODES[source.color_mode] if source.color_mode else _folder_mode(files)
    size = tuple(source.image_size) if source.image_size else None
    images = [decode_image(f, mode, size) for f, _ in files]
    shapes = {img.shape for img in images}
    if len(shapes) > 1:
        a = next(f for (f, _), img in zip(files, images) if img.shape == images[0].shape)
        b = next(f for (f, _), img in zip(files, images) if img.shape != images[0].shape)
        raise UserError(f"the images of {root} differ in size: {a} is {images[0].shape[1]}x{images[0].shape[0]}, "
                        f"{b} is another size. Give --image-size HEIGHT,WIDTH to resize them all (the detector bundle "
                        "then resizes the same way).")
    x = np.stack(images).astype(np.float32) / 255.0
    x.flags.writeable = False
    return x, np.asarray([i for _, i in files], np.int64)


def _folder_mode(files: tuple[tuple[Path, int], ...]) -> str:
    """"L" when every image is grayscale, else "RGB" (read from the headers only)."""
    from PIL import Image, UnidentifiedImageError

    for f, _ in files:
        try:
            with Image.open(f) as img:
                if img.mode not in ("1", "L", "LA", "I", "I;16", "F"):
                    return "RGB"
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{str(f)!r} is not a readable image (PNG/JPEG/BMP...): {exc}. Remove it or move it "
                            "out of the class folders (hidden files, names starting with '.', are skipped).") from None
    return "L"


# -- feature vectors ------------------------------------------------------------------------------------------


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


def _vector_class_names(source: Source) -> list[str]:
    labels = _load_vectors(str(source.path), source.label_column)[1]
    if source.test_data is not None:
        labels = np.concatenate([labels, _load_vectors(source.test_data, source.label_column)[1]])
    return [str(i) for i in range(int(labels.max()) + 1)]


# -- loading ------------------------------------------------------------------------------------------------


def load_split(dataset: Any, split: str, *, data_dir: str | os.PathLike | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Load a whole split as arrays: float32 images NHWC in [0, 1] (or raw feature vectors) and int64 labels.

    Named datasets and folders are decoded once per process and cached; the returned
    arrays are read-only (copy them to modify). For a feature file, "train" is the file
    itself and "test" its ``test_data``.

    Raises:
        UserError: unknown dataset or split, unreadable files, or data that cannot be obtained.
    """
    source = as_source(dataset, data_dir)
    if source.kind == "named":
        return _load_named(source.name, split, source.data_dir)
    if source.kind == "folder":
        return _load_folder(source, split)
    if split == "train":
        return _load_vectors(str(source.path), source.label_column)
    if split == "test" and source.test_data is not None:
        return _load_vectors(source.test_data, source.label_column)
    raise UserError(f"the feature data {source.name} has no {split!r} split" +
                    (" (give the labelled test rows with --test-data FILE)" if split == "test" else ""))


def has_test_split(source: Source) -> bool:
    """True when the source has labelled test data (anomaly metrics can be computed)."""
    if source.kind == "named":
        return True
    if source.kind == "vectors":
        return source.test_data is not None
    return (source.path / "test").is_dir()


def class_names(dataset: Any) -> list[str]:
    """Return the class names of a dataset, indexed by class id (needs no prepared data for named ones)."""
    source = as_source(dataset)
    if source.kind == "named":
        return list(tfds.builder(source.name).info.features["label"].names)
    if source.kind == "folder":
        return _folder_labels(source)
    return _vector_class_names(source)


def describe(dataset: Any, *, data_dir: str | os.PathLike | None = None) -> dict:
    """Describe a dataset: where it is stored, the input shape, split sizes, classes (named ones are prepared first)."""
    source = as_source(dataset, data_dir)
    if source.kind == "named":
        builder = prepared_builder(source.name, data_dir=source.data_dir)
        image = builder.info.features["image"]
        return {"name": source.name, "version": str(builder.info.version), "location": os.fspath(builder.data_path),
                "input_shape": list(image.shape), "dtype": np.dtype(image.np_dtype).name,
                "splits": {s: int(builder.info.splits[s].num_examples) for s in _split_names(builder)},
                "class_names": list(builder.info.features["label"].names)}
    splits = ["train", "test"] if source.kind == "vectors" and source.test_data else ["train"] if source.kind == "vectors" \
        else [p.name for p in sorted(source.path.iterdir()) if p.is_dir() and _visible(p)]
    arrays = {s: load_split(source, s) for s in splits}
    first = next(iter(arrays.values()))[0]
    return {"name": source.name, "version": source.kind, "location": str(source.path.resolve()),
            "input_shape": list(first.shape[1:]), "dtype": "float32" if source.kind == "vectors" else "uint8",
            "splits": {s: int(len(a[0])) for s, a in arrays.items()}, "class_names": class_names(source)}


# -- the one-class protocol -----------------------------------------------------------------------------------


@dataclass
class OneClassSplit:
    """The one-class protocol of PROTOCOL.md for one normal class.

    Attributes:
        dataset: Dataset name or path.
        normal_class: Class id treated as normal.
        x_train: Normal train inputs minus the validation hold-out (5,400 for Fashion-MNIST).
        x_val: The held-out normal inputs (600): the only data for early stopping,
            model selection and threshold calibration.
        x_test: All test inputs (10,000); empty when the source has no test split.
        y_test: 1 (anomaly) where the test input's class is not ``normal_class``, else 0.
        test_labels: Original class ids of the test inputs.
        class_names: Names indexed by class id.
        preprocessing: how raw inputs became these arrays (images: size and color mode;
            vectors: the standardization fitted on ``x_train``): what a bundle reapplies.
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

    @property
    def has_test(self) -> bool:
        """True when there are test inputs of the normal class and of others (anomaly metrics are defined)."""
        return len(self.y_test) > 0 and 0 < int(self.y_test.sum()) < len(self.y_test)


def holdout_indices(labels: np.ndarray, normal_class: int, fraction: float = HOLDOUT_FRACTION) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted train and validation indices of one class's images.

    A fixed ``fraction`` of the class's images (at least one), chosen with the
    constant :data:`HOLDOUT_SEED`, is held out, so the split depends only on the data.
    """
    idx = np.flatnonzero(labels == normal_class)
    n_val = max(1, int(round(fraction * len(idx))))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(idx))
    return np.sort(idx[order[n_val:]]), np.sort(idx[order[:n_val]])


def _preprocessing(source: Source, x_train: np.ndarray) -> tuple[dict, Any]:
    """The preprocessing record of ``source`` and the function that applies it to raw inputs."""
    if source.kind != "vectors":
        record = {"kind": "image", "resize": "bilinear" if source.image_size else "none",
                  "color_mode": "L" if x_train.shape[-1] == 1 else "RGB"}
        return record, lambda a: a
    mean = x_train.mean(axis=0)
    scale = x_train.std(axis=0)
    scale = np.where(scale > 1e-12 * np.maximum(1.0, np.abs(mean)), scale, 1.0)  # constant features stay as they are
    record = {"kind": "vector", "features": int(x_train.shape[1]), "mean": mean.astype(float).tolist(),
              "scale": scale.astype(float).tolist(), "fitted_on": "normal training rows"}
    return record, lambda a: ((a - mean) / scale).astype(np.float32)


def one_class_split(dataset: Any = "fashion_mnist", normal_class: int = 0, *,
                    data_dir: str | os.PathLike | None = None) -> OneClassSplit:
    """Build the one-class split of PROTOCOL.md for ``normal_class``.

    Args:
        dataset: One of :data:`DATASETS`, a folder or feature-file path, or a :class:`Source`.
        normal_class: The class id treated as normal.
        data_dir: TFDS data directory; defaults to TFDS's.

    Returns:
        A :class:`OneClassSplit`; the same inputs every run (the validation hold-out uses
        the constant :data:`HOLDOUT_SEED`, not a training seed). Without a test split
        the test arrays are empty.

    Raises:
        UserError: unknown dataset, a class id out of range, or a class with fewer than
            :data:`MIN_CLASS_IMAGES` training inputs.
    """
    source = check_source(as_source(dataset, data_dir), normal_class)
    names = class_names(source)
    normal_class = int(normal_class)
    x, labels = load_split(source, "train")
    count = int((labels == normal_class).sum())
    if count < MIN_CLASS_IMAGES:
        raise UserError(f"class {normal_class} ({names[normal_class]}) of {source.name} has {count} training inputs; "
                        f"at least {MIN_CLASS_IMAGES} are needed to train and calibrate a threshold")
    train_idx, val_idx = holdout_indices(labels, normal_class)
    if has_test_split(source):
        x_test, test_labels = load_split(source, "test")
    else:
        x_test, test_labels = x[:0], labels[:0]
    record, apply = _preprocessing(source, x[train_idx])
    return OneClassSplit(
        dataset=source.name, normal_class=normal_class, x_train=apply(x[train_idx]), x_val=apply(x[val_idx]),
        x_test=apply(x_test), y_test=(test_labels != normal_class).astype(np.int64), test_labels=test_labels,
        class_names=names, preprocessing=record,
    )


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


def all_classes_split(dataset: Any = "fashion_mnist", *, data_dir: str | os.PathLike | None = None) -> AllClassesSplit:
    """The train split of every class with a deterministic 10% validation hold-out, and the test split.

    The hold-out is the union of :func:`holdout_indices` over the classes: stratified,
    fixed by the constant seed, identical every run.
    """
    source = as_source(dataset, data_dir)
    x, labels = load_split(source, "train")
    x_test, test_labels = load_split(source, "test") if has_test_split(source) else (x[:0], labels[:0])
    val_idx = np.sort(np.concatenate([holdout_indices(labels, int(k))[1] for k in np.unique(labels)]))
    train_idx = np.setdiff1d(np.arange(len(labels)), val_idx)
    return AllClassesSplit(
        dataset=source.name, x_train=x[train_idx], train_labels=labels[train_idx], x_val=x[val_idx],
        val_labels=labels[val_idx], x_test=x_test, test_labels=test_labels, class_names=class_names(source),
    )
