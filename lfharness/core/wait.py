"""Retry and wait helpers with explicit timeouts and intervals: the only place that sleeps,
and the only place that waits on a child process."""

from __future__ import annotations

import logging
import math
import os
import select
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Self, TypeVar

from lfharness.core import procs

LOG = logging.getLogger("lfharness.core.wait")
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


@dataclass(frozen=True)
class Supervised:
    """How a supervised child process ended.

    timed_out: the timeout expired and the child was stopped; interrupted: the parent got Ctrl-C
    (KeyboardInterrupt) and forwarded it; killed: the child ignored SIGINT for the whole grace
    period (or a second Ctrl-C came) and got SIGKILL.
    """

    returncode: int
    stdout: str
    stderr: str
    seconds: float
    timed_out: bool = False
    interrupted: bool = False
    killed: bool = False


def _stop(proc: subprocess.Popen, grace: float, what: str, logger: logging.Logger,
          operator_interrupted: bool = True) -> tuple[bool, bool]:
    """SIGINT to the child, then SIGKILL to its process group if it has not exited within grace.

    SIGINT first: Terraform then stops starting operations, writes its state and releases the
    lock; SIGKILL would lose both. A Ctrl-C (or SIGTERM) during the grace kills at once when the
    operator had already interrupted (a second one means "now"); when the SIGINT was the timeout's,
    it is the operator's first: the grace is waited out (issue 24 item 8). Returns (killed, whether
    the operator interrupted during the grace).
    """
    logger.warning("%s: sending SIGINT, waiting up to %gs for it to write its state and exit", what, grace)
    proc.send_signal(signal.SIGINT)
    deadline = time.monotonic() + grace
    interrupted_now = False
    while True:
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
            return False, interrupted_now
        except subprocess.TimeoutExpired:
            logger.error("%s: still running %gs after SIGINT; killing it", what, grace)
            break
        except KeyboardInterrupt:
            if operator_interrupted or interrupted_now:
                # A second Ctrl-C means "now": the operator accepts losing what is in flight.
                logger.error("%s: second interrupt; killing it", what)
                break
            interrupted_now = True
            logger.warning("%s: interrupted while it stops after its timeout: still waiting for it to write its "
                           "state (a second Ctrl-C kills it)", what)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return True, interrupted_now


POLL_MAX_SECONDS = 2_000_000.0  # poll() takes a C int of milliseconds: 2**31 - 1 is ~24.8 days


def wait_exit(proc: subprocess.Popen, timeout: float) -> int:
    """proc.wait(timeout=timeout), woken the moment the child exits.

    Popen.wait with a timeout polls, sleeping up to 50 ms between looks: about 25 ms lost per
    command on average, and the tests and rehearsals run Terraform hundreds of times. A pidfd
    (Linux 5.3+) becomes readable when the process exits; where there is none, Popen.wait as before.
    A signal handler that raises (Ctrl-C, SIGTERM via procs) interrupts the wait as it would Popen's.
    """
    if proc.returncode is not None:  # reaped already: its pid may belong to another process by now
        return proc.returncode
    if not 0 <= timeout <= POLL_MAX_SECONDS:  # beyond poll()'s int milliseconds (or inf, or negative)
        return proc.wait(timeout=timeout)
    try:
        pidfd = os.pidfd_open(proc.pid)
    except (AttributeError, OSError):  # not Linux, an old kernel, or the child already reaped
        return proc.wait(timeout=timeout)
    try:
        poller = select.poll()
        poller.register(pidfd, select.POLLIN)
        if not poller.poll(math.ceil(timeout * 1000)):  # rounded up: never ends before the timeout
            raise subprocess.TimeoutExpired(proc.args, timeout)
    finally:
        os.close(pidfd)
    return proc.wait()


def _record(pid_file: Path, pid: int, what: str, logger: logging.Logger) -> procs.PidRecord | None:
    """The child's pid record, or None with a warning when it cannot be written: the child is
    supervised either way, only a later run could not find it if this one were killed."""
    try:
        return procs.PidRecord.write(pid_file, pid, what)
    except OSError as exc:
        logger.warning("%s: could not record pid %d in %s (%s); if this run is killed, a later teardown "
                       "will not know that it still runs", what, pid, pid_file, exc)
        return None


def run_supervised(argv: Sequence[str], *, cwd: Path, env: Mapping[str, str], timeout: float, grace: float,
                   what: str, stdin: str | None = None, heartbeat: float = 30.0,
                   logger: logging.Logger = LOG, pid_file: Path | None = None) -> Supervised:
    """Runs argv to completion, with a deadline and with Ctrl-C forwarded instead of fatal.

    The child gets its own session, so a Ctrl-C in the terminal reaches only this process; the
    KeyboardInterrupt is then forwarded as exactly one SIGINT (a second one would make Terraform
    exit without writing its state). On expiry of `timeout` the child gets the same SIGINT.
    Either way it has `grace` seconds to exit before its whole process group is killed.
    Output goes to temporary files, not pipes: a long-running child can never block on a full pipe.
    The caller re-raises KeyboardInterrupt when `interrupted` is set, after keeping the output.
    pid_file: where the running child is recorded (procs.PidRecord) until it ends, so a later run
    can find it if this process is killed first (the child, in its own session, lives on).
    """
    timed_out = interrupted = killed = False
    with (tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as out,
          tempfile.TemporaryFile("w+", encoding="utf-8", errors="replace") as err,
          Stopwatch(what, heartbeat=heartbeat, logger=logger) as watch):
        proc = subprocess.Popen(list(argv), cwd=cwd, env=dict(env), text=True, start_new_session=True,
                                stdin=subprocess.DEVNULL if stdin is None else subprocess.PIPE,
                                stdout=out, stderr=err)
        record = None
        try:  # from the start: an interrupt while the record is written must stop the child too
            record = _record(pid_file, proc.pid, what, logger) if pid_file is not None else None
            if stdin is not None and proc.stdin is not None:
                proc.stdin.write(stdin)
                proc.stdin.close()
            wait_exit(proc, timeout)
        except subprocess.TimeoutExpired:
            timed_out = True
            logger.error("%s: no result after its timeout of %gs", what, timeout)
            killed, interrupted = _stop(proc, grace, what, logger, operator_interrupted=False)
        except KeyboardInterrupt:
            interrupted = True
            logger.warning("%s: interrupted (Ctrl-C or SIGTERM)", what)
            killed, _ = _stop(proc, grace, what, logger)
        finally:
            if pid_file is not None and proc.poll() is not None:
                # Also when the interrupt came before `record` was returned, if the file names this child.
                held = record or procs.PidRecord.read(pid_file)
                if held is not None and held.pid == proc.pid:
                    procs.remove_record(pid_file, held)
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
    return Supervised(proc.returncode, stdout, stderr, watch.elapsed, timed_out, interrupted, killed)
