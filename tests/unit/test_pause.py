"""Pause and resume (Journey 3, NFR8): the sequence, its refusals and its end checks (static tier).

Two stand-ins: a fake Stack that records init/apply calls and answers `outputs` the way the three
workspaces do (cluster outputs disappear when 01-network is paused, `namespace` when 03-app is),
and moto's server for EKS, EC2, RDS and S3 (conftest's `moto` fixture). Each test names its own
resources, since the moto server is shared by the session.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from lfharness import commands
from lfharness.core import tf
from lfharness.stack import pause

pytestmark = pytest.mark.static

REGION = "us-east-1"


class FakeStack:
    """Records calls; `apply` changes the outputs as the real workspaces would, and runs `on_apply`
    hooks so a test can make AWS (moto) follow, or make an apply fail."""

    def __init__(self, outputs: dict[str, dict[str, Any]]) -> None:
        self._outputs = {ws: dict(values) for ws, values in outputs.items()}
        self._paused_cluster = {k: v for k, v in outputs["01-network"].items()
                                if k not in ("vpc_id", "public_subnet_ids")}
        self.calls: list[tuple[str, str, dict[str, str] | None]] = []
        self.on_apply: dict[str, Callable[[bool], None]] = {}

    def init(self, workspace: str) -> None:
        self.calls.append(("init", workspace, None))

    def applies(self) -> list[tuple[str, str]]:
        return [(ws, (variables or {}).get("cluster_enabled", "")) for kind, ws, variables in self.calls
                if kind == "apply"]

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        self.calls.append(("apply", workspace, variables))
        enabled = (variables or {}).get("cluster_enabled", "true") == "true"
        hook = self.on_apply.get(workspace)
        if hook is not None:
            hook(enabled)  # may raise, as a failed terraform apply does
        out = self._outputs[workspace]
        if workspace == "01-network":
            if enabled:
                out.update(self._paused_cluster)
            else:
                # Terraform does not store null outputs; cluster_name becomes "".
                for key in self._paused_cluster:
                    out.pop(key, None)
                out["cluster_name"] = ""
        elif workspace == "02-deps":
            if enabled:
                out["irsa_role_arn"] = "arn:aws:iam::123456789012:role/langfuse-s3"
            else:
                out.pop("irsa_role_arn", None)
        elif workspace == "03-app":
            if enabled:
                out["namespace"] = "langfuse"
            else:
                out.pop("namespace", None)

    def outputs(self, workspace: str) -> dict[str, Any]:
        return dict(self._outputs[workspace])

    def quiesce(self) -> None:
        """What pause runs before 03-app's apply (clickhouse.Quiesce on a real cluster)."""
        self.calls.append(("quiesce", "03-app", None))


def _running(cluster: str, rds: str, bucket: str, node_sg: str = "sg-0123456789abcdef0") -> dict[str, dict[str, Any]]:
    return {
        "01-network": {"vpc_id": "vpc-1", "public_subnet_ids": ["subnet-1", "subnet-2"], "cluster_name": cluster,
                       "cluster_endpoint": "https://example.eks.amazonaws.com", "cluster_ca_data": "Q0E=",
                       "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/x",
                       "node_security_group_id": node_sg},
        "02-deps": {"rds_endpoint": f"{rds}.c1x2y3.us-east-1.rds.amazonaws.com:5432", "s3_bucket_name": bucket,
                    "s3_bucket_region": REGION, "irsa_role_arn": "arn:aws:iam::123456789012:role/langfuse-s3"},
        "03-app": {"namespace": "langfuse", "health_url": "http://localhost:3000/api/public/health"},
    }


def _paused(cluster: str, rds: str, bucket: str) -> FakeStack:
    stack = FakeStack(_running(cluster, rds, bucket))
    for workspace in pause.PAUSE_ORDER:
        stack.apply(workspace, variables={"cluster_enabled": "false"})
    stack.calls.clear()
    return stack


def _eni(session, net: dict[str, str], description: str) -> str:
    created = session.client("ec2").create_network_interface(SubnetId=net["subnet"], Groups=[net["sg"]],
                                                             Description=description)
    return created["NetworkInterface"]["NetworkInterfaceId"]


