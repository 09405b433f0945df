"""``StreamDetector``: a series bundle on a live stream of raw sensor samples (numpy and LiteRT only).

Samples arrive one at a time or in chunks; each is standardized on arrival with the
bundle's per-channel constants and written into a preallocated ring buffer that holds
the last window twice over, so the newest window is always one contiguous slice. Every
``hop`` samples, once ``window`` samples have arrived, the model runs on that window
(batch 1) and one row comes out: the window's first and last sample index, its score
and its verdict. The windows are exactly those the batch path cuts
(``edge.inputs.sliding_windows``: starts 0, hop, 2*hop, ...), standardized with the same
float32 arithmetic, so the scores equal ``Detector.score_recording``'s whatever the chunks.

:class:`CsvStream` turns CSV lines (as ``tail -f`` delivers them) into samples for it.
"""

from __future__ import annotations

import csv
import os
from typing import Any, Iterable, Iterator, NamedTuple

import numpy as np

from edge.detector import Detector
from edge.inputs import ANOMALY_COLUMN, TIMESTAMP_COLUMN, SeriesInput, _finite_float, cell_value, is_number
from zoo.errors import UserError


class Verdict(NamedTuple):
    """One model call on the stream: the window [start, end] of sample indices (``end`` is the newest sample, the one
    the verdict is given at), its score and whether it is above the threshold."""

    start: int
    end: int
    score: float
    anomaly: bool


class StreamDetector:
    """Scores a stream of raw sensor samples with a series bundle: one batch-1 model call every ``hop`` samples.

    The first verdict comes once ``window`` samples have arrived (it covers samples
    0..window-1); after that one every ``hop`` samples. :meth:`push` returns the
    verdicts the new samples completed; :meth:`reset` starts a new stream.

    Example::

        stream = StreamDetector.load("det/")
        for chunk in sensor_chunks():            # raw readings, shape (n, channels) or (channels,)
            for v in stream.push(chunk):
                if v.anomaly:
                    alarm(v.end, v.score)
    """

    def __init__(self, detector: Detector):
        """Wrap a loaded series ``Detector`` (it is used at batch 1 from now on)."""
        if not isinstance(detector.input, SeriesInput):
            raise UserError(f"a StreamDetector needs a series bundle (windows of sensor samples). Received: a "
                            f"{detector.input.name} bundle")
        self.detector = detector
        self.input: SeriesInput = detector.input
        self.window, self.hop, self.channels = self.input.window, self.input.hop, self.input.channels
        self.threshold_ = detector.threshold_
        # Each sample sits at t % window and t % window + window: the newest window is ring[head : head + window].
        self._ring = np.zeros((2 * self.window, self.channels), np.float32)
        self.reset()

    @classmethod
    def load(cls, bundle: str | os.PathLike, *, num_threads: int = 1, verify: bool = True,
             public_key: Any = None) -> "StreamDetector":
        """A stream detector of the series bundle directory ``bundle`` (see ``Detector.load``)."""
        return cls(Detector.load(bundle, num_threads=num_threads, verify=verify, public_key=public_key))

    @classmethod
    def from_zoo(cls, model: str, dataset: str, normal_class: int = 0, *, root: str | os.PathLike | None = None
                 ) -> "StreamDetector":
        """A stream detector of a pretrained series entry's bundle (see ``Detector.from_zoo``)."""
        return cls(Detector.from_zoo(model, dataset, normal_class, root=root))

    @property
    def samples_seen(self) -> int:
        """Samples pushed since the start (or the last :meth:`reset`)."""
        return self._count

    @property
    def first_verdict_after(self) -> int:
        """Samples the first verdict waits for: one window."""
        return self.window

    def reset(self) -> None:
        """Forget the stream: the next sample is sample 0, the first verdict comes after ``window`` samples again."""
        self._count = 0
        self._ring[:] = 0.0

    def push(self, samples) -> list[Verdict]:
        """Add one raw sample [channels] or a chunk [n, channels]; return the verdicts it completed (often none).

        Raises:
            UserError: another number of channels, non-numeric, NaN or infinite values (nothing is added).
        """
        x = self.input.standardize(self._samples(samples))
        out, i = [], 0
        while i < len(x):
            # Copy up to the next sample that completes a window, then score that window.
            due = self._next_due()
            n = min(len(x) - i, due - self._count)
            self._write(x[i : i + n])
            i += n
            if self._count == due:
                out.append(self._score())
        return out

    def _next_due(self) -> int:
        """The sample count at which the next window is complete."""
        if self._count < self.window:
            return self.window
        return self._count + self.hop - (self._count - self.window) % self.hop

    def _write(self, x: np.ndarray) -> None:
        w, ring = self.window, self._ring
        pos = self._count % w
        first = min(len(x), w - pos)
        ring[pos : pos + first] = x[:first]
        ring[pos + w : pos + w + first] = x[:first]
        rest = len(x) - first  # fewer than a window (a chunk never runs past the next window), so one wrap
        if rest:
            ring[:rest] = x[first:]
            ring[w : w + rest] = x[first:]
        self._count += len(x)

    def _score(self) -> Verdict:
        head = self._count % self.window
        score = float(self.detector.score_prepared(self._ring[head : head + self.window][None])[0])
        return Verdict(self._count - self.window, self._count - 1, score, score > self.threshold_)

    def _samples(self, samples) -> np.ndarray:
        x = samples if isinstance(samples, np.ndarray) else np.asarray(samples)
        c = self.channels
        if x.ndim == 0 and c == 1:
            x = x.reshape(1, 1)
        elif x.ndim == 1:
            x = x.reshape(-1, 1) if c == 1 else x[None] if len(x) == c else x
        if x.ndim != 2 or x.shape[1] != c:
            names = ", ".join(self.input.pre["channel_names"])
            raise UserError(f"expected one sample of {c} channel(s) ({names}) or a chunk shaped (n, {c}). "
                            f"Received: shape={x.shape}")
        return _finite_float(x)


