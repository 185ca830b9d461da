"""The operator commands of `python -m lfharness` as an operator's scripts see them: exit codes, the
errors on a bad `.env` or a bad argument before anything is created, run folders under `.runs/`,
which commands need which `.env` keys, what each command hands its domain sequence, and the parser
(static tier; issue 28's mutation score of lfharness/commands.py).

Stand-ins: a recording fake of Terraform Cloud's client (which workspaces exist, their outputs) put
in place of the TfcClient the preamble opens; a recording fake Stack; the domain sequences
(teardown_workspaces, unlock_workspaces, pause.pause, pause.resume, deploy.up, connect.Holder) and
the cluster access (k8s.write_exec_kubeconfig, k8s.Kube, langfuse_api.health) replaced by functions
recording their arguments. The `.env` files are complete ones of placeholder credentials.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import io
import json
import logging
import re
import socket
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from lfharness import commands
from lfharness.core import envfile, redact, tf
from lfharness.core.tfc import TfcError, TfcOutput
from lfharness.stack import budget, clickhouse, connect, cost, deploy, k8s, langfuse_api, pause, status, workspaces
from lfharness.stack.k8s import KubectlError
from lfharness.stack.stack import TeardownError, UnlockReport

pytestmark = pytest.mark.static

TOKEN = "tok" + "x" * 30
SECRET_KEY = "s" * 40
ENV = {"AWS_ACCESS_KEY_ID": "AKIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": SECRET_KEY,
       "AWS_DEFAULT_REGION": "eu-west-1", "TFE_TOKEN": TOKEN, "TFC_ORGANIZATION": "langfuse-test",
       "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
       "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery"}
NAMES = list(workspaces.TFC_NAMES.values())
NETWORK = {"cluster_name": "langfuse", "cluster_endpoint": "https://eks.example", "cluster_ca_data": "Q0E="}
FOLDER = re.compile(r"\d{8}-\d{6}-(?P<action>[a-z]+)")


def _env(tmp_path: Path, **changes: str | None) -> Path:
    """A complete .env (long-term placeholder keys); a change of None leaves that key out."""
    values = {**ENV, **changes}
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items() if v is not None))
    return path


def _expiring_in(tmp_path: Path, seconds: float) -> Path:
    """A .env of temporary credentials that expire `seconds` from now."""
    at = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=seconds)
    return _env(tmp_path, AWS_ACCESS_KEY_ID="ASIA" + "ABCDEFGHIJKLMNOP", AWS_SESSION_TOKEN="IQoJb3JpZ2luX2VjE" + "A" * 300,
                AWS_SESSION_EXPIRATION=at.strftime("%Y-%m-%dT%H:%M:%SZ"))


class FakeTfc:
    """Terraform Cloud as the commands use it: which workspaces exist, 01-network's outputs, and every call."""

    def __init__(self, token: str, organization: str) -> None:
        self.opened_with = (token, organization)
        self.organization = organization
        self.existing = set(NAMES)
        self.network: dict[str, Any] = dict(NETWORK)
        self.deps: dict[str, Any] = {}
        self.error: TfcError | None = None
        self.calls: list[tuple[str, Any]] = []

    def get_workspace(self, name: str) -> dict[str, Any] | None:
        self.calls.append(("get", name))
        if self.error is not None:
            raise self.error
        return {"name": name} if name in self.existing else None

    def ensure_workspace(self, name: str) -> dict[str, Any]:
        self.calls.append(("ensure", name))
        return {"name": name}

    def ensure_all(self, readers: dict[str, list[str]]) -> dict[str, dict[str, Any]]:
        self.calls.append(("ensure_all", readers))
        return {}

    def outputs(self, name: str, *, reveal_sensitive: bool = False) -> dict[str, TfcOutput]:
        self.calls.append(("outputs", name))
        if self.error is not None:
            raise self.error
        values = {workspaces.get(workspaces.CLUSTER_WORKSPACE).tfc_name: self.network,
                  workspaces.get(workspaces.DATA_WORKSPACE).tfc_name: self.deps}.get(name, {})
        return {k: TfcOutput(k, v, False, "string", f"wsout-{k}") for k, v in values.items()}


@pytest.fixture
def cloud(monkeypatch) -> list[FakeTfc]:
    """Every Terraform Cloud client the preamble opens, in order (each a FakeTfc)."""
    opened: list[FakeTfc] = []

    def open_client(token: str, organization: str) -> FakeTfc:
        opened.append(FakeTfc(token, organization))
        return opened[-1]

    monkeypatch.setattr(commands, "TfcClient", open_client)
    return opened


@pytest.fixture
def no_cloud(monkeypatch) -> None:
    """Fails the test at the first Terraform Cloud client: nothing may be read or created."""
    def refuse(*args: Any, **kwargs: Any) -> None:
        raise AssertionError("Terraform Cloud was contacted")
    monkeypatch.setattr(commands, "TfcClient", refuse)


class FakeStack:
    """The Stack the commands build: what it was built with; outputs per workspace."""

    built: list[FakeStack] = []

    def __init__(self, settings: envfile.Settings, run_dir: Path, *, redactor: redact.Redactor | None = None,
                 aws: Any = None) -> None:
        self.settings, self.run_dir, self.redactor, self.aws = settings, run_dir, redactor, aws
        FakeStack.built.append(self)

    def outputs(self, workspace: str) -> dict[str, Any]:
        return {workspaces.CLUSTER_WORKSPACE: dict(NETWORK), workspaces.APP_WORKSPACE: {"project_id": "p-42"}}.get(
            workspace, {})


@pytest.fixture
def stacks(monkeypatch) -> list[FakeStack]:
    FakeStack.built = []
    monkeypatch.setattr(commands, "Stack", FakeStack)
    return FakeStack.built


class FakeKube:
    """k8s.Kube: the kubeconfig and environment it was given; port-forwards and node reads recorded."""

    made: list[FakeKube] = []

    def __init__(self, kubeconfig: Path, env: dict[str, str] | None = None,
                 redactor: redact.Redactor | None = None) -> None:
        self.kubeconfig, self.env, self.redactor = kubeconfig, env, redactor
        self.forwards: list[tuple[str, str, int]] = []
        FakeKube.made.append(self)

    @contextlib.contextmanager
    def port_forward(self, namespace: str, service: str, remote_port: int) -> Iterator[int]:
        self.forwards.append((namespace, service, remote_port))
        yield 43210

    def nodes(self) -> list[Any]:
        return []


@pytest.fixture
def kube(monkeypatch) -> dict[str, Any]:
    """k8s.Kube replaced by FakeKube; the kubeconfigs written (arguments of write_exec_kubeconfig) and
    the health URLs asked, recorded."""
    seen: dict[str, Any] = {"kubeconfigs": [], "health": [], "kubes": FakeKube.made}
    FakeKube.made.clear()

    def write(path: Path, endpoint: str, ca_data: str, cluster_name: str, region: str) -> Path:
        seen["kubeconfigs"].append((path, endpoint, ca_data, cluster_name, region))
        return path

    def health(url: str) -> Any:
        seen["health"].append(url)
        return argparse.Namespace(status_code=200)

    monkeypatch.setattr(k8s, "write_exec_kubeconfig", write)
    monkeypatch.setattr(k8s, "Kube", FakeKube)
    monkeypatch.setattr(langfuse_api, "health", health)
    return seen


def _records(caplog, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.levelno == level]


# --- the preamble: .env checked before anything is read or created -------------------------------------

