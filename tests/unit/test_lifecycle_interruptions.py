"""Issue 24's teardown, offline, through real Terraform runs that are interrupted, killed or refused
(the lifecycle tier; lfharness/testing/lifecycle.py describes the rig).

What runs is the harness's own code: tf.run's Ctrl-C forwarding, grace and kill records, Stack.apply /
destroy / teardown, stack.teardown_workspaces with tf.wait_for_live_terraform, the node security
group's release and the orphaned PVC volumes' deletion. What Terraform meets is the provider stand-in
told (its "behaviours", lfharness/testing/provider/README.md) to be slow, to ignore cancellation, or
to fail a delete with an AWS error, on servers of the scenarios' own (StandInBehaviours); so the
states Terraform leaves are its own partial ones, not exceptions raised in Python. AWS is moto, in
an account of its own per stack, holding besides what the outputs say what the stack leaked there:
the VPC CNI's detached interfaces, PVC volumes the EBS CSI driver never deleted.

What this cannot see: how long AWS and Helm really take and whether they honour a cancel (the
delays are chosen here: a few seconds for minutes), which AWS refusals really happen (each is
modelled after terraform-provider-aws's message for it), and AWS's own eventual consistency; only a
run against a real account shows those.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from lfharness.core import procs, tf
from lfharness.stack.stack import ORDER, TeardownError, teardown_workspaces
from lfharness.testing import lifecycle, plan

pytestmark = pytest.mark.lifecycle

_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

EMPTY = {workspace: [] for workspace in ORDER}
APP = "03-app"


def _watch(type_name: str, operation: str, **match: str) -> dict:
    """A rule with no effect: the stand-in only records the calls it takes in its journal."""
    return {"type": type_name, "operation": operation, **({"match": match} if match else {})}


@pytest.fixture(scope="module")
def rig(workbench, moto, tmp_path_factory) -> Iterator[lifecycle.LifecycleRig]:
    """The three workspaces prepared once for this module."""
    try:
        with lifecycle.LifecycleRig(workbench, tmp_path_factory.mktemp("interruptions"), moto) as prepared:
            yield prepared
    except plan.PlanUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def behaviours(workbench, tmp_path_factory) -> Iterator[lifecycle.StandInBehaviours]:
    """Stand-in servers of this module's own, whose rules each scenario sets."""
    with lifecycle.StandInBehaviours(workbench, tmp_path_factory.mktemp("behaviours")) as servers:
        yield servers


@pytest.fixture(scope="module")
def deployed(rig, behaviours, tmp_path_factory) -> dict[str, lifecycle.Snapshot]:
    """The three states after each workspace's apply, 01 -> 02 -> 03 (no rule: every call at once)."""
    stack = behaviours.use(rig.stack(tmp_path_factory.mktemp("deploy-run"), replan=False))
    behaviours.set()
    after: dict[str, lifecycle.Snapshot] = {}
    for workspace in ORDER:
        stack.apply(workspace)
        after[workspace] = stack.snapshot()
    return after


def _stack(rig, behaviours, run_dir: Path, states: lifecycle.Snapshot, **kwargs) -> lifecycle.LocalStack:
    """A stack on the scenario servers from `states`, with short AWS waits."""
    stack = behaviours.use(rig.stack(run_dir, replan=False, **{"sweep_timeout": 1, "poll_interval": 0.5, **kwargs}))
    stack.restore(states)
    return stack


# --- item 2: a Helm uninstall that ignores Ctrl-C --------------------------------------------------

