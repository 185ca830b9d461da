"""The operator commands of `python -m lfharness`: teardown, pause, resume, status and cost.

Every command that acts on the deployed stack starts with the same preamble (`operator_run`):
read `.env` (exit 2 naming every bad key, never a value), refuse or pass when it names no AWS /
Terraform Cloud target, check that temporary credentials outlive the command, mask every known
secret in every log record, open the Terraform Cloud client and the run folder under `.runs/`.
The domain modules under `lfharness/stack/` hold the sequences; this module only wires them to
`.env`, the run folder and the exit codes. Shared arguments are registered once (`_env_args`).

Operator code: this module imports nothing from `lfharness.testing` (tests/unit/test_layout.py).
The offline tools (`plan`, `charttree`, cost's offline planning) are joined to the parser by
`lfharness/__main__.py`, the one place where both meet.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfharness.core import envfile, redact, tf
from lfharness.core.tfc import TfcClient, TfcError
from lfharness.stack import appkeys, budget, clickhouse, connect, cost, deploy, pause, status, workspaces
from lfharness.stack.k8s import KubectlError
from lfharness.stack.stack import Stack, TeardownError, teardown_workspaces, unlock_workspaces

LOG = logging.getLogger("lfharness.commands")

Handler = Callable[[argparse.Namespace], int]
# Plans each cost variant's workspaces into a folder: variant -> workspace -> `terraform show -json`.
Planner = Callable[[list[str], Path], dict[str, dict[str, dict[str, Any]]]]


class CommandExit(Exception):
    """Ends a command with an exit code; the reason has already been logged."""

    def __init__(self, code: int) -> None:
        super().__init__(code)
        self.code = code


@dataclass(frozen=True)
class NoTarget:
    """What a command does when `.env` names no AWS / Terraform Cloud target: its exit code and why."""

    code: int
    why: str


@dataclass(frozen=True)
class OperatorRun:
    """What the preamble hands a command: the settings, the redactor every log record is masked
    with, the Terraform Cloud client and the run folder (None for commands that write no logs)."""

    settings: envfile.Settings
    redactor: redact.Redactor
    tfc: TfcClient
    run_dir: Path | None


def read_settings(action: str, env_file: Path, no_target: NoTarget, lifetime: float | None = None) -> envfile.Settings:
    """`.env` checked before anything is read or created: malformed -> exit 2 naming every bad key;
    no target -> `no_target`; temporary credentials that expire before `lifetime` seconds -> exit 2."""
    try:
        missing = envfile.missing_for_cloud(env_file)
    except envfile.EnvError as exc:
        LOG.error("%s", exc)
        raise CommandExit(2) from exc
    if missing:
        log = LOG.info if no_target.code == 0 else LOG.error
        log("%s: %s lacks %s; %s", action, env_file, ", ".join(missing), no_target.why)
        raise CommandExit(no_target.code)
    settings = envfile.load(env_file)
    if lifetime is not None:
        try:  # before anything is read or created: expiring mid-apply leaves a half-done stack and a held lock
            settings.require_lifetime(action, lifetime)
        except envfile.CredentialsExpireTooSoon as exc:
            LOG.error("%s: %s", action, exc)
            raise CommandExit(2) from exc
    return settings


def run_folder(runs_dir: Path, action: str) -> Path:
    """`.runs/<timestamp>-<action>/`, made and named in the log: where the command's Terraform logs go."""
    folder = runs_dir / f"{time.strftime('%Y%m%d-%H%M%S')}-{action}"
    folder.mkdir(parents=True, exist_ok=True)
    LOG.info("%s: run folder %s", action, folder)
    return folder


@contextlib.contextmanager
def operator_run(action: str, env_file: Path, runs_dir: Path | None, no_target: NoTarget,
                 lifetime: float | None = None) -> Iterator[OperatorRun]:
    """The preamble every stack command shares (see the module docstring). NFR1: from here on no
    log record shows a `.env` secret, nor any secret the stack learns later (outputs, states)."""
    settings = read_settings(action, env_file, no_target, lifetime)
    redactor = redact.Redactor(settings.secrets)
    undo = redact.install_record_masking(redactor)
    try:
        run_dir = run_folder(runs_dir, action) if runs_dir is not None else None
        yield OperatorRun(settings, redactor, TfcClient(settings.tfe_token, settings.tfc_organization), run_dir)
    finally:
        undo()


