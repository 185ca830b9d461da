"""Checks on the deployed data stores.

Every check takes explicit connection settings (a DbConn, or a client/session), so the same code runs
against RDS, the port-forwarded Valkey and S3 on AWS, and against local stand-ins in the tests.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from lfharness.core.wait import WaitTimeout, retry
from lfharness.stack.workspaces import NAMESPACE, PROJECT_TAG

LOG = logging.getLogger("lfharness.stack.aws_checks")


class CheckError(RuntimeError):
    """A data-store check could not run or found something wrong; says where, what, and what next."""


@dataclass(frozen=True)
class DbConn:
    """Where and how to reach PostgreSQL, as one object: the password is left out of repr, so a
    failed `assert rds_migrations_applied(conn) > 100` or a traceback shows
    DbConn(host=..., port=..., user=..., dbname=..., ...) and never the password (NFR1)."""

    host: str
    port: int
    user: str
    password: str = field(repr=False)
    dbname: str
    sslmode: str = "require"
    timeout: float = 10

    def __str__(self) -> str:
        return f"PostgreSQL {self.host}:{self.port} db={self.dbname} user={self.user} sslmode={self.sslmode}"


def pg_connect(conn: DbConn) -> Any:
    """A psycopg connection; connection failures become CheckError naming the server and user."""
    import psycopg  # noqa: PLC0415 (optional heavy import, only for the checks that need it)

    try:
        return psycopg.connect(host=conn.host, port=conn.port, user=conn.user, password=conn.password,
                               dbname=conn.dbname, sslmode=conn.sslmode, connect_timeout=max(1, round(conn.timeout)))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        hint = ("the password was rejected: check the rds_password output / the password you passed"
                if "password authentication failed" in str(exc) else
                "check that the host is reachable on that port, the security group allows you, and sslmode fits")
        raise CheckError(f"{conn}: cannot connect ({reason}); {hint}") from exc


def rds_select_one(conn: DbConn) -> int:
    """SELECT 1 over a fresh connection: proves reachability, TLS mode and the password."""
    with pg_connect(conn) as db:
        return db.execute("SELECT 1").fetchone()[0]


def rds_migrations_applied(conn: DbConn) -> int:
    """Finished rows in Langfuse's Prisma migrations table (unfinished or failed ones do not count)."""
    import psycopg  # noqa: PLC0415

    with pg_connect(conn) as db:
        try:
            return db.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL").fetchone()[0]
        except psycopg.errors.UndefinedTable as exc:
            raise CheckError(f"{conn.dbname} on {conn.host}:{conn.port} has no _prisma_migrations table: Langfuse "
                             "web has not run its migrations yet (check the langfuse-web pod logs)") from exc


def rds_headless_init_rows(conn: DbConn, email: str, org_id: str, project_id: str) -> dict[str, bool]:
    """Which of the headless-init user (by email), organization and project (by id) exist.

    Langfuse's Prisma tables are users, organizations, projects (and organization_memberships).
    """
    with pg_connect(conn) as db:
        def found(sql: str, arg: str) -> bool:
            return db.execute(sql, (arg,)).fetchone() is not None

        # Langfuse stores LANGFUSE_INIT_USER_EMAIL lower-cased (headless init calls toLowerCase).
        return {"user": found("SELECT 1 FROM users WHERE lower(email) = lower(%s)", email),
                "organization": found("SELECT 1 FROM organizations WHERE id = %s", org_id),
                "project": found("SELECT 1 FROM projects WHERE id = %s", project_id)}


