"""Issue 24 item 2: a Terraform the harness had to kill leaves a mark, and the next teardown or
`python -m lfharness unlock` releases that workspace's Terraform Cloud lock; `unlock` releases the
stack's locks without destroying anything and refuses while a Terraform of this machine runs (static tier).

Stand-ins: a small Python program as Terraform (tf.terraform_bin pointed at it) that ignores SIGINT,
as Terraform does while the helm provider installs; the project's real terraform with the random
provider on throwaway local-backend workspaces for the destroy; the local Terraform Cloud fake with
its locks; a sleeping Python process as a Terraform still running, recorded with procs.PidRecord.
"""

from __future__ import annotations

import logging
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from lfharness import commands
from lfharness.core import procs, tf
from lfharness.stack.stack import Stack
from lfharness.testing.quickstack import EMPTY, QUICK, SETTINGS, resources, write_workspaces

pytestmark = pytest.mark.static

NAMES = {"01-network": "langfuse-network", "02-deps": "langfuse-deps", "03-app": "langfuse-app"}

# Ignores SIGINT, as a Terraform waiting for a Helm install does.
STANDIN = textwrap.dedent('''\
    import signal, time
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    time.sleep(3600)
''')


def _env_file(folder: Path) -> Path:
    """A well-formed .env naming a target (the client passed to the command is the fake's)."""
    path = folder / ".env"
    path.write_text("\n".join(f"{k}={v}" for k, v in {
        "AWS_ACCESS_KEY_ID": SETTINGS.aws_access_key_id, "AWS_SECRET_ACCESS_KEY": SETTINGS.aws_secret_access_key,
        "AWS_DEFAULT_REGION": "us-east-1", "TFE_TOKEN": SETTINGS.tfe_token, "TFC_ORGANIZATION": "org",
        "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
        "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery"}.items()) + "\n")
    return path


def _killed_apply(workspace: Path, folder: Path, monkeypatch) -> tf.TerraformTimeout:
    """An apply in `workspace` that outlives its timeout and ignores SIGINT for its grace: killed."""
    binary = folder / "terraform"
    folder.mkdir(parents=True, exist_ok=True)
    binary.write_text(f"#!{sys.executable}\n" + STANDIN)
    binary.chmod(0o755)
    with monkeypatch.context() as patch:
        patch.setattr(tf, "terraform_bin", lambda: binary)
        with pytest.raises(tf.TerraformTimeout) as err:
            tf.run(["apply", "-auto-approve", "-input=false", "-no-color", f"-var=secret={SETTINGS.tfe_token}"],
                   workspace, {}, timeout=1, grace=1)
    return err.value


@pytest.mark.parametrize("then", ["teardown", "unlock"])
def test_a_killed_terraform_leaves_its_mark_and_the_next_teardown_or_unlock_releases_its_lock(
        tmp_path, cli_env, tfc_fake, monkeypatch, caplog, then):
    """Issue 24 item 2: an apply killed after its timeout's grace is known as killed (the exception
    and a mark in .terraform holding no secret); the workspace's Terraform Cloud lock it held is then
    released, saying so, by the Stack's own teardown before it destroys, or by `unlock` (stand-in
    Terraform that ignores SIGINT; real terraform destroys; Terraform Cloud fake's lock)."""
    fake, client = tfc_fake
    for name in NAMES.values():
        fake.add_workspace(name, {"execution-mode": "local"})
    root = write_workspaces(tmp_path / "terraform", QUICK)
    tf.run(["init", "-input=false", "-no-color"], root / "03-app", cli_env)
    tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], root / "03-app", cli_env)
    fake.lock_workspace("langfuse-app")  # what the killed Terraform held
    error = _killed_apply(root / "03-app", tmp_path / "bin", monkeypatch)
    mark = (root / "03-app" / tf.KILLED_FILE).read_text()
    assert (error.killed, tf.killed_marker(root / "03-app")["subcommand"], SETTINGS.tfe_token in mark) == (
        True, "apply", False)
    with caplog.at_level(logging.INFO):
        if then == "teardown":
            Stack(SETTINGS, tmp_path / "run", root, cli_env, tfc=client).teardown(("03-app",))
            said = "released the lock on langfuse-app before destroying"
        else:
            assert commands.unlock_command(_env_file(tmp_path), root, client) == 0
            said = "lock released (force-unlock)"
    assert (fake.workspace("langfuse-app")["locked"], (root / "03-app" / tf.KILLED_FILE).exists(),
            said in caplog.text, resources(root / "03-app") == []) == (False, False, True, then == "teardown")


def test_unlock_refuses_while_a_recorded_terraform_runs_and_releases_once_it_has_ended(
        tmp_path, tfc_fake, caplog, request):
    """Issue 24 item 2: `unlock` with a Terraform of this machine still running on 02-deps (its pid
    record, the process alive) exits 1 naming its pid and workspace and releases nothing; once it has
    ended, it releases the locked workspaces only (01-network, not locked, gets no force-unlock) and
    destroys nothing (a sleeping process as that Terraform; Terraform Cloud fake's locks)."""
    fake, client = tfc_fake
    ids = {ws: fake.add_workspace(name, {"execution-mode": "local"}) for ws, name in NAMES.items()}
    fake.lock_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-app")
    root = write_workspaces(tmp_path / "terraform", EMPTY)
    running = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(300)"], start_new_session=True)
    request.addfinalizer(lambda: running.poll() is None and (running.send_signal(signal.SIGKILL), running.wait()))
    assert procs.PidRecord.write(root / "02-deps" / tf.PID_FILE, running.pid, "terraform apply in 02-deps")
    env_file = _env_file(tmp_path)
    with caplog.at_level(logging.INFO):
        refused = commands.unlock_command(env_file, root, client)
    named = f"(pid {running.pid}) still runs on 02-deps" in caplog.text
    held = [fake.workspace(name)["locked"] for name in NAMES.values()]
    running.kill()
    running.wait(timeout=30)
    released = commands.unlock_command(env_file, root, client)
    unlocks = [path for method, path in fake.calls() if path.endswith("/actions/force-unlock")]
    assert (refused, named, held, released, [fake.workspace(name)["locked"] for name in NAMES.values()],
            sorted(unlocks), (root / "02-deps" / tf.PID_FILE).exists()) == (
        1, True, [False, True, True], 0, [False, False, False],
        sorted(f"/api/v2/workspaces/{ids[ws]}/actions/force-unlock" for ws in ("02-deps", "03-app")), False)


def test_unlock_without_env_has_nothing_to_do(tmp_path):
    """Issue 24 item 2: `python -m lfharness unlock` reads .env like the other commands; with none there
    is no target, so it says so and exits 0."""
    result = subprocess.run([sys.executable, "-m", "lfharness", "unlock", "--env-file", str(tmp_path / "absent.env")],
                            cwd=Path(__file__).resolve().parents[2], capture_output=True, text=True, timeout=60,
                            check=False)
    assert (result.returncode, "nothing to unlock" in result.stderr) == (0, True)


def test_unlock_is_registered_with_the_other_commands():
    """The parser knows `unlock` (no run folder: it only has --env-file)."""
    parser = commands.build_parser("test")
    args = parser.parse_args(["unlock"])
    assert (args.command, hasattr(args, "runs_dir")) == ("unlock", False)

