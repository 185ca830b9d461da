"""The e2e suite's data-store checks, run against real local stand-ins (static tier).

PostgreSQL and Redis are Debian's packages started on free loopback ports; S3 and the tagging
API are moto's server (fixtures in conftest.py). Each docstring names the stand-in.
"""

from __future__ import annotations

import secrets

import pytest
from botocore.stub import Stubber

from lfharness.stack import aws_checks

pytestmark = pytest.mark.static


def test_rds_select_one_connects_with_the_password(local_pg):
    """FR5, FR6: SELECT 1 answers with the generated password, against a local PostgreSQL."""
    assert aws_checks.rds_select_one(aws_checks.DbConn(**local_pg.conn())) == 1


def test_rds_check_with_a_wrong_password_fails_naming_the_password(local_pg):
    """FR6, NFR3: a wrong password is refused with an error saying so, against a local PostgreSQL."""
    with pytest.raises(aws_checks.CheckError, match=r"password was rejected") as err:
        aws_checks.rds_select_one(aws_checks.DbConn(**{**local_pg.conn(), "password": "wrong-password-123"}))
    assert f"{local_pg.host}:{local_pg.port}" in str(err.value)


def test_rds_check_error_never_echoes_the_password(local_pg):
    """NFR1: the connection error names server and user but not the password, against a local PostgreSQL."""
    with pytest.raises(aws_checks.CheckError) as err:
        aws_checks.rds_select_one(aws_checks.DbConn(**{**local_pg.conn(), "password": "wrong-password-123"}))
    assert "wrong-password-123" not in str(err.value)


def test_migration_count_ignores_unfinished_migrations(local_pg):
    """FR11: only finished Prisma migrations count, against a local PostgreSQL."""
    assert aws_checks.rds_migrations_applied(aws_checks.DbConn(**local_pg.conn())) == 2


def test_headless_init_rows_are_all_found(local_pg):
    """FR14: the init user (by email), organization and project (by id) are found, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows(aws_checks.DbConn(**local_pg.conn()),
                                             "ops@example.com", "langfuse-org", "langfuse-project")
    assert rows == {"user": True, "organization": True, "project": True}


def test_headless_init_rows_report_each_missing_row(local_pg):
    """FR14: an absent user and project are reported as such, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows(aws_checks.DbConn(**local_pg.conn()),
                                             "nobody@example.com", "langfuse-org", "no-such-project")
    assert rows == {"user": False, "organization": True, "project": False}


def test_redis_ping_answers_with_the_password(local_redis):
    """FR21: PING answers with the generated password, against a local Redis."""
    assert aws_checks.redis_ping(local_redis.host, local_redis.port, local_redis.password) is True


def test_redis_ping_with_a_wrong_password_fails(local_redis):
    """FR21: a wrong password is refused with an error saying so, against a local Redis."""
    with pytest.raises(aws_checks.CheckError, match=r"password was rejected"):
        aws_checks.redis_ping(local_redis.host, local_redis.port, "wrong")


def test_s3_round_trip_reads_back_what_it_wrote(moto):
    """FR7: put then get returns the same bytes, against moto."""
    s3 = moto.session().client("s3")
    s3.create_bucket(Bucket="langfuse-roundtrip")
    body = secrets.token_bytes(64)
    assert aws_checks.s3_round_trip(s3, "langfuse-roundtrip", "events/x.json", body) == body


def test_s3_round_trip_accepts_a_session(moto):
    """FR7: the check makes its own S3 client from a session, against moto."""
    session = moto.session()
    session.client("s3").create_bucket(Bucket="langfuse-roundtrip-session")
    assert aws_checks.s3_round_trip(session, "langfuse-roundtrip-session", "media/y", b"payload") == b"payload"


def test_s3_list_prefix_lists_only_that_prefix(moto):
    """FR7, FR9: listing events/ finds the events and nothing else, against moto."""
    s3 = moto.session().client("s3")
    s3.create_bucket(Bucket="langfuse-listing")
    for key in ("events/a.json", "events/b.json", "media/c.png"):
        s3.put_object(Bucket="langfuse-listing", Key=key, Body=b"x")
    assert sorted(aws_checks.s3_list_prefix(s3, "langfuse-listing", "events/")) == ["events/a.json", "events/b.json"]


def test_tagged_resources_lists_a_resource_carrying_the_project_tag(moto):
    """FR27, NFR8: the sweep finds a VPC tagged with the project, against moto."""
    session = moto.session()
    tag = {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}
    vpc = session.client("ec2").create_vpc(
        CidrBlock="10.9.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]
    assert [arn for arn in aws_checks.tagged_resources(session, tag["Key"], tag["Value"])
            if arn.endswith(f"vpc/{vpc['VpcId']}")]


def test_tagged_resources_is_empty_once_the_tagged_resource_is_deleted(moto):
    """FR27, NFR8: after deletion nothing tagged with the project remains, against moto."""
    session = moto.session()
    ec2 = session.client("ec2")
    tag = {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert aws_checks.tagged_resources(session, tag["Key"], tag["Value"]) == []


def test_tagged_resources_reports_only_resources_of_this_project(moto):
    """FR27: of two tagged buckets only the one tagged with our project value is reported, against moto."""
    session = moto.session()
    s3 = session.client("s3")
    ours = f"ours-{secrets.token_hex(4)}"
    for bucket, value in ((f"{ours}-bucket", ours), (f"{ours}-neighbour", "someone-else")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "Project", "Value": value}]})
    assert aws_checks.tagged_resources(session, "Project", ours) == [f"arn:aws:s3:::{ours}-bucket"]


