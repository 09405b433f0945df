"""Prepare TFDS's ``fashion_mnist`` from a local copy of the four IDX files.

TFDS normally downloads Fashion-MNIST from Zalando's S3 bucket. On a machine
without internet the same images are available from Debian's
``dataset-fashion-mnist`` package (``/usr/share/datasets/fashion-mnist/``), but
Debian re-gzipped them, so TFDS's checksums of the ``.gz`` bytes do not match.
This module verifies the *decompressed* IDX content against the upstream sizes
and sha256 instead, and writes the dataset with a builder that subclasses TFDS's
own ``FashionMNIST``: same name, version, features and splits, only the source
of the bytes differs. Afterwards a plain ``tfds.load("fashion_mnist")`` finds it.

Where the files come from, first match wins: the ``mirror`` argument (CLI
``--mirror DIR``), the environment variable ``AEZOO_FASHION_MNIST_DIR``, then
:data:`DEFAULT_MIRROR`.
"""

from __future__ import annotations

import contextlib
import fcntl
import gzip
import hashlib
import os
import sys
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Mapping

import numpy as np

from zoo.errors import UserError
from zoo.keras import tf  # noqa: F401  (TensorFlow before tensorflow_datasets, with Keras 2)

import tensorflow_datasets as tfds  # noqa: E402

DEFAULT_MIRROR = "/usr/share/datasets/fashion-mnist"
MIRROR_ENV = "AEZOO_FASHION_MNIST_DIR"


@dataclass(frozen=True)
class IdxFile:
    """One gzipped IDX file of the mirror and what its decompressed bytes must be."""

    filename: str
    size: int
    sha256: str


# Sizes and sha256 of the decompressed upstream IDX files (identical in Debian's
# re-gzipped copy; only the .gz bytes differ from what TFDS downloads).
UPSTREAM_FILES: dict[str, IdxFile] = {
    "train_images": IdxFile(
        "train-images-idx3-ubyte.gz", 47_040_016,
        "c59f468a2f672dc815687fe0f83887768d799fd8a3f3276145d20f83aa44d888"),
    "train_labels": IdxFile(
        "train-labels-idx1-ubyte.gz", 60_008,
        "bad3541b69d912435c50bb6ba87bec294ff4f6a2e1246121d8633921760443d9"),
    "test_images": IdxFile(
        "t10k-images-idx3-ubyte.gz", 7_840_016,
        "5b4141f0afbad91edebe8549f8fcffe087ea10ca49f1dbef5c9a5cd8815ce37b"),
    "test_labels": IdxFile(
        "t10k-labels-idx1-ubyte.gz", 10_008,
        "0402a96d92fd2663957122ceb108a494c5af83dab82d92729df917d7dec38c34"),
}

_IMAGES_MAGIC = 2051
_LABELS_MAGIC = 2049


def mirror_dir(mirror: str | os.PathLike | None = None) -> Path:
    """Return the directory to read the IDX files from.

    Args:
        mirror: An explicit directory (CLI ``--mirror``). Defaults to
            ``$AEZOO_FASHION_MNIST_DIR``, then :data:`DEFAULT_MIRROR`.
    """
    if mirror is not None:
        return Path(mirror).expanduser()
    return Path(os.environ.get(MIRROR_ENV) or DEFAULT_MIRROR).expanduser()


def mirror_explicit(mirror: str | os.PathLike | None = None) -> bool:
    """Return True when the user chose the mirror (argument or environment variable)."""
    return mirror is not None or bool(os.environ.get(MIRROR_ENV))


def mirror_present(mirror: str | os.PathLike | None = None) -> bool:
    """Return True when the mirror directory holds at least one of the four files.

    A partly present mirror counts as present, so that preparing from it reports
    the missing file instead of silently falling back to a download.
    """
    root = mirror_dir(mirror)
    return any((root / f.filename).is_file() for f in UPSTREAM_FILES.values())


def read_mirror(
    mirror: str | os.PathLike | None = None,
    *,
    expected: Mapping[str, IdxFile] = UPSTREAM_FILES,
) -> dict[str, np.ndarray]:
    """Read and verify the four IDX files of a mirror.

    Args:
        mirror: Directory holding the four ``.gz`` files (see :func:`mirror_dir`).
        expected: What each decompressed file must be. Defaults to the upstream
            Fashion-MNIST files; tests pass a table for a tiny mirror of their own.

    Returns:
        ``train_images``/``test_images`` as uint8 ``(N, 28, 28, 1)`` and
        ``train_labels``/``test_labels`` as int64 ``(N,)``.

    Raises:
        UserError: naming the file that is missing, truncated, altered or not IDX.
    """
    root = mirror_dir(mirror)
    if not root.is_dir():
        raise UserError(
            f"The Fashion-MNIST mirror directory {root} does not exist. Install Debian's dataset-fashion-mnist "
            f"package, or point --mirror / ${MIRROR_ENV} at a directory with the four IDX .gz files."
        )
    arrays = {key: _read_idx(root / spec.filename, spec) for key, spec in expected.items()}
    for split in ("train", "test"):
        n_images, n_labels = len(arrays[f"{split}_images"]), len(arrays[f"{split}_labels"])
        if n_images != n_labels:
            raise UserError(
                f"The Fashion-MNIST {split} files in {root} disagree: {n_images} images but {n_labels} labels."
            )
    return arrays