def _eni_ids(session, sg: str) -> set[str]:
    found = session.client("ec2").describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [sg]}])
    return {e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]}


def _cluster(session, name: str, net: dict[str, str]) -> None:
    session.client("eks").create_cluster(name=name, roleArn="arn:aws:iam::123456789012:role/eks",
                                         resourcesVpcConfig={"subnetIds": [net["subnet"]]})


def _node(session, cluster: str, net: dict[str, str]) -> str:
    return session.client("ec2").run_instances(
        ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=net["subnet"],
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "eks:cluster-name", "Value": cluster}]}],
    )["Instances"][0]["InstanceId"]


# --- state and refusals ----------------------------------------------------------------------

def test_state_of_a_deployed_stack_is_running(names):
    """Journey 3: cluster name and release namespace in the outputs -> running (fake Stack)."""
    assert pause.read_state(FakeStack(_running(**names))).kind == "running"


def test_state_after_the_three_paused_applies_is_paused(names):
    """Journey 3: empty cluster_name and no namespace output, RDS and bucket outputs kept -> paused (fake Stack)."""
    state = pause.read_state(_paused(**names))
    assert (state.kind, state.rds_identifier, state.bucket) == ("paused", names["rds"], names["bucket"])


def test_resume_refuses_a_running_stack_without_applying_anything(names, aws):
    """Journey 3: resume of a running stack stops with "not paused" before any apply (fake Stack, moto)."""
    stack = FakeStack(_running(**names))
    with pytest.raises(pause.PauseError, match="not paused"):
        pause.resume(stack, aws, health=lambda network: 200)
    assert stack.applies() == []


def test_pause_refuses_an_already_paused_stack_without_applying_anything(names, aws):
    """Journey 3: a second pause stops with "already paused" and applies nothing (fake Stack, moto)."""
    stack = _paused(**names)
    with pytest.raises(pause.PauseError, match="already paused"):
        pause.pause(stack, aws, stack.quiesce)
    assert stack.applies() == []


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_a_stack_that_was_never_deployed_is_refused(action, names, aws):
    """Journey 3, NFR8: with no 01-network/02-deps outputs there is nothing to pause or resume (fake Stack, moto)."""
    stack = FakeStack({"01-network": {}, "02-deps": {}, "03-app": {}})
    run = {"pause": lambda: pause.pause(stack, aws, stack.quiesce),
           "resume": lambda: pause.resume(stack, aws, health=lambda network: 200)}[action]
    with pytest.raises(pause.PauseError, match="nothing to"):
        run()
    assert stack.applies() == []


# --- the sequences -----------------------------------------------------------------------------

def test_pause_applies_app_then_deps_then_network_with_the_cluster_disabled(names, aws):
    """Journey 3, decision 18: pause = 03-app -> 02-deps -> 01-network, each with cluster_enabled=false
    (fake Stack; moto holds the kept RDS and bucket)."""
    stack = FakeStack(_running(**names))
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=1)
    assert stack.applies() == [("03-app", "false"), ("02-deps", "false"), ("01-network", "false")]


def test_resume_applies_network_then_deps_then_app_with_the_cluster_enabled(names, aws):
    """Journey 3, decision 18: resume = 01-network -> 02-deps -> 03-app, each with cluster_enabled=true (fake Stack)."""
    stack = _paused(**names)
    pause.resume(stack, aws, health=lambda network: 200, health_timeout=5, health_interval=1)
    assert stack.applies() == [("01-network", "true"), ("02-deps", "true"), ("03-app", "true")]


def test_resume_waits_for_health_200_from_the_resumed_cluster(names, aws):
    """Journey 3, FR22: the resume check retries the health endpoint until 200, asking the resumed
    cluster's endpoint (fake Stack, fake health answers 503 then 200)."""
    answers, asked = iter([503, 503, 200]), []

    def health(network):
        asked.append(network["cluster_name"])
        return next(answers)

    pause.resume(_paused(**names), aws, health=health, health_timeout=10, health_interval=0.01)
    assert asked == [names["cluster"]] * 3


