"""Progress of long loops: a tqdm bar on a terminal, plain lines in a file or a CI log.

A tqdm bar redraws itself with carriage returns, which a log file keeps as one
line of hundreds of updates; :func:`progress` gives a bar only when stderr is a
terminal and otherwise prints one line per step (at most about 20 per loop).
It takes the tqdm arguments the project uses: an iterable or ``total``, ``desc``,
``unit``; and supports ``update``, ``set_postfix_str``, ``write`` and ``close``.
"""

from __future__ import annotations

import math
import sys
import time
from typing import Any, Iterable, Iterator

# A log gets at most this many progress lines per loop (every step when it has fewer).
LOG_LINES = 20


def progress(iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
             **tqdm_options: Any) -> Any:
    """A tqdm bar when stderr is a terminal, else a :class:`LogProgress` with the same methods."""
    if sys.stderr.isatty():
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, **tqdm_options)
    if tqdm_options.get("disable"):
        return LogProgress(iterable, total=total, desc=desc, unit=unit, quiet=True)
    return LogProgress(iterable, total=total, desc=desc, unit=unit)


class LogProgress:
    """Progress as plain lines on stderr: ``DESC: UNIT N of TOTAL (S s) POSTFIX``."""

    def __init__(self, iterable: Iterable | None = None, *, total: int | None = None, desc: str = "", unit: str = "it",
                 quiet: bool = False):
        self.iterable = iterable
        self.total = total if total is not None else (len(iterable) if hasattr(iterable, "__len__") else None)
        self.desc, self.unit, self.quiet = desc, unit, quiet
        self.n, self.postfix, self.start = 0, "", time.monotonic()
        self.every = max(1, math.ceil(self.total / LOG_LINES)) if self.total else 1

    def __iter__(self) -> Iterator:
        for item in self.iterable or ():
            yield item
            self.update(1)

    def __enter__(self) -> "LogProgress":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def update(self, n: int = 1) -> None:
        """Count ``n`` more steps; print a line every ``every`` steps and at the last."""
        self.n += n
        if not self.quiet and (self.n % self.every == 0 or self.n == self.total):
            of = f" of {self.total}" if self.total is not None else ""
            tail = f" {self.postfix}" if self.postfix else ""
            print(f"{self.desc}: {self.unit} {self.n}{of} ({time.monotonic() - self.start:.0f} s){tail}",
                  file=sys.stderr, flush=True)

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        """What the next line ends with (the item being worked on)."""
        self.postfix = s

    def write(self, s: str, file: Any = None) -> None:
        """Print a message line (as ``tqdm.write``)."""
        print(s, file=file or sys.stdout, flush=True)

    def close(self) -> None:
        """Nothing to clear: the lines are already written."""
