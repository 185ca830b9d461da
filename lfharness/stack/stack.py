"""The deployed stack: terraform per workspace against Terraform Cloud, in dependency order."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lfharness.core import envfile, hcl, procs, redact, tf
from lfharness.core.tfc import TfcClient, TfcError
from lfharness.core.wait import WaitTimeout, retry
from lfharness.stack import aws_checks, pause, workspaces
from lfharness.stack.workspaces import CLUSTER_NAME, NAMESPACE, ORDER, PROJECT_TAG

LOG = logging.getLogger("lfharness.stack.stack")

KEEP_ENV = "LFK8S_KEEP_STACK"  # "1": keep the stack after the run, for debugging (Terratest style)

CLUSTER_LOG_GROUP = f"/aws/eks/{CLUSTER_NAME}/cluster"  # 01-network's logs.tf; EKS re-creates it after a destroy
LOG_GROUP_ADDRESS = "aws_cloudwatch_log_group.eks"  # where 01-network's state holds it
# 02-deps' rds module makes /aws/rds/instance/<identifier>/postgresql and deletes it after the
# instance; RDS creates the group itself, untagged, if it publishes a last line after that.
RDS_LOG_GROUP = "/aws/rds/instance/langfuse/postgresql"
SWEPT_LOG_GROUPS = (CLUSTER_LOG_GROUP, RDS_LOG_GROUP)  # looked up by name at the teardown's end, tagged or not
# Resources that live inside the cluster: once it is gone they cannot be deleted, only forgotten.
KUBERNETES_SIDE_TYPES = ("helm_", "kubernetes_")
# EKS statuses in which DeleteCluster is refused (ResourceInUseException) and the aws provider does
# not retry: a teardown right after a run cancelled during the cluster's creation or an update.
CLUSTER_SETTLING = ("CREATING", "UPDATING")


class TeardownError(RuntimeError):
    """One or more workspaces could not be destroyed; each failure is listed, downstream first."""


def _var_args(variables: dict[str, str] | None) -> list[str]:
    """`-var k=v` arguments, in a stable order so the run logs compare."""
    return [f"-var={key}={value}" for key, value in sorted((variables or {}).items())]


# A lock still held by a Terraform that outlived its Python parent (a cancelled run) is waited
# for, not failed on at once.
LOCK_TIMEOUT = "-lock-timeout=20m"

# Resource types whose secret values the configuration now sends write-only (issue 26: 03-app's
# Secret takes data_wo). A state written before keeps the values in the computed attribute, which
# the provider never clears once a revision is set (terraform-provider-kubernetes: Read skips
# `data` while data_wo_revision > 0); replacing the resource once drops them.
WRITE_ONLY_SECRET_ATTRIBUTE = {"kubernetes_secret_v1": "data"}


def stale_secret_addresses(state: dict[str, Any]) -> list[str]:
    """Addresses, in a `terraform show -json` state, of resources still holding secret values in
    the attribute their configuration now sets write-only (WRITE_ONLY_SECRET_ATTRIBUTE)."""
    root = (state.get("values") or {}).get("root_module") or {}
    return sorted(r["address"] for r in root.get("resources", [])
                  if r.get("mode") == "managed" and r.get("type") in WRITE_ONLY_SECRET_ATTRIBUTE
                  and (r.get("values") or {}).get(WRITE_ONLY_SECRET_ATTRIBUTE[r["type"]]))


# Subcommands that print values of the current state (a plan's or destroy's old values, among them
# helm_release.metadata.values, which the helm provider does not mark sensitive): the state's
# secrets are learned before they run. An apply also creates secrets: learned again after it.
PRINTS_STATE = ("plan", "apply", "destroy", "refresh")
# What the cloud block's `terraform output` says for a workspace that has no state version yet
# (Terraform Cloud's 404 on its current outputs): no outputs, not a failure.
NO_STATE_OUTPUTS = "could not read state version outputs: resource not found"


class Stack:
    """init / apply / plan / output / destroy per workspace, logs kept in the run folder.

    `redactor` (default: a new one) learns the .env secrets, every sensitive output read here and
    the secrets of each workspace's state, and masks them in every run log and error (NFR1).
    `aws` (a boto3 session on the same account) is for the AWS side of a teardown and of applying
    01-network: the PVC volumes waited for after 03-app, the leftover sweep at the end, a control-plane
    log group EKS re-created removed before 01-network is applied; before 01-network's destroy, the
    wait for a cluster EKS is still creating or updating (up to `cluster_settle_timeout`); when it
    fails, the node security group's detached VPC CNI interfaces released; once it is gone, the
    namespace's orphaned PVC volumes deleted (`cleaned_up` lists what the teardown deleted itself).
    Without one (throwaway local workspaces) those steps are skipped with a log line.
    """

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path = tf.TERRAFORM_DIR,
                 extra_env: dict[str, str] | None = None, redactor: redact.Redactor | None = None, *,
                 aws: Any = None, pvc_timeout: float = 600, sweep_timeout: float = 900,
                 poll_interval: float = 30, cluster_settle_timeout: float = 1200,
                 tfc: TfcClient | None = None) -> None:
        self.redactor = redactor if redactor is not None else redact.Redactor()
        # Releases a workspace's lock the harness left held by killing its Terraform (tf.KILLED_FILE);
        # None: made from the settings for a workspace whose backend is Terraform Cloud (_lock_client).
        self.tfc = tfc
        self._settings = settings
        self.redactor.add(*settings.secrets)
        # 03-app's helm and kubernetes providers run `aws eks get-token` (decision 21): the set-up's
        # `aws` sits next to this Python, which need not be on the caller's PATH.
        path = os.pathsep.join([str(Path(sys.executable).parent), os.environ.get("PATH", os.defpath)])
        env = {"PATH": path, **settings.terraform_env(), **(extra_env or {})}
        # Secret values: a traceback's argument list shows env = {..., 'TFE_TOKEN': '***'}.
        self.env = {k: self.redactor.secret(v) if self.redactor.knows(v) else v for k, v in env.items()}
        self.run_dir = run_dir
        self.terraform_dir = terraform_dir
        self.applied: list[str] = []
        self.organization = settings.tfc_organization  # tells this deployment's IAM resources apart
        self.aws = aws
        self.pvc_timeout = pvc_timeout
        self.sweep_timeout = sweep_timeout
        self.poll_interval = poll_interval
        # EKS takes 10-15 min to create a cluster (a teardown after a cancel during 01-network's apply
        # sees what is left of that); the stack makes no in-place updates that take longer.
        self.cluster_settle_timeout = cluster_settle_timeout
        self.cleaned_up: list[str] = []  # what the last teardown deleted on AWS itself (interfaces, volumes)
        self._network: dict = {}  # 01-network's outputs as they were before its destroy in a teardown
        self._initialised: set[str] = set()
        self._learned: dict[str, str] = {}  # workspace -> digest of the local state file last learned from
        self._stale_secrets: dict[str, list[str]] = {}  # workspace -> stale_secret_addresses at the last learning

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        if args[0] in PRINTS_STATE:
            self._learn_state(workspace)
            self._learn_upstream_secrets(workspace)

        def learn_new_secrets() -> None:
            self._learn_state(workspace)

        return tf.run(list(args), self.terraform_dir / workspace, self.env, self.run_dir / "terraform", ok,
                      redactor=self.redactor, before_log=learn_new_secrets if args[0] == "apply" else None)

    def _local_state(self, workspace: str) -> Path | None:
        """The workspace's state file when its backend is local at the default path (the rehearsals'
        and the tests' copies); None for Terraform Cloud, whose state only Terraform can read."""
        environment = envfile.child_env(self.env)
        if environment.get("TF_DATA_DIR") or environment.get("TF_WORKSPACE"):
            return None  # the backend settings or the state live elsewhere: not guessed at
        data = self.terraform_dir / workspace / ".terraform"
        try:
            configured = (json.loads((data / "terraform.tfstate").read_text()).get("backend") or {}) \
                if (data / "terraform.tfstate").exists() else {}
            selected = (data / "environment").read_text().strip() if (data / "environment").exists() else "default"
        except (OSError, json.JSONDecodeError):
            return None
        config = configured.get("config") or {}
        if configured.get("type", "local") != "local" or config.get("path") or config.get("workspace_dir") \
                or selected not in ("", "default"):
            return None
        return self.terraform_dir / workspace / "terraform.tfstate"

    def _learn_state(self, workspace: str) -> None:
        """Registers the secrets the workspace's state holds (show -json; its stdout is never logged).

        A local state file that has not changed since it was last learned holds nothing new: that
        `show -json` (a Terraform run starting every provider for its schema) is skipped. A
        Terraform Cloud state is read every time: something else may have written it.
        """
        local = self._local_state(workspace)
        digest = None
        if local is not None:
            digest = hashlib.sha256(local.read_bytes() if local.exists() else b"").hexdigest()
            if self._learned.get(workspace) == digest:
                return
        try:
            shown = tf.run(["show", "-json", "-no-color"], self.terraform_dir / workspace, self.env,
                           self.run_dir / "terraform", redactor=self.redactor)
            document = json.loads(shown.stdout or "{}")
            found = self.redactor.learn_state(document)
            self._stale_secrets[workspace] = stale_secret_addresses(document)
        except (tf.TerraformError, json.JSONDecodeError) as exc:
            LOG.warning("could not read the %s state to learn its secrets, so the next run log may hold some "
                        "the harness has not seen yet: %s", workspace, exc)
            return
        if digest is not None:
            self._learned[workspace] = digest
        LOG.debug("%s: %d secret value(s) known from the state", workspace, found)

    def _learn_upstream_secrets(self, workspace: str) -> None:
        """Registers the secrets `workspace` reads from its upstream workspaces. 03-app's state holds
        none (issue 26: it takes 02-deps' secrets through the ephemeral tfe_outputs), so learning its
        own state no longer finds what its providers are given; a provider error that echoed one
        would reach the run log in clear. They are learned from the upstream itself: its local state
        where it has one (the rehearsals' copies), else its outputs through Terraform Cloud."""
        for folder in workspaces.get(workspace).upstream:
            upstream = workspaces.get(folder)
            if not any(sensitive for _, sensitive in upstream.sample_outputs.values()):
                continue
            here = (self.terraform_dir / folder).is_dir()
            local = self._local_state(folder) if here else None
            if local is not None and local.exists():
                self._learn_state(folder)
                continue
            # _lock_client: `tfc` when given, else a client when the upstream keeps its state there.
            client = self._lock_client(folder) if here else self.tfc
            if client is None:
                continue
            try:
                outputs = client.outputs(upstream.tfc_name, reveal_sensitive=True)
            except TfcError as exc:
                LOG.warning("could not read %s's outputs to learn their secrets, so a run log of %s may hold "
                            "some the harness has not seen: %s", upstream.tfc_name, workspace, exc)
                continue
            for output in outputs.values():
                if output.sensitive and output.value is not None:
                    self.redactor.learn(output.value)

    def _state_written(self, workspace: str) -> None:
        """Called after every command that writes a workspace's state (apply, destroy, state rm),
        failed ones included. The cloud backend has already uploaded it to Terraform Cloud, which
        serves the new outputs to the downstream workspaces: nothing to do here (a local-backend
        stand-in does that part itself)."""

    def init(self, workspace: str) -> None:
        """`terraform init`, once per workspace and Stack: the configuration does not change while
        a Stack drives it, and every sequence step calls this first."""
        if workspace in self._initialised:
            return
        self._cmd(workspace, "init", "-input=false", "-no-color")
        self._initialised.add(workspace)

    def _read(self, workspace: str) -> dict:
        """outputs() of a workspace this Stack may not have initialised yet (teardown reads
        01-network's before destroying 03-app)."""
        self.init(workspace)
        return self.outputs(workspace)

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        """Applies one workspace; its upstream workspaces must already be applied. `variables`
        become `-var k=v` (e.g. cluster_enabled=false for the pause)."""
        self.init(workspace)
        # Recorded before the apply: a half-applied workspace still needs its teardown.
        if workspace not in self.applied:
            self.applied.append(workspace)
        if workspaces.get(workspace).hosts_cluster:
            self._remove_unheld_log_group()
        replace: list[str] = []
        if workspaces.get(workspace).in_cluster and (variables or {}).get("cluster_enabled") != "false":
            self._learn_state(workspace)
            replace = self._stale_secrets.get(workspace, [])
            if replace:
                LOG.info("%s: %s still holds secret values in its state from before they went write-only: "
                         "replaced once by this apply (the pods keep running; the new one has the same values)",
                         workspace, ", ".join(replace))
        try:
            self._cmd(workspace, "apply", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT,
                      *_var_args(variables), *(f"-replace={a}" for a in replace))
        finally:
            self._state_written(workspace)

    def plan_has_changes(self, workspace: str, *, variables: dict[str, str] | None = None) -> bool:
        """`plan -detailed-exitcode`: exit 2 means changes, 0 none (FR29)."""
        result = self._cmd(workspace, "plan", "-detailed-exitcode", "-input=false", "-no-color", LOCK_TIMEOUT,
                           *_var_args(variables), ok=(0, 2))
        return result.returncode == 2

    def destroy(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        """Destroys one workspace. Without `variables` it gets the cluster_enabled it is in
        (as_it_stands): the plan Terraform runs before a destroy evaluates the configuration with it."""
        self.init(workspace)
        if variables is None:
            variables = self.as_it_stands(workspace)
        try:
            self._cmd(workspace, "destroy", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT,
                      *_var_args(variables))
        finally:
            self._state_written(workspace)
        if workspace in self.applied:
            self.applied.remove(workspace)

    def rebuild(self, workspace: str, quiesce: Callable[[], None]) -> None:
        """FR28: destroys and applies one workspace again (03-app: the release goes and comes back;
        RDS, S3 and ClickHouse's volume keep their data). `quiesce` runs before the destroy of the
        workspace that runs in the cluster (clickhouse.Quiesce), so nothing Langfuse accepted is lost."""
        if workspaces.get(workspace).in_cluster:
            quiesce()
        self.destroy(workspace)
        self.apply(workspace)

    def outputs(self, workspace: str) -> dict:
        """The workspace's outputs; each sensitive one is registered with the redactor as it is
        read, and its strings come back as redact.Secret (masked in reprs). Empty for a workspace
        without a state: Terraform Cloud answers 404 for the outputs of a workspace that has no
        state version yet, and the cloud block's `terraform output` fails on it (a local state
        without outputs prints {})."""
        result = self._cmd(workspace, "output", "-json", ok=(0, 1))
        if result.returncode == 1:
            if NO_STATE_OUTPUTS in " ".join(result.stderr.split()):
                LOG.debug("%s has no state in Terraform Cloud yet: no outputs", workspace)
                return {}
            raise tf.TerraformError(self.redactor.mask(f"terraform output -json in {workspace} failed:\n"
                                                       f"{result.stderr[-2000:]}"))
        raw = json.loads(result.stdout)
        return {k: self.redactor.learn(v["value"]) if v.get("sensitive") else v["value"] for k, v in raw.items()}

    def state_addresses(self, workspace: str) -> list[str]:
        """`terraform state list`: every address the workspace's state holds (none without a state)."""
        result = self._cmd(workspace, "state", "list", ok=(0, 1))
        if result.returncode == 1:
            if "No state file was found" in result.stderr:
                return []
            raise tf.TerraformError(f"terraform state list in {workspace} failed:\n{result.stderr[-2000:]}")
        return result.stdout.split()

    def cluster_exists(self) -> bool | None:
        """Whether 01-network's outputs name a cluster endpoint: where 03-app's providers connect.
        None when this Stack has no 01-network folder (a part of one workspace run on its own)."""
        if not (self.terraform_dir / workspaces.CLUSTER_WORKSPACE).is_dir():
            return None
        return bool(self._read(workspaces.CLUSTER_WORKSPACE).get("cluster_endpoint"))

    def as_it_stands(self, workspace: str) -> dict[str, str]:
        """The variables that describe a workspace as it stands, for its destroy: cluster_enabled=true
        only if its own outputs show its cluster-side part (its registry entry's cluster_side_output) and, downstream of
        01-network, the cluster still exists. A 03-app whose cluster is gone first forgets its
        Kubernetes-side resources (forget_kubernetes_side). Empty for a workspace that declares
        no cluster_enabled."""
        if "cluster_enabled" not in hcl.blocks(self.terraform_dir / workspace, "variable"):
            return {}
        entry = workspaces.get(workspace)
        own = bool(self._read(workspace).get(entry.cluster_side_output))
        known = own if entry.hosts_cluster else self.cluster_exists()
        cluster = own if known is None else known  # no 01-network here: the workspace's own word
        if entry.in_cluster and not cluster:
            self.forget_kubernetes_side(workspace)
        enabled = own and cluster
        LOG.info("%s: cluster_enabled=%s for its destroy (%s output %s, %s)", workspace, str(enabled).lower(),
                 entry.cluster_side_output, "present" if own else "absent",
                 "01-network not here" if known is None else "cluster exists" if cluster else "no cluster")
        return {"cluster_enabled": "true" if enabled else "false"}

    def forget_kubernetes_side(self, workspace: str) -> list[str]:
        """Removes the helm_* and kubernetes_* resources from a workspace's state, without deleting
        anything; only for a workspace whose cluster no longer exists: what they described went with
        it, and the providers have no endpoint to reach. Returns the addresses removed."""
        held = [a for a in self.state_addresses(workspace) if a.split(".")[0].startswith(KUBERNETES_SIDE_TYPES)]
        if not held:
            return []
        LOG.warning("%s: removing %s from its state without deleting them: the cluster that held them no longer "
                    "exists (01-network has no cluster endpoint), so there is nothing to delete them from and no "
                    "endpoint to reach", workspace, ", ".join(held))
        try:
            self._cmd(workspace, "state", "rm", LOCK_TIMEOUT, *held)
        finally:
            self._state_written(workspace)
        return held

    def _remove_unheld_log_group(self) -> None:
        """Before 01-network is applied: a control-plane log group that no state holds and that lacks
        the project tag was re-created by EKS after an earlier destroy (terraform-aws-eks issue 2763);
        the apply's create would fail with ResourceAlreadyExistsException, so it is deleted."""
        if self.aws is None:
            return
        if LOG_GROUP_ADDRESS in self.state_addresses(workspaces.CLUSTER_WORKSPACE):
            return
        logs = self.aws.client("logs")
        groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=CLUSTER_LOG_GROUP)["logGroups"]
                  if g["logGroupName"] == CLUSTER_LOG_GROUP]
        if not groups:
            return
        tags = logs.list_tags_for_resource(resourceArn=groups[0]["arn"].removesuffix(":*")).get("tags", {})
        if tags.get(PROJECT_TAG[0]) == PROJECT_TAG[1]:
            LOG.warning("apply 01-network: log group %s carries the project tag but no state holds it; kept (the "
                        "apply will fail with ResourceAlreadyExistsException: delete it or import it)",
                        CLUSTER_LOG_GROUP)
            return
        LOG.warning("apply 01-network: deleting log group %s: untagged and in no state, so EKS re-created it after "
                    "an earlier destroy (terraform-aws-eks issue 2763); the apply would fail on it", CLUSTER_LOG_GROUP)
        logs.delete_log_group(logGroupName=CLUSTER_LOG_GROUP)

    def teardown_unless_kept(self) -> None:
        """The finalizer registered before the first apply: teardown() unless LFK8S_KEEP_STACK=1.

        It also runs after Ctrl-C: tf.run lets Terraform write its state and exit first, then
        pytest unwinds its session and calls this.
        """
        if os.environ.get(KEEP_ENV) == "1":
            LOG.warning("teardown skipped: %s=1 keeps %s; run `python -m lfharness teardown` when done",
                        KEEP_ENV, ", ".join(self.applied) or "nothing")
            return
        self.teardown()

    def _wait_for_pvc_volumes(self) -> str | None:
        """After 03-app: its PVC volumes should be gone before 01-network removes the EBS CSI driver,
        which deletes them. Returns the failure, if any; a teardown that then destroys 01-network
        deletes the detached ones itself and replaces it (_delete_orphaned_pvc_volumes)."""
        if self.aws is None:
            LOG.info("teardown: no AWS session (local workspaces): PVC volumes not checked")
            return None
        try:
            retry(lambda: aws_checks.pvc_volumes(self.aws), timeout=self.pvc_timeout, interval=self.poll_interval,
                  what=f"EBS volumes of namespace {NAMESPACE}'s PVCs deleted by the EBS CSI driver",
                  validator=lambda left: not left)
        except WaitTimeout as exc:
            LOG.error("teardown: PVC volumes still there after 03-app, continuing (deleted once 01-network is "
                      "gone, if it is part of this teardown): %s", exc)
            return (f"PVC volumes: {exc}; once the cluster is gone nothing deletes them: `python -m lfharness "
                    "teardown` deletes the detached ones after 01-network, or delete them by hand "
                    f"(EC2 console, Volumes, tag kubernetes.io/created-for/pvc/namespace={NAMESPACE})")
        return None

    def _delete_orphaned_pvc_volumes(self) -> str | None:
        """Once 01-network is destroyed: the namespace's PVC volumes that are still there have no EBS
        CSI driver left to delete them (a failed or timed-out 03-app destroy, issue 24 item 5), so the
        detached (`available`) ones are deleted here and listed in `cleaned_up`. Returns the problem
        naming those it could not delete, if any. ClickHouse's volume is 02-deps' and never one of them."""
        if self.aws is None:
            return None
        try:
            status = self._cluster_status(self._cluster_name)
            if status is not None:
                # Terraform's destroy waits for the cluster to go; one still listed may still run the driver.
                left = aws_checks.pvc_volumes(self.aws)
                LOG.warning("teardown: 01-network is destroyed but EKS still lists cluster %s (%s): PVC volumes %s "
                            "left for its EBS CSI driver or the next teardown", self._cluster_name, status,
                            ", ".join(left) or "(none)")
                if not left:
                    return None
                return (f"PVC volumes: {', '.join(left)} still there, and cluster {self._cluster_name} is still "
                        f"{status}: re-run `python -m lfharness teardown` once it is gone")
            release = aws_checks.delete_detached_pvc_volumes(self.aws)
        except (ClientError, BotoCoreError) as exc:
            LOG.error("teardown: could not look for orphaned PVC volumes: %s", exc)
            return f"PVC volumes: could not look for or delete them after 01-network's destroy: {exc}"
        self.cleaned_up += [f"EBS volume {v} (a PVC's in namespace {NAMESPACE})" for v in release.deleted]
        if release.kept:
            return (f"PVC volumes of namespace {NAMESPACE} left after 01-network's destroy and not deleted: "
                    f"{', '.join(release.kept)}; delete them by hand once detached (EC2 console, Volumes, "
                    f"tag kubernetes.io/created-for/pvc/namespace={NAMESPACE})")
        return None

    @property
    def _cluster_name(self) -> str:
        return self._network.get("cluster_name") or CLUSTER_NAME

    def _cluster_status(self, name: str) -> str | None:
        """EKS's status of the cluster; None when EKS does not know it."""
        try:
            return self.aws.client("eks").describe_cluster(name=name)["cluster"]["status"]
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ResourceNotFoundException":
                return None
            raise

    def _wait_for_settled_cluster(self) -> None:
        """Before 01-network's destroy: a cluster EKS reports CREATING or UPDATING (a run cancelled
        during its creation) refuses DeleteCluster, and the aws provider retries only "in progress"
        refusals; so the teardown waits for it to settle, logging its status and the time elapsed.
        TeardownError naming the status when it does not settle within cluster_settle_timeout (the
        destroy is then not tried: it could only fail on the cluster)."""
        name = self._cluster_name
        try:
            status = self._cluster_status(name)
        except (ClientError, BotoCoreError) as exc:
            LOG.warning("teardown: could not ask EKS for cluster %s's status (%s); destroying 01-network without "
                        "waiting", name, exc)
            return
        if status not in CLUSTER_SETTLING:
            return
        LOG.warning("teardown: EKS cluster %s is %s (a run stopped while EKS was creating or updating it), and EKS "
                    "refuses to delete it until it settles: waiting up to %gs before destroying 01-network",
                    name, status, self.cluster_settle_timeout)
        started, seen = time.monotonic(), [status]

        def current() -> str | None:
            seen[0] = self._cluster_status(name)
            LOG.info("teardown: EKS cluster %s is %s, %.0fs elapsed", name, seen[0] or "gone",
                     time.monotonic() - started)
            return seen[0]

        try:
            retry(current, timeout=self.cluster_settle_timeout, interval=self.poll_interval,
                  what=f"EKS cluster {name} to leave {'/'.join(CLUSTER_SETTLING)}",
                  validator=lambda now: now not in CLUSTER_SETTLING, retry_on=(ClientError, BotoCoreError))
        except WaitTimeout as exc:
            raise TeardownError(
                f"EKS cluster {name} is still {seen[0]} after {self.cluster_settle_timeout:g}s of waiting, and EKS "
                f"refuses to delete a cluster in that status, so 01-network was not destroyed; re-run `python -m "
                f"lfharness teardown` once `aws eks describe-cluster --name {name}` shows ACTIVE or FAILED") from exc
        LOG.info("teardown: EKS cluster %s is %s after %.0fs; destroying 01-network", name, seen[0] or "gone",
                 time.monotonic() - started)

    def _destroy_network(self) -> None:
        """01-network's destroy in a teardown. With an AWS session: first the wait for a settling
        cluster (issue 24 item 10); and when the destroy fails while the node security group id is
        known from 01-network's outputs (read before: a failed destroy empties them), its detached
        VPC CNI interfaces are deleted as the pause does (pause.release_node_security_group: AWS
        refuses to delete a group an interface uses, DependencyViolation after the 15-minute delete
        timeout), the other interfaces named, and 01-network destroyed once more (item 4)."""
        if self.aws is None:
            self.destroy(workspaces.CLUSTER_WORKSPACE)
            return
        try:
            self._network = self._read(workspaces.CLUSTER_WORKSPACE)
        except tf.TerraformError as exc:
            LOG.warning("teardown: could not read 01-network's outputs before its destroy (%s); cluster %s assumed, "
                        "node security group unknown", exc, CLUSTER_NAME)
            self._network = {}
        self._wait_for_settled_cluster()
        try:
            self.destroy(workspaces.CLUSTER_WORKSPACE)
        except tf.TerraformError as exc:
            group = self._network.get("node_security_group_id")
            if not group:
                raise
            report = pause.release_node_security_group(self.aws, group, self._cluster_name)
            self.cleaned_up += [f"network interface {eni} (a detached VPC CNI interface in the node security group "
                                f"{group})" for eni in report.deleted]
            others = (f"; the node security group {group} is also used by network interfaces that are not detached "
                      f"VPC CNI leftovers, left alone: {report.describe_kept()} (delete them once detached, then "
                      "re-run `python -m lfharness teardown`)") if report.kept else ""
            if not report.deleted:
                if others:
                    raise TeardownError(f"{exc}{others}") from exc
                raise
            LOG.warning("teardown: 01-network's destroy failed; deleted %d detached VPC CNI interface(s) %s that held "
                        "the node security group %s%s; destroying 01-network once more", len(report.deleted),
                        ", ".join(report.deleted), group, others)
            try:
                self.destroy(workspaces.CLUSTER_WORKSPACE)
            except tf.TerraformError as again:
                if others:
                    raise TeardownError(f"{again}{others}") from again
                raise

    def _sweep(self) -> tuple[aws_checks.Sweep | None, str | None]:
        """The leftover sweep that ends a teardown; a log group EKS or RDS re-created is deleted on the way."""
        if self.aws is None:
            LOG.info("teardown: no AWS session (local workspaces): leftover sweep not run")
            return None, None
        try:
            found = aws_checks.wait_for_clean_sweep(self.aws, *PROJECT_TAG, log_groups=SWEPT_LOG_GROUPS,
                                                    iam_tags=aws_checks.stack_tags(self.organization),
                                                    remove_recreated=True, timeout=self.sweep_timeout,
                                                    interval=self.poll_interval)
        except aws_checks.CheckError as exc:
            LOG.error("teardown: leftover sweep not clean: %s", exc)
            return None, f"leftover sweep: {exc}"
        if found.unknown:
            LOG.warning("teardown: the leftover sweep is clean but for %d resource(s) of a kind it cannot judge; "
                        "check them by hand:\n%s", len(found.unknown), "\n".join(str(f) for f in found.unknown))
        return found, None

    def _lock_client(self, workspace: str) -> TfcClient | None:
        """The Terraform Cloud client that holds `workspace`'s lock: `tfc` when given; else one made from
        the settings when the workspace's backend is Terraform Cloud (its `.terraform` says "cloud", or,
        not initialised, its configuration has a cloud block and no backend override); None for a
        local backend, whose lock went with the killed process."""
        if self.tfc is not None:
            return self.tfc
        folder = self.terraform_dir / workspace
        try:
            backend = (json.loads((folder / ".terraform" / "terraform.tfstate").read_text()).get("backend") or {}) \
                .get("type") if (folder / ".terraform" / "terraform.tfstate").exists() else None
            declared = hcl.blocks(folder, "terraform") if backend is None else {}
        except (OSError, ValueError) as exc:
            LOG.warning("%s: could not tell its backend (%s): no Terraform Cloud lock released", workspace, exc)
            return None
        if backend in ("cloud", "remote") or (backend is None and "cloud" in declared and "backend" not in declared):
            self.tfc = TfcClient(self._settings.tfe_token, self._settings.tfc_organization)
            return self.tfc
        return None

    def release_lock_left_by_kill(self, workspace: str) -> bool:
        """When the harness had to kill a Terraform in `workspace` (tf.KILLED_FILE; issue 24 item 2), its
        Terraform Cloud lock is released here (force-unlock), saying so, and the mark removed. Not while
        a Terraform of this machine still runs there (its pid record: that one holds the lock rightly).
        True when a lock was released. A refusal is logged, the mark kept for `python -m lfharness
        unlock` or the teardown command; the destroy then waits on the lock (LOCK_TIMEOUT) and reports."""
        folder = self.terraform_dir / workspace
        killed = tf.killed_marker(folder)
        if killed is None:
            return False
        live = tf.live_terraform(folder)
        if live is not None:
            LOG.warning("teardown: %s: the harness killed terraform %s there earlier, but %s (pid %d) runs there now "
                        "and holds the lock: not released", workspace, killed.get("subcommand"), live.what, live.pid)
            return False
        client = self._lock_client(workspace)
        if client is None:
            LOG.info("teardown: %s: the harness killed terraform %s there (%s); its backend is local, so its lock went "
                     "with the process: nothing to release", workspace, killed.get("subcommand"), killed.get("why"))
            tf.clear_killed_marker(folder)
            return False
        name = workspaces.get(workspace).tfc_name
        try:
            released = client.get_workspace(name) is not None and client.force_unlock_if_locked(name)
        except TfcError as exc:
            LOG.error("teardown: %s: the harness killed terraform %s there (%s), and Terraform Cloud refused to "
                      "release %s's lock: %s; `python -m lfharness unlock` tries again", workspace,
                      killed.get("subcommand"), killed.get("why"), name, exc)
            return False
        tf.clear_killed_marker(folder)
        LOG.warning("teardown: %s: the harness killed terraform %s there at %s (%s), so its lock may have stayed "
                    "held in Terraform Cloud: %s", workspace, killed.get("subcommand"), killed.get("killed_at"),
                    killed.get("why"), f"released the lock on {name} before destroying" if released
                    else f"{name} was not locked")
        return released

    def teardown(self, only: tuple[str, ...] | None = None, *, sweep: bool | None = None) -> aws_checks.Sweep | None:
        """Destroys what this run applied (or `only`), downstream first (FR27), each with the
        cluster_enabled it is in; after 03-app waits for its PVC volumes, and ends with the leftover
        sweep (returned; None without an AWS session) when `sweep` says so, by default when
        01-network was part of it. With an AWS session, 01-network's destroy waits for a cluster EKS
        is still creating or updating and releases the node security group when it fails
        (_destroy_network); once 01-network is gone, the namespace's detached PVC volumes are deleted
        (they outlive a failed 03-app destroy, and no CSI driver is left to delete them).

        Every workspace is tried even when one before it fails: a failed 03-app destroy must not
        leave RDS and EKS running. Each failure is logged as it happens and all are raised
        together at the end (TeardownError). Ctrl-C is not a failure: it ends the teardown.
        First, a workspace where the harness had to kill Terraform (timeout or interrupt past its
        grace) has its Terraform Cloud lock released (release_lock_left_by_kill), so its destroy
        does not wait 20 minutes on a lock nobody holds.
        """
        chosen = list(self.applied if only is None else only)
        for workspace in workspaces.REVERSE_ORDER:
            if workspace in chosen:
                self.release_lock_left_by_kill(workspace)
        whole = workspaces.CLUSTER_WORKSPACE in chosen if sweep is None else sweep
        failures: list[str] = []
        self.cleaned_up = []
        pvc_problem: str | None = None  # reported at the end: deleting them after 01-network may settle it
        for workspace in workspaces.REVERSE_ORDER:
            if workspace not in chosen:
                continue
            LOG.info("teardown: destroying %s", workspace)
            hosts_cluster = workspaces.get(workspace).hosts_cluster
            try:
                if hosts_cluster:
                    self._destroy_network()
                else:
                    self.destroy(workspace)
            except Exception as exc:  # noqa: BLE001 (any failure: note it, go on with the next workspace)
                LOG.error("teardown: destroying %s failed, continuing with the next workspace: %s", workspace, exc)
                failures.append(f"{workspace}: {exc}")
            else:
                if hosts_cluster:
                    pvc_problem = self._delete_orphaned_pvc_volumes()
            if workspaces.get(workspace).in_cluster:
                pvc_problem = self._wait_for_pvc_volumes()
        if pvc_problem:
            failures.append(pvc_problem)
        found = None
        if whole:
            found, problem = self._sweep()
            if problem:
                failures.append(problem)
        if failures:
            deleted = f"\ndeleted on the way: {', '.join(self.cleaned_up)}" if self.cleaned_up else ""
            raise TeardownError(f"teardown left {len(failures)} problem(s) (logs in "
                                f"{self.run_dir / 'terraform'}); destroy them by hand or re-run "
                                "`python -m lfharness teardown`:\n" + "\n".join(failures) + deleted)
        return found


