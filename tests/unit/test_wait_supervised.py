"""run_supervised, the one way the harness runs Terraform (issues 10, 15, 24; NFR3): what the child
gets and gives back, its timeout (SIGINT, a grace, then SIGKILL to its process group), a Ctrl-C
forwarded as exactly one SIGINT, a second one that kills, and the pid record a later run finds it by.

Stand-in for Terraform: a small Python child (CHILD below) that plays the part a test names:
echoing its input, writing its state on SIGINT, ignoring SIGINT, or pressing Ctrl-C on the harness
(SIGINT to its parent, the test process, whose SIGINT handler is Python's default for the test).
"""

from __future__ import annotations

import json
import locale
import logging
import os
import re
import signal
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lfharness.core import procs
from lfharness.core.wait import run_supervised

pytestmark = pytest.mark.static

CHILD = textwrap.dedent('''\
    import json, os, signal, subprocess, sys, time
    role = sys.argv[1]
    got = []
    seen = os.path.join(os.environ["MARKS"], "interrupt-seen")

    def ctrl_c_on_parent():
        time.sleep(0.1)  # the harness is waiting on this child by then
        os.kill(os.getppid(), signal.SIGINT)

    def harness_saw_it():
        """Whether the harness logged the interrupt within 10 s (the test's handler marks it)."""
        deadline = time.monotonic() + 10
        while not os.path.exists(seen) and time.monotonic() < deadline:
            time.sleep(0.01)
        return os.path.exists(seen)

    def second_ctrl_c_on_parent():
        # Only once the harness has handled the first (under load both could arrive before its
        # handler runs, and count as one); never after its run ended.
        if harness_saw_it():
            ctrl_c_on_parent()

    def save_state(signum, frame):
        got.append(signum)
        time.sleep(0.2)  # a second SIGINT would arrive meanwhile
        print(f"sigints={len(got)} state written", flush=True)
        sys.exit(0)

    if role == "echo":
        data = sys.stdin.read()
        own = os.getsid(0) == os.getpid()
        print(f"stdin={data!r} cwd={os.getcwd()} probe={os.environ.get('PROBE')} own-session={own}", flush=True)
        print("problem", file=sys.stderr, flush=True)
        sys.stdout.buffer.write(b"bad byte: \\xff\\n")
        sys.stderr.buffer.write(b"bad byte: \\xfe\\n")
        sys.exit(3)
    elif role == "error-box":
        for stream in (sys.stdout, sys.stderr):
            stream.buffer.write("╷\\n│ Error: Invalid value\\n╵\\n".encode())
    # The roles that wait sleep 10 s at most: a run that never stops them ends by itself.
    elif role == "save-on-sigint":
        signal.signal(signal.SIGINT, save_state)
        time.sleep(10)
    elif role == "ignore-sigint":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        grandchild = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(10)"])
        print(grandchild.pid, flush=True)
        time.sleep(10)
    elif role == "ctrl-c-then-save":
        signal.signal(signal.SIGINT, save_state)
        ctrl_c_on_parent()
        time.sleep(10)
    elif role == "ctrl-c-twice":
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        ctrl_c_on_parent()
        second_ctrl_c_on_parent()
        time.sleep(10)
    elif role == "on-sigint-ctrl-c-then-save":
        signal.signal(signal.SIGINT, lambda s, f: (ctrl_c_on_parent(), harness_saw_it(), save_state(s, f)))
        time.sleep(10)
    elif role == "on-sigint-ctrl-c-twice":
        signal.signal(signal.SIGINT, lambda s, f: (ctrl_c_on_parent(), second_ctrl_c_on_parent()))
        time.sleep(10)
    elif role == "print-pid-file":
        path = sys.argv[2]
        deadline = time.monotonic() + 5
        while not os.path.exists(path) and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.05)
        print(json.dumps({"own_pid": os.getpid(), "record": open(path).read()}), flush=True)
''')

LOGGER = "lfharness.test.supervised"


