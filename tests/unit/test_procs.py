"""How the harness ends (issue 15 defect 4, issue 24 items 2 and 8): a SIGTERM (a CI cancel) ends it like
Ctrl-C so its teardown still runs; the helpers it starts (kubectl port-forward) are stopped by their PID
and die with it; the Terraform processes it starts are recorded, found again by a later run and
stopped only while they are still the recorded process.

Stand-ins: the signals are real ones raised in the test process (its SIGINT/SIGTERM handlers installed
by the test, and put back after); the "harness" that dies is a small Python child that starts a tied
helper; the helpers and the recorded processes are small Python children (no Terraform, no kubectl).
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import textwrap
import threading
import time
import types
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from lfharness.core import procs
from lfharness.core.wait import retry

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
LOGGER = "lfharness.core.procs"


class Previous(Exception):
    """Raised by the handlers the test installs before the harness's: the signal reached them."""


def _previous(signum: int, frame: Any) -> None:
    raise Previous(signal.Signals(signum).name)


@pytest.fixture
def handlers() -> Iterator[None]:
    """SIGINT and SIGTERM handled by `_previous` while the test runs (never the default action, which
    would end the test process), the session's own handlers put back after."""
    saved = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    for sig in saved:
        signal.signal(sig, _previous)
    yield
    for sig, handler in saved.items():
        signal.signal(sig, handler)


def deliver(sig: signal.Signals) -> str:
    """Raises sig in this process: what its handler did ("interrupt" with the interrupt's text, as a
    traceback shows it, "previous SIGINT", "nothing")."""
    try:
        signal.raise_signal(sig)
    except KeyboardInterrupt as exc:
        return f"interrupt {exc}".strip()
    except Previous as exc:
        return f"previous {exc}"
    return "nothing"