def _exit_code(body: Callable[[], int]) -> int:
    try:
        return body()
    except CommandExit as exc:
        return exc.code


# --- the commands -----------------------------------------------------------------------------

def teardown_command(env_file: Path, runs_dir: Path) -> int:
    """`python -m lfharness teardown`: the e2e suite's teardown as a command, reading .env like the suite.

    Exit 0 when everything is destroyed (or .env names no target), 1 when a workspace could not
    be destroyed, 2 when .env is malformed or its temporary credentials expire before a teardown
    could end (budget.TEARDOWN; checked before anything is read, so nothing is left half-destroyed
    with a held lock: run it again with fresh credentials).
    """
    def body() -> int:
        no_target = NoTarget(0, "so there is no AWS / Terraform Cloud target: nothing to tear down")
        with operator_run("teardown", env_file, runs_dir, no_target, budget.TEARDOWN) as run:
            assert run.run_dir is not None
            try:
                report = teardown_workspaces(run.tfc, Stack(run.settings, run.run_dir, redactor=run.redactor,
                                                            aws=run.settings.boto3_session()))
            except TeardownError as exc:
                LOG.error("%s", exc)
                return 1
            LOG.info("teardown: done; %s", report.describe())
            return 0

    return _exit_code(body)


def unlock_command(env_file: Path, terraform_dir: Path = tf.TERRAFORM_DIR, client: TfcClient | None = None) -> int:
    """`python -m lfharness unlock`: releases the Terraform Cloud locks of the stack's three workspaces
    without destroying anything (force-unlock, only those locked), e.g. after a cancelled or killed
    run, or a Helm install Terraform could not stop, where the operator wants to keep the stack.

    Refuses while a Terraform of this machine still runs on one of them (its pid record in
    `<workspace>/.terraform/lfharness-terraform.pid`, checked alive), naming its pid and workspace:
    releasing that lock would let two Terraforms write one state. `client`: another Terraform Cloud
    (tests); by default the one `.env` names.

    Exit 0 when none of the three is locked any more (released, not locked, or not in Terraform Cloud)
    or `.env` names no target (nothing to unlock); 1 when a Terraform of this machine still runs on one
    of them (nothing released) or Terraform Cloud refused a workspace (the others are still tried);
    2 when `.env` is malformed.
    """
    def body() -> int:
        no_target = NoTarget(0, "so there is no Terraform Cloud target: nothing to unlock")
        with operator_run("unlock", env_file, None, no_target) as run:
            report = unlock_workspaces(client if client is not None else run.tfc, terraform_dir)
            if report.running:
                LOG.error("unlock: refused: %s", "; ".join(f"pid {record.pid} ({record.what}) runs on {ws}"
                                                           for ws, record in report.running.items()))
                return 1
            if report.refused:
                LOG.error("unlock: Terraform Cloud refused %s; fix the cause (a token without the lock/unlock "
                          "permission: unlock it in Terraform Cloud, Settings -> Locking) and run unlock again",
                          ", ".join(report.refused))
                return 1
            LOG.info("unlock: done, nothing destroyed; released: %s; not locked: %s; not in Terraform Cloud: %s",
                     ", ".join(report.released) or "none", ", ".join(report.free) or "none",
                     ", ".join(report.absent) or "none")
            return 0

    return _exit_code(body)


