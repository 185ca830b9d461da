"""Retry helper: explicit timeout and interval, a message that says what it waited for (static)."""

from __future__ import annotations

import pytest

from lfharness.wait import WaitTimeout, retry

pytestmark = pytest.mark.static


def test_retry_returns_once_the_call_succeeds():
    """Style: waits retry until success instead of sleeping."""
    calls = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("not yet")
        return "ready"

    assert retry(flaky, timeout=5, interval=0.01, what="flaky service") == "ready"
    assert len(calls) == 3


def test_retry_uses_the_validator():
    """Style: HTTP-like checks retry until a custom validator accepts the value."""
    values = iter([503, 503, 200])
    assert retry(lambda: next(values), timeout=5, interval=0.01, what="health", validator=lambda v: v == 200) == 200


def test_timeout_names_what_it_waited_for_and_the_last_error():
    """Style: a timeout message says what, how long, and the last thing seen."""
    def always() -> None:
        raise ConnectionError("connection refused")

    with pytest.raises(WaitTimeout, match=r"gave up waiting for pods Ready after .*connection refused"):
        retry(always, timeout=0.05, interval=0.01, what="pods Ready")
