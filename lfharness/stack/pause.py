"""Pause and resume the stack (Journey 3, NFR8): the cluster goes, RDS, S3 and the secrets stay.

Pause applies 03-app -> 02-deps -> 01-network with cluster_enabled = false: the release and its
PVC volumes go while the EBS CSI driver still runs, then the node rule into RDS and the IRSA role,
then the cluster, its nodes and the KMS key. Resume applies 01 -> 02 -> 03 with true. Both read
the stack's state from the workspaces' outputs first and refuse to start when it is not what they
expect, and both end with a check against AWS.

The sequence functions take a Stack (anything with init / apply(variables=) / outputs) and a
boto3 session: the static tests drive them with a fake Stack and moto, the lifecycle tier with the
real Stack through real Terraform offline (lfharness/testing/lifecycle.py).
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

import requests

from lfharness.core import tf
from lfharness.core.wait import Stopwatch, WaitTimeout, retry
from lfharness.stack.aws_checks import pvc_volumes
from lfharness.stack.k8s import KubectlError
from lfharness.stack.workspaces import APP_WORKSPACE, CLUSTER_WORKSPACE, DATA_WORKSPACE, NAMESPACE, ORDER, REVERSE_ORDER

LOG = logging.getLogger("lfharness.stack.pause")

PAUSE_ORDER = REVERSE_ORDER
RESUME_ORDER = ORDER

# Node instances count as "left" in every state but terminated.
_LIVE_INSTANCE_STATES = ["pending", "running", "stopping", "stopped", "shutting-down"]


class PauseError(RuntimeError):
    """The stack is not in the state a pause/resume expects, or the end check found something left."""


class StackLike(Protocol):
    def init(self, workspace: str) -> None: ...

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None: ...

    def outputs(self, workspace: str) -> dict[str, Any]: ...


@dataclass(frozen=True)
class StackState:
    """What the workspaces' outputs say: "running", "paused", "partial" or "absent"."""

    kind: str
    cluster_name: str
    node_security_group_id: str | None
    rds_identifier: str | None
    bucket: str | None
    detail: str
    release: bool = False


def read_state(stack: StackLike) -> StackState:
    """The stack's state from the three workspaces' outputs (null outputs are absent keys)."""
    outputs: dict[str, dict[str, Any]] = {}
    for workspace in RESUME_ORDER:
        stack.init(workspace)
        outputs[workspace] = stack.outputs(workspace)
    net, deps, app = outputs[CLUSTER_WORKSPACE], outputs[DATA_WORKSPACE], outputs[APP_WORKSPACE]
    cluster = net.get("cluster_name") or ""
    release = app.get("namespace") is not None
    rds_endpoint = deps.get("rds_endpoint")
    # rds_endpoint is host:port and the host starts with the instance identifier.
    rds_identifier = rds_endpoint.split(":")[0].split(".")[0] if rds_endpoint else None
    common = {"cluster_name": cluster, "node_security_group_id": net.get("node_security_group_id"),
              "rds_identifier": rds_identifier, "bucket": deps.get("s3_bucket_name"), "release": release}
    if not net.get("vpc_id") or not rds_endpoint:
        missing = [ws for ws, key in ((CLUSTER_WORKSPACE, net.get("vpc_id")), (DATA_WORKSPACE, rds_endpoint)) if not key]
        return StackState("absent", detail=f"{', '.join(missing)} not applied", **common)
    if cluster and release:
        return StackState("running", detail=f"cluster {cluster} and the Langfuse release exist", **common)
    if not cluster and not release:
        return StackState("paused", detail="no cluster, no release; RDS and S3 kept", **common)
    what = (f"cluster {cluster} exists without the Langfuse release" if cluster
            else "the Langfuse release is in 03-app's state but there is no cluster")
    return StackState("partial", detail=what, **common)


# --- detached network interfaces holding the node security group ---------------------------