def test_headless_init_user_is_found_whatever_the_case_of_the_env_email(local_pg):
    """FR14, issue 10 item 6: Langfuse stores the init email lower-cased; Ops@Example.COM in .env still
    finds the user row ops@example.com, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows(aws_checks.DbConn(**local_pg.conn()),
                                             "Ops@Example.COM", "langfuse-org", "langfuse-project")
    assert rows["user"] is True


def test_s3_get_of_a_missing_object_names_bucket_and_key(moto):
    """FR9, issue 10 item 3: reading back an object that did not survive fails naming it, against moto."""
    s3 = moto.session().client("s3")
    s3.create_bucket(Bucket="langfuse-survival")
    with pytest.raises(aws_checks.CheckError, match=r"s3://langfuse-survival/e2e/marker-x does not exist"):
        aws_checks.s3_get(s3, "langfuse-survival", "e2e/marker-x")


# --- the leftover sweep (issue 10 items 1 and 4) ----------------------------------------------------

def _tag() -> dict[str, str]:
    return {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}


def _verdicts(result: aws_checks.Sweep) -> list[str]:
    return [f.verdict for f in result.findings]


def test_a_kms_key_pending_deletion_leaves_the_sweep_clean(moto):
    """FR27, NFR8, issue 10 item 1: the eks module's KMS key, scheduled for deletion and still tagged (the
    tagging API lists it), is judged pending deletion and does not fail the sweep, against moto."""
    session, tag = moto.session(), _tag()
    kms = session.client("kms")
    key = kms.create_key(Tags=[{"TagKey": tag["Key"], "TagValue": tag["Value"]}])["KeyMetadata"]
    kms.schedule_key_deletion(KeyId=key["KeyId"], PendingWindowInDays=7)
    result = aws_checks.sweep(session, tag["Key"], tag["Value"])
    assert (_verdicts(result), result.clean) == ([aws_checks.PENDING_DELETION], True)


def test_an_enabled_kms_key_is_a_leftover(moto):
    """FR27, NFR8, issue 10 item 1: a tagged KMS key that is not pending deletion fails the sweep, against moto."""
    session, tag = moto.session(), _tag()
    session.client("kms").create_key(Tags=[{"TagKey": tag["Key"], "TagValue": tag["Value"]}])
    result = aws_checks.sweep(session, tag["Key"], tag["Value"])
    assert (_verdicts(result), result.clean) == ([aws_checks.LEFTOVER], False)


class _StubbedSession:
    """A session handing out one stubbed client (botocore Stubber checks responses against the API model)."""

    def __init__(self, client):
        self._client = client

    def client(self, service_name: str, **_):
        return self._client


def test_an_rds_instance_still_deleting_keeps_the_sweep_waiting(moto):
    """FR27, issue 10 item 1: an RDS instance in status deleting is judged "deleting" (wait), not gone and
    not a leftover (recorded DescribeDBInstances response shape, through botocore's Stubber)."""
    rds = moto.session().client("rds")
    with Stubber(rds) as stub:
        stub.add_response("describe_db_instances",
                          {"DBInstances": [{"DBInstanceIdentifier": "langfuse", "DBInstanceStatus": "deleting",
                                            "Engine": "postgres", "DBInstanceClass": "db.t4g.micro"}]},
                          {"DBInstanceIdentifier": "langfuse"})
        finding = aws_checks.judge(_StubbedSession(rds), "arn:aws:rds:us-east-1:123456789012:db:langfuse",
                                   "Project", "p")
    assert (finding.verdict, aws_checks.Sweep((finding,)).clean) == (aws_checks.DELETING, False)


def test_a_deleted_rds_instance_the_tagging_api_still_lists_is_gone(moto):
    """FR27, issue 10 item 1: an ARN of an RDS instance that no longer exists is judged gone, against moto."""
    session, tag = moto.session(), _tag()
    rds = session.client("rds")
    name = f"langfuse-{secrets.token_hex(3)}"
    arn = rds.create_db_instance(DBInstanceIdentifier=name, DBInstanceClass="db.t4g.micro", Engine="postgres",
                                 MasterUsername="langfuse", MasterUserPassword="password-" + secrets.token_hex(8),
                                 AllocatedStorage=20, Tags=[tag])["DBInstance"]["DBInstanceArn"]
    rds.delete_db_instance(DBInstanceIdentifier=name, SkipFinalSnapshot=True)
    assert aws_checks.judge(session, arn, tag["Key"], tag["Value"]).verdict == aws_checks.GONE


def test_a_log_group_recreated_by_eks_without_the_tag_is_reported(moto):
    """FR27, NFR8, issue 10 item 1: a log group that exists again without the project tag (EKS wrote to it
    after Terraform deleted it) is judged re-created and fails the sweep, against moto."""
    session, tag = moto.session(), _tag()
    name = f"/aws/eks/{tag['Value']}/cluster"
    session.client("logs").create_log_group(logGroupName=name)
    finding = aws_checks.judge(session, f"arn:aws:logs:us-east-1:123456789012:log-group:{name}", tag["Key"],
                               tag["Value"])
    assert (finding.verdict, aws_checks.Sweep((finding,)).clean) == (aws_checks.RECREATED, False)


def test_recreated_log_groups_are_deleted_by_name(moto):
    """NFR8, issue 10 item 1: the sweep's re-created log groups can be removed, so teardown ends at zero
    cost and the next apply does not hit ResourceAlreadyExists, against moto."""
    session, tag = moto.session(), _tag()
    name = f"/aws/eks/{tag['Value']}/cluster"
    logs = session.client("logs")
    logs.create_log_group(logGroupName=name)
    finding = aws_checks.judge(session, f"arn:aws:logs:us-east-1:123456789012:log-group:{name}", tag["Key"],
                               tag["Value"])
    aws_checks.delete_recreated_log_groups(session, aws_checks.Sweep((finding,)))
    assert logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] == []