def test_a_helm_uninstall_deaf_to_ctrl_c_is_killed_after_its_grace_recorded_and_the_suites_teardown_goes_on(
        rig, behaviours, deployed, tmp_path, monkeypatch):
    """Issue 24 item 2, FR27: Ctrl-C during 03-app's destroy while Helm's uninstall ignores it: the
    harness waits out 03-app's grace (1.5 s here instead of the Helm timeout plus two minutes),
    kills Terraform, says so (TerraformInterrupted.killed) and records it (tf.KILLED_FILE); the
    suite's own teardown (Stack.teardown, the e2e finalizer's, here of 03-app) then releases what the
    killed Terraform held, removes the record and destroys the workspace: its state ends empty. With
    the cloud backend the held lock is the Terraform Cloud fake's and the teardown force-unlocks it;
    with a local backend the lock went with the killed process. Stand-ins: the provider stand-in's
    helm_release delete ignoring cancellation for 8 s, once; moto, the Terraform Cloud fake."""
    # A lock left held fails the teardown in 5 s, not after the harness's 20 minutes (LocalStack's option).
    stack = _stack(rig, behaviours, tmp_path / "run", deployed[APP], lock_timeout="-lock-timeout=5s")
    behaviours.set({"type": "helm_release", "operation": "delete", "times": 1, "delay_seconds": 8,
                    "ignore_cancel": True})
    monkeypatch.setitem(tf.WORKSPACE_GRACE, (APP, "destroy"), 1.5)
    undo = procs.handle_termination()
    try:
        lifecycle.interrupt_this_process_when(lambda: "delete started" in behaviours.events("helm_release"),
                                              timeout=120, what="03-app's Helm uninstall")
        with pytest.raises(tf.TerraformInterrupted) as interrupted:
            stack.destroy(APP)
    finally:
        undo()
    recorded = tf.killed_marker(stack.terraform_dir / APP)
    stack.teardown((APP,))
    assert (interrupted.value.killed, (recorded or {}).get("subcommand"), tf.killed_marker(stack.terraform_dir / APP),
            stack.resources()[APP]) == (True, "destroy", None, [])


# --- item 8: the runner's SIGINT, then SIGKILL, then the teardown ---------------------------------

def test_after_the_runners_sigint_and_sigkill_the_teardown_lets_terraform_record_the_release_then_destroys_it(
        rig, behaviours, deployed, tmp_path, monkeypatch):
    """Issue 24 item 8, FR27, NFR8: a GitHub cancel during 03-app's Helm install sends the harness
    SIGINT (forwarded to Terraform as its one SIGINT and recorded), then kills the harness while
    Terraform, in its own session, still waits for Helm. The teardown finds it running and, since it
    already got its SIGINT, sends none (a second one makes Terraform exit at once without recording
    the release) even once its live wait is over (600 s, 1 s here, so that moment comes while Helm
    still runs); so Terraform records the release Helm finished, and the teardown destroys it with
    everything else: every state ends empty and the release the stand-in made is the one it deleted.
    Stand-ins: the provider stand-in's helm_release create ignoring cancellation for 5 s (Helm's
    install runs with context.Background()), a second harness process (start_harness_process),
    moto, the Terraform Cloud fake."""
    stack = _stack(rig, behaviours, tmp_path / "run", deployed["02-deps"])
    behaviours.set({"type": "helm_release", "operation": "create", "delay_seconds": 5, "ignore_cancel": True},
                   _watch("helm_release", "delete"))
    monkeypatch.setattr(tf, "LIVE_WAIT", 1.0)
    harness = lifecycle.start_harness_process(stack, APP, tmp_path / "harness.log")
    try:
        behaviours.wait_for("helm_release", "create started", timeout=120)
        lifecycle.end_harness_process(harness, stack.terraform_dir, APP, timeout=30, forwarded=lambda: (
            "create cancel_ignored" in behaviours.events("helm_release")))
    finally:
        if harness.poll() is None:
            harness.kill()
    left_running = tf.live_terraform(stack.terraform_dir / APP)
    teardown_workspaces(rig.tfc(), stack)
    assert (left_running is not None, stack.resources(), behaviours.events("helm_release")) == (
        True, EMPTY, ["create started", "create cancel_ignored", "create done", "delete started", "delete done"])


