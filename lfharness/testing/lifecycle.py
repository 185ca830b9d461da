"""The lifecycle rehearsal's rig: the harness's own Stack on the three real workspaces, offline.

The sequences under test (Stack.apply / destroy / rebuild / teardown, pause.pause, pause.resume,
stack.teardown_workspaces, and clickhouse.Quiesce before pause's and rebuild's 03-app) run
unchanged. Around them, each piece of the cloud is a stand-in:

* Terraform: the real binary; aws, helm, kubernetes and null from the provider stand-in (the
  session's long-lived servers, shared with the plan tier); modules from LFK8S_MODULE_MIRROR.
* The cloud backend: each workspace is a copy with a local backend. What the backend does besides
  keeping state, uploading it to Terraform Cloud, is LocalStack's part: after every command that
  writes a state (failed ones too), the state's outputs become that workspace's current outputs in
  the local Terraform Cloud fake, which the downstream workspaces' tfe_outputs read. A state stores
  no null output, so a paused 01-network's cluster outputs are absent there, as in Terraform Cloud.
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

What this cannot see: anything AWS, EKS or Helm do themselves (API errors, eventual consistency,
the time a cluster or RDS takes, whether the chart installs), since every provider is the stand-in;
nor whether Langfuse's worker really empties its queues and ClickHouse stops cleanly (the kube
tier's part).
"""

from __future__ import annotations

import json
import logging
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any, Self

from lfharness.core import envfile, tf
from lfharness.core.tfc import TfcClient
from lfharness.stack import clickhouse, workspaces
from lfharness.stack.k8s import KubectlError
from lfharness.stack.stack import CLUSTER_LOG_GROUP, CLUSTER_NAME, ORDER, Stack
from lfharness.testing import plan
from lfharness.testing.localsvc import ClientCache, LocalRedis, MotoServer
from lfharness.testing.tfc_fake import TfcFake

LOG = logging.getLogger("lfharness.testing.lifecycle")

REGION = "us-east-1"
STATE_FILE = "terraform.tfstate"
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


def _flag(args: tuple[str, ...]) -> str | None:
    return next((a.split("=", 2)[2] for a in args if a.startswith("-var=cluster_enabled=")), None)


class LocalStack(Stack):
    """Stack on local-backend copies, publishing each written state's outputs to the local Terraform
    Cloud fake (and moto and the Kubernetes stand-in following them); records every apply/destroy
    with its cluster_enabled, and every quiesce made by `quiesce`, in `steps`; plans again after
    every apply (`replans`: True where that plan had changes) and keeps a snapshot of the three
    states after every state write."""

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path, extra_env: dict[str, str], *,
                 fake: TfcFake, follower: AwsFollower, replan: bool = True, **kwargs: Any) -> None:
        super().__init__(settings, run_dir, terraform_dir, extra_env, aws=follower.session, **kwargs)
        self.fake = fake
        self.follower = follower
        self.kube = KubeStandIn()
        self.replan = replan
        self.steps: list[Step] = []
        self.replans: list[tuple[Step, bool]] = []
        self.snapshots: list[tuple[str, Snapshot]] = []
        # (command, workspace) -> raised instead of running it once, e.g. a failed destroy.
        self.faults: dict[tuple[str, str], BaseException] = {}

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        command = args[0]
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

    def state_outputs(self, workspace: str) -> dict[str, tuple[Any, bool]]:
        """The outputs of a workspace's state file, as Terraform Cloud serves them: (value, sensitive)."""
        path = self.terraform_dir / workspace / STATE_FILE
        if not path.exists():
            return {}
        outputs = json.loads(path.read_text()).get("outputs", {})
        return {name: (o["value"], bool(o.get("sensitive"))) for name, o in outputs.items()}

    def publish(self, workspace: str) -> None:
        """The upload the cloud backend would do: the fake serves the state's outputs, moto (and for
        03-app the Kubernetes stand-in) follows."""
        entry, outputs = workspaces.get(workspace), self.state_outputs(workspace)
        self.fake.set_outputs(entry.tfc_name, outputs)
        self.follower.follow(workspace, {k: v for k, (v, _) in outputs.items()})
        if entry.in_cluster:
            self.kube.follow(entry.cluster_side_output in outputs, self.claims(workspace))

    def claims(self, workspace: str) -> list[str]:
        """The names of the PersistentVolumeClaims a workspace's state holds."""
        path = self.terraform_dir / workspace / STATE_FILE
        state = json.loads(path.read_text()) if path.exists() else {}
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
        paths = {ws: self.terraform_dir / ws / STATE_FILE for ws in ORDER}
        return {ws: p.read_bytes() if p.exists() else None for ws, p in paths.items()}

    def restore(self, snapshot: Snapshot) -> None:
        """Puts the three states back as they were at a snapshot and publishes them (moto follows)."""
        for workspace in ORDER:
            path = self.terraform_dir / workspace / STATE_FILE
            for stale in path.parent.glob(STATE_FILE + "*"):
                stale.unlink()
            if snapshot.get(workspace) is not None:
                path.write_bytes(snapshot[workspace])
            self.publish(workspace)

    def resources(self) -> dict[str, list[str]]:
        """Managed resource addresses of each workspace's state."""
        held: dict[str, list[str]] = {}
        for workspace in ORDER:
            path = self.terraform_dir / workspace / STATE_FILE
            state = json.loads(path.read_text()) if path.exists() else {}
            held[workspace] = sorted(
                f"{r.get('module', '') + '.' if r.get('module') else ''}{r['type']}.{r['name']}"
                for r in state.get("resources", []) if r["mode"] == "managed" and r.get("instances"))
        return held

    def release_health(self) -> Callable[[Mapping[str, Any]], int]:
        """Kubernetes stand-in for resume's health check (see the module docstring)."""
        def health(network: Mapping[str, Any]) -> int:
            app = workspaces.get(workspaces.APP_WORKSPACE)
            released = app.cluster_side_output in self.state_outputs(app.folder)
            return 200 if released and network.get("cluster_endpoint") else 503
        return health