def _commands(env: Path, runs: Path) -> dict[str, Any]:
    return {"teardown": lambda: commands.teardown_command(env, runs),
            "unlock": lambda: commands.unlock_command(env),
            "pause": lambda: commands.pause_command(env, runs),
            "resume": lambda: commands.resume_command(env, runs),
            "up": lambda: commands.up_command(env, runs),
            "keys": lambda: commands.keys_command(env, None, show_secret=False),
            "status": lambda: commands.status_command(env, None),
            "connect": lambda: commands.connect_command(env, runs, {"langfuse-web": 0, "langfuse-clickhouse": 0,
                                                                   "langfuse-redis-primary": 0})}


@pytest.mark.parametrize("command", ["teardown", "unlock", "pause", "resume", "up", "keys", "status", "connect"])
def test_a_malformed_env_exits_2_naming_the_key_before_terraform_cloud_or_a_run_folder(
        tmp_path, no_cloud, caplog, command):
    """FR23: every command reads .env through the shared preamble: a malformed key is an error naming it,
    exit 2, and neither Terraform Cloud nor a run folder is touched (client that fails the test when opened)."""
    runs = tmp_path / "runs"
    code = _commands(_env(tmp_path, AWS_DEFAULT_REGION="mars-1"), runs)[command]()
    assert (code, any("AWS_DEFAULT_REGION" in m for m in _records(caplog, logging.ERROR)), runs.exists()) == (
        2, True, False)


@pytest.mark.parametrize(("command", "code", "level", "why"), [
    ("teardown", 0, logging.INFO, "nothing to tear down"),
    ("unlock", 0, logging.INFO, "nothing to unlock"),
    ("pause", 2, logging.ERROR, "pause and resume act on the deployed stack"),
    ("resume", 2, logging.ERROR, "pause and resume act on the deployed stack"),
    ("up", 2, logging.ERROR, "fill .env (see .env.example)"),
    ("keys", 2, logging.ERROR, "the keys are read from Terraform Cloud"),
    ("status", 2, logging.ERROR, "pass --state-dir"),
    ("connect", 2, logging.ERROR, "connect reaches the deployed cluster"),
])
def test_an_env_without_a_target_names_the_missing_keys_and_exits_with_the_commands_code(
        tmp_path, no_cloud, caplog, command, code, level, why):
    """FR23, issue 24 item 2: a .env that names no Terraform Cloud target is nothing to do for teardown and
    unlock (exit 0, said as information: a CI clean-up without secrets passes) and an error for the
    commands that need the stack (exit 2); the line names the command, the .env, the missing key and
    what to do, and no run folder is made (client that fails the test when opened)."""
    env = _env(tmp_path, TFE_TOKEN=None, TFC_ORGANIZATION=None)
    runs = tmp_path / "runs"
    with caplog.at_level(logging.INFO):
        got = _commands(env, runs)[command]()
    said = [m for m in _records(caplog, level) if m.startswith(f"{command}: {env} lacks TFE_TOKEN, TFC_ORGANIZATION; ")]
    assert (got, len(said), why in "".join(said), runs.exists()) == (code, 1, True, False)


def test_up_refuses_temporary_credentials_that_expire_before_a_deploy_could_end(tmp_path, no_cloud, caplog):
    """FR23, issue 27: `up` with temporary keys expiring a minute before budget.UP exits 2 naming
    AWS_SESSION_EXPIRATION, before Terraform Cloud or a run folder (client that fails the test when opened)."""
    runs = tmp_path / "runs"
    code = commands.up_command(_expiring_in(tmp_path, budget.UP - 60), runs)
    assert (code, any(m.startswith("up: up needs up to ") and "AWS_SESSION_EXPIRATION" in m
                      for m in _records(caplog, logging.ERROR)),
            runs.exists()) == (2, True, False)


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_start_with_credentials_that_outlive_their_own_budget(tmp_path, cloud, stacks, kube,
                                                                                monkeypatch, action):
    """FR23, Journey 3: temporary keys that outlast the command's own budget (budget.PAUSE for pause,
    budget.RESUME for resume) by a minute are accepted (fakes for Terraform Cloud, the stack and the
    pause/resume sequences)."""
    monkeypatch.setattr(pause, action, lambda *args, **kwargs: None)
    own = budget.PAUSE if action == "pause" else budget.RESUME
    command = commands.pause_command if action == "pause" else commands.resume_command
    assert command(_expiring_in(tmp_path, own + 60), tmp_path / "runs") == 0


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_refuse_credentials_that_expire_before_their_own_budget(tmp_path, no_cloud, action):
    """FR23, Journey 3: temporary keys that expire a minute before the command's own budget ends are
    refused with exit 2 (client that fails the test when opened)."""
    own = budget.PAUSE if action == "pause" else budget.RESUME
    command = commands.pause_command if action == "pause" else commands.resume_command
    assert command(_expiring_in(tmp_path, own - 60), tmp_path / "runs") == 2


def test_the_preamble_opens_terraform_cloud_with_the_envs_token_and_organization(tmp_path, cloud, unlock_report):
    """FR16: the Terraform Cloud the commands act on is the one .env names (recording client)."""
    commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    assert [c.opened_with for c in cloud] == [(TOKEN, "langfuse-test")]


def test_every_log_record_of_a_command_masks_the_env_secrets(tmp_path, cloud, monkeypatch, caplog):
    """NFR1: from the preamble on, a log record carrying a .env secret (here an error quoting the token,
    as a failed Terraform Cloud call may) shows *** in its place (recording client; unlock's sequence
    replaced by one that logs the token)."""
    def leak(client: Any, terraform_dir: Path) -> UnlockReport:
        logging.getLogger("lfharness.test").error("refused with token %s and key %s", TOKEN, SECRET_KEY)
        return UnlockReport()
    monkeypatch.setattr(commands, "unlock_workspaces", leak)
    commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    leaked = [m for m in _records(caplog, logging.ERROR) if "refused with token" in m]
    assert (len(leaked), TOKEN in leaked[0], SECRET_KEY in leaked[0], "***" in leaked[0]) == (1, False, False, True)


def test_the_masking_ends_with_the_command_even_when_it_fails(tmp_path, cloud, monkeypatch):
    """NFR1: the record masking a command installs is removed when it ends, also by an unexpected error,
    so one process running several commands (the e2e suite) does not stack maskers (recording client;
    unlock's sequence replaced by one that raises)."""
    before = logging.getLogRecordFactory()

    def fail(client: Any, terraform_dir: Path) -> UnlockReport:
        raise RuntimeError("unexpected")
    monkeypatch.setattr(commands, "unlock_workspaces", fail)
    with pytest.raises(RuntimeError):
        commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    assert logging.getLogRecordFactory() is before


# --- run folders ------------------------------------------------------------------------------------------

def test_a_run_folder_is_made_under_the_runs_dir_named_by_time_and_action_and_logged(tmp_path, caplog):
    """FR14: `.runs/<YYYYmmdd-HHMMSS>-<action>/` is made (with its parents) and named in the log, so the
    operator finds the Terraform logs of that run."""
    runs = tmp_path / "not" / "yet" / ".runs"
    with caplog.at_level(logging.INFO):
        folder = commands.run_folder(runs, "pause")
    match = FOLDER.fullmatch(folder.name)
    assert (folder.parent, folder.is_dir(), match and match["action"],
            f"pause: run folder {folder}" in _records(caplog, logging.INFO)) == (runs, True, "pause", True)


def test_two_runs_of_one_action_in_the_same_second_share_the_folder(tmp_path, monkeypatch):
    """FR14: a second command started within the same second (a script retrying at once) goes on in the
    same run folder instead of failing (time.strftime pinned to one second)."""
    monkeypatch.setattr(commands.time, "strftime", lambda fmt: "20261204-120000")
    first = commands.run_folder(tmp_path, "teardown")
    assert commands.run_folder(tmp_path, "teardown") == first


