"""The data layer: real Fashion-MNIST, the one-class split, offline preparation, ImageFolder, CLI."""

from __future__ import annotations

import gzip
import hashlib
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from training import data
from training import fashion_mnist_local as local
from zoo import cli
from zoo.errors import UserError

# sha256 of the validation indices of class 0 (int64 little-endian): the hold-out
# is part of the protocol and must never change silently.
CLASS0_VAL_SHA256 = "9e59dfe17bb982fa9b6d6baa41b1c5721a9325c7badc1e0e5c1f2c2187051ece"


# ---------------------------------------------------------------- real data


def test_prepared_fashion_mnist_matches_upstream(fashion_mnist_ready):
    x, y = data.load_split("fashion_mnist", "train")
    x_test, y_test = data.load_split("fashion_mnist", "test")
    assert x.shape == (60_000, 28, 28, 1) and x_test.shape == (10_000, 28, 28, 1)
    assert x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0 and x.max() == 1.0
    assert np.array_equal(np.unique(y), np.arange(10)) and np.array_equal(np.unique(y_test), np.arange(10))
    assert np.bincount(y).tolist() == [6_000] * 10
    assert np.bincount(y_test).tolist() == [1_000] * 10
    assert data.class_names("fashion_mnist")[6] == "Shirt"
    # Cached: the second call decodes nothing and returns the same read-only arrays.
    assert data.load_split("fashion_mnist", "train")[0] is x
    with pytest.raises(ValueError):
        x[0, 0, 0, 0] = 0.5


@pytest.mark.parametrize("k", [0, 6])
def test_one_class_split_follows_protocol(fashion_mnist_ready, k):
    s = data.one_class_split("fashion_mnist", k)
    x, y = data.load_split("fashion_mnist", "train")
    assert (len(s.x_train), len(s.x_val), len(s.x_test)) == (5_400, 600, 10_000)
    train_idx, val_idx = data.holdout_indices(y, k)
    assert not set(train_idx) & set(val_idx)
    assert (y[train_idx] == k).all() and (y[val_idx] == k).all()
    assert np.array_equal(s.x_train, x[train_idx]) and np.array_equal(s.x_val, x[val_idx])
    assert np.array_equal(s.y_test, (s.test_labels != k).astype(np.int64))
    assert s.y_test.sum() == 9_000 and s.class_names == data.class_names("fashion_mnist")
    again = data.one_class_split("fashion_mnist", k)
    assert np.array_equal(again.x_val, s.x_val) and np.array_equal(again.x_train, s.x_train)
    if k == 0:
        assert hashlib.sha256(val_idx.astype("<i8").tobytes()).hexdigest() == CLASS0_VAL_SHA256


def test_one_class_split_rejects_bad_class(fashion_mnist_ready):
    with pytest.raises(UserError, match=r"0\.\.9.*Received: normal_class=10"):
        data.one_class_split("fashion_mnist", 10)


def test_pipeline_yields_scaled_float_pairs(fashion_mnist_split):
    images = fashion_mnist_split.x_train[:100]
    batches = list(data.make_pipeline(images, batch_size=32, shuffle=True, seed=1))
    assert [b[0].shape[0] for b in batches] == [32, 32, 32, 4]
    x, target = batches[0]
    assert x.dtype.name == "float32" and np.array_equal(x.numpy(), target.numpy())
    assert 0.0 <= float(np.min(x)) and float(np.max(x)) <= 1.0
    again = next(iter(data.make_pipeline(images, batch_size=32, shuffle=True, seed=1)))[0]
    assert np.array_equal(again.numpy(), x.numpy())
    as_uint8 = (images * 255).round().astype(np.uint8)
    x8 = next(iter(data.make_pipeline(as_uint8, batch_size=100, shuffle=False, seed=0)))[0]
    np.testing.assert_allclose(x8.numpy(), images, atol=1e-6)
    with pytest.raises(UserError, match="batch_size=0"):
        data.make_pipeline(images, batch_size=0, shuffle=False, seed=0)


# ---------------------------------------------------------------- offline preparation


