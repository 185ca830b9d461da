"""Pause and resume (Journey 3, NFR8): what the operator is told at each refusal, warning and end
check, and which interfaces, instances and states count (static tier).

Two stand-ins, as in test_pause.py: a fake Stack whose outputs follow its applies the way the three
workspaces' do (cluster outputs gone when 01-network is paused, `namespace` when 03-app is), and
moto's server for EKS, EC2, RDS and S3 (conftest's `moto` fixture, shared by the session: each test
names its own resources and deletes the volumes it makes).
"""

from __future__ import annotations

import logging
import re
import secrets
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest
import requests

from lfharness.core import tf
from lfharness.stack import pause
from lfharness.stack.k8s import KubectlError

pytestmark = pytest.mark.static

REGION = "us-east-1"
NETWORK, DEPS, APP = "01-network", "02-deps", "03-app"


class FakeStack:
    """Records applies; `apply` changes the outputs as the real workspaces would; `fail` maps a
    workspace to what its next applies raise (a failed terraform apply). As with Terraform, a
    workspace's outputs cannot be read before it is initialised."""

    def __init__(self, names: dict[str, str], *, cluster: bool = True, release: bool = True,
                 node_sg: str | None = "sg-0123456789abcdef0") -> None:
        self._cluster: dict[str, Any] = {"cluster_name": names["cluster"]}
        if node_sg:
            self._cluster["node_security_group_id"] = node_sg
        self._outputs: dict[str, dict[str, Any]] = {
            NETWORK: {"vpc_id": "vpc-1"},
            DEPS: {"rds_endpoint": f"{names['rds']}.c1x2y3.{REGION}.rds.amazonaws.com:5432",
                   "s3_bucket_name": names["bucket"], "clickhouse_volume_zone": f"{REGION}b"},
            APP: {}}
        self._set(NETWORK, cluster)
        self._set(APP, release)
        self.applied: list[tuple[str, str]] = []
        self.fail: dict[str, list[Exception]] = {}
        self.quiesced = 0
        self.initialised: set[str] = set()

    def _set(self, workspace: str, enabled: bool) -> None:
        out = self._outputs[workspace]
        if workspace == NETWORK:
            # Terraform stores no null outputs; cluster_name becomes "".
            for key in self._cluster:
                out.pop(key, None)
            out.update(self._cluster if enabled else {"cluster_name": ""})
        elif workspace == APP:
            out.pop("namespace", None)
            if enabled:
                out["namespace"] = "langfuse"

    def init(self, workspace: str) -> None:
        self.initialised.add(workspace)

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        flag = (variables or {})["cluster_enabled"]
        self.applied.append((workspace, flag))
        if self.fail.get(workspace):
            raise self.fail[workspace].pop(0)
        self._set(workspace, flag == "true")

    def outputs(self, workspace: str) -> dict[str, Any]:
        if workspace not in self.initialised:
            raise RuntimeError(f"{workspace}: terraform output before terraform init")
        return dict(self._outputs[workspace])

    def quiesce(self) -> None:
        self.quiesced += 1


def _eni(aws, net: dict[str, str], description: str, tags: dict[str, str] | None = None) -> str:
    extra = ({"TagSpecifications": [{"ResourceType": "network-interface",
                                     "Tags": [{"Key": k, "Value": v} for k, v in tags.items()]}]} if tags else {})
    return aws.client("ec2").create_network_interface(SubnetId=net["subnet"], Groups=[net["sg"]],
                                                      Description=description, **extra)["NetworkInterface"][
        "NetworkInterfaceId"]


def _instance(aws, cluster: str, net: dict[str, str]) -> str:
    return aws.client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=net["subnet"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "eks:cluster-name", "Value": cluster}]}],
    )["Instances"][0]["InstanceId"]


