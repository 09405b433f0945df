"""The UCR/UEA ``.ts`` format of series sets (sktime/aeon): a header of ``@`` lines, then one series per line.

A data line holds the channels (dimensions) separated by ``:``, each a comma-separated
list of numbers (``?`` for a missing value), and the class label last when
``@classLabel true``. Series may differ in length; so may the channels of one series
(they are then padded with missing values to the longest). Time-stamped data
(``@timeStamps true``) is refused with that reason.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.inputs import is_number
from zoo.errors import UserError


@dataclass(frozen=True)
class SeriesSet:
    """A parsed ``.ts`` file: ``series`` (each float32 [length_i, channels], NaN where missing), int64 ``labels``
    indexing ``class_names`` (all 0 without labels), and the problem name."""

    series: list[np.ndarray]
    labels: np.ndarray
    class_names: list[str]
    name: str


def read_ts(path: str | os.PathLike) -> SeriesSet:
    """Read a ``.ts`` file; every malformed header or data line is a UserError naming the line."""
    path = Path(path)
    if not path.is_file():
        raise UserError(f".ts file not found: {str(path)!r}")
    try:
        lines = path.read_text(encoding="utf-8-sig").splitlines()
    except (UnicodeDecodeError, OSError) as exc:
        raise UserError(f"{path} is not a readable .ts text file: {exc}") from None
    header: dict[str, str] = {}
    classes: list[str] | None = None
    body = None
    for number, raw in enumerate(lines, 1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not line.startswith("@"):
            raise UserError(f"{path} line {number}: expected a header line (@key value) before @data. Received: {line[:60]!r}")
        key, _, value = line[1:].partition(" ")
        key = key.lower()
        if key == "data":
            body = number
            break
        if key == "classlabel":
            parts = value.split()
            if not parts or parts[0].lower() not in ("true", "false"):
                raise UserError(f"{path} line {number}: expected '@classLabel true LABEL...' or '@classLabel false'. "
                                f"Received: {line[:80]!r}")
            classes = parts[1:] if parts[0].lower() == "true" else None
            if parts[0].lower() == "true" and not classes:
                raise UserError(f"{path} line {number}: @classLabel true lists no labels")
        header[key] = value.strip()
    if body is None:
        raise UserError(f"{path} has no @data line: expected a .ts header ending with @data, then one series per line")
    if header.get("timestamps", "false").lower() == "true":
        raise UserError(f"{path}: time-stamped .ts data (@timeStamps true) is not supported; expected plain values")
    series, labels = [], []
    for number in range(body + 1, len(lines) + 1):
        line = lines[number - 1].strip()
        if not line or line.startswith("#"):
            continue
        values, label = _data_line(path, number, line, classes)
        series.append(values)
        labels.append(label)
    if not series:
        raise UserError(f"{path} has no series after @data")
    widths = {s.shape[1] for s in series}
    if len(widths) > 1:
        raise UserError(f"{path}: the series have different numbers of channels ({sorted(widths)}); expected the same in every line")
    name = header.get("problemname", path.stem.rsplit("_", 1)[0])
    return SeriesSet(series, np.asarray(labels, np.int64), list(classes) if classes else ["0"], name)


def _data_line(path: Path, number: int, line: str, classes: list[str] | None) -> tuple[np.ndarray, int]:
    parts = line.split(":")
    label = 0
    if classes is not None:
        if len(parts) < 2:
            raise UserError(f"{path} line {number}: expected channel values then ':' and the class label")
        text = parts.pop().strip()
        if text not in classes:
            raise UserError(f"{path} line {number}: class label {text!r} is not one of @classLabel {classes}")
        label = classes.index(text)
    channels = []
    for c, part in enumerate(parts):
        cells = [v.strip() for v in part.split(",")]
        try:
            channels.append(np.asarray([np.nan if v == "?" else float(v) for v in cells], np.float64))
        except ValueError:
            bad = next(v for v in cells if v != "?" and not is_number(v))
            raise UserError(f"{path} line {number}, channel {c + 1}: expected numbers or '?'. Received: {bad!r}") from None
    length = max(len(ch) for ch in channels)
    out = np.full((length, len(channels)), np.nan, np.float32)
    for c, ch in enumerate(channels):
        if np.isinf(ch).any():
            raise UserError(f"{path} line {number}, channel {c + 1}: infinite values are not allowed")
        out[: len(ch), c] = ch
    return out, label


def write_ts(path: str | os.PathLike, series: list[np.ndarray], labels: np.ndarray, class_names: list[str],
             name: str = "series") -> Path:
    """Write series (each [length, channels]; NaN becomes ``?``) with class ids ``labels`` as a ``.ts`` file."""
    path = Path(path)
    channels = series[0].shape[1]
    lines = [f"@problemName {name}", "@timeStamps false", f"@missing {'true' if any(np.isnan(s).any() for s in series) else 'false'}",
             f"@univariate {'true' if channels == 1 else 'false'}", f"@dimensions {channels}",
             f"@equalLength {'true' if len({len(s) for s in series}) == 1 else 'false'}",
             f"@classLabel true {' '.join(class_names)}", "@data"]
    for s, label in zip(series, labels):
        dims = [",".join("?" if np.isnan(v) else repr(float(v)) for v in s[:, c]) for c in range(channels)]
        lines.append(":".join(dims) + f":{class_names[int(label)]}")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path
