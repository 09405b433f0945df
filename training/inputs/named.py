"""The named datasets: TensorFlow Datasets builders, prepared offline where the data ships on this machine.

:data:`DATASETS` names each and its input kind. ``fashion_mnist`` is prepared from the
local copy of its IDX files when there is one (:mod:`training.fashion_mnist_local`:
offline, verified against the upstream checksums, the same examples TFDS would
download); the sensor sets from the files inside the aeon wheel
(:mod:`training.inputs.aeon_sets`); otherwise TFDS downloads. Without data, a local
copy or network, the error says how to get the data instead of letting TFDS retry
its downloads for minutes. Importing this module downloads and prepares nothing.
"""

from __future__ import annotations

import functools
import os
import socket
import sys
import threading
from pathlib import Path

import numpy as np

from zoo.errors import UserError
from zoo.files import atomic_path
from zoo.keras import tf

import tensorflow_datasets as tfds  # noqa: E402  (after zoo.keras: Keras 2)

from training import fashion_mnist_local  # noqa: E402
from training.inputs import aeon_sets  # noqa: E402

# Each named dataset and the input kind of its examples.
DATASETS = {"fashion_mnist": "image", "mnist": "image", "cifar10": "image",
            **{name: "series" for name in aeon_sets.BUILDERS}}

# Where TFDS downloads each dataset from: probed before a download so that no
# network fails in seconds rather than after TFDS's ten retries per file.
_DOWNLOAD_HOSTS = {
    "fashion_mnist": ("fashion-mnist.s3-website.eu-central-1.amazonaws.com", 80),
    "mnist": ("storage.googleapis.com", 443),
    "cifar10": ("www.cs.toronto.edu", 443),
}
_PROBE_TIMEOUT_S = 5.0


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
        name: One of :data:`DATASETS` (the sensor sets are prepared from the files the aeon
            package ships, offline and checksummed: ``training.inputs.aeon_sets``).
        data_dir: TFDS data directory; defaults to TFDS's.
        mirror: Directory of the Fashion-MNIST IDX files (``fashion_mnist`` only).

    Raises:
        UserError: unknown name, a bad mirror file, or no way to get the data.
    """
    if name not in DATASETS:
        raise UserError(f"Expected one of {', '.join(DATASETS)}. Received: name={name!r}")
    if name in aeon_sets.BUILDERS:
        if mirror is not None:
            raise UserError(f"A local mirror is only supported for fashion_mnist. Received: name={name!r}, mirror={mirror!r}")
        return aeon_sets.prepare(name, data_dir)
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
def load_images(name: str, split: str, data_dir: str | None) -> tuple[np.ndarray, np.ndarray]:
    """A named image set's split: float32 NHWC in [0, 1] and int64 labels, read-only and cached per process."""
    builder = prepared_builder(name, data_dir=data_dir)
    _check_split(builder, name, split)
    raw, labels = _decoded(builder, name, split)
    images = raw.astype(np.float32) / np.float32(255.0)
    # Shared by every caller in the process, so nobody may change them in place.
    images.flags.writeable = False
    labels.flags.writeable = False
    return images, labels




def class_names(name: str) -> list[str]:
    """A named dataset's class names, indexed by class id (from TFDS's metadata: no prepared data needed for TFDS's own)."""
    builder = tfds.builder(name) if name not in aeon_sets.BUILDERS else None
    return list(builder.info.features["label"].names) if builder else list(aeon_sets.BUILDERS[name].class_names)


def describe(name: str, data_dir: str | None) -> dict:
    """Where a named dataset is stored, its input shape, split sizes and classes (prepared first)."""
    builder = prepared_builder(name, data_dir=data_dir)
    features = builder.info.features
    inputs = features["image"] if "image" in features else features["series"]
    return {"name": name, "version": str(builder.info.version), "location": os.fspath(builder.data_path),
            "input_shape": list(inputs.shape), "dtype": np.dtype(inputs.np_dtype).name,
            "splits": {s: int(builder.info.splits[s].num_examples) for s in _split_names(builder)},
            "class_names": class_names(name)}


def load_series(name: str, split: str, data_dir: str | None) -> tuple[list[np.ndarray], np.ndarray]:
    """A named sensor set's split: the series (float32 [T, C]) and their labels (class ids, or for a recording its
    per-sample 0/1 anomaly labels, one array per recording)."""
    builder = prepared_builder(name, data_dir=data_dir)
    _check_split(builder, name, split)
    examples = list(tfds.as_numpy(builder.as_dataset(split=split, shuffle_files=False)))
    if "label" in builder.info.features:
        return [e["series"] for e in examples], np.asarray([e["label"] for e in examples], np.int64)
    return [e["series"] for e in examples], np.stack([e["is_anomaly"] for e in examples])
