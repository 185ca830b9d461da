"""Issue 24 items 2 and 8: the SIGINT a Terraform already got is recorded, and a later teardown's
live-wait never sends a second one as if it were the first; 03-app's grace covers the Helm release's
timeout (static tier).

Stand-in for Terraform: a small Python program (tf.terraform_bin pointed at it) that traps SIGINT,
writes each one it gets to a log, keeps running after the first as the helm provider does during an
install (it ignores Terraform's cancellation), and exits at once on a second one, as Terraform does
(without writing its state). The harness is a real Python process running the real tf.run with the
harness's signal handling (procs.handle_termination), signalled as a CI runner does: SIGINT, SIGTERM,
then SIGKILL; the live-wait is the real tf.wait_for_live_terraform.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from lfharness.core import hcl, procs, tf
from lfharness.core.wait import retry

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]

STANDIN = textwrap.dedent('''\
    import os, signal, sys, time
    from pathlib import Path
    log = Path(os.environ["STANDIN_LOG"])
    hold = float(os.environ.get("STANDIN_HOLD_AFTER_SIGINT", "3600"))
    got = []

    def note(line):
        with log.open("a") as f:
            f.write(line + "\\n")

    def on_sigint(signum, frame):
        got.append(time.monotonic())
        note(f"SIGINT {len(got)}")
        if len(got) > 1:
            os._exit(1)  # Terraform: a second interrupt ends it at once, its state not written

    signal.signal(signal.SIGINT, on_sigint)
    note(f"started {os.getpid()}")
    while not got or time.monotonic() - got[0] < hold:
        time.sleep(0.05)
    note("state written")
''')


def standin(folder: Path) -> Path:
    """The stand-in as an executable named terraform in `folder`."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / "terraform"
    path.write_text(f"#!{sys.executable}\n" + STANDIN)
    path.chmod(0o755)
    return path


def sigints(log: Path) -> int:
    return sum(line.startswith("SIGINT") for line in log.read_text().splitlines()) if log.exists() else 0


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    try:
        return stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except OSError:
        return True


def _started(workspace: Path, log: Path) -> None:
    """Waits until the stand-in is recorded and traps SIGINT."""
    retry(lambda: procs.PidRecord.read(workspace / tf.PID_FILE) is not None and log.exists()
          and "started" in log.read_text(), timeout=60, interval=0.1, what="the stand-in started and recorded",
          validator=bool)


_HARNESS = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from lfharness.core import procs, tf
    procs.handle_termination()  # as pytest (-p lfharness.core.procs) and `python -m lfharness` do
    tf.terraform_bin = lambda: Path(sys.argv[2])
    tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], Path(sys.argv[1]), json.loads(sys.argv[3]),
           timeout=float(sys.argv[4]), grace=600)