# --- teardown ------------------------------------------------------------------------------------------------

def test_teardown_destroys_with_a_stack_on_the_env_credentials_and_its_run_folder_then_exits_0(
        tmp_path, cloud, stacks, monkeypatch, caplog):
    """Journey 4, FR22: teardown hands teardown_workspaces the .env's Terraform Cloud and a Stack built
    on the .env settings, the run folder under --runs-dir, the redactor and a boto3 session on the
    .env keys and region (for the sweep); exit 0 and a closing line saying what it did (fakes for
    Terraform Cloud, the Stack and teardown_workspaces)."""
    seen = []

    def destroy(client: Any, stack: FakeStack) -> Any:
        seen.append((client, stack))
        return argparse.Namespace(describe=lambda: "destroyed 03-app, 02-deps, 01-network")
    monkeypatch.setattr(commands, "teardown_workspaces", destroy)
    runs = tmp_path / "runs"
    with caplog.at_level(logging.INFO):
        code = commands.teardown_command(_env(tmp_path), runs)
    (client, stack), = seen
    credentials = stack.aws.get_credentials()
    assert (code, client is cloud[0], stack.settings.tfc_organization, stack.run_dir.parent,
            FOLDER.fullmatch(stack.run_dir.name)["action"], stack.redactor.mask(TOKEN),
            credentials.access_key, stack.aws.region_name,
            "teardown: done; destroyed 03-app, 02-deps, 01-network" in _records(caplog, logging.INFO)) == (
        0, True, "langfuse-test", runs, "teardown", "***", ENV["AWS_ACCESS_KEY_ID"], "eu-west-1", True)


def test_teardown_that_could_not_destroy_a_workspace_exits_1_with_the_reason(tmp_path, cloud, stacks, monkeypatch,
                                                                              caplog):
    """Journey 4: a workspace left undestroyed is exit 1 with teardown_workspaces' reason as the error (fakes
    for Terraform Cloud, the Stack and teardown_workspaces)."""
    def fail(client: Any, stack: FakeStack) -> Any:
        raise TeardownError("02-deps: terraform destroy failed, see the log")
    monkeypatch.setattr(commands, "teardown_workspaces", fail)
    code = commands.teardown_command(_env(tmp_path), tmp_path / "runs")
    assert (code, "02-deps: terraform destroy failed, see the log" in _records(caplog, logging.ERROR)) == (1, True)


# --- unlock --------------------------------------------------------------------------------------------------

@pytest.fixture
def unlock_report(monkeypatch) -> dict[str, Any]:
    """unlock_workspaces replaced: returns seen["report"], records the client and folder it got."""
    seen: dict[str, Any] = {"report": UnlockReport()}

    def unlock(client: Any, terraform_dir: Path) -> UnlockReport:
        seen["args"] = (client, terraform_dir)
        return seen["report"]
    monkeypatch.setattr(commands, "unlock_workspaces", unlock)
    return seen


def test_unlock_acts_on_the_envs_terraform_cloud_and_the_given_workspaces_folder(tmp_path, cloud, unlock_report):
    """Issue 24 item 2: without a client of its own, unlock releases the locks of the Terraform Cloud
    .env names, for the workspaces under the folder it is given (recording client)."""
    commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    assert unlock_report["args"] == (cloud[0], tmp_path / "terraform")


def test_unlock_says_what_it_released_and_what_was_free_or_absent_then_exits_0(tmp_path, cloud, unlock_report, caplog):
    """Issue 24 item 2: exit 0 when nothing is locked any more, with one line naming the released, the
    not locked and the absent workspaces ("none" for an empty list) (recording client, report given)."""
    unlock_report["report"] = UnlockReport(released=["langfuse-app", "langfuse-deps"], free=[], absent=["langfuse-network"])
    with caplog.at_level(logging.INFO):
        code = commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    assert (code, "unlock: done, nothing destroyed; released: langfuse-app, langfuse-deps; not locked: none; "
                  "not in Terraform Cloud: langfuse-network" in _records(caplog, logging.INFO)) == (0, True)


def test_unlock_refused_by_terraform_cloud_exits_1_naming_the_workspace_and_the_way_out(tmp_path, cloud,
                                                                                       unlock_report, caplog):
    """Issue 24 item 2: a workspace Terraform Cloud would not unlock is exit 1 naming it and where to
    unlock it by hand (recording client, report given)."""
    unlock_report["report"] = UnlockReport(released=["langfuse-app"], refused={"langfuse-deps": "403",
                                                                               "langfuse-network": "403"})
    code = commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    errors = _records(caplog, logging.ERROR)
    assert (code, [m.startswith("unlock: Terraform Cloud refused langfuse-deps, langfuse-network; ")
                   and "Settings -> Locking" in m for m in errors]) == (1, [True])


def test_unlock_while_a_terraform_runs_exits_1_naming_its_pid_and_workspace(tmp_path, cloud, unlock_report, caplog):
    """Issue 24 item 2: a Terraform of this machine still running on a workspace is exit 1 naming its pid,
    what it is and the workspace (recording client, report given)."""
    running = {"02-deps": argparse.Namespace(pid=4242, what="terraform apply in 02-deps"),
               "03-app": argparse.Namespace(pid=4343, what="terraform destroy in 03-app")}
    unlock_report["report"] = UnlockReport(running=running, refused={"langfuse-app": "403"})
    code = commands.unlock_command(_env(tmp_path), tmp_path / "terraform")
    assert (code, _records(caplog, logging.ERROR)) == (
        1, ["unlock: refused: pid 4242 (terraform apply in 02-deps) runs on 02-deps; "
            "pid 4343 (terraform destroy in 03-app) runs on 03-app"])


# --- the cluster as pause, resume, up and connect reach it -------------------------------------------------

def _settings(tmp_path: Path) -> envfile.Settings:
    return envfile.load(_env(tmp_path))


def test_the_cluster_is_reached_through_a_kubeconfig_from_01_networks_outputs_and_the_env_keys_only(
        tmp_path, kube, monkeypatch):
    """Decision 2: kubectl and its EKS token plugin get a kubeconfig written into the command's folder from
    01-network's endpoint, CA and cluster name and .env's region, and an environment with .env's keys and
    none of the shell's AWS settings (write_exec_kubeconfig and Kube recorded)."""
    monkeypatch.setenv("AWS_PROFILE", "the-shells-profile")
    redactor = redact.Redactor()
    made = commands.ClusterAccess(_settings(tmp_path), tmp_path / "run", redactor).kube(NETWORK)
    assert (kube["kubeconfigs"], made.kubeconfig, made.env.get("AWS_ACCESS_KEY_ID"), "AWS_PROFILE" in made.env,
            made.redactor is redactor) == (
        [(tmp_path / "run" / "kubeconfig", "https://eks.example", "Q0E=", "langfuse", "eu-west-1")],
        tmp_path / "run" / "kubeconfig", ENV["AWS_ACCESS_KEY_ID"], False, True)


def test_the_health_check_asks_langfuse_web_through_a_port_forward(tmp_path, kube):
    """Journey 3, FR19: the resumed check is Langfuse's health on the local end of a port-forward to
    svc/langfuse-web:3000 in the langfuse namespace; its HTTP status is the answer (Kube and
    langfuse_api.health recorded)."""
    code = commands.port_forward_health(_settings(tmp_path), tmp_path)(NETWORK)
    assert (code, kube["kubes"][0].forwards, kube["health"]) == (
        200, [("langfuse", "langfuse-web", 3000)], ["http://127.0.0.1:43210"])


