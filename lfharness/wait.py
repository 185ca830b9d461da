"""Retry and wait helpers with explicit timeouts and intervals: the only place that sleeps."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import TypeVar

LOG = logging.getLogger("lfharness.wait")
T = TypeVar("T")


class WaitTimeout(TimeoutError):
    """What was awaited, for how long, and the last thing seen."""


def retry(fn: Callable[[], T], *, timeout: float, interval: float, what: str,
          validator: Callable[[T], bool] | None = None) -> T:
    """Calls fn until it returns without raising and the validator accepts the value."""
    started = time.monotonic()
    attempt, last = 0, "nothing yet"
    while True:
        attempt += 1
        try:
            value = fn()
            if validator is None or validator(value):
                LOG.info("%s: ok after %d attempt(s), %.1fs", what, attempt, time.monotonic() - started)
                return value
            last = f"value not accepted: {value!r}"[:300]
        except Exception as exc:  # noqa: BLE001 (any failure is retried until the deadline)
            last = f"{type(exc).__name__}: {exc}"[:300]
        elapsed = time.monotonic() - started
        if elapsed + interval > timeout:
            raise WaitTimeout(f"gave up waiting for {what} after {elapsed:.0f}s ({attempt} attempts); last: {last}")
        LOG.info("%s: not yet (%s), %.0fs elapsed, retrying in %.0fs", what, last[:120], elapsed, interval)
        time.sleep(interval)