def messages(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


# --- SIGTERM ends the harness like Ctrl-C ---------------------------------------------------------

def test_sigterm_stops_the_harness_like_ctrl_c_so_its_teardown_runs(handlers, caplog):
    """Issue 15 defect 4: a CI cancel's SIGTERM raises KeyboardInterrupt as Ctrl-C does (Python's default
    would end the process skipping every finalizer); the interrupt and the log say it was a SIGTERM."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    undo = procs.handle_termination()
    try:
        assert deliver(signal.SIGTERM) == "interrupt SIGTERM"
    finally:
        undo()
    assert any("SIGTERM" in m and "Ctrl-C" in m for m in messages(caplog))


def test_ctrl_c_still_interrupts_with_the_harness_handlers(handlers):
    """Issue 15 defect 4: Ctrl-C keeps raising KeyboardInterrupt once the harness's handlers are in."""
    undo = procs.handle_termination()
    try:
        assert deliver(signal.SIGINT) == "interrupt"
    finally:
        undo()


def test_the_cancels_sigterm_after_its_sigint_is_ignored_while_the_teardown_goes_on(handlers, caplog):
    """Issue 15 defect 4: a CI runner sends SIGINT, then SIGTERM 7.5 s later; the SIGTERM arriving while
    the first interrupt is handled does not interrupt the teardown a second time (which would kill
    Terraform without its state), and the log says it was ignored."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    undo = procs.handle_termination()
    try:
        assert (deliver(signal.SIGINT), deliver(signal.SIGTERM)) == ("interrupt", "nothing")
    finally:
        undo()
    assert any("SIGTERM" in m and "ignored" in m for m in messages(caplog))


def test_a_second_sigterm_is_ignored_too(handlers):
    """Issue 15 defect 4: once a SIGTERM has stopped the harness, another one does not interrupt its teardown."""
    undo = procs.handle_termination()
    try:
        assert (deliver(signal.SIGTERM), deliver(signal.SIGTERM)) == ("interrupt SIGTERM", "nothing")
    finally:
        undo()


def test_a_persons_second_ctrl_c_still_means_now(handlers):
    """Issue 15 defect 4: after the first interrupt, a second Ctrl-C still interrupts (the operator's "now")."""
    undo = procs.handle_termination()
    try:
        assert (deliver(signal.SIGINT), deliver(signal.SIGINT)) == ("interrupt", "interrupt")
    finally:
        undo()


def test_undoing_the_handlers_gives_both_signals_back_to_the_previous_ones(handlers):
    """What handle_termination returns puts the handlers it replaced back (a test or command that
    installed them leaves the process as it found it)."""
    procs.handle_termination()()
    assert (deliver(signal.SIGINT), deliver(signal.SIGTERM)) == ("previous SIGINT", "previous SIGTERM")


class _Config:
    """A stand-in for pytest's Config: the cleanups a plugin registers, run at the session's end."""

    def __init__(self) -> None:
        self.cleanups: list[Callable[[], None]] = []

    def add_cleanup(self, func: Callable[[], None]) -> None:
        self.cleanups.append(func)


def test_a_pytest_session_handles_sigterm_like_ctrl_c_until_it_ends(handlers):
    """Issue 15 defect 4: as a pytest plugin (-p lfharness.core.procs) the session's SIGTERM interrupts
    like Ctrl-C, and the session's end puts the previous handlers back (a stand-in pytest Config)."""
    config = _Config()
    procs.pytest_configure(config)
    during = deliver(signal.SIGTERM)
    for cleanup in config.cleanups:
        cleanup()
    assert (during, deliver(signal.SIGTERM)) == ("interrupt SIGTERM", "previous SIGTERM")


# --- what the harness did to a Terraform it started: on_interrupt ------------------------------------

def test_each_interrupt_is_reported_by_its_signal_name(handlers):
    """Issue 24 item 8: the callback (tf.run records the SIGINT forwarded to Terraform) hears of every
    interrupt by its signal's name: Ctrl-C's SIGINT, a person's second one, and a CI cancel's SIGTERM."""
    heard: list[str] = []
    undo_termination = procs.handle_termination()
    undo = procs.on_interrupt(heard.append)
    try:
        outcomes = [deliver(signal.SIGTERM), deliver(signal.SIGINT)]
    finally:
        undo()
        undo_termination()
    assert (outcomes, heard) == (["interrupt SIGTERM", "interrupt"], ["SIGTERM", "SIGINT"])


def test_a_sigterm_the_harness_ignores_is_not_reported(handlers):
    """Issue 24 item 8: the cancel's SIGTERM after its SIGINT interrupts nothing, so nothing is recorded
    as sent to Terraform for it."""
    heard: list[str] = []
    undo_termination = procs.handle_termination()
    undo = procs.on_interrupt(heard.append)
    try:
        outcomes = [deliver(signal.SIGINT), deliver(signal.SIGTERM)]
    finally:
        undo()
        undo_termination()
    assert (outcomes, heard) == (["interrupt", "nothing"], ["SIGINT"])


def test_a_record_that_cannot_be_written_does_not_stop_the_interrupt(handlers, caplog):
    """Issue 24 item 8: the callback's own error is logged and the interrupt goes on (the teardown runs)."""
    caplog.set_level(logging.ERROR, logger=LOGGER)

    def broken(name: str) -> None:
        raise OSError("disk full")

    signal.signal(signal.SIGINT, signal.default_int_handler)  # Ctrl-C as Python handles it
    undo = procs.on_interrupt(broken)
    try:
        outcome = deliver(signal.SIGINT)
    finally:
        undo()
    assert (outcome, any("could not record the interrupt" in m for m in messages(caplog))) == (
        "interrupt", True)


def test_the_signal_handled_before_is_still_called(handlers):
    """on_interrupt wraps the handler in place: a signal whose handler does not interrupt is passed
    to it unchanged (its number and the interrupted frame), and nothing is reported."""
    heard: list[str] = []
    got: list[tuple[int, bool]] = []
    signal.signal(signal.SIGTERM, lambda signum, frame: got.append((signum, isinstance(frame, types.FrameType))))
    undo = procs.on_interrupt(heard.append)
    try:
        outcome = deliver(signal.SIGTERM)
    finally:
        undo()
    assert (outcome, got, heard) == ("nothing", [(signal.SIGTERM, True)], [])


def test_a_signal_left_ignored_stays_ignored(handlers):
    """on_interrupt wraps nothing for a signal whose action is not a Python handler: an ignored SIGTERM
    is still ignored (the process goes on)."""
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    undo = procs.on_interrupt(lambda name: None)
    try:
        outcome = deliver(signal.SIGTERM)
    finally:
        undo()
    assert (outcome, signal.getsignal(signal.SIGTERM)) == ("nothing", signal.SIG_IGN)


def test_undoing_on_interrupt_stops_the_reports(handlers):
    """What on_interrupt returns puts the handlers it wrapped back: later interrupts report nothing."""
    heard: list[str] = []
    procs.on_interrupt(heard.append)()
    assert ((deliver(signal.SIGINT), deliver(signal.SIGTERM)), heard) == (
        ("previous SIGINT", "previous SIGTERM"), [])


def test_undoing_on_interrupt_keeps_a_handler_installed_since(handlers):
    """The undo leaves a handler someone else installed after on_interrupt in place."""
    undo = procs.on_interrupt(lambda name: None)
    signal.signal(signal.SIGINT, signal.default_int_handler)
    undo()
    assert (deliver(signal.SIGINT), deliver(signal.SIGTERM)) == ("interrupt", "previous SIGTERM")


def test_on_interrupt_off_the_main_thread_changes_nothing(handlers):
    """Signal handlers belong to the main thread: from another thread on_interrupt wraps nothing (and
    raises nothing), and its undo is harmless."""
    undos: list[Callable[[], None]] = []
    thread = threading.Thread(target=lambda: undos.append(procs.on_interrupt(lambda name: None)))
    thread.start()
    thread.join()
    undos[0]()
    assert (signal.getsignal(signal.SIGINT), signal.getsignal(signal.SIGTERM)) == (_previous, _previous)


# --- helpers stopped by their PID, and dying with the harness ---------------------------------------

HELPER = textwrap.dedent('''\
    import signal, sys, time
    from pathlib import Path
    log = Path(sys.argv[1])

    def note(signum, frame):
        log.write_text(signal.Signals(signum).name)
        sys.exit(0)

    for sig in (signal.SIGTERM, signal.SIGUSR1):
        signal.signal(sig, note)
    log.write_text("started")
    time.sleep(60)
''')

# The harness: starts a tied helper, says its pid, and waits to be killed.
HARNESS = textwrap.dedent('''\
    import sys, time
    from lfharness.core import procs
    helper = procs.popen_tied([sys.executable, "-c", sys.argv[1], sys.argv[2]])
    print(helper.pid, flush=True)
    time.sleep(60)
''')


def _helper_of_a_killed_harness(tmp_path: Path, request: pytest.FixtureRequest) -> str:
    """What the tied helper of a harness ended by SIGKILL got: the signal's name (or "started")."""
    log = tmp_path / "helper.log"
    harness = subprocess.Popen([sys.executable, "-c", HARNESS, HELPER, str(log)], cwd=ROOT,
                               stdout=subprocess.PIPE, text=True)
    helper: list[int] = []

    def cleanup() -> None:
        harness.kill()
        harness.wait(timeout=30)
        for pid in helper:  # a helper the harness's death did not end
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass

    request.addfinalizer(cleanup)
    helper.append(int(harness.stdout.readline()))
    retry(lambda: log.exists() and log.read_text() != "", timeout=30, interval=0.05, what="the helper started",
          validator=bool)
    harness.kill()  # SIGKILL: no finalizer of the harness runs
    harness.wait(timeout=30)
    # write_text truncates before it writes: an empty read is the helper mid-write, not its answer.
    return retry(lambda: log.read_text(), timeout=10, interval=0.05, what="the helper told of the harness's death",
                 validator=lambda text: text not in ("", "started"))


def test_a_port_forward_dies_with_a_killed_harness(tmp_path, request):
    """Issue 15 defect 4: a helper started with popen_tied gets SIGTERM from the kernel when the harness
    is SIGKILLed (no finalizer of the harness runs), so no kubectl port-forward outlives it (a Python
    helper that writes the signal it got)."""
    assert _helper_of_a_killed_harness(tmp_path, request) == "SIGTERM"


def _helper_of_an_ended_thread(tmp_path: Path, request: pytest.FixtureRequest, **kwargs: Any) -> str:
    """What a helper tied by a thread of this process got when that thread ended (PR_SET_PDEATHSIG fires
    when the thread that started the child ends: the death of the harness's main thread, in-process)."""
    log = tmp_path / "helper.log"
    started: list[subprocess.Popen] = []

    def starter() -> None:
        started.append(procs.popen_tied([sys.executable, "-c", HELPER, str(log)], **kwargs))
        # The tie is made before exec: once the helper runs its own code, this thread may end.
        retry(lambda: log.exists() and log.read_text(), timeout=30, interval=0.05, what="the helper started",
              validator=bool)

    thread = threading.Thread(target=starter)
    thread.start()
    thread.join()
    request.addfinalizer(lambda: (started[0].kill(), started[0].wait(timeout=30)))
    started[0].wait(timeout=10)
    return log.read_text()


def test_a_helper_dies_with_the_thread_that_started_it(tmp_path, request):
    """Issue 15 defect 4: a helper started with popen_tied gets SIGTERM from the kernel when its starter
    ends (here a thread of the test process, which ends; a harness's death ends all of them)."""
    assert _helper_of_an_ended_thread(tmp_path, request) == "SIGTERM"


def test_a_tied_helper_gets_the_death_signal_asked_for(tmp_path, request):
    """popen_tied's death_signal is the one the kernel sends (the kube tier's control plane asks for SIGKILL)."""
    assert _helper_of_an_ended_thread(tmp_path, request, death_signal=signal.SIGUSR1) == "SIGUSR1"


def test_a_tied_helper_gets_popens_arguments(tmp_path):
    """popen_tied starts the argv given with Popen's keyword arguments (the port-forward's output pipe)."""
    proc = procs.popen_tied((sys.executable, "-c", "print('forwarding')"), stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    assert (out, proc.returncode) == ("forwarding\n", 0)


def test_a_helper_whose_harness_is_gone_before_it_is_tied_does_not_run(tmp_path):
    """Issue 15 defect 4: a helper whose harness died between fork and the tie (its parent is no longer the
    harness) exits instead of running on untied (the check in popen_tied's child, given a parent that
    is not its own)."""
    import ctypes

    marker = tmp_path / "ran"
    tie = procs._tie_to_parent(ctypes.CDLL(None, use_errno=True), os.getpid() + 1_000_000)
    proc = subprocess.Popen([sys.executable, "-c", f"open({str(marker)!r}, 'w')"], preexec_fn=tie)
    assert (proc.wait(timeout=30) != 0, marker.exists()) == (True, False)


def test_elsewhere_than_linux_a_helper_starts_untied_and_says_so(tmp_path, monkeypatch, caplog):
    """Elsewhere than Linux (no PR_SET_PDEATHSIG) the helper still starts, with Popen's arguments, and a
    warning names it as not tied to the harness."""
    caplog.set_level(logging.WARNING, logger=LOGGER)
    monkeypatch.setattr(sys, "platform", "darwin")
    proc = procs.popen_tied([sys.executable, "-c", "print('forwarding')"], stdout=subprocess.PIPE, text=True)
    out, _ = proc.communicate(timeout=30)
    monkeypatch.undo()
    warned = [m for m in messages(caplog) if m.startswith(f"{sys.executable}: ") and "not tied" in m]
    assert (out, len(warned)) == ("forwarding\n", 1)


def _child(code: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline() == "ready\n"  # its handlers are in
    return proc


def test_a_helper_is_stopped_by_sigterm(request):
    """Issue 15 defect 4: end() stops a helper by its PID with SIGTERM, so it can close its connections."""
    proc = _child("import time; print('ready', flush=True); time.sleep(60)")
    request.addfinalizer(proc.kill)
    procs.end(proc, grace=30)
    assert proc.returncode == -signal.SIGTERM


def test_a_helper_that_ignores_sigterm_is_killed_after_the_grace(request):
    """Issue 15 defect 4: a helper that does not stop on SIGTERM is SIGKILLed once the grace is over, not
    left running (a Python helper that ignores SIGTERM)."""
    proc = _child("import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
                  "time.sleep(60)")
    request.addfinalizer(proc.kill)
    started = time.monotonic()
    procs.end(proc, grace=0.5)
    assert (proc.returncode, time.monotonic() - started < 10) == (-signal.SIGKILL, True)


def test_ending_a_helper_that_already_ended_is_quiet():
    """end() of a helper that exited on its own sends nothing and raises nothing."""
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait(timeout=30)
    procs.end(proc, grace=1)
    assert proc.returncode == 0


def test_a_free_port_is_one_the_kernel_chose_and_can_be_bound():
    """The port-forward's local port: one the kernel picked as free on 127.0.0.1 (its ephemeral range),
    which the harness can bind right after."""
    low, high = map(int, Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    port = procs.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
    assert low <= port <= high


# --- the record of a running Terraform ------------------------------------------------------------

def _sleeper(request: pytest.FixtureRequest, *argv: str) -> subprocess.Popen:
    proc = subprocess.Popen([*(argv or (sys.executable,)), "-c", "import time; time.sleep(60)"])
    request.addfinalizer(lambda: (proc.kill(), proc.wait(timeout=30)))
    return proc


def test_a_running_terraform_is_recorded_and_read_back(tmp_path, request):
    """Issue 15 defect 4: the record beside a running Terraform (in a folder made for it) names its pid
    and what it runs, reads back the same, and says it is alive."""
    proc = _sleeper(request)
    path = tmp_path / "02-deps" / ".terraform" / "harness.pid"
    record = procs.PidRecord.write(path, proc.pid, "terraform apply in 02-deps")
    read = procs.PidRecord.read(path)
    assert (read == record, read.pid, read.what, read.alive) == (True, proc.pid, "terraform apply in 02-deps", True)


def test_a_terraform_that_already_ended_is_not_recorded(tmp_path):
    """Issue 15 defect 4: a process that exited before it was recorded leaves no record (a later teardown
    would wait for nothing), whether it was reaped or not."""
    reaped = subprocess.Popen([sys.executable, "-c", "pass"])
    reaped.wait(timeout=30)
    zombie = subprocess.Popen([sys.executable, "-c", "pass"])
    retry(lambda: Path(f"/proc/{zombie.pid}/stat").read_text().rsplit(")", 1)[1].split()[0], timeout=30,
          interval=0.02, what="the child exited, not reaped", validator=lambda state: state == "Z")
    try:
        written = [procs.PidRecord.write(tmp_path / name, pid, "terraform apply")
                   for name, pid in (("reaped.pid", reaped.pid), ("zombie.pid", zombie.pid))]
    finally:
        zombie.wait(timeout=30)
    assert (written, sorted(tmp_path.iterdir())) == ([None, None], [])


def test_a_recorded_terraform_that_ended_is_no_longer_alive(tmp_path, request):
    """Issue 15 defect 4: once the recorded process ended, a later run does not wait for it."""
    proc = _sleeper(request)
    record = procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply")
    proc.kill()
    proc.wait(timeout=30)
    assert record.alive is False


def test_a_pid_reused_by_another_process_is_not_the_recorded_one(tmp_path, request):
    """Issue 15 defect 4: the record names one process by pid and start time: the same pid started at
    another time (a pid reused after the recorded Terraform ended) is not it, and gets no signal."""
    proc = _sleeper(request)
    mine = procs.PidRecord.write(tmp_path / "mine.pid", os.getpid(), "pytest")
    theirs = procs.PidRecord.write(tmp_path / "theirs.pid", proc.pid, "terraform apply")
    reused = procs.PidRecord(proc.pid, mine.start, "terraform apply")
    reused.signal(signal.SIGKILL)
    time.sleep(0.2)
    assert (mine.start != theirs.start, reused.alive, proc.poll()) == (True, False, None)


def test_a_recorded_terraform_stays_alive_while_it_grows(tmp_path, request):
    """Issue 15 defect 4: what names the recorded process does not change while it runs: a Terraform that
    takes more memory after it was recorded is still the recorded one (a Python child that grows by 64 MB)."""
    proc = subprocess.Popen([sys.executable, "-c", "import sys, time; print('ready', flush=True); sys.stdin.readline(); "
                             "held = bytearray(64 << 20); print('grown', flush=True); time.sleep(60)"],
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    request.addfinalizer(lambda: (proc.kill(), proc.wait(timeout=30)))
    assert proc.stdout.readline() == "ready\n"
    record = procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply")
    proc.stdin.write("grow\n")
    proc.stdin.flush()
    assert (proc.stdout.readline(), record.alive) == ("grown\n", True)


def test_a_process_named_with_parentheses_and_spaces_is_recorded(tmp_path, request):
    """The record reads the process's status past its command name, which may hold ") " and a "Z" (a
    Python started through a link named so)."""
    link = tmp_path / "tf) Z x"
    link.symlink_to(sys.executable)
    proc = _sleeper(request, str(link))
    record = procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply")
    assert (record is not None, record is not None and record.alive) == (True, True)


def test_the_recorded_terraform_gets_the_signal_sent(tmp_path, request):
    """Issue 24 item 8: signal() sends the recorded, still running process the signal asked for (a
    Python child that writes the signal it got)."""
    log = tmp_path / "got"
    proc = subprocess.Popen([sys.executable, "-c", HELPER, str(log)])
    request.addfinalizer(lambda: (proc.kill(), proc.wait(timeout=30)))
    retry(lambda: log.exists() and log.read_text(), timeout=30, interval=0.05, what="the child started",
          validator=bool)
    procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply").signal(signal.SIGUSR1)
    proc.wait(timeout=30)
    assert log.read_text() == "SIGUSR1"


def test_a_recorded_terraform_can_be_signalled_with_its_process_group(tmp_path, request):
    """Issue 24 item 8: with group=True the signal goes to the recorded process's whole group (Terraform
    runs in its own session with its providers): a child of it in the group gets it too."""
    code = ("import subprocess, sys, time; subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)']); "
            "print('ready', flush=True); time.sleep(60)")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True, start_new_session=True)

    def cleanup() -> None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait(timeout=30)

    request.addfinalizer(cleanup)
    assert proc.stdout.readline() == "ready\n"
    procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply").signal(signal.SIGTERM, group=True)
    proc.wait(timeout=30)
    # Killed by the signal: the stdout pipe's other end, held by the grandchild, is closed once it ended too.
    assert (proc.returncode, proc.stdout.read()) == (-signal.SIGTERM, "")


def test_signalling_a_recorded_process_that_just_ended_is_quiet(tmp_path, request, monkeypatch):
    """A recorded process that ends between the check and the signal raises nothing (alive read as True,
    the process gone)."""
    proc = _sleeper(request)
    record = procs.PidRecord.write(tmp_path / "harness.pid", proc.pid, "terraform apply")
    proc.kill()
    proc.wait(timeout=30)
    monkeypatch.setattr(procs.PidRecord, "alive", property(lambda self: True))
    record.signal(signal.SIGTERM)
    record.signal(signal.SIGTERM, group=True)


@pytest.mark.parametrize("content", ["", "not json", '{"pid": 1, "start": 2}', '{"pid": "x", "start": 2, "what": "a"}',
                                     '[1, 2, 3]', None])
def test_a_missing_or_broken_record_reads_as_none(tmp_path, content):
    """Issue 15 defect 4: a pid file that is missing, half-written or not the harness's reads as no record
    (the teardown goes on) instead of failing."""
    path = tmp_path / "harness.pid"
    if content is not None:
        path.write_text(content)
    assert procs.PidRecord.read(path) is None


def test_the_record_is_removed_when_its_terraform_ends(tmp_path, request):
    """Issue 15 defect 4: the record of the process that ended is removed."""
    proc = _sleeper(request)
    path = tmp_path / "harness.pid"
    record = procs.PidRecord.write(path, proc.pid, "terraform apply")
    procs.remove_record(path, record)
    assert path.exists() is False


def test_another_runs_record_written_since_is_kept(tmp_path, request):
    """Issue 15 defect 4: a record another run wrote over ours since is not removed (nor is any when we
    recorded nothing)."""
    path = tmp_path / "harness.pid"
    ours = procs.PidRecord.write(path, _sleeper(request).pid, "terraform apply")
    theirs = procs.PidRecord.write(path, _sleeper(request).pid, "terraform destroy")
    procs.remove_record(path, ours)
    kept_over_ours = procs.PidRecord.read(path)
    procs.remove_record(path, None)
    assert (kept_over_ours, procs.PidRecord.read(path)) == (theirs, theirs)


def test_a_record_another_run_removes_at_the_same_moment_is_no_error(tmp_path, request, monkeypatch):
    """Issue 15 defect 4: two runs ending the same Terraform may both remove its record: the one that finds
    it gone after reading it raises nothing (the other run's removal stands in, right after our read)."""
    path = tmp_path / "harness.pid"
    record = procs.PidRecord.write(path, _sleeper(request).pid, "terraform apply")
    real_read = procs.PidRecord.read

    def read_then_removed(cls: type[procs.PidRecord], where: Path) -> procs.PidRecord | None:
        held = real_read(where)
        where.unlink()
        return held

    monkeypatch.setattr(procs.PidRecord, "read", classmethod(read_then_removed))
    procs.remove_record(path, record)
    assert path.exists() is False


def test_a_json_record_is_written_whole_and_read_back(tmp_path):
    """Issue 24 item 8: the SIGINT and killed records are written whole (a temporary file renamed over the
    old one, in a folder made for it, none left behind) and read back as written."""
    path = tmp_path / "02-deps" / ".terraform" / "harness.sigint"
    procs.write_json(path, {"pid": 1, "reason": "old"})
    procs.write_json(path, {"pid": 2, "reason": "SIGINT forwarded by the harness"})
    assert (procs.read_json(path), [p.name for p in path.parent.iterdir()]) == (
        {"pid": 2, "reason": "SIGINT forwarded by the harness"}, ["harness.sigint"])


@pytest.mark.parametrize("content", ["", "{half", "[1, 2]", None])
def test_a_missing_or_broken_json_record_reads_as_none(tmp_path, content):
    """Issue 24 item 8: a record that is missing, unreadable or not an object reads as none."""
    path = tmp_path / "harness.sigint"
    if content is not None:
        path.write_text(content)
    assert procs.read_json(path) is None
