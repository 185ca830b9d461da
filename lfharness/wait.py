"""Retry and wait helpers with explicit timeouts and intervals: the only place that sleeps."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from types import TracebackType
from typing import Self, TypeVar

LOG = logging.getLogger("lfharness.wait")
T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """What was awaited, for how long, and the last thing seen."""


def retry(fn: Callable[[], T], *, timeout: float, interval: float, what: str,
          validator: Callable[[T], bool] | None = None,
          retry_on: tuple[type[Exception], ...] = (Exception,)) -> T:
    """Calls fn until it returns without raising and the validator (if any) accepts the value.

    Exceptions of retry_on count as "not yet"; any other exception propagates at once.
    The last attempt happens at the deadline, so a timeout shorter than the interval still
    gets two tries. Raises WaitTimeout naming `what`, the time spent and the last error/value.
    """
    started = time.monotonic()
    deadline = started + timeout
    attempt, last = 0, "nothing yet"
    while True:
        attempt += 1
        try:
            value = fn()
            if validator is None or validator(value):
                LOG.info("%s: ok after %d attempt(s), %.1fs", what, attempt, time.monotonic() - started)
                return value
            last = f"value not accepted: {value!r}"[:300]
        except retry_on as exc:
            last = f"{type(exc).__name__}: {exc}"[:300]
        now = time.monotonic()
        if now >= deadline:
            raise WaitTimeout(f"gave up waiting for {what} after {now - started:.1f}s "
                              f"(timeout {timeout:g}s, {attempt} attempts); last: {last}")
        pause = min(interval, deadline - now)
        LOG.info("%s: not yet (%s), %.1fs elapsed, retrying in %.1fs", what, last[:120], now - started, pause)
        time.sleep(pause)


class Stopwatch:
    """Times a long operation: logs "<what> ...", an INFO heartbeat every `heartbeat` seconds,
    and "<what> ... done in 12.3s" (or "failed after") when the block ends."""

    def __init__(self, what: str, *, heartbeat: float = 30.0, logger: logging.Logger = LOG) -> None:
        self.what = what
        self._heartbeat = heartbeat
        self._log = logger
        self._started: float | None = None
        self._ended: float | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def elapsed(self) -> float:
        """Seconds since the block started (frozen once it ended); 0 before it started."""
        if self._started is None:
            return 0.0
        return (self._ended if self._ended is not None else time.monotonic()) - self._started

    def _beat(self) -> None:
        # Event.wait doubles as an interruptible sleep: __exit__ sets it and the thread ends at once.
        while not self._stop.wait(self._heartbeat):
            self._log.info("%s ... still running, %.0fs elapsed", self.what, self.elapsed)

    def __enter__(self) -> Self:
        self._started, self._ended = time.monotonic(), None
        self._stop.clear()
        self._log.info("%s ...", self.what)
        if self._heartbeat > 0:
            self._thread = threading.Thread(target=self._beat, name=f"stopwatch:{self.what}", daemon=True)
            self._thread.start()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._ended = time.monotonic()
        self._stop.set()
        if self._thread is not None:
            self._thread.join()
            self._thread = None
        if exc_type is None:
            self._log.info("%s ... done in %.1fs", self.what, self.elapsed)
        else:
            self._log.warning("%s ... failed after %.1fs (%s)", self.what, self.elapsed, exc_type.__name__)