def _read_idx(path: Path, spec: IdxFile) -> np.ndarray:
    hint = (
        f"Reinstall Debian's dataset-fashion-mnist package, or point --mirror / ${MIRROR_ENV} "
        "at a directory with the four original Fashion-MNIST IDX .gz files."
    )
    if not path.is_file():
        raise UserError(f"Fashion-MNIST file missing: {path} does not exist. {hint}")
    try:
        with gzip.open(path, "rb") as f:
            data = f.read()
    except (EOFError, gzip.BadGzipFile, zlib.error, OSError) as exc:
        raise UserError(
            f"Fashion-MNIST file {path} is truncated or not a gzip file ({exc}). {hint}"
        ) from None
    if len(data) != spec.size:
        raise UserError(
            f"Fashion-MNIST file {path} is truncated or altered: it decompresses to {len(data)} bytes, "
            f"expected {spec.size}. {hint}"
        )
    digest = hashlib.sha256(data).hexdigest()
    if digest != spec.sha256:
        raise UserError(
            f"Fashion-MNIST file {path} is altered: sha256 of its decompressed content is {digest}, "
            f"expected {spec.sha256}. {hint}"
        )
    magic, count = np.frombuffer(data[:8], dtype=">u4")
    if magic == _IMAGES_MAGIC:
        rows, cols = np.frombuffer(data[8:16], dtype=">u4")
        return np.frombuffer(data, dtype=np.uint8, offset=16).reshape(count, rows, cols, 1)
    if magic == _LABELS_MAGIC:
        return np.frombuffer(data, dtype=np.uint8, offset=8).astype(np.int64)
    raise UserError(f"Fashion-MNIST file {path} is not an IDX image or label file (magic number {magic}).")


class LocalFashionMNIST(tfds.image_classification.FashionMNIST, skip_registration=True):
    """TFDS's ``fashion_mnist`` builder reading a verified local mirror instead of downloading.

    Everything TFDS records (name, version, features, splits, example keys) is
    inherited, so the prepared directory is the one ``tfds.load("fashion_mnist")``
    reads. ``skip_registration`` keeps TFDS's own builder registered under the name.
    """

    name = "fashion_mnist"
    # Nothing is downloaded, so there are no URL checksums to look up; TFDS would
    # otherwise search for them beside this module's package, which fails when the
    # package is imported as a namespace package (some editable installs).
    url_infos = None

    def __init__(
        self,
        *,
        mirror: str | os.PathLike | None = None,
        expected: Mapping[str, IdxFile] = UPSTREAM_FILES,
        **kwargs,
    ):
        """Create the builder.

        Args:
            mirror: Directory with the four IDX ``.gz`` files (see :func:`mirror_dir`).
            expected: Verification table (see :func:`read_mirror`).
            **kwargs: Forwarded to the TFDS builder (``data_dir``).
        """
        self._mirror = mirror
        self._expected = dict(expected)
        super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
        arrays = read_mirror(self._mirror, expected=self._expected)
        return [
            tfds.core.SplitGenerator(
                name=split,
                gen_kwargs=dict(images=arrays[f"{split}_images"], labels=arrays[f"{split}_labels"]),
            )
            for split in (tfds.Split.TRAIN, tfds.Split.TEST)
        ]

    def _generate_examples(self, images: np.ndarray, labels: np.ndarray):
        # The index is the key, as in TFDS's MNIST builder, so the on-disk order
        # (TFDS shuffles by key) is the same as a downloaded copy's.
        for index, (image, label) in enumerate(zip(images, labels)):
            yield index, {"image": image, "label": label}


@contextlib.contextmanager
def _prepare_lock(data_dir_root: Path) -> Iterator[None]:
    # Several processes (parallel test runs, developers sharing ~/tensorflow_datasets)
    # may prepare at once; TFDS's rename of its incomplete dir is not safe against that.
    data_dir_root.mkdir(parents=True, exist_ok=True)
    with open(data_dir_root / ".fashion_mnist.aezoo.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def prepare(
    mirror: str | os.PathLike | None = None,
    data_dir: str | os.PathLike | None = None,
    *,
    expected: Mapping[str, IdxFile] = UPSTREAM_FILES,
    quiet: bool = False,
) -> Path:
    """Write TFDS's ``fashion_mnist`` from a local mirror, unless it is prepared already.

    Args:
        mirror: Directory with the four IDX ``.gz`` files (see :func:`mirror_dir`).
        data_dir: TFDS data directory. Defaults to TFDS's (``$TFDS_DATA_DIR`` or
            ``~/tensorflow_datasets``).
        expected: Verification table; defaults to the upstream files. Only tests
            pass their own, for tiny mirrors.
        quiet: Do not print the one line announcing the preparation.

    Returns:
        The prepared dataset directory (``<data_dir>/fashion_mnist/<version>``).

    Raises:
        UserError: a mirror file is missing, truncated or altered.
    """
    data_dir = os.fspath(data_dir) if data_dir is not None else None
    builder = LocalFashionMNIST(mirror=mirror, expected=expected, data_dir=data_dir)
    with _prepare_lock(Path(builder.data_dir_root)):
        if not builder.is_prepared():
            if not quiet:
                print(
                    f"aezoo: preparing TFDS fashion_mnist from the local copy in {mirror_dir(mirror)} "
                    f"into {builder.data_path} (once)",
                    file=sys.stderr,
                )
            builder.download_and_prepare()
    return Path(builder.data_path)