def test_a_sigint_mid_create_leaves_terraforms_partial_state_and_the_teardown_empties_it(
        rig, behaviours, deployed, tmp_path):
    """Issue 24 (the rig must see real interruptions), FR27: Ctrl-C while 01-network's EKS cluster is
    being created, forwarded by the harness as one SIGINT; the aws provider's wait ends on
    Terraform's stop, so Terraform keeps the cluster as tainted, writes the partial state (VPC and
    the rest made, nothing that needs the cluster) and exits; TerraformInterrupted says it wrote its
    state. The suite's own teardown (Stack.teardown of what the run applied, the e2e finalizer's)
    destroys the tainted cluster with the rest from that state and every state ends empty. Stand-ins: the provider stand-in's aws_eks_cluster create taking 60 s unless
    cancelled, moto, the Terraform Cloud fake."""
    stack = _stack(rig, behaviours, tmp_path / "run", {})
    behaviours.set({"type": "aws_eks_cluster", "operation": "create", "delay_seconds": 60},
                   _watch("aws_eks_cluster", "delete"))
    undo = procs.handle_termination()  # this test's Ctrl-C, not the session's "already stopping"
    try:
        lifecycle.interrupt_this_process_when(lambda: "create started" in behaviours.events("aws_eks_cluster"),
                                              timeout=120, what="01-network's EKS cluster being created")
        with pytest.raises(tf.TerraformInterrupted) as interrupted:
            stack.apply("01-network")
    finally:
        undo()
    partial = stack.resources()["01-network"]
    stack.teardown()
    assert ("after writing its state" in str(interrupted.value), "module.eks.aws_eks_cluster.this" in partial,
            len(partial) > 1, stack.resources(), behaviours.events("aws_eks_cluster")) == (
        True, True, True, EMPTY, ["create started", "create interrupted", "delete started", "delete done"])


# --- items 4 and 5: what the cluster leaves behind in AWS -------------------------------------------

@dataclass
class LeftBehind:
    group: str
    interfaces: list[str]  # the VPC CNI's leftovers moto held in the node security group
    pvc: list[str]  # the PVC volume the EBS CSI driver never deleted
    clickhouse: list[str]  # ClickHouse's volume, 02-deps'
    first_error: str  # the first teardown's TeardownError
    after_first: dict[str, list[str]]  # states, interfaces in the group, volumes after it
    cleaned_up: list[str]
    group_deletes: list[str]  # the stand-in's journal of the node security group's deletes
    second_error: str | None  # the second teardown's TeardownError, if any
    after_second: dict[str, list[str]]


@pytest.fixture(scope="module")
def left_behind(rig, behaviours, deployed, tmp_path_factory) -> LeftBehind:
    """A stack whose 03-app an earlier teardown destroyed, torn down with what the cluster left in
    AWS (moto): two detached VPC CNI interfaces in the node security group, and Valkey's claim's
    volume `available`, which the EBS CSI driver never deleted; ClickHouse's volume (02-deps')
    refuses its delete once (VolumeInUse: its node still holds it). The first teardown fails at
    02-deps, meets the group's refusal in 01-network's destroy and goes on; the second is the
    re-run its message asks for. Stand-ins: moto (VolumeFollower: ClickHouse's volume while 02-deps'
    state holds it), the provider stand-in's aws_security_group and aws_ebs_volume deletes, the
    Terraform Cloud fake."""
    run = tmp_path_factory.mktemp("left-behind-run")
    stack = behaviours.use(rig.stack(run, replan=False, pvc_timeout=0.5, sweep_timeout=1, poll_interval=0.5))
    follower = lifecycle.volume_follower(stack)
    stack.restore(deployed["02-deps"])
    outputs = stack.state_outputs("01-network")
    group, cluster = outputs["node_security_group_id"][0], outputs["cluster_name"][0]
    interfaces = lifecycle.leave_cni_interfaces(stack.aws, group, cluster)
    pvc = lifecycle.leave_pvc_volumes(stack.aws, ["valkey-data-langfuse-redis-primary-0"])
    clickhouse = follower.clickhouse_volumes()

    def world() -> dict[str, list[str]]:
        return {**stack.resources(), "interfaces": lifecycle.interfaces_in(stack.aws, group),
                "volumes": sorted(lifecycle.volumes(stack.aws))}

    with lifecycle.WhileInterfacesHeld(stack.aws, group, run / "held") as held:
        behaviours.set({"type": "aws_security_group", "operation": "delete", "match": {"id": group},
                        "while_file": str(held.marker),
                        "fail": {"code": "DependencyViolation", "message": "resource {id} has a dependent object"}},
                       _watch("aws_security_group", "delete", id=group),
                       {"type": "aws_ebs_volume", "operation": "delete", "times": 1,
                        "match": {"tags.Name": lifecycle.CLICKHOUSE_VOLUME_TAGS["Name"]},
                        "fail": {"code": "VolumeInUse", "message": "Volume {id} is currently attached to i-0standin"}})
        with pytest.raises(TeardownError) as first:
            teardown_workspaces(rig.tfc(), stack)
    after_first, cleaned_up = world(), list(stack.cleaned_up)
    group_deletes = behaviours.events("aws_security_group")
    second = None
    try:
        teardown_workspaces(rig.tfc(), stack)
    except TeardownError as exc:
        second = str(exc)
    return LeftBehind(group, interfaces, pvc, clickhouse, str(first.value), after_first, cleaned_up, group_deletes,
                      second, world())


