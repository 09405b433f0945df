"""Datasets as numpy arrays and tf.data pipelines, and the one-class split of PROTOCOL.md.

Named datasets (:data:`DATASETS`) come from TensorFlow Datasets, stored in the
TFDS data directory (``data_dir``, else ``$TFDS_DATA_DIR``, else
``~/tensorflow_datasets``). A user's own images use TFDS's ImageFolder layout,
``root/<split>/<label>/*.png``, and are named by the path of ``root``.

When a named dataset is not prepared yet, the first load prepares it:
``fashion_mnist`` from the local copy of its IDX files when there is one (see
:mod:`training.fashion_mnist_local`: offline, verified against the upstream
checksums, the same examples TFDS would download), otherwise every dataset from
TFDS's download. Without data, a local copy or network, the error says how to
get the data instead of letting TFDS retry its downloads for minutes.

Importing this module downloads and prepares nothing.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from zoo.errors import UserError
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

_DECODE_BATCH = 10_000


def _check_name(name: str) -> str:
    if not isinstance(name, (str, os.PathLike)):
        raise UserError(f"Expected a dataset name or an ImageFolder path. Received: name={name!r}")
    name = os.fspath(name)
    if name in DATASETS or Path(name).expanduser().is_dir():
        return name
    raise UserError(
        f"Unknown dataset {name!r}: expected one of {', '.join(DATASETS)}, or the path of an existing "
        f"ImageFolder directory (root/<split>/<label>/*.png). Received: name={name!r}"
    )


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
    ds = ds.map(lambda x, y: (tf.cast(x, tf.float32) / 255.0, y), num_parallel_calls=tf.data.AUTOTUNE)
    parts = list(tfds.as_numpy(ds.batch(_DECODE_BATCH).prefetch(1)))
    if not parts:
        raise UserError("The split has no images.")
    images = np.concatenate([p[0] for p in parts])
    labels = np.concatenate([p[1] for p in parts]).astype(np.int64)
    return images, labels


@functools.lru_cache(maxsize=8)
def _load_named(name: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    builder = prepared_builder(name, data_dir=data_dir)
    _check_split(builder, name, split)
    images, labels = _to_numpy(builder.as_dataset(split=split, as_supervised=True, shuffle_files=False))
    # Shared by every caller in the process, so nobody may change them in place.
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels


def _folder_shape(root: str, split: str) -> tuple[int | None, int | None, int]:
    """Return the (height, width, channels) of the split's first image.

    Channels are 1 for a grayscale image, else 3 (RGB; alpha is dropped).
    """
    from PIL import Image

    for path in sorted(Path(root, split).glob("*/*")):
        if path.suffix.lower() in (".png", ".jpg", ".jpeg"):
            with Image.open(path) as image:
                channels = 1 if image.mode in ("1", "L", "I", "I;16", "F") else 3
                return image.height, image.width, channels
    return None, None, 3


def _load_folder(root: str, split: str) -> tuple[np.ndarray, np.ndarray]:
    _check_split(tfds.ImageFolder(root), root, split)
    # TFDS decodes ImageFolder images as RGB unless told otherwise; grayscale parts
    # images (like Fashion-MNIST) should stay one channel.
    builder = tfds.ImageFolder(root, shape=(None, None, _folder_shape(root, split)[2]))
    ds = builder.as_dataset(split=split, as_supervised=False, shuffle_files=False)
    images, labels, first = [], [], None
    for example in tfds.as_numpy(ds):
        image, filename = example["image"], example["image/filename"].decode()
        if first is None:
            first = (image.shape, filename)
        elif image.shape != first[0]:
            raise UserError(
                f"All images of an ImageFolder split must have the same height, width and channels: "
                f"{first[1]} is {first[0]}, {filename} is {image.shape}."
            )
        images.append(image)
        labels.append(example["label"])
    if not images:
        raise UserError(f"ImageFolder split {split!r} in {root} has no images.")
    return np.stack(images).astype(np.float32) / 255.0, np.asarray(labels, dtype=np.int64)


def load_split(
    name: str, split: str, *, data_dir: str | os.PathLike | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Load a whole split as arrays.

    Named datasets are decoded once per process and cached; the returned arrays
    are read-only (copy them to modify). Preparation happens on first use (see
    :func:`prepared_builder`).

    Args:
        name: One of :data:`DATASETS`, or the path of an ImageFolder directory
            (``root/<split>/<label>/*.png``, all images the same size).
        split: A split of the dataset, e.g. ``"train"`` or ``"test"``.
        data_dir: TFDS data directory for named datasets; defaults to TFDS's.

    Returns:
        ``(images, labels)``: float32 NHWC in [0, 1] and int64 class ids.

    Raises:
        UserError: unknown dataset or split, or the data cannot be obtained.
    """
    name = _check_name(name)
    if name in DATASETS:
        return _load_named(name, split, os.fspath(data_dir) if data_dir is not None else None)
    return _load_folder(os.path.expanduser(name), split)


def class_names(name: str) -> list[str]:
    """Return the class names of a dataset, indexed by class id (needs no prepared data).

    Args:
        name: One of :data:`DATASETS`, or the path of an ImageFolder directory
            (its label folder names, sorted).
    """
    name = _check_name(name)
    builder = tfds.builder(name) if name in DATASETS else tfds.ImageFolder(os.path.expanduser(name))
    return list(builder.info.features["label"].names)