def test_the_zone_check_reads_the_clusters_nodes_for_clickhouses_volume_zone(tmp_path, kube, monkeypatch):
    """Decision 24: before 03-app, a Ready node in the zone of ClickHouse's volume is looked for among the
    nodes of the cluster 01-network names (placement_problem recorded)."""
    asked = []

    def placement(nodes: Any, zone: str | None) -> str | None:
        asked.append((nodes.__self__.kubeconfig, zone))
        return "no Ready node in us-east-1c"
    monkeypatch.setattr(clickhouse, "placement_problem", placement)
    problem = commands.ClusterAccess(_settings(tmp_path), tmp_path).zone_check(NETWORK, "us-east-1c")
    assert (problem, asked) == ("no Ready node in us-east-1c", [(tmp_path / "kubeconfig", "us-east-1c")])


def test_the_quiesce_stops_langfuse_on_the_cluster_and_registers_the_redis_password(tmp_path, kube, monkeypatch):
    """Decision 24, NFR1: pause's quiesce runs clickhouse.Quiesce on the cluster 01-network's outputs name,
    its Redis reached through a port-forward in the langfuse namespace whose password is registered with
    the command's redactor before use (Quiesce and redis_through_port_forward recorded)."""
    ran = []

    class Quiesce:
        def __init__(self, kube: FakeKube, redis: Any) -> None:
            self.kube, self.redis = kube, redis

        def __call__(self) -> None:
            ran.append((self.kube.kubeconfig, self.redis()))

    def redis(kube: FakeKube, namespace: str, learn: Any) -> tuple[Path, str, str]:
        return kube.kubeconfig, namespace, learn("redis-password-" + "r" * 16)
    monkeypatch.setattr(clickhouse, "Quiesce", Quiesce)
    monkeypatch.setattr(clickhouse, "redis_through_port_forward", redis)
    redactor = redact.Redactor()
    commands.ClusterAccess(_settings(tmp_path), tmp_path, redactor).quiesce(FakeStack(_settings(tmp_path), tmp_path))()
    assert (ran, kube["kubeconfigs"][0][1], redactor.mask("redis-password-" + "r" * 16)) == (
        [(tmp_path / "kubeconfig", (tmp_path / "kubeconfig", "langfuse", "redis-password-" + "r" * 16))],
        "https://eks.example", "***")


def test_the_quiesce_works_without_a_redactor(tmp_path, kube, monkeypatch):
    """Decision 24: a ClusterAccess made without a redactor (the e2e suite's helpers may) still reaches
    Redis with the Secret's password as it is (Quiesce and redis_through_port_forward recorded)."""
    passwords = []
    monkeypatch.setattr(clickhouse, "Quiesce", lambda kube, redis: redis)
    monkeypatch.setattr(clickhouse, "redis_through_port_forward",
                        lambda kube, namespace, learn: passwords.append(learn("redis-password-" + "r" * 16)))
    commands.ClusterAccess(_settings(tmp_path), tmp_path).quiesce(FakeStack(_settings(tmp_path), tmp_path))()
    assert passwords == ["redis-password-" + "r" * 16]


