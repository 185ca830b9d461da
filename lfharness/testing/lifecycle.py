"""The lifecycle rehearsal's rig: the harness's own Stack on the three real workspaces, offline.

The sequences under test (Stack.apply / destroy / rebuild / teardown, pause.pause, pause.resume,
stack.teardown_workspaces, and clickhouse.Quiesce before pause's and rebuild's 03-app) run
unchanged. Around them, each piece of the cloud is a stand-in:

* Terraform: the real binary; aws, helm, kubernetes and null from the provider stand-in (the
  session's long-lived servers, shared with the plan tier); modules from LFK8S_MODULE_MIRROR.
* The cloud backend: each workspace is a copy that keeps its own `cloud` block, aimed at the
  rig's local Terraform Cloud fake (TF_CLOUD_HOSTNAME = the fake's host:port, TF_CLOUD_ORGANIZATION,
  the token in a CLI config `credentials` block, the fake's CA through SSL_CERT_FILE), so Terraform
  itself keeps the state there: it takes and releases the workspace's lock through the API (a run
  on a locked workspace waits `-lock-timeout`, then fails with Terraform's own lock error), uploads
  every state it writes as a new state version, and reads state and outputs back from it. The
  workspaces are made by the harness's own client (local execution mode, state sharing), and the
  downstream tfe_outputs read the outputs Terraform uploaded; a state stores no null output, so a
  paused 01-network's cluster outputs are absent there, as in Terraform Cloud. The teardown's
  force-unlocks and `python -m lfharness unlock` are real API calls against the same locks.
  (`backend="local"` keeps the older wiring: a local backend per copy, whose state's outputs
  LocalStack pushes into the fake after every state write; no locks in Terraform Cloud.)
* AWS: moto, in an account of its own per stack (isolated from every other test sharing the moto
  server), made by AwsFollower to hold what the applied outputs say exists: the EKS cluster while
  01-network outputs an endpoint, RDS and the bucket while 02-deps outputs them, and the untagged
  control-plane log group EKS writes again after 01-network's destroy (terraform-aws-eks issue 2763).
  The pause's end check, the teardown's PVC wait and leftover sweep and the pre-apply log group
  check all ask it.
* Kubernetes: two small stand-ins, no other (no API server, no kubelet, no chart install).
  release_health stands in for Langfuse's health endpoint behind a port-forward; it answers 200
  while 03-app's state holds the release and 01-network outputs a cluster endpoint. KubeStandIn is
  what the quiesce scales: the release's web, worker and ClickHouse with one pod each while 03-app's
  state holds the release; an owner scaled to 0 has no pod at the next listing.
* Langfuse's Redis: Debian's redis-server (conftest's `local_redis`, opened by redis_opener), its
  BullMQ queues as the quiesce reads them; nothing plays the worker, so the queues are what a test
  puts there (empty: the quiesce goes straight on).

What this cannot see: Terraform Cloud itself beyond the fake (its permissions, rate limits, outages
unless a test tells the fake to refuse), and anything AWS, EKS or Helm do themselves (API errors,
eventual consistency, the time a cluster or RDS takes, whether the chart installs), since every
provider is the stand-in; nor whether Langfuse's worker really empties its queues and ClickHouse
stops cleanly (the kube tier's part).
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import secrets
import signal
import subprocess
import sys
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lfharness.core import envfile, procs, tf
from lfharness.core.tfc import TfcClient
from lfharness.core.wait import WaitTimeout, retry
from lfharness.stack import clickhouse, workspaces
from lfharness.stack.k8s import KubectlError
from lfharness.stack.stack import CLUSTER_LOG_GROUP, CLUSTER_NAME, ORDER, Stack
from lfharness.testing import plan, standin
from lfharness.testing.localsvc import ClientCache, LocalRedis, MotoServer
from lfharness.testing.tfc_fake import TfcFake

LOG = logging.getLogger("lfharness.testing.lifecycle")

REGION = "us-east-1"
STATE_FILE = "terraform.tfstate"
# How each workspace copy keeps its state: "cloud", its own `cloud` block against the rig's Terraform
# Cloud fake (locks and state versions through the API), or "local", a local backend whose outputs
# LocalStack pushes into the fake.
BACKENDS = ("cloud", "local")
BACKEND_OVERRIDE = "backend_override.tf"  # the local backend plan.Workbench.prepare gives each copy
_TAGS = dict([workspaces.PROJECT_TAG])


# --- AWS: moto in an account of its own --------------------------------------------------------

class AccountSession:
    """A boto3 session whose clients talk to moto as one account (moto keeps each account apart)."""

    def __init__(self, endpoint_url: str, region_name: str, credentials: Mapping[str, str]) -> None:
        self.endpoint_url = endpoint_url
        self.region_name = region_name
        self._session = envfile.boto3_session(aws_access_key_id=credentials["AccessKeyId"],
                                              aws_secret_access_key=credentials["SecretAccessKey"],
                                              aws_session_token=credentials["SessionToken"], region_name=region_name)
        self._clients = ClientCache(self._session, endpoint_url)

    def client(self, service_name: str, **kwargs: Any) -> Any:
        return self._clients.get(service_name, **kwargs)


def fresh_account(moto: MotoServer, region: str = REGION) -> AccountSession:
    """A session in a new moto account: moto maps the credentials of a role assumed in another
    account to that account, so tests sharing one moto server (and its global IAM) see nothing of
    each other."""
    account = f"{secrets.randbelow(9 * 10**11) + 10**11:012d}"
    credentials = moto.session(region).client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/lifecycle", RoleSessionName="lifecycle")["Credentials"]
    return AccountSession(moto.endpoint_url, region, credentials)


class AwsFollower:
    """Makes moto hold what a workspace's applied outputs say AWS holds (see the module docstring)."""

    def __init__(self, session: AccountSession) -> None:
        self.session = session
        self._seen: dict[str, dict[str, Any]] = {}

    def follow(self, workspace: str, outputs: Mapping[str, Any]) -> None:
        before, self._seen[workspace] = self._seen.get(workspace, {}), dict(outputs)
        if workspace == "01-network":
            self._cluster(outputs)
            if before.get("vpc_id") and not outputs.get("vpc_id"):
                # EKS writes its last lines while the cluster is deleted and re-creates the group.
                self.session.client("logs").create_log_group(logGroupName=CLUSTER_LOG_GROUP)
        elif workspace == "02-deps":
            self._rds(outputs.get("rds_endpoint"))
            self._bucket(outputs.get("s3_bucket_name"))

    def clear(self) -> None:
        """Deletes what this follower made: bucket names are global in moto as in AWS, so a later
        stack restoring the same state in another account needs them free."""
        self._cluster({})
        self._rds(None)
        self._bucket(None)

    def _cluster(self, outputs: Mapping[str, Any]) -> None:
        eks = self.session.client("eks")
        exists = CLUSTER_NAME in eks.list_clusters()["clusters"]
        if outputs.get("cluster_endpoint") and not exists:
            account = self.session.client("sts").get_caller_identity()["Account"]
            eks.create_cluster(name=CLUSTER_NAME, roleArn=f"arn:aws:iam::{account}:role/langfuse-cluster",
                               resourcesVpcConfig={"subnetIds": list(outputs.get("public_subnet_ids") or [])},
                               tags=_TAGS)
        elif not outputs.get("cluster_endpoint") and exists:
            eks.delete_cluster(name=CLUSTER_NAME)

    def _rds(self, endpoint: str | None) -> None:
        rds = self.session.client("rds")
        existing = {d["DBInstanceIdentifier"] for d in rds.describe_db_instances()["DBInstances"]}
        wanted = endpoint.split(":")[0].split(".")[0] if endpoint else None
        for identifier in existing - {wanted}:
            rds.delete_db_instance(DBInstanceIdentifier=identifier, SkipFinalSnapshot=True)
        if wanted and wanted not in existing:
            rds.create_db_instance(DBInstanceIdentifier=wanted, DBInstanceClass="db.t4g.micro", Engine="postgres",
                                   MasterUsername="langfuse", MasterUserPassword=secrets.token_hex(12),
                                   AllocatedStorage=20, Tags=[{"Key": k, "Value": v} for k, v in _TAGS.items()])

    def _bucket(self, name: str | None) -> None:
        s3 = self.session.client("s3")
        existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
        for bucket in existing - {name}:
            s3.delete_bucket(Bucket=bucket)
        if name and name not in existing:
            s3.create_bucket(Bucket=name)
            s3.put_bucket_tagging(Bucket=name, Tagging={"TagSet": [{"Key": k, "Value": v} for k, v in _TAGS.items()]})

    def holds(self) -> dict[str, list[str]]:
        """What moto holds of the stack: cluster, RDS instances, buckets, control-plane log group."""
        logs = self.session.client("logs").describe_log_groups(logGroupNamePrefix=CLUSTER_LOG_GROUP)["logGroups"]
        return {"eks": self.session.client("eks").list_clusters()["clusters"],
                "rds": [d["DBInstanceIdentifier"] for d in self.session.client("rds").describe_db_instances()["DBInstances"]],
                "s3": [b["Name"] for b in self.session.client("s3").list_buckets().get("Buckets", [])],
                "logs": [g["logGroupName"] for g in logs]}


