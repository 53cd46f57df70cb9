"""Progress display: a tqdm bar on a terminal, periodic plain log lines otherwise.

A tqdm bar writes a carriage-return update several times a second; redirected to a file (CI logs,
``netsculpt compress ... > run.log``) that is tens of KB of unreadable lines per epoch. When the stream is not
a terminal, :func:`progress_bar` logs one line (logger ``netsculpt.progress``, level INFO) every
:data:`LOG_INTERVAL_S` seconds and one at the end; a stream passed as ``file`` gets the lines written instead.
"""

from __future__ import annotations

import logging
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any, Generic, TypeVar

from tqdm import tqdm

__all__ = ["LOG_INTERVAL_S", "LogLines", "progress_bar"]

T = TypeVar("T")

logger = logging.getLogger("netsculpt.progress")

LOG_INTERVAL_S = 30.0
"""Seconds between two progress lines when the output is not a terminal."""


class LogLines(Generic[T]):
    """Iterates like tqdm and emits ``desc: i/total unit (pct), elapsed, rate, postfix`` lines now and then.

    The lines go to ``file`` when one is given, else to the ``netsculpt.progress`` logger (INFO).
    """

    def __init__(self, iterable: Iterable[T], *, total: int | None, desc: str, unit: str = "it",
                 file: IO[str] | None = None, interval: float | None = None) -> None:
        self.iterable = iterable
        self.total = total
        self.desc = desc
        self.unit = unit
        self.file = file
        self.interval = LOG_INTERVAL_S if interval is None else interval
        self.n = 0
        self.postfix = ""
        self._start = time.perf_counter()
        self._last = self._start
        self._closed = False

    def __iter__(self) -> Iterator[T]:
        for item in self.iterable:
            yield item
            self.n += 1
            now = time.perf_counter()
            if now - self._last >= self.interval:
                self._last = now
                self._write()

    def set_postfix(self, **values: Any) -> None:
        """Values shown at the end of each line (``loss=..., acc=...``)."""
        self.postfix = ", ".join(f"{k}={v}" for k, v in sorted(values.items()))

    def _write(self, final: bool = False) -> None:
        elapsed = time.perf_counter() - self._start
        of = f"/{self.total}" if self.total is not None else ""
        pct = f" ({100 * self.n / self.total:.0f} %)" if self.total else ""
        rate = f", {self.n / elapsed:.2f} {self.unit}/s" if elapsed > 0 else ""
        post = f", {self.postfix}" if self.postfix else ""
        done = " done" if final else ""
        line = f"{self.desc}:{done} {self.n}{of} {self.unit}{pct}, {elapsed:.0f} s{rate}{post}"
        if self.file is None:
            logger.info("%s", line)
        else:
            self.file.write(line + "\n")
            self.file.flush()

    def close(self) -> None:
        """Emit the final line (once)."""
        if not self._closed:
            self._closed = True
            if self.n:
                self._write(final=True)


def _is_terminal(stream: Any) -> bool:
    try:
        return bool(stream.isatty())
    except (AttributeError, ValueError):
        return False


def progress_bar(iterable: Iterable[T], *, total: int | None, desc: str, enabled: bool = True, unit: str = "batch",
                 file: IO[str] | None = None) -> Any:
    """A tqdm bar when ``file`` (default stderr) is a terminal, else :class:`LogLines` (to ``file`` when one is
    given, else to the ``netsculpt.progress`` logger); nothing when disabled.

    The result iterates over ``iterable`` and has ``set_postfix(**values)`` and ``close()``.
    """
    stream = file if file is not None else sys.stderr
    if not enabled or _is_terminal(stream):
        return tqdm(iterable, total=total, desc=desc, disable=not enabled, file=stream, leave=False,
                    dynamic_ncols=True, unit=unit)
    return LogLines(iterable, total=total, desc=desc, unit=unit, file=file)