def describe(name: str, *, data_dir: str | os.PathLike | None = None) -> dict:
    """Describe a dataset: where it is stored, image shape and dtype, split sizes, classes.

    Named datasets are prepared first if needed (see :func:`prepared_builder`).

    Args:
        name: One of :data:`DATASETS`, or the path of an ImageFolder directory.
        data_dir: TFDS data directory for named datasets; defaults to TFDS's.

    Returns:
        A JSON-friendly dict with keys ``name``, ``version``, ``location``,
        ``image_shape``, ``image_dtype``, ``splits`` ({split: examples}) and ``class_names``.
    """
    name = _check_name(name)
    if name in DATASETS:
        builder = prepared_builder(name, data_dir=data_dir)
        location = os.fspath(builder.data_path)
    else:
        builder = tfds.ImageFolder(os.path.expanduser(name))
        location = os.path.abspath(os.path.expanduser(name))
    image = builder.info.features["image"]
    shape = list(image.shape)
    if name not in DATASETS and builder.info.splits:
        # An ImageFolder declares no shape; report the first image's.
        shape = list(_folder_shape(location, _split_names(builder)[0]))
    return {
        "name": name,
        "version": str(builder.info.version),
        "location": location,
        "image_shape": shape,
        "image_dtype": np.dtype(image.np_dtype).name,
        "splits": {s: int(builder.info.splits[s].num_examples) for s in _split_names(builder)},
        "class_names": list(builder.info.features["label"].names),
    }


def make_pipeline(images: np.ndarray, *, batch_size: int, shuffle: bool, seed: int) -> tf.data.Dataset:
    """Return a tf.data pipeline of ``(x, x)`` batches for training an autoencoder.

    Args:
        images: float32 NHWC in [0, 1] (uint8 images are scaled to [0, 1]).
        batch_size: Images per batch; the last batch may be smaller.
        shuffle: Reshuffle the images every epoch.
        seed: Shuffle seed, so the order of batches is reproducible.
    """
    if not isinstance(images, np.ndarray) or images.ndim != 4:
        raise UserError(
            "Expected images as a numpy array of shape (N, height, width, channels). "
            f"Received: images with shape {getattr(images, 'shape', None)}"
        )
    if images.dtype not in (np.float32, np.uint8):
        raise UserError(f"Expected float32 images in [0, 1] or uint8 images. Received: dtype={images.dtype}")
    if not isinstance(batch_size, (int, np.integer)) or batch_size < 1:
        raise UserError(f"Expected a positive integer batch size. Received: batch_size={batch_size!r}")
    ds = tf.data.Dataset.from_tensor_slices(images)
    if images.dtype == np.uint8:
        ds = ds.map(lambda x: tf.cast(x, tf.float32) / 255.0, num_parallel_calls=tf.data.AUTOTUNE)
    ds = ds.cache()
    if shuffle:
        ds = ds.shuffle(len(images), seed=seed, reshuffle_each_iteration=True)
    ds = ds.batch(int(batch_size)).map(lambda x: (x, x))
    return ds.prefetch(tf.data.AUTOTUNE)


@dataclass
class OneClassSplit:
    """The one-class protocol of PROTOCOL.md for one normal class.

    Attributes:
        dataset: Dataset name or ImageFolder path.
        normal_class: Class id treated as normal.
        x_train: Normal train images minus the validation hold-out (5,400 for Fashion-MNIST).
        x_val: The held-out normal images (600): the only data for early stopping,
            model selection and threshold calibration.
        x_test: All test images (10,000).
        y_test: 1 (anomaly) where the test image's class is not ``normal_class``, else 0.
        test_labels: Original class ids of the test images.
        class_names: Names indexed by class id.
    """

    dataset: str
    normal_class: int
    x_train: np.ndarray
    x_val: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    test_labels: np.ndarray
    class_names: list[str]


def holdout_indices(labels: np.ndarray, normal_class: int) -> tuple[np.ndarray, np.ndarray]:
    """Return the sorted train and validation indices of one class's images.

    A fixed :data:`HOLDOUT_FRACTION` of the class's images, chosen with the constant
    :data:`HOLDOUT_SEED`, is held out, so the split depends only on the data.
    """
    idx = np.flatnonzero(labels == normal_class)
    n_val = int(round(HOLDOUT_FRACTION * len(idx)))
    order = np.random.default_rng(HOLDOUT_SEED).permutation(len(idx))
    return np.sort(idx[order[n_val:]]), np.sort(idx[order[:n_val]])


def one_class_split(
    dataset: str = "fashion_mnist", normal_class: int = 0, *, data_dir: str | os.PathLike | None = None
) -> OneClassSplit:
    """Build the one-class split of PROTOCOL.md for ``normal_class``.

    Args:
        dataset: One of :data:`DATASETS` or an ImageFolder path with train and test splits.
        normal_class: The class id treated as normal.
        data_dir: TFDS data directory; defaults to TFDS's.

    Returns:
        A :class:`OneClassSplit`; the same images every run (the validation hold-out
        uses the constant :data:`HOLDOUT_SEED`, not a training seed).

    Raises:
        UserError: unknown dataset or a class id out of range.
    """
    names = class_names(dataset)
    if isinstance(normal_class, bool) or not isinstance(normal_class, (int, np.integer)) or not (
        0 <= normal_class < len(names)
    ):
        raise UserError(
            f"Expected a normal class id in 0..{len(names) - 1} ({', '.join(names)}). "
            f"Received: normal_class={normal_class!r}"
        )
    normal_class = int(normal_class)
    x, labels = load_split(dataset, "train", data_dir=data_dir)
    x_test, test_labels = load_split(dataset, "test", data_dir=data_dir)
    train_idx, val_idx = holdout_indices(labels, normal_class)
    return OneClassSplit(
        dataset=os.fspath(dataset),
        normal_class=normal_class,
        x_train=x[train_idx],
        x_val=x[val_idx],
        x_test=x_test,
        y_test=(test_labels != normal_class).astype(np.int64),
        test_labels=test_labels,
        class_names=names,
    )
