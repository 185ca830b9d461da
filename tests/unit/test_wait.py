"""Retry and Stopwatch: explicit timeout and interval, messages that say what was awaited (static).

The e2e suite waits on pods, the health endpoint (FR22), traces and the teardown sweep through
these helpers; here they run against plain Python callables.
"""

from __future__ import annotations

import logging
import math
import os
import re
import subprocess
import sys
import threading
import time

import pytest

from lfharness.core.wait import Stopwatch, WaitTimeout, retry, wait_exit

pytestmark = pytest.mark.static


def _fails_then(n: int, value: str):
    calls: list[int] = []

    def fn() -> str:
        calls.append(1)
        if len(calls) <= n:
            raise ConnectionError(f"refused #{len(calls)}")
        return value

    return fn, calls


def test_retry_returns_the_value_after_n_failures():
    """FR22: a check that fails three times and then answers is retried until it does."""
    fn, calls = _fails_then(3, "ready")
    assert retry(fn, timeout=5, interval=0.01, what="flaky service") == "ready"
    assert len(calls) == 4


def test_retry_waits_for_the_validator_to_accept_the_value():
    """FR22: a health check keeps polling until the validator accepts 200, not merely until no error."""
    values = iter([503, 502, 200])
    assert retry(lambda: next(values), timeout=5, interval=0.01, what="health", validator=lambda v: v == 200) == 200


def test_timeout_message_names_what_was_awaited():
    """FR22: a timeout says what it was waiting for."""
    fn, _ = _fails_then(10**6, "never")
    with pytest.raises(WaitTimeout, match=r"gave up waiting for pods Ready after"):
        retry(fn, timeout=0.05, interval=0.01, what="pods Ready")


def test_timeout_message_carries_the_duration_and_last_error():
    """FR22: a timeout says how long it waited and the last error it saw."""
    fn, calls = _fails_then(10**6, "never")
    with pytest.raises(WaitTimeout) as err:
        retry(fn, timeout=0.05, interval=0.01, what="pods Ready")
    assert re.search(r"after \d+\.\ds \(timeout 0\.05s", str(err.value))
    assert f"ConnectionError: refused #{len(calls)}" in str(err.value)


def test_timeout_message_carries_the_last_rejected_value():
    """FR22: when the validator keeps rejecting, the timeout shows the last value."""
    with pytest.raises(WaitTimeout, match=r"value not accepted: 503"):
        retry(lambda: 503, timeout=0.05, interval=0.01, what="health", validator=lambda v: v == 200)


def test_errors_outside_retry_on_propagate_at_once():
    """FR22: a programming error is not mistaken for "not ready yet" and is raised on the first call."""
    calls: list[int] = []

    def broken() -> None:
        calls.append(1)
        raise KeyError("bug")

    with pytest.raises(KeyError):
        retry(broken, timeout=5, interval=0.01, what="x", retry_on=(ConnectionError,))
    assert calls == [1]


def test_stopwatch_logs_done_with_the_elapsed_time(caplog):
    """FR31: a long operation logs "<what> ... done in N.Ns" when it ends."""
    with caplog.at_level(logging.INFO, logger="lfharness.core.wait"), Stopwatch("terraform apply 01-network"):
        pass
    assert re.search(r"terraform apply 01-network \.\.\. done in \d+\.\ds", caplog.text)


def test_stopwatch_logs_a_heartbeat_while_running(caplog):
    """FR31: a long operation logs a "still running" line every heartbeat interval."""
    beat_seen = threading.Event()

    class _Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "still running" in record.getMessage():
                beat_seen.set()

    spy = _Spy()
    logging.getLogger("lfharness.core.wait").addHandler(spy)
    try:
        with caplog.at_level(logging.INFO, logger="lfharness.core.wait"), Stopwatch("helm install", heartbeat=0.02):
            assert beat_seen.wait(5), "no heartbeat within 5 s"
    finally:
        logging.getLogger("lfharness.core.wait").removeHandler(spy)
    assert "helm install ... still running" in caplog.text


def test_stopwatch_reports_failure_and_lets_the_error_through(caplog):
    """FR31: a failing operation logs "failed after" and its exception still propagates."""
    with (caplog.at_level(logging.INFO, logger="lfharness.core.wait"), pytest.raises(RuntimeError, match="boom"),
          Stopwatch("terraform destroy")):
        raise RuntimeError("boom")
    assert "terraform destroy ... failed after" in caplog.text


def test_wait_exit_returns_the_exit_code_of_a_child_that_ends():
    """Issue 17: the supervised wait (woken by the child's pidfd, not polling) gives the child's own
    exit code (a real child process)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(3)"])
    assert wait_exit(child, timeout=60) == 3


def test_wait_exit_raises_timeout_expired_for_a_child_outliving_its_timeout():
    """Issue 10 item 8: a child that outlives its timeout raises TimeoutExpired, which run_supervised
    turns into SIGINT then SIGKILL; the child itself is left running for that (a real sleeping child)."""
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(child, timeout=0.3)
        assert child.poll() is None
    finally:
        child.kill()
        child.wait(timeout=10)


def test_timeout_message_counts_the_attempts_made():
    """FR22: a timeout says how many times the check was tried, so an operator can tell "asked once,
    then gave up" from "asked every interval"."""
    fn, calls = _fails_then(10**6, "never")
    with pytest.raises(WaitTimeout) as err:
        retry(fn, timeout=0.05, interval=0.01, what="pods Ready")
    assert f"{len(calls)} attempts)" in str(err.value)


