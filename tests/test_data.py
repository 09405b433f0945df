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
from training.inputs import named
from training import fashion_mnist_local as local
from training import cli
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


def test_pipeline_yields_float_pairs_in_a_seeded_order(fashion_mnist_split):
    from training.fit import make_pipeline

    images = fashion_mnist_split.x_train[:100]
    batches = list(make_pipeline(images, batch_size=32, shuffle=True, seed=1))
    assert [b[0].shape[0] for b in batches] == [32, 32, 32, 4]
    x, target = batches[0]
    assert x.dtype.name == "float32" and np.array_equal(x.numpy(), target.numpy())
    again = next(iter(make_pipeline(images, batch_size=32, shuffle=True, seed=1)))[0]
    assert np.array_equal(again.numpy(), x.numpy())


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


def test_decoded_splits_are_cached_and_a_bad_cache_is_rebuilt(tmp_path, tiny_mirror):
    mirror, expected, _ = tiny_mirror
    data_dir = tmp_path / "tfds"
    local.prepare(mirror, data_dir, expected=expected, quiet=True)
    named.load_images.cache_clear()
    x, y = data.load_split("fashion_mnist", "test", data_dir=data_dir)
    cache = data_dir / "aezoo_cache" / "fashion_mnist" / "3.0.1" / "test.npz"
    with np.load(cache) as f:
        np.testing.assert_array_equal(f["images"].astype(np.float32) / 255, x)
    for damage in (b"not an npz", None):
        if damage is None:  # a valid file of the wrong size (another split's)
            np.savez(cache, images=np.zeros((3, 28, 28, 1), np.uint8), labels=np.zeros(3, np.int64))
        else:
            cache.write_bytes(damage)
        named.load_images.cache_clear()
        x2, y2 = data.load_split("fashion_mnist", "test", data_dir=data_dir)
        np.testing.assert_array_equal(x2, x)
        np.testing.assert_array_equal(y2, y)
        with np.load(cache) as f:
            assert len(f["images"]) == 10  # rebuilt
    named.load_images.cache_clear()


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
    monkeypatch.setattr(named, "_network_reachable", lambda host, port, timeout=0: False)

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

    monkeypatch.setattr(named, "_network_reachable", lambda host, port, timeout=0: True)

    def failing(self, *args, **kwargs):
        raise ConnectionError("Failed to resolve 'www.cs.toronto.edu'")

    monkeypatch.setattr(tfds.core.DatasetBuilder, "download_and_prepare", failing)
    with pytest.raises(UserError, match=r"'cifar10'.*ConnectionError"):
        data.load_split("cifar10", "train", data_dir=tmp_path / "empty")


def test_importing_the_data_layer_downloads_nothing(tmp_path):
    """(That the CLI needs no TensorFlow is tests/test_architecture.py's check.)"""
    env = dict(os.environ, TFDS_DATA_DIR=os.fspath(tmp_path / "tfds"), AEZOO_FASHION_MNIST_DIR=os.fspath(tmp_path))
    subprocess.run([sys.executable, "-c", "import training.data"], check=True, env=env, cwd=tmp_path, timeout=120)
    assert not (tmp_path / "tfds").exists()


# ---------------------------------------------------------------- ImageFolder


def _write_pngs(root: Path, split: str, label: str, n: int, size=(8, 8)) -> None:
    from PIL import Image

    folder = root / split / label
    folder.mkdir(parents=True, exist_ok=True)
    for i in range(n):
        pixels = np.full(size, (40 * i + (100 if label == "scratch" else 0)) % 256, dtype=np.uint8)
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
    assert data.describe(os.fspath(root))["input_shape"] == [8, 8, 1]
    assert sorted(y.tolist()) == [0, 0, 0, 1, 1, 1]
    with pytest.raises(UserError, match=r"no 'val' split. Received splits: \['test', 'train'\]"):
        data.load_split(os.fspath(root), "val")
    _write_pngs(root, "train", "good", 1, size=(9, 9))  # overwrites 0.png with another size
    with pytest.raises(UserError, match="differ in size.*--image-size"):
        data.load_split(os.fspath(root), "train")


