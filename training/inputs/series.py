"""The series input kind on the training side: series sets and recordings of sensor readings.

- A **series set** (UCR/UEA ``.ts``, or a named set: ``basic_motions``, ``acsf1``) holds
  labelled series; the one-class protocol is that of the images: a fixed 10% of the
  normal class's training series is held out for validation, every test series is
  scored, anomaly = another class. A series' score aggregates its windows' scores
  (``aggregate``: "mean" by default, since a series of another class differs all
  along; "max" for short local events).
- A **recording** (a TimeEval CSV: ``timestamp``, channels, optional ``is_anomaly``; a
  ``.npy`` [T, C]; or ``kdd_tsad_135``) is semi-supervised: a normal-only training
  recording, whose last contiguous block is the normal validation part (no validation
  window overlaps a training window), and a labelled test recording. A sample's score
  is the largest score of the windows that cover it.

Each channel is standardized with the mean and scale of the normal training data
(not of each series: a series' level is part of what is normal). Windows are cut
every ``hop`` samples for validation, testing and the device; training windows are
cut every ``train_stride`` samples (1 unless that gives more than
:data:`MAX_TRAIN_WINDOWS`), so short recordings still train. Window and hop are
chosen from the normal training data when not given (:func:`default_window`) and
recorded in the preprocessing. Missing values (``?`` in ``.ts``) are filled by linear
interpolation within their series.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edge.inputs import AGGREGATES, read_recording, sliding_windows
from training.inputs import aeon_sets, named
from training.inputs.base import (InputUnit, OneClassSplit, Source, Units, check_normal_count, holdout_indices,
                                  register_input, standardization)
from training.inputs.ts_format import read_ts
from zoo.errors import UserError

MIN_WINDOW = 8
# The longest default window: conv1d_ae with the nap score converts to 61,952 bytes of full int8 at 183 samples
# (kdd_tsad_135) and to 69,520 at 256 (acsf1), over the 64 KiB budget.
MAX_WINDOW = 192
MAX_TRAIN_WINDOWS = 20_000
DEFAULT_AGGREGATE = "mean"
VAL_FRACTION = 0.1
RECORDING_CLASSES = ["normal", "anomaly"]


@dataclass(frozen=True)
class SeriesData:
    """A source's series as read: ``form`` "set" or "recording"; for a set, class ids per series; for a recording,
    one training and (optionally) one test recording with per-sample 0/1 labels."""

    form: str
    train: list[np.ndarray]
    train_labels: np.ndarray | None
    test: list[np.ndarray]
    test_labels: np.ndarray | None
    class_names: list[str]
    channels: list[str]


def _form(source: Source) -> str:
    if source.name in aeon_sets.BUILDERS:
        return aeon_sets.BUILDERS[source.name].form
    return "set" if source.path.suffix.lower() == ".ts" else "recording"


def _is_timeeval_csv(path: Path) -> bool:
    """True for a CSV whose header names a ``timestamp`` column (TimeEval's layout)."""
    try:
        with open(path, encoding="utf-8-sig") as f:
            first = f.readline()
    except (OSError, UnicodeDecodeError):
        return False
    return "timestamp" in [c.strip().lower() for c in first.split(",")]


@register_input
class SeriesUnit(InputUnit):
    """Series sets (.ts, named) and recordings (TimeEval CSV, .npy [T, C], named)."""

    name = "series"

    def claims(self, source: Source) -> bool:
        suffix = source.path.suffix.lower()
        return (named.DATASETS.get(source.name) == "series" or suffix == ".ts"
                or (suffix == ".csv" and source.path.is_file() and _is_timeeval_csv(source.path)))

    def check(self, source: Source) -> None:
        if source.name not in named.DATASETS and not source.path.is_file():
            raise UserError(f"series file not found: {source.name!r} (expected a .ts series set, a recording .csv/.npy, "
                            f"or one of {', '.join(n for n, k in named.DATASETS.items() if k == 'series')})")
        if source.image_size is not None or source.color_mode is not None:
            raise UserError(f"--image-size, --grayscale and --rgb apply to images, not to the series {source.name}")
        if source.test_data is not None and not Path(source.test_data).expanduser().is_file():
            raise UserError(f"test data file not found: {source.test_data!r}")
        for name, low in (("window", 2), ("hop", 1)):
            value = getattr(source, name)
            if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value < low):
                raise UserError(f"{name} must be an integer >= {low}. Received: {name}={value!r}")
        if source.window is not None and source.hop is not None and source.hop > source.window:
            raise UserError(f"hop must not exceed the window (windows would skip samples). Received: hop={source.hop}, "
                            f"window={source.window}")
        if source.aggregate is not None and source.aggregate not in AGGREGATES:
            raise UserError(f"aggregate must be one of {', '.join(AGGREGATES)}. Received: aggregate={source.aggregate!r}")

    def load_split(self, source: Source, split: str) -> tuple[list[np.ndarray], np.ndarray]:
        data = load_series(source)
        if split == "train":
            return data.train, data.train_labels if data.train_labels is not None else np.zeros(len(data.train), np.int64)
        if split == "test" and data.test:
            return data.test, data.test_labels
        raise UserError(f"the series data {source.name} has no {split!r} split" +
                        (" (give the test series or recording with --test-data FILE)" if split == "test" else ""))

    def has_test(self, source: Source) -> bool:
        return source.name in named.DATASETS or source.test_data is not None

    def class_names(self, source: Source) -> list[str]:
        # A named set's names are metadata: reading its data here would start TensorFlow before a
        # distribution strategy can configure its collective ops.
        return named.class_names(source.name) if source.name in named.DATASETS else load_series(source).class_names

    def normal_class_count(self, source: Source) -> int:
        # A recording's classes are its sample labels (normal, anomaly): only "normal" trains a detector.
        return 1 if _form(source) == "recording" else len(self.class_names(source))

    def describe(self, source: Source) -> dict:
        if source.name in named.DATASETS:
            return named.describe(source.name, source.data_dir)
        data = load_series(source)
        splits = {"train": len(data.train), **({"test": len(data.test)} if data.test else {})}
        return {"name": source.name, "version": data.form, "location": str(source.path.resolve()),
                "input_shape": [None, len(data.channels)], "dtype": "float32", "splits": splits,
                "class_names": data.class_names, "channels": data.channels,
                "lengths": sorted({len(s) for s in data.train + data.test})}

    def one_class_split(self, source: Source, normal_class: int) -> OneClassSplit:
        data = load_series(source)
        if data.form == "recording":
            if normal_class != 0:
                raise UserError(f"a recording has one normal class, 0 (its test labels are 0 normal / 1 anomaly). "
                                f"Received: normal_class={normal_class}")
            return _recording_split(source, data)
        return _set_split(source, data, normal_class)

    def bundle_preprocessing(self, record: dict, input_shape: list[int]) -> dict:
        keys = ("kind", "form", "window", "hop", "channels", "channel_names", "mean", "scale", "aggregate")
        return {k: record[k] for k in keys}