@dataclass
class ClusterAccess:
    """The deployed cluster as pause, resume and the e2e suite reach it: a kubeconfig written from
    01-network's outputs (its exec plugin mints EKS tokens from the .env credentials only)."""

    settings: envfile.Settings
    folder: Path
    redactor: redact.Redactor | None = None

    def kube(self, network: Mapping[str, Any]) -> Any:
        from lfharness.stack import k8s  # noqa: PLC0415 (kubectl and the client: only the real run)

        kubeconfig = k8s.write_exec_kubeconfig(self.folder / "kubeconfig", network["cluster_endpoint"],
                                               network["cluster_ca_data"], network["cluster_name"],
                                               self.settings.aws_region)
        # kubectl and its token plugin get the .env credentials only (no shell AWS settings).
        return k8s.Kube(kubeconfig, env=self.settings.child_env(), redactor=self.redactor)

    def health(self, network: Mapping[str, Any]) -> int:
        """The resumed check: /api/public/health through `kubectl port-forward svc/langfuse-web`."""
        from lfharness.stack import langfuse_api  # noqa: PLC0415

        with self.kube(network).port_forward(workspaces.NAMESPACE, "langfuse-web", 3000) as port:
            return langfuse_api.health(f"http://127.0.0.1:{port}").status_code

    def zone_check(self, network: Mapping[str, Any], zone: str | None) -> str | None:
        """Decision 24: a Ready node in the zone of ClickHouse's volume, or the line saying there is none."""
        return clickhouse.placement_problem(self.kube(network).nodes, zone)

    def quiesce(self, stack: Stack) -> pause.Quiesce:
        """Decision 24: Langfuse finishes what it accepted and ClickHouse stops (clickhouse.Quiesce),
        on the cluster 01-network's outputs name when it runs."""
        def run() -> None:
            kube = self.kube(stack.outputs(workspaces.CLUSTER_WORKSPACE))
            learn = self.redactor.add_and_return if self.redactor is not None else str
            clickhouse.Quiesce(kube, lambda: clickhouse.redis_through_port_forward(kube, workspaces.NAMESPACE,
                                                                                    learn))()
        return run


def port_forward_health(settings: envfile.Settings, folder: Path) -> pause.HealthCheck:
    """The resumed check: /api/public/health through `kubectl port-forward svc/langfuse-web`."""
    return ClusterAccess(settings, folder).health


def _pause_or_resume(action: str, env_file: Path, runs_dir: Path) -> int:
    def body() -> int:
        no_target = NoTarget(2, "pause and resume act on the deployed stack in AWS and Terraform Cloud")
        lifetime = budget.PAUSE if action == "pause" else budget.RESUME
        with operator_run(action, env_file, None, no_target, lifetime) as run:
            names = list(workspaces.TFC_NAMES.values())
            absent = [name for name in names if run.tfc.get_workspace(name) is None]
            if absent:
                # `terraform init` would create them, in remote execution mode: refuse before that.
                LOG.error("%s: Terraform Cloud has no workspace %s: nothing deployed to %s", action,
                          ", ".join(absent), action)
                return 1
            for name in names:
                run.tfc.ensure_workspace(name)  # local execution mode, or the runs would lack the .env keys
            # Made only once the workspaces are known to exist: a refused command leaves no folder.
            run_dir = run_folder(runs_dir, action)
            session = run.settings.boto3_session()
            stack = Stack(run.settings, run_dir, redactor=run.redactor, aws=session)
            try:
                with tempfile.TemporaryDirectory(prefix=f"lfk8s-{action}-") as tmp:
                    cluster = ClusterAccess(run.settings, Path(tmp), run.redactor)
                    if action == "pause":
                        pause.pause(stack, session, cluster.quiesce(stack))
                    else:
                        pause.resume(stack, session, cluster.health, zone_check=cluster.zone_check)
            except (pause.PauseError, clickhouse.QuiesceError, KubectlError, tf.TerraformError) as exc:
                LOG.error("%s: %s", action, exc)
                return 1
            return 0

    return _exit_code(body)


def pause_command(env_file: Path, runs_dir: Path) -> int:
    """`python -m lfharness pause`: exit 0 paused, 1 refused or failed, 2 .env unusable (or its
    temporary credentials expire before a pause could end)."""
    return _pause_or_resume("pause", env_file, runs_dir)


def resume_command(env_file: Path, runs_dir: Path) -> int:
    """`python -m lfharness resume`: exit 0 resumed and healthy, 1 refused or failed, 2 .env unusable
    (or its temporary credentials expire before a resume could end)."""
    return _pause_or_resume("resume", env_file, runs_dir)


