"""The input kinds on the device (numpy and Pillow only), and the file readers both sides share.

An input kind is one unit here and one in ``training.inputs``: the training side
loads, splits and fits the preprocessing on normal training data; this side checks
the bundle's record of it (``check_spec``), validates inputs and applies it
(``prepare``), undoes it (``to_device``) and reads input files (``read_file``).
A bundle names its kind in ``preprocessing.kind``; :data:`INPUT_KINDS` maps each
name to its unit, registered with :func:`input_kind`:

- ``image``: NHWC pixels in [0, 1] (uint8 / 255), resized and converted by Pillow;
- ``vector``: feature vectors, standardized with the normal training rows' statistics;
- ``series``: windows (window, channels) of sensor recordings, each channel
  standardized with the normal training recording's statistics; a recording is cut
  into windows every ``hop`` samples (:func:`sliding_windows`).

Images (PNG, JPEG, BMP, ... anything Pillow opens) are converted to a color mode
and, when asked, resized bilinearly with Pillow, so a bundle's preprocessing
reproduces exactly what training saw. Feature vectors come from CSV files: one
vector per row. The header rule (:func:`header_of`) is the same for vectors and
recordings: the first row is a header when any of its cells is not a number, and
the commands say which they found (:func:`describe_csv`). Recordings come
from CSV files in the TimeEval layout (``timestamp``, channel columns, optional
``is_anomaly``) or ``.npy`` arrays [T, C]. Every bad row is refused with its line number.
"""

from __future__ import annotations

import csv
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from edge.schema import fail, get, integer, number, numbers, one_of
from zoo.errors import UserError


FLOAT32_MAX = float(np.finfo(np.float32).max)


def parse_number(text: str) -> float:
    """The float in a CSV cell; ValueError when it is none. Python's own "1_000" is refused: no CSV writer means it."""
    if "_" in text:
        raise ValueError(text)
    return float(text)


def is_number(text: str) -> bool:
    """True when ``text`` parses as a number (:func:`parse_number`)."""
    try:
        parse_number(text)
    except ValueError:
        return False
    return True


def in_float32(v: float) -> bool:
    """True for a finite value that float32 (what the model sees) holds: beyond its range it would become inf."""
    return math.isfinite(v) and abs(v) <= FLOAT32_MAX


def _csv_rows(path: Path, expected: str) -> list[tuple[int, list[str]]]:
    """The non-blank rows of a CSV file with their line numbers (a UTF-8 BOM is dropped); none is an error."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [(i, r) for i, r in enumerate(csv.reader(f), 1) if r and any(c.strip() for c in r)]
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UserError(f"{path} is not a readable CSV text file: {exc}") from None
    if not rows:
        raise UserError(f"{path} has no rows. Expected {expected}")
    return rows


def header_of(rows: list[tuple[int, list[str]]]) -> list[str] | None:
    """The header of a CSV's rows by rule: the first row, when any of its cells is not a number; else None.

    A header made only of numbers cannot be told from data by any rule, so the
    commands state what they took (:func:`describe_csv`) rather than guess.
    """
    first = rows[0][1]
    return None if all(is_number(c) for c in first) else [c.strip() for c in first]


def describe_csv(path: str | os.PathLike) -> str:
    """One line saying how a CSV's first row was read: as the header (naming it) or as data."""
    rows = _csv_rows(Path(path), "one row per line")
    header = header_of(rows)
    if header is None:
        return f"{path}: no header (every cell of line {rows[0][0]} is a number): all {len(rows)} rows are data"
    shown = ", ".join(header[:8]) + (", ..." if len(header) > 8 else "")
    return f"{path}: line {rows[0][0]} is the header ({shown}); {len(rows) - 1} data rows"


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
    rows = _csv_rows(path, "one feature vector per line")
    header = header_of(rows)
    rows = rows[1:] if header else rows
    width = len(header) if header else len(rows[0][1]) if rows else 0
    label_index = _label_index(path, header, label_column)
    values, labels = [], []
    for line, row in rows:
        if len(row) != width:
            raise UserError(f"{path} line {line}: expected {width} columns (like the first row). Received: {len(row)} columns")
        parsed = []
        for j, cell in enumerate(row):
            try:
                v = parse_number(cell)
            except ValueError:
                raise UserError(f"{path} line {line}, column {j + 1}: expected a number. Received: {cell!r}") from None
            if not in_float32(v):
                raise UserError(f"{path} line {line}, column {j + 1}: expected a finite number within float32's range "
                                f"(±3.4e38). Received: {cell!r}")
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