# -- reading ---------------------------------------------------------------------------------------------------


def load_series(source: Source) -> SeriesData:
    """The series of ``source`` (cached per file and modification time)."""
    if source.name in named.DATASETS:
        return _named_series(source.name, source.data_dir)
    stamps = tuple((p.stat().st_size, p.stat().st_mtime_ns) for p in _files(source))
    return _read_series(str(source.path), source.test_data, stamps)


def _files(source: Source) -> list[Path]:
    return [source.path] + ([Path(source.test_data).expanduser()] if source.test_data else [])


@functools.lru_cache(maxsize=8)
def _named_series(name: str, data_dir: str | None) -> SeriesData:
    info = aeon_sets.BUILDERS[name]
    train, train_labels = named.load_series(name, "train", data_dir)
    test, test_labels = named.load_series(name, "test", data_dir)
    if info.form == "recording":
        return SeriesData("recording", train, None, test, test_labels[0], list(info.class_names), list(info.channels))
    return SeriesData("set", train, train_labels, test, test_labels, list(info.class_names), list(info.channels))


@functools.lru_cache(maxsize=8)
def _read_series(path: str, test_data: str | None, stamps: tuple) -> SeriesData:
    del stamps  # only the cache key
    p = Path(path)
    if p.suffix.lower() == ".ts":
        train = read_ts(p)
        test = read_ts(Path(test_data).expanduser()) if test_data else None
        if test is not None:
            _same_channels(p, train.series[0].shape[1], Path(test_data), test.series[0].shape[1])
            if test.class_names != train.class_names:
                raise UserError(f"{test_data}: its @classLabel {test.class_names} differs from {p}'s {train.class_names}")
        channels = [f"dim_{c}" for c in range(train.series[0].shape[1])]
        return SeriesData("set", [_filled(s) for s in train.series], train.labels,
                          [_filled(s) for s in test.series] if test else [], test.labels if test else None,
                          train.class_names, channels)
    rec = read_recording(p)
    if rec.labels is not None and rec.labels.any():
        first = int(np.flatnonzero(rec.labels)[0])
        raise UserError(f"{p}: the training recording must be normal only, but {int(rec.labels.sum())} samples are labelled "
                        f"is_anomaly=1 (the first is sample {first}). Cut them out, or pass the labelled part as --test-data")
    test = read_recording(Path(test_data).expanduser()) if test_data else None
    if test is not None:
        _same_channels(p, rec.values.shape[1], Path(test_data), test.values.shape[1])
        if rec.named and test.named and rec.channels != test.channels:
            raise UserError(f"{test_data}: its channels {test.channels} differ from the training recording's {rec.channels}")
    return SeriesData("recording", [rec.values], None, [test.values] if test else [],
                      test.labels if test is not None and test.labels is not None else None, RECORDING_CLASSES, rec.channels)