def up_command(env_file: Path, runs_dir: Path) -> int:
    """`python -m lfharness up`: from whatever state the stack is in to running, and kept (issue 27).
    Exit 0 running and healthy (also when nothing had to change), 1 refused or failed, 2 .env
    unusable (or temporary credentials that expire before a deploy could end)."""
    def body() -> int:
        no_target = NoTarget(2, "up deploys to AWS and Terraform Cloud: fill .env (see .env.example)")
        with operator_run("up", env_file, None, no_target, budget.UP) as run:
            # Local execution mode and state sharing first: `terraform init` would otherwise create
            # missing workspaces in remote mode, where the runs lack the .env keys.
            run.tfc.ensure_all(workspaces.state_readers())
            run_dir = run_folder(runs_dir, "up")
            session = run.settings.boto3_session()
            stack = Stack(run.settings, run_dir, redactor=run.redactor, aws=session)
            try:
                cluster = ClusterAccess(run.settings, run_dir, run.redactor)
                outcome = deploy.up(stack, session, cluster.health, zone_check=cluster.zone_check)
            except (deploy.DeployError, pause.PauseError, KubectlError, tf.TerraformError) as exc:
                LOG.error("up: %s", exc)
                return 1
            LOG.info("up: %s", {"unchanged": "the stack was already running: nothing changed",
                                "resumed": "resumed", "deployed": "deployed"}[outcome.action])
            print(deploy.next_steps(stack.outputs(workspaces.APP_WORKSPACE)))
            return 0

    return _exit_code(body)


def _cluster_outputs(client: TfcClient) -> dict[str, Any]:
    """01-network's cluster outputs as Terraform Cloud serves them (none of them is sensitive)."""
    outputs = client.outputs(workspaces.get(workspaces.CLUSTER_WORKSPACE).tfc_name)
    return {name: out.value for name, out in outputs.items()}


def connect_command(env_file: Path, runs_dir: Path, ports: dict[str, int] | None = None) -> int:
    """`python -m lfharness connect`: the three port-forwards held until Ctrl-C (issue 27). Exit 0
    after Ctrl-C, 1 when the stack has no cluster, 2 for .env or a local port already taken."""
    def body() -> int:
        no_target = NoTarget(2, "connect reaches the deployed cluster through AWS and Terraform Cloud")
        try:
            forwards = connect.with_ports(connect.FORWARDS, ports or {})
            connect.check_free(forwards)
        except (ValueError, connect.PortTaken) as exc:
            LOG.error("connect: %s", exc)
            return 2
        with operator_run("connect", env_file, None, no_target) as run:
            network = _cluster_outputs(run.tfc)
            if not network.get("cluster_endpoint"):
                LOG.error("connect: no cluster (the stack is paused or absent): `python -m lfharness up` first")
                return 1
            run_dir = run_folder(runs_dir, "connect")
            kube = ClusterAccess(run.settings, run_dir, run.redactor).kube(network)
            LOG.info("connect: kubeconfig %s (its exec plugin mints EKS tokens from .env's credentials)",
                     kube.kubeconfig)
            with connect.Holder(kube, workspaces.NAMESPACE, forwards):
                print(connect.summary(forwards), flush=True)
                try:
                    while True:
                        time.sleep(3600)
                except KeyboardInterrupt:
                    LOG.info("connect: Ctrl-C: ending the forwards")
            return 0

    return _exit_code(body)


def keys_command(env_file: Path, out: Path | None, show_secret: bool) -> int:
    """`python -m lfharness keys`: LANGFUSE_HOST and the project keys for an application (issue 27);
    the secret key only into --out (0600) or with --show-secret. Exit 0, 1 when there are no keys,
    2 for .env."""
    def body() -> int:
        no_target = NoTarget(2, "the keys are read from Terraform Cloud")
        with operator_run("keys", env_file, None, no_target) as run:
            try:
                keys = appkeys.read(run.tfc, reveal=show_secret or out is not None)
            except appkeys.KeysUnavailable as exc:
                LOG.error("keys: %s", exc)
                return 1
            except TfcError as exc:
                LOG.error("keys: %s (not deployed yet? `python -m lfharness up`)", run.redactor.mask(str(exc)))
                return 1
            if out is not None:
                appkeys.write_env_file(out, keys)
                LOG.info("keys: wrote LANGFUSE_HOST, LANGFUSE_PUBLIC_KEY and LANGFUSE_SECRET_KEY to %s (mode 0600)", out)
            if out is None or show_secret:
                print(appkeys.exports(keys, show_secret=show_secret))
            return 0

    return _exit_code(body)