def test_resume_stops_at_once_on_an_error_that_is_not_a_cluster_coming_up(names, aws):
    """Journey 3: only kubectl and HTTP errors are waited out; any other error from the health
    check (here a missing file) fails at once with itself, not after the whole wait as "not
    healthy" (fake Stack)."""
    def health(network):
        raise FileNotFoundError("no such kubeconfig folder")

    with pytest.raises(FileNotFoundError, match="kubeconfig"):
        pause.resume(_paused(**names), aws, health=health, health_timeout=30, health_interval=0.01)


def test_the_resume_health_check_writes_its_kubeconfig_and_reaches_kubectl(tmp_path):
    """Journey 3: the real health check creates its folder, writes the exec kubeconfig and runs
    kubectl port-forward, whose refusal (nothing listens at the endpoint) is a kubectl error the
    resume waits out. Against the real kubectl and a closed loopback port."""
    from lfharness.core import envfile
    from lfharness.stack import k8s

    settings = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com",
                                "Ops", "correct-horse-battery")
    check = commands.port_forward_health(settings, tmp_path / "resume" / "new")
    network = {"cluster_endpoint": "https://127.0.0.1:9", "cluster_ca_data": "", "cluster_name": "langfuse"}
    with pytest.raises(k8s.KubectlError):
        check(network)
    assert (tmp_path / "resume" / "new" / "kubeconfig").exists()


def test_resume_that_never_gets_health_200_fails_naming_the_check(names, aws):
    """Journey 3, FR22: all three workspaces applied but no 200 -> an error saying Langfuse is not
    healthy (fake Stack)."""
    with pytest.raises(pause.PauseError, match="not healthy"):
        pause.resume(_paused(**names), aws, health=lambda network: 503, health_timeout=0.2, health_interval=0.05)


def test_an_interrupted_pause_is_finished(names, aws):
    """Journey 3: cluster still there but the release already gone (pause stopped after 03-app) -> pause
    goes on through all three workspaces (fake Stack, moto)."""
    stack = FakeStack(_running(**names))
    stack.apply("03-app", variables={"cluster_enabled": "false"})
    stack.calls.clear()
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=1)
    assert [ws for ws, _ in stack.applies()] == list(pause.PAUSE_ORDER)


# --- end check of a pause --------------------------------------------------------------------

def test_paused_check_passes_with_no_cluster_and_rds_and_bucket_kept(names, aws):
    """Journey 3, NFR8: no EKS cluster, no node instances, RDS available, bucket present -> nothing reported (moto)."""
    assert pause.paused_problems(aws, pause.read_state(FakeStack(_running(**names)))) == []


def test_paused_check_reports_a_cluster_that_is_still_there(names, aws, net):
    """Journey 3, NFR8: an EKS cluster of that name left after the pause is reported (moto)."""
    _cluster(aws, names["cluster"], net)
    problems = pause.paused_problems(aws, pause.read_state(FakeStack(_running(**names))))
    assert problems == [f"EKS cluster {names['cluster']} still exists"]


def test_paused_check_reports_node_instances_left_by_id(names, aws, net):
    """Journey 3, NFR8: a running instance tagged eks:cluster-name=<cluster> is reported by id (moto)."""
    instance = _node(aws, names["cluster"], net)
    problems = pause.paused_problems(aws, pause.read_state(FakeStack(_running(**names))))
    assert len(problems) == 1 and instance in problems[0]


def test_paused_check_reports_a_missing_bucket(names, aws):
    """Journey 3: the S3 bucket must survive the pause; a missing one is reported (moto)."""
    state = pause.read_state(FakeStack(_running(names["cluster"], names["rds"], names["bucket"] + "-gone")))
    assert [p for p in pause.paused_problems(aws, state) if "S3 bucket" in p]


def test_paused_check_reports_rds_that_is_not_there(names, aws):
    """Journey 3: RDS must stay available through the pause; an absent instance is reported (moto)."""
    state = pause.read_state(FakeStack(_running(names["cluster"], names["rds"] + "-gone", names["bucket"])))
    assert [p for p in pause.paused_problems(aws, state) if "expected available" in p]