def _same_channels(train: Path, c_train: int, test: Path, c_test: int) -> None:
    if c_train != c_test:
        raise UserError(f"{test}: expected {c_train} channel(s) like {train}. Received: {c_test}")


def _filled(series: np.ndarray) -> np.ndarray:
    """Missing values (NaN) filled by linear interpolation within the series (edge values carried out)."""
    if not np.isnan(series).any():
        return series
    out = series.copy()
    t = np.arange(len(series))
    for c in range(series.shape[1]):
        known = ~np.isnan(series[:, c])
        if not known.any():
            raise UserError(f"a series has no values at all in channel {c + 1}")
        out[:, c] = np.interp(t, t[known], series[known, c])
    return out


# -- windows ----------------------------------------------------------------------------------------------------


def dominant_period(x: np.ndarray) -> int | None:
    """The lag of the highest autocorrelation peak (mean over channels) between the first zero crossing and half the
    length, or None when the signal has none above 0.2."""
    x = (x - x.mean(axis=0)) / np.maximum(x.std(axis=0), 1e-12)
    n = len(x)
    f = np.fft.rfft(x, 2 * n, axis=0)
    acf = np.fft.irfft(f * np.conj(f), axis=0)[:n].mean(axis=1)
    acf /= max(acf[0], 1e-12)
    below = np.flatnonzero(acf[: n // 2] < 0)
    if not below.size:
        return None
    lag = int(below[0] + np.argmax(acf[below[0] : n // 2]))
    return lag if acf[lag] > 0.2 else None


def default_window(form: str, normal: list[np.ndarray], shortest: int) -> tuple[int, int, str]:
    """(window, hop, the rule) chosen from the normal training series only.

    Sets: the largest power of two up to three quarters of the shortest series and up to
    :data:`MAX_WINDOW` (the int8 budget), hop an eighth of it; of 16, 32 and 64 samples on BasicMotions' 100, 64
    scored best on a development split of the training series (``aezoo bench series-dev``,
    BENCHMARKS.md). Recordings: the dominant period of the normal training recording
    (autocorrelation), 8..MAX_WINDOW samples and at most a quarter of the recording; 64 when it
    has none; hop a quarter of the window.
    """
    if form == "set":
        window = 2 ** int(math.log2(max(min(3 * shortest // 4, MAX_WINDOW), 2)))
        window = max(min(MIN_WINDOW, shortest), window)
        return window, max(1, window // 8), (f"largest power of two <= 3/4 of the shortest series and <= {MAX_WINDOW} "
                                             "(at least 8 or the series); hop window/8")
    period = dominant_period(np.concatenate(normal))
    window = int(np.clip(period if period else 64, MIN_WINDOW, MAX_WINDOW))
    window = max(MIN_WINDOW, min(window, shortest // 4)) if shortest >= 4 * MIN_WINDOW else min(window, shortest)
    rule = f"dominant period {period} of the normal training recording" if period else "no period found: 64"
    return window, max(1, window // 4), rule + f", in 8..{MAX_WINDOW} and <= a quarter of it; hop window/4"


def _windows_of(series: list[np.ndarray], window: int, step: int) -> tuple[np.ndarray, np.ndarray]:
    """(windows [N, window, C] float32, index of the series of each window)."""
    parts = [sliding_windows(s, window, step)[0] for s in series]
    return (np.concatenate(parts).astype(np.float32), np.concatenate([np.full(len(p), i) for i, p in enumerate(parts)]))


def _train_stride(lengths: list[int], window: int) -> int:
    possible = sum(n - window + 1 for n in lengths)
    return max(1, math.ceil(possible / MAX_TRAIN_WINDOWS))


def _choose(source: Source, form: str, normal: list[np.ndarray], everything: list[np.ndarray]) -> tuple[int, int, str]:
    """Window and hop: the user's, or the default rule's; checked against the shortest series.

    Every series, test ones too, must hold a window: a set's rule reads the lengths of all
    its series (lengths only, no label); a recording's window is cut to a shorter test recording.
    """
    shortest = min(len(s) for s in everything)
    window, hop, rule = default_window(form, normal, shortest if form == "set" else min(len(s) for s in normal))
    if form == "recording" and window > shortest:
        window, hop, rule = shortest, max(1, shortest // 4), rule + f"; cut to the test recording's {shortest} samples"
    if source.window is not None:
        window, hop, rule = source.window, source.hop or max(1, source.window // (8 if form == "set" else 4)), "given"
    elif source.hop is not None:
        hop, rule = min(source.hop, window), rule + " (hop given)"
    if window > shortest:
        raise UserError(f"the window ({window} samples) is longer than the shortest series ({shortest} samples). "
                        f"Expected --window <= {shortest}")
    return window, hop, rule


def _record(source: Source, form: str, window: int, hop: int, rule: str, stride: int, mean: np.ndarray,
            scale: np.ndarray, channels: list[str], aggregate: str) -> dict:
    return {"kind": "series", "form": form, "window": int(window), "hop": int(hop), "window_rule": rule,
            "train_stride": int(stride), "channels": len(channels), "channel_names": list(channels),
            "mean": mean.astype(float).tolist(), "scale": scale.astype(float).tolist(), "aggregate": aggregate,
            "fitted_on": "normal training series" if form == "set" else "normal training part of the recording"}


def _set_split(source: Source, data: SeriesData, normal_class: int) -> OneClassSplit:
    names = data.class_names
    if not 0 <= normal_class < len(names):
        raise UserError(f"normal class must be an integer in 0..{len(names) - 1} for {source.name}. "
                        f"Received: normal_class={normal_class!r}")
    train_idx, val_idx = holdout_indices(data.train_labels, normal_class)
    normal = [data.train[i] for i in train_idx]
    window, hop, rule = _choose(source, "set", normal, data.train + data.test)
    stride = _train_stride([len(s) for s in normal], window)
    mean, scale = standardization(np.concatenate(normal), (0,))

    def std(series: list[np.ndarray]) -> list[np.ndarray]:
        return [((s - mean) / scale).astype(np.float32) for s in series]

    x_train, _ = _windows_of(std(normal), window, stride)
    check_normal_count(source, names, normal_class, len(x_train), "training windows")
    x_val, val_groups = _windows_of(std([data.train[i] for i in val_idx]), window, hop)
    test = data.test
    x_test, test_groups = _windows_of(std(test), window, hop) if test else (x_train[:0], np.zeros(0, np.int64))
    labels = data.test_labels if test else np.zeros(0, np.int64)
    aggregate = source.aggregate or DEFAULT_AGGREGATE
    return OneClassSplit(
        dataset=source.name, normal_class=normal_class, x_train=x_train, x_val=x_val, x_test=x_test,
        y_test=(labels != normal_class).astype(np.int64), test_labels=labels, class_names=names,
        preprocessing=_record(source, "set", window, hop, rule, stride, mean, scale, data.channels, aggregate),
        units=Units("series", val_groups, test_groups, aggregate=aggregate, window=window))


def _recording_split(source: Source, data: SeriesData) -> OneClassSplit:
    (rec,) = data.train
    window, hop, rule = _choose(source, "recording", [rec], data.train + data.test)
    n_val = max(int(round(VAL_FRACTION * len(rec))), window + 4 * hop)  # at least five validation windows
    if len(rec) - n_val < window + 1:
        raise UserError(f"the training recording has {len(rec)} samples: too short for a training part and a validation "
                        f"block of at least one window ({window}) each. Expected at least {2 * window + 1} samples")
    train_part, val_part = rec[: len(rec) - n_val], rec[len(rec) - n_val :]
    mean, scale = standardization(train_part, (0,))
    stride = _train_stride([len(train_part)], window)
    x_train, _ = _windows_of([(train_part - mean) / scale], window, stride)
    check_normal_count(source, data.class_names, 0, len(x_train), "training windows")
    x_val, _ = _windows_of([(val_part - mean) / scale], window, hop)
    val_starts = sliding_windows(val_part, window, hop)[1]
    if data.test:
        test = ((data.test[0] - mean) / scale).astype(np.float32)
        x_test, _ = _windows_of([test], window, hop)
        test_starts = sliding_windows(test, window, hop)[1]
        labels = data.test_labels if data.test_labels is not None else np.zeros(len(test), np.int64)
    else:
        test, x_test, test_starts, labels = np.zeros((0, rec.shape[1]), np.float32), x_train[:0], np.zeros(0, int), np.zeros(0, np.int64)
    return OneClassSplit(
        dataset=source.name, normal_class=0, x_train=x_train, x_val=x_val, x_test=x_test, y_test=labels.astype(np.int64),
        test_labels=labels.astype(np.int64), class_names=list(data.class_names),
        preprocessing=_record(source, "recording", window, hop, rule, stride, mean, scale, data.channels, "max"),
        units=Units("points", val_starts, test_starts, aggregate="max", window=window, val_length=len(val_part),
                    test_length=len(test), reference=((train_part - mean) / scale).astype(np.float32), signal=test))