# --- Kubernetes and Redis: what the quiesce acts on ----------------------------------------------

# The owners the quiesce scales, as chart 1.5.19 names them (one replica each as deployed).
RELEASE_OWNERS: dict[str, str] = {clickhouse.WEB: "deployment", clickhouse.WORKER: "deployment",
                                  clickhouse.CLICKHOUSE: "statefulset"}


class KubeStandIn:
    """The cluster as clickhouse.Quiesce sees it (kube.scale / pod_names / claim_names), the tier's
    only Kubernetes stand-in besides release_health: while 03-app's state holds the release, its web,
    worker and ClickHouse run one pod per replica; `scale` records every call and sets the replicas
    (an owner scaled to 0 has no pod at the next listing); a release installed again (pause then
    resume, rebuild) starts at one replica each, as the chart deploys it. The namespace's claims
    are those 03-app's state holds (the chart's own, such as Valkey's, are not modelled)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str, int]] = []  # (namespace, kind, name, replicas)
        self.replicas: dict[str, int] = {}  # owner -> replicas; empty while there is no release
        self.claims: list[str] = []

    def follow(self, released: bool, claims: list[str]) -> None:
        """03-app's state holds the release (or not) and these claims: pods come with a new
        release, go with it."""
        self.claims = list(claims)
        if not released:
            self.replicas = {}
        elif not self.replicas:
            self.replicas = dict.fromkeys(RELEASE_OWNERS, 1)

    def scale(self, namespace: str, kind: str, name: str, replicas: int) -> None:
        self.calls.append((namespace, kind, name, replicas))
        if namespace != workspaces.NAMESPACE or RELEASE_OWNERS.get(name) != kind or name not in self.replicas:
            # What k8s.Kube.scale raises for the API server's 404: scaling nothing is a bug, not a no-op.
            raise KubectlError(f"scale {kind} {name} in {namespace} to {replicas}: 404 Not Found")
        self.replicas[name] = replicas

    def pod_names(self, namespace: str) -> list[str]:
        if namespace != workspaces.NAMESPACE:
            return []
        # Named as the quiesce tells pods to owners: Deployment <name>-<hash>-<suffix>, StatefulSet <name>-<ordinal>.
        return [f"{name}-{i}" if RELEASE_OWNERS[name] == "statefulset" else f"{name}-5d9c7f8b-{i:05d}"
                for name, n in self.replicas.items() for i in range(n)]

    def claim_names(self, namespace: str) -> list[str]:
        return list(self.claims) if namespace == workspaces.NAMESPACE else []


def redis_opener(service: LocalRedis) -> Callable[[], Any]:
    """Opens a client on the local redis-server standing in for Langfuse's Redis (the quiesce's
    `redis`: a context manager that closes the client)."""
    import redis  # noqa: PLC0415 (optional: only the tiers with a local Redis need it)

    def open_client() -> Any:
        return redis.Redis(host=service.host, port=service.port, password=service.password, socket_timeout=10,
                           socket_connect_timeout=10)
    return open_client


# --- Terraform Cloud's half of the cloud backend -------------------------------------------------

QUIESCE = "quiesce"  # Step.command of the quiesce LocalStack.quiesce records


@dataclass(frozen=True)
class Step:
    """One terraform apply or destroy a sequence ran: workspace and the cluster_enabled it passed
    (None: not passed, the variable's default true); or command "quiesce": the quiesce before
    03-app goes (cluster_enabled None, it runs no Terraform)."""

    command: str
    workspace: str
    cluster_enabled: str | None

    def __str__(self) -> str:
        if self.command == QUIESCE:
            return f"{self.command} {self.workspace}"
        return f"{self.command} {self.workspace} cluster_enabled={self.cluster_enabled or 'default'}"


Snapshot = dict[str, bytes | None]  # workspace -> its terraform.tfstate (None: none yet)
# The snapshot's entry for the fake's workspace variables (02-deps writes its contract there, issue
# 26): JSON of {Terraform Cloud workspace name: its variables, ids included}.
VARIABLES = "variables"


def release_holder(holder: subprocess.Popen[bytes], fake: TfcFake, name: str) -> None:
    """Ends a LocalStack.hold_lock Terraform (SIGKILL to its process group: it has approved nothing)
    and releases the lock it took, so the next case starts unlocked."""
    if holder.poll() is None:
        os.killpg(holder.pid, signal.SIGKILL)
    holder.wait(timeout=30)
    if fake.exists(name):
        fake.unlock_workspace(name)


def _flag(args: tuple[str, ...]) -> str | None:
    return next((a.split("=", 2)[2] for a in args if a.startswith("-var=cluster_enabled=")), None)


class LocalStack(Stack):
    """Stack on the rig's copies, their state in the local Terraform Cloud fake: kept there by
    Terraform's own `cloud` block (`backend="cloud"`), or pushed there from a local backend after
    every state write (`backend="local"`: the outputs only). moto and the Kubernetes stand-in follow
    each written state; records every apply/destroy with its cluster_enabled, and every quiesce made
    by `quiesce`, in `steps`; plans again after every apply (`replans`: True where that plan had
    changes) and keeps a snapshot of the three states after every state write. `lock_timeout`
    (e.g. "-lock-timeout=5s") replaces the harness's own -lock-timeout in every command, so a test
    of a held lock fails in seconds, not the harness's 20 minutes."""

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path, extra_env: dict[str, str], *,
                 fake: TfcFake, follower: AwsFollower, replan: bool = True, backend: str = "local",
                 lock_timeout: str | None = None, **kwargs: Any) -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        super().__init__(settings, run_dir, terraform_dir, extra_env, aws=follower.session, **kwargs)
        self.fake = fake
        self.follower = follower
        self.backend = backend
        self.lock_timeout = lock_timeout
        self.kube = KubeStandIn()
        self.replan = replan
        self.steps: list[Step] = []
        self.replans: list[tuple[Step, bool]] = []
        self.snapshots: list[tuple[str, Snapshot]] = []
        # (command, workspace) -> raised instead of running it once, e.g. a failed destroy.
        self.faults: dict[tuple[str, str], BaseException] = {}

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        command = args[0]
        if self.lock_timeout is not None:
            args = tuple(self.lock_timeout if a.startswith("-lock-timeout=") else a for a in args)
        if command not in ("apply", "destroy"):
            return super()._cmd(workspace, *args, ok=ok)
        fault = self.faults.pop((command, workspace), None)
        if fault is not None:
            LOG.warning("lifecycle: %s %s fails here by design: %s", command, workspace, fault)
            raise fault
        step = Step(command, workspace, _flag(args))
        self.steps.append(step)
        result = super()._cmd(workspace, *args, ok=ok)
        if command == "apply" and self.replan:
            variables = [a for a in args if a.startswith("-var=")]
            again = super()._cmd(workspace, "plan", "-detailed-exitcode", "-input=false", "-no-color", *variables,
                                 ok=(0, 2))
            self.replans.append((step, again.returncode == 2))
        return result

    def state(self, workspace: str) -> dict[str, Any]:
        """The workspace's state document as it stands (empty before its first state): the fake's
        current state version (`backend="cloud"`) or the copy's state file."""
        if self.backend == "cloud":
            return self.fake.state(workspaces.get(workspace).tfc_name) or {}
        path = self.terraform_dir / workspace / STATE_FILE
        return json.loads(path.read_text()) if path.exists() else {}

    def state_outputs(self, workspace: str) -> dict[str, tuple[Any, bool]]:
        """The outputs of a workspace's state, as Terraform Cloud serves them: (value, sensitive)."""
        outputs = self.state(workspace).get("outputs", {})
        return {name: (o["value"], bool(o.get("sensitive"))) for name, o in outputs.items()}

    def publish(self, workspace: str) -> None:
        """After a state write: moto (and for 03-app the Kubernetes stand-in) follows the state; with
        a local backend, the fake is first given the state's outputs, the upload the cloud block
        would have done (with `backend="cloud"` Terraform has uploaded the state itself)."""
        entry, outputs = workspaces.get(workspace), self.state_outputs(workspace)
        if self.backend == "local":
            self.fake.set_outputs(entry.tfc_name, outputs)
        self.follower.follow(workspace, {k: v for k, (v, _) in outputs.items()})
        if entry.in_cluster:
            self.kube.follow(entry.cluster_side_output in outputs, self.claims(workspace))

    def claims(self, workspace: str) -> list[str]:
        """The names of the PersistentVolumeClaims a workspace's state holds."""
        state = self.state(workspace)
        return [i["attributes"]["metadata"][0]["name"] for r in state.get("resources", [])
                if r["mode"] == "managed" and r["type"] == "kubernetes_persistent_volume_claim_v1"
                for i in r.get("instances", [])]

    def quiesce(self, redis: Callable[[], Any], **options: Any) -> Callable[[], None]:
        """The quiesce pause.pause and Stack.rebuild take: the harness's clickhouse.Quiesce on the
        Kubernetes stand-in and `redis` (redis_opener), recorded in `steps` as ("quiesce", "03-app",
        None) before it runs, so a failed one shows too and its place among the applies is visible.
        `options`: Quiesce's timeouts; its poll interval is short here, the stand-ins answer at once."""
        run = clickhouse.Quiesce(self.kube, redis, namespace=workspaces.NAMESPACE, **{"interval": 0.2, **options})

        def recorded() -> None:
            self.steps.append(Step(QUIESCE, workspaces.APP_WORKSPACE, None))
            run()
        return recorded

    def _state_written(self, workspace: str) -> None:
        self.publish(workspace)
        self.snapshots.append((str(self.steps[-1]) if self.steps else f"state of {workspace}", self.snapshot()))

    def snapshot(self) -> Snapshot:
        variables = json.dumps({workspaces.get(ws).tfc_name: self.fake.variable_records(workspaces.get(ws).tfc_name)
                                for ws in ORDER}).encode()
        if self.backend == "cloud":
            held = {ws: self.fake.state(workspaces.get(ws).tfc_name) for ws in ORDER}
            return {ws: json.dumps(state).encode() if state is not None else None for ws, state in held.items()} \
                | {VARIABLES: variables}
        paths = {ws: self.terraform_dir / ws / STATE_FILE for ws in ORDER}
        return {ws: p.read_bytes() if p.exists() else None for ws, p in paths.items()} | {VARIABLES: variables}

    def restore(self, snapshot: Snapshot) -> None:
        """Puts the three states back as they were at a snapshot (the fake's current state versions,
        or the state files) and the workspaces' variables (02-deps' contract), and publishes them
        (moto follows)."""
        for name, records in json.loads(snapshot.get(VARIABLES) or b"{}").items():
            self.fake.set_variable_records(name, records)
        for workspace in ORDER:
            saved = snapshot.get(workspace)
            if self.backend == "cloud":
                name = workspaces.get(workspace).tfc_name
                if saved is not None:
                    self.fake.set_state(name, json.loads(saved))
                else:
                    self.fake.clear_state(name)
            else:
                path = self.terraform_dir / workspace / STATE_FILE
                for stale in path.parent.glob(STATE_FILE + "*"):
                    stale.unlink()
                if saved is not None:
                    path.write_bytes(saved)
            self.publish(workspace)

    def resources(self) -> dict[str, list[str]]:
        """Managed resource addresses of each workspace's state."""
        held: dict[str, list[str]] = {}
        for workspace in ORDER:
            state = self.state(workspace)
            held[workspace] = sorted(
                f"{r.get('module', '') + '.' if r.get('module') else ''}{r['type']}.{r['name']}"
                for r in state.get("resources", []) if r["mode"] == "managed" and r.get("instances"))
        return held

    def hold_lock(self, workspace: str, timeout: float = 120) -> subprocess.Popen[bytes]:
        """A real Terraform holding the workspace's lock in Terraform Cloud (backend "cloud"): `terraform
        apply -destroy` without -auto-approve (with the cluster_enabled the workspace is in) takes the
        lock, plans and waits at its approval prompt (its stdin a pipe nobody writes to) until it is
        stopped; the workspace must hold something, or there is nothing to approve. Returned once
        the fake shows the workspace locked, at most `timeout` seconds; its output goes nowhere (a
        plan prints old values). The caller ends it (leave_locked kills it; release_holder stops it
        and unlocks)."""
        if self.backend != "cloud":
            raise RuntimeError("hold_lock needs the cloud backend: a local backend has no lock in Terraform Cloud")
        name = workspaces.get(workspace).tfc_name
        holder = subprocess.Popen(
            [str(tf.terraform_bin()), "apply", "-destroy", "-input=true", "-no-color",
             *(f"-var={k}={v}" for k, v in sorted(self.as_it_stands(workspace).items()))],
            cwd=self.terraform_dir / workspace, env=envfile.child_env(self.env), stdin=subprocess.PIPE,
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        try:
            retry(lambda: self.fake.locked(name) or holder.poll() is not None, timeout=timeout, interval=0.2,
                  what=f"terraform apply in {workspace} to take {name}'s lock", validator=bool)
        except BaseException:
            release_holder(holder, self.fake, name)
            raise
        if holder.poll() is not None:
            raise RuntimeError(f"terraform apply in {workspace} exited {holder.returncode} before taking {name}'s lock")
        LOG.info("lifecycle: terraform apply (pid %d) holds %s's lock in Terraform Cloud", holder.pid, name)
        return holder

    def leave_locked(self, workspace: str, timeout: float = 120) -> None:
        """What a Terraform killed mid-run leaves in Terraform Cloud (a cancelled CI job, a SIGKILL past
        the grace): the workspace locked with nobody left to unlock it. A real `terraform apply` takes
        the lock (hold_lock) and its process group is killed with SIGKILL before it writes anything."""
        holder = self.hold_lock(workspace, timeout)
        os.killpg(holder.pid, signal.SIGKILL)
        holder.wait(timeout=30)
        LOG.info("lifecycle: killed terraform apply in %s: %s stays locked", workspace,
                 workspaces.get(workspace).tfc_name)

    def release_health(self) -> Callable[[Mapping[str, Any]], int]:
        """Kubernetes stand-in for resume's health check (see the module docstring)."""
        def health(network: Mapping[str, Any]) -> int:
            app = workspaces.get(workspaces.APP_WORKSPACE)
            released = app.cluster_side_output in self.state_outputs(app.folder)
            return 200 if released and network.get("cluster_endpoint") else 503
        return health


class LifecycleRig:
    """The three workspaces prepared once against a Terraform Cloud fake of the rig's own (so the
    plan tier's fake keeps its samples) and reused: every rehearsal starts from empty states and
    unlocked workspaces and ends with empty states. `backend`: "cloud" (default), each copy's own
    `cloud` block against the fake, the workspaces made by the harness's TfcClient.ensure_all
    (local execution mode, state sharing); "local", a local backend per copy (see LocalStack)."""

    def __init__(self, bench: plan.Workbench, folder: Path, moto: MotoServer, backend: str = "cloud") -> None:
        if backend not in BACKENDS:
            raise ValueError(f"backend must be one of {BACKENDS}, got {backend!r}")
        self.bench = bench
        self.folder = folder
        self.moto = moto
        self.backend = backend
        self.cli_config: Path | None = None  # the bench's, plus the fake's credentials (backend "cloud")
        self.token = "lifecycle-" + os.urandom(12).hex()
        self.fake: TfcFake | None = None
        self.terraform_dir = folder / "terraform"
        # The copies' .terraform folders outlive each stack: `terraform init` once per rig, not per stack.
        self.initialised: set[str] = set()
        self._followers: list[AwsFollower] = []

    def __enter__(self) -> Self:
        if self.bench.fake is None:
            raise RuntimeError("LifecycleRig needs an entered Workbench")
        self.fake = TfcFake(self.bench.ca, self.token, self.bench.organization).start()
        try:
            if self.backend == "cloud":
                # The harness's own set-up: the three workspaces in local execution mode, each state
                # shared with its readers (without it `terraform init` would make them remote).
                self.tfc().ensure_all(workspaces.state_readers())
                self.cli_config = self._cli_config()
            for workspace in ORDER:
                reason = self.bench.unavailable(workspace)
                if reason:
                    raise plan.PlanUnavailable(reason)
                tfe = f'provider "tfe" {{\n  hostname = "{self.fake.hostname}"\n}}\n'
                copy = self.bench.prepare(workspace, self.terraform_dir / workspace,
                                          edit={"tfe_override.tf": tfe} if workspaces.get(workspace).upstream
                                          else None)
                if self.backend == "cloud":
                    (copy / BACKEND_OVERRIDE).unlink()  # the copy keeps its own cloud block
        except BaseException:
            self.fake.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._clear_followers()
        if self.fake is not None:
            self.fake.stop()

    def _cli_config(self) -> Path:
        """The bench's CLI config (providers, module registry) plus a `credentials` block for the
        fake: the cloud block takes its token from there (a TF_TOKEN_ variable cannot name a port)."""
        assert self.fake is not None
        bench_config = Path(self.bench.env["TF_CLI_CONFIG_FILE"]).read_text()
        path = self.folder / "terraform.rc"
        self.folder.mkdir(parents=True, exist_ok=True)
        path.write_text(f'{bench_config}\ncredentials "{self.fake.hostname}" {{\n  token = "{self.token}"\n}}\n')
        path.chmod(0o600)
        return path

    def terraform_env(self) -> dict[str, str]:
        """What every Terraform of the rig's stacks gets besides the settings' own variables."""
        assert self.fake is not None, "LifecycleRig not entered"
        env = {**self.bench.env, "TFE_TOKEN": self.token}
        if self.backend == "cloud":
            assert self.cli_config is not None
            env |= {"TF_CLI_CONFIG_FILE": str(self.cli_config), "TF_CLOUD_HOSTNAME": self.fake.hostname,
                    "TF_CLOUD_ORGANIZATION": self.fake.organization}
        return env

    def _clear_followers(self) -> None:
        while self._followers:
            self._followers.pop().clear()

    def settings(self) -> envfile.Settings:
        assert self.fake is not None, "LifecycleRig not entered"
        return envfile.Settings("AKIA" + "0" * 16, "0" * 40, REGION, self.token, self.fake.organization,
                                plan.SAMPLE_ADMIN["langfuse_admin_email"], plan.SAMPLE_ADMIN["langfuse_admin_name"],
                                plan.SAMPLE_ADMIN["langfuse_admin_password"])

    def stack(self, run_dir: Path, **kwargs: Any) -> LocalStack:
        """A LocalStack over empty states and unlocked workspaces whose force-unlock the fake accepts,
        with moto in a fresh account. Short AWS waits: moto answers at once. With the cloud backend
        the stack's Terraform Cloud client (the force-unlock of a workspace where the harness killed
        Terraform) is the rig's, aimed at the fake."""
        assert self.fake is not None, "LifecycleRig not entered"
        kwargs = {"pvc_timeout": 5, "sweep_timeout": 5, "poll_interval": 1, **kwargs}
        if self.backend == "cloud":
            kwargs.setdefault("tfc", self.tfc())
        self._clear_followers()  # one stack at a time holds the (global) bucket names
        for name in workspaces.TFC_NAMES.values():
            if self.fake.exists(name):
                self.fake.unlock_workspace(name)
                self.fake.accept_force_unlock(name)
        follower = AwsFollower(fresh_account(self.moto))
        self._followers.append(follower)
        stack = LocalStack(self.settings(), run_dir, self.terraform_dir, self.terraform_env(),
                           fake=self.fake, follower=follower, backend=self.backend, **kwargs)
        stack._initialised = self.initialised  # noqa: SLF001 (the rig shares one init record with each stack it makes)
        stack.restore({})
        return stack

    def tfc(self) -> TfcClient:
        assert self.fake is not None, "LifecycleRig not entered"
        return TfcClient(self.token, self.fake.organization, base_url=self.fake.url, verify=str(self.bench.ca.ca),
                         timeout=10)


# --- issue 24: the stand-in slow, failing or deaf to cancellation; what the stack leaked in AWS -----

# What 02-deps' clickhouse.tf tags ClickHouse's volume with besides default_tags' Project.
CLICKHOUSE_VOLUME_TAGS = {"Name": "langfuse-clickhouse-data", "Component": "clickhouse"}
# The tags the EBS CSI driver gives a PVC's volume (Project comes from 01-network's extraVolumeTags).
PVC_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"
PVC_NAME_TAG = "kubernetes.io/created-for/pvc/name"


class StandInBehaviours:
    """Provider stand-in servers of a scenario's own (standin.StandInServers, reattached through
    TF_REATTACH_PROVIDERS like the session's), over a fixtures file of its own: the bench's fixtures
    plus the stand-in's "behaviours" section (provider/README.md), rules a scenario sets to make a
    resource's create, update or delete slow, fail with an AWS error, or ignore cancellation.

    Servers of their own rather than the session's: the rules, the StopProvider an interrupted
    Terraform sends (the server cancels every call in flight, whoever made it) and a call still
    sleeping after its Terraform was killed stay within the scenarios. Each `set` starts a new
    journal (the stand-in's record of the calls a rule took), so a call left sleeping by an earlier
    scenario writes into that scenario's journal, not the next one's."""

    def __init__(self, bench: plan.Workbench, folder: Path) -> None:
        self.bench = bench
        self.folder = folder
        self.fixtures = folder / "provider-standin.json"
        self.journal_path = folder / "journal-0.jsonl"
        self._base: dict[str, Any] = {}
        self._sets = 0
        self._servers: standin.StandInServers | None = None

    def __enter__(self) -> Self:
        self.folder.mkdir(parents=True, exist_ok=True)
        self._base = json.loads(Path(self.bench.env["LFK8S_STANDIN_FIXTURES"]).read_text())
        self.set()
        self._servers = standin.StandInServers(self.folder / "standin", self.fixtures, self.bench.cache)
        self._servers.__enter__()
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        if self._servers is not None:
            self._servers.__exit__(exc_type, exc, tb)

    @property
    def env(self) -> dict[str, str]:
        """What a Terraform needs to reach these servers instead of the session's."""
        assert self._servers is not None, "StandInBehaviours not entered"
        return {**self._servers.env, "LFK8S_STANDIN_FIXTURES": str(self.fixtures)}

    def use(self, stack: Stack) -> Stack:
        """Points every later Terraform of `stack` at these servers; returns it."""
        stack.env.update(self.env)
        return stack

    def set(self, *rules: Mapping[str, Any]) -> None:
        """Replaces the rules (none: every call answered at once, as on the session's servers) and
        starts a new, empty journal. Written whole (a renamed temporary file): the stand-in, which
        reads the file again when it changes, never sees half of it."""
        self._sets += 1
        self.journal_path = self.folder / f"journal-{self._sets}.jsonl"
        content = {**self._base, "behaviours": {"journal": str(self.journal_path), "rules": list(rules)}}
        procs.write_json(self.fixtures, content)

    def journal(self) -> list[dict[str, Any]]:
        """The calls the current rules took: one entry per event (started, cancel_ignored,
        interrupted, failed, done) with type, operation, the resource's id and the rule's index."""
        if not self.journal_path.exists():
            return []
        return [json.loads(line) for line in self.journal_path.read_text().splitlines() if line.strip()]

    def events(self, type_name: str, operation: str | None = None) -> list[str]:
        """The journal's events for one resource type (and operation): ["create started", ...]."""
        return [f"{e['operation']} {e['event']}" for e in self.journal()
                if e["type"] == type_name and (operation is None or e["operation"] == operation)]

    def wait_for(self, type_name: str, event: str, *, timeout: float) -> None:
        """Waits until the journal has `event` ("create started") for `type_name`."""
        retry(lambda: event in self.events(type_name), timeout=timeout, interval=0.1,
              what=f"the stand-in's journal to show {type_name} {event}", validator=bool)


def interrupt_this_process_when(condition: Callable[[], bool], *, timeout: float, what: str) -> threading.Thread:
    """Sends this process one SIGINT, what Ctrl-C or a CI runner's cancel delivers, as soon as
    `condition` holds (looked at every 0.1 s, from a thread): the main thread, inside the harness's
    tf.run, gets the KeyboardInterrupt that it forwards to Terraform. Nothing is sent when the
    condition does not hold within `timeout` (an interrupt at a random later point would hit
    whatever runs then); the test then fails on its own assertions. Returns the started thread."""
    def watch() -> None:
        try:
            retry(condition, timeout=timeout, interval=0.1, what=what, validator=bool)
        except WaitTimeout as exc:
            LOG.error("no interrupt sent: %s", exc)
            return
        LOG.warning("sending SIGINT to this process (pid %d): %s", os.getpid(), what)
        os.kill(os.getpid(), signal.SIGINT)

    thread = threading.Thread(target=watch, name="interrupt-when", daemon=True)
    thread.start()
    return thread


def start_harness_process(stack: Stack, workspace: str, log: Path) -> subprocess.Popen:
    """A second harness process, what `python -m lfharness up` or the e2e suite's pytest is to a CI
    runner: a plain Stack over `stack`'s folders, settings and environment applying `workspace`,
    with SIGTERM handled like Ctrl-C (procs.handle_termination, as both install it). The caller can
    then cancel it as GitHub does, SIGINT and, later, SIGKILL; the Terraform it started runs on in
    its own session. Its log lines go to `log`. The settings reach it on stdin, never in argv."""
    spec = {"settings": {k: list(v) if isinstance(v, tuple) else v
                         for k, v in dataclasses.asdict(stack._settings).items()},  # noqa: SLF001 (the same settings, in another process)
            "run_dir": str(stack.run_dir), "terraform_dir": str(stack.terraform_dir),
            "env": {k: str(v) for k, v in stack.env.items()}, "workspace": workspace,
            "initialised": sorted(stack._initialised)}  # noqa: SLF001 (init once per rig, not per process)
    if spec["settings"].get("aws_session_expiration") is not None:
        raise ValueError("start_harness_process takes long-term keys only (the rig's)")
    with log.open("w") as out:
        proc = subprocess.Popen([sys.executable, "-c", "from lfharness.testing import lifecycle; "
                                 "lifecycle.harness_process_main()"], stdin=subprocess.PIPE, stdout=out,
                                stderr=subprocess.STDOUT, text=True, start_new_session=True)
    assert proc.stdin is not None
    proc.stdin.write(json.dumps(spec))
    proc.stdin.close()
    return proc


def harness_process_main() -> None:
    """start_harness_process's child: applies one workspace; exit 0 applied, 130 interrupted."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    spec = json.loads(sys.stdin.read())
    procs.handle_termination()
    settings = envfile.Settings(**{k: tuple(v) if isinstance(v, list) else v for k, v in spec["settings"].items()})
    stack = Stack(settings, Path(spec["run_dir"]), Path(spec["terraform_dir"]), spec["env"])
    stack._initialised = set(spec["initialised"])  # noqa: SLF001 (the rig initialised the folders)
    try:
        stack.apply(spec["workspace"])
    except tf.TerraformInterrupted as exc:
        LOG.warning("harness process: %s", exc)
        sys.exit(130)


def end_harness_process(proc: subprocess.Popen, terraform_dir: Path, workspace: str, *, timeout: float,
                        forwarded: Callable[[], bool] | None = None) -> None:
    """The runner's cancel of start_harness_process's child, as GitHub does it: SIGINT, then SIGKILL
    while Terraform still runs. The kill comes once the harness has recorded the SIGINT it forwards
    (tf.SIGINT_FILE) and, when given, `forwarded` holds (what Terraform shows of having got it, e.g.
    the stand-in's journal): the runner's own kill comes minutes later, never between the record and
    the forwarding. Terraform, in its own session, runs on."""
    proc.send_signal(signal.SIGINT)
    retry(lambda: (terraform_dir / workspace / tf.SIGINT_FILE).exists() and (forwarded is None or forwarded()),
          timeout=timeout, interval=0.05, validator=bool,
          what=f"the harness process to forward its SIGINT to Terraform in {workspace} and record it")
    proc.kill()
    proc.wait(timeout=timeout)


def leave_cni_interfaces(session: AccountSession, group_id: str, cluster_name: str, count: int = 2) -> list[str]:
    """What the VPC CNI leaves in the node security group when nodes go before it has cleaned up:
    detached (available) interfaces described "aws-K8S-<instance id>", tagged with the cluster and
    the node (not with the project: the CNI does not carry default_tags). moto takes the stand-in's
    group id as it is (a group it does not know is made on the fly); the VPC and subnet are moto's
    own, untagged, outside every sweep."""
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone=f"{REGION}a")["Subnet"]["SubnetId"]
    made = []
    for n in range(count):
        instance = f"i-0{secrets.token_hex(8)}"
        tags = [{"Key": "cluster.k8s.amazonaws.com/name", "Value": cluster_name},
                {"Key": "node.k8s.amazonaws.com/instance_id", "Value": instance}]
        eni = ec2.create_network_interface(
            SubnetId=subnet, Groups=[group_id], Description=f"aws-K8S-{instance}",
            TagSpecifications=[{"ResourceType": "network-interface", "Tags": tags}])["NetworkInterface"]
        made.append(eni["NetworkInterfaceId"])
        LOG.info("moto: VPC CNI leftover %d, %s, in %s", n + 1, made[-1], group_id)
    return made


def interfaces_in(session: AccountSession, group_id: str) -> list[str]:
    """The network interfaces moto holds in a security group."""
    found = session.client("ec2").describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group_id]}])
    return sorted(e["NetworkInterfaceId"] for e in found["NetworkInterfaces"])


class WhileInterfacesHeld:
    """A marker file that exists while moto holds network interfaces in a security group: the
    `while_file` of a stand-in rule failing the group's delete with DependencyViolation, so the
    refusal lasts exactly as long as AWS's would. A thread asks moto every 0.1 s and removes the
    file once the group is free (the stand-in cannot reach moto's account itself); it is never
    made again."""

    def __init__(self, session: AccountSession, group_id: str, marker: Path) -> None:
        self.session = session
        self.group_id = group_id
        self.marker = marker
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name="interfaces-held", daemon=True)

    def __enter__(self) -> Self:
        self.marker.write_text(self.group_id)
        self._thread.start()
        return self

    def _watch(self) -> None:
        while not self._stop.wait(0.1):
            if not interfaces_in(self.session, self.group_id):
                LOG.info("moto holds no interface in %s any more: its delete may succeed", self.group_id)
                self.marker.unlink(missing_ok=True)
                return

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        self.marker.unlink(missing_ok=True)


def leave_pvc_volumes(session: AccountSession, claims: list[str], zone: str = f"{REGION}a") -> list[str]:
    """EBS volumes as the EBS CSI driver makes them for PVCs of namespace langfuse (its
    created-for tags, Project from extraVolumeTags), left `available`: what a failed 03-app destroy
    leaves once the nodes and the driver are gone. Returns their ids."""
    ec2 = session.client("ec2")
    made = []
    for claim in claims:
        tags = [{"Key": workspaces.PROJECT_TAG[0], "Value": workspaces.PROJECT_TAG[1]},
                {"Key": PVC_NAMESPACE_TAG, "Value": workspaces.NAMESPACE}, {"Key": PVC_NAME_TAG, "Value": claim},
                {"Key": "Name", "Value": f"{CLUSTER_NAME}-dynamic-pvc-{secrets.token_hex(4)}"}]
        made.append(ec2.create_volume(AvailabilityZone=zone, Size=8, VolumeType="gp3",
                                      TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])["VolumeId"])
    return made


def volumes(session: AccountSession) -> dict[str, dict[str, str]]:
    """Every EBS volume moto holds in the account: id -> its tags."""
    return {v["VolumeId"]: {t["Key"]: t["Value"] for t in v.get("Tags", [])}
            for v in session.client("ec2").describe_volumes()["Volumes"]}


class VolumeFollower(AwsFollower):
    """AwsFollower that also holds ClickHouse's EBS volume while 02-deps' state holds
    aws_ebs_volume.clickhouse (`holds_volume`: asked at each state write; the state, not the outputs,
    since a failed destroy drops the outputs but keeps the volume), tagged as 02-deps tags it
    (Project from default_tags, CLICKHOUSE_VOLUME_TAGS, no PVC tag), so a scenario can tell the
    teardown's PVC clean-up apart from 02-deps' own destroy. Put on a stack before its states are
    restored (see volume_follower)."""

    def __init__(self, session: AccountSession, holds_volume: Callable[[], bool]) -> None:
        super().__init__(session)
        self.holds_volume = holds_volume

    def follow(self, workspace: str, outputs: Mapping[str, Any]) -> None:
        super().follow(workspace, outputs)
        if workspace == workspaces.DATA_WORKSPACE:
            held = self.holds_volume()
            self._clickhouse_volume((outputs.get("clickhouse_volume_zone") or f"{REGION}a") if held else None)

    def clear(self) -> None:
        super().clear()
        self._clickhouse_volume(None)

    def clickhouse_volumes(self) -> list[str]:
        return sorted(v for v, tags in volumes(self.session).items()
                      if tags.get("Name") == CLICKHOUSE_VOLUME_TAGS["Name"])

    def _clickhouse_volume(self, zone: str | None) -> None:
        held = self.clickhouse_volumes()
        if zone and not held:
            tags = [{"Key": k, "Value": v} for k, v in {**_TAGS, **CLICKHOUSE_VOLUME_TAGS}.items()]
            self.session.client("ec2").create_volume(AvailabilityZone=zone, Size=8, VolumeType="gp3",
                                                     TagSpecifications=[{"ResourceType": "volume", "Tags": tags}])
        elif not zone:
            for volume in held:
                self.session.client("ec2").delete_volume(VolumeId=volume)


def volume_follower(stack: LocalStack) -> VolumeFollower:
    """Gives `stack` a VolumeFollower on its own moto account (before its states are restored)."""
    def holds() -> bool:
        return "aws_ebs_volume.clickhouse" in stack.resources()[workspaces.DATA_WORKSPACE]

    stack.follower = VolumeFollower(stack.follower.session, holds)
    return stack.follower