def _idx_images(images: np.ndarray) -> bytes:
    return np.array([2051, len(images), 28, 28], ">u4").tobytes() + images.tobytes()


def _idx_labels(labels: np.ndarray) -> bytes:
    return np.array([2049, len(labels)], ">u4").tobytes() + labels.astype(np.uint8).tobytes()


@pytest.fixture
def tiny_mirror(tmp_path):
    """A mirror of 20 train and 10 test images, and the verification table for it."""
    rng = np.random.default_rng(0)
    arrays = {
        "train_images": rng.integers(0, 256, (20, 28, 28), dtype=np.uint8),
        "train_labels": np.arange(20) % 10,
        "test_images": rng.integers(0, 256, (10, 28, 28), dtype=np.uint8),
        "test_labels": np.arange(10),
    }
    mirror = tmp_path / "mirror"
    mirror.mkdir()
    expected = {}
    for key, spec in local.UPSTREAM_FILES.items():
        raw = (_idx_images if key.endswith("images") else _idx_labels)(arrays[key])
        (mirror / spec.filename).write_bytes(gzip.compress(raw))
        expected[key] = local.IdxFile(spec.filename, len(raw), hashlib.sha256(raw).hexdigest())
    return mirror, expected, arrays


def test_offline_prepare_from_tiny_mirror(tmp_path, tiny_mirror):
    import tensorflow_datasets as tfds

    mirror, expected, arrays = tiny_mirror
    data_dir = tmp_path / "tfds"
    path = local.prepare(mirror, data_dir, expected=expected, quiet=True)
    assert path == data_dir / "fashion_mnist" / "3.0.1"
    # A plain TFDS load finds it: TFDS's own builder, name, version and features.
    builder = tfds.builder("fashion_mnist", data_dir=os.fspath(data_dir))
    assert type(builder) is tfds.image_classification.FashionMNIST
    assert {s: builder.info.splits[s].num_examples for s in builder.info.splits} == {"train": 20, "test": 10}
    assert builder.info.features["image"].shape == (28, 28, 1)
    x, y = data.load_split("fashion_mnist", "train", data_dir=data_dir)
    # TFDS stores examples in its own (key-hash) order; compare as sets of (image, label).
    got = sorted((img.tobytes(), int(lab)) for img, lab in zip((x * 255).round().astype(np.uint8), y))
    want = sorted((img.tobytes(), int(lab)) for img, lab in zip(arrays["train_images"][..., None], arrays["train_labels"]))
    assert got == want


def test_public_path_verifies_against_upstream(tmp_path, tiny_mirror):
    mirror, _, _ = tiny_mirror
    with pytest.raises(UserError, match=r"train-images-idx3-ubyte\.gz is truncated or altered.*47040016"):
        local.prepare(mirror, tmp_path / "tfds")
    assert not (tmp_path / "tfds" / "fashion_mnist" / "3.0.1").exists()


