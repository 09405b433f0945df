"""The image input kind on the training side: named TFDS image sets and a user's image folders.

Image folders are in TFDS's ImageFolder layout (``root/<split>/<label>/<image files>``),
read with Pillow (``edge.inputs.decode_image``, the device's own decoder): any format
Pillow opens, hidden files skipped, other files refused by name; ``image_size``
resizes and ``color_mode`` converts, exactly as an exported bundle will. Pixels are
float32 in [0, 1]; the bundle records size and color mode, the device divides uint8 by 255.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np

from training.inputs import named
from training.inputs.base import InputUnit, OneClassSplit, Source, refuse_series_options, register_input, split_arrays
from zoo.errors import UserError

COLOR_MODES = ("grayscale", "rgb")


@register_input
class ImageUnit(InputUnit):
    """Named image sets (fashion_mnist, mnist, cifar10) and image folders."""

    name = "image"

    def claims(self, source: Source) -> bool:
        return named.DATASETS.get(source.name) == "image" or source.path.is_dir()

    def check(self, source: Source) -> None:
        if source.name in named.DATASETS:
            if source.image_size is not None or source.color_mode is not None:
                raise UserError(f"--image-size, --grayscale and --rgb apply to image folders; {source.name} is used as TFDS "
                                "stores it")
        elif not source.path.is_dir():
            raise UserError(f"Unknown dataset {source.name!r}: expected one of {', '.join(named.DATASETS)}, the path of an "
                            "existing image folder (root/<split>/<label>/*.png), a .csv/.npz/.npy file of feature vectors, "
                            f"a .ts series set or a recording (.csv with a timestamp column). Received: {source.name!r}")
        _check_image_options(source)
        if source.test_data is not None:
            raise UserError(f"--test-data goes with a file of vectors or series. Received: dataset={source.name!r}")
        refuse_series_options(source)

    def load_split(self, source: Source, split: str) -> tuple[np.ndarray, np.ndarray]:
        if source.name in named.DATASETS:
            return named.load_images(source.name, split, source.data_dir)
        return _load_folder(source, split)

    def has_test(self, source: Source) -> bool:
        return source.name in named.DATASETS or (source.path / "test").is_dir()

    def class_names(self, source: Source) -> list[str]:
        if source.name in named.DATASETS:
            return named.class_names(source.name)
        return _folder_labels(source)

    def describe(self, source: Source) -> dict:
        if source.name in named.DATASETS:
            return named.describe(source.name, source.data_dir)
        splits = [p.name for p in sorted(source.path.iterdir()) if p.is_dir() and _visible(p)]
        arrays = {s: self.load_split(source, s) for s in splits}
        first = next(iter(arrays.values()))[0]
        return {"name": source.name, "version": "folder", "location": str(source.path.resolve()),
                "input_shape": list(first.shape[1:]), "dtype": "uint8",
                "splits": {s: int(len(a[0])) for s, a in arrays.items()}, "class_names": self.class_names(source)}

    def one_class_split(self, source: Source, normal_class: int) -> OneClassSplit:
        def fit(x_train: np.ndarray):
            record = {"kind": "image", "resize": "bilinear" if source.image_size else "none",
                      "color_mode": "L" if x_train.shape[-1] == 1 else "RGB"}
            return record, lambda a: a

        return split_arrays(self, source, normal_class, fit)

    def bundle_preprocessing(self, record: dict, input_shape: list[int]) -> dict:
        if len(input_shape) != 3 or input_shape[-1] not in (1, 3):
            raise UserError(f"a detector bundle needs images with 1 (grayscale) or 3 (RGB) channels. Received: "
                            f"input shape {input_shape}")
        h, w, c = input_shape
        return {"kind": "image", "layout": "NHWC", "height": h, "width": w, "channels": c,
                "color_mode": "L" if c == 1 else "RGB", "pixel_range": [0.0, 1.0], "uint8_divisor": 255.0,
                "resize": record.get("resize", "none")}


def _check_image_options(source: Source) -> None:
    if source.color_mode is not None and source.color_mode not in COLOR_MODES:
        raise UserError(f"color_mode must be one of {', '.join(COLOR_MODES)}. Received: color_mode={source.color_mode!r}")
    if source.image_size is not None:
        size = source.image_size
        if not (isinstance(size, (tuple, list)) and len(size) == 2 and all(isinstance(v, int) and not isinstance(v, bool)
                                                                         and 8 <= v <= 1024 for v in size)):
            raise UserError(f"image_size must be (height, width), integers in 8..1024. Received: image_size={size!r}")


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


def _split_files(source: Source, split: str) -> tuple[tuple[Path, int], ...]:
    root = source.path / split
    labels = _folder_labels(source)
    return tuple((f, i) for i, label in enumerate(labels) if (root / label).is_dir()
                 for f in sorted((root / label).iterdir()) if f.is_file() and _visible(f))


def _load_folder(source: Source, split: str) -> tuple[np.ndarray, np.ndarray]:
    root = source.path / split
    if not root.is_dir():
        have = sorted(p.name for p in source.path.iterdir() if p.is_dir() and _visible(p))
        raise UserError(f"{source.path} has no {split!r} split. Received splits: {have}")
    files = _split_files(source, split)
    if not files:
        raise UserError(f"{root} has no image files in its class folders {_folder_labels(source)}")
    # One colour mode for the whole dataset, decided from every split before any training: a test split of gray
    # images beside colour training images is read as RGB too.
    from edge.inputs import IMAGE_MODES

    splits = [p.name for p in source.path.iterdir() if p.is_dir() and _visible(p)]
    mode = IMAGE_MODES[source.color_mode] if source.color_mode else \
        _folder_mode(tuple(f for s in sorted(splits) for f in _split_files(source, s)))
    # The files' sizes and times are part of the cache key: an edited folder is read again.
    return _decode_folder(source, root, files, mode, tuple((f.stat().st_size, f.stat().st_mtime_ns) for f, _ in files))


@functools.lru_cache(maxsize=16)
def _decode_folder(source: Source, root: Path, files: tuple, mode: str, stamps: tuple) -> tuple[np.ndarray, np.ndarray]:
    from edge.inputs import decode_image

    del stamps  # only the cache key
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
                if img.mode not in ("1", "L", "LA", "I", "I;16", "I;16L", "I;16B", "F"):
                    return "RGB"
        except (UnidentifiedImageError, OSError) as exc:
            raise UserError(f"{str(f)!r} is not a readable image (PNG/JPEG/BMP...): {exc}. Remove it or move it "
                            "out of the class folders (hidden files, names starting with '.', are skipped).") from None
    return "L"