def test_pause_fails_when_its_end_check_finds_the_cluster(names, aws, net):
    """Journey 3, NFR8: the pause ends with the check; a cluster still in AWS fails it (fake Stack, moto)."""
    _cluster(aws, names["cluster"], net)
    with pytest.raises(pause.PauseError, match="not paused"):
        pause.pause(FakeStack(_running(**names)), aws, lambda: None, check_timeout=0.2, check_interval=0.05)


# --- detached interfaces holding the node security group -------------------------------------

def test_detached_vpc_cni_interfaces_in_the_node_group_are_deleted(names, aws, net):
    """Journey 3: detached "aws-K8S-" interfaces still in the node security group are deleted (moto)."""
    leftover = _eni(aws, net, "aws-K8S-i-0123456789abcdef0")
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert (report.deleted, _eni_ids(aws, net["sg"])) == ([leftover], set())


def test_interfaces_not_made_by_the_vpc_cni_are_named_and_kept(names, aws, net):
    """Journey 3: an interface someone else made in that group is listed by id, never deleted (moto)."""
    foreign = _eni(aws, net, "my debugging interface")
    report = pause.release_node_security_group(aws, net["sg"], names["cluster"])
    assert (report.deleted, foreign in report.describe_kept(), _eni_ids(aws, net["sg"])) == ([], True, {foreign})


def test_pause_deletes_detached_cni_interfaces_and_applies_network_again(names, aws, net):
    """Journey 3: 01-network's apply fails on the held security group; the detached CNI interface
    is deleted and 01-network applied once more (fake Stack failing once, moto)."""
    _eni(aws, net, "aws-K8S-i-0fedcba9876543210")
    stack = FakeStack(_running(**names, node_sg=net["sg"]))
    attempts = []

    def fail_while_held(enabled: bool) -> None:
        attempts.append(enabled)
        if _eni_ids(aws, net["sg"]):
            raise tf.TerraformError("DependencyViolation: resource sg has a dependent object")

    stack.on_apply["01-network"] = fail_while_held
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=1)
    assert (attempts, _eni_ids(aws, net["sg"])) == ([False, False], set())


def test_pause_stops_naming_interfaces_it_may_not_delete(names, aws, net):
    """Journey 3: when the held group has a foreign interface, the pause stops with its id and what
    to do, and does not retry (fake Stack failing, moto)."""
    foreign = _eni(aws, net, "my debugging interface")
    stack = FakeStack(_running(**names, node_sg=net["sg"]))

    def fail(enabled: bool) -> None:
        raise tf.TerraformError("DependencyViolation")

    stack.on_apply["01-network"] = fail
    with pytest.raises(pause.PauseError, match=foreign) as err:
        pause.pause(stack, aws, stack.quiesce, check_timeout=1, check_interval=0.5)
    assert "python -m lfharness pause" in str(err.value)
    assert [ws for ws, _ in stack.applies()].count("01-network") == 1


@pytest.mark.parametrize("command", [commands.pause_command, commands.resume_command])
def test_commands_without_a_complete_env_exit_2_naming_the_missing_keys(command, tmp_path, caplog):
    """Journey 3, FR23: pause/resume act on the deployed stack, so a .env without the cloud keys stops
    them before any Terraform Cloud or terraform call, naming the keys (a .env file is the stand-in)."""
    env = tmp_path / ".env"
    env.write_text("AWS_DEFAULT_REGION=us-east-1\n")
    assert command(env, tmp_path / "runs") == 2
    assert ("TFE_TOKEN" in caplog.text, (tmp_path / "runs").exists()) == (True, False)