''')


@pytest.mark.parametrize("how", ["ctrl-c forwarded", "timeout"])
def test_after_the_killed_runs_sigint_the_live_wait_sends_no_second_one(tmp_path, how, request):
    """Issue 24 item 8: the harness sent Terraform its one SIGINT (the runner's SIGINT forwarded, then
    its SIGTERM; or its own timeout), then a SIGKILL ended the harness while Terraform, held
    up by Helm, ran on. The teardown's live-wait sees the recorded SIGINT and sends none (a second
    SIGINT would end Terraform without its state): it waits out the rest of the grace, then kills it,
    and marks the workspace for its lock release. (Stand-in Terraform that logs every SIGINT.)"""
    workspace = tmp_path / "02-deps"
    workspace.mkdir()
    log = tmp_path / "standin.log"
    timeout = 2 if how == "timeout" else 600
    harness = subprocess.Popen([sys.executable, "-c", _HARNESS, str(workspace), str(standin(tmp_path / "bin")),
                                json.dumps({"STANDIN_LOG": str(log)}), str(timeout)], cwd=ROOT)
    pids: list[int] = []

    def cleanup() -> None:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=30)
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)

    request.addfinalizer(cleanup)  # before the stand-in exists
    _started(workspace, log)
    pids.append(procs.PidRecord.read(workspace / tf.PID_FILE).pid)
    if how == "ctrl-c forwarded":
        harness.send_signal(signal.SIGINT)
    retry(lambda: sigints(log), timeout=60, interval=0.1, what="the stand-in's first SIGINT", validator=bool)
    if how == "ctrl-c forwarded":
        harness.send_signal(signal.SIGTERM)  # the runner's second signal: ignored while stopping
        time.sleep(0.5)
    harness.kill()  # the runner's last resort; the stand-in, in its own session, runs on
    harness.wait(timeout=30)
    assert not _gone(pids[0])
    started = time.monotonic()
    assert tf.wait_for_live_terraform(workspace, wait=20, grace=3) is True
    elapsed = time.monotonic() - started
    killed = tf.killed_marker(workspace) or {}
    assert (sigints(log), _gone(pids[0]), elapsed < 15, killed.get("subcommand"), (workspace / tf.SIGINT_FILE).exists(),
            (workspace / tf.PID_FILE).exists()) == (1, True, True, "apply", False, False)


def test_the_live_wait_sends_its_own_sigint_once_and_records_it(tmp_path, request):
    """Issue 24 item 8: a Terraform an earlier run left with no SIGINT recorded gets exactly one from
    the live-wait, recorded first, so a second teardown started meanwhile would not send another; the
    stand-in then writes its state and ends (stand-in Terraform started by the real tf.run in a
    harness process that is SIGKILLed without an interrupt)."""
    workspace = tmp_path / "02-deps"
    workspace.mkdir()
    log = tmp_path / "standin.log"
    env = {"STANDIN_LOG": str(log)}
    harness = subprocess.Popen([sys.executable, "-c", _HARNESS, str(workspace), str(standin(tmp_path / "bin")),
                                json.dumps(env), "600"], cwd=ROOT, env={**os.environ, "STANDIN_HOLD_AFTER_SIGINT": "1"})
    pids: list[int] = []

    def cleanup() -> None:
        if harness.poll() is None:
            harness.kill()
            harness.wait(timeout=30)
        for pid in pids:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)

    request.addfinalizer(cleanup)
    _started(workspace, log)
    record = procs.PidRecord.read(workspace / tf.PID_FILE)
    pids.append(record.pid)
    harness.kill()
    harness.wait(timeout=30)
    seen: list[dict | None] = []
    real_signal = procs.PidRecord.signal

    def spied(self, sig, *, group=False):
        if sig == signal.SIGINT:
            seen.append(tf.sigint_sent(workspace, record))
        return real_signal(self, sig, group=group)

    request.getfixturevalue("monkeypatch").setattr(procs.PidRecord, "signal", spied)
    assert tf.wait_for_live_terraform(workspace, wait=1, grace=20) is True
    assert (sigints(log), "state written" in log.read_text(), len(seen), seen[0] is not None,
            (workspace / tf.KILLED_FILE).exists()) == (1, True, 1, True, False)


def test_03_apps_grace_covers_the_helm_releases_timeout():
    """Issue 24 item 2: the helm provider runs Helm's install and uninstall without Terraform's
    context, so after SIGINT Terraform waits for the release's whole `timeout`; 03-app's apply and
    destroy grace (and the live-wait's for 03-app) cover it plus time to write the state, so the
    harness does not kill a Terraform that would have released its lock (helm.tf read with python-hcl2)."""
    release = hcl.blocks(tf.TERRAFORM_DIR / "03-app", "resource")["helm_release"]["langfuse"]
    timeout = float(release["timeout"])
    assert (tf.HELM_RELEASE_TIMEOUT, tf.grace_for("apply", "03-app") >= timeout + 60,
            tf.grace_for("destroy", "03-app") >= timeout + 60, tf.grace_for("apply", "02-deps")) == (
        timeout, True, True, tf.TIMEOUTS["apply"][1])


def test_a_ctrl_c_during_a_timeouts_grace_waits_for_terraform_to_write_its_state(tmp_path):
    """Issue 24 item 8: after a timeout the harness sent Terraform its one SIGINT; a Ctrl-C (or a
    CI cancel's SIGTERM) arriving during the grace is the operator's first, not a second: the child
    is left to finish writing its state (not SIGKILLed), and the interrupt is reported. A second
    one would kill it. (A child standing in for Terraform that takes 1.5 s to exit after SIGINT.)"""
    import threading

    from lfharness.core import wait

    script = tmp_path / "slow_stop.py"
    script.write_text("import signal, sys, time\n"
                      "signal.signal(signal.SIGINT, lambda *a: (time.sleep(1.5), sys.exit(0)))\n"
                      "time.sleep(60)\n")
    # The operator's Ctrl-C lands in the grace, 0.5 s after the timeout's SIGINT.
    ctrl_c = threading.Timer(1.0, lambda: signal.pthread_kill(threading.main_thread().ident, signal.SIGINT))
    ctrl_c.start()
    try:
        result = wait.run_supervised([sys.executable, str(script)], cwd=tmp_path, env=dict(os.environ), timeout=0.5,
                                     grace=10, what="slow stopper")
    finally:
        ctrl_c.cancel()
    assert (result.timed_out, result.interrupted, result.killed, result.returncode) == (True, True, False, 0)