def test_truncated_altered_missing_files_are_named(tiny_mirror):
    mirror, expected, _ = tiny_mirror
    labels = mirror / "t10k-labels-idx1-ubyte.gz"
    good = labels.read_bytes()

    labels.write_bytes(good[: len(good) // 2])
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz is truncated"):
        local.read_mirror(mirror, expected=expected)

    raw = bytearray(gzip.decompress(good))
    raw[-1] ^= 1
    labels.write_bytes(gzip.compress(bytes(raw)))
    with pytest.raises(UserError, match=r"t10k-labels-idx1-ubyte\.gz is altered: sha256"):
        local.read_mirror(mirror, expected=expected)

    labels.unlink()
    with pytest.raises(UserError, match=r"missing: .*t10k-labels-idx1-ubyte\.gz"):
        local.read_mirror(mirror, expected=expected)


def _no_network(monkeypatch, tmp_path):
    """No mirror anywhere and no network; any download attempt fails the test."""
    monkeypatch.delenv(local.MIRROR_ENV, raising=False)
    monkeypatch.setattr(local, "DEFAULT_MIRROR", os.fspath(tmp_path / "no-mirror"))
    monkeypatch.setattr(data, "_network_reachable", lambda host, port, timeout=0: False)

    def no_download(self, *args, **kwargs):
        raise AssertionError("tried to download")

    import tensorflow_datasets as tfds

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", no_download)


def test_no_data_no_mirror_no_network_is_one_clear_error(monkeypatch, tmp_path):
    _no_network(monkeypatch, tmp_path)
    with pytest.raises(UserError) as err:
        data.load_split("fashion_mnist", "train", data_dir=tmp_path / "empty")
    msg = str(err.value)
    assert "'fashion_mnist'" in msg and "dataset-fashion-mnist" in msg
    assert "--mirror" in msg and local.MIRROR_ENV in msg and "internet" in msg
    with pytest.raises(UserError, match=r"'mnist'.*TFDS needs to download it"):
        data.load_split("mnist", "train", data_dir=tmp_path / "empty")


def test_failed_download_becomes_user_error(monkeypatch, tmp_path):
    import tensorflow_datasets as tfds

    monkeypatch.setattr(data, "_network_reachable", lambda host, port, timeout=0: True)

    def failing(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", failing)
    with pytest.raises(UserError, match=r"'cifar10'.*ConnectionError"):
        data.load_split("cifar10", "train", data_dir=tmp_path / "empty")


def test_importing_downloads_nothing_and_commands_need_no_tensorflow(tmp_path):
    code = (
        "import sys, training, training.commands\n"
        "assert 'tensorflow' not in sys.modules, 'training.commands imported TensorFlow'\n"
        "import training.data\n"
    )
    env = dict(os.environ, TFDS_DATA_DIR=os.fspath(tmp_path / "tfds"), AEZOO_FASHION_MNIST_DIR=os.fspath(tmp_path))
    subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=tmp_path, timeout=120)
    assert not (tmp_path / "tfds").exists()


# ---------------------------------------------------------------- ImageFolder


def _write_pngs(root: Path, split: str, label: str, n: int, size=(8, 8)) -> None:
    from PIL import Image

    folder = root / split / label
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.full(size, 40 * i + (100 if label == "scratch" else 0), dtype=np.uint8)
        Image.fromarray(pixels, mode="L").save(folder / f"{i}.png")


def test_image_folder(tmp_path):
    root = tmp_path / "parts"
    for split, n in (("train", 3), ("test", 2)):
        _write_pngs(root, split, "good", n)
        _write_pngs(root, split, "scratch", n)
    x, y = data.load_split(os.fspath(root), "train")
    assert x.shape == (6, 8, 8, 1) and x.dtype == np.float32 and y.dtype == np.int64
    assert 0.0 <= x.min() and x.max() <= 1.0
    assert data.class_names(os.fspath(root)) == ["good", "scratch"]
    assert data.describe(os.fspath(root))["image_shape"] == [8, 8, 1]
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    s = data.one_class_split(os.fspath(root), 0)
    assert len(s.x_train) + len(s.x_val) == 3 and s.y_test.tolist().count(1) == 2
    with pytest.raises(UserError, match=r"splits test, train. Received: split='val'"):
        data.load_split(os.fspath(root), "val")
    _write_pngs(root, "train", "good", 1, size=(9, 9))  # overwrites 0.png with another size
    with pytest.raises(UserError, match="same height, width and channels"):
        data.load_split(os.fspath(root), "train")


# ---------------------------------------------------------------- CLI


def test_cli_data_info_prints_real_counts(fashion_mnist_ready, capsys):
    assert cli.main(["data", "info", "fashion_mnist"]) == 0
    out = capsys.readouterr().out
    assert "60,000" in out and "10,000" in out and "28x28x1 uint8" in out
    assert "6=Shirt" in out and os.fspath(fashion_mnist_ready) in out


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["data", "info", "fashoin_mnist"], "expected one of fashion_mnist, mnist, cifar10"),
        (["data", "prepare", "imagenet"], "Expected one of fashion_mnist, mnist, cifar10"),
        (["data", "prepare", "mnist", "--mirror", "/tmp"], "only supported for fashion_mnist"),
    ],
)
def test_cli_bad_name_exits_2_without_traceback(argv, expected, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.startswith("aezoo data: error:")