@dataclass
class TeardownReport:
    """What `teardown_workspaces` did: the workspaces it destroyed, those Terraform Cloud does not
    have (nothing to destroy), those it could not try and why, what it deleted on AWS itself (the
    node security group's CNI interfaces, orphaned PVC volumes), and whether the sweep ran."""

    tried: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    cleaned_up: list[str] = field(default_factory=list)
    sweep: aws_checks.Sweep | None = None
    sweep_note: str = ""

    def describe(self) -> str:
        """One line saying exactly what ran, for the command's closing message."""
        parts = [f"destroyed {', '.join(self.tried)}" if self.tried else "no workspace to destroy"]
        if self.absent:
            parts.append(f"not in Terraform Cloud: {', '.join(self.absent)}")
        if self.cleaned_up:
            parts.append(f"deleted what the cluster left: {', '.join(self.cleaned_up)}")
        parts.append(self.sweep_note)
        return "; ".join(parts)


def teardown_workspaces(tfc: TfcClient, stack: Stack) -> TeardownReport:
    """Destroys whatever the workspaces' states still hold, downstream first, with `stack`
    (Stack.teardown: each workspace with the cluster_enabled it is in, the PVC wait after 03-app, the
    leftover sweep at the end); idempotent.

    A workspace that does not exist in Terraform Cloud holds nothing and is skipped (`terraform
    init` would create it, in remote execution mode). One that exists is put back into local
    execution mode first: a remote run would not have the .env credentials (decision 3).
    Terraform Cloud refusing something for one workspace (a 403 on force-unlock, a 5xx) leaves
    that one out and the others are still destroyed; every problem is raised together at the end
    (TeardownError). The leftover sweep runs whenever there is an AWS session and every workspace
    could be tried, even when Terraform Cloud knows none of them (a wrong TFC_ORGANIZATION must
    not pass for a clean account). Destroying an empty state is a no-op, so running this twice is
    safe.
    """
    for workspace in ORDER:  # before any force-unlock: a Terraform a cancelled run left must end first
        tf.wait_for_live_terraform(stack.terraform_dir / workspace)
    report = TeardownReport()
    for workspace in ORDER:
        name = workspaces.get(workspace).tfc_name
        try:
            if tfc.get_workspace(name) is None:
                LOG.info("teardown: %s (%s) does not exist in Terraform Cloud: nothing to destroy", workspace, name)
                report.absent.append(workspace)
                continue
            tfc.ensure_workspace(name)
            killed = tf.killed_marker(stack.terraform_dir / workspace)
            if tfc.force_unlock_if_locked(name):
                LOG.warning("teardown: %s was locked by an interrupted run (a cancelled job kills Terraform "
                            "mid-apply%s); lock released so its state can be destroyed", name,
                            f"; the harness killed terraform {killed.get('subcommand')} there: {killed.get('why')}"
                            if killed else "")
            tf.clear_killed_marker(stack.terraform_dir / workspace)
        except TfcError as exc:
            LOG.error("teardown: Terraform Cloud refused %s (%s), so it is left out; continuing with the others: %s",
                      workspace, name, exc)
            report.refused[workspace] = str(exc)
            continue
        report.tried.append(workspace)
    run_sweep = stack.aws is not None and not report.refused
    if stack.aws is None:
        report.sweep_note = "leftover sweep not run: no AWS session"
    refused = "\n".join(f"{ws}: Terraform Cloud refused: {why}" for ws, why in report.refused.items())
    try:
        report.sweep = stack.teardown(tuple(report.tried), sweep=run_sweep)
    except TeardownError as exc:
        raise TeardownError("\n".join(filter(None, [str(exc), refused]))) from exc
    report.cleaned_up = list(stack.cleaned_up)
    if refused:
        # The sweep did not run: it would judge a stack that is not torn down.
        raise TeardownError(f"teardown could not try {len(report.refused)} workspace(s), so the leftover sweep did not "
                            f"run; fix the cause and re-run `python -m lfharness teardown`:\n{refused}")
    if run_sweep:
        report.sweep_note = "leftover sweep clean"
        unknown = report.sweep.unknown if report.sweep is not None else []
        if unknown:
            # Not waited on (the tagging API may list them long after they are gone), but named.
            report.sweep_note += (f" but for {len(unknown)} resource(s) of a kind it cannot judge, to check by hand: "
                                  + "; ".join(str(f) for f in unknown))
    return report


