"""How the harness ends: SIGTERM handled like Ctrl-C, helper processes that die with the harness,
and the record of the Terraform processes it started (issue 15 defect 4).

* A CI runner cancelling a job sends SIGINT, then SIGTERM 7.5 s later, then kills. Python dies at
  once on SIGTERM, skipping every finalizer, so `handle_termination` makes SIGTERM raise
  KeyboardInterrupt like Ctrl-C. Only the first of the two counts: a SIGTERM after an interrupt is
  already being handled is logged and ignored, so the runner's pair never reads as a second Ctrl-C
  (which kills Terraform without its state). A person's second Ctrl-C still means "now".
  Installed for every pytest session by `-p lfharness.core.procs` (pytest.ini) and by `python -m lfharness`.
* `popen_tied` starts helpers (kubectl port-forward) with PR_SET_PDEATHSIG: the kernel sends them
  SIGTERM when the harness dies, even by SIGKILL. Terraform is not tied: it must outlive a killed
  harness to write its state and release its lock.
* `PidRecord` is a small JSON file beside a running Terraform (pid, start time, what it runs),
  removed when it ends. A later teardown reads it to wait for, or interrupt, a Terraform a
  cancelled run left behind before it touches the lock (tf.wait_for_live_terraform).
"""

from __future__ import annotations

import ctypes
import json
import logging
import os
import signal
import socket
import subprocess
import sys
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any

LOG = logging.getLogger("lfharness.core.procs")

_PR_SET_PDEATHSIG = 1  # linux/prctl.h


class _Termination:
    """The signal handlers of one process; `stopping` once an interrupt has been raised."""

    def __init__(self) -> None:
        self.stopping = False

    def on_sigint(self, signum: int, frame: FrameType | None) -> None:
        self.stopping = True
        signal.default_int_handler(signum, frame)  # raises KeyboardInterrupt, as without this handler

    def on_sigterm(self, signum: int, frame: FrameType | None) -> None:
        if self.stopping:
            LOG.warning("SIGTERM while already stopping after an interrupt: ignored, the teardown goes on")
            return
        self.stopping = True
        LOG.warning("SIGTERM: stopping as after Ctrl-C (Terraform gets one SIGINT, then finalizers and teardown run)")
        raise KeyboardInterrupt("SIGTERM")


def handle_termination() -> Callable[[], None]:
    """Installs the SIGINT/SIGTERM handlers (main thread only); returns what restores the previous ones."""
    handlers = _Termination()
    previous = {sig: signal.signal(sig, handler)
                for sig, handler in ((signal.SIGINT, handlers.on_sigint), (signal.SIGTERM, handlers.on_sigterm))}

    def undo() -> None:
        for sig, handler in previous.items():
            signal.signal(sig, handler)

    return undo


def pytest_configure(config: Any) -> None:
    """As a pytest plugin (-p lfharness.core.procs in pytest.ini): the session handles SIGTERM like Ctrl-C.
    (A plain hook function: the harness's operator commands import this module without pytest.)"""
    config.add_cleanup(handle_termination())


# --- helpers that die with the harness --------------------------------------------------------

def _tie_to_parent(libc: Any, parent: int, death_signal: int = signal.SIGTERM) -> Callable[[], None]:
    def preexec() -> None:
        # Runs in the child between fork and exec: nothing but the prctl call and a check.
        libc.prctl(_PR_SET_PDEATHSIG, int(death_signal), 0, 0, 0)
        if os.getppid() != parent:  # the parent died before prctl took effect
            os._exit(1)
    return preexec


def popen_tied(argv: Sequence[str], *, death_signal: int = signal.SIGTERM, **kwargs: Any) -> subprocess.Popen:
    """subprocess.Popen whose child gets SIGTERM (or death_signal) from the kernel when the harness dies (Linux).

    PR_SET_PDEATHSIG fires when the thread that started the child ends: start tied children from
    the thread that keeps them (the harness starts port-forwards from the main thread). Elsewhere
    than Linux the child is started untied, with a log line saying so.
    """
    if not sys.platform.startswith("linux"):
        LOG.warning("%s: not tied to the harness's lifetime (PR_SET_PDEATHSIG is Linux only)", argv[0])
        return subprocess.Popen(list(argv), **kwargs)
    libc = ctypes.CDLL(None, use_errno=True)  # resolved here, not in the forked child
    return subprocess.Popen(list(argv), preexec_fn=_tie_to_parent(libc, os.getpid(), death_signal), **kwargs)


