"""Input files as arrays, in numpy and Pillow only: the device and the training side read them the same way.

Images (PNG, JPEG, BMP, ... anything Pillow opens) are converted to a color mode
and, when asked, resized bilinearly with Pillow, so a bundle's preprocessing
reproduces exactly what training saw. Feature vectors come from CSV files: one
vector per row, numbers separated by commas; a first row with any non-numeric
cell is a header. Every bad row is refused with its line number.
"""

from __future__ import annotations

import csv
import math
import os
from pathlib import Path

import numpy as np

from zoo.errors import UserError


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def read_csv(path: str | os.PathLike, *, label_column: str | None = None) -> tuple[np.ndarray, np.ndarray | None, list[str]]:
    """Read a CSV of feature vectors: return (features float32 (N, F), labels int64 or None, feature names).

    Args:
        path: the CSV file.
        label_column: name of the header column holding integer class labels (None: no labels;
            the file then holds features only).

    Raises:
        UserError: a missing file or label column, no rows, a row with another number of
            columns, a non-numeric or non-finite value, or a non-integer label; naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"CSV file not found: {str(path)!r}")
    try:
        with open(path, newline="", encoding="utf-8") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is not a readable CSV text file: {exc}") from None
    if not rows:
        raise UserError(f"{path} has no rows. Expected one feature vector per line")
    header = None
    if not all(_is_number(c) for c in rows[0][1]):
        header = [c.strip() for c in rows[0][1]]
        rows = rows[1:]
    width = len(header) if header else len(rows[0][1]) if rows else 0
    label_index = _label_index(path, header, label_column)
    values, labels = [], []
    for line, row in rows:
        if len(row) != width:
            raise UserError(f"{path} line {line}: expected {width} columns (like the first row). Received: {len(row)} columns")
        parsed = []
        for j, cell in enumerate(row):
            try:
                v = float(cell)
            except ValueError:
                raise UserError(f"{path} line {line}, column {j + 1}: expected a number. Received: {cell!r}") from None
            if not math.isfinite(v):
                raise UserError(f"{path} line {line}, column {j + 1}: expected a finite number. Received: {cell!r}")
            parsed.append(v)
        if label_index is not None:
            label = parsed.pop(label_index)
            if label != int(label) or label < 0:
                raise UserError(f"{path} line {line}: the label must be a non-negative integer. Received: {row[label_index]!r}")
            labels.append(int(label))
        values.append(parsed)
    if not values:
        raise UserError(f"{path} has a header but no data rows")
    names = [h for j, h in enumerate(header) if j != label_index] if header else [f"f{j}" for j in range(len(values[0]))]
    return np.asarray(values, np.float32), (np.asarray(labels, np.int64) if label_index is not None else None), names


def _label_index(path: Path, header: list[str] | None, label_column: str | None) -> int | None:
    if label_column is None:
        return None
    if header is None:
        raise UserError(f"{path} has no header row, so it has no column {label_column!r}. Expected a first row naming the columns")
    if label_column not in header:
        raise UserError(f"{path} has no column {label_column!r}. Received columns: {header}")
    return header.index(label_column)


def read_csv_rows(path: str | os.PathLike, features: int, label_column: str = "label") -> np.ndarray:
    """Read the vectors of a CSV for a detector with ``features`` inputs (a header and a label column are skipped)."""
    x, _, names = read_csv(path)
    if x.shape[1] == features + 1 and label_column in names:
        x, _, _ = read_csv(path, label_column=label_column)
    if x.shape[1] != features:
        raise UserError(f"{path}: expected {features} values per row (the bundle's features). Received: {x.shape[1]}")
    return x


IMAGE_MODES = {"grayscale": "L", "rgb": "RGB"}


def decode_image(path: str | os.PathLike, color_mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C) in Pillow's ``color_mode`` ("L" or "RGB").

    With ``size`` = (height, width) it is resized bilinearly (Pillow) when it differs.
    Raises UserError naming the file when Pillow cannot read it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img = img.convert(color_mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except (UnidentifiedImageError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{str(path)!r} is not a readable image (PNG/JPEG/BMP...): {exc}") from None
    return arr.reshape(arr.shape[0], arr.shape[1], 1 if color_mode == "L" else 3)


def load_input_file(path: str | os.PathLike, spec: dict) -> np.ndarray:
    """Decode an input file into a bundle's layout: an image, a .npy array or a .csv of vectors.

    Images are converted to the bundle's color mode and returned as uint8 (1, H, W, C);
    they must already be H x W unless the bundle's preprocessing resizes. .npy files
    are returned as stored, loaded without pickle. CSV files (vector bundles) hold one
    vector per row.
    """
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory; expected an image, .npy or .csv file")
    if not path.is_file():
        raise UserError(f"input file not found: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        with open(path, "rb") as f:
            if f.read(6) != b"\x93NUMPY":
                raise UserError(f"{str(path)!r} is not a .npy file (it lacks NumPy's header); expected an array saved "
                                "with numpy.save")
        try:
            return np.load(path, allow_pickle=False)
        except ValueError as exc:
            raise UserError(f"{str(path)!r} is not a plain numeric .npy array ({exc})") from None
        except (OSError, EOFError) as exc:
            raise UserError(f"{str(path)!r} is not a readable .npy file: {exc}") from None
    pre = spec["preprocessing"]
    if pre["kind"] == "vector":
        return read_csv_rows(path, pre["features"])
    size = (pre["height"], pre["width"])
    arr = decode_image(path, pre["color_mode"], size if pre.get("resize") == "bilinear" else None)
    if arr.shape[:2] != size:
        raise UserError(f"{str(path)!r}: expected a {size[1]}x{size[0]} image (width x height). "
                        f"Received: {arr.shape[1]}x{arr.shape[0]}")
    return arr[None]