@dataclass
class UnlockReport:
    """What `unlock_workspaces` found: the Terraform of this machine still running per workspace (then
    nothing was released), the locks released, the workspaces not locked or not in Terraform Cloud,
    and what Terraform Cloud refused."""

    running: dict[str, procs.PidRecord] = field(default_factory=dict)
    released: list[str] = field(default_factory=list)
    free: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def unlock_workspaces(tfc: TfcClient, terraform_dir: Path = tf.TERRAFORM_DIR) -> UnlockReport:
    """Releases the stack's Terraform Cloud locks without destroying anything (`python -m lfharness
    unlock`): force-unlock for each workspace that is locked, none other touched. Refuses, releasing
    nothing, while a Terraform of this machine still runs on one of them (its pid record, checked alive:
    two Terraforms would write one state); a stale record is removed. Every workspace is tried even when
    Terraform Cloud refuses one. A released workspace loses its tf.KILLED_FILE mark."""
    report = UnlockReport()
    for workspace in ORDER:
        folder = terraform_dir / workspace
        live = tf.live_terraform(folder)
        if live is not None:
            LOG.error("unlock: %s (pid %d) still runs on %s: not releasing any lock; wait for it to end (or stop it: "
                      "`kill -INT %d`, once), then run unlock again", live.what, live.pid, workspace, live.pid)
            report.running[workspace] = live
    if report.running:
        return report
    for workspace in ORDER:
        folder = terraform_dir / workspace
        (folder / tf.PID_FILE).unlink(missing_ok=True)  # stale: its process has ended
        (folder / tf.SIGINT_FILE).unlink(missing_ok=True)
        name = workspaces.get(workspace).tfc_name
        killed = tf.killed_marker(folder)
        try:
            if tfc.get_workspace(name) is None:
                LOG.info("unlock: %s (%s) does not exist in Terraform Cloud: no lock", workspace, name)
                report.absent.append(workspace)
            elif tfc.force_unlock_if_locked(name):
                LOG.warning("unlock: %s (%s) was locked: lock released (force-unlock)%s; nothing destroyed", workspace,
                            name, f"; the harness had killed terraform {killed.get('subcommand')} there at "
                            f"{killed.get('killed_at')}" if killed else "")
                report.released.append(workspace)
            else:
                LOG.info("unlock: %s (%s) is not locked", workspace, name)
                report.free.append(workspace)
        except TfcError as exc:
            LOG.error("unlock: Terraform Cloud refused %s (%s): %s", workspace, name, exc)
            report.refused[workspace] = str(exc)
            continue
        tf.clear_killed_marker(folder)
    return report