class LifecycleRig:
    """The three workspaces prepared once (local backend, tfe aimed at a Terraform Cloud fake of
    the rig's own, so the plan tier's fake keeps its samples) and reused: every rehearsal starts
    from empty states and ends with them."""

    def __init__(self, bench: plan.Workbench, folder: Path, moto: MotoServer) -> None:
        self.bench = bench
        self.folder = folder
        self.moto = moto
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
            for workspace in ORDER:
                reason = self.bench.unavailable(workspace)
                if reason:
                    raise plan.PlanUnavailable(reason)
                tfe = f'provider "tfe" {{\n  hostname = "{self.fake.hostname}"\n}}\n'
                self.bench.prepare(workspace, self.terraform_dir / workspace,
                                   edit={"tfe_override.tf": tfe} if workspaces.get(workspace).upstream else None)
        except BaseException:
            self.fake.stop()
            raise
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self._clear_followers()
        if self.fake is not None:
            self.fake.stop()

    def _clear_followers(self) -> None:
        while self._followers:
            self._followers.pop().clear()

    def settings(self) -> envfile.Settings:
        assert self.fake is not None, "LifecycleRig not entered"
        return envfile.Settings("AKIA" + "0" * 16, "0" * 40, REGION, self.token, self.fake.organization,
                                plan.SAMPLE_ADMIN["langfuse_admin_email"], plan.SAMPLE_ADMIN["langfuse_admin_name"],
                                plan.SAMPLE_ADMIN["langfuse_admin_password"])

    def stack(self, run_dir: Path, **kwargs: Any) -> LocalStack:
        """A LocalStack over empty states, with moto in a fresh account. Short AWS waits: moto
        answers at once."""
        assert self.fake is not None, "LifecycleRig not entered"
        kwargs = {"pvc_timeout": 5, "sweep_timeout": 5, "poll_interval": 1, **kwargs}
        self._clear_followers()  # one stack at a time holds the (global) bucket names
        follower = AwsFollower(fresh_account(self.moto))
        self._followers.append(follower)
        stack = LocalStack(self.settings(), run_dir, self.terraform_dir, {**self.bench.env, "TFE_TOKEN": self.token},
                           fake=self.fake, follower=follower, **kwargs)
        stack._initialised = self.initialised  # noqa: SLF001 (the rig shares one init record with each stack it makes)
        stack.restore({})
        return stack

    def tfc(self) -> TfcClient:
        assert self.fake is not None, "LifecycleRig not entered"
        return TfcClient(self.token, self.fake.organization, base_url=self.fake.url, verify=str(self.bench.ca.ca),
                         timeout=10)