SIXTEEN_BIT_MODES = ("I;16", "I;16L", "I;16B", "I")  # how Pillow opens 16-bit grayscale PNGs


# The largest image decoded (about 8,000 x 5,000): Pillow's own guard only warns below twice its default.
MAX_IMAGE_PIXELS = 40_000_000


def decode_image(path: str | os.PathLike, color_mode: str, size: tuple[int, int] | None = None) -> np.ndarray:
    """Decode an image file to uint8 (H, W, C) in Pillow's ``color_mode`` ("L" or "RGB").

    With ``size`` = (height, width) it is resized bilinearly (Pillow) when it differs.
    Raises UserError naming the file when Pillow cannot read it.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:  # lazy: only the header is read here
            if img.width * img.height > MAX_IMAGE_PIXELS:
                raise UserError(f"{str(path)!r} declares {img.width} x {img.height} pixels, more than the "
                                f"{MAX_IMAGE_PIXELS:,} an input may have; resize it first")
            if img.mode in SIXTEEN_BIT_MODES:
                # Pillow's own conversion to "L" clips at 255; a 16-bit picture is scaled to 8 bits instead.
                wide = np.asarray(img, dtype=np.float64)
                img = Image.fromarray(np.clip(np.rint(wide * (255.0 / 65535.0)), 0, 255).astype(np.uint8), "L")
            img = img.convert(color_mode)
            if size is not None and img.size != (size[1], size[0]):
                img = img.resize((size[1], size[0]), Image.BILINEAR)
            arr = np.asarray(img, dtype=np.uint8)
    except UserError:
        raise
    except (UnidentifiedImageError, Image.DecompressionBombError, OSError, ValueError, SyntaxError) as exc:
        raise UserError(f"{str(path)!r} is not a readable image (PNG/JPEG/BMP...): {exc}") from None
    return arr.reshape(arr.shape[0], arr.shape[1], 1 if color_mode == "L" else 3)


# -- recordings ----------------------------------------------------------------------------------------------

TIMESTAMP_COLUMN = "timestamp"
ANOMALY_COLUMN = "is_anomaly"


@dataclass(frozen=True)
class Recording:
    """A sensor recording: ``values`` float32 [T, C], ``labels`` int64 [T] of 0/1 (None: unlabelled), channel names
    (``named``: from the file's header, else ch0, ch1, ...)."""

    values: np.ndarray
    labels: np.ndarray | None
    channels: list[str]
    named: bool = False


def read_recording(path: str | os.PathLike) -> Recording:
    """Read a recording: a CSV in the TimeEval layout or a ``.npy`` array [T, C] (or [T] for one channel).

    CSV: a header row naming the columns; a ``timestamp`` column (anywhere, any text:
    it is not parsed) and an ``is_anomaly`` column of 0/1 are optional; every other
    column is a channel of numbers. A file without a header holds channels only.

    Raises:
        UserError: a missing file, no rows, another number of columns, an empty,
            non-numeric or non-finite cell, or a label other than 0/1; naming the line.
    """
    path = Path(path)
    if not path.is_file():
        raise UserError(f"recording file not found: {str(path)!r}")
    if path.suffix.lower() == ".npy":
        return _npy_recording(path)
    rows = _csv_rows(path, "a header (timestamp, channels..., is_anomaly) and one row per sample")
    header = header_of(rows)
    rows = rows[1:] if header else rows
    names = header if header is not None else [f"ch{j}" for j in range(len(rows[0][1]))] if rows else []
    lower = [n.lower() for n in names]
    t_col = lower.index(TIMESTAMP_COLUMN) if TIMESTAMP_COLUMN in lower else None
    y_col = lower.index(ANOMALY_COLUMN) if ANOMALY_COLUMN in lower else None
    channels = [j for j in range(len(names)) if j not in (t_col, y_col)]
    if not channels:
        raise UserError(f"{path} has no channel columns: expected numeric columns besides {TIMESTAMP_COLUMN!r} and "
                        f"{ANOMALY_COLUMN!r}. Received columns: {names}")
    values = np.empty((len(rows), len(channels)), np.float32)
    labels = np.empty(len(rows), np.int64) if y_col is not None else None
    for i, (line, row) in enumerate(rows):
        if len(row) != len(names):
            raise UserError(f"{path} line {line}: expected {len(names)} columns ({', '.join(names)}). Received: {len(row)} columns")
        for k, j in enumerate(channels):
            values[i, k] = cell_value(f"{path} line {line}", names[j], row[j])
        if labels is not None:
            label = row[y_col].strip()
            if label not in ("0", "1", "0.0", "1.0"):
                raise UserError(f"{path} line {line}: {names[y_col]} must be 0 or 1. Received: {row[y_col]!r}")
            labels[i] = int(float(label))
    if not len(values):
        raise UserError(f"{path} has a header but no data rows")
    return Recording(values, labels, [names[j] for j in channels], named=header is not None)


def cell_value(where: str, column: str, text: str) -> float:
    """The number in one recording cell; ``where`` ("FILE line N") and ``column`` name it in the error."""
    try:
        v = parse_number(text)
    except ValueError:
        what = "an empty cell" if not text.strip() else repr(text)
        raise UserError(f"{where}, column {column!r}: expected a number. Received: {what}") from None
    if not in_float32(v):
        raise UserError(f"{where}, column {column!r}: expected a finite number. Received: {text!r}")
    return v


def _npy_recording(path: Path) -> Recording:
    x = _load_npy(path)
    if x.ndim == 1:
        x = x[:, None]
    if x.ndim != 2 or x.dtype.kind not in "fiu" or not len(x):
        raise UserError(f"{path}: expected a numeric recording shaped (samples, channels). Received: shape={x.shape}, "
                        f"dtype={x.dtype}")
    _check_finite(x, f"{path}: sample")
    return Recording(x.astype(np.float32), None, [f"ch{j}" for j in range(x.shape[1])])


def _load_npy(path: Path) -> np.ndarray:
    with open(path, "rb") as f:
        if f.read(6) != b"\x93NUMPY":
            raise UserError(f"{str(path)!r} is not a .npy file (it lacks NumPy's header); expected an array saved "
                            "with numpy.save")
        f.seek(0)
        try:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
        except (ValueError, OSError, EOFError) as exc:
            raise UserError(f"{str(path)!r} has no readable .npy header: {exc}") from None
        claimed = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize if not dtype.hasobject else 0
        held = path.stat().st_size - f.tell()
        if claimed > held:  # a header that claims more than the file holds: never allocated
            raise UserError(f"{str(path)!r} is truncated or its header is wrong: it claims an array of shape {shape} "
                            f"({claimed:,} bytes), the file holds {held:,} after its header")
    try:
        return np.load(path, allow_pickle=False)
    except ValueError as exc:
        raise UserError(f"{str(path)!r} is not a plain numeric .npy array ({exc})") from None
    except (OSError, EOFError) as exc:
        raise UserError(f"{str(path)!r} is not a readable .npy file: {exc}") from None


def _check_finite(x: np.ndarray, what: str) -> None:
    """Refuse NaN, infinities and values beyond float32 (they would become inf in the model), naming the first row."""
    big = np.finfo(np.float32).max
    bad = ~(np.abs(x.astype(np.float64)) <= big).reshape(len(x), -1).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise UserError(f"{what} {int(rows[0])} holds NaN, infinite or out-of-range values ({rows.size} such rows)")


def sliding_windows(x: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows [N, window, C] as a read-only view, start indices [N]) of a recording ``x`` [T, C], every ``hop`` samples.

    The first window starts at sample 0, the last at the last multiple of ``hop`` that
    still fits; a recording shorter than ``window`` is refused.
    """
    if len(x) < window:
        raise UserError(f"the recording has {len(x)} samples, fewer than one window ({window}). Expected at least {window}")
    view = np.lib.stride_tricks.sliding_window_view(x, window, axis=0)[::hop]  # [N, C, window]
    return view.transpose(0, 2, 1), np.arange(0, len(x) - window + 1, hop)


def point_scores(scores: np.ndarray, starts: np.ndarray, window: int, length: int) -> np.ndarray:
    """Each sample's score: the largest score of the windows that cover it.

    Samples after the last window's end (fewer than a hop) take the last window's score.
    """
    out = np.full(length, -np.inf)
    for s, v in zip(starts, scores):
        seg = out[s : s + window]
        np.maximum(seg, v, out=seg)
    end = int(starts[-1]) + window
    out[end:] = scores[-1]
    return out


AGGREGATES = ("mean", "max")


def aggregate(scores: np.ndarray, groups: np.ndarray, how: str) -> np.ndarray:
    """One score per group (series) of window ``scores``: their mean or maximum; groups are 0..G-1, each non-empty."""
    n = int(groups.max()) + 1 if len(groups) else 0
    if how == "max":
        out = np.full(n, -np.inf)
        np.maximum.at(out, groups, scores)
        return out
    return np.bincount(groups, weights=scores, minlength=n) / np.bincount(groups, minlength=n)


# -- the input kinds --------------------------------------------------------------------------------------------

INPUT_KINDS: dict[str, type["InputKind"]] = {}


def input_kind(cls: type["InputKind"]) -> type["InputKind"]:
    """Register an input kind's device unit under its ``name``."""
    INPUT_KINDS[cls.name] = cls
    return cls


class InputKind:
    """What the device does with one kind of input; built from a checked spec (detector.json)."""

    name: ClassVar[str] = ""
    # True when prepared inputs lie in [0, 1], so an int8 input tensor calibrated on them never needs clipping.
    bounded: ClassVar[bool] = False

    def __init__(self, spec: dict):
        self.pre = spec["preprocessing"]
        self.shape = tuple(spec["input"]["shape"])

    @staticmethod
    def check_spec(spec: dict, where: str) -> None:
        """Raise UserError unless ``spec["preprocessing"]`` is a valid record of this kind for ``spec["input"]``."""
        raise NotImplementedError

    def prepare(self, x: Any) -> np.ndarray:
        """``x`` (device inputs, one or a batch) as the float32 batch the model takes, or a UserError."""
        raise NotImplementedError

    def to_device(self, x: np.ndarray) -> np.ndarray:
        """Model inputs back to what a device passes in (the inverse of :meth:`prepare`)."""
        return x

    def read_file(self, path: Path) -> np.ndarray:
        """An input file as the array :meth:`prepare` takes."""
        raise NotImplementedError

    def file_inputs(self, x: np.ndarray, path: str) -> tuple[np.ndarray, list[str]]:
        """(prepared inputs, one name each) of an array read from a file: its inputs, ``path[i]`` when there are several."""
        x = self.prepare(x)
        return x, [path] if len(x) == 1 else [f"{path}[{i}]" for i in range(len(x))]

    def c_macros(self, macro: str) -> list[str]:
        """#define lines describing the input layout for a microcontroller build."""
        return [f"#define {macro}_INPUT_{i} {int(v)}" for i, v in enumerate(self.shape)]

    def c_files(self, spec: dict) -> dict[str, str]:
        """Device C files a microcontroller export writes beside the model array (by file name); none by default."""
        return {}

    def _batch(self, x: Any, shapes: str) -> np.ndarray:
        """``x`` as an array batch of ``self.shape`` (one input becomes a batch of one), else an error quoting ``shapes``."""
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        if x.shape[1:] == self.shape and x.ndim == len(self.shape) + 1:
            return x
        if x.shape == self.shape:
            return x[None]
        raise UserError(f"expected {shapes}. Received: shape={x.shape}")


def _standardizer(pre: dict) -> tuple[np.ndarray, np.ndarray]:
    return np.asarray(pre["mean"], np.float32), (1.0 / np.asarray(pre["scale"], np.float32)).astype(np.float32)


_ONE_F32 = int(np.float32(1.0).view(np.uint32))


def _finite_float(x: np.ndarray) -> np.ndarray:
    if x.dtype.kind not in "fiu":
        raise UserError(f"expected numeric values. Received: dtype={x.dtype}")
    if x.size and not np.isfinite(x).all():
        bad = np.flatnonzero(~np.isfinite(x.reshape(len(x), -1)).all(axis=1))
        raise UserError(f"inputs contain NaN or infinite values (indices {bad[:10].tolist()}). Received: {len(x)} inputs")
    if x.size and x.dtype.itemsize > 4 and np.abs(x).max() > FLOAT32_MAX:  # float64 values float32 turns into inf
        bad = np.flatnonzero((np.abs(x.reshape(len(x), -1)) > FLOAT32_MAX).any(axis=1))
        raise UserError(f"inputs hold values beyond float32's range, ±3.4e38 (indices {bad[:10].tolist()}). "
                        f"Received: {len(x)} inputs")
    return x


@input_kind
class ImageInput(InputKind):
    """Images NHWC: float pixels in [0, 1] or uint8 (divided by the bundle's ``uint8_divisor``)."""

    name = "image"
    bounded = True
    COLOR_CHANNELS: ClassVar[dict] = {"L": 1, "RGB": 3}
    RESIZE_MODES: ClassVar[tuple] = ("none", "bilinear")

    @staticmethod
    def check_spec(spec: dict, where: str) -> None:
        h = get(spec, where, "preprocessing.height", lambda v: integer(v, 1), "a positive integer")
        w = get(spec, where, "preprocessing.width", lambda v: integer(v, 1), "a positive integer")
        channels = ImageInput.COLOR_CHANNELS
        mode = get(spec, where, "preprocessing.color_mode", lambda v: isinstance(v, str) and v in channels, "'L' or 'RGB'")
        c = get(spec, where, "preprocessing.channels", lambda v: v == channels.get(mode), f"{channels.get(mode)} for {mode}")
        get(spec, where, "preprocessing.uint8_divisor", lambda v: number(v) and v > 0, "a positive number")
        get(spec, where, "preprocessing.resize", one_of(ImageInput.RESIZE_MODES), f"one of {ImageInput.RESIZE_MODES}")
        if spec["input"]["shape"] != [h, w, c]:
            fail(where, "input.shape", f"[{h}, {w}, {c}] (preprocessing height, width, channels)", spec["input"]["shape"])

    def __init__(self, spec: dict):
        super().__init__(spec)
        self._inv = np.float32(1.0 / float(self.pre["uint8_divisor"]))

    def prepare(self, x: Any) -> np.ndarray:
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        if not (x.dtype == np.float32 and x.shape[1:] == self.shape and x.ndim == 4):
            x = self._images(x)
        # One pass: float32 in [+0, 1] are exactly the bit patterns 0 .. 0x3F800000 (NaN, inf, negatives and -0.0
        # lie above); anything else gets the full check.
        if x.size and not (x.dtype == np.float32 and x.view(np.uint32).max() <= _ONE_F32):
            lo, hi = x.min(), x.max()  # NaN fails every comparison below, so one pass checks both
            if not (0.0 <= lo and hi <= 1.0):
                _finite_float(x)
                raise UserError("expected float pixels in [0, 1] (the bundle's preprocessing: uint8 / 255); "
                                f"pass uint8 arrays or divide by 255. Received: min={float(lo):g}, max={float(hi):g}")
        return x.astype(np.float32, copy=False)

    def _images(self, x: np.ndarray) -> np.ndarray:
        h, w, c = self.shape
        if x.shape[-3:] == (h, w, c) and x.ndim in (3, 4):
            x = x[None] if x.ndim == 3 else x
        elif c == 1 and x.shape[-2:] == (h, w) and x.ndim in (2, 3):
            x = x.reshape(-1, h, w, 1)
        elif x.ndim in (3, 4) and x.shape[-3:-1] == (h, w):
            raise UserError(f"expected images with {c} channel(s) ({'grayscale' if c == 1 else 'RGB'}), shaped "
                            f"(N, {h}, {w}, {c}). Received: shape={x.shape} ({x.shape[-1]} channels)")
        else:
            raise UserError(f"expected images shaped (N, {h}, {w}, {c}) or ({h}, {w}, {c}). Received: shape={x.shape}")
        if x.dtype == np.uint8:
            return x.astype(np.float32) * self._inv
        if x.dtype.kind != "f":
            raise UserError(f"expected float values or uint8 images. Received: dtype={x.dtype}")
        return x

    def read_file(self, path: Path) -> np.ndarray:
        if path.suffix.lower() == ".npy":
            return _load_npy(path)
        size = (self.pre["height"], self.pre["width"])
        arr = decode_image(path, self.pre["color_mode"], size if self.pre.get("resize") == "bilinear" else None)
        if arr.shape[:2] != size:
            raise UserError(f"{str(path)!r}: expected a {size[1]}x{size[0]} image (width x height). "
                            f"Received: {arr.shape[1]}x{arr.shape[0]}")
        return arr[None]

    def c_macros(self, macro: str) -> list[str]:
        return [f"#define {macro}_{axis} {int(v)}" for axis, v in zip(("HEIGHT", "WIDTH", "CHANNELS"), self.shape)]


@input_kind
class VectorInput(InputKind):
    """Feature vectors (N, features) of raw values, standardized with the normal training rows' mean and scale."""

    name = "vector"

    @staticmethod
    def check_spec(spec: dict, where: str) -> None:
        n = get(spec, where, "preprocessing.features", lambda v: integer(v, 1), "a positive integer")
        get(spec, where, "preprocessing.mean", lambda v: numbers(v, n), f"a list of {n} finite numbers")
        get(spec, where, "preprocessing.scale", lambda v: numbers(v, n, positive=True), f"a list of {n} finite numbers >= 1e-30")
        if spec["input"]["shape"] != [n]:
            fail(where, "input.shape", f"[{n}] (preprocessing.features)", spec["input"]["shape"])

    def __init__(self, spec: dict):
        super().__init__(spec)
        self._mean, self._inv_scale = _standardizer(self.pre)

    def prepare(self, x: Any) -> np.ndarray:
        (n,) = self.shape
        x = _finite_float(self._batch(x, f"feature vectors shaped (N, {n}) or ({n},)"))
        return ((x.astype(np.float32, copy=False) - self._mean) * self._inv_scale).astype(np.float32, copy=False)

    def to_device(self, x: np.ndarray) -> np.ndarray:
        return (x / self._inv_scale + self._mean).astype(np.float32)

    def read_file(self, path: Path) -> np.ndarray:
        return _load_npy(path) if path.suffix.lower() == ".npy" else read_csv_rows(path, self.shape[0])

    def c_macros(self, macro: str) -> list[str]:
        return [f"#define {macro}_FEATURES {int(self.shape[0])}"]


@input_kind
class SeriesInput(InputKind):
    """Windows (N, window, channels) of raw sensor readings, each channel standardized with the normal training data's
    mean and scale; :meth:`windows` cuts a recording [T, channels] every ``hop`` samples."""

    name = "series"

    @staticmethod
    def check_spec(spec: dict, where: str) -> None:
        w = get(spec, where, "preprocessing.window", lambda v: integer(v, 2), "an integer >= 2")
        get(spec, where, "preprocessing.hop", lambda v: integer(v, 1) and v <= w, f"an integer in 1..{w} (the window)")
        c = get(spec, where, "preprocessing.channels", lambda v: integer(v, 1), "a positive integer")
        get(spec, where, "preprocessing.channel_names", lambda v: isinstance(v, list) and len(v) == c
            and all(isinstance(n, str) for n in v), f"a list of {c} names")
        get(spec, where, "preprocessing.mean", lambda v: numbers(v, c), f"a list of {c} finite numbers")
        get(spec, where, "preprocessing.scale", lambda v: numbers(v, c, positive=True), f"a list of {c} finite numbers >= 1e-30")
        get(spec, where, "preprocessing.aggregate", one_of(AGGREGATES), f"one of {AGGREGATES}")
        if spec["input"]["shape"] != [w, c]:
            fail(where, "input.shape", f"[{w}, {c}] (preprocessing window, channels)", spec["input"]["shape"])

    def __init__(self, spec: dict):
        super().__init__(spec)
        self.window, self.hop, self.channels = int(self.pre["window"]), int(self.pre["hop"]), int(self.pre["channels"])
        self._mean, self._inv_scale = _standardizer(self.pre)

    def prepare(self, x: Any) -> np.ndarray:
        w, c = self.shape
        x = _finite_float(self._batch(x, f"windows shaped (N, {w}, {c}) or ({w}, {c}) (window, channels); cut a "
                                         "recording with Detector.score_recording"))
        return self.standardize(x)

    def standardize(self, x: np.ndarray) -> np.ndarray:
        """Raw samples [..., channels] in the model's units: float32 (x - mean) * (1 / scale), per channel."""
        return ((x.astype(np.float32, copy=False) - self._mean) * self._inv_scale).astype(np.float32, copy=False)

    def to_device(self, x: np.ndarray) -> np.ndarray:
        return (x / self._inv_scale + self._mean).astype(np.float32)

    def recording(self, x: Any) -> np.ndarray:
        """A raw recording [T, channels] (or [T] for one channel) checked against the bundle."""
        x = x if isinstance(x, np.ndarray) else np.asarray(x)
        x = x[:, None] if x.ndim == 1 and self.channels == 1 else x
        if x.ndim != 2 or x.shape[1] != self.channels:
            raise UserError(f"expected a recording shaped (samples, {self.channels}) ({', '.join(self.pre['channel_names'])}). "
                            f"Received: shape={x.shape}")
        return _finite_float(x)

    def windows(self, x: Any) -> tuple[np.ndarray, np.ndarray]:
        """(raw windows [N, window, channels], start indices) of a recording, every hop samples."""
        return sliding_windows(self.recording(x), self.window, self.hop)

    def file_inputs(self, x: np.ndarray, path: str) -> tuple[np.ndarray, list[str]]:
        """A recording's windows every hop samples, each named ``path[start:end]``; windows as stored are kept as they are."""
        if x.ndim == 3 or x.shape == self.shape:
            return super().file_inputs(x, path)
        windows, starts = self.windows(x)
        return self.prepare(windows), [f"{path}[{s}:{s + self.window}]" for s in starts]

    def read_file(self, path: Path) -> np.ndarray:
        rec = read_recording(path)
        names = self.pre["channel_names"]
        if rec.values.shape[1] != self.channels:
            raise UserError(f"{path}: expected {self.channels} channel(s) ({', '.join(names)}). "
                            f"Received: {rec.values.shape[1]} ({', '.join(rec.channels)})")
        if rec.named and rec.channels != names:
            raise UserError(f"{path}: expected the channels {names} (as in training). Received: {rec.channels}")
        return rec.values

    def c_macros(self, macro: str) -> list[str]:
        return [f"#define {macro}_WINDOW {self.window}", f"#define {macro}_HOP {self.hop}",
                f"#define {macro}_CHANNELS {self.channels}"]

    def c_files(self, spec: dict) -> dict[str, str]:
        """The streaming detector in C (``edge.micro_series``): ring buffer, standardization, score, threshold."""
        from edge.micro_series import stream_c_files

        return stream_c_files(spec)


def for_spec(spec: dict) -> InputKind:
    """The device unit of a checked spec's input kind."""
    return INPUT_KINDS[spec["preprocessing"]["kind"]](spec)


def load_input_file(path: str | os.PathLike, spec: dict) -> np.ndarray:
    """Read an input file for the bundle ``spec``: an image, a ``.npy`` array, or a ``.csv`` of vectors or a recording."""
    path = Path(path)
    if path.is_dir():
        raise UserError(f"{str(path)!r} is a directory; expected an image, .npy or .csv file")
    if not path.is_file():
        raise UserError(f"input file not found: {str(path)!r}")
    return for_spec(spec).read_file(path)
