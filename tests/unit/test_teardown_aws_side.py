"""Issue 24 items 3, 4, 5 and 10: what the teardown does on AWS around 01-network's destroy.

* Item 4: a 01-network destroy refused because the VPC CNI's detached interfaces still use the node
  security group releases exactly those (pause.release_node_security_group), names the others and
  destroys once more.
* Item 5: once 01-network is gone, the langfuse namespace's PVC volumes left `available` are deleted
  and reported; ClickHouse's volume (02-deps') is never one of them.
* Item 10: a cluster EKS reports CREATING or UPDATING is waited for before the destroy.
* Item 3: a kind the sweep cannot judge is named in the closing message, not waited on.

Stand-ins: the project's real terraform on provider-free local-backend workspaces. 01-network's is
the node security group as its destroy meets AWS: a terraform_data whose destroy-time local-exec asks
moto for interfaces in the group and fails as the aws provider does (DependencyViolation) while one
is there, so Terraform's own failed destroy and the state it leaves are real. AWS is moto's server,
each test in an account of its own; EKS's CREATING and UPDATING, which moto's clusters never show,
come from botocore's Stubber on that account's EKS client (recorded DescribeCluster shapes); the
tagging API listing a kind nothing judges, which moto's never lists, the same way. The closing
message is `python -m lfharness teardown`'s (teardown_workspaces) with the local Terraform Cloud fake.
"""

from __future__ import annotations

import json
import logging
import secrets
import sys
from pathlib import Path

import pytest
from botocore.stub import Stubber

from lfharness.core import tf
from lfharness.stack import stack, workspaces
from lfharness.stack.stack import Stack, TeardownError
from lfharness.testing import lifecycle
from lfharness.testing.quickstack import EMPTY, SETTINGS, resources, write_workspaces

pytestmark = pytest.mark.static

LOG = logging.getLogger("tests.teardown_aws_side")
NETWORK = workspaces.CLUSTER_WORKSPACE
REGION = "us-east-1"

# Run by the node security group's destroy-time provisioner: the refusal AWS gives while a network
# interface uses the group (the aws provider reports it after its 15-minute retry).
_HELD_CHECK = '''
import os, sys
import boto3
group = sys.argv[1]
ec2 = boto3.client("ec2", endpoint_url=os.environ["LFK8S_STANDIN_AWS_ENDPOINT"], region_name="us-east-1",
                   aws_access_key_id=os.environ["LFK8S_STANDIN_AWS_KEY"],
                   aws_secret_access_key=os.environ["LFK8S_STANDIN_AWS_SECRET"],
                   aws_session_token=os.environ["LFK8S_STANDIN_AWS_TOKEN"])
held = ec2.describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])["NetworkInterfaces"]
if held:
    sys.exit(f"Error: deleting EC2 Security Group ({group}): operation error EC2: DeleteSecurityGroup, "
             f"api error DependencyViolation: resource {group} has a dependent object")
'''

_NETWORK_WITH_GROUP = '''terraform {
  backend "local" {}
}

# The node security group: its destroy fails while an interface still uses it (see _HELD_CHECK).
resource "terraform_data" "node_security_group" {
  input = {
    id    = GROUP
    check = CHECK
  }

  provisioner "local-exec" {
    when    = destroy
    command = self.input.check
  }
}

output "node_security_group_id" {
  value = terraform_data.node_security_group.output.id
}

output "cluster_name" {
  value = "langfuse"
}
'''

# 01-network's outputs with nothing to destroy: a state the destroy empties at once.
_NETWORK_OUTPUTS_ONLY = '''terraform {
  backend "local" {}
}

output "cluster_name" {
  value = "langfuse"
}
'''


def _account(moto) -> tuple[lifecycle.AccountSession, dict[str, str]]:
    """A moto account of its own (as lifecycle.fresh_account), and the variables through which the
    01-network stand-in's destroy-time check reaches the same account (not AWS_*: tf.run drops those)."""
    account = f"{secrets.randbelow(9 * 10**11) + 10**11:012d}"
    credentials = moto.session(REGION).client("sts").assume_role(
        RoleArn=f"arn:aws:iam::{account}:role/teardown", RoleSessionName="teardown")["Credentials"]
    env = {"LFK8S_STANDIN_AWS_ENDPOINT": moto.endpoint_url, "LFK8S_STANDIN_AWS_KEY": credentials["AccessKeyId"],
           "LFK8S_STANDIN_AWS_SECRET": credentials["SecretAccessKey"],
           "LFK8S_STANDIN_AWS_TOKEN": credentials["SessionToken"]}
    return lifecycle.AccountSession(moto.endpoint_url, REGION, credentials), env