def status_command(env_file: Path, state_dir: Path | None, client: TfcClient | None = None,
                   redactor: redact.Redactor | None = None) -> int:
    """`python -m lfharness status`: exit 0 with the report, 1 when Terraform Cloud cannot be read,
    2 when there is nothing to read (.env without a target and no --state-dir, or a malformed .env)."""
    rates = cost.load_rates()
    if state_dir is not None:
        views = status.from_state_dir(state_dir)
        status.learn_secrets(redactor if redactor is not None else redact.Redactor(), views)
        print(status.render(status.assess(views, rates), rates, f"the local states under {state_dir}"))
        return 0
    if client is not None:
        return _status_report(client, redactor if redactor is not None else redact.Redactor(), rates)

    def body() -> int:
        no_target = NoTarget(2, "so there is no Terraform Cloud to read; for the local states of an offline "
                                "run pass --state-dir")
        with operator_run("status", env_file, None, no_target) as run:
            return _status_report(run.tfc, run.redactor, rates, run.settings.boto3_session())

    return _exit_code(body)


def _status_report(client: TfcClient, redactor: redact.Redactor, rates: Mapping[str, Any],
                   session: Any | None = None) -> int:
    try:
        views = status.from_terraform_cloud(client)
    except TfcError as exc:
        LOG.error("status: %s", redactor.mask(str(exc)))
        return 1
    status.learn_secrets(redactor, views)
    assessed = status.assess(views, rates)
    if session is not None:
        assessed = status.with_placement(assessed, session)
    print(status.render(assessed, rates, f"Terraform Cloud organization {client.organization}"))
    return 0


def cost_command(variants: list[str], plan_dir: Path | None, planner: Planner | None = None,
                 rates_file: Path = cost.RATES_FILE) -> int:
    """`python -m lfharness cost`: the monthly table of each variant and the rates behind it.

    With --plan-dir, reads `<variant>/<workspace>.json` (`terraform show -json` output) from there;
    otherwise `planner` plans them (the offline planner `__main__` passes). Exit 0, or 2 when a plan
    cannot be made or priced.
    """
    rates = cost.load_rates(rates_file)
    try:
        if plan_dir is not None:
            plans = {v: {ws: json.loads((plan_dir / v / f"{ws}.json").read_text()) for ws in cost.VARIANTS[v]}
                     for v in variants}
        elif planner is None:
            raise cost.PlansUnavailable("no plans: pass --plan-dir with saved `terraform show -json` plans")
        else:
            with tempfile.TemporaryDirectory(prefix="lfk8s-cost-") as tmp:
                plans = planner(variants, Path(tmp))
        for variant in variants:
            print(cost.render(f"Monthly cost, {variant} stack", cost.estimate(plans[variant], rates), rates))
            print()
    except (cost.PlansUnavailable, cost.CostError, FileNotFoundError) as exc:
        LOG.error("cost: %s", exc)
        return 2
    print(cost.render_rates(rates))
    return 0


# --- the parser -------------------------------------------------------------------------------

def _env_args(parser: argparse.ArgumentParser, *, runs: bool = True) -> None:
    """The arguments every stack command shares."""
    parser.add_argument("--env-file", type=Path, default=envfile.default_path(),
                        help="the .env to read (default: $LFK8S_ENV_FILE or the repository's .env)")
    if runs:
        parser.add_argument("--runs-dir", type=Path, default=tf.REPO_ROOT / ".runs",
                            help="where the run folder with the terraform logs goes (default: .runs/)")


def _service_port(text: str) -> tuple[str, int]:
    service, _, port = text.partition("=")
    if not service or not port.isdigit() or not 0 < int(port) < 65536:
        raise argparse.ArgumentTypeError(f"{text!r} is not SERVICE=PORT (e.g. langfuse-web=13000)")
    return service, int(port)