def _pvc_volume(session) -> str:
    """An EBS volume as the EBS CSI driver makes it for a langfuse PVC (its tags included)."""
    return session.client("ec2").create_volume(
        AvailabilityZone=f"{REGION}a", Size=8, VolumeType="gp3",
        TagSpecifications=[{"ResourceType": "volume", "Tags": [
            {"Key": "Project", "Value": "langfuse-k8s-cluster"},
            {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": "langfuse"}]}])["VolumeId"]


def test_paused_check_reports_a_pvc_volume_left_behind(names, aws):
    """Journey 3, NFR8: a volume of a langfuse PVC still there after the pause is reported by id (moto)."""
    volume = _pvc_volume(aws)
    try:
        problems = pause.paused_problems(aws, pause.read_state(FakeStack(_running(**names))))
    finally:
        aws.client("ec2").delete_volume(VolumeId=volume)
    assert len(problems) == 1 and volume in problems[0]


def test_pause_keeps_the_cluster_until_the_pvc_volumes_are_gone(names, aws):
    """Journey 3: 01-network (and with it the EBS CSI driver) is paused only after the PVC volumes
    of 03-app are deleted; when they stay, the pause stops after 03-app naming them (fake Stack, moto)."""
    volume = _pvc_volume(aws)
    stack = FakeStack(_running(**names))
    try:
        with pytest.raises(pause.PauseError, match=volume):
            pause.pause(stack, aws, stack.quiesce, check_timeout=0.5, check_interval=0.1)
    finally:
        aws.client("ec2").delete_volume(VolumeId=volume)
    assert stack.applies() == [("03-app", "false")]


def test_pause_goes_on_once_the_csi_driver_deleted_the_pvc_volumes(names, aws):
    """Journey 3: when the driver deletes the volumes after 03-app's pause (here: the 03-app apply
    deletes it, as the driver does once the PVCs are gone), the pause goes on to 02 and 01 (fake Stack, moto)."""
    volume = _pvc_volume(aws)
    stack = FakeStack(_running(**names))
    stack.on_apply["03-app"] = lambda enabled: aws.client("ec2").delete_volume(VolumeId=volume)
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=0.1)
    assert stack.applies() == [("03-app", "false"), ("02-deps", "false"), ("01-network", "false")]


# --- ClickHouse's data (decision 24) -------------------------------------------------------------

def test_pause_lets_langfuse_finish_what_it_accepted_before_03_app_is_applied(names, aws):
    """Decision 24: the quiesce (queues drained, ClickHouse stopped) runs before the first apply of
    the pause, so ClickHouse's kept volume holds everything accepted (fake Stack, moto)."""
    stack = FakeStack(_running(**names))
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=1)
    assert [(kind, ws) for kind, ws, _ in stack.calls if kind != "init"][:2] == [("quiesce", "03-app"),
                                                                                ("apply", "03-app")]


def test_a_quiesce_that_fails_stops_the_pause_before_anything_is_destroyed(names, aws):
    """Decision 24: queues that never empty (clickhouse.QuiesceError) end the pause with no apply."""
    from lfharness.stack import clickhouse

    stack = FakeStack(_running(**names))

    def never_drained() -> None:
        raise clickhouse.QuiesceError("Langfuse's queues still hold jobs (ingestion-queue: 3)")

    with pytest.raises(clickhouse.QuiesceError, match="ingestion-queue: 3"):
        pause.pause(stack, aws, never_drained, check_timeout=1, check_interval=0.5)
    assert stack.applies() == []


def test_pause_of_a_release_without_its_cluster_skips_the_quiesce(names, aws):
    """Decision 24: with the cluster already gone (an interrupted pause) nothing can be stopped: the
    pause goes on without it instead of failing on an unreachable cluster (fake Stack, moto)."""
    stack = FakeStack(_running(**names))
    stack.apply("01-network", variables={"cluster_enabled": "false"})
    stack.calls.clear()
    pause.pause(stack, aws, stack.quiesce, check_timeout=5, check_interval=1)
    assert [c for c in stack.calls if c[0] == "quiesce"] == []


def test_resume_stops_before_03_app_when_no_node_is_in_the_volume_zone(names, aws):
    """Decision 24: ClickHouse's volume lives in one zone; when the zone check finds no Ready node
    there, resume ends with its line before applying 03-app (instead of a 20-minute Helm wait)."""
    stack = _paused(**names)
    stack._outputs["02-deps"]["clickhouse_volume_zone"] = "us-east-1a"
    seen: list[str | None] = []

    def no_node(network: dict[str, Any], zone: str | None) -> str:
        seen.append(zone)
        return f"no Ready node in {zone}"

    with pytest.raises(pause.PauseError, match="03-app is not: no Ready node in us-east-1a"):
        pause.resume(stack, aws, health=lambda network: 200, zone_check=no_node, health_timeout=1)
    assert (seen, stack.applies()) == (["us-east-1a"], [("01-network", "true"), ("02-deps", "true")])