def _applied_network(root: Path, text: str) -> Path:
    """The three workspaces under root (02-deps and 03-app empty), 01-network of `text` applied."""
    write_workspaces(root, EMPTY, {NETWORK: text})
    for args in (["init", "-input=false", "-no-color"], ["apply", "-auto-approve", "-input=false", "-no-color"]):
        tf.run(args, root / NETWORK)
    return root


def _network_holding(tmp_path: Path, group: str) -> Path:
    script = tmp_path / "held_check.py"
    script.write_text(_HELD_CHECK)
    text = (_NETWORK_WITH_GROUP.replace("GROUP", json.dumps(group))
            .replace("CHECK", json.dumps(f"{sys.executable} {script} {group}")))
    return _applied_network(tmp_path / "terraform", text)


def _stack(tmp_path: Path, root: Path, aws, env: dict[str, str] | None = None, **timeouts: float) -> Stack:
    """The harness's Stack on the stand-in workspaces, with short waits (each test says which it needs)."""
    return Stack(SETTINGS, tmp_path / "run", root, env, aws=aws, pvc_timeout=timeouts.get("pvc_timeout", 1),
                 sweep_timeout=timeouts.get("sweep_timeout", 1), poll_interval=timeouts.get("poll_interval", 0.2),
                 cluster_settle_timeout=timeouts.get("cluster_settle_timeout", 5))


