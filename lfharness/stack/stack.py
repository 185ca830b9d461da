"""The deployed stack: terraform per workspace against Terraform Cloud, in dependency order."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfharness.core import envfile, hcl, redact, tf
from lfharness.core.tfc import TfcClient, TfcError
from lfharness.core.wait import WaitTimeout, retry
from lfharness.stack import aws_checks, workspaces
from lfharness.stack.workspaces import CLUSTER_NAME, NAMESPACE, ORDER, PROJECT_TAG

LOG = logging.getLogger("lfharness.stack.stack")

KEEP_ENV = "LFK8S_KEEP_STACK"  # "1": keep the stack after the run, for debugging (Terratest style)

CLUSTER_LOG_GROUP = f"/aws/eks/{CLUSTER_NAME}/cluster"  # 01-network's logs.tf; EKS re-creates it after a destroy
LOG_GROUP_ADDRESS = "aws_cloudwatch_log_group.eks"  # where 01-network's state holds it
# Resources that live inside the cluster: once it is gone they cannot be deleted, only forgotten.
KUBERNETES_SIDE_TYPES = ("helm_", "kubernetes_")


class TeardownError(RuntimeError):
    """One or more workspaces could not be destroyed; each failure is listed, downstream first."""


def _var_args(variables: dict[str, str] | None) -> list[str]:
    """`-var k=v` arguments, in a stable order so the run logs compare."""
    return [f"-var={key}={value}" for key, value in sorted((variables or {}).items())]


# A lock still held by a Terraform that outlived its Python parent (a cancelled run) is waited
# for, not failed on at once.
LOCK_TIMEOUT = "-lock-timeout=20m"


# Subcommands that print values of the current state (a plan's or destroy's old values, among them
# helm_release.metadata.values, which the helm provider does not mark sensitive): the state's
# secrets are learned before they run. An apply also creates secrets: learned again after it.
PRINTS_STATE = ("plan", "apply", "destroy", "refresh")


class Stack:
    """init / apply / plan / output / destroy per workspace, logs kept in the run folder.

    `redactor` (default: a new one) learns the .env secrets, every sensitive output read here and
    the secrets of each workspace's state, and masks them in every run log and error (NFR1).
    `aws` (a boto3 session on the same account) is for the AWS side of a teardown and of applying
    01-network: the PVC volumes waited for after 03-app, the leftover sweep at the end, a control-plane
    log group EKS re-created removed before 01-network is applied. Without one (throwaway local
    workspaces) those steps are skipped with a log line.
    """

    def __init__(self, settings: envfile.Settings, run_dir: Path, terraform_dir: Path = tf.TERRAFORM_DIR,
                 extra_env: dict[str, str] | None = None, redactor: redact.Redactor | None = None, *,
                 aws: Any = None, pvc_timeout: float = 600, sweep_timeout: float = 900,
                 poll_interval: float = 30) -> None:
        self.redactor = redactor if redactor is not None else redact.Redactor()
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
        self._initialised: set[str] = set()
        self._learned: dict[str, str] = {}  # workspace -> digest of the local state file last learned from

    def _cmd(self, workspace: str, *args: str, ok: tuple[int, ...] = (0,)) -> tf.Result:
        if args[0] in PRINTS_STATE:
            self._learn_state(workspace)

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
            found = self.redactor.learn_state(json.loads(shown.stdout or "{}"))
        except (tf.TerraformError, json.JSONDecodeError) as exc:
            LOG.warning("could not read the %s state to learn its secrets, so the next run log may hold some "
                        "the harness has not seen yet: %s", workspace, exc)
            return
        if digest is not None:
            self._learned[workspace] = digest
        LOG.debug("%s: %d secret value(s) known from the state", workspace, found)

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
        try:
            self._cmd(workspace, "apply", "-auto-approve", "-input=false", "-no-color", LOCK_TIMEOUT,
                      *_var_args(variables))
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
        read, and its strings come back as redact.Secret (masked in reprs)."""
        raw = json.loads(self._cmd(workspace, "output", "-json").stdout)
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
        """After 03-app: its PVC volumes must be gone before 01-network removes the EBS CSI driver,
        or nothing is left to delete them. Returns the failure, if any."""
        if self.aws is None:
            LOG.info("teardown: no AWS session (local workspaces): PVC volumes not checked")
            return None
        try:
            retry(lambda: aws_checks.pvc_volumes(self.aws), timeout=self.pvc_timeout, interval=self.poll_interval,
                  what=f"EBS volumes of namespace {NAMESPACE}'s PVCs deleted by the EBS CSI driver",
                  validator=lambda left: not left)
        except WaitTimeout as exc:
            LOG.error("teardown: PVC volumes still there after 03-app, continuing: %s", exc)
            return (f"PVC volumes: {exc}; once the cluster is gone nothing deletes them: delete them by hand "
                    "(EC2 console, Volumes, tag kubernetes.io/created-for/pvc/namespace=langfuse)")
        return None

    def _sweep(self) -> tuple[aws_checks.Sweep | None, str | None]:
        """The leftover sweep that ends a teardown; a log group EKS re-created is deleted on the way."""
        if self.aws is None:
            LOG.info("teardown: no AWS session (local workspaces): leftover sweep not run")
            return None, None
        try:
            return aws_checks.wait_for_clean_sweep(self.aws, *PROJECT_TAG, log_groups=(CLUSTER_LOG_GROUP,),
                                                   iam_tags=aws_checks.stack_tags(self.organization),
                                                   remove_recreated=True, timeout=self.sweep_timeout,
                                                   interval=self.poll_interval), None
        except aws_checks.CheckError as exc:
            LOG.error("teardown: leftover sweep not clean: %s", exc)
            return None, f"leftover sweep: {exc}"

    def teardown(self, only: tuple[str, ...] | None = None, *, sweep: bool | None = None) -> aws_checks.Sweep | None:
        """Destroys what this run applied (or `only`), downstream first (FR27), each with the
        cluster_enabled it is in; after 03-app waits for its PVC volumes, and ends with the leftover
        sweep (returned; None without an AWS session) when `sweep` says so, by default when
        01-network was part of it.

        Every workspace is tried even when one before it fails: a failed 03-app destroy must not
        leave RDS and EKS running. Each failure is logged as it happens and all are raised
        together at the end (TeardownError). Ctrl-C is not a failure: it ends the teardown.
        """
        chosen = list(self.applied if only is None else only)
        whole = workspaces.CLUSTER_WORKSPACE in chosen if sweep is None else sweep
        failures: list[str] = []
        for workspace in workspaces.REVERSE_ORDER:
            if workspace not in chosen:
                continue
            LOG.info("teardown: destroying %s", workspace)
            try:
                self.destroy(workspace)
            except Exception as exc:  # noqa: BLE001 (any failure: note it, go on with the next workspace)
                LOG.error("teardown: destroying %s failed, continuing with the next workspace: %s", workspace, exc)
                failures.append(f"{workspace}: {exc}")
            if workspaces.get(workspace).in_cluster:
                problem = self._wait_for_pvc_volumes()
                if problem:
                    failures.append(problem)
        found = None
        if whole:
            found, problem = self._sweep()
            if problem:
                failures.append(problem)
        if failures:
            raise TeardownError(f"teardown left {len(failures)} problem(s) (logs in "
                                f"{self.run_dir / 'terraform'}); destroy them by hand or re-run "
                                "`python -m lfharness teardown`:\n" + "\n".join(failures))
        return found


