"""What the Terraform runner does for the operator (issue 28): it runs the project's terraform, never
the shell's AWS settings, logs progress with elapsed time, keeps each run's log (secrets masked,
`output`'s stdout withheld), says what failed and where its log is, stops a Terraform that outlives
its timeout or gets Ctrl-C with one SIGINT (SIGKILL after the grace, then marks the lock as maybe
held), and waits for, then stops, a Terraform an earlier run left behind.

Stand-in: a stand-in terraform, a small Python script installed as the project's terraform (beside
a substitute sys.executable) whose output, exit code, duration and answer to SIGINT the test sets
through its environment; it reports the SIGINT record the harness left when it got its SIGINT.
render_template runs the project's real terraform (no provider).
"""

from __future__ import annotations

import calendar
import json
import logging
import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from lfharness.core import procs, tf
from lfharness.core.redact import Redactor
from lfharness.core.wait import retry

pytestmark = pytest.mark.static

REAL_PYTHON = sys.executable

STANDIN = f'''#!{REAL_PYTHON}
import json, os, signal, sys, time
from pathlib import Path

def record_sigint():
    sent = Path(".terraform/lfharness-terraform.sigint")
    if not sent.exists():
        return "none"
    record = json.loads(sent.read_text())
    return f"{{record['why']}} (grace {{record['grace']:g}}s)"

def on_sigint(*_):
    print("Interrupt received; SIGINT record: " + record_sigint(), file=sys.stderr, flush=True)
    sys.exit(int(os.environ.get("STANDIN_SIGINT_EXIT", "1")))

signal.signal(signal.SIGINT, signal.SIG_IGN if os.environ.get("STANDIN_IGNORE_SIGINT") else on_sigint)
if os.environ.get("STANDIN_CHILD_PID"):  # a provider plugin: a child in terraform's process group
    import subprocess
    child = subprocess.Popen([sys.executable, "-c", "import signal, time; signal.signal(signal.SIGINT, signal.SIG_IGN); time.sleep(60)"])
    Path(os.environ["STANDIN_CHILD_PID"]).write_text(str(child.pid))
sys.stdout.write(os.environ.get("STANDIN_STDOUT", ""))
sys.stdout.flush()
sys.stderr.write(os.environ.get("STANDIN_STDERR", ""))
sys.stderr.flush()
seen = {{"args": sys.argv[1:], "env": dict(os.environ)}}
deadline = time.monotonic() + float(os.environ.get("STANDIN_SLEEP", "0"))
while time.monotonic() < deadline:
    time.sleep(0.05)
    seen["pid_file"] = seen.get("pid_file") or Path(".terraform/lfharness-terraform.pid").exists()
if os.environ.get("STANDIN_RECORD"):
    Path(os.environ["STANDIN_RECORD"]).write_text(json.dumps(seen))
if os.environ.get("STANDIN_REMOVE_PID"):  # as the harness that started it does once it ends
    Path(".terraform/lfharness-terraform.pid").unlink()
sys.exit(int(os.environ.get("STANDIN_EXIT", "0")))
'''