def _node_group(aws) -> dict[str, str]:
    """A VPC, a subnet and the node security group in moto."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone="us-east-1a")["Subnet"]["SubnetId"]
    group = ec2.create_security_group(GroupName="langfuse-node", Description="EKS node shared security group",
                                      VpcId=vpc)["GroupId"]
    return {"subnet": subnet, "sg": group}


def _interface(aws, net: dict[str, str], description: str) -> str:
    """A detached (available) network interface in the node security group."""
    return aws.client("ec2").create_network_interface(SubnetId=net["subnet"], Groups=[net["sg"]],
                                                      Description=description)["NetworkInterface"]["NetworkInterfaceId"]


def _interfaces_in(aws, group: str) -> set[str]:
    found = aws.client("ec2").describe_network_interfaces(Filters=[{"Name": "group-id", "Values": [group]}])
    return {e["NetworkInterfaceId"] for e in found["NetworkInterfaces"]}


# --- item 4: the VPC CNI's leftover interfaces holding the node security group ---------------------

def test_teardown_deletes_the_detached_cni_interface_holding_the_node_group_and_destroys_01_network_again(
        tmp_path, moto):
    """Issue 24 item 4, FR27: 01-network's destroy is refused (DependencyViolation) while a detached
    "aws-K8S-" interface uses the node security group; the teardown deletes it, as pause does, and
    destroys 01-network once more, which empties its state (real terraform, its destroy-time check
    asking moto; moto holding the leaked interface)."""
    aws, env = _account(moto)
    net = _node_group(aws)
    leftover = _interface(aws, net, "aws-K8S-i-0123456789abcdef0")
    st = _stack(tmp_path, _network_holding(tmp_path, net["sg"]), aws, env)
    st.teardown((NETWORK,), sweep=False)
    assert (resources(st.terraform_dir / NETWORK), _interfaces_in(aws, net["sg"]),
            [leftover in line for line in st.cleaned_up]) == ([], set(), [True])


def test_teardown_deletes_only_the_cni_leftovers_and_names_the_other_interfaces(tmp_path, moto):
    """Issue 24 item 4: of two detached interfaces in the node security group only the VPC CNI's is
    deleted; the other (someone's own) is kept, and the teardown fails naming it, since 01-network's
    second destroy is refused again (real terraform, its destroy-time check asking moto)."""
    aws, env = _account(moto)
    net = _node_group(aws)
    _interface(aws, net, "aws-K8S-i-0fedcba9876543210")
    foreign = _interface(aws, net, "my debugging interface")
    st = _stack(tmp_path, _network_holding(tmp_path, net["sg"]), aws, env)
    with pytest.raises(TeardownError, match=rf"not detached VPC CNI leftovers, left alone: {foreign}"):
        st.teardown((NETWORK,), sweep=False)
    assert (_interfaces_in(aws, net["sg"]), resources(st.terraform_dir / NETWORK)) == (
        {foreign}, ["terraform_data.node_security_group"])


# --- item 5: PVC volumes orphaned by a failed 03-app destroy -----------------------------------------

PVC_TAGS = [{"Key": workspaces.PROJECT_TAG[0], "Value": workspaces.PROJECT_TAG[1]},
            {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": workspaces.NAMESPACE},
            {"Key": "kubernetes.io/created-for/pvc/name", "Value": "data-langfuse-valkey-primary-0"}]
# aws_ebs_volume.clickhouse in 02-deps: its own tags and default_tags' Project; no PVC tag (static PV).
CLICKHOUSE_TAGS = [{"Key": workspaces.PROJECT_TAG[0], "Value": workspaces.PROJECT_TAG[1]},
                   {"Key": "Name", "Value": "langfuse-clickhouse-data"}, {"Key": "Component", "Value": "clickhouse"}]


def _volume(aws, tags: list[dict[str, str]]) -> str:
    return aws.client("ec2").create_volume(AvailabilityZone="us-east-1a", Size=8, VolumeType="gp3", TagSpecifications=[
        {"ResourceType": "volume", "Tags": tags}])["VolumeId"]


def _volumes(aws) -> set[str]:
    return {v["VolumeId"] for v in aws.client("ec2").describe_volumes()["Volumes"]}


def test_teardown_deletes_a_pvc_volume_left_available_once_01_network_is_gone(tmp_path, moto):
    """Issue 24 item 5, NFR8: a PVC volume a failed 03-app destroy left behind has no EBS CSI driver to
    delete it once the cluster is gone; after 01-network's destroy the teardown deletes it and lists
    it among what it deleted itself (real terraform; moto holding the orphaned volume)."""
    aws, _ = _account(moto)
    volume = _volume(aws, PVC_TAGS)
    st = _stack(tmp_path, _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY), aws)
    st.teardown((NETWORK,), sweep=False)
    assert (_volumes(aws), st.cleaned_up) == (set(), [f"EBS volume {volume} (a PVC's in namespace langfuse)"])


def test_teardown_never_deletes_clickhouses_volume(tmp_path, moto):
    """Issue 24 item 5, decision 24: ClickHouse's volume belongs to 02-deps (no PVC tag): the teardown's
    PVC clean-up after 01-network deletes the orphaned PVC volume beside it and leaves ClickHouse's
    alone, even detached (real terraform; moto holding both volumes, available)."""
    aws, _ = _account(moto)
    _volume(aws, PVC_TAGS)
    clickhouse = _volume(aws, CLICKHOUSE_TAGS)
    st = _stack(tmp_path, _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY), aws)
    st.teardown((NETWORK,), sweep=False)
    assert _volumes(aws) == {clickhouse}


def test_teardown_keeps_pvc_volumes_while_01_network_is_not_destroyed(tmp_path, moto):
    """Issue 24 item 5: when 01-network's destroy fails the cluster (and its EBS CSI driver) may still be
    there, so an available PVC volume is left to it (real terraform, a broken file failing the
    destroy; moto)."""
    aws, _ = _account(moto)
    volume = _volume(aws, PVC_TAGS)
    root = _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY)
    (root / NETWORK / "broken.tf").write_text('resource "nope" {\n')
    with pytest.raises(TeardownError, match=f"{NETWORK}: "):
        _stack(tmp_path, root, aws).teardown((NETWORK,), sweep=False)
    assert _volumes(aws) == {volume}


def test_the_teardown_commands_closing_message_names_the_pvc_volumes_it_deleted(tmp_path, moto, tfc_fake):
    """Issue 24 item 5: `python -m lfharness teardown`'s closing line reports the orphaned PVC volume it
    deleted (teardown_workspaces with the local Terraform Cloud fake holding 01-network only; real
    terraform; moto)."""
    fake, client = tfc_fake
    fake.add_workspace(workspaces.get(NETWORK).tfc_name, {"execution-mode": "local"})
    aws, _ = _account(moto)
    volume = _volume(aws, PVC_TAGS)
    st = _stack(tmp_path, _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY), aws)
    assert f"deleted what the cluster left: EBS volume {volume}" in stack.teardown_workspaces(client, st).describe()


# --- item 10: a cluster EKS is still creating or updating ---------------------------------------------

def _describe(status: str) -> dict:
    return {"cluster": {"name": "langfuse", "status": status, "arn": f"arn:aws:eks:{REGION}:123456789012:cluster/langfuse"}}


def test_teardown_waits_for_a_creating_cluster_to_settle_before_destroying_01_network(tmp_path, moto, caplog):
    """Issue 24 item 10: EKS refuses DeleteCluster while a cluster is CREATING (a run cancelled during
    01-network's apply); the teardown polls DescribeCluster until it leaves CREATING/UPDATING and only
    then runs 01-network's destroy (EKS's answers through botocore's Stubber on the account's EKS
    client: moto's clusters are always ACTIVE; real terraform)."""
    aws, _ = _account(moto)
    st = _stack(tmp_path, _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY), aws)
    with Stubber(aws.client("eks")) as eks:
        for status in ("CREATING", "CREATING", "UPDATING", "ACTIVE"):
            eks.add_response("describe_cluster", _describe(status), {"name": "langfuse"})
        # After the destroy: the PVC clean-up asks whether the cluster is gone.
        eks.add_client_error("describe_cluster", "ResourceNotFoundException", http_status_code=404,
                             expected_params={"name": "langfuse"})
        with caplog.at_level(logging.INFO):
            st.teardown((NETWORK,), sweep=False)
        eks.assert_no_pending_responses()
    messages = [r.getMessage() for r in caplog.records]
    settled = next(i for i, m in enumerate(messages) if "EKS cluster langfuse is ACTIVE after" in m)
    destroy = next(i for i, m in enumerate(messages) if m.startswith("terraform destroy"))
    assert settled < destroy


def test_teardown_gives_up_on_a_cluster_that_stays_creating_naming_its_status(tmp_path, moto):
    """Issue 24 item 10: a cluster still CREATING when the wait's timeout is over fails 01-network's
    teardown with a message naming the status and what to do, and no destroy is started (EKS's answers
    through botocore's Stubber; real terraform)."""
    aws, _ = _account(moto)
    st = _stack(tmp_path, _applied_network(tmp_path / "terraform", _NETWORK_OUTPUTS_ONLY), aws,
                cluster_settle_timeout=0.6, poll_interval=0.1)
    with Stubber(aws.client("eks")) as eks:
        for _ in range(60):  # more than the wait can ask for in 0.6 s
            eks.add_response("describe_cluster", _describe("CREATING"), {"name": "langfuse"})
        with pytest.raises(TeardownError, match=r"EKS cluster langfuse is still CREATING after 0.6s"):
            st.teardown((NETWORK,), sweep=False)
    assert list((tmp_path / "run" / "terraform").glob("*-destroy.log")) == []


# --- item 3: the closing message names what the sweep cannot judge ------------------------------------

def test_the_closing_message_names_a_kind_the_sweep_cannot_judge(tmp_path, moto, tfc_fake):
    """Issue 24 item 3: the tagging API lists an ARN of a kind the harness has no judge for; the sweep
    does not wait on it, and `python -m lfharness teardown`'s closing line names it for a look by hand
    (tagging API through botocore's Stubber on the account's client: moto's never lists such an ARN;
    local Terraform Cloud fake with no workspace; moto)."""
    _, client = tfc_fake
    aws, _ = _account(moto)
    queue = f"arn:aws:sqs:{REGION}:123456789012:langfuse-interruptions"
    st = _stack(tmp_path, write_workspaces(tmp_path / "terraform", EMPTY), aws)
    with Stubber(aws.client("resourcegroupstaggingapi")) as tagging:
        tagging.add_response("get_resources", {"ResourceTagMappingList": [{"ResourceARN": queue}]},
                             {"TagFilters": [{"Key": workspaces.PROJECT_TAG[0],
                                              "Values": [workspaces.PROJECT_TAG[1]]}]})
        closing = stack.teardown_workspaces(client, st).describe()
    assert closing.endswith(f"leftover sweep clean but for 1 resource(s) of a kind it cannot judge, to check by "
                            f"hand: unknown: {queue} (sqs: the harness has no judge for this service)")