class Row(NamedTuple):
    """One CSV line of a stream: its line number, the sample [channels], the timestamp and label cells (or None)."""

    line: int
    sample: np.ndarray
    timestamp: str | None
    label: str | None


class CsvStream:
    """Parses CSV lines of a recording as they arrive, with the columns of training: the bundle's channels, and,
    when a header names them, an optional ``timestamp`` and ``is_anomaly`` column anywhere.

    The first non-blank line is a header when none of its cells is a number. Without a
    header every line holds exactly the channels, in training's order. With one, the
    channels are found by name (in any order) and must be the bundle's.
    """

    def __init__(self, channel_names: list[str], header: list[str] | None = None):
        """Parse lines for a bundle whose channels are ``channel_names`` (``preprocessing.channel_names``).

        ``header`` names the columns of a stream that has no header line (``tail -f`` starts
        inside a file); every line is then data.
        """
        self.names = list(channel_names)
        self._columns: list[int] | None = None
        self._t_col = self._y_col = None
        self._width, self._header_names = len(self.names), self.names
        self._line = 0
        self._given = [h.strip() for h in header] if header is not None else None
        if self._given is not None:
            self._header(self._given)

    def rows(self, lines: Iterable[str]) -> Iterator[Row | UserError]:
        """Yield each data line as a :class:`Row`, or a UserError naming the line (the caller skips or stops)."""
        for text in lines:
            self._line += 1
            try:
                cells = next(csv.reader([text.lstrip("\ufeff") if self._line == 1 else text]), [])
            except csv.Error as exc:
                yield UserError(f"line {self._line}: not a CSV line ({exc}). Received: {text.strip()[:80]!r}")
                continue
            if not any(c.strip() for c in cells) or [c.strip() for c in cells] == self._given:
                continue  # blank, or the header line that --header named already
            if self._columns is None and not any(is_number(c) for c in cells):  # a header line, unless --header said
                self._header([c.strip() for c in cells])  # a bad header stops the stream: nothing else can be read
                continue
            if self._columns is None:
                self._columns = list(range(len(self.names)))
            try:
                yield self._row(cells)
            except UserError as exc:
                yield exc

    def _header(self, header: list[str]) -> None:
        lower = [h.lower() for h in header]
        self._t_col = lower.index(TIMESTAMP_COLUMN) if TIMESTAMP_COLUMN in lower else None
        self._y_col = lower.index(ANOMALY_COLUMN) if ANOMALY_COLUMN in lower else None
        given = [h for j, h in enumerate(header) if j not in (self._t_col, self._y_col)]
        if sorted(given) != sorted(self.names):
            where = f"line {self._line}: the header's" if self._line else "--header:"
            raise UserError(f"{where} channels are not the bundle's. Expected {self.names} (and "
                            f"optionally {TIMESTAMP_COLUMN!r}, {ANOMALY_COLUMN!r}). Received: {header}")
        self._columns = [header.index(n) for n in self.names]
        self._width, self._header_names = len(header), header

    def _row(self, cells: list[str]) -> Row:
        line = self._line
        if len(cells) != self._width:
            no_header = self._header_names is self.names
            hint = "; a timestamp or is_anomaly column needs a header line naming the columns" if no_header else ""
            raise UserError(f"line {line}: expected {self._width} value(s) ({', '.join(self._header_names)}). Received: "
                            f"{len(cells)}{hint}")
        sample = np.empty(len(self.names), np.float32)
        for k, j in enumerate(self._columns):
            sample[k] = cell_value(f"line {line}", self.names[k], cells[j])
        cell = lambda j: None if j is None else cells[j].strip()  # noqa: E731
        return Row(line, sample, cell(self._t_col), cell(self._y_col))