@pytest.fixture
def terraform(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The stand-in terraform installed as the project's (beside sys.executable)."""
    bin_dir = tmp_path / "venv" / "bin"
    bin_dir.mkdir(parents=True)
    binary = bin_dir / "terraform"
    binary.write_text(STANDIN)
    binary.chmod(0o755)
    monkeypatch.setattr(sys, "executable", str(bin_dir / "python"))
    return binary


@pytest.fixture
def workspace(tmp_path: Path) -> Path:
    folder = tmp_path / "02-deps"
    folder.mkdir()
    return folder


def _recorded(path: Path) -> dict:
    return json.loads(path.read_text())


def _log_text(log_dir: Path) -> str:
    return "".join(p.read_text() for p in sorted(log_dir.glob("*.log")))


# ---- the binary and the environment ------------------------------------------------------

def test_the_project_terraform_is_the_one_beside_the_venvs_python(terraform: Path) -> None:
    """Decision 2: the runner uses the project's terraform in .venv/bin, never one on PATH."""
    assert tf.terraform_bin() == terraform


def test_a_missing_project_terraform_names_where_it_was_looked_for_and_the_set_up(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Decision 2: without the project's terraform, the error names the path expected and `bash setup.sh`."""
    monkeypatch.setattr(sys, "executable", str(tmp_path / "empty" / "python"))

    with pytest.raises(tf.TerraformError) as err:
        tf.terraform_bin()

    assert str(tmp_path / "empty" / "terraform") in str(err.value) and "bash setup.sh" in str(err.value)


def test_terraform_gets_the_callers_credentials_never_the_shells_aws_settings(
        terraform: Path, workspace: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FR23-FR26, decision 2: the shell's AWS_* never reach Terraform; the caller's env does, with
    TF_IN_AUTOMATION and CHECKPOINT_DISABLE set unless the caller set them. Stand-in terraform."""
    monkeypatch.setenv("AWS_PROFILE", "shell-profile")
    record = tmp_path / "seen.json"

    tf.run(["init"], workspace, {"AWS_ACCESS_KEY_ID": "AKIDCALLER", "TF_IN_AUTOMATION": "caller",
                                 "STANDIN_RECORD": str(record)})

    env = _recorded(record)["env"]
    assert (env.get("AWS_PROFILE"), env["AWS_ACCESS_KEY_ID"], env["TF_IN_AUTOMATION"], env["CHECKPOINT_DISABLE"]) == (
        None, "AKIDCALLER", "caller", "1")


def test_terraform_runs_in_automation_mode_without_checkpoint_by_default(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """Decision 2: unless the caller says otherwise, Terraform runs with TF_IN_AUTOMATION=1 (no
    interactive hints) and CHECKPOINT_DISABLE=1 (no call home). Stand-in terraform."""
    record = tmp_path / "seen.json"

    tf.run(["init"], workspace, {"STANDIN_RECORD": str(record)})

    env = _recorded(record)["env"]
    assert (env.get("TF_IN_AUTOMATION"), env.get("CHECKPOINT_DISABLE")) == ("1", "1")


def test_03_apps_apply_gets_the_grace_that_covers_the_helm_release(terraform: Path, tmp_path: Path) -> None:
    """Issue 24 item 2: a timed-out apply of 03-app is given, after its SIGINT, the grace that covers
    the Helm release's timeout (recorded with the SIGINT, for a later teardown). Stand-in terraform."""
    app = tmp_path / "03-app"
    app.mkdir()

    with pytest.raises(tf.TerraformTimeout):
        tf.run(["apply"], app, {"STANDIN_SLEEP": "20"}, log_dir=tmp_path / "logs", timeout=0.5)

    assert f"SIGINT record: its 0.5s timeout (grace {tf.grace_for('apply', '03-app'):g}s)" in _log_text(tmp_path / "logs")


def test_terraform_runs_in_the_workspace_with_the_arguments_and_the_result_comes_back(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """The runner runs terraform in the workspace folder with exactly the arguments given and returns
    its exit code, stdout, stderr and duration. Stand-in terraform."""
    record = tmp_path / "seen.json"

    result = tf.run(["plan", "-detailed-exitcode"], workspace,
                    {"STANDIN_STDOUT": "planned", "STANDIN_STDERR": "warned", "STANDIN_EXIT": "2",
                     "STANDIN_RECORD": str(record)}, ok_codes=(0, 2))

    assert (result.args, result.returncode, result.stdout, result.stderr, _recorded(record)["args"]) == (
        ["plan", "-detailed-exitcode"], 2, "planned", "warned", ["plan", "-detailed-exitcode"])
    assert 0 < result.seconds < 30


def test_stdin_reaches_terraform(terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """A command that reads its input (e.g. `terraform console`) gets the text given. Stand-in
    terraform (it echoes what it read)."""
    echo = workspace / "echo.py"
    echo.write_text(f"#!{REAL_PYTHON}\nimport sys\nsys.stdout.write(sys.stdin.read())\n")
    terraform.write_text(echo.read_text())

    assert tf.run(["console"], workspace, stdin="1 + 1\n").stdout == "1 + 1\n"


def test_progress_is_logged_with_what_runs_where_and_its_elapsed_time(
        terraform: Path, workspace: Path, caplog: pytest.LogCaptureFixture) -> None:
    """FR27 (progress): the start and the end of a terraform command are logged naming the command
    and the workspace, the end with its elapsed time. Stand-in terraform."""
    caplog.set_level(logging.INFO, logger="lfharness.core.tf")

    tf.run(["init", "-input=false"], workspace)

    messages = [r.getMessage() for r in caplog.records if r.name == "lfharness.core.tf"]
    assert messages[0] == "terraform init -input=false in 02-deps ..."
    assert messages[-1].startswith("terraform init -input=false in 02-deps ... done in ")


# ---- run logs ------------------------------------------------------------------------------

def test_each_run_keeps_a_log_named_after_workspace_and_subcommand(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """FR27 (run logs under .runs/): each command writes one log named <ms>-<workspace>-<subcommand>.log
    holding the command line, stdout and stderr. Stand-in terraform."""
    log_dir = tmp_path / ".runs" / "terraform"
    before_ms = int(time.time() * 1000)

    tf.run(["apply", "-auto-approve"], workspace, {"STANDIN_STDOUT": "Apply complete!", "STANDIN_STDERR": "a warning"},
           log_dir=log_dir)

    after_ms = int(time.time() * 1000)
    (log,) = log_dir.glob("*.log")
    stamp, rest = log.name.split("-", 1)
    assert (rest, before_ms <= int(stamp) <= after_ms) == ("02-deps-apply.log", True)
    assert log.read_text() == "$ terraform apply -auto-approve\n--- stdout\nApply complete!\n--- stderr\na warning"


@pytest.mark.parametrize("subcommand", ["output", "show"])
def test_the_stdout_of_output_and_show_never_goes_into_a_run_log(
        terraform: Path, workspace: Path, tmp_path: Path, subcommand: str) -> None:
    """NFR1: `output` and `show` print sensitive values in clear: their stdout is withheld from the
    run log (CI uploads it) but returned to the caller. Stand-in terraform."""
    result = tf.run([subcommand, "-json"], workspace, {"STANDIN_STDOUT": "s3cr3t-value"}, log_dir=tmp_path / "logs")

    text = _log_text(tmp_path / "logs")
    assert ("s3cr3t-value" in text, f"(withheld: terraform {subcommand} prints sensitive values in clear)" in text,
            result.stdout) == (False, True, "s3cr3t-value")


def test_the_run_log_and_the_error_mask_every_known_secret(terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """NFR1: a secret the redactor knows is masked in the run log and in the error message, including
    one learned in before_log, after Terraform exited and before anything was written. Stand-in terraform."""
    redactor = Redactor(["known-secret-1"])

    with pytest.raises(tf.TerraformError) as err:
        tf.run(["apply"], workspace, {"STANDIN_STDOUT": "known-secret-1 new-secret-2",
                                      "STANDIN_STDERR": "failed near known-secret-1 and new-secret-2",
                                      "STANDIN_EXIT": "1"},
               log_dir=tmp_path / "logs", redactor=redactor, before_log=lambda: redactor.add("new-secret-2"))

    shown = _log_text(tmp_path / "logs") + str(err.value)
    assert ("known-secret-1" in shown, "new-secret-2" in shown, "failed near" in shown) == (False, False, True)


# ---- failures ------------------------------------------------------------------------------

def test_a_failed_command_says_what_where_the_exit_code_the_log_and_terraforms_error(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """Errors say what and where: the command, the workspace folder, the exit code against the
    expected ones, where the full log is, and the end of Terraform's stderr. Stand-in terraform."""
    with pytest.raises(tf.TerraformError) as err:
        tf.run(["plan", "-input=false"], workspace, {"STANDIN_STDERR": "Error: boom", "STANDIN_EXIT": "3"},
               log_dir=tmp_path / "logs")

    assert str(err.value) == (f"terraform plan -input=false in {workspace} exited 3, expected (0,) "
                              f"(full log in {tmp_path / 'logs'}):\nError: boom")


def test_a_failed_command_without_run_log_names_no_log(terraform: Path, workspace: Path) -> None:
    """An error points at a log only when one was written. Stand-in terraform."""
    with pytest.raises(tf.TerraformError) as err:
        tf.run(["validate"], workspace, {"STANDIN_STDERR": "Error: invalid", "STANDIN_EXIT": "1"})

    assert "full log" not in str(err.value) and str(err.value).endswith(":\nError: invalid")


def test_a_failed_command_shows_only_the_last_4000_characters_of_stderr(terraform: Path, workspace: Path) -> None:
    """An error stays readable: only the end of a long stderr (where Terraform's error is) is shown.
    Stand-in terraform."""
    with pytest.raises(tf.TerraformError) as err:
        tf.run(["plan"], workspace, {"STANDIN_STDERR": "a" * 5000 + "Error: the end", "STANDIN_EXIT": "1"})

    tail = str(err.value).split(":\n", 1)[1]
    assert (len(tail), tail.endswith("Error: the end")) == (4000, True)


def test_a_held_state_lock_error_says_how_to_release_it(terraform: Path, workspace: Path) -> None:
    """Issue 24 item 2: Terraform's "Error acquiring the state lock" comes with what holds it and
    `python -m lfharness unlock`. Stand-in terraform."""
    with pytest.raises(tf.TerraformError) as err:
        tf.run(["apply"], workspace, {"STANDIN_STDERR": "Error acquiring the state lock", "STANDIN_EXIT": "1"})

    assert "python -m lfharness unlock" in str(err.value) and str(err.value).endswith(
        "Terraform said:\nError acquiring the state lock")


def test_other_errors_carry_no_lock_advice(terraform: Path, workspace: Path) -> None:
    """The lock advice appears only for a lock error. Stand-in terraform."""
    with pytest.raises(tf.TerraformError) as err:
        tf.run(["apply"], workspace, {"STANDIN_STDERR": "Error: quota", "STANDIN_EXIT": "1"})

    assert "unlock" not in str(err.value)


# ---- the pid record ------------------------------------------------------------------------

def test_a_locking_command_is_recorded_while_it_runs_and_the_record_removed_after(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """Issue 15 defect 4: while an apply runs, the workspace's pid file names it (a later teardown
    finds it there); once it ended, no pid or SIGINT record is left. Stand-in terraform."""
    record = tmp_path / "seen.json"

    tf.run(["apply"], workspace, {"STANDIN_SLEEP": "0.5", "STANDIN_RECORD": str(record)})

    assert (_recorded(record)["pid_file"], (workspace / tf.PID_FILE).exists(),
            (workspace / tf.SIGINT_FILE).exists()) == (True, False, False)


def test_a_command_that_takes_no_lock_is_not_recorded(terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """Issue 15 defect 4: `output` takes no state lock: no pid file names it. Stand-in terraform."""
    record = tmp_path / "seen.json"

    tf.run(["output"], workspace, {"STANDIN_SLEEP": "0.5", "STANDIN_RECORD": str(record)})

    assert _recorded(record)["pid_file"] is False


# ---- timeouts and Ctrl-C ---------------------------------------------------------------------

def test_a_command_past_its_timeout_gets_one_sigint_and_the_error_says_state_was_written(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """FR27: a command outliving its timeout gets SIGINT (recorded beforehand, so no second one is
    ever sent), writes its state and ends; the error names the timeout and the way out. Stand-in terraform."""
    with pytest.raises(tf.TerraformTimeout) as err:
        tf.run(["apply"], workspace, {"STANDIN_SLEEP": "20"}, log_dir=tmp_path / "logs", timeout=1, grace=5)

    log = _log_text(tmp_path / "logs")
    assert (err.value.killed, "SIGINT record: its 1s timeout (grace 5s)" in log, log.endswith("\n--- timed out, stopped with SIGINT"),
            tf.killed_marker(workspace)) == (False, True, True, None)
    assert ("timed out after 1s and was stopped with SIGINT (state written, lock released); raise timeout="
            in str(err.value)) and "Interrupt received" in str(err.value)


def test_a_command_ignoring_sigint_past_its_grace_is_killed_and_the_lock_marked(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """FR27, issue 24 item 2: a Terraform that ignores the SIGINT for its grace is killed; the error
    says its state or lock may be stale and the workspace is marked for a lock release. Stand-in terraform."""
    with pytest.raises(tf.TerraformTimeout) as err:
        tf.run(["destroy"], workspace, {"STANDIN_SLEEP": "20", "STANDIN_IGNORE_SIGINT": "1"},
               log_dir=tmp_path / "logs", timeout=0.5, grace=0.5)

    marker = tf.killed_marker(workspace) or {}
    assert (err.value.killed, " and was killed: it ignored SIGINT for the grace period, so its state or lock may "
                              "be stale; raise timeout=" in str(err.value),
            _log_text(tmp_path / "logs").endswith(
                "\n--- timed out, stopped with SIGINT\n--- killed (SIGKILL) after the grace period"),
            marker.get("subcommand"), marker.get("workspace"), marker.get("why")) == (
        True, True, True, "destroy", "02-deps", "timed out, then ignored SIGINT for its grace")


def test_without_a_timeout_the_subcommands_own_applies(
        terraform: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FR27: a command given no timeout gets its subcommand's (TIMEOUTS), here shortened to 0.5 s.
    Stand-in terraform."""
    monkeypatch.setitem(tf.TIMEOUTS, "plan", (0.5, 5))

    with pytest.raises(tf.TerraformTimeout) as err:
        tf.run(["plan"], workspace, {"STANDIN_SLEEP": "20"})

    assert "stopped with SIGINT" in str(err.value)


def test_other_subcommands_get_the_default_timeout(
        terraform: Path, workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """FR27: a subcommand without its own entry (here `output`) gets DEFAULT_TIMEOUT, here shortened.
    Stand-in terraform."""
    monkeypatch.setattr(tf, "DEFAULT_TIMEOUT", (0.5, 5))

    with pytest.raises(tf.TerraformTimeout):
        tf.run(["output"], workspace, {"STANDIN_SLEEP": "20"})


def test_03_apps_apply_and_destroy_wait_out_the_helm_release_timeout_after_sigint() -> None:
    """Issue 24 item 2: 03-app's apply and destroy get a grace longer than the Helm release's own
    timeout (Terraform waits for Helm before it writes its state); other workspaces and subcommands
    keep the subcommand's grace."""
    assert (tf.grace_for("apply", "03-app") > tf.HELM_RELEASE_TIMEOUT,
            tf.grace_for("destroy", "03-app") > tf.HELM_RELEASE_TIMEOUT,
            tf.grace_for("apply", "02-deps"), tf.grace_for("plan", "03-app"), tf.grace_for("output", "03-app")) == (
        True, True, tf.TIMEOUTS["apply"][1], tf.TIMEOUTS["plan"][1], tf.DEFAULT_TIMEOUT[1])


def _interrupt_soon(after: float) -> threading.Timer:
    """Ctrl-C for this process after `after` seconds, as the terminal sends it."""
    timer = threading.Timer(after, lambda: os.kill(os.getpid(), signal.SIGINT))
    timer.start()
    return timer


def test_ctrl_c_is_forwarded_as_one_sigint_and_raised_once_terraform_wrote_its_state(
        terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """FR27 (cancellation that stops terraform): Ctrl-C reaches Terraform as its one SIGINT (recorded
    first), the runner waits for it to end and then raises KeyboardInterrupt saying it wrote its
    state. Stand-in terraform."""
    _interrupt_soon(0.7)

    with pytest.raises(tf.TerraformInterrupted) as err:
        tf.run(["apply"], workspace, {"STANDIN_SLEEP": "20"}, log_dir=tmp_path / "logs")

    log = _log_text(tmp_path / "logs")
    forwarded = f"SIGINT record: SIGINT forwarded by the harness (grace {tf.TIMEOUTS['apply'][1]:g}s)"
    assert (err.value.killed, str(err.value), forwarded in log,
            log.endswith("\n--- interrupted (Ctrl-C forwarded as SIGINT)"), (workspace / tf.SIGINT_FILE).exists()) == (
        False, f"terraform apply in 02-deps: interrupted; terraform exited 1 after writing its state "
               f"(full log in {tmp_path / 'logs'})", True, True, False)


def test_ctrl_c_to_a_terraform_ignoring_sigint_kills_it_after_the_grace_and_marks_the_lock(
        terraform: Path, workspace: Path) -> None:
    """FR27, issue 24 item 2: a Terraform that ignores the forwarded SIGINT is killed after its grace;
    the interrupt says so and the workspace is marked for a lock release. Stand-in terraform."""
    _interrupt_soon(0.7)

    with pytest.raises(tf.TerraformInterrupted) as err:
        tf.run(["apply"], workspace, {"STANDIN_SLEEP": "20", "STANDIN_IGNORE_SIGINT": "1"}, grace=0.5)

    marker = tf.killed_marker(workspace) or {}
    assert (err.value.killed, str(err.value).endswith("after SIGKILL"), marker.get("why")) == (
        True, True, "interrupted, then killed (a second Ctrl-C, or it ignored SIGINT for its grace)")


# ---- a Terraform an earlier run left behind ------------------------------------------------

@pytest.fixture
def left_running(terraform: Path, workspace: Path, request: pytest.FixtureRequest) -> Iterator:
    """Starts the stand-in terraform as an earlier run's apply that the harness lost (own session, pid
    record), in `folder` (default: the 02-deps workspace)."""
    started: list[subprocess.Popen] = []

    def start(env: dict[str, str], folder: Path = workspace) -> subprocess.Popen:
        proc = subprocess.Popen([str(terraform), "apply"], cwd=folder, env={**os.environ, **env},
                                start_new_session=True, stderr=subprocess.PIPE, text=True)
        started.append(proc)
        procs.PidRecord.write(folder / tf.PID_FILE, proc.pid, f"terraform apply -auto-approve in {folder.name}")
        time.sleep(0.3)  # its SIGINT handler is in place
        return proc

    yield start
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_no_terraform_left_running_means_no_wait_and_stale_records_go(workspace: Path) -> None:
    """Issue 15 defect 4: a pid record of a process that has ended is stale: nothing is waited for
    and the records are removed."""
    (workspace / ".terraform").mkdir()
    (workspace / tf.PID_FILE).write_text(json.dumps({"pid": 2**22 + 1, "start": 1, "what": "terraform apply"}))
    (workspace / tf.SIGINT_FILE).write_text("{}")

    assert (tf.wait_for_live_terraform(workspace), tf.live_terraform(workspace), (workspace / tf.PID_FILE).exists(),
            (workspace / tf.SIGINT_FILE).exists()) == (False, None, False, False)


def test_a_terraform_left_running_that_ends_in_time_gets_no_sigint(workspace: Path, left_running) -> None:
    """Issue 15 defect 4: a Terraform an earlier run left is waited for; one that ends within the
    wait is never interrupted. Stand-in terraform."""
    proc = left_running({"STANDIN_SLEEP": "0.5"})

    found = tf.wait_for_live_terraform(workspace, wait=10, grace=5)

    assert (found, proc.wait(timeout=5), "Interrupt received" in proc.stderr.read(),
            (workspace / tf.PID_FILE).exists()) == (True, 0, False, False)


def test_a_terraform_left_running_past_the_wait_gets_one_recorded_sigint(workspace: Path, left_running) -> None:
    """Issue 15 defect 4: a Terraform still running after the wait gets one SIGINT, recorded before
    it is sent, and is not killed when it ends within its grace. Stand-in terraform."""
    proc = left_running({"STANDIN_SLEEP": "30"})
    assert tf.live_terraform(workspace) is not None

    found = tf.wait_for_live_terraform(workspace, wait=0.5, grace=10)

    assert (found, proc.wait(timeout=5), proc.stderr.read().strip(), tf.killed_marker(workspace)) == (
        True, 1, "Interrupt received; SIGINT record: a teardown's wait for a Terraform an earlier run left (grace 10s)", None)


def test_a_terraform_left_running_that_ignores_sigint_is_killed_and_the_lock_marked(
        workspace: Path, left_running) -> None:
    """Issue 15 defect 4, issue 24 item 2: one that ignores the SIGINT for its grace has its process
    group killed, and the workspace is marked for a lock release. Stand-in terraform."""
    proc = left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1"})

    tf.wait_for_live_terraform(workspace, wait=0.3, grace=0.5)

    marker = tf.killed_marker(workspace) or {}
    assert (proc.wait(timeout=5), marker.get("subcommand"), marker.get("pid"), marker.get("why")) == (
        -signal.SIGKILL, "apply", proc.pid, "ignored SIGINT for 0.5s after an earlier run left it")


def test_a_terraform_that_already_got_its_sigint_gets_no_second_one(workspace: Path, left_running) -> None:
    """Issue 24 item 8: when the record says the Terraform already got its SIGINT, none is sent again
    (a second makes Terraform exit without writing its state); the rest of its grace is waited out
    and it is killed only after. Stand-in terraform."""
    proc = left_running({"STANDIN_SLEEP": "30"})
    record = procs.PidRecord.read(workspace / tf.PID_FILE)
    assert record is not None
    procs.write_json(workspace / tf.SIGINT_FILE, {"pid": record.pid, "start": record.start, "at": time.time(),
                                                  "why": "SIGTERM forwarded by the harness", "grace": 0.8})
    started = time.monotonic()

    tf.wait_for_live_terraform(workspace, wait=60)

    waited = time.monotonic() - started
    marker = tf.killed_marker(workspace) or {}
    assert (proc.wait(timeout=5), "Interrupt received" in proc.stderr.read(), waited < 5,
            marker.get("why")) == (-signal.SIGKILL, False, True, "ignored SIGINT for 0.8s after an earlier run left it")


def test_a_killed_marker_is_gone_once_cleared(workspace: Path) -> None:
    """Issue 24 item 2: once the lock is released the kill no longer matters: the marker reads None."""
    tf._mark_killed(workspace, "apply", "a test")
    seen = tf.killed_marker(workspace)

    tf.clear_killed_marker(workspace)

    assert (seen is not None and seen["why"] == "a test", tf.killed_marker(workspace)) == (True, None)


# ---- workspace copies and templates --------------------------------------------------------

def test_a_copied_workspace_gets_its_overrides_and_none_of_terraforms_data(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """tftest works in place: a copy has the workspace's files and the *_override.tf files given,
    never its .terraform data."""
    source = tmp_path / "terraform" / "01-network"
    (source / ".terraform").mkdir(parents=True)
    (source / "main.tf").write_text("# main\n")
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tmp_path / "terraform")

    copy = tf.copy_workspace("01-network", tmp_path / "copies", {"x_override.tf": "# over\n"})

    assert (copy, sorted(p.name for p in copy.iterdir()), (copy / "x_override.tf").read_text()) == (
        tmp_path / "copies" / "01-network", ["main.tf", "x_override.tf"], "# over\n")


def test_an_override_not_named_override_is_refused_naming_it(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An override file that Terraform would not treat as one is refused, naming it."""
    (tmp_path / "terraform" / "01-network").mkdir(parents=True)
    monkeypatch.setattr(tf, "TERRAFORM_DIR", tmp_path / "terraform")

    with pytest.raises(ValueError, match="must end in _override.tf, got extra.tf"):
        tf.copy_workspace("01-network", tmp_path / "copies", {"extra.tf": ""})


def test_a_template_renders_with_terraforms_own_templatefile(tmp_path: Path) -> None:
    """render_template gives what Terraform's templatefile() gives, with the variables given (the
    project's real terraform, no provider)."""
    template = tmp_path / "values.tftpl"
    template.write_text("replicas: ${replicas}\nname: ${name}\n")

    assert tf.render_template(template, {"replicas": 2, "name": "web"}) == "replicas: 2\nname: web\n"


def test_the_first_recorded_sigint_is_the_one_a_later_teardown_honours(workspace: Path, left_running) -> None:
    """Issue 24 item 8: the harness records the SIGINT it sends (the first record stands, a later one
    would restart the grace); a teardown after the harness was killed sends none again and kills the
    Terraform once the first record's grace has passed. Stand-in terraform (ignores the SIGINT)."""
    proc = left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1"})
    tf._note_sigint(workspace, "SIGTERM forwarded by the harness", 0.6)
    tf._note_sigint(workspace, "its 900s timeout", 1.2)

    tf.wait_for_live_terraform(workspace, wait=60)

    marker = tf.killed_marker(workspace) or {}
    assert (proc.wait(timeout=5), marker.get("why")) == (-signal.SIGKILL, "ignored SIGINT for 0.6s after an earlier run left it")


def test_no_sigint_is_recorded_for_a_workspace_where_no_terraform_runs(workspace: Path) -> None:
    """Issue 24 item 8: without a running Terraform in the workspace there is nothing to record."""
    tf._note_sigint(workspace, "SIGINT forwarded by the harness", 60)

    assert not (workspace / tf.SIGINT_FILE).exists()


def test_a_command_that_takes_no_lock_records_no_sigint_for_a_terraform_left_running(
        terraform: Path, workspace: Path, left_running) -> None:
    """Issue 24 item 8: when `output` (no lock, no pid record) outlives its timeout, its SIGINT goes to
    it alone: nothing is recorded against the apply an earlier run left running in the workspace, so
    a later teardown still gives that apply its one SIGINT to write its state. Stand-in terraform."""
    left_running({"STANDIN_SLEEP": "30"})

    with pytest.raises(tf.TerraformTimeout):
        tf.run(["output"], workspace, {"STANDIN_SLEEP": "20"}, timeout=1, grace=5)

    assert not (workspace / tf.SIGINT_FILE).exists()


def test_the_sigint_the_harness_records_gives_a_later_teardown_the_rest_of_its_grace(
        workspace: Path, left_running, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24 item 8: the record the harness writes as it sends its SIGINT (_note_sigint) is the one a
    later teardown reads: no second SIGINT, the rest of the grace counted from that moment, each
    look logged by name, and a Terraform that ends within it is not killed. Stand-in terraform (ends
    by itself 1.5 s after it started)."""
    proc = left_running({"STANDIN_SLEEP": "1.5"})
    tf._note_sigint(workspace, "its 900s timeout", 20)
    caplog.set_level(logging.INFO, logger="lfharness")

    tf.wait_for_live_terraform(workspace, wait=60)

    what = f"terraform apply -auto-approve in 02-deps (pid {proc.pid})"
    assert (proc.wait(timeout=5), tf.killed_marker(workspace)) == (0, None)
    assert caplog.messages[0].startswith(f"{what} is still running, left by an earlier run, and already got its "
                                         "SIGINT 0s ago (its 900s timeout): ")
    assert caplog.messages[0].endswith("waiting the rest of its 20s grace (20s) for it to end, then it is killed")
    assert any(m.startswith(f"{what} ended after its SIGINT: ok after ") for m in caplog.messages)


def test_a_terraform_whose_grace_ran_out_since_its_sigint_is_killed_at_once(
        workspace: Path, left_running, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24 items 2 and 8: when the grace of the SIGINT it already got has passed, a Terraform left
    running is killed without a further wait, and its kill is logged by name. Stand-in terraform
    (ignores SIGINT)."""
    proc = left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1"})
    record = procs.PidRecord.read(workspace / tf.PID_FILE)
    assert record is not None
    procs.write_json(workspace / tf.SIGINT_FILE, {"pid": record.pid, "start": record.start, "at": time.time() - 100,
                                                  "why": "SIGTERM forwarded by the harness", "grace": 5})
    caplog.set_level(logging.INFO, logger="lfharness.core.wait")
    started = time.monotonic()

    tf.wait_for_live_terraform(workspace, wait=60)

    assert (proc.wait(timeout=5), time.monotonic() - started < 0.9) == (-signal.SIGKILL, True)
    assert any(m.startswith(f"terraform apply -auto-approve in 02-deps (pid {proc.pid}) killed: ok after ")
               for m in caplog.messages)


def test_a_grace_given_to_the_teardown_wins_over_the_recorded_one(workspace: Path, left_running) -> None:
    """Issue 24 item 8: a caller's grace replaces the one recorded with the SIGINT (as documented):
    here 0.5 s instead of 30 s. Stand-in terraform (ignores SIGINT)."""
    proc = left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1"})
    tf._note_sigint(workspace, "SIGTERM forwarded by the harness", 30)

    tf.wait_for_live_terraform(workspace, wait=60, grace=0.5)

    marker = tf.killed_marker(workspace) or {}
    assert (proc.wait(timeout=5), marker.get("why")) == (-signal.SIGKILL,
                                                         "ignored SIGINT for 0.5s after an earlier run left it")


def test_a_terraform_left_running_in_03_app_gets_the_helm_release_timeout_as_its_grace(
        tmp_path: Path, left_running, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24 item 2: after a SIGINT, 03-app's apply still waits on Helm; a teardown's default grace
    for one left running there is the release's timeout plus two minutes (1320 s), as run's own.
    Stand-in terraform (ends at its SIGINT)."""
    app = tmp_path / "03-app"
    app.mkdir()
    proc = left_running({"STANDIN_SLEEP": "30"}, app)
    caplog.set_level(logging.WARNING, logger="lfharness.core.tf")

    tf.wait_for_live_terraform(app, wait=0.3)

    assert proc.wait(timeout=5) == 1
    assert caplog.messages[-1] == (f"terraform apply -auto-approve in 03-app (pid {proc.pid}): still running after "
                                   "0.3s; sending one SIGINT, up to 1320s for it to write its state")


def test_a_terraform_that_ends_after_its_sigint_is_seen_within_a_second(workspace: Path, left_running) -> None:
    """Issue 24 item 8: the wait after the SIGINT looks every second, so the teardown goes on within a
    second of the Terraform's end, whatever its grace (10 s here). Stand-in terraform (ends at its
    SIGINT)."""
    proc = left_running({"STANDIN_SLEEP": "30"})
    started = time.monotonic()

    tf.wait_for_live_terraform(workspace, wait=0.3, grace=10)

    assert (proc.wait(timeout=5), time.monotonic() - started < 1.8) == (1, True)


def test_a_terraform_whose_own_harness_removes_its_record_is_waited_for_without_error(
        workspace: Path, left_running) -> None:
    """Issue 15 defect 4: the Terraform in the pid record may belong to a harness still running on this
    machine, which removes the record when its Terraform ends; the wait ends cleanly all the same.
    Stand-in terraform (ends by itself after 0.5 s and removes its record)."""
    proc = left_running({"STANDIN_SLEEP": "0.5", "STANDIN_REMOVE_PID": "1"})

    assert (tf.wait_for_live_terraform(workspace, wait=60), proc.wait(timeout=5),
            (workspace / tf.PID_FILE).exists()) == (True, 0, False)


@pytest.mark.parametrize(("pid", "start"), [(0, 1), (1, 0)], ids=["pid-reused", "other-pid"])
def test_a_sigint_record_names_one_process_by_pid_and_start_ticks(workspace: Path, pid: int, start: int) -> None:
    """Issue 24 item 8: a SIGINT record is honoured only for the process it was written for: the same
    pid started at another time (the pid reused) or another pid started at the same tick is another
    process, which gets its own SIGINT."""
    record = procs.PidRecord(4242, 777, "terraform apply -auto-approve in 02-deps")
    (workspace / ".terraform").mkdir()
    procs.write_json(workspace / tf.SIGINT_FILE, {"pid": 4242 + pid, "start": 777 + start, "at": time.time(),
                                                  "why": "its 900s timeout", "grace": 300})

    assert tf.sigint_sent(workspace, record) is None


def test_the_operator_is_told_each_step_of_stopping_a_terraform_left_running(
        workspace: Path, left_running, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 15 defect 4, issue 24 item 2: the teardown's log says what it waits for and how long, when
    it sends the SIGINT and with what grace, that it kills the process group, and how the lock that may
    be left is released. Stand-in terraform (ignores the SIGINT)."""
    proc = left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1"})
    caplog.set_level(logging.INFO)

    tf.wait_for_live_terraform(workspace, wait=0.3, grace=0.5)

    what = f"terraform apply -auto-approve in 02-deps (pid {proc.pid})"
    logged = [r.getMessage() for r in caplog.records if r.name == "lfharness.core.tf"]
    waits = [r.getMessage().split(": not yet")[0] for r in caplog.records if ": not yet" in r.getMessage()]
    assert waits[:2] == [f"{what} ended", f"{what} ended after SIGINT"]
    assert logged[:3] == [
        f"{what} is still running, left by an earlier run: waiting up to 0.3s for it to end",
        f"{what}: still running after 0.3s; sending one SIGINT, up to 0.5s for it to write its state",
        f"{what} ignored SIGINT for 0.5s: killing its process group; its state or lock may be stale"]
    assert logged[-1] == ("terraform apply in 02-deps was killed (ignored SIGINT for 0.5s after an earlier run left "
                          "it): Terraform Cloud may still hold its lock; the next teardown or `python -m lfharness "
                          f"unlock` releases it (recorded in {workspace / tf.KILLED_FILE})")


def test_the_operator_is_told_why_a_terraform_that_got_its_sigint_gets_no_second(
        workspace: Path, left_running, caplog: pytest.LogCaptureFixture) -> None:
    """Issue 24 item 8: the log says the Terraform already got its SIGINT, why, that none is sent again
    and how much of its grace is left. Stand-in terraform (ends by itself within the grace)."""
    proc = left_running({"STANDIN_SLEEP": "0.8"})
    record = procs.PidRecord.read(workspace / tf.PID_FILE)
    assert record is not None
    procs.write_json(workspace / tf.SIGINT_FILE, {"pid": record.pid, "start": record.start, "at": time.time() - 10.2,
                                                  "why": "SIGTERM forwarded by the harness", "grace": 40})
    caplog.set_level(logging.INFO, logger="lfharness.core.tf")

    tf.wait_for_live_terraform(workspace)

    logged = [r.getMessage() for r in caplog.records if r.name == "lfharness.core.tf"]
    assert logged[0] == (f"terraform apply -auto-approve in 02-deps (pid {proc.pid}) is still running, left by an "
                         "earlier run, and already got its SIGINT 10s ago (SIGTERM forwarded by the harness): a second "
                         "SIGINT would make Terraform exit at once without writing its state, so none is sent; "
                         "waiting the rest of its 40s grace (30s) for it to end, then it is killed")



def test_runs_in_one_log_folder_keep_a_log_each(terraform: Path, workspace: Path, tmp_path: Path) -> None:
    """FR27 (run logs under .runs/): a second command logging into the same folder adds its own log.
    Stand-in terraform."""
    log_dir = tmp_path / ".runs" / "terraform"

    tf.run(["init"], workspace, log_dir=log_dir)
    tf.run(["plan"], workspace, log_dir=log_dir)

    assert sorted(p.name.split("-", 1)[1] for p in log_dir.glob("*.log")) == ["02-deps-init.log", "02-deps-plan.log"]


@pytest.mark.parametrize("error", [tf.TerraformTimeout, tf.TerraformInterrupted])
def test_a_stop_raised_without_saying_it_killed_reports_no_kill(error: type) -> None:
    """Issue 24 item 2: a timeout or interrupt raised without `killed` (e.g. the plan tier's worker)
    does not claim a kill, so no lock release is suggested."""
    assert error("stopped").killed is False


def test_a_killed_marker_says_when_in_utc(workspace: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Issue 24 item 2: the kill record says when it happened, in UTC (ISO 8601, Z), whatever the
    machine's time zone."""
    monkeypatch.setenv("TZ", "America/New_York")
    time.tzset()
    try:
        tf._mark_killed(workspace, "apply", "a test")
        now = time.time()
    finally:
        monkeypatch.delenv("TZ")
        time.tzset()

    stamp = (tf.killed_marker(workspace) or {}).get("killed_at", "")
    parsed = calendar.timegm(time.strptime(stamp, "%Y-%m-%dT%H:%M:%SZ"))
    assert abs(parsed - now) < 5


def test_clearing_a_marker_that_is_not_there_is_fine(workspace: Path) -> None:
    """Issue 24 item 2: `unlock` clears the marker whether or not a kill was recorded."""
    tf.clear_killed_marker(workspace)

    assert tf.killed_marker(workspace) is None


def test_a_stale_pid_record_names_no_live_terraform(workspace: Path) -> None:
    """Issue 15 defect 4: a record of a process that has ended is not a Terraform still running."""
    (workspace / ".terraform").mkdir()
    (workspace / tf.PID_FILE).write_text(json.dumps({"pid": 2**22 + 1, "start": 1, "what": "terraform apply"}))

    assert tf.live_terraform(workspace) is None


def test_a_workspace_where_terraform_never_ran_needs_no_wait(workspace: Path) -> None:
    """Issue 15 defect 4: no pid record at all: nothing to wait for, nothing to remove."""
    assert tf.wait_for_live_terraform(workspace) is False


def test_a_terraform_left_running_is_waited_for_by_default(workspace: Path, left_running) -> None:
    """Issue 15 defect 4: with no wait given, the teardown waits (LIVE_WAIT) for a Terraform that
    ends by itself and sends it nothing. Stand-in terraform."""
    proc = left_running({"STANDIN_SLEEP": "0.5"})

    assert (tf.wait_for_live_terraform(workspace), proc.wait(timeout=5)) == (True, 0)


def test_killing_a_terraform_left_running_kills_its_providers_too(workspace: Path, left_running, tmp_path: Path) -> None:
    """Issue 15 defect 4: the kill reaches Terraform's whole process group, so no provider plugin
    lives on. Stand-in terraform with a child in its group that ignores SIGINT."""
    child_pid = tmp_path / "child.pid"
    left_running({"STANDIN_SLEEP": "30", "STANDIN_IGNORE_SIGINT": "1", "STANDIN_CHILD_PID": str(child_pid)})
    retry(child_pid.exists, timeout=10, interval=0.05, what="the provider's pid", validator=bool)

    tf.wait_for_live_terraform(workspace, wait=0.3, grace=0.3)

    pid = int(child_pid.read_text())
    try:
        os.kill(pid, 0)
        gone = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] == "Z"
    except ProcessLookupError:
        gone = True
    assert gone