def test_a_log_group_still_carrying_the_tag_is_a_leftover(moto):
    """FR27, issue 10 item 1: a log group Terraform did not delete (still tagged) is a leftover, against moto."""
    session, tag = moto.session(), _tag()
    name = f"/aws/eks/{tag['Value']}/cluster"
    session.client("logs").create_log_group(logGroupName=name, tags={tag["Key"]: tag["Value"]})
    assert _verdicts(aws_checks.sweep(session, tag["Key"], tag["Value"])) == [aws_checks.LEFTOVER]


def test_wait_for_clean_sweep_fails_naming_each_remaining_resource(moto):
    """FR27, NFR8, issue 10 item 1: a sweep that never comes back clean fails listing each remaining
    ARN with its state, against moto (a tagged VPC stays)."""
    session, tag = moto.session(), _tag()
    vpc = session.client("ec2").create_vpc(
        CidrBlock="10.7.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]
    with pytest.raises(aws_checks.CheckError, match=rf"leftover: \S+vpc/{vpc['VpcId']}"):
        aws_checks.wait_for_clean_sweep(session, tag["Key"], tag["Value"], timeout=0.2, interval=0.1)


def test_sweep_finds_a_tagged_iam_role(moto):
    """FR27, NFR8, issue 10 item 4: an IAM role with the project tag (invisible to the tagging API) is a
    leftover, found through IAM's ListRoles/ListRoleTags, against moto."""
    session, tag = moto.session(), _tag()
    role = session.client("iam").create_role(RoleName=f"langfuse-cluster-{tag['Value']}",
                                             AssumeRolePolicyDocument="{}", Tags=[tag])["Role"]
    assert [(f.arn, f.verdict) for f in aws_checks.sweep(session, tag["Key"], tag["Value"]).findings] == [
        (role["Arn"], aws_checks.LEFTOVER)]


def test_sweep_finds_a_tagged_oidc_provider(moto):
    """FR27, NFR8, issue 10 item 4: the cluster's IAM OIDC provider with the project tag is a leftover,
    found through ListOpenIDConnectProviderTags, against moto."""
    session, tag = moto.session(), _tag()
    arn = session.client("iam").create_open_id_connect_provider(
        Url=f"https://oidc.eks.us-east-1.amazonaws.com/id/{tag['Value'].upper()}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9" * 40], Tags=[tag])["OpenIDConnectProviderArn"]
    assert [f.arn for f in aws_checks.sweep(session, tag["Key"], tag["Value"]).findings] == [arn]


def test_sweep_ignores_iam_roles_of_other_projects(moto):
    """FR27, issue 10 item 4: a role tagged with another project value is not ours, against moto."""
    session, tag = moto.session(), _tag()
    session.client("iam").create_role(RoleName=f"neighbour-{tag['Value']}", AssumeRolePolicyDocument="{}",
                                      Tags=[{"Key": "Project", "Value": "someone-else"}])
    assert aws_checks.sweep(session, tag["Key"], tag["Value"]).findings == ()


def test_sweep_finds_an_untagged_log_group_named_for_it(moto):
    """FR27, NFR8, issue 10 item 1: the cluster's log group, re-created without tags (so not listed by
    the tagging API), is still found by name and judged re-created, against moto."""
    session, tag = moto.session(), _tag()
    name = f"/aws/eks/{tag['Value']}/cluster"
    session.client("logs").create_log_group(logGroupName=name)
    assert _verdicts(aws_checks.sweep(session, tag["Key"], tag["Value"], log_groups=(name,))) == [aws_checks.RECREATED]


def test_wait_for_clean_sweep_removes_recreated_log_groups_and_comes_back_clean(moto):
    """NFR8, issue 10 item 1: with remove_recreated, a log group re-created by EKS is deleted and the
    next sweep is clean, against moto."""
    session, tag = moto.session(), _tag()
    name = f"/aws/eks/{tag['Value']}/cluster"
    session.client("logs").create_log_group(logGroupName=name)
    result = aws_checks.wait_for_clean_sweep(session, tag["Key"], tag["Value"], log_groups=(name,),
                                             remove_recreated=True, timeout=5, interval=0.1)
    assert (result.clean, session.client("logs").describe_log_groups(logGroupNamePrefix=name)["logGroups"]) == (
        True, [])