def add_command(commands: argparse._SubParsersAction, name: str, help_text: str,
                handler: Handler) -> argparse.ArgumentParser:
    """One subcommand: its parser entry and the function it runs."""
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def add_operator_commands(commands: argparse._SubParsersAction, planner: Planner | None = None) -> None:
    """Registers teardown, pause, resume, status and cost; `planner` plans cost's variants when no
    --plan-dir is given."""
    order = " -> ".join(workspaces.REVERSE_ORDER)
    _env_args(add_command(commands, "teardown",
                          f"destroy what the workspaces' states still hold, {order}, reading .env like the e2e "
                          "suite (idempotent)", lambda a: teardown_command(a.env_file, a.runs_dir)))
    _env_args(add_command(commands, "unlock",
                          "release the Terraform Cloud locks of the three workspaces without destroying anything "
                          "(refused while a Terraform of this machine still runs on one)",
                          lambda a: unlock_command(a.env_file)), runs=False)
    _env_args(add_command(commands, "pause",
                          f"pause the stack to save money (Journey 3): {order} with cluster_enabled=false; EKS "
                          "and its nodes go, RDS, S3, ClickHouse's volume and the secrets stay; ends with a check",
                          lambda a: pause_command(a.env_file, a.runs_dir)))
    _env_args(add_command(commands, "resume",
                          f"resume a paused stack: {' -> '.join(workspaces.ORDER)} with cluster_enabled=true; "
                          "ends when Langfuse's health endpoint answers 200 through a port-forward",
                          lambda a: resume_command(a.env_file, a.runs_dir)))
    _env_args(add_command(commands, "up",
                          f"deploy and keep: from whatever state the stack is in (absent, paused, half-way) to running, "
                          f"{' -> '.join(workspaces.ORDER)}; ends with health 200 through a port-forward; changes nothing "
                          "on a running stack", lambda a: up_command(a.env_file, a.runs_dir)))
    reach = add_command(commands, "connect",
                        "hold the port-forwards to the UI and API (3000), ClickHouse HTTP (8123) and Redis (6379) "
                        "until Ctrl-C, re-established when a pod restarts",
                        lambda a: connect_command(a.env_file, a.runs_dir, dict(a.port or [])))
    _env_args(reach)
    reach.add_argument("--port", action="append", type=_service_port, metavar="SERVICE=PORT",
                       help="another local port for a service (langfuse-web, langfuse-clickhouse, "
                            "langfuse-redis-primary); repeatable")
    keys = add_command(commands, "keys",
                       "LANGFUSE_HOST and the project's public and secret keys for an application (the secret only "
                       "with --show-secret, or into --out FILE written 0600)",
                       lambda a: keys_command(a.env_file, a.out, a.show_secret))
    _env_args(keys, runs=False)
    keys.add_argument("--out", type=Path, help="write the three as a .env-style file (mode 0600)")
    keys.add_argument("--show-secret", action="store_true", help="print the secret key too")
    shown = add_command(commands, "status",
                        "whether the stack is absent, running, paused or partial, what each workspace's state "
                        "holds, and the monthly cost of that (read only; Terraform Cloud from .env, or --state-dir)",
                        lambda a: status_command(a.env_file, a.state_dir))
    _env_args(shown, runs=False)
    shown.add_argument("--state-dir", type=Path,
                       help="read <dir>/<workspace>/terraform.tfstate (local backends of an offline run) instead")
    priced = add_command(commands, "cost",
                         "monthly cost of the full, Spot and paused stacks read from their plans (offline, as "
                         "the plan tier plans), line by line, with the rate table used (NFR6, NFR8)",
                         lambda a: cost_command(a.variant or list(cost.VARIANTS), a.plan_dir, planner))
    priced.add_argument("--variant", action="append", choices=list(cost.VARIANTS),
                        help="price only this variant (repeatable; default: all)")
    priced.add_argument("--plan-dir", type=Path, help="read <variant>/<workspace>.json (terraform show -json) "
                        "from here instead of planning")


def build_parser(description: str, extra: Sequence[Callable[[argparse._SubParsersAction], None]] = (),
                 planner: Planner | None = None) -> argparse.ArgumentParser:
    """The operator commands, then whatever `extra` registers (the offline tools)."""
    parser = argparse.ArgumentParser(prog="python -m lfharness", description=description)
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")
    add_operator_commands(commands, planner)
    for register in extra:
        register(commands)
    return parser