@pytest.fixture
def python_ctrl_c():
    """Python's own SIGINT handler for the test (KeyboardInterrupt), not the session's, whose
    "stopping" flag a forwarded Ctrl-C would leave set for the tests after this one."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


class _MarkInterrupts(logging.Handler):
    """Tells the child (by a file) that the harness has logged an interrupt, so it presses Ctrl-C a
    second time only after the first was handled."""

    def __init__(self, folder: Path) -> None:
        super().__init__()
        self.folder = folder

    def emit(self, record: logging.LogRecord) -> None:
        if "interrupted" in record.getMessage():
            (self.folder / "interrupt-seen").touch()


def _run(tmp_path: Path, role: str, *extra: str, timeout: float = 20, grace: float = 20, **kwargs):
    logger = logging.getLogger(LOGGER)
    logger.addHandler(marks := _MarkInterrupts(tmp_path))
    try:
        return run_supervised([sys.executable, "-c", CHILD, role, *extra], cwd=tmp_path,
                              env={"PATH": os.environ["PATH"], "PROBE": "probe-value", "MARKS": str(tmp_path)},
                              timeout=timeout, grace=grace, what=f"terraform {role}", logger=logger, **kwargs)
    finally:
        logger.removeHandler(marks)


def _lines(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == LOGGER]


def _gone(pid: int, timeout: float = 5) -> bool:
    """Whether process pid has ended within timeout seconds (a zombie waiting for init to reap it
    has ended: /proc/<pid>/stat's state after the command name is Z)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except (FileNotFoundError, ProcessLookupError):
            return True
        if state in ("Z", "X"):
            return True
        time.sleep(0.02)
    return False


def test_the_child_gets_its_input_folder_and_environment_in_its_own_session_and_its_output_comes_back(tmp_path):
    """NFR3, issue 15: Terraform runs in the workspace folder with the harness's environment and input,
    in a session of its own (a terminal's Ctrl-C reaches the harness only, which forwards it); its
    exit code, stdout and stderr come back whole, bytes that are no UTF-8 replaced, not fatal."""
    result = _run(tmp_path, "echo", stdin="yes\n", heartbeat=0)
    expected_out = (f"stdin='yes\\n' cwd={tmp_path} probe=probe-value own-session=True\n"
                    "bad byte: \N{REPLACEMENT CHARACTER}\n")
    expected_err = "problem\nbad byte: \N{REPLACEMENT CHARACTER}\n"
    assert (result.returncode, result.stdout, result.stderr) == (3, expected_out, expected_err)
    assert (result.timed_out, result.interrupted, result.killed, result.seconds > 0) == (False, False, False, True)


def test_terraform_s_utf_8_output_comes_back_as_written_under_a_non_utf_8_locale(tmp_path):
    """NFR3: Terraform frames its errors with box-drawing characters in UTF-8 whatever the locale; the
    harness reads them back as written, also where its own locale is not UTF-8 (LC_CTYPE "C" for
    this test, restored after)."""
    previous = locale.setlocale(locale.LC_CTYPE)
    locale.setlocale(locale.LC_CTYPE, "C")
    try:
        result = _run(tmp_path, "error-box", heartbeat=0)
    finally:
        locale.setlocale(locale.LC_CTYPE, previous)
    assert (result.stdout, result.stderr) == ("╷\n│ Error: Invalid value\n╵\n",) * 2


def test_without_input_the_child_reads_end_of_file_at_once(tmp_path):
    """NFR3: a Terraform that asks for input (a prompt) must not wait for a terminal: without stdin it
    reads end-of-file at once and the run ends, not at its timeout."""
    result = _run(tmp_path, "echo", timeout=5, grace=1, heartbeat=0)
    assert (result.timed_out, result.returncode, result.stdout.startswith("stdin=''")) == (False, 3, True)


def test_a_child_outliving_its_timeout_gets_one_sigint_and_writes_its_state(tmp_path, caplog):
    """Issue 10 item 8, NFR3: at its timeout Terraform gets SIGINT and the grace to write its state and
    release the lock; it is not killed. The log says what timed out after how long, and the grace;
    the heartbeat goes on meanwhile."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "save-on-sigint", timeout=0.5, grace=20, heartbeat=0.1)
    assert (result.timed_out, result.interrupted, result.killed) == (True, False, False)
    assert (result.returncode, result.stdout, result.seconds < 15) == (0, "sigints=1 state written\n", True)
    lines = _lines(caplog)
    assert "terraform save-on-sigint: no result after its timeout of 0.5s" in lines, lines
    assert ("terraform save-on-sigint: sending SIGINT, waiting up to 20s for it to write its state and exit"
            in lines), lines
    assert any(line.startswith("terraform save-on-sigint ... still running") for line in lines), lines
    assert any(line.startswith("terraform save-on-sigint ... done in") for line in lines), lines


def test_a_child_ignoring_sigint_is_killed_with_its_process_group_after_the_grace(tmp_path, caplog):
    """Issue 10 item 8, NFR3: a Terraform that does not exit within the grace after SIGINT is killed,
    with every process it started (its providers); the log says so."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "ignore-sigint", timeout=0.5, grace=0.3, heartbeat=0)
    grandchild = int(result.stdout.split()[0])
    assert (result.timed_out, result.killed, result.returncode) == (True, True, -signal.SIGKILL)
    assert _gone(grandchild), f"the child's own child {grandchild} still runs"
    assert "terraform ignore-sigint: still running 0.3s after SIGINT; killing it" in _lines(caplog)


@pytest.mark.usefixtures("python_ctrl_c")
def test_a_ctrl_c_reaches_the_child_as_exactly_one_sigint_and_it_writes_its_state(tmp_path, caplog):
    """Issue 15, NFR3: Ctrl-C on the harness is forwarded to Terraform as one SIGINT (a second would
    make it exit without its state); it writes its state and the run reports the interrupt."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "ctrl-c-then-save", grace=20, heartbeat=0)
    assert (result.interrupted, result.timed_out, result.killed) == (True, False, False)
    assert (result.returncode, result.stdout) == (0, "sigints=1 state written\n")
    assert "terraform ctrl-c-then-save: interrupted (Ctrl-C or SIGTERM)" in _lines(caplog)


@pytest.mark.usefixtures("python_ctrl_c")
def test_a_second_ctrl_c_kills_the_child_at_once(tmp_path, caplog):
    """Issue 15: a second Ctrl-C means "now": the child is killed without waiting out the grace."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "ctrl-c-twice", grace=8, heartbeat=0)
    assert (result.interrupted, result.killed, result.seconds < 6) == (True, True, True)
    assert "terraform ctrl-c-twice: second interrupt; killing it" in _lines(caplog)


@pytest.mark.usefixtures("python_ctrl_c")
def test_a_first_ctrl_c_during_a_timeouts_grace_waits_for_the_state(tmp_path, caplog):
    """Issue 24 item 8: the SIGINT of a timeout is not the operator's; their first Ctrl-C during its
    grace still waits for Terraform to write its state, and the log says a second one kills."""
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "on-sigint-ctrl-c-then-save", timeout=0.5, grace=20, heartbeat=0)
    assert (result.timed_out, result.interrupted, result.killed) == (True, True, False)
    assert result.stdout == "sigints=1 state written\n"
    assert ("terraform on-sigint-ctrl-c-then-save: interrupted while it stops after its timeout: still waiting "
            "for it to write its state (a second Ctrl-C kills it)") in _lines(caplog)