# --- issue 15 defect 7: no false alarms from the tagging API's memory, nor from a neighbour's IAM -----

ACCOUNT = "123456789012"  # moto's default account


def _ec2_arn(kind: str, ident: str) -> str:
    return f"arn:aws:ec2:us-east-1:{ACCOUNT}:{kind}/{ident}"


def _deleted_ec2(ec2, kind: str) -> str:
    """Creates one resource of `kind` (ARN resource type) in a fresh VPC, deletes it, returns its ARN."""
    cidr = f"10.{secrets.randbelow(200) + 20}.0.0/16"
    vpc = ec2.create_vpc(CidrBlock=cidr)["Vpc"]["VpcId"]
    if kind == "vpc":
        ec2.delete_vpc(VpcId=vpc)
        return _ec2_arn(kind, vpc)
    if kind == "subnet":
        ident = ec2.create_subnet(VpcId=vpc, CidrBlock=cidr.replace("0.0/16", "1.0/24"))["Subnet"]["SubnetId"]
        ec2.delete_subnet(SubnetId=ident)
    elif kind == "security-group":
        ident = ec2.create_security_group(GroupName=f"sg-{secrets.token_hex(3)}", Description="d", VpcId=vpc)["GroupId"]
        ec2.delete_security_group(GroupId=ident)
    elif kind == "internet-gateway":
        ident = ec2.create_internet_gateway()["InternetGateway"]["InternetGatewayId"]
        ec2.delete_internet_gateway(InternetGatewayId=ident)
    elif kind == "route-table":
        ident = ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"]
        ec2.delete_route_table(RouteTableId=ident)
    elif kind == "network-acl":
        ident = ec2.create_network_acl(VpcId=vpc)["NetworkAcl"]["NetworkAclId"]
        ec2.delete_network_acl(NetworkAclId=ident)
    elif kind == "launch-template":
        ident = ec2.create_launch_template(LaunchTemplateName=f"lt-{secrets.token_hex(3)}",
                                           LaunchTemplateData={})["LaunchTemplate"]["LaunchTemplateId"]
        ec2.delete_launch_template(LaunchTemplateId=ident)
    else:
        raise ValueError(kind)
    return _ec2_arn(kind, ident)


@pytest.mark.parametrize("kind", ["vpc", "subnet", "security-group", "internet-gateway", "route-table",
                                  "network-acl", "launch-template"])
def test_a_deleted_network_resource_the_tagging_api_still_lists_is_gone(moto, kind):
    """FR27, NFR8, issue 15 defect 7: the tagging API lists deleted resources for a while (boto3 issue
    3341); an EC2 ARN of each kind 01-network creates is judged by EC2's own describe call, so a
    deleted one is gone, not a leftover (against moto; the stale listing is the ARN handed to judge)."""
    session = moto.session()
    arn = _deleted_ec2(session.client("ec2"), kind)
    assert aws_checks.judge(session, arn, "Project", "p").verdict == aws_checks.GONE


def test_an_existing_vpc_is_a_leftover_named_as_existing(moto):
    """FR27, NFR8, issue 15 defect 7: a VPC that still exists is a leftover, checked rather than assumed (against moto)."""
    session = moto.session()
    vpc = session.client("ec2").create_vpc(CidrBlock="10.250.0.0/16")["Vpc"]["VpcId"]
    finding = aws_checks.judge(session, _ec2_arn("vpc", vpc), "Project", "p")
    assert (finding.verdict, "still exists" in finding.detail) == (aws_checks.LEFTOVER, True)


def test_a_deleted_bucket_the_tagging_api_still_lists_is_gone(moto):
    """FR27, NFR8, issue 15 defect 7: a bucket ARN is judged by S3's HeadBucket: deleted means gone (against moto)."""
    session = moto.session()
    name = f"langfuse-gone-{secrets.token_hex(4)}"
    session.client("s3").create_bucket(Bucket=name)
    session.client("s3").delete_bucket(Bucket=name)
    assert aws_checks.judge(session, f"arn:aws:s3:::{name}", "Project", "p").verdict == aws_checks.GONE


def test_an_existing_bucket_is_a_leftover(moto):
    """FR27, NFR8, issue 15 defect 7: a bucket that still exists is a leftover (against moto)."""
    session = moto.session()
    name = f"langfuse-kept-{secrets.token_hex(4)}"
    session.client("s3").create_bucket(Bucket=name)
    assert aws_checks.judge(session, f"arn:aws:s3:::{name}", "Project", "p").verdict == aws_checks.LEFTOVER


@pytest.mark.parametrize("resource", ["addon/langfuse-gone/vpc-cni/1ec9-aaaa",
                                      f"access-entry/langfuse-gone/role/{ACCOUNT}/langfuse-admin/3ec9-bbbb"])