def test_timeout_message_gives_the_time_actually_waited():
    """FR22: the "after N s" of a timeout is the time this wait took, not another clock reading."""
    fn, _ = _fails_then(10**6, "never")
    started = time.monotonic()
    with pytest.raises(WaitTimeout) as err:
        retry(fn, timeout=0.05, interval=0.01, what="pods Ready")
    took = time.monotonic() - started
    waited = float(re.search(r"after (\d+\.\d)s", str(err.value)).group(1))
    assert 0.0 <= waited <= took + 0.1


def test_retry_logs_each_miss_and_the_success_with_what_it_waits_for(caplog):
    """FR31: every miss is logged with what is awaited, the error seen and the time so far, and the
    success with the number of attempts and the time it took."""
    fn, _ = _fails_then(2, "ready")
    with caplog.at_level(logging.INFO, logger="lfharness.core.wait"):
        retry(fn, timeout=30, interval=0.01, what="flaky service")
    lines = [r.getMessage() for r in caplog.records if r.name == "lfharness.core.wait"]
    assert re.fullmatch(r"flaky service: not yet \(ConnectionError: refused #1\), \d+\.\ds elapsed, retrying in 0\.0s",
                        lines[0]), lines
    ok = re.fullmatch(r"flaky service: ok after 3 attempt\(s\), (\d+\.\d)s", lines[-1])
    assert ok and float(ok.group(1)) < 30, lines
    assert all(float(m) < 30 for m in re.findall(r"(\d+\.\d)s elapsed", " ".join(lines)))


def test_a_timeout_shorter_than_the_interval_still_gets_its_last_try_at_the_deadline():
    """FR22: the last attempt happens at the deadline, not an interval after it: a 0.2 s timeout with
    a 30 s interval tries twice and gives up after about 0.2 s."""
    fn, calls = _fails_then(10**6, "never")
    started = time.monotonic()
    with pytest.raises(WaitTimeout):
        retry(fn, timeout=0.2, interval=30, what="pods Ready")
    assert (len(calls), time.monotonic() - started < 10) == (2, True)


def test_stopwatch_lines_say_what_runs_its_heartbeat_and_how_it_ended(caplog):
    """FR31: the operator reads "<what> ...", "<what> ... still running, Ns elapsed" and
    "<what> ... done in N.Ns" (or "failed after N.Ns (<error>)"), exactly so."""
    beat_seen = threading.Event()

    class _Spy(logging.Handler):
        def emit(self, record: logging.LogRecord) -> None:
            if "still running" in record.getMessage():
                beat_seen.set()

    logger = logging.getLogger("lfharness.test.stopwatch")
    logger.addHandler(spy := _Spy())
    try:
        with caplog.at_level(logging.INFO, logger=logger.name):
            with Stopwatch("helm install", heartbeat=0.02, logger=logger):
                assert beat_seen.wait(5), "no heartbeat within 5 s"
            with pytest.raises(RuntimeError), Stopwatch("terraform destroy", heartbeat=0, logger=logger):
                raise RuntimeError("boom")
    finally:
        logger.removeHandler(spy)
    lines = [r.getMessage() for r in caplog.records if r.name == logger.name]
    patterns = [r"helm install \.\.\.", r"helm install \.\.\. still running, \d+s elapsed",
                r"helm install \.\.\. done in \d+\.\ds", r"terraform destroy \.\.\.",
                r"terraform destroy \.\.\. failed after \d+\.\ds \(RuntimeError\)"]
    assert all(any(re.fullmatch(p, line) for line in lines) for p in patterns), lines


def test_a_stopwatch_with_heartbeat_0_logs_no_heartbeat(caplog):
    """FR31: heartbeat 0 turns the "still running" lines off (not on, at every instant)."""
    with caplog.at_level(logging.INFO, logger="lfharness.core.wait"), Stopwatch("short step", heartbeat=0):
        time.sleep(0.05)
    assert [r.getMessage() for r in caplog.records if "still running" in r.getMessage()] == []


def test_a_stopwatch_reads_0_before_it_starts_and_stays_frozen_once_it_ended():
    """FR31: the time a supervised command reports is the block's own: 0 before it began, and not
    growing after it ended."""
    watch = Stopwatch("terraform plan", heartbeat=0)
    before = watch.elapsed
    with watch:
        time.sleep(0.01)
    ended = watch.elapsed
    time.sleep(0.05)
    assert (before, ended > 0, watch.elapsed == ended) == (0.0, True, True)


def test_wait_exit_with_an_unbounded_timeout_waits_for_the_child():
    """Issue 17: a timeout beyond poll()'s range (infinite: "wait as long as it takes") waits for the
    child and gives its exit code (a real child process)."""
    child = subprocess.Popen([sys.executable, "-c", "import sys; sys.exit(4)"])
    assert wait_exit(child, timeout=math.inf) == 4


def test_wait_exit_without_pidfd_still_times_out(monkeypatch):
    """Issue 17: where the kernel or platform has no pidfd (macOS, Linux before 5.3), a child that
    outlives its timeout still raises TimeoutExpired (a real sleeping child; os.pidfd_open removed)."""
    monkeypatch.delattr(os, "pidfd_open")
    child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        with pytest.raises(subprocess.TimeoutExpired):
            wait_exit(child, timeout=0.3)
    finally:
        child.kill()
        child.wait(timeout=10)