@pytest.fixture
def pvc_volumes(aws) -> Iterator[Callable[[], str]]:
    """Makes EBS volumes as the EBS CSI driver does for a langfuse PVC; deletes them at the end."""
    made: list[str] = []

    def make() -> str:
        made.append(aws.client("ec2").create_volume(
            AvailabilityZone=f"{REGION}a", Size=8, VolumeType="gp3",
            TagSpecifications=[{"ResourceType": "volume", "Tags": [
                {"Key": "Project", "Value": "langfuse-k8s-cluster"},
                {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": "langfuse"}]}])["VolumeId"])
        return made[-1]

    yield make
    for volume in made:
        try:
            aws.client("ec2").delete_volume(VolumeId=volume)
        except aws.client("ec2").exceptions.ClientError:
            pass  # already deleted by the test


def _messages(caplog: pytest.LogCaptureFixture, level: int) -> list[str]:
    return [r.getMessage() for r in caplog.records if r.name == "lfharness.stack.pause" and r.levelno == level]


# --- the state read from the outputs -------------------------------------------------------------

def test_the_state_names_the_kept_rds_instance_and_bucket(names):
    """NFR8: the RDS identifier is the endpoint's first label, the bucket its output (fake Stack)."""
    state = pause.read_state(FakeStack(names))
    assert (state.kind, state.cluster_name, state.rds_identifier, state.bucket) == (
        "running", names["cluster"], names["rds"], names["bucket"])


def _undeployed(names: dict[str, str], *applied: str) -> FakeStack:
    """A stack whose workspaces other than `applied` have no outputs (never applied, or destroyed)."""
    stack = FakeStack(names)
    for workspace in (NETWORK, DEPS, APP):
        if workspace not in applied:
            stack._outputs[workspace] = {}
    return stack


@pytest.mark.parametrize(("applied", "detail"), [
    ((), "01-network, 02-deps not applied"),
    ((NETWORK,), "02-deps not applied"),
    ((DEPS,), "01-network not applied"),
], ids=["nothing", "network only", "deps only"])
def test_an_undeployed_stack_says_which_workspaces_are_not_applied(names, applied, detail):
    """Journey 3: status and the refusals name the workspaces whose outputs are missing (fake Stack)."""
    state = pause.read_state(_undeployed(names, *applied))
    assert (state.kind, state.detail) == ("absent", detail)


@pytest.mark.parametrize(("cluster", "release", "detail"), [
    (True, False, "cluster {cluster} exists without the Langfuse release"),
    (False, True, "the Langfuse release is in 03-app's state but there is no cluster"),
], ids=["cluster without release", "release without cluster"])
def test_a_half_paused_stack_says_which_half_is_left(names, cluster, release, detail):
    """Journey 3: an interrupted pause or resume is "partial", naming what exists (fake Stack)."""
    state = pause.read_state(FakeStack(names, cluster=cluster, release=release))
    assert (state.kind, state.detail) == ("partial", detail.format(**names))


def test_a_running_and_a_paused_stack_say_what_they_hold(names):
    """Journey 3: running names the cluster and the release; paused says RDS and S3 are kept (fake Stack)."""
    running = pause.read_state(FakeStack(names))
    paused = pause.read_state(FakeStack(names, cluster=False, release=False))
    assert (running.detail, paused.kind, paused.detail) == (
        f"cluster {names['cluster']} and the Langfuse release exist", "paused", "no cluster, no release; RDS and S3 kept")


# --- refusals ------------------------------------------------------------------------------------

@pytest.mark.parametrize(("action", "message"), [
    ("pause", "nothing to pause: 01-network, 02-deps not applied. Deploy first (apply 01-network, 02-deps, "
              "03-app, or `pytest -m e2e` with LFK8S_KEEP_STACK=1)"),
    ("resume", "nothing to resume: 01-network, 02-deps not applied. A paused stack keeps 01-network's VPC and "
               "02-deps; deploy from scratch instead (apply 01-network, 02-deps, 03-app)"),
])
def test_an_undeployed_stack_is_refused_with_what_to_do_instead(names, action, message):
    """Journey 3: the refusal names what is missing and how to deploy (fake Stack; no AWS call)."""
    stack = _undeployed(names)
    run = {"pause": lambda: pause.pause(stack, None, stack.quiesce),
           "resume": lambda: pause.resume(stack, None, health=lambda network: 200)}[action]
    with pytest.raises(pause.PauseError) as raised:
        run()
    assert (str(raised.value), stack.applied) == (message, [])


def test_a_second_pause_says_how_to_resume(names):
    """Journey 3: pausing a paused stack points to `python -m lfharness resume` (fake Stack)."""
    stack = FakeStack(names, cluster=False, release=False)
    with pytest.raises(pause.PauseError) as raised:
        pause.pause(stack, None, stack.quiesce)
    assert str(raised.value) == ("already paused: no cluster and no Langfuse release; resume with "
                                 "`python -m lfharness resume`")


def test_resuming_a_running_stack_says_what_is_running(names):
    """Journey 3: the refusal names the running cluster (fake Stack)."""
    with pytest.raises(pause.PauseError) as raised:
        pause.resume(FakeStack(names), None, health=lambda network: 200)
    assert str(raised.value) == (f"not paused: cluster {names['cluster']} and the Langfuse release exist; "
                                 "nothing to resume")


# --- the paused check -------------------------------------------------------------------------

def test_every_pvc_volume_left_is_named(names, aws, pvc_volumes):
    """Journey 3, NFR8: PVC volumes still there after the pause are listed by id (moto)."""
    first, second = pvc_volumes(), pvc_volumes()
    problems = pause.paused_problems(aws, pause.read_state(FakeStack(names)))
    assert problems == [f"EBS volumes of the langfuse PVCs still there: {first}, {second}"]


def test_node_instances_left_are_named_with_their_cluster(names, aws, net):
    """Journey 3, NFR8: every node instance not terminated is reported, by id, under its cluster (moto)."""
    running, stopped = _instance(aws, names["cluster"], net), _instance(aws, names["cluster"], net)
    aws.client("ec2").stop_instances(InstanceIds=[stopped])
    problems = pause.paused_problems(aws, pause.read_state(FakeStack(names)))
    assert problems == [f"node instances of {names['cluster']} still there: {running}, {stopped}"]


def test_a_terminated_node_instance_is_not_left(names, aws, net):
    """Journey 3: a terminated instance is gone (it stays listed for a while in EC2) (moto)."""
    gone = _instance(aws, names["cluster"], net)
    aws.client("ec2").terminate_instances(InstanceIds=[gone])
    assert pause.paused_problems(aws, pause.read_state(FakeStack(names))) == []


def test_another_clusters_instances_are_not_counted(names, aws, net):
    """Journey 3: only instances tagged with this stack's cluster name count (moto)."""
    _instance(aws, names["cluster"] + "-other", net)
    assert pause.paused_problems(aws, pause.read_state(FakeStack(names))) == []


def test_rds_not_available_is_named_with_its_status(names, aws):
    """Journey 3, NFR8: RDS must be available through the pause; a stopped instance is reported
    with its status, an absent one as not found (moto)."""
    aws.client("rds").stop_db_instance(DBInstanceIdentifier=names["rds"])
    stopped = pause.paused_problems(aws, pause.read_state(FakeStack(names)))
    gone = pause.paused_problems(aws, pause.read_state(FakeStack(names | {"rds": names["rds"] + "-x"})))
    assert (stopped, gone) == ([f"RDS {names['rds']} is stopped, expected available"],
                               [f"RDS {names['rds']}-x is not found, expected available"])


def test_a_missing_bucket_is_named_with_s3s_answer(names, aws):
    """Journey 3, NFR8: the bucket must survive the pause; a missing one is reported with S3's code (moto)."""
    state = pause.read_state(FakeStack(names | {"bucket": names["bucket"] + "-gone"}))
    assert pause.paused_problems(aws, state) == [f"S3 bucket {names['bucket']}-gone not reachable: 404"]


def test_a_pause_whose_end_check_fails_says_what_was_awaited(names, aws, net):
    """Journey 3, NFR8: the pause's error names the check and what was still there (fake Stack, moto)."""
    _instance(aws, names["cluster"], net)
    with pytest.raises(pause.PauseError) as raised:
        pause.check_paused(aws, pause.read_state(FakeStack(names)), timeout=0.2, interval=0.1)
    message = str(raised.value)
    assert message.startswith("pause ended but the stack is not paused: gave up waiting for paused stack: no "
                              "cluster, no node instances, RDS available, bucket present after ")
    assert f"node instances of {names['cluster']} still there" in message


def test_pvc_volumes_that_stay_stop_the_pause_with_what_to_do(aws, pvc_volumes):
    """Journey 3: the error says the cluster is kept for the EBS CSI driver and how to go on (moto)."""
    volume = pvc_volumes()
    with pytest.raises(pause.PauseError) as raised:
        pause.wait_for_pvc_volumes_gone(aws, timeout=0.2, interval=0.1)
    message = str(raised.value)
    assert message.startswith("03-app is paused but its PVC volumes are still there: gave up waiting for EBS "
                              "volumes of namespace langfuse's PVCs deleted by the EBS CSI driver after ")
    assert volume in message
    assert message.endswith(". The cluster is kept so the EBS CSI driver can still delete them: check its "
                            "controller's log, delete the volumes by hand if they are detached, then run "
                            "`python -m lfharness pause` again")


# --- interfaces holding the node security group -------------------------------------------------

def test_interfaces_of_other_security_groups_are_left_alone(names, aws, net):
    """Journey 3: only the node security group's interfaces are looked at; a detached VPC CNI
    interface in another group is neither deleted nor named (moto)."""
    ec2 = aws.client("ec2")
    other = dict(net, sg=ec2.create_security_group(GroupName=f"other-{secrets.token_hex(4)}", Description="other",
                                                   VpcId=net["vpc"])["GroupId"])
    elsewhere = _eni(aws, other, "aws-K8S-i-0123456789abcdef0")
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    found = ec2.describe_network_interfaces(NetworkInterfaceIds=[elsewhere])["NetworkInterfaces"]
    assert (report.deleted, report.kept, len(found)) == ([], [], 1)


def test_a_detached_interface_tagged_with_the_cluster_is_deleted(names, aws, net):
    """Journey 3: the VPC CNI tags its interfaces with the cluster; a detached one is deleted whatever
    its description (moto)."""
    tagged = _eni(aws, net, "", {"cluster.k8s.amazonaws.com/name": names["cluster"]})
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert (report.deleted, report.kept) == ([tagged], [])


def test_an_interface_tagged_with_another_cluster_is_kept(names, aws, net):
    """Journey 3: another cluster's interface is not this stack's to delete (moto)."""
    other = _eni(aws, net, "", {"cluster.k8s.amazonaws.com/name": names["cluster"] + "-other"})
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert (report.deleted, report.kept) == ([], [f"{other} (available, not attached, '')"])


def test_an_attached_vpc_cni_interface_is_kept_and_named_with_its_instance(names, aws, net):
    """Journey 3: an interface still in use is never deleted; it is named with its status and instance (moto)."""
    eni = _eni(aws, net, "aws-K8S-i-0123456789abcdef0")
    instance = _instance(aws, names["cluster"], net)
    aws.client("ec2").attach_network_interface(NetworkInterfaceId=eni, InstanceId=instance, DeviceIndex=1)
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert (report.deleted, report.kept) == ([], [f"{eni} (in-use, {instance}, 'aws-K8S-i-0123456789abcdef0')"])


def test_each_deleted_interface_is_logged_with_the_group_it_held(names, aws, net, caplog):
    """Journey 3: the run log says which interface was deleted and why (moto)."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.pause")
    eni = _eni(aws, net, "aws-K8S-i-0123456789abcdef0")
    pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert _messages(caplog, logging.WARNING) == [
        f"deleted detached VPC CNI network interface {eni} (aws-K8S-i-0123456789abcdef0) that held {net['sg']}"]


def test_a_pause_held_by_foreign_interfaces_names_them_all(names, aws, net):
    """Journey 3: every interface the pause may not delete is named, with what to do (fake Stack, moto)."""
    first, second = _eni(aws, net, "debug one"), _eni(aws, net, "debug two")
    stack = FakeStack(names, cluster=True, release=False, node_sg=net["sg"])
    stack.fail[NETWORK] = [tf.TerraformError("DependencyViolation")]
    with pytest.raises(pause.PauseError) as raised:
        pause.pause(stack, aws, stack.quiesce, check_timeout=0.2, check_interval=0.1)
    assert str(raised.value) == (
        f"01-network could not finish the pause, and the node security group {net['sg']} is still used by network "
        f"interfaces that are not detached VPC CNI leftovers: {first} (available, not attached, 'debug one'), "
        f"{second} (available, not attached, 'debug two'). Delete them once they are detached (EC2 console, "
        "Network Interfaces, or boto3 delete_network_interface), then run `python -m lfharness pause` again.")


@pytest.mark.parametrize("node_sg", [None, "held-by-nothing"], ids=["no node group output", "no interfaces"])
def test_a_network_apply_that_fails_for_another_reason_fails_the_pause_with_terraforms_error(
        names, aws, net, node_sg):
    """Journey 3: without a node group to free, or with nothing in it, Terraform's own error ends
    the pause after one apply of 01-network (fake Stack, moto)."""
    stack = FakeStack(names, release=False, node_sg=net["sg"] if node_sg else None)
    stack.fail[NETWORK] = [tf.TerraformError("Error: creating the NAT gateway timed out")]
    with pytest.raises(tf.TerraformError, match="NAT gateway timed out"):
        pause.pause(stack, aws, stack.quiesce, check_timeout=0.2, check_interval=0.1)
    assert stack.applied == [(APP, "false"), (DEPS, "false"), (NETWORK, "false")]


def test_a_pause_that_freed_the_group_says_so_and_applies_network_again(names, aws, net, caplog):
    """Journey 3: after deleting the leftovers the pause logs them and applies 01-network once more (fake Stack, moto)."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.pause")
    first, second = _eni(aws, net, "aws-K8S-i-01"), _eni(aws, net, "aws-K8S-i-02")
    stack = FakeStack(names, release=False, node_sg=net["sg"])
    stack.fail[NETWORK] = [tf.TerraformError("DependencyViolation")]
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=0.1)
    assert f"pause: removed 2 detached interface(s) {first}, {second}; applying 01-network again" in _messages(
        caplog, logging.WARNING)
    assert stack.applied == [(APP, "false"), (DEPS, "false"), (NETWORK, "false"), (NETWORK, "false")]


# --- the sequences' lines -----------------------------------------------------------------------

def test_each_apply_of_a_pause_is_timed_under_its_workspace_and_flag(names, aws, caplog):
    """Journey 3: the run log names each workspace applied and the flag it got, and the pause's end
    says what is kept (fake Stack, moto)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.pause")
    state = pause.pause(FakeStack(names), aws, lambda: None, check_timeout=5, check_interval=0.1)
    infos = _messages(caplog, logging.INFO)
    assert [m for m in infos if m.startswith("pause: apply") and m.endswith(" ...")] == [
        f"pause: apply {ws} with cluster_enabled=false ..." for ws in (APP, DEPS, NETWORK)]
    assert infos[0] == f"pause: stack is running (cluster {names['cluster']} and the Langfuse release exist)"
    assert infos[-1] == f"pause: done; EKS and its nodes are gone, RDS {names['rds']} and bucket {names['bucket']} are kept"
    assert state.kind == "running"  # the state before


def test_each_apply_of_a_resume_is_timed_under_its_workspace_and_flag(names, aws, caplog):
    """Journey 3: the resume's lines name each workspace with cluster_enabled=true and its end (fake Stack)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.pause")
    state = pause.resume(FakeStack(names, cluster=False, release=False), aws, health=lambda network: 200)
    infos = _messages(caplog, logging.INFO)
    assert [m for m in infos if m.startswith("resume: apply") and m.endswith(" ...")] == [
        f"resume: apply {ws} with cluster_enabled=true ..." for ws in (NETWORK, DEPS, APP)]
    assert (infos[0], infos[-1]) == ("resume: stack is paused (no cluster, no release; RDS and S3 kept)",
                                     "resume: done; Langfuse answers 200 on /api/public/health")
    assert state.kind == "running"  # the state after


def _gone_after(seconds: float, delete: Callable[[], Any]) -> threading.Timer:
    timer = threading.Timer(seconds, delete)
    timer.start()
    return timer


def test_a_pause_looks_again_for_pvc_volumes_at_the_interval_it_was_given(names, aws, pvc_volumes):
    """Journey 3: the wait for 03-app's PVC volumes to go looks again every check_interval, so a
    volume the EBS CSI driver deletes a moment after 03-app's apply holds the pause up that moment,
    not a default 15 s poll (fake Stack, moto server; the volume is deleted 0.5 s in)."""
    volume = pvc_volumes()
    timer = _gone_after(0.5, lambda: aws.client("ec2").delete_volume(VolumeId=volume))
    started = time.monotonic()
    pause.pause(FakeStack(names), aws, lambda: None, check_timeout=60, check_interval=0.1)
    timer.join()
    assert time.monotonic() - started < 10


def test_a_pause_looks_again_at_the_stack_at_the_interval_it_was_given(names, aws, net):
    """Journey 3: the paused check looks again every check_interval, so a node instance that takes a
    moment to leave shutting-down holds the pause up that moment, not a default 15 s poll (fake
    Stack, moto server; the instance is terminated 0.5 s in)."""
    instance = _instance(aws, names["cluster"], net)
    timer = _gone_after(0.5, lambda: aws.client("ec2").terminate_instances(InstanceIds=[instance]))
    started = time.monotonic()
    pause.pause(FakeStack(names), aws, lambda: None, check_timeout=60, check_interval=0.1)
    timer.join()
    assert time.monotonic() - started < 10


def test_a_pause_logs_its_total_time_under_the_pause_module(names, aws, caplog):
    """Journey 3, NFR4 (progress with elapsed time): the run log times the whole pause, from
    "pause ..." to "pause ... done in Ns", in the pause module's lines (fake Stack, moto)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.pause")
    pause.pause(FakeStack(names), aws, lambda: None, check_timeout=5, check_interval=0.1)
    totals = [m for m in _messages(caplog, logging.INFO) if re.fullmatch(r"pause \.\.\.( done in \d+\.\ds)?", m)]
    assert [re.sub(r"\d+\.\d", "N", m) for m in totals] == ["pause ...", "pause ... done in Ns"]


def test_a_resume_logs_its_total_time_under_the_pause_module(names, aws, caplog):
    """Journey 3, NFR4: the run log times the whole resume, from "resume ..." to "resume ... done in
    Ns", in the pause module's lines (fake Stack)."""
    caplog.set_level(logging.INFO, logger="lfharness.stack.pause")
    pause.resume(FakeStack(names, cluster=False, release=False), aws, health=lambda network: 200)
    totals = [m for m in _messages(caplog, logging.INFO) if re.fullmatch(r"resume \.\.\.( done in \d+\.\ds)?", m)]
    assert [re.sub(r"\d+\.\d", "N", m) for m in totals] == ["resume ...", "resume ... done in Ns"]


@pytest.mark.parametrize(("action", "cluster", "release", "warning"), [
    ("pause", True, False, "pause: cluster {cluster} exists without the Langfuse release (an interrupted pause or "
                           "resume); pausing the rest"),
    ("resume", True, False, "resume: cluster {cluster} exists without the Langfuse release (an interrupted pause or "
                            "resume); resuming the rest"),
    ("pause", False, True, "pause: the Langfuse release is in 03-app's state but there is no cluster (an "
                           "interrupted pause or resume); pausing the rest"),
])
def test_an_interrupted_run_is_finished_with_a_warning_naming_what_was_left(names, aws, caplog, action, cluster,
                                                                             release, warning):
    """Journey 3: a partial stack is paused or resumed the rest of the way, saying so first (fake Stack, moto)."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.pause")
    stack = FakeStack(names, cluster=cluster, release=release)
    if action == "pause":
        pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=0.1)
    else:
        pause.resume(stack, aws, health=lambda network: 200)
    assert _messages(caplog, logging.WARNING)[0] == warning.format(**names)


def test_a_release_without_its_cluster_is_paused_with_a_warning_that_its_queues_are_lost(names, aws, caplog):
    """Decision 24: nothing can be quiesced without the cluster; the operator is told what is lost (fake Stack, moto)."""
    caplog.set_level(logging.WARNING, logger="lfharness.stack.pause")
    stack = FakeStack(names, cluster=False, release=True)
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=0.1)
    assert ("pause: the release is in 03-app's state but there is no cluster to stop it in; whatever its queues "
            "held is gone with the cluster") in _messages(caplog, logging.WARNING)
    assert stack.quiesced == 0


def test_a_cluster_without_its_release_is_paused_without_a_quiesce(names, aws):
    """Decision 24: with no release there is no Langfuse to drain; the pause goes on (fake Stack, moto)."""
    stack = FakeStack(names, cluster=True, release=False)
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=0.1)
    assert stack.quiesced == 0


# --- resume's checks ---------------------------------------------------------------------------

def test_the_zone_check_gets_the_resumed_network_and_the_volumes_zone(names, aws):
    """Decision 24: the check sees 01-network's outputs after its resume and 02-deps' volume zone;
    when it finds nothing wrong 03-app is applied (fake Stack)."""
    seen: list[tuple[str, str | None]] = []

    def zone_ok(network: dict[str, Any], zone: str | None) -> None:
        seen.append((network["cluster_name"], zone))

    stack = FakeStack(names, cluster=False, release=False)
    pause.resume(stack, aws, health=lambda network: 200, zone_check=zone_ok)
    assert (seen, stack.applied[-1]) == ([(names["cluster"], f"{REGION}b")], (APP, "true"))


@pytest.mark.parametrize("error", [KubectlError("error: unable to forward port"),
                                   requests.ConnectionError("connection refused")], ids=["kubectl", "http"])
def test_resume_waits_out_a_cluster_still_coming_up(names, aws, error):
    """Journey 3, FR22: kubectl and HTTP errors while the cluster comes up are retried until 200 (fake Stack)."""
    answers: list[Exception | int] = [error, 200]

    def health(network: dict[str, Any]) -> int:
        answer = answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer

    state = pause.resume(FakeStack(names, cluster=False, release=False), aws, health=health,
                         health_timeout=5, health_interval=0.05)
    assert (state.kind, answers) == ("running", [])


def test_a_resume_that_never_gets_healthy_says_what_it_awaited(names, aws):
    """Journey 3, FR22: the error says the three workspaces are applied and the health check was awaited (fake Stack)."""
    with pytest.raises(pause.PauseError) as raised:
        pause.resume(FakeStack(names, cluster=False, release=False), aws, health=lambda network: 503,
                     health_timeout=0.1, health_interval=0.05)
    assert str(raised.value).startswith("resume applied all three workspaces but Langfuse is not healthy: gave up "
                                        "waiting for Langfuse /api/public/health through a port-forward after ")