def test_an_eks_addon_or_access_entry_of_a_deleted_cluster_is_gone(moto, resource):
    """FR27, NFR8, issue 15 defect 7: addons and access entries go with their cluster; with the cluster
    gone (DescribeCluster answers ResourceNotFoundException) a listed one is gone (against moto)."""
    session = moto.session()
    arn = f"arn:aws:eks:us-east-1:{ACCOUNT}:{resource}"
    assert aws_checks.judge(session, arn, "Project", "p").verdict == aws_checks.GONE


_CLUSTER = {"cluster": {"name": "langfuse", "status": "ACTIVE"}}


@pytest.mark.parametrize(("status", "verdict"), [("ACTIVE", aws_checks.LEFTOVER), ("DELETING", aws_checks.DELETING)])
def test_an_eks_addon_of_a_live_cluster_is_judged_by_its_status(moto, status, verdict):
    """FR27, issue 15 defect 7: an addon whose cluster still exists is judged by DescribeAddon's status
    (recorded response shapes, through botocore's Stubber: moto has no EKS addons)."""
    eks = moto.session().client("eks")
    with Stubber(eks) as stub:
        stub.add_response("describe_cluster", _CLUSTER, {"name": "langfuse"})
        stub.add_response("describe_addon", {"addon": {"addonName": "vpc-cni", "clusterName": "langfuse",
                                                       "status": status}},
                          {"clusterName": "langfuse", "addonName": "vpc-cni"})
        finding = aws_checks.judge(_StubbedSession(eks), f"arn:aws:eks:us-east-1:{ACCOUNT}:addon/langfuse/vpc-cni/1e",
                                   "Project", "p")
    assert finding.verdict == verdict


def test_an_access_entry_no_longer_among_its_clusters_entries_is_gone(moto):
    """FR27, issue 15 defect 7: the access entry ARN does not carry its principal's ARN, so the cluster's
    entries are listed and compared by accessEntryArn; one that is not among them is gone (recorded
    response shapes, through botocore's Stubber: moto has no EKS access entries)."""
    eks = moto.session().client("eks")
    other = f"arn:aws:iam::{ACCOUNT}:role/someone"
    with Stubber(eks) as stub:
        stub.add_response("describe_cluster", _CLUSTER, {"name": "langfuse"})
        stub.add_response("list_access_entries", {"accessEntries": [other]}, {"clusterName": "langfuse"})
        stub.add_response("describe_access_entry", {"accessEntry": {
            "clusterName": "langfuse", "principalArn": other,
            "accessEntryArn": f"arn:aws:eks:us-east-1:{ACCOUNT}:access-entry/langfuse/role/{ACCOUNT}/someone/9"}},
            {"clusterName": "langfuse", "principalArn": other})
        finding = aws_checks.judge(
            _StubbedSession(eks), f"arn:aws:eks:us-east-1:{ACCOUNT}:access-entry/langfuse/role/{ACCOUNT}/admin/1",
            "Project", "p")
    assert finding.verdict == aws_checks.GONE


def test_sweep_ignores_a_role_another_deployment_of_the_project_tagged(moto):
    """FR27, issue 15 defect 7: IAM is account-wide; a role with the same Project tag written by another
    deployment (another Terraform Cloud organization) is not ours, so the sweep stays clean, while a
    role carrying this stack's tags is still found (against moto)."""
    session, tag = moto.session(), _tag()
    iam = session.client("iam")
    for name, organization in ((f"ours-{tag['Value']}", "our-org"), (f"theirs-{tag['Value']}", "their-org")):
        iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}",
                        Tags=[tag, {"Key": "ManagedBy", "Value": "terraform"},
                              {"Key": "Organization", "Value": organization}])
    result = aws_checks.sweep(session, tag["Key"], tag["Value"], iam_tags=aws_checks.stack_tags("our-org"))
    assert [f.arn.rsplit("/", 1)[1] for f in result.findings] == [f"ours-{tag['Value']}"]


def test_a_nat_gateway_ec2_no_longer_knows_is_gone(moto):
    """FR27, issue 15 defect 7: an hour after deletion DescribeNatGateways answers NatGatewayNotFound
    (no ".NotFound" suffix, unlike the other EC2 kinds); a NAT gateway still listed then is gone,
    not a leftover that could not be checked (recorded error shape, through botocore's Stubber)."""
    ec2 = moto.session().client("ec2")
    with Stubber(ec2) as stub:
        stub.add_client_error("describe_nat_gateways", service_error_code="NatGatewayNotFound",
                              service_message="The Nat Gateway nat-0a1b2c3d4e5f60718 was not found",
                              expected_params={"NatGatewayIds": ["nat-0a1b2c3d4e5f60718"]})
        finding = aws_checks.judge(_StubbedSession(ec2), _ec2_arn("natgateway", "nat-0a1b2c3d4e5f60718"),
                                   "Project", "p")
    assert finding.verdict == aws_checks.GONE


# --- issue 24 item 3: every kind the stack creates is asked of its own service ----------------------