def _folder_as_users_have_it(root: Path, n: int = 30) -> None:
    """Mixed sizes, RGB and gray, PNG/JPEG/BMP, a hidden file: what a user's folder looks like."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, count in (("train", n), ("test", 6)):
        for label, level in (("good", 60), ("bad", 200)):
            folder = root / split / label
            folder.mkdir(parents=True, exist_ok=True)
            for i in range(count):
                size = (30 + i % 5, 24 + i % 3)
                pixels = np.clip(rng.normal(level, 10, (*size[::-1], 3)), 0, 255).astype(np.uint8)
                img = Image.fromarray(pixels, "RGB") if i % 2 else Image.fromarray(pixels[..., 0], "L")
                img.save(folder / f"{i}.{('png', 'jpg', 'bmp')[i % 3]}")
            (folder / ".DS_Store").write_bytes(b"\x00junk")


def test_a_folder_as_users_have_it_with_image_size_and_color(tmp_path):
    root = tmp_path / "mine"
    _folder_as_users_have_it(root)
    with pytest.raises(UserError, match="--image-size"):
        data.load_split(os.fspath(root), "train")
    gray = data.Source(os.fspath(root), image_size=(28, 28), color_mode="grayscale")
    x, y = data.load_split(gray, "train")
    assert x.shape == (60, 28, 28, 1) and sorted(set(y.tolist())) == [0, 1]
    rgb = data.Source(os.fspath(root), image_size=(16, 20), color_mode="rgb")
    s = data.one_class_split(rgb, data.class_names(rgb).index("good"))
    assert s.x_train.shape[1:] == (16, 20, 3) and s.has_test and s.preprocessing["resize"] == "bilinear"
    (root / "train" / "good" / "notes.txt").write_text("not an image")
    with pytest.raises(UserError, match="notes.txt"):
        data.load_split(gray, "train")


def test_small_classes_and_missing_test_splits(tmp_path):
    root = tmp_path / "tiny"
    _write_pngs(root, "train", "good", 25)
    _write_pngs(root, "train", "rare", 5)
    s = data.one_class_split(os.fspath(root), 0)
    assert not s.has_test and len(s.x_test) == 0 and len(s.x_val) == 2 and len(s.x_train) == 23
    with pytest.raises(UserError, match=r"5 training inputs; at least 20"):
        data.one_class_split(os.fspath(root), 1)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(UserError, match="not an image folder"):
        data.class_names(os.fspath(empty))


def test_feature_vectors_from_csv_and_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = np.concatenate([rng.normal(0, 1, (60, 4)), rng.normal(4, 1, (60, 4))]) * [1, 10, 100, 1000]
    y = np.repeat([0, 1], 60)
    lines = ["a,b,label,c,d"] + [f"{r[0]},{r[1]},{k},{r[2]},{r[3]}" for r, k in zip(x, y)]
    (tmp_path / "train.csv").write_text("\n".join(lines) + "\n")
    np.savez(tmp_path / "test.npz", x=x[::3], y=y[::3])
    src = data.Source(os.fspath(tmp_path / "train.csv"), test_data=os.fspath(tmp_path / "test.npz"))
    s = data.one_class_split(src, 0)
    assert s.x_train.shape[1] == 4 and s.has_test and s.preprocessing["kind"] == "vector"
    # Standardized with the normal training rows' mean and scale: the same numbers the bundle stores.
    mean, scale = np.array(s.preprocessing["mean"]), np.array(s.preprocessing["scale"])
    np.testing.assert_allclose(s.x_train.mean(axis=0), 0, atol=1e-5)
    np.testing.assert_allclose(s.x_test, (x[::3] - mean) / scale, rtol=1e-4, atol=1e-4)
    for bad, match in (("a,b\n1,2\n3\n", "line 3: expected 2 columns"), ("a,b\n1,x\n", "line 2, column 2: expected a number"),
                       ("a,b\n1,nan\n", "expected a finite number")):
        (tmp_path / "bad.csv").write_text(bad)
        with pytest.raises(UserError, match=match):
            data.load_split(os.fspath(tmp_path / "bad.csv"), "train")


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
        (["data", "info", "fashion_mnist", "--data-dir", "/nonexistent/typo"], "does not exist"),
        (["data", "prepare", "imagenet"], "Expected one of fashion_mnist, mnist, cifar10"),
        (["data", "prepare", "mnist", "--mirror", "/tmp"], "only supported for fashion_mnist"),
    ],
)
def test_cli_bad_name_exits_2_without_traceback(argv, expected, capsys):
    assert cli.main(argv) == 2
    err = capsys.readouterr().err
    assert expected in err and "Traceback" not in err and err.startswith("aezoo data: error:")


def test_one_colour_mode_for_every_split_of_a_folder(tmp_path):
    """Gray training images and a colour test image: the whole dataset is read as RGB (decided from every split's
    headers before training), not gray for train and RGB for test."""
    from PIL import Image

    rng = np.random.default_rng(0)
    for split, mode, n in (("train", "L", 6), ("test", "RGB", 2)):
        for label in ("a", "b"):
            (tmp_path / split / label).mkdir(parents=True)
            for i in range(n):
                shape = (16, 16) if mode == "L" else (16, 16, 3)
                Image.fromarray(rng.integers(0, 255, shape, dtype=np.uint8), mode).save(tmp_path / split / label / f"{i}.png")
    x_train, _ = data.load_split(str(tmp_path), "train")
    x_test, _ = data.load_split(str(tmp_path), "test")
    assert x_train.shape[-1] == x_test.shape[-1] == 3
    # A gray picture read as RGB is its gray value in every channel.
    assert np.array_equal(x_train[..., 0], x_train[..., 2])