# --- pause and resume ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_refuse_when_terraform_cloud_lacks_a_workspace(tmp_path, cloud, caplog, action):
    """Journey 3: with workspaces missing in Terraform Cloud there is nothing deployed: exit 1 naming them,
    before any workspace is created or changed (`terraform init` would create it in remote mode) and
    with no run folder (recording client without langfuse-deps and langfuse-app)."""
    runs = tmp_path / "runs"
    original = FakeTfc.__init__

    def without_app(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.existing -= {"langfuse-deps", "langfuse-app"}
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(FakeTfc, "__init__", without_app)
        code = commands.pause_command(_env(tmp_path), runs) if action == "pause" else \
            commands.resume_command(_env(tmp_path), runs)
    assert (code, _records(caplog, logging.ERROR), [c for c in cloud[0].calls if c[0] != "get"], runs.exists()) == (
        1, [f"{action}: Terraform Cloud has no workspace langfuse-deps, langfuse-app: nothing deployed to {action}"], [],
        False)


def test_pause_puts_every_workspace_into_local_mode_then_pauses_after_quiescing_the_cluster(
        tmp_path, cloud, stacks, kube, monkeypatch):
    """Journey 3, decision 3: pause puts the three workspaces into local execution mode (a remote run would
    lack the .env keys), makes its run folder, and runs pause.pause with a Stack on that folder and the
    .env session, and a quiesce acting on the cluster 01-network names; exit 0 (fakes for Terraform
    Cloud, the Stack, pause.pause, Quiesce and the cluster access)."""
    seen = []
    monkeypatch.setattr(clickhouse, "Quiesce", lambda kube, redis: lambda: seen.append(("quiesce", kube.kubeconfig)))

    def fake_pause(stack: FakeStack, session: Any, quiesce: Any) -> None:
        seen.append(("pause", stack.run_dir, session.get_credentials().access_key))
        quiesce()
    monkeypatch.setattr(pause, "pause", fake_pause)
    runs = tmp_path / "runs"
    code = commands.pause_command(_env(tmp_path), runs)
    run_dir, = runs.iterdir()
    assert (code, [c for c in cloud[0].calls if c[0] == "ensure"], FOLDER.fullmatch(run_dir.name)["action"],
            seen[0], seen[1][0], stacks[0].redactor.mask(TOKEN)) == (
        0, [("ensure", name) for name in NAMES], "pause", ("pause", run_dir, ENV["AWS_ACCESS_KEY_ID"]), "quiesce", "***")


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_mask_the_env_secrets_in_the_stack_and_kubectl_they_run(tmp_path, cloud, stacks, kube,
                                                                                 monkeypatch, action):
    """NFR1, Journey 3: the Stack pause and resume act with holds the .env settings, the session they
    pass on and the command's redactor, and so does the kubectl of their cluster checks (fakes; the
    sequence replaced by one that runs the health check)."""
    seen = []

    def sequence(stack: FakeStack, session: Any, check: Any, **kwargs: Any) -> None:
        seen.append((stack, session))
        if action == "resume":
            check(NETWORK)  # the health check
        else:
            check()  # the quiesce
    monkeypatch.setattr(clickhouse, "Quiesce", lambda kube, redis: lambda: None)
    monkeypatch.setattr(pause, action, sequence)
    command = commands.pause_command if action == "pause" else commands.resume_command
    command(_env(tmp_path), tmp_path / "runs")
    (stack, session), = seen
    assert (stack.settings.tfc_organization, stack.aws is session, stack.redactor.mask(TOKEN),
            [k.redactor.mask(TOKEN) for k in kube["kubes"]]) == ("langfuse-test", True, "***", ["***"])


def test_resume_ends_with_the_health_check_and_the_zone_check_on_the_cluster(tmp_path, cloud, stacks, kube,
                                                                            monkeypatch):
    """Journey 3, decision 24: resume runs pause.resume with a Stack on its run folder, the .env session, the
    port-forward health check and the zone check; exit 0 (fakes for Terraform Cloud, the Stack,
    pause.resume and the cluster access)."""
    seen = []

    def fake_resume(stack: FakeStack, session: Any, health: Any, *, zone_check: Any) -> None:
        seen.append((stack.run_dir.name, session.region_name, health(NETWORK)))
        monkeypatch.setattr(clickhouse, "placement_problem", lambda nodes, zone: f"none in {zone}")
        seen.append(zone_check(NETWORK, "us-east-1b"))
    monkeypatch.setattr(pause, "resume", fake_resume)
    code = commands.resume_command(_env(tmp_path), tmp_path / "runs")
    assert (code, FOLDER.fullmatch(seen[0][0])["action"], seen[0][1:], seen[1], kube["health"]) == (
        0, "resume", ("eu-west-1", 200), "none in us-east-1b", ["http://127.0.0.1:43210"])


@pytest.mark.parametrize("error", [pause.PauseError("a node instance is left"),
                                   clickhouse.QuiesceError("ClickHouse did not stop"),
                                   KubectlError("kubectl: connection refused"),
                                   tf.TerraformError("terraform apply failed: see the log")])
@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_or_resume_that_fails_exits_1_with_the_reason(tmp_path, cloud, stacks, kube, monkeypatch, caplog,
                                                            action, error):
    """Journey 3: a refused or failed pause/resume (the stack's state, the quiesce, kubectl, Terraform) is
    exit 1 with the reason as the error line (the sequence replaced by one that raises)."""
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error
    monkeypatch.setattr(pause, action, fail)
    command = commands.pause_command if action == "pause" else commands.resume_command
    code = command(_env(tmp_path), tmp_path / "runs")
    assert (code, _records(caplog, logging.ERROR)) == (1, [f"{action}: {error}"])


# --- up -----------------------------------------------------------------------------------------------------

@pytest.fixture
def up_calls(monkeypatch) -> dict[str, Any]:
    """deploy.up replaced: records its arguments, calls the health and zone checks, returns seen["action"]."""
    seen: dict[str, Any] = {"action": "deployed"}

    def up(stack: FakeStack, session: Any, health: Any, *, zone_check: Any) -> deploy.Outcome:
        monkeypatch.setattr(clickhouse, "placement_problem", lambda nodes, zone: None)
        seen["args"] = (stack, session, health(NETWORK), zone_check(NETWORK, "us-east-1a"))
        return deploy.Outcome(seen["action"], None)
    monkeypatch.setattr(deploy, "up", up)
    return seen


def test_up_shares_the_states_before_deploying_with_a_stack_on_its_run_folder(tmp_path, cloud, stacks, kube,
                                                                              up_calls):
    """Issue 27, FR16, FR17: up first makes the workspaces exist in local mode with their state sharing
    (workspaces.state_readers), then runs deploy.up with a Stack on its run folder, the .env session and
    the health and zone checks, writing the kubeconfig into the run folder; exit 0 (fakes)."""
    runs = tmp_path / "runs"
    code = commands.up_command(_env(tmp_path), runs)
    stack, session, health, zone = up_calls["args"]
    assert (code, cloud[0].calls, stack.run_dir.parent, FOLDER.fullmatch(stack.run_dir.name)["action"],
            session.get_credentials().access_key, health, zone, kube["kubeconfigs"][0][0]) == (
        0, [("ensure_all", workspaces.state_readers())], runs, "up", ENV["AWS_ACCESS_KEY_ID"], 200, None,
        stack.run_dir / "kubeconfig")


def test_up_masks_the_env_secrets_in_the_stack_and_kubectl_it_runs(tmp_path, cloud, stacks, kube, up_calls):
    """NFR1, issue 27: the Stack up deploys with holds the .env settings, its session and the command's
    redactor, and so does the kubectl the checks run, so their logs show no secret (fakes)."""
    commands.up_command(_env(tmp_path), tmp_path / "runs")
    stack, session, _, _ = up_calls["args"]
    assert (stack.settings.tfc_organization, stack.aws is session, stack.redactor.mask(TOKEN),
            [k.redactor.mask(TOKEN) for k in kube["kubes"]]) == ("langfuse-test", True, "***", ["***", "***"])


@pytest.mark.parametrize(("action", "said"), [("unchanged", "the stack was already running: nothing changed"),
                                              ("resumed", "resumed"), ("deployed", "deployed")])
def test_up_says_what_it_did_and_prints_the_next_steps(tmp_path, cloud, stacks, kube, up_calls, caplog, capsys,
                                                      action, said):
    """Issue 27, Journey 1: up's closing line says whether it deployed, resumed or changed nothing, and it
    prints the next steps with 03-app's project (fakes; deploy.next_steps as it is)."""
    up_calls["action"] = action
    with caplog.at_level(logging.INFO):
        commands.up_command(_env(tmp_path), tmp_path / "runs")
    assert (f"up: {said}" in _records(caplog, logging.INFO), capsys.readouterr().out) == (
        True, deploy.next_steps({"project_id": "p-42"}) + "\n")


@pytest.mark.parametrize("error", [deploy.DeployError("03-app is not applied"), pause.PauseError("half-paused"),
                                   KubectlError("kubectl: refused"), tf.TerraformError("apply failed")])
def test_up_that_fails_exits_1_with_the_reason_and_no_next_steps(tmp_path, cloud, stacks, kube, monkeypatch, caplog,
                                                                 capsys, error):
    """Issue 27: a refused or failed deploy is exit 1 with the reason as the error line, and no next steps
    are printed (deploy.up replaced by one that raises)."""
    def fail(*args: Any, **kwargs: Any) -> None:
        raise error
    monkeypatch.setattr(deploy, "up", fail)
    code = commands.up_command(_env(tmp_path), tmp_path / "runs")
    assert (code, _records(caplog, logging.ERROR), capsys.readouterr().out) == (1, [f"up: {error}"], "")


# --- connect ------------------------------------------------------------------------------------------------

def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture
def held(monkeypatch) -> dict[str, Any]:
    """connect.Holder replaced (records kube, namespace, forwards); the hold's sleep ends in Ctrl-C."""
    seen: dict[str, Any] = {}

    @contextlib.contextmanager
    def holder(kube: FakeKube, namespace: str, forwards: Any) -> Iterator[None]:
        seen["holder"] = (kube.kubeconfig, namespace, forwards)
        seen["kube"] = kube
        yield

    def sleep(seconds: float) -> None:
        assert seconds >= 1  # holding waits, it does not spin
        raise KeyboardInterrupt
    monkeypatch.setattr(connect, "Holder", holder)
    monkeypatch.setattr(commands.time, "sleep", sleep)
    return seen


def test_connect_holds_the_forwards_until_ctrl_c_and_exits_0(tmp_path, cloud, kube, held, capsys, caplog):
    """Issue 27, FR19-FR21: connect reads 01-network's outputs, writes the kubeconfig into its run folder
    (logged), holds the forwards with the local ports asked for in the langfuse namespace, prints where
    each is, and ends with exit 0 at Ctrl-C (fakes for Terraform Cloud, Kube and the Holder)."""
    ports = {"langfuse-web": _free_port(), "langfuse-clickhouse": _free_port(), "langfuse-redis-primary": _free_port()}
    runs = tmp_path / "runs"
    with caplog.at_level(logging.INFO):
        code = commands.connect_command(_env(tmp_path), runs, ports)
    kubeconfig, namespace, forwards = held["holder"]
    info = _records(caplog, logging.INFO)
    assert (code, kubeconfig.parent.parent, FOLDER.fullmatch(kubeconfig.parent.name)["action"], namespace,
            {f.service: f.local_port for f in forwards}, capsys.readouterr().out,
            any(m.startswith(f"connect: kubeconfig {kubeconfig} ") for m in info),
            "connect: Ctrl-C: ending the forwards" in info) == (
        0, runs, "connect", "langfuse", ports, connect.summary(forwards) + "\n", True, True)


def test_connect_shows_where_the_forwards_are_while_it_holds_them(tmp_path, cloud, kube, held, monkeypatch):
    """Issue 27: the line saying where each forward is reaches a piped stdout (`| tee`) while connect
    holds them, not only when it ends (stdout a block-buffered pipe stand-in, read during the hold)."""
    pipe = io.BytesIO()
    stdout = io.TextIOWrapper(pipe, encoding="utf-8", line_buffering=False, write_through=False)
    seen = []

    def sleep(seconds: float) -> None:
        seen.append(pipe.getvalue().decode())
        raise KeyboardInterrupt
    monkeypatch.setattr(sys, "stdout", stdout)
    monkeypatch.setattr(commands.time, "sleep", sleep)
    monkeypatch.setattr(connect, "check_free", lambda forwards: None)
    commands.connect_command(_env(tmp_path), tmp_path / "runs")
    assert seen == [connect.summary(connect.FORWARDS) + "\n"]


def test_connect_without_ports_forwards_the_default_local_ports(tmp_path, cloud, kube, held, monkeypatch):
    """FR19-FR21: with no --port, the UI and API, ClickHouse HTTP and Redis go to their own port numbers
    locally (check_free replaced: the machine's ports are not the test's)."""
    monkeypatch.setattr(connect, "check_free", lambda forwards: None)
    commands.connect_command(_env(tmp_path), tmp_path / "runs")
    assert held["holder"][2] == connect.FORWARDS


def test_connects_kubectl_masks_the_env_secrets(tmp_path, cloud, kube, held, monkeypatch):
    """NFR1: the kubectl connect holds the forwards with logs through the command's redactor (fakes)."""
    monkeypatch.setattr(connect, "check_free", lambda forwards: None)
    commands.connect_command(_env(tmp_path), tmp_path / "runs")
    assert held["kube"].redactor.mask(TOKEN) == "***"


def test_connect_with_an_unknown_service_exits_2_before_reading_env(tmp_path, no_cloud, caplog):
    """Issue 27: --port for a service there is no forward for is exit 2 naming it, before .env or
    Terraform Cloud (client that fails the test when opened)."""
    code = commands.connect_command(_env(tmp_path), tmp_path / "runs", {"langfuse-worker": 13030})
    assert (code, [m.startswith("connect: no forward for langfuse-worker") for m in _records(caplog, logging.ERROR)]) == (
        2, [True])


def test_connect_with_a_local_port_taken_exits_2_naming_it(tmp_path, no_cloud, caplog):
    """Issue 27: a local port something already listens on is exit 2 naming it, before Terraform Cloud or
    any kubectl (a listening socket on the port; client that fails the test when opened)."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        code = commands.connect_command(_env(tmp_path), tmp_path / "runs", {
            "langfuse-web": port, "langfuse-clickhouse": _free_port(), "langfuse-redis-primary": _free_port()})
    assert (code, [m.startswith(f"connect: local port {port} (Langfuse UI and API) already in use")
                   for m in _records(caplog, logging.ERROR)]) == (2, [True])


def test_connect_to_a_stack_without_a_cluster_exits_1_saying_up_first(tmp_path, cloud, monkeypatch, caplog):
    """Issue 27: a paused or absent stack (no cluster endpoint in 01-network's outputs) is exit 1 saying
    to run `up` first, and no run folder is made (recording client with an empty endpoint; check_free
    replaced)."""
    monkeypatch.setattr(connect, "check_free", lambda forwards: None)
    original = FakeTfc.__init__

    def paused(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.network = {"cluster_name": "", "cluster_endpoint": ""}
    monkeypatch.setattr(FakeTfc, "__init__", paused)
    runs = tmp_path / "runs"
    code = commands.connect_command(_env(tmp_path), runs)
    assert (code, [("outputs", "langfuse-network")] == cloud[0].calls,
            [m.startswith("connect: no cluster (the stack is paused or absent): ") and m.endswith(
                "`python -m lfharness up` first") for m in _records(caplog, logging.ERROR)], runs.exists()) == (
        1, True, [True], False)


# --- keys and status --------------------------------------------------------------------------------------

def test_keys_that_terraform_cloud_refuses_exit_1_masked_and_saying_to_deploy(tmp_path, cloud, monkeypatch, caplog):
    """Issue 27, NFR1: a Terraform Cloud error reading the keys is exit 1 with the error, any secret in it
    masked, and the hint to run `up` (recording client raising TfcError quoting the token)."""
    original = FakeTfc.__init__

    def refusing(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.error = TfcError("02-deps' outputs", f"401 for token {TOKEN}", "check TFE_TOKEN")
    monkeypatch.setattr(FakeTfc, "__init__", refusing)
    code = commands.keys_command(_env(tmp_path), None, show_secret=False)
    errors = _records(caplog, logging.ERROR)
    assert (code, len(errors), TOKEN in errors[0], "401 for token ***" in errors[0],
            errors[0].endswith("(not deployed yet? `python -m lfharness up`)")) == (1, 1, False, True, True)


def test_keys_before_02_deps_has_its_key_pair_exit_1_saying_to_deploy(tmp_path, cloud, caplog, capsys):
    """Issue 27: 02-deps without the project's public key (not deployed yet) is exit 1 with one error line
    naming the workspace and saying to run `up`, and nothing printed (recording client without outputs)."""
    code = commands.keys_command(_env(tmp_path), None, show_secret=False)
    assert (code, [m.startswith("keys: Terraform Cloud workspace langfuse-deps has no project_public_key output")
                   and "`python -m lfharness up`" in m for m in _records(caplog, logging.ERROR)],
            capsys.readouterr().out) == (1, [True], "")


def test_keys_with_out_and_show_secret_write_the_file_and_print_the_exports(tmp_path, cloud, monkeypatch, capsys,
                                                                            caplog):
    """Issue 27: --out together with --show-secret writes the file (saying where) and also prints the
    export lines with the secret (recording client serving 02-deps' key pair)."""
    original = FakeTfc.__init__

    def deployed(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.deps = {"project_public_key": "pk-lf-public", "project_secret_key": "sk-lf-" + "9" * 32}
    monkeypatch.setattr(FakeTfc, "__init__", deployed)
    out = tmp_path / "app.env"
    with caplog.at_level(logging.INFO):
        code = commands.keys_command(_env(tmp_path), out, show_secret=True)
    assert (code, out.is_file(), f"export LANGFUSE_SECRET_KEY=sk-lf-{'9' * 32}" in capsys.readouterr().out,
            any(m.startswith("keys: wrote LANGFUSE_HOST") and str(out) in m for m in _records(caplog, logging.INFO))) == (
        0, True, True, True)


def test_status_from_env_reads_terraform_cloud_and_the_node_placement_with_the_env_session(
        tmp_path, cloud, monkeypatch, capsys):
    """Issue 15, decision 24: status with a .env target reads the workspaces from .env's Terraform Cloud,
    checks the node placement with a session on .env's keys, and names the organization it read from
    (recording client with no workspace; with_placement recorded)."""
    sessions = []

    def placement(assessed: status.Status, session: Any) -> status.Status:
        sessions.append(session.get_credentials().access_key)
        return assessed
    monkeypatch.setattr(status, "with_placement", placement)
    original = FakeTfc.__init__

    def empty(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.existing = set()
    monkeypatch.setattr(FakeTfc, "__init__", empty)
    code = commands.status_command(_env(tmp_path), None)
    out = capsys.readouterr().out
    assert (code, sessions, out.splitlines()[1], [c[0] for c in cloud[0].calls]) == (
        0, [ENV["AWS_ACCESS_KEY_ID"]], "read from Terraform Cloud organization langfuse-test", ["get"] * 3)


def test_status_from_env_that_terraform_cloud_refuses_exits_1_with_the_envs_secrets_masked(tmp_path, cloud,
                                                                                           monkeypatch, caplog):
    """Issue 15, NFR1: status with a .env target whose Terraform Cloud refuses is exit 1, the error line
    showing *** for the .env's token (recording client raising TfcError quoting it)."""
    original = FakeTfc.__init__

    def refusing(self: FakeTfc, token: str, organization: str) -> None:
        original(self, token, organization)
        self.error = TfcError("workspace langfuse-network", f"401 for {TOKEN}", "check TFE_TOKEN")
    monkeypatch.setattr(FakeTfc, "__init__", refusing)
    code = commands.status_command(_env(tmp_path), None)
    assert (code, [m.startswith("status: Expected workspace langfuse-network, but found 401 for ***")
                   for m in _records(caplog, logging.ERROR)]) == (1, [True])


def test_status_that_cannot_read_terraform_cloud_exits_1_with_the_error_masked(tmp_path, caplog, capsys):
    """Issue 15, NFR1: a Terraform Cloud error is exit 1 with the error line, secrets masked, and no report
    (recording client raising TfcError quoting the token; the redactor knowing it)."""
    client = FakeTfc(TOKEN, "langfuse-test")
    client.error = TfcError("workspace langfuse-network", f"401 for {TOKEN}", "check TFE_TOKEN")
    code = commands.status_command(tmp_path / "absent.env", None, client, redact.Redactor([TOKEN]))
    errors = _records(caplog, logging.ERROR)
    assert (code, [e.startswith("status: Expected workspace langfuse-network, but found 401 for ***") for e in errors],
            capsys.readouterr().out) == (1, [True], "")


def test_status_of_local_states_names_the_folder_it_read(tmp_path, capsys):
    """Issue 15: `status --state-dir` reports from the local states and says which folder it read (empty
    folder: every workspace absent)."""
    code = commands.status_command(tmp_path / "absent.env", tmp_path)
    out = capsys.readouterr().out.splitlines()
    assert (code, out[0].startswith("stack: absent"), out[1]) == (0, True, f"read from the local states under {tmp_path}")


def _state_dir_with_a_secret(folder: Path, secret: str) -> Path:
    """02-deps' local state holding a sensitive output and ClickHouse's 8 GiB gp3 volume."""
    volume = {"mode": "managed", "type": "aws_ebs_volume", "name": "clickhouse", "provider": "provider[\"aws\"]",
              "instances": [{"attributes": {"id": "vol-1", "size": 8, "type": "gp3", "availability_zone": "us-east-1a"}}]}
    (folder / "02-deps").mkdir(parents=True)
    (folder / "02-deps" / "terraform.tfstate").write_text(json.dumps({
        "version": 4, "serial": 1, "lineage": "l-1", "resources": [volume],
        "outputs": {"rds_password": {"value": secret, "type": "string", "sensitive": True}}}))
    return folder


def test_status_of_local_states_registers_their_secrets_with_the_redactor_given(tmp_path, capsys):
    """NFR1, issue 15: the secrets of the local states status reads are registered with the redactor the
    caller passes, so its later log lines are masked (a local 02-deps state with a sensitive output)."""
    secret = "state-only-password-" + "p" * 12
    redactor = redact.Redactor()
    code = commands.status_command(tmp_path / "absent.env", _state_dir_with_a_secret(tmp_path / "s", secret),
                                   redactor=redactor)
    assert (code, redactor.mask(secret), secret in capsys.readouterr().out) == (0, "***", False)


def test_status_of_local_states_with_secrets_needs_no_redactor(tmp_path, capsys):
    """Issue 15, NFR6: `status --state-dir` (no redactor passed) reports states that hold secrets, none
    printed, with the monthly cost of what they hold (here the volume, at the committed gp3 rate)."""
    secret = "state-only-password-" + "p" * 12
    code = commands.status_command(tmp_path / "absent.env", _state_dir_with_a_secret(tmp_path / "s", secret))
    out = capsys.readouterr().out
    total = 8 * cost.load_rates()["rates"]["ebs_gp3"]["usd"]
    assert (code, out.startswith("stack: "), secret in out, f"{total:.2f}" in out.split("total")[-1]) == (
        0, True, False, True)


# --- cost ---------------------------------------------------------------------------------------------------

def test_cost_without_plans_or_a_planner_exits_2_saying_to_pass_plan_dir(caplog):
    """NFR6: with neither saved plans nor a planner there is nothing to price: exit 2 saying --plan-dir."""
    assert (commands.cost_command(["paused"], None),
            [m.startswith("cost: no plans: pass --plan-dir") for m in _records(caplog, logging.ERROR)]) == (2, [True])


def test_cost_plans_each_variant_asked_for_in_a_temporary_folder(capsys):
    """NFR6, NFR8: without --plan-dir the planner plans the variants asked for into a folder that is gone
    afterwards, and each variant gets its own table (planner returning empty plans)."""
    asked = []

    def planner(variants: list[str], folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
        asked.append((list(variants), folder, folder.is_dir()))
        empty = {"planned_values": {"root_module": {"resources": []}}}
        return {v: {ws: empty for ws in cost.VARIANTS[v]} for v in variants}
    code = commands.cost_command(["spot", "paused"], None, planner)
    out = capsys.readouterr().out
    (variants, folder, existed), = asked
    assert (code, variants, existed, folder.exists(), "Monthly cost, spot stack" in out,
            "Monthly cost, paused stack" in out, "Monthly cost, full stack" in out) == (
        0, ["spot", "paused"], True, False, True, True, False)


def test_cost_of_a_plan_it_cannot_price_exits_2_naming_what_is_missing(caplog, capsys):
    """NFR6: a plan holding something the rate table cannot price (a node group without instance types)
    is exit 2 naming it, and no rate table follows as if the cost were complete (planner returning
    that plan)."""
    group = 'module.eks.module.eks_managed_node_group["default"]'
    plan = {"planned_values": {"root_module": {"resources": [], "child_modules": [{"address": group, "resources": [
        {"address": f"{group}.aws_eks_node_group.this", "mode": "managed", "type": "aws_eks_node_group",
         "name": "this", "values": {"capacity_type": "ON_DEMAND", "scaling_config": [{"desired_size": 2}]}}]}]}}}

    def planner(variants: list[str], folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
        return {v: {ws: plan for ws in cost.VARIANTS[v]} for v in variants}
    code = commands.cost_command(["full"], None, planner)
    assert (code, ["no instance_types in the plan" in m for m in _records(caplog, logging.ERROR)],
            "Rates used" in capsys.readouterr().out) == (2, [True], False)


def test_cost_prices_with_and_prints_the_rate_table_it_is_given(tmp_path, capsys):
    """NFR6: the rates are read from the file passed, and the rate table printed is that one (the
    committed table with one rate's source changed; planner returning empty plans)."""
    rates = cost.load_rates()
    first = next(iter(rates["rates"]))
    rates["rates"][first]["source"] = "the operator's own price list"
    (tmp_path / "rates.json").write_text(json.dumps(rates))

    def planner(variants: list[str], folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
        empty = {"planned_values": {"root_module": {"resources": []}}}
        return {v: {ws: empty for ws in cost.VARIANTS[v]} for v in variants}
    code = commands.cost_command(["paused"], None, planner, rates_file=tmp_path / "rates.json")
    assert (code, "the operator's own price list" in capsys.readouterr().out) == (0, True)


# --- the parser --------------------------------------------------------------------------------------------

@pytest.fixture
def parsed(monkeypatch) -> list[tuple[str, tuple[Any, ...], dict[str, Any]]]:
    """Each command function replaced by one recording its arguments; returns the calls."""
    calls: list[tuple[str, tuple[Any, ...], dict[str, Any]]] = []
    for name in ("teardown", "unlock", "pause", "resume", "up", "connect", "keys", "status", "cost"):
        monkeypatch.setattr(commands, f"{name}_command",
                            lambda *args, _name=name, **kwargs: calls.append((_name, args, kwargs)) or 0)
    return calls


def _run(argv: list[str], planner: Any = None) -> int:
    args = commands.build_parser("test", planner=planner).parse_args(argv)
    return args.handler(args)


@pytest.mark.parametrize(("argv", "call"), [
    (["teardown", "--env-file", "e", "--runs-dir", "r"], ("teardown", (Path("e"), Path("r")))),
    (["unlock", "--env-file", "e"], ("unlock", (Path("e"),))),
    (["pause", "--env-file", "e", "--runs-dir", "r"], ("pause", (Path("e"), Path("r")))),
    (["resume", "--env-file", "e", "--runs-dir", "r"], ("resume", (Path("e"), Path("r")))),
    (["up", "--env-file", "e", "--runs-dir", "r"], ("up", (Path("e"), Path("r")))),
    (["connect", "--env-file", "e", "--runs-dir", "r", "--port", "langfuse-web=13000", "--port",
      "langfuse-redis-primary=16379"], ("connect", (Path("e"), Path("r"), {"langfuse-web": 13000,
                                                                          "langfuse-redis-primary": 16379}))),
    (["connect", "--env-file", "e", "--runs-dir", "r"], ("connect", (Path("e"), Path("r"), {}))),
    (["keys", "--env-file", "e"], ("keys", (Path("e"), None, False))),
    (["keys", "--env-file", "e", "--out", "o", "--show-secret"], ("keys", (Path("e"), Path("o"), True))),
    (["status", "--env-file", "e"], ("status", (Path("e"), None))),
    (["status", "--env-file", "e", "--state-dir", "s"], ("status", (Path("e"), Path("s")))),
])
def test_each_command_runs_with_the_options_given(parsed, argv, call):
    """Each subcommand runs its command with the options on the command line (commands recorded)."""
    assert (_run(argv), parsed) == (0, [(*call, {})])


def test_env_file_and_runs_dir_default_to_lfk8s_env_file_and_the_repositorys_runs(parsed, monkeypatch, tmp_path):
    """FR23, FR14: without options the commands read $LFK8S_ENV_FILE and write run folders under the
    repository's .runs/ (commands recorded)."""
    monkeypatch.setenv("LFK8S_ENV_FILE", str(tmp_path / "ci.env"))
    _run(["pause"])
    assert parsed == [("pause", (tmp_path / "ci.env", tf.REPO_ROOT / ".runs"), {})]


@pytest.mark.parametrize("command", ["unlock", "keys", "status"])
def test_the_read_only_commands_take_no_runs_dir(command):
    """unlock, keys and status write no Terraform logs: --runs-dir is not an option of theirs."""
    with pytest.raises(SystemExit) as end:
        commands.build_parser("test").parse_args([command, "--runs-dir", "r"])
    assert end.value.code == 2


def test_cost_prices_every_variant_by_default_with_the_planner_given(parsed):
    """NFR6: `cost` without --variant prices every variant, planning with the parser's planner."""
    def planner(variants: list[str], folder: Path) -> dict:
        return {}
    _run(["cost"], planner)
    assert parsed == [("cost", (list(cost.VARIANTS), None, planner), {})]


def test_cost_prices_only_the_variants_asked_for_from_the_plan_dir(parsed):
    """NFR6: repeated --variant prices those, read from --plan-dir."""
    _run(["cost", "--variant", "paused", "--variant", "spot", "--plan-dir", "p"])
    assert parsed == [("cost", (["paused", "spot"], Path("p"), None), {})]


def test_cost_refuses_an_unknown_variant(parsed, capsys):
    """NFR6: a variant the table does not know is a usage error (exit 2) listing the known ones."""
    with pytest.raises(SystemExit) as end:
        _run(["cost", "--variant", "cheap"])
    assert (end.value.code, "invalid choice: 'cheap'" in capsys.readouterr().err, parsed) == (2, True, [])


@pytest.mark.parametrize("port", ["langfuse-web=1", "langfuse-web=65535"])
def test_connect_accepts_any_port_from_1_to_65535(parsed, port):
    """Issue 27: --port takes SERVICE=PORT for every valid TCP port."""
    _run(["connect", "--port", port])
    assert parsed[0][1][2] == {"langfuse-web": int(port.partition("=")[2])}


@pytest.mark.parametrize("port", ["langfuse-web=0", "langfuse-web=65536", "langfuse-web=", "=13000", "langfuse-web=1=2",
                                  "langfuse-web=web", "langfuse-web"])
def test_connect_refuses_a_port_that_is_not_service_equals_port(parsed, capsys, port):
    """Issue 27: --port that is not SERVICE=PORT with a port from 1 to 65535 is a usage error (exit 2)
    quoting it and showing the form, before anything runs."""
    with pytest.raises(SystemExit) as end:
        _run(["connect", "--port", port])
    assert (end.value.code, f"{port!r} is not SERVICE=PORT (e.g. langfuse-web=13000)" in capsys.readouterr().err,
            parsed) == (2, True, [])


def test_a_command_is_required(capsys):
    """`python -m lfharness` without a command is a usage error (exit 2) listing the commands."""
    with pytest.raises(SystemExit) as end:
        commands.build_parser("test").parse_args([])
    assert (end.value.code, "python -m lfharness" in capsys.readouterr().err) == (2, True)


def test_the_commands_are_listed_with_their_help_and_the_extra_tools_after_them():
    """The top-level help shows the description it is given and lists the operator commands, each with its
    one-line help naming the workspaces in the order it acts on them, then what `extra` registers (the
    offline tools)."""
    def register(commands_: argparse._SubParsersAction) -> None:
        commands_.add_parser("plan", help="the offline plan")
    text = commands.build_parser("the harness", [register]).format_help()
    flat = " ".join(text.split())  # argparse wraps the help lines
    order = [name for name in ("teardown", "unlock", "pause", "resume", "up", "connect", "keys", "status", "cost",
                               "plan") if re.search(rf"^ +{name} +\S", text, re.M)]
    assert (order, " -> ".join(workspaces.REVERSE_ORDER) in flat, " -> ".join(workspaces.ORDER) in flat,
            text.startswith("usage: python -m lfharness"), "the harness" in flat) == (
        ["teardown", "unlock", "pause", "resume", "up", "connect", "keys", "status", "cost", "plan"], True, True, True,
        True)


def test_a_commands_own_help_describes_it(capsys):
    """`python -m lfharness <command> --help` shows the command's description (here teardown's) and exits 0."""
    with pytest.raises(SystemExit) as end:
        commands.build_parser("test").parse_args(["teardown", "--help"])
    out = " ".join(capsys.readouterr().out.split())
    assert (end.value.code, "destroy what the workspaces' states still hold" in out) == (0, True)


def _options_without_help(text: str) -> list[str]:
    """The options of a --help text shown without a line saying what they do."""
    entries: list[list[str]] = []
    for line in text.split("options:\n", 1)[1].splitlines():
        if re.match(r"^  -", line):
            entries.append([line])
        elif line.startswith("   ") and entries:
            entries[-1].append(line)
    return [e[0].strip() for e in entries if len(e) == 1 and not re.search(r"\S {2,}\S", e[0].strip())]


@pytest.mark.parametrize("command", ["teardown", "unlock", "pause", "resume", "up", "connect", "keys", "status", "cost"])
def test_every_option_of_a_command_says_what_it_does_in_its_help(capsys, command):
    """`python -m lfharness <command> --help` explains each of its options (the defaults of --env-file and
    --runs-dir, --port's form, --out, --show-secret, --state-dir, --variant, --plan-dir)."""
    with pytest.raises(SystemExit):
        commands.build_parser("test").parse_args([command, "--help"])
    assert _options_without_help(capsys.readouterr().out) == []


def test_connects_help_shows_the_form_of_a_port_option(capsys):
    """Issue 27: `connect --help` shows --port's form, SERVICE=PORT."""
    with pytest.raises(SystemExit):
        commands.build_parser("test").parse_args(["connect", "--help"])
    assert "--port SERVICE=PORT" in capsys.readouterr().out