@dataclass
class EniReport:
    """Network interfaces in the node security group: the CNI leftovers deleted, the others kept."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)

    def describe_kept(self) -> str:
        return ", ".join(self.kept)


def _is_cni_leftover(eni: Mapping[str, Any], cluster_name: str) -> bool:
    # The VPC CNI describes its interfaces as "aws-K8S-<instance id>" and tags them with the cluster.
    tags = {t["Key"]: t["Value"] for t in eni.get("TagSet", [])}
    ours = (eni.get("Description", "").startswith("aws-K8S-")
            or tags.get("cluster.k8s.amazonaws.com/name") == cluster_name)
    return ours and eni.get("Status") == "available"


def release_node_security_group(session: Any, security_group_id: str, cluster_name: str) -> EniReport:
    """Deletes the detached VPC CNI interfaces that still reference the node security group (AWS
    refuses to delete a group an interface uses); lists every other interface instead."""
    ec2 = session.client("ec2")
    pages = ec2.get_paginator("describe_network_interfaces").paginate(
        Filters=[{"Name": "group-id", "Values": [security_group_id]}])
    report = EniReport()
    for eni in (e for page in pages for e in page["NetworkInterfaces"]):
        eni_id = eni["NetworkInterfaceId"]
        if _is_cni_leftover(eni, cluster_name):
            ec2.delete_network_interface(NetworkInterfaceId=eni_id)
            LOG.warning("deleted detached VPC CNI network interface %s (%s) that held %s", eni_id,
                        eni.get("Description", ""), security_group_id)
            report.deleted.append(eni_id)
        else:
            attached = eni.get("Attachment", {}).get("InstanceId", "not attached")
            report.kept.append(f"{eni_id} ({eni.get('Status')}, {attached}, {eni.get('Description', '')!r})")
    return report


# --- end checks ----------------------------------------------------------------------------

def _cluster_exists(session: Any, name: str) -> bool:
    eks = session.client("eks")
    try:
        eks.describe_cluster(name=name)
    except eks.exceptions.ResourceNotFoundException:
        return False
    return True


def _node_instances(session: Any, cluster_name: str) -> list[str]:
    pages = session.client("ec2").get_paginator("describe_instances").paginate(Filters=[
        {"Name": "tag:eks:cluster-name", "Values": [cluster_name]},
        {"Name": "instance-state-name", "Values": _LIVE_INSTANCE_STATES}])
    return [i["InstanceId"] for page in pages for r in page["Reservations"] for i in r["Instances"]]


def wait_for_pvc_volumes_gone(session: Any, *, timeout: float = 600, interval: float = 15) -> None:
    """After 03-app's pause: its PVC volumes must be gone before 01-network removes the EBS CSI
    driver, or they are orphaned (and billed) with nothing left to delete them."""
    try:
        retry(lambda: pvc_volumes(session), timeout=timeout, interval=interval,
              what=f"EBS volumes of namespace {NAMESPACE}'s PVCs deleted by the EBS CSI driver",
              validator=lambda left: not left)
    except WaitTimeout as exc:
        raise PauseError(f"03-app is paused but its PVC volumes are still there: {exc}. The cluster is kept so "
                         "the EBS CSI driver can still delete them: check its controller's log, delete the "
                         "volumes by hand if they are detached, then run `python -m lfharness pause` again") from exc


def paused_problems(session: Any, state: StackState) -> list[str]:
    """What contradicts "paused": a cluster or node instance left, a PVC volume left, RDS not
    available, bucket gone."""
    problems = []
    volumes = pvc_volumes(session)
    if volumes:
        problems.append(f"EBS volumes of the langfuse PVCs still there: {', '.join(volumes)}")
    if state.cluster_name and _cluster_exists(session, state.cluster_name):
        problems.append(f"EKS cluster {state.cluster_name} still exists")
    if state.cluster_name:
        left = _node_instances(session, state.cluster_name)
        if left:
            problems.append(f"node instances of {state.cluster_name} still there: {', '.join(left)}")
    rds = session.client("rds")
    try:
        status = rds.describe_db_instances(DBInstanceIdentifier=state.rds_identifier)["DBInstances"][0][
            "DBInstanceStatus"]
    except rds.exceptions.DBInstanceNotFoundFault:
        status = "not found"
    if status != "available":
        problems.append(f"RDS {state.rds_identifier} is {status}, expected available")
    s3 = session.client("s3")
    try:
        s3.head_bucket(Bucket=state.bucket)
    except s3.exceptions.ClientError as exc:
        problems.append(f"S3 bucket {state.bucket} not reachable: {exc.response['Error'].get('Code')}")
    return problems


def check_paused(session: Any, state: StackState, *, timeout: float = 600, interval: float = 15) -> None:
    """Waits until nothing contradicts "paused" (instances take a while to leave shutting-down)."""
    try:
        retry(lambda: paused_problems(session, state), timeout=timeout, interval=interval,
              what="paused stack: no cluster, no node instances, RDS available, bucket present",
              validator=lambda problems: not problems)
    except WaitTimeout as exc:
        raise PauseError(f"pause ended but the stack is not paused: {exc}") from exc


# --- the sequences ------------------------------------------------------------------------

def _apply(stack: StackLike, workspace: str, enabled: bool) -> None:
    flag = "true" if enabled else "false"
    with Stopwatch(f"{'resume' if enabled else 'pause'}: apply {workspace} with cluster_enabled={flag}",
                   logger=LOG):
        stack.apply(workspace, variables={"cluster_enabled": flag})


def _pause_network(stack: StackLike, session: Any, state: StackState) -> None:
    """01-network's pause; when AWS refuses to delete the node security group because detached VPC
    CNI interfaces still use it, deletes exactly those and applies once more."""
    try:
        _apply(stack, CLUSTER_WORKSPACE, enabled=False)
    except tf.TerraformError as exc:
        if not state.node_security_group_id:
            raise
        report = release_node_security_group(session, state.node_security_group_id, state.cluster_name)
        if report.kept:
            raise PauseError(
                f"01-network could not finish the pause, and the node security group {state.node_security_group_id} "
                f"is still used by network interfaces that are not detached VPC CNI leftovers: "
                f"{report.describe_kept()}. Delete them once they are detached (EC2 console, Network Interfaces, "
                "or boto3 delete_network_interface), then run `python -m lfharness pause` again.") from exc
        if not report.deleted:
            raise
        LOG.warning("pause: removed %d detached interface(s) %s; applying 01-network again",
                    len(report.deleted), ", ".join(report.deleted))
        _apply(stack, CLUSTER_WORKSPACE, enabled=False)


Quiesce = Callable[[], None]


def pause(stack: StackLike, session: Any, quiesce: Quiesce, *, check_timeout: float = 600,
          check_interval: float = 15) -> StackState:
    """03 -> 02 -> 01 with cluster_enabled = false, then the paused check. Returns the state before.

    `quiesce` runs first whenever the release and its cluster exist (clickhouse.Quiesce: Langfuse
    finishes what it accepted and ClickHouse stops, so its kept volume is consistent); when it
    fails nothing has been destroyed."""
    state = read_state(stack)
    LOG.info("pause: stack is %s (%s)", state.kind, state.detail)
    if state.kind == "absent":
        raise PauseError(f"nothing to pause: {state.detail}. Deploy first (apply 01-network, 02-deps, 03-app, "
                         "or `pytest -m e2e` with LFK8S_KEEP_STACK=1)")
    if state.kind == "paused":
        raise PauseError("already paused: no cluster and no Langfuse release; resume with `python -m lfharness resume`")
    if state.kind == "partial":
        LOG.warning("pause: %s (an interrupted pause or resume); pausing the rest", state.detail)
    with Stopwatch("pause", logger=LOG):
        if state.release and state.cluster_name:
            quiesce()
        elif state.release:
            LOG.warning("pause: the release is in 03-app's state but there is no cluster to stop it in; "
                        "whatever its queues held is gone with the cluster")
        for workspace in PAUSE_ORDER:
            if workspace == CLUSTER_WORKSPACE:
                _pause_network(stack, session, state)
            else:
                _apply(stack, workspace, enabled=False)
            if workspace == APP_WORKSPACE:
                wait_for_pvc_volumes_gone(session, timeout=check_timeout, interval=check_interval)
        check_paused(session, state, timeout=check_timeout, interval=check_interval)
    LOG.info("pause: done; EKS and its nodes are gone, RDS %s and bucket %s are kept",
             state.rds_identifier, state.bucket)
    return state


HealthCheck = Callable[[Mapping[str, Any]], int]
# 01-network's outputs and the zone of ClickHouse's volume -> one line when ClickHouse cannot be
# placed (no Ready node in that zone), else None (clickhouse.zone_problem on the cluster's nodes).
ZoneCheck = Callable[[Mapping[str, Any], str | None], str | None]


def resume(stack: StackLike, session: Any, health: HealthCheck, *, zone_check: ZoneCheck | None = None,
           health_timeout: float = 900, health_interval: float = 15) -> StackState:
    """01 -> 02 -> 03 with cluster_enabled = true, then Langfuse health 200. `health` gets 01-network's
    outputs and returns the HTTP status of /api/public/health. Before 03-app, `zone_check` stops
    the resume when ClickHouse's volume has no Ready node in its zone (instead of a Helm timeout)."""
    state = read_state(stack)
    LOG.info("resume: stack is %s (%s)", state.kind, state.detail)
    if state.kind == "absent":
        raise PauseError(f"nothing to resume: {state.detail}. A paused stack keeps 01-network's VPC and 02-deps; "
                         "deploy from scratch instead (apply 01-network, 02-deps, 03-app)")
    if state.kind == "running":
        raise PauseError(f"not paused: {state.detail}; nothing to resume")
    if state.kind == "partial":
        LOG.warning("resume: %s (an interrupted pause or resume); resuming the rest", state.detail)
    with Stopwatch("resume", logger=LOG):
        for workspace in RESUME_ORDER:
            if workspace == APP_WORKSPACE and zone_check is not None:
                problem = zone_check(stack.outputs(CLUSTER_WORKSPACE),
                                     stack.outputs(DATA_WORKSPACE).get("clickhouse_volume_zone"))
                if problem:
                    raise PauseError(f"01-network and 02-deps are resumed, 03-app is not: {problem}")
            _apply(stack, workspace, enabled=True)
        network = stack.outputs(CLUSTER_WORKSPACE)
        try:
            # Only what a cluster still coming up raises is retried; anything else (a bad kubeconfig
            # path, a bug) fails at once instead of after the whole wait as "not healthy".
            retry(lambda: health(network), timeout=health_timeout, interval=health_interval,
                  what="Langfuse /api/public/health through a port-forward", validator=lambda status: status == 200,
                  retry_on=(KubectlError, requests.RequestException))
        except WaitTimeout as exc:
            raise PauseError(f"resume applied all three workspaces but Langfuse is not healthy: {exc}") from exc
    LOG.info("resume: done; Langfuse answers 200 on /api/public/health")
    return read_state(stack)