# --- the record of a running Terraform ---------------------------------------------------------

def _start_ticks(pid: int) -> int | None:
    """The process's start time in clock ticks since boot (/proc/<pid>/stat field 22), None when
    there is no such process or it is a zombie: with the pid, it names one process even after the
    pid is reused."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    fields = stat.rsplit(")", 1)[1].split()  # the command name in parentheses may contain spaces
    if fields[0] == "Z":
        return None
    return int(fields[19])


@dataclass(frozen=True)
class PidRecord:
    """A running process as recorded in a pid file: pid, start ticks, and what it does."""

    pid: int
    start: int
    what: str

    @classmethod
    def write(cls, path: Path, pid: int, what: str) -> PidRecord | None:
        start = _start_ticks(pid)
        if start is None:
            return None  # ended already
        record = cls(pid, start, what)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"pid": pid, "start": start, "what": what}))
        return record

    @classmethod
    def read(cls, path: Path) -> PidRecord | None:
        """The record in `path`, or None when there is none or it cannot be read."""
        try:
            data = json.loads(path.read_text())
            return cls(int(data["pid"]), int(data["start"]), str(data["what"]))
        except (OSError, ValueError, KeyError, TypeError):
            return None

    @property
    def alive(self) -> bool:
        return _start_ticks(self.pid) == self.start

    def signal(self, sig: signal.Signals, *, group: bool = False) -> None:
        """Sends sig to the process (or its process group) if it is still the recorded one."""
        if not self.alive:
            return
        try:
            if group:
                os.killpg(self.pid, sig)
            else:
                os.kill(self.pid, sig)
        except ProcessLookupError:
            pass  # ended meanwhile


def remove_record(path: Path, record: PidRecord | None) -> None:
    """Removes the pid file if it still holds `record` (another process may have written its own since)."""
    if record is not None and PidRecord.read(path) == record:
        path.unlink(missing_ok=True)


def end(proc: subprocess.Popen, grace: float = 10) -> None:
    """Ends a child the harness started, by its PID: SIGTERM, then SIGKILL after `grace` seconds."""
    if proc.poll() is None:
        proc.terminate()
    try:
        proc.wait(timeout=grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout=grace)


def free_port() -> int:
    """A TCP port free on 127.0.0.1 right now (the server binds it moments later)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# --- what the harness did to a Terraform it started (issue 24 items 2 and 8) ----------------------

def on_interrupt(callback: Callable[[str], None]) -> Callable[[], None]:
    """Calls `callback(signal name)` each time SIGINT or SIGTERM makes this process raise
    KeyboardInterrupt (the one run_supervised forwards to its child as SIGINT), before the exception
    goes on; a SIGTERM that `handle_termination` ignores calls nothing. Wraps the handlers in place
    (main thread only; elsewhere, or for a signal left to its default action, nothing is wrapped) and
    returns what puts them back. The callback's own errors are logged, never raised."""
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    wrapped: dict[int, tuple[Any, Any]] = {}

    def wrap(previous: Callable[[int, FrameType | None], Any]) -> Callable[[int, FrameType | None], None]:
        def handler(signum: int, frame: FrameType | None) -> None:
            try:
                previous(signum, frame)
            except KeyboardInterrupt:
                try:
                    callback(signal.Signals(signum).name)
                except Exception:  # a record that cannot be written must not stop the interrupt
                    LOG.exception("could not record the interrupt")
                raise
        return handler

    for sig in (signal.SIGINT, signal.SIGTERM):
        previous = signal.getsignal(sig)
        if callable(previous):
            mine = wrap(previous)
            signal.signal(sig, mine)
            wrapped[sig] = (previous, mine)

    def undo() -> None:
        for sig, (previous, mine) in wrapped.items():
            if signal.getsignal(sig) is mine:  # not someone else's handler installed meanwhile
                signal.signal(sig, previous)

    return undo


def write_json(path: Path, data: dict[str, Any]) -> None:
    """Writes a small JSON record whole (a temporary file renamed over it): a reader never sees half."""
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    partial.write_text(json.dumps(data))
    os.replace(partial, path)


def read_json(path: Path) -> dict[str, Any] | None:
    """The JSON object in `path`, or None when there is none or it cannot be read."""
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError):
        return None
    return data if isinstance(data, dict) else None