@dataclass
class TeardownReport:
    """What `teardown_workspaces` did: the workspaces it destroyed, those Terraform Cloud does not
    have (nothing to destroy), those it could not try and why, and whether the sweep ran."""

    tried: list[str] = field(default_factory=list)
    absent: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)
    sweep: aws_checks.Sweep | None = None
    sweep_note: str = ""

    def describe(self) -> str:
        """One line saying exactly what ran, for the command's closing message."""
        parts = [f"destroyed {', '.join(self.tried)}" if self.tried else "no workspace to destroy"]
        if self.absent:
            parts.append(f"not in Terraform Cloud: {', '.join(self.absent)}")
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
            if tfc.force_unlock_if_locked(name):
                LOG.warning("teardown: %s was locked by an interrupted run (a cancelled job kills Terraform "
                            "mid-apply); lock released so its state can be destroyed", name)
        except TfcError as exc:
            LOG.error("teardown: Terraform Cloud refused %s (%s), so it is left out; continuing with the others: %s",
                      workspace, name, exc)
            report.refused[workspace] = str(exc)
            continue
        report.tried.append(workspace)
    run_sweep = stack.aws is not None and not report.refused
    if stack.aws is None:
        report.sweep_note = "leftover sweep not run: no AWS session"
    elif report.refused:
        report.sweep_note = f"leftover sweep not run: {', '.join(report.refused)} could not be destroyed"
    refused = "\n".join(f"{ws}: Terraform Cloud refused: {why}" for ws, why in report.refused.items())
    try:
        report.sweep = stack.teardown(tuple(report.tried), sweep=run_sweep)
    except TeardownError as exc:
        raise TeardownError("\n".join(filter(None, [str(exc), refused]))) from exc
    if refused:
        raise TeardownError(f"teardown could not try {len(report.refused)} workspace(s); fix the cause and re-run "
                            f"`python -m lfharness teardown`:\n{refused}")
    if run_sweep:
        report.sweep_note = "leftover sweep clean"
    return report
