"""Log lines a hostile client cannot multiply: at most a few per second for each kind.

Anything a client can trigger at will (a refused key, a protocol error, a full server, a
failing accept) goes through a `RateLimitedLog`: the first `per_second` lines of a kind in
each one-second window are logged, the rest only counted, and when the window ends one line
says how many were suppressed. A flood of a quarter of a million AUTH packets then costs a
handful of lines, not tens of megabytes of stderr.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

DEFAULT_PER_SECOND = 5
WINDOW_S = 1.0


@dataclass
class _Window:
    start: float
    level: int
    logged: int = 0
    suppressed: int = 0


class RateLimitedLog:
    """A logger's front door for lines a client can trigger, limited per kind."""

    def __init__(self, logger: logging.Logger, per_second: int = DEFAULT_PER_SECOND,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.logger = logger
        self.per_second = per_second
        self._clock = clock
        self._windows: dict[str, _Window] = {}
        self._lock = threading.Lock()

    def log(self, kind: str, level: int, message: str, *args: object, exc_info: bool = False) -> None:
        """Log `message % args` unless `kind` has had its share of lines this second."""
        now = self._clock()
        with self._lock:
            summary = self._close_window(kind, now)
            window = self._windows.get(kind)
            if window is None:
                window = self._windows[kind] = _Window(start=now, level=level)
            emit = window.logged < self.per_second
            if emit:
                window.logged += 1
            else:
                window.suppressed += 1
        if summary:
            self._summarize(kind, *summary)
        if emit:
            self.logger.log(level, message, *args, exc_info=exc_info)

    def flush(self) -> None:
        """Report the suppressed lines of windows that have ended (called now and then)."""
        now = self._clock()
        with self._lock:
            summaries = [(kind, s) for kind in list(self._windows) if (s := self._close_window(kind, now))]
        for kind, (level, count) in summaries:
            self._summarize(kind, level, count)

    def _close_window(self, kind: str, now: float) -> tuple[int, int] | None:
        """Drop `kind`'s window once it is over; (level, suppressed) when lines were held back."""
        window = self._windows.get(kind)
        if window is None or now - window.start < WINDOW_S:
            return None
        del self._windows[kind]
        return (window.level, window.suppressed) if window.suppressed else None

    def _summarize(self, kind: str, level: int, count: int) -> None:
        self.logger.log(level, "suppressed %d similar messages (%s) in the last second", count, kind)
