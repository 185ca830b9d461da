"""Issue 24 item 3: the leftover sweep has a judge for every kind of resource the stack tags.

The kinds come from the stack itself: every managed resource the 01-network and 02-deps plans create
whose schema has `tags_all` gets Project from the aws provider's default_tags, so the tagging API (or
IAM) lists it and the sweep must judge it. 03-app creates no AWS resource (its HCL says so); the
EBS CSI driver's PVC volumes are `aws_ebs_volume`'s kind.

Stand-ins: the plan tier's (provider stand-in with the real aws 6.47.0 schema, the real eks, vpc, rds
and iam module sources at their tags from LFK8S_MODULE_MIRROR; skips with one line without them) for
which kinds exist; moto's server for what AWS answers about an ARN whose resource is gone (each test
in an account of its own, lifecycle.fresh_account).
"""

from __future__ import annotations

import secrets
import uuid

import pytest

from lfharness.core import hcl, tf
from lfharness.stack import aws_checks
from lfharness.testing import lifecycle

REGION = "us-east-1"

# Terraform resource type -> an ARN of its kind, as the tagging API (or IAM) lists one, for a resource
# that no longer exists ({account} and {name} filled in per test). Kept equal to what the plans tag
# (test_every_tagged_resource_type_the_stack_plans_has_an_arn_kind_here).
STACK_KINDS: dict[str, str] = {
    # 01-network: the vpc module
    "aws_vpc": "arn:aws:ec2:{region}:{account}:vpc/vpc-0{hex}",
    "aws_subnet": "arn:aws:ec2:{region}:{account}:subnet/subnet-0{hex}",
    "aws_internet_gateway": "arn:aws:ec2:{region}:{account}:internet-gateway/igw-0{hex}",
    "aws_route_table": "arn:aws:ec2:{region}:{account}:route-table/rtb-0{hex}",
    "aws_default_route_table": "arn:aws:ec2:{region}:{account}:route-table/rtb-0{hex}",
    "aws_default_network_acl": "arn:aws:ec2:{region}:{account}:network-acl/acl-0{hex}",
    "aws_default_security_group": "arn:aws:ec2:{region}:{account}:security-group/sg-0{hex}",
    # 01-network: the eks module (cluster and node security groups, node group, addons, access
    # entry, KMS key, OIDC provider, cluster role and encryption policy) and the EBS CSI IRSA role
    "aws_security_group": "arn:aws:ec2:{region}:{account}:security-group/sg-0{hex}",
    "aws_launch_template": "arn:aws:ec2:{region}:{account}:launch-template/lt-0{hex}",
    "aws_eks_cluster": "arn:aws:eks:{region}:{account}:cluster/{name}",
    "aws_eks_node_group": "arn:aws:eks:{region}:{account}:nodegroup/{name}/default-2026/{uuid}",
    "aws_eks_addon": "arn:aws:eks:{region}:{account}:addon/{name}/vpc-cni/{uuid}",
    "aws_eks_access_entry": "arn:aws:eks:{region}:{account}:access-entry/{name}/role/{account}/admin/{uuid}",
    "aws_kms_key": "arn:aws:kms:{region}:{account}:key/{uuid}",
    "aws_iam_openid_connect_provider": "arn:aws:iam::{account}:oidc-provider/oidc.eks.{region}.amazonaws.com/id/{HEX}",
    "aws_iam_role": "arn:aws:iam::{account}:role/{name}-cluster-2026",
    "aws_iam_policy": "arn:aws:iam::{account}:policy/{name}-cluster-ClusterEncryption2026",
    # 01-network: the control-plane log group (logs.tf)
    "aws_cloudwatch_log_group": "arn:aws:logs:{region}:{account}:log-group:/aws/eks/{name}/cluster",
    # 02-deps: RDS (the rds module), its security group and ingress rules, the bucket, ClickHouse's volume
    "aws_vpc_security_group_ingress_rule": "arn:aws:ec2:{region}:{account}:security-group-rule/sgr-0{hex}",
    "aws_db_instance": "arn:aws:rds:{region}:{account}:db:{name}",
    "aws_db_subnet_group": "arn:aws:rds:{region}:{account}:subgrp:{name}-2026",
    "aws_db_parameter_group": "arn:aws:rds:{region}:{account}:pg:{name}-2026",
    "aws_s3_bucket": "arn:aws:s3:::{name}-bucket",
    "aws_ebs_volume": "arn:aws:ec2:{region}:{account}:volume/vol-0{hex}",
}


def _tagged_types(plan) -> set[str]:
    """The types of the managed aws resources a plan creates whose schema has tags_all (the provider's
    default_tags land there; known after apply only, so it may be in after_unknown)."""
    return {c["type"] for c in plan.changes.values()
            if c["mode"] == "managed" and c["type"].startswith("aws_") and "create" in c["change"]["actions"]
            and ("tags_all" in (c["change"]["after"] or {}) or "tags_all" in c["change"].get("after_unknown", {}))}


@pytest.mark.plan
def test_every_tagged_resource_type_the_stack_plans_has_an_arn_kind_here(network_plan, deps_plan):
    """Issue 24 item 3, FR27, NFR8: the table of kinds the sweep's judges are proven on is exactly the
    set of taggable types 01-network and 02-deps create (whole plans with the provider stand-in and the
    real module sources), so a new tagged resource cannot go unjudged unnoticed."""
    assert sorted(_tagged_types(network_plan) | _tagged_types(deps_plan)) == sorted(STACK_KINDS)


@pytest.mark.static
def test_03_app_creates_no_aws_resource():
    """Issue 24 item 3: 03-app's resources are all Kubernetes-side or random_* (its HCL, read with
    python-hcl2), so the table above covers every workspace; its PVC volumes are made by the EBS CSI
    driver, of aws_ebs_volume's kind."""
    types = sorted(hcl.blocks(tf.TERRAFORM_DIR / "03-app", "resource"))
    assert [t for t in types if t.startswith("aws_")] == []


@pytest.fixture(scope="module")
def account(moto) -> lifecycle.AccountSession:
    """One moto account for this module's judge tests: what they ask about never exists there."""
    return lifecycle.fresh_account(moto)


@pytest.mark.static
@pytest.mark.parametrize("resource_type", sorted(STACK_KINDS))
def test_a_gone_resource_of_every_kind_the_stack_tags_is_judged_gone(account, resource_type):
    """Issue 24 item 3, FR27, NFR8: for each kind the stack tags, an ARN the tagging API (or IAM) lists
    after the resource is gone is asked of its own service and judged gone: not a leftover holding the
    teardown for 15 minutes, not unknown (moto in an account of its own, where none of them exists)."""
    account_id = account.client("sts").get_caller_identity()["Account"]
    token = secrets.token_hex(8)
    arn = STACK_KINDS[resource_type].format(region=REGION, account=account_id, hex=token[:16], HEX=token.upper(),
                                            name=f"langfuse-gone-{token[:8]}", uuid=uuid.uuid4())
    finding = aws_checks.judge(account, arn, "Project", "langfuse-k8s-cluster")
    assert (finding.verdict, finding.arn) == (aws_checks.GONE, arn), finding.detail