class _ListedByTaggingApi:
    """A moto session whose Resource Groups Tagging API client lists `arns` (botocore's Stubber, with
    GetResources' real response shape): moto's GetResources lists neither security-group-rule nor IAM
    ARNs and forgets a deleted resource at once, while AWS's lists "previously tagged" resources for a
    while. Every other client is moto's (or one of `clients`), so each ARN is judged by its own service."""

    def __init__(self, session, tag: dict[str, str], arns: list[str], sweeps: int = 1, clients=None) -> None:
        self._session = session
        self._clients = dict(clients or {})
        self.tagging = session.client("resourcegroupstaggingapi")
        self.stub = Stubber(self.tagging)
        for _ in range(sweeps):
            self.stub.add_response("get_resources",
                                   {"ResourceTagMappingList": [{"ResourceARN": arn, "Tags": [tag]} for arn in arns]},
                                   {"TagFilters": [{"Key": tag["Key"], "Values": [tag["Value"]]}]})
        self.stub.activate()

    def client(self, service_name: str, **kwargs):
        if service_name == "resourcegroupstaggingapi":
            return self.tagging
        return self._clients.get(service_name) or self._session.client(service_name, **kwargs)


def _sg_rule(ec2, tag: dict[str, str]) -> str:
    """02-deps' rds_from_cidrs["0.0.0.0/0"] as the aws provider makes an aws_vpc_security_group_ingress_rule:
    AuthorizeSecurityGroupIngress with the rule's tags (default_tags' Project); returns its ARN."""
    vpc = ec2.create_vpc(CidrBlock=f"10.{secrets.randbelow(200) + 20}.0.0/16")["Vpc"]["VpcId"]
    group = ec2.create_security_group(GroupName=f"langfuse-rds-{secrets.token_hex(3)}", Description="d",
                                      VpcId=vpc)["GroupId"]
    rule = ec2.authorize_security_group_ingress(
        GroupId=group, IpPermissions=[{"IpProtocol": "tcp", "FromPort": 5432, "ToPort": 5432,
                                       "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}],
        TagSpecifications=[{"ResourceType": "security-group-rule", "Tags": [tag]}])["SecurityGroupRules"][0]
    return _ec2_arn("security-group-rule", rule["SecurityGroupRuleId"])


def test_a_deleted_security_group_rule_the_tagging_api_still_lists_is_gone(moto):
    """Issue 24 item 3, FR27, NFR8: 02-deps' ingress rules are taggable and carry Project; once revoked,
    the sgr- ARN the tagging API still lists is judged by DescribeSecurityGroupRules
    (InvalidSecurityGroupRuleId.NotFound): gone, not a leftover that holds the teardown (against moto)."""
    session, tag = moto.session(), _tag()
    ec2 = session.client("ec2")
    arn = _sg_rule(ec2, tag)
    rule = arn.rsplit("/", 1)[1]
    group = ec2.describe_security_group_rules(SecurityGroupRuleIds=[rule])["SecurityGroupRules"][0]["GroupId"]
    ec2.revoke_security_group_ingress(GroupId=group, SecurityGroupRuleIds=[rule])
    assert aws_checks.judge(session, arn, tag["Key"], tag["Value"]).verdict == aws_checks.GONE


def test_an_existing_security_group_rule_is_a_leftover(moto):
    """Issue 24 item 3, FR27: a rule DescribeSecurityGroupRules still returns is a leftover (against moto)."""
    session, tag = moto.session(), _tag()
    finding = aws_checks.judge(session, _sg_rule(session.client("ec2"), tag), tag["Key"], tag["Value"])
    assert (finding.verdict, finding.detail) == (aws_checks.LEFTOVER, "EC2 security-group-rule still exists")


def _iam_resource(iam, kind: str, tag: dict[str, str]) -> str:
    """One IAM resource of `kind` as the stack makes it (eks module, iam module), tagged; its ARN."""
    name = f"langfuse-{secrets.token_hex(4)}"
    if kind == "role":
        return iam.create_role(RoleName=name, AssumeRolePolicyDocument="{}", Tags=[tag])["Role"]["Arn"]
    if kind == "policy":
        document = '{"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:Decrypt", "Resource": "*"}]}'
        return iam.create_policy(PolicyName=name, PolicyDocument=document, Tags=[tag])["Policy"]["Arn"]
    return iam.create_open_id_connect_provider(
        Url=f"https://oidc.eks.us-east-1.amazonaws.com/id/{name.upper()}", ClientIDList=["sts.amazonaws.com"],
        ThumbprintList=["9" * 40], Tags=[tag])["OpenIDConnectProviderArn"]


def _delete_iam(iam, arn: str) -> None:
    kind = arn.split(":", 5)[5].split("/")[0]
    if kind == "role":
        iam.delete_role(RoleName=arn.rsplit("/", 1)[1])
    elif kind == "policy":
        iam.delete_policy(PolicyArn=arn)
    else:
        iam.delete_open_id_connect_provider(OpenIDConnectProviderArn=arn)


@pytest.mark.parametrize("kind", ["role", "policy", "oidc-provider"])
def test_a_deleted_iam_resource_the_tagging_api_still_lists_is_gone(moto, kind):
    """Issue 24 item 3, FR27, NFR8: the tagging API (us-east-1) lists IAM OIDC providers and policies,
    deleted ones too; each IAM ARN is judged by GetRole / GetPolicy / GetOpenIDConnectProvider, and
    NoSuchEntity means gone (against moto)."""
    session, tag = moto.session(), _tag()
    iam = session.client("iam")
    arn = _iam_resource(iam, kind, tag)
    _delete_iam(iam, arn)
    assert aws_checks.judge(session, arn, tag["Key"], tag["Value"]).verdict == aws_checks.GONE


@pytest.mark.parametrize("kind", ["role", "policy", "oidc-provider"])
def test_an_existing_iam_resource_is_a_leftover_named_by_kind(moto, kind):
    """Issue 24 item 3, FR27: an IAM role, policy or OIDC provider IAM still knows is a leftover, asked
    rather than assumed (against moto)."""
    session, tag = moto.session(), _tag()
    finding = aws_checks.judge(session, _iam_resource(session.client("iam"), kind, tag), tag["Key"], tag["Value"])
    assert (finding.verdict, finding.detail) == (aws_checks.LEFTOVER, f"IAM {kind} still exists")


def test_a_sweep_of_the_arns_the_tagging_api_keeps_listing_after_deletion_is_clean(moto):
    """Issue 24 item 3, FR27, NFR8: the sweep after a teardown, fed what the tagging API really returns
    for this stack's kinds once they are deleted (an sgr- rule, an IAM OIDC provider and policy), judges
    each by its own service and comes back clean (tagging API through botocore's Stubber, the rest moto)."""
    session, tag = moto.session(), _tag()
    ec2, iam = session.client("ec2"), session.client("iam")
    rule_arn = _sg_rule(ec2, tag)
    rule = rule_arn.rsplit("/", 1)[1]
    ec2.revoke_security_group_ingress(GroupId=ec2.describe_security_group_rules(
        SecurityGroupRuleIds=[rule])["SecurityGroupRules"][0]["GroupId"], SecurityGroupRuleIds=[rule])
    iam_arns = [_iam_resource(iam, kind, tag) for kind in ("oidc-provider", "policy")]
    for arn in iam_arns:
        _delete_iam(iam, arn)
    result = aws_checks.sweep(_ListedByTaggingApi(session, tag, [rule_arn, *iam_arns]), tag["Key"], tag["Value"])
    assert (_verdicts(result), result.clean) == ([aws_checks.GONE] * 3, True)


def test_an_iam_policy_of_another_deployment_the_tagging_api_lists_is_not_counted(moto):
    """Issue 24 item 3, FR27: the tagging API lists every policy with Project, another deployment's in the
    same account too (IAM is global); one that exists without this deployment's Organization tag is
    not ours, so the sweep stays clean (tagging API through botocore's Stubber, IAM in moto)."""
    session, tag = moto.session(), _tag()
    theirs = _iam_resource(session.client("iam"), "policy", tag)  # Project only: not our Organization
    result = aws_checks.sweep(_ListedByTaggingApi(session, tag, [theirs]), tag["Key"], tag["Value"],
                              iam_tags=aws_checks.stack_tags("our-org"))
    assert result.findings == ()


def test_an_iam_arn_iam_refuses_to_describe_stays_a_leftover(moto):
    """Issue 24 item 3: an IAM policy the tagging API lists whose GetPolicy is refused (AccessDenied) is
    not taken for another deployment's: it stays a leftover naming the error, so the wait asks again
    and names it if it gives up (IAM's answers through botocore's Stubber: moto grants everything)."""
    session, tag = moto.session(), _tag()
    arn = f"arn:aws:iam::{ACCOUNT}:policy/langfuse-{secrets.token_hex(4)}"
    iam = session.client("iam")
    with Stubber(iam) as stub:
        stub.add_response("list_roles", {"Roles": []}, {})
        stub.add_response("list_open_id_connect_providers", {"OpenIDConnectProviderList": []}, {})
        stub.add_response("list_policies", {"Policies": []}, {"Scope": "Local"})
        stub.add_client_error("get_policy", "AccessDenied", http_status_code=403, expected_params={"PolicyArn": arn})
        result = aws_checks.sweep(_ListedByTaggingApi(session, tag, [arn], clients={"iam": iam}), tag["Key"],
                                  tag["Value"], iam_tags=aws_checks.stack_tags("our-org"))
    assert [(f.arn, f.verdict, "AccessDenied" in f.detail) for f in result.findings] == [
        (arn, aws_checks.LEFTOVER, True)]


_UNJUDGED = f"arn:aws:sqs:us-east-1:{ACCOUNT}:langfuse-interruptions"  # no kind the stack creates


def test_a_kind_without_a_judge_is_reported_unknown_without_holding_the_wait(moto):
    """Issue 24 item 3, NFR8: an ARN of a kind the harness cannot judge is UNKNOWN: the wait returns at
    once (not after 15 minutes as for a leftover) and the result names it for the closing message
    (tagging API through botocore's Stubber listing an SQS queue, the rest moto)."""
    session, tag = moto.session(), _tag()
    result = aws_checks.wait_for_clean_sweep(_ListedByTaggingApi(session, tag, [_UNJUDGED]), tag["Key"],
                                             tag["Value"], timeout=1, interval=0.2)
    assert [(f.arn, f.verdict) for f in result.unknown] == [(_UNJUDGED, aws_checks.UNKNOWN)]


def test_a_sweep_that_gives_up_names_the_unknown_kinds_too(moto):
    """Issue 24 item 3: when a real leftover makes the wait give up, its message also lists what could
    not be judged, so nothing listed goes unmentioned (tagging API through botocore's Stubber listing a
    VPC that moto still holds and an SQS queue)."""
    session, tag = moto.session(), _tag()
    vpc = session.client("ec2").create_vpc(CidrBlock="10.6.0.0/16")["Vpc"]["VpcId"]
    listed = _ListedByTaggingApi(session, tag, [_ec2_arn("vpc", vpc), _UNJUDGED], sweeps=20)
    with pytest.raises(aws_checks.CheckError, match=rf"(?s)leftover: \S+vpc/{vpc}.*cannot judge.*unknown: {_UNJUDGED}"):
        aws_checks.wait_for_clean_sweep(listed, tag["Key"], tag["Value"], timeout=0.3, interval=0.1)


# ClickHouse's data volume as 02-deps tags it (Name, Component) plus default_tags' Project.
def _clickhouse_tags(tag: dict[str, str]) -> list[dict[str, str]]:
    return [tag, {"Key": "Name", "Value": "langfuse-clickhouse-data"}, {"Key": "Component", "Value": "clickhouse"}]


def _clickhouse_volume(ec2, tag: dict[str, str]) -> str:
    return ec2.create_volume(AvailabilityZone="us-east-1a", Size=10, VolumeType="gp3", Encrypted=True,
                             TagSpecifications=[{"ResourceType": "volume", "Tags": _clickhouse_tags(tag)}])["VolumeId"]


def test_clickhouses_volume_left_available_is_a_leftover(moto):
    """Issue 24 item 3, decision 24: aws_ebs_volume.clickhouse gets Project from default_tags; while it
    exists detached (available) it costs and is a leftover, judged by DescribeVolumes (against moto)."""
    session, tag = moto.session(), _tag()
    volume = _clickhouse_volume(session.client("ec2"), tag)
    finding = aws_checks.judge(session, _ec2_arn("volume", volume), tag["Key"], tag["Value"])
    assert (finding.verdict, finding.detail) == (aws_checks.LEFTOVER, "EBS volume available")


def test_clickhouses_volume_attached_to_a_node_is_a_leftover(moto):
    """Issue 24 item 3: an in-use volume (still attached to an instance) is a leftover too (against moto,
    the volume attached to an instance there)."""
    session, tag = moto.session(), _tag()
    ec2 = session.client("ec2")
    volume = _clickhouse_volume(ec2, tag)
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/xvdf")
    finding = aws_checks.judge(session, _ec2_arn("volume", volume), tag["Key"], tag["Value"])
    assert (finding.verdict, finding.detail) == (aws_checks.LEFTOVER, "EBS volume in-use")


def test_a_volume_being_deleted_keeps_the_sweep_waiting(moto):
    """Issue 24 item 3: a volume in state deleting is on its way out: DELETING, waited for (recorded
    DescribeVolumes response shape through botocore's Stubber: moto deletes a volume at once)."""
    ec2 = moto.session().client("ec2")
    with Stubber(ec2) as stub:
        stub.add_response("describe_volumes", {"Volumes": [{"VolumeId": "vol-0a1b2c3d4e5f60718", "State": "deleting",
                                                            "Size": 10, "AvailabilityZone": "us-east-1a"}]},
                          {"VolumeIds": ["vol-0a1b2c3d4e5f60718"]})
        finding = aws_checks.judge(_StubbedSession(ec2), _ec2_arn("volume", "vol-0a1b2c3d4e5f60718"), "Project", "p")
    assert finding.verdict == aws_checks.DELETING


def test_a_deleted_volume_the_tagging_api_still_lists_is_gone(moto):
    """Issue 24 item 3: once deleted, DescribeVolumes answers InvalidVolume.NotFound: gone (against moto)."""
    session, tag = moto.session(), _tag()
    ec2 = session.client("ec2")
    volume = _clickhouse_volume(ec2, tag)
    ec2.delete_volume(VolumeId=volume)
    assert aws_checks.judge(session, _ec2_arn("volume", volume), tag["Key"], tag["Value"]).verdict == aws_checks.GONE


def test_the_redis_server_version_is_read_from_info_server(local_redis):
    """Issue 26 item 2: the e2e suite reports the running Valkey's version; against Debian's
    redis-server (the stand-in) the same call returns that server's own version."""
    import subprocess

    from lfharness.testing import localsvc

    version = aws_checks.redis_server_version(local_redis.host, local_redis.port, local_redis.password)
    banner = subprocess.run([str(localsvc.redis_server_bin()), "--version"], capture_output=True, text=True,
                            check=True).stdout
    assert version and f"v={version}" in banner


def test_a_wrong_password_for_the_version_read_is_a_check_error(local_redis):
    """Issue 26 item 2: a refused password is a CheckError naming the server, not a traceback."""
    with pytest.raises(aws_checks.CheckError, match="INFO server failed"):
        aws_checks.redis_server_version(local_redis.host, local_redis.port, "not-the-password-" + "x" * 8)