def _lines(source: str) -> Iterator[str]:
    """The lines of ``source`` ("-": standard input) as they arrive: readline, not a read-ahead iterator."""
    import sys

    try:
        f = sys.stdin if source == "-" else open(source, encoding="utf-8", newline="")
    except FileNotFoundError:
        raise UserError(f"stream file not found: {source!r}. Expected a CSV file or - (standard input)") from None
    except OSError as exc:
        raise UserError(f"cannot read the stream {source!r}: {exc.strerror}. Expected a CSV file or - (standard input)") from None

    def lines() -> Iterator[str]:
        try:
            yield from iter(f.readline, "")
        except UnicodeDecodeError as exc:
            raise UserError(f"not UTF-8 CSV text: {exc}") from None
        finally:
            if f is not sys.stdin:
                f.close()

    return lines()


def run_stream(bundle: str, source: str, *, as_json: bool = False, on_bad_line: str = "stop", threads: int = 1,
               header: list[str] | None = None, public_key: Any = None) -> int:
    """``aezoo detect BUNDLE --stream FILE|-``: one printed, flushed line per hop; 0 at the end of input or on Ctrl-C.

    A bad line stops the run with a UserError naming it (``on_bad_line="stop"``) or is
    reported on standard error and skipped (``"skip"``). ``header``: the column names of a
    stream without a header line.
    """
    import sys

    stream = StreamDetector.load(bundle, num_threads=threads, public_key=public_key)
    det = stream.detector
    parser = CsvStream(det.input.pre["channel_names"], header)
    print(f"aezoo detect: streaming {source if source != '-' else 'standard input'} into {bundle}: windows of "
          f"{stream.window} samples every {stream.hop}; the first verdict after {stream.first_verdict_after} samples",
          file=sys.stderr, flush=True)
    verdicts = anomalies = skipped = 0
    lines = _lines(source)
    try:
        for row in parser.rows(lines):
            if isinstance(row, UserError):
                if on_bad_line == "stop":
                    raise UserError(f"{row} (--on-bad-line skip reports such lines and goes on)")
                skipped += 1
                print(f"aezoo detect: {source}: skipped {row}", file=sys.stderr, flush=True)
                continue
            for v in stream.push(row.sample):
                verdicts += 1
                anomalies += v.anomaly
                print(_line(v, row, det.score_kind, as_json), flush=True)
    except KeyboardInterrupt:
        pass  # Ctrl-C ends a stream as the end of input does
    except UserError as exc:
        raise UserError(f"{source}: {exc}") from None
    print(f"aezoo detect: {stream.samples_seen} samples, {verdicts} verdicts, {anomalies} anomalies"
          + (f", {skipped} bad lines skipped" if skipped else "") + f" (threshold {det.threshold_:.6g})",
          file=sys.stderr, flush=True)
    return 0


def _line(v: Verdict, row: Row, score_kind: str, as_json: bool) -> str:
    """One verdict as text or a JSON line; it refers to the newest sample (``row``), its timestamp and label if given."""
    import json

    if as_json:
        doc = {"sample": v.end, "window_start": v.start, "line": row.line, "score": v.score, "anomaly": bool(v.anomaly)}
        doc.update({k: val for k, val in (("timestamp", row.timestamp), ("label", row.label)) if val is not None})
        return json.dumps(doc)
    when = f"  timestamp {row.timestamp}" if row.timestamp is not None else ""
    return f"sample {v.end:>8}{when}  {score_kind}={v.score:.6g}  {'ANOMALY' if v.anomaly else 'normal'}"