@pytest.mark.usefixtures("python_ctrl_c")
def test_a_second_ctrl_c_during_a_timeouts_grace_kills_at_once(tmp_path):
    """Issue 24 item 8: after a timeout's SIGINT, the operator's second Ctrl-C kills Terraform without
    waiting out the grace."""
    result = _run(tmp_path, "on-sigint-ctrl-c-twice", timeout=0.5, grace=8, heartbeat=0)
    assert (result.timed_out, result.interrupted, result.killed, result.seconds < 7) == (True, True, True, True)


def test_the_running_child_is_recorded_in_its_pid_file_until_it_ends(tmp_path):
    """Issue 24 item 2: while Terraform runs, its pid file names it (so a later run finds it if this
    one is killed); once it has ended, the file is gone."""
    pid_file = tmp_path / "run" / "terraform.pid"
    result = _run(tmp_path, "print-pid-file", str(pid_file), pid_file=pid_file, heartbeat=0)
    seen = json.loads(result.stdout)
    record = json.loads(seen["record"])
    assert (record["pid"], record["what"]) == (seen["own_pid"], "terraform print-pid-file")
    assert not pid_file.exists()


@pytest.mark.usefixtures("python_ctrl_c")
def test_an_interrupt_while_the_pid_record_is_written_still_removes_it_once_the_child_ended(tmp_path, monkeypatch):
    """Issue 24 item 2: a Ctrl-C that lands while the record is written stops the child as any other,
    and the record, which names that child, is removed (a later run would signal a pid reused by
    another process otherwise). The interrupt is raised by a wrapper of PidRecord.write."""
    real_write = procs.PidRecord.write

    def write_then_interrupted(path, pid, what):
        real_write(path, pid, what)
        raise KeyboardInterrupt

    monkeypatch.setattr(procs.PidRecord, "write", write_then_interrupted)
    pid_file = tmp_path / "terraform.pid"
    result = _run(tmp_path, "save-on-sigint", pid_file=pid_file, heartbeat=0)
    assert (result.interrupted, result.killed, pid_file.exists()) == (True, False, False)


def test_a_pid_file_that_cannot_be_written_is_reported_and_the_child_still_runs(tmp_path, caplog):
    """Issue 24 item 2: when the pid file cannot be written, Terraform runs all the same and the log
    says which pid could not be recorded where and why, and what that means for a later teardown."""
    (tmp_path / "not-a-folder").write_text("")
    pid_file = tmp_path / "not-a-folder" / "terraform.pid"
    with caplog.at_level(logging.INFO, logger=LOGGER):
        result = _run(tmp_path, "echo", stdin="", pid_file=pid_file, heartbeat=0)
    warnings = [line for line in _lines(caplog) if "could not record pid" in line]
    assert result.returncode == 3 and len(warnings) == 1, warnings
    assert re.fullmatch(rf"terraform echo: could not record pid \d+ in {re.escape(str(pid_file))} \(\[Errno \d+\] .+\); "
                        r"if this run is killed, a later teardown will not know that it still runs", warnings[0])