def test_teardown_releases_the_cni_interfaces_that_make_the_node_groups_delete_fail_and_destroys_01_network(
        left_behind):
    """Issue 24 item 4, FR27, NFR8: while moto holds the detached VPC CNI interfaces in the node
    security group, its delete fails as AWS refuses it (DependencyViolation), so 01-network's first
    destroy fails with Terraform's own partial state. The teardown deletes those interfaces (the
    pause's release), lists them as cleaned up and destroys 01-network once more: its state ends
    empty. Modelled: the refusal lasts while moto holds an interface in the group (a watcher removes
    the stand-in's condition file once it holds none); not modelled: the aws provider's 15-minute
    retry before it reports the refusal. Stand-ins: moto, the provider stand-in."""
    v = left_behind
    cleaned = sorted(i for i in v.interfaces if any(i in line for line in v.cleaned_up))
    assert (len(v.interfaces), v.after_first["01-network"], v.after_first["interfaces"], cleaned, v.group_deletes) == (
        2, [], [], sorted(v.interfaces), ["delete started", "delete failed", "delete started", "delete done"])


def test_once_01_network_is_gone_the_teardown_deletes_the_pvc_volumes_no_driver_is_left_to_delete(left_behind):
    """Issue 24 item 5, NFR8: in the teardown whose 02-deps destroy failed, once 01-network is
    destroyed the langfuse namespace's `available` PVC volume moto held is deleted by the teardown
    and listed in what it cleaned up. Stand-ins: moto, the provider stand-in."""
    v = left_behind
    cleaned = [volume for volume in v.pvc if any(volume in line for line in v.cleaned_up)]
    assert (len(v.pvc), [x for x in v.pvc if x in v.after_first["volumes"]], cleaned) == (1, [], v.pvc)


def test_clickhouses_volume_is_not_one_of_the_pvc_volumes_the_teardown_deletes(left_behind):
    """Issue 24 item 5, issue "Nothing the user makes is lost", decision 24: ClickHouse's volume,
    available too once the cluster is gone, is 02-deps' to delete: the teardown whose 02-deps destroy
    failed (VolumeInUse) deletes the PVC volume after 01-network and keeps ClickHouse's. Stand-ins:
    moto (VolumeFollower), the provider stand-in."""
    v = left_behind
    assert (len(v.clickhouse), bool(re.search(r"02-deps: .*VolumeInUse", v.first_error, re.DOTALL)),
            [x for x in v.clickhouse if x in v.after_first["volumes"]]) == (1, True, v.clickhouse)


def test_the_next_teardown_destroys_02_deps_and_clickhouses_volume_once_01_network_is_gone(left_behind):
    """Issue 24 item 5, FR27, NFR8: after that failed teardown, the next one (`python -m lfharness
    teardown` again, as its message says) destroys what 02-deps still holds, ClickHouse's volume
    with it, though 01-network no longer exists (02-deps reads 01-network's outputs null-safe, its
    subnet lookup counted): every state ends empty and moto holds no volume.
    Stand-ins: moto (VolumeFollower), the provider stand-in, the Terraform Cloud fake."""
    v = left_behind
    assert (v.second_error, v.after_second) == (None, {**EMPTY, "interfaces": [], "volumes": []})