def redis_ping(host: str, port: int, password: str | None, timeout: float = 5) -> bool:
    """PING with AUTH; a refused password or an unreachable server becomes CheckError."""
    import redis  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    # One attempt: redis-py's own retries would hide a refused password for seconds; callers use wait.retry.
    client = redis.Redis(host=host, port=port, password=password, socket_timeout=timeout,
                         socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    try:
        return bool(client.ping())
    except redis.exceptions.AuthenticationError as exc:
        raise CheckError(f"Redis {host}:{port}: the password was rejected ({exc}); read it from the "
                         "langfuse-secrets secret (redis-password)") from exc
    except (redis.exceptions.ConnectionError, redis.exceptions.TimeoutError) as exc:
        # TimeoutError is no ConnectionError in redis-py: a server that never answers is unreachable too.
        raise CheckError(f"Redis {host}:{port}: cannot connect ({exc}); is the port-forward running?") from exc
    finally:
        client.close()


def redis_server_version(host: str, port: int, password: str | None, timeout: float = 5) -> str:
    """The running server's version from `INFO server` (Valkey reports valkey_version, Redis
    redis_version); CheckError as redis_ping."""
    import redis  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    client = redis.Redis(host=host, port=port, password=password, socket_timeout=timeout,
                         socket_connect_timeout=timeout, retry=Retry(NoBackoff(), 0))
    try:
        info = client.info("server")
    except redis.exceptions.RedisError as exc:
        raise CheckError(f"Redis {host}:{port}: INFO server failed ({exc})") from exc
    finally:
        client.close()
    return str(info.get("valkey_version") or info.get("redis_version") or "")


def _s3(session_or_client: Any) -> Any:
    # A boto3 client has the S3 operations itself; a session (or stand-in wrapper) makes one.
    return session_or_client if hasattr(session_or_client, "put_object") else session_or_client.client("s3")


def s3_round_trip(session_or_client: Any, bucket: str, key: str, body: bytes) -> bytes:
    """Put body at s3://bucket/key, read it back and compare; returns what was read."""
    client = _s3(session_or_client)
    client.put_object(Bucket=bucket, Key=key, Body=body)
    got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if got != body:
        raise CheckError(f"s3://{bucket}/{key}: wrote {len(body)} bytes, read back {len(got)} different bytes; "
                         "another writer or a bucket policy/encryption setting is changing objects")
    return got


def s3_list_prefix(client: Any, bucket: str, prefix: str) -> list[str]:
    """Every key under prefix (all pages)."""
    pages = _s3(client).get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def s3_get(session_or_client: Any, bucket: str, key: str) -> bytes:
    """The object's bytes; a missing object becomes CheckError naming bucket and key."""
    client = _s3(session_or_client)
    try:
        return client.get_object(Bucket=bucket, Key=key)["Body"].read()
    except client.exceptions.NoSuchKey as exc:
        raise CheckError(f"s3://{bucket}/{key} does not exist (any more)") from exc


# --- the leftover sweep after teardown ------------------------------------------------------------

GONE, PENDING_DELETION, DELETING, RECREATED, LEFTOVER = "gone", "pending-deletion", "deleting", "recreated", "leftover"
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Finding:
    """One ARN the sweep found, judged by the resource's real state.

    gone: deleted, the tagging API still lists it ("previously tagged resources");
    pending-deletion: a KMS key in its waiting period (no charge, deleted by AWS at the end);
    deleting: on its way out (an RDS instance or EKS cluster still deleting): wait;
    recreated: exists again without our tag (a log group EKS wrote to after Terraform deleted it);
    leftover: still there, a real leftover;
    unknown: a kind the harness has no judge for (none of the stack's own kinds, see _JUDGES): named
    in the teardown's closing message for a look by hand, never waited on, since the tagging API
    may list it long after it is gone.
    """

    arn: str
    verdict: str
    detail: str

    def __str__(self) -> str:
        return f"{self.verdict}: {self.arn} ({self.detail})"


@dataclass(frozen=True)
class Sweep:
    findings: tuple[Finding, ...]

    def having(self, *verdicts: str) -> list[Finding]:
        return [f for f in self.findings if f.verdict in verdicts]

    @property
    def clean(self) -> bool:
        """Nothing left but deleted resources, KMS keys pending deletion and kinds the harness cannot
        judge (UNKNOWN: reported by `unknown`, not waited for)."""
        return not self.having(DELETING, RECREATED, LEFTOVER)

    @property
    def unknown(self) -> list[Finding]:
        """The ARNs of a kind the harness cannot judge: for the closing message, to check by hand."""
        return self.having(UNKNOWN)

    def __str__(self) -> str:
        return "\n".join(str(f) for f in self.findings) or "nothing tagged"


def tagged_resources(session: Any, tag_key: str, tag_value: str) -> list[str]:
    """ARNs the Resource Groups Tagging API lists with the tag in the session's region.

    It lists "all the tagged or previously tagged resources": deleted ones linger and a KMS key
    pending deletion stays tagged, so each ARN still has to be judged (judge()). It does not
    cover IAM (iam_tagged()).
    """
    client = session.client("resourcegroupstaggingapi")
    pages = client.get_paginator("get_resources").paginate(TagFilters=[{"Key": tag_key, "Values": [tag_value]}])
    return [r["ResourceARN"] for page in pages for r in page.get("ResourceTagMappingList", [])]


def _has_tag(tags: list[dict[str, str]], tag_key: str, tag_value: str) -> bool:
    return any(t.get("Key") == tag_key and t.get("Value") == tag_value for t in tags)


def stack_tags(organization: str) -> dict[str, str]:
    """The tags every workspace's default_tags write besides Project (terraform/*/providers.tf) that
    tell this deployment from another one of the project in the same account: the Terraform Cloud
    organization holding its state (Workspace differs per workspace, so it is not required)."""
    return {"ManagedBy": "terraform", "Organization": organization}


def iam_tagged(session: Any, tag_key: str, tag_value: str, also: Mapping[str, str] | None = None) -> list[str]:
    """IAM roles, OIDC providers and customer-managed policies carrying the tag (and every tag in
    `also`, e.g. stack_tags()), asked of IAM itself.

    The tagging API does not cover IAM roles; ListRoles returns no tags, so each role's tags are
    read with ListRoleTags. Service-linked roles (path /aws-service-role/) cannot carry our tags.
    IAM is global: this sees the account's resources from every region, another deployment's
    included, which `also` tells apart.
    """
    wanted = {tag_key: tag_value, **(also or {})}

    def ours(tags: list[dict[str, str]]) -> bool:
        return all(_has_tag(tags, key, value) for key, value in wanted.items())

    iam = session.client("iam")
    found = []
    for page in iam.get_paginator("list_roles").paginate():
        for role in page["Roles"]:
            if role.get("Path", "/").startswith("/aws-service-role/"):
                continue
            if ours(iam.list_role_tags(RoleName=role["RoleName"])["Tags"]):
                found.append(role["Arn"])
    for provider in iam.list_open_id_connect_providers()["OpenIDConnectProviderList"]:
        if ours(iam.list_open_id_connect_provider_tags(OpenIDConnectProviderArn=provider["Arn"])["Tags"]):
            found.append(provider["Arn"])
    for page in iam.get_paginator("list_policies").paginate(Scope="Local"):
        for policy in page["Policies"]:
            if ours(iam.list_policy_tags(PolicyArn=policy["Arn"])["Tags"]):
                found.append(policy["Arn"])
    return found


def _error_code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _kms(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    try:
        meta = session.client("kms").describe_key(KeyId=arn)["KeyMetadata"]
    except ClientError as exc:
        if _error_code(exc) == "NotFoundException":
            return Finding(arn, GONE, "KMS key no longer exists")
        raise
    state = meta.get("KeyState")
    if state in ("PendingDeletion", "PendingReplicaDeletion"):
        return Finding(arn, PENDING_DELETION, f"KMS key deleted by AWS on {meta.get('DeletionDate')}, no charge until then")
    return Finding(arn, LEFTOVER, f"KMS key in state {state}")


def _rds(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    kind, name = arn.split(":")[5], arn.split(":", 6)[6]
    rds = session.client("rds")
    if kind == "db":
        try:
            status = rds.describe_db_instances(DBInstanceIdentifier=name)["DBInstances"][0]["DBInstanceStatus"]
        except ClientError as exc:
            if _error_code(exc) == "DBInstanceNotFound":
                return Finding(arn, GONE, "RDS instance no longer exists")
            raise
        if status == "deleting":
            return Finding(arn, DELETING, "RDS instance still deleting")
        return Finding(arn, LEFTOVER, f"RDS instance in status {status}")
    # kind -> (the lookup, its list in the answer, the error code once it is gone)
    lookups: dict[str, tuple[Callable[[], Any], str, str]] = {
        "subgrp": (lambda: rds.describe_db_subnet_groups(DBSubnetGroupName=name), "DBSubnetGroups",
                   "DBSubnetGroupNotFoundFault"),
        "pg": (lambda: rds.describe_db_parameter_groups(DBParameterGroupName=name), "DBParameterGroups",
               "DBParameterGroupNotFound"),
        "og": (lambda: rds.describe_option_groups(OptionGroupName=name), "OptionGroupsList", "OptionGroupNotFoundFault"),
    }
    if kind not in lookups:
        return Finding(arn, UNKNOWN, f"RDS {kind}: the harness has no judge for this kind")
    lookup, listed, not_found = lookups[kind]
    try:
        found = lookup().get(listed)
    except ClientError as exc:
        if _error_code(exc) == not_found:
            return Finding(arn, GONE, f"RDS {kind} no longer exists")
        raise
    if not found:  # AWS answers the error above; an empty list says the same
        return Finding(arn, GONE, f"RDS {kind} no longer exists")
    return Finding(arn, LEFTOVER, f"RDS {kind} still exists")


def _logs(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    name = arn.split(":log-group:", 1)[1].removesuffix(":*")
    logs = session.client("logs")
    groups = [g for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"] if g["logGroupName"] == name]
    if not groups:
        return Finding(arn, GONE, "log group no longer exists")
    tags = logs.list_tags_for_resource(resourceArn=groups[0]["logGroupArn"].removesuffix(":*")).get("tags", {})
    if tags.get(tag_key) == tag_value:
        return Finding(arn, LEFTOVER, "log group still exists with the project tag: Terraform did not delete it")
    return Finding(arn, RECREATED, "log group exists again without the project tag: EKS or RDS wrote "
                   "to it after Terraform deleted it; it stores logs (cost) and makes the next apply fail "
                   f"(ResourceAlreadyExistsException): delete it (aws logs delete-log-group --log-group-name {name})")


def _access_entry_exists(eks: Any, cluster: str, arn: str) -> bool:
    # The entry's ARN does not carry its principal's full ARN (a role path is lost), and
    # DescribeAccessEntry wants that: compare the cluster's entries by accessEntryArn instead.
    for page in eks.get_paginator("list_access_entries").paginate(clusterName=cluster):
        for principal in page.get("accessEntries", []):
            entry = eks.describe_access_entry(clusterName=cluster, principalArn=principal)["accessEntry"]
            if entry.get("accessEntryArn") == arn:
                return True
    return False


def _eks(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    resource = arn.split(":", 5)[5]
    kind, _, rest = resource.partition("/")
    cluster = rest.split("/")[0]
    eks = session.client("eks")
    try:
        if kind == "cluster":
            status = eks.describe_cluster(name=cluster)["cluster"]["status"]
        elif kind == "nodegroup":
            group = rest.split("/")[1]
            status = eks.describe_nodegroup(clusterName=cluster, nodegroupName=group)["nodegroup"]["status"]
        elif kind in ("addon", "access-entry"):
            # Both go with their cluster: a cluster that is gone answers for them (and moto has neither API).
            eks.describe_cluster(name=cluster)
            if kind == "access-entry":
                if _access_entry_exists(eks, cluster, arn):
                    return Finding(arn, LEFTOVER, f"EKS access entry of cluster {cluster} still exists")
                return Finding(arn, GONE, f"no access entry of cluster {cluster} has this ARN any more")
            status = eks.describe_addon(clusterName=cluster, addonName=rest.split("/")[1])["addon"]["status"]
        else:
            return Finding(arn, UNKNOWN, f"EKS {kind}: the harness has no judge for this kind")
    except ClientError as exc:
        if _error_code(exc) == "ResourceNotFoundException":
            return Finding(arn, GONE, f"EKS {kind} no longer exists" if kind in ("cluster", "nodegroup") else
                           f"EKS {kind} gone (its cluster {cluster} or the {kind} itself no longer exists)")
        raise
    return Finding(arn, DELETING if status == "DELETING" else LEFTOVER, f"EKS {kind} status {status}")


# ARN resource type -> (Describe* operation, its id list parameter, the response's list): the kinds
# 01-network and 02-deps create (and a NAT gateway or address, should one ever be added), each asked of
# EC2 itself. A security-group-rule is an aws_vpc_security_group_ingress_rule / _egress_rule (02-deps'
# RDS rules): taggable, so default_tags give it Project and the tagging API lists its sgr- ARN.
_EC2_DESCRIBE: dict[str, tuple[str, str, str]] = {
    "vpc": ("describe_vpcs", "VpcIds", "Vpcs"),
    "subnet": ("describe_subnets", "SubnetIds", "Subnets"),
    "security-group": ("describe_security_groups", "GroupIds", "SecurityGroups"),
    "security-group-rule": ("describe_security_group_rules", "SecurityGroupRuleIds", "SecurityGroupRules"),
    "internet-gateway": ("describe_internet_gateways", "InternetGatewayIds", "InternetGateways"),
    "route-table": ("describe_route_tables", "RouteTableIds", "RouteTables"),
    "network-acl": ("describe_network_acls", "NetworkAclIds", "NetworkAcls"),
    "launch-template": ("describe_launch_templates", "LaunchTemplateIds", "LaunchTemplates"),
    "network-interface": ("describe_network_interfaces", "NetworkInterfaceIds", "NetworkInterfaces"),
    "natgateway": ("describe_nat_gateways", "NatGatewayIds", "NatGateways"),
    "elastic-ip": ("describe_addresses", "AllocationIds", "Addresses"),
}


def _ec2(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    kind, _, ident = arn.split(":", 5)[5].partition("/")
    ec2 = session.client("ec2")
    try:
        if kind == "instance":
            state = ec2.describe_instances(InstanceIds=[ident])["Reservations"][0]["Instances"][0]["State"]["Name"]
            verdict = {"terminated": GONE, "shutting-down": DELETING}.get(state, LEFTOVER)
            return Finding(arn, verdict, f"EC2 instance {state}")
        if kind == "volume":
            # available (detached) and in-use both cost; "deleted" is listed for a moment before NotFound.
            state = ec2.describe_volumes(VolumeIds=[ident])["Volumes"][0]["State"]
            verdict = {"deleted": GONE, "deleting": DELETING}.get(state, LEFTOVER)
            return Finding(arn, verdict, f"EBS volume {state}")
        if kind in _EC2_DESCRIBE:
            operation, ids_parameter, listed = _EC2_DESCRIBE[kind]
            items = getattr(ec2, operation)(**{ids_parameter: [ident]})[listed]
            state = str((items[0].get("State") or "") if items else "")
            if not items or state == "deleted":  # a NAT gateway stays listed as deleted for an hour
                return Finding(arn, GONE, f"EC2 {kind} no longer exists")
            if state == "deleting":
                return Finding(arn, DELETING, f"EC2 {kind} deleting")
            return Finding(arn, LEFTOVER, f"EC2 {kind} still exists" + (f" ({state})" if state else ""))
    except ClientError as exc:
        # <Kind>ID.NotFound for most kinds (InvalidSecurityGroupRuleId.NotFound for a rule);
        # NatGatewayNotFound once a deleted NAT gateway is forgotten.
        if _error_code(exc).endswith(".NotFound") or _error_code(exc) == "NatGatewayNotFound":
            return Finding(arn, GONE, f"EC2 {kind} no longer exists")
        raise
    return Finding(arn, UNKNOWN, f"EC2 {kind}: the harness has no judge for this kind")


def _s3_bucket(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    bucket = arn.split(":::", 1)[1].split("/")[0]
    try:
        session.client("s3").head_bucket(Bucket=bucket)
    except ClientError as exc:
        if _error_code(exc) in ("404", "NoSuchBucket", "NotFound"):
            return Finding(arn, GONE, "S3 bucket no longer exists")
        raise
    return Finding(arn, LEFTOVER, "S3 bucket still exists")


# IAM ARN resource type -> the Get* call that answers NoSuchEntity once it is gone. The tagging API
# (us-east-1) lists OIDC providers and policies, deleted ones too; iam_tagged() finds roles.
_IAM_GET: dict[str, Callable[[Any, str], Any]] = {
    # A role's ARN may carry a path (role/path/name); GetRole wants the bare name.
    "role": lambda iam, arn: iam.get_role(RoleName=arn.rsplit("/", 1)[1]),
    "oidc-provider": lambda iam, arn: iam.get_open_id_connect_provider(OpenIDConnectProviderArn=arn),
    "policy": lambda iam, arn: iam.get_policy(PolicyArn=arn),
}


def _iam(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    kind = arn.split(":", 5)[5].split("/")[0]
    if kind not in _IAM_GET:
        return Finding(arn, UNKNOWN, f"IAM {kind}: the harness has no judge for this kind")
    try:
        _IAM_GET[kind](session.client("iam"), arn)
    except ClientError as exc:
        if _error_code(exc) == "NoSuchEntity":
            return Finding(arn, GONE, f"IAM {kind} no longer exists")
        raise
    return Finding(arn, LEFTOVER, f"IAM {kind} still exists")


_JUDGES: dict[str, Callable[[Any, str, str, str], Finding]] = {
    "kms": _kms, "rds": _rds, "logs": _logs, "eks": _eks, "ec2": _ec2, "iam": _iam, "s3": _s3_bucket,
}


def _service(arn: str) -> str:
    return arn.split(":")[2]


_UNCHECKED = "could not check its state"  # a judge's error: LEFTOVER, never taken for an answer


def judge(session: Any, arn: str, tag_key: str, tag_value: str) -> Finding:
    """The resource behind an ARN the sweep found, by its real state (see Finding); a service or
    kind without a judge is UNKNOWN. A judge that cannot get an answer (AccessDenied, an
    unexpected response) says LEFTOVER with the error: the wait asks again, and a lasting error is
    named when it gives up, rather than a resource passing unseen."""
    service = _service(arn)
    check = _JUDGES.get(service)
    if check is None:
        return Finding(arn, UNKNOWN, f"{service}: the harness has no judge for this service")
    try:
        return check(session, arn, tag_key, tag_value)
    except (ClientError, BotoCoreError, KeyError, IndexError) as exc:
        # e.g. AccessDenied, or a response without the expected field: report the ARN, keep the sweep.
        return Finding(arn, LEFTOVER, f"{_UNCHECKED}: {type(exc).__name__}: {exc}")


def _existing_log_groups(session: Any, names: tuple[str, ...]) -> list[str]:
    """ARNs of the named log groups that exist (whatever their tags)."""
    logs = session.client("logs")
    found = []
    for name in names:
        found += [g["logGroupArn"].removesuffix(":*") for g in logs.describe_log_groups(logGroupNamePrefix=name)["logGroups"]
                  if g["logGroupName"] == name]
    return found


def sweep(session: Any, tag_key: str, tag_value: str, log_groups: tuple[str, ...] = (),
          iam_tags: Mapping[str, str] | None = None) -> Sweep:
    """Every resource tagged tag_key=tag_value (tagging API in the session's region, plus IAM), judged.

    log_groups: names checked whether tagged or not. EKS re-creates its control-plane log group
    without tags when it writes after Terraform deleted it; the tagging API may not list that one.
    iam_tags: further tags an IAM resource must carry to count (stack_tags()): IAM is account-wide,
    and another deployment of the project in the same account carries the same Project tag.
    The tagging API lists IAM OIDC providers and policies too, deleted ones included, without those
    further tags: each is judged by IAM itself (gone once deleted); one that still exists but that
    iam_tagged() did not find lacks this deployment's tags, so it is not counted.
    """
    ours_in_iam = iam_tagged(session, tag_key, tag_value, iam_tags)
    arns = list(dict.fromkeys(tagged_resources(session, tag_key, tag_value) + ours_in_iam
                              + _existing_log_groups(session, log_groups)))
    findings = []
    for arn in arns:
        finding = judge(session, arn, tag_key, tag_value)
        if (finding.verdict == LEFTOVER and _service(arn) == "iam" and arn not in ours_in_iam
                and not finding.detail.startswith(_UNCHECKED)):
            LOG.info("sweep: %s exists but lacks this deployment's tags %s: another deployment's, not counted",
                     arn, dict(iam_tags or {}))
            continue
        findings.append(finding)
    result = Sweep(tuple(findings))
    LOG.info("sweep %s=%s: %d found, %s", tag_key, tag_value, len(result.findings),
             "clean" if result.clean else "not clean:\n" + str(result))
    if result.unknown:
        LOG.warning("sweep: %d resource(s) of a kind the harness cannot judge, check them by hand:\n%s",
                    len(result.unknown), "\n".join(str(f) for f in result.unknown))
    return result


def wait_for_clean_sweep(session: Any, tag_key: str, tag_value: str, *, log_groups: tuple[str, ...] = (),
                         iam_tags: Mapping[str, str] | None = None, remove_recreated: bool = False,
                         timeout: float = 600, interval: float = 30) -> Sweep:
    """Sweeps until nothing but deleted resources, KMS keys pending deletion and kinds the harness
    cannot judge remain (RDS and EKS may still be deleting); CheckError listing every remaining
    resource and its state otherwise. The returned Sweep's `unknown` are for the closing message:
    an unjudged kind never holds this wait, since the tagging API may list it long after it is gone.

    remove_recreated: delete log groups EKS re-created after destroy as they show up (they cost
    storage and break the next apply); they are then gone at the next sweep.
    """
    last: list[Sweep] = []

    def attempt() -> Sweep:
        last[:] = [sweep(session, tag_key, tag_value, log_groups, iam_tags)]
        if remove_recreated:
            delete_recreated_log_groups(session, last[0])
        return last[0]

    try:
        return retry(attempt, timeout=timeout, interval=interval, validator=lambda s: s.clean,
                     what=f"no resource tagged {tag_key}={tag_value} left")
    except WaitTimeout as exc:
        if not last:  # no sweep finished (e.g. AccessDenied on ListRoles): say why, not "0 resource(s) remain"
            raise CheckError(f"after {timeout:g}s, no sweep of the resources tagged {tag_key}={tag_value} "
                             f"could run: {exc}") from None
        remaining = last[0].having(DELETING, RECREATED, LEFTOVER)
        unknown = last[0].unknown
        raise CheckError(f"after {timeout:g}s, {len(remaining)} resource(s) tagged {tag_key}={tag_value} remain:\n"
                         + "\n".join(str(f) for f in remaining)
                         + (f"\nand {len(unknown)} of a kind the harness cannot judge (check by hand):\n"
                            + "\n".join(str(f) for f in unknown) if unknown else "")) from None


def delete_recreated_log_groups(session: Any, result: Sweep) -> list[str]:
    """Deletes the log groups the sweep judged re-created by EKS after destroy; returns their names."""
    logs = session.client("logs")
    names = [f.arn.split(":log-group:", 1)[1].removesuffix(":*") for f in result.having(RECREATED)]
    for name in names:
        LOG.warning("deleting log group %s: re-created by EKS after Terraform deleted it", name)
        logs.delete_log_group(logGroupName=name)
    return names


_PVC_NAMESPACE_TAG = "kubernetes.io/created-for/pvc/namespace"  # set by the EBS CSI driver on PVC volumes


def _pvc_volume_states(session: Any, namespace: str) -> dict[str, str]:
    """Volume id -> state of the EBS volumes the CSI driver made for the namespace's PVCs, tagged
    for this stack (Project from the driver's extraVolumeTags). The EC2 API is regional and the
    cluster's name is fixed, so in this region only this deployment's driver makes them.
    ClickHouse's volume belongs to 02-deps: it carries no PVC tag and is never one of them."""
    pages = session.client("ec2").get_paginator("describe_volumes").paginate(Filters=[
        {"Name": f"tag:{PROJECT_TAG[0]}", "Values": [PROJECT_TAG[1]]},
        {"Name": f"tag:{_PVC_NAMESPACE_TAG}", "Values": [namespace]}])
    return {v["VolumeId"]: v["State"] for page in pages for v in page["Volumes"]}


def pvc_volumes(session: Any, namespace: str = NAMESPACE) -> list[str]:
    """EBS volumes the CSI driver made for the namespace's PVCs that still exist (a deleted PVC's
    volume is removed asynchronously, and only while the driver runs)."""
    return [volume for volume, state in _pvc_volume_states(session, namespace).items()
            if state not in ("deleting", "deleted")]


@dataclass
class VolumeRelease:
    """What delete_detached_pvc_volumes did: the volumes it deleted, and the others named with why."""

    deleted: list[str] = field(default_factory=list)
    kept: list[str] = field(default_factory=list)


def delete_detached_pvc_volumes(session: Any, namespace: str = NAMESPACE) -> VolumeRelease:
    """Deletes the namespace's PVC volumes (see _pvc_volume_states) that are `available`, i.e.
    attached to nothing. Only for after the cluster is gone: then no EBS CSI driver is left to
    delete them, and nothing will attach them again. Any other state (in-use, creating, error) is
    kept and named; a refused delete is named too, never raised, so the teardown goes on."""
    ec2 = session.client("ec2")
    release = VolumeRelease()
    for volume, state in _pvc_volume_states(session, namespace).items():
        if state in ("deleting", "deleted"):
            continue
        if state != "available":
            release.kept.append(f"{volume} ({state})")
            continue
        try:
            ec2.delete_volume(VolumeId=volume)
        except ClientError as exc:
            release.kept.append(f"{volume} (available; delete refused: {_error_code(exc)})")
            continue
        LOG.warning("deleted EBS volume %s of a PVC in namespace %s: the cluster and its EBS CSI driver are gone, "
                    "so nothing else would", volume, namespace)
        release.deleted.append(volume)
    return release
