"""Shared fixtures of the unit tier: one plan per workspace, and the local stand-ins.

Plans: one `Workbench` per session (the local Terraform Cloud fake, the module-registry stand-in
over LFK8S_MODULE_MIRROR, the provider stand-in from the set-up's mirror), and one whole plan per
workspace shared by the small tests of the plan tier (and the chart tier).
The data-store stand-ins are real software (Debian's PostgreSQL and Redis, moto's server), started
once per session on free loopback ports. A test skips only when a binary is missing, naming the package.
The teardown and cancellation tests share `cli_env` (the random and time providers of the offline
mirror, for lfharness.testing.quickstack's throwaway workspaces) and `tfc_fake` (the fake with a client).
"""

from __future__ import annotations

import logging
import os
import secrets

import psycopg
import pytest

from lfharness.core.tfc import TfcClient
from lfharness.testing import localca, localsvc, plan, plancache, quickstack
from lfharness.testing.cluster import binaries
from lfharness.testing.cluster.localkube import LocalKube
from lfharness.testing.tfc_fake import TfcFake

# Langfuse's Prisma tables with the columns the checks read (and a few real neighbours).
_SCHEMA = """
CREATE TABLE _prisma_migrations (
    id varchar(36) PRIMARY KEY, checksum varchar(64) NOT NULL, finished_at timestamptz,
    migration_name varchar(255) NOT NULL, logs text, rolled_back_at timestamptz,
    started_at timestamptz NOT NULL DEFAULT now(), applied_steps_count integer NOT NULL DEFAULT 0);
CREATE TABLE users (id text PRIMARY KEY, name text, email text UNIQUE, password text,
    created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE organizations (id text PRIMARY KEY, name text NOT NULL, created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE projects (id text PRIMARY KEY, org_id text NOT NULL REFERENCES organizations(id), name text NOT NULL,
    created_at timestamp NOT NULL DEFAULT now());
CREATE TABLE organization_memberships (id text PRIMARY KEY, org_id text NOT NULL REFERENCES organizations(id),
    user_id text NOT NULL REFERENCES users(id), role text NOT NULL);
INSERT INTO _prisma_migrations (id, checksum, finished_at, migration_name) VALUES
    ('m1', 'c1', now(), '20230518191501_init'), ('m2', 'c2', now(), '20230522092340_add_users'),
    ('m3', 'c3', NULL, '20240101000000_still_running');
INSERT INTO users (id, name, email) VALUES ('u1', 'Ops', 'ops@example.com');
INSERT INTO organizations (id, name) VALUES ('langfuse-org', 'Langfuse');
INSERT INTO projects (id, org_id, name) VALUES ('langfuse-project', 'langfuse-org', 'default');
INSERT INTO organization_memberships VALUES ('om1', 'langfuse-org', 'u1', 'OWNER');
"""


def _started(service):
    """Enter a stand-in, or skip the requesting tests when its Debian package is not installed."""
    try:
        return service.__enter__()
    except localsvc.StandInMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="session")
def plan_cache(tmp_path_factory) -> plancache.PlanCache:
    """Whole plans of this run, shared by its processes: with pytest-xdist every worker's base
    folder sits in the run's, so the cache goes there and each workspace is planned once per run."""
    base = tmp_path_factory.getbasetemp()
    run = base.parent if os.environ.get("PYTEST_XDIST_WORKER") else base
    return plancache.PlanCache(run / "plan-cache")


@pytest.fixture(scope="session")
def workbench(tmp_path_factory, plan_cache):
    """The offline plan environment of the session (skips, saying why, when the set-up is missing)."""
    try:
        with plan.Workbench(tmp_path_factory.mktemp("workbench"), plan_cache=plan_cache) as bench:
            yield bench
    except plan.PlanUnavailable as exc:
        pytest.skip(str(exc))


def _whole_plan(workbench, tmp_path_factory, workspace: str, variables: dict | None = None):
    reason = workbench.unavailable(workspace)
    if reason:
        pytest.skip(reason)
    return workbench.plan(workspace, tmp_path_factory.mktemp(workspace) / workspace, variables)


@pytest.fixture(scope="session")
def network_plan(workbench, tmp_path_factory):
    """01-network planned whole (needs the vpc, eks, kms and iam module sources)."""
    return _whole_plan(workbench, tmp_path_factory, "01-network")


@pytest.fixture(scope="session")
def deps_plan(workbench, tmp_path_factory):
    """02-deps planned whole (needs the rds and iam module sources), its random_* applied first."""
    return _whole_plan(workbench, tmp_path_factory, "02-deps")


@pytest.fixture(scope="session")
def app_plan(workbench, tmp_path_factory):
    """03-app planned whole (no registry module: plans everywhere), its secrets applied first."""
    return _whole_plan(workbench, tmp_path_factory, "03-app")


@pytest.fixture(scope="session")
def secret_exposed_plan(workbench, tmp_path_factory):
    """03-app planned with plan.SECRET_EXPOSED_EDIT: its Secret's data visible (the real plan sends
    it write-only), for the chart and kube tiers, which resolve and install the Secret."""
    return workbench.plan("03-app", tmp_path_factory.mktemp("03-app-exposed") / "03-app",
                          edit=plan.SECRET_EXPOSED_EDIT)


@pytest.fixture(scope="session")
def local_pg(tmp_path_factory):
    """A local PostgreSQL with Langfuse's migration, user, organization and project tables."""
    service = localsvc.LocalPostgres(tmp_path_factory.mktemp("pg"))
    _started(service)
    try:
        with psycopg.connect(**service.conn()) as db:
            db.execute(_SCHEMA)
        yield service
    finally:
        service.__exit__(None, None, None)


@pytest.fixture(scope="session")
def local_redis(tmp_path_factory):
    """A local Redis requiring a random password."""
    service = localsvc.LocalRedis(tmp_path_factory.mktemp("redis"), secrets.token_hex(12))
    _started(service)
    try:
        yield service
    finally:
        service.__exit__(None, None, None)


@pytest.fixture(scope="session")
def moto():
    """moto's server on a free loopback port."""
    with localsvc.MotoServer() as server:
        yield server


@pytest.fixture
def names() -> dict[str, str]:
    """Names of one stack's cluster, RDS instance and bucket, unique to the test (moto's server is
    shared by the session): the pause and resume tests."""
    suffix = secrets.token_hex(4)
    return {"cluster": f"lf-{suffix}", "rds": f"langfuse-{suffix}", "bucket": f"langfuse-storage-{suffix}"}


@pytest.fixture
def aws(moto, names):
    """moto with the data stores a pause keeps: an available RDS instance and the bucket (us-east-1)."""
    session = moto.session("us-east-1")
    session.client("rds").create_db_instance(DBInstanceIdentifier=names["rds"], DBInstanceClass="db.t4g.micro",
                                             Engine="postgres", MasterUsername="langfuse",
                                             MasterUserPassword="x" * 16, AllocatedStorage=20)
    session.client("s3").create_bucket(Bucket=names["bucket"])
    return session


@pytest.fixture
def net(aws) -> dict[str, str]:
    """A VPC with a subnet and a node security group in `aws` (moto): where the pause tests put node
    instances and network interfaces."""
    ec2 = aws.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20")["Subnet"]["SubnetId"]
    sg = ec2.create_security_group(GroupName=f"node-{secrets.token_hex(4)}", Description="node", VpcId=vpc)["GroupId"]
    return {"vpc": vpc, "subnet": subnet, "sg": sg}


@pytest.fixture(autouse=True, scope="session")
def _quiet_tftest():
    """tftest logs every line Terraform prints at INFO; the harness's own progress is enough."""
    logging.getLogger("tftest").setLevel(logging.WARNING)


@pytest.fixture(scope="session")
def app_cycle(workbench, tmp_path_factory) -> dict:
    """03-app through a pause and a resume: running -> applied -> paused (03-app is paused first,
    while the cluster still exists) -> applied -> resumed. Plans by stage."""
    running = workbench.plan("03-app", tmp_path_factory.mktemp("03-app-cycle") / "03-app")
    workbench.apply(running)
    paused = workbench.replan(running, plan.PAUSED)
    workbench.apply(paused)
    return {"running": running, "paused": paused, "resuming": workbench.replan(running, plan.RUNNING)}


@pytest.fixture(scope="session")
def local_kube(tmp_path_factory):
    """One real Kubernetes 1.35 control plane per session (kube tier): fresh etcd, kube-apiserver,
    controller-manager, scheduler, kwok as the kubelets of two t3.medium-shaped nodes carrying the
    EKS addon pods; port-forwards reach local stand-ins. Stopped by PID at the session's end."""
    reason = binaries.unavailable_reason()
    if reason:
        pytest.skip(reason)
    with LocalKube(tmp_path_factory.mktemp("kube")) as env:
        logging.getLogger("lfharness.kube").info("local cluster up in %.1fs", env.cluster.started_in)
        yield env


@pytest.fixture
def cli_env(tmp_path) -> dict[str, str]:
    """Terraform's CLI config pointing at the offline provider mirror, for quickstack's workspaces
    (skips, naming them, when the random or time provider is missing)."""
    reason = quickstack.providers_missing(["random", "time"])
    if reason:
        pytest.skip(reason)
    return quickstack.cli_env(tmp_path)


@pytest.fixture(scope="session")
def ca(tmp_path_factory) -> localca.CaFiles:
    """The local CA that signs the Terraform Cloud fake's certificate (one a session)."""
    return localca.make_ca(tmp_path_factory.mktemp("ca"))


@pytest.fixture
def tfc_fake(ca):
    """The local Terraform Cloud fake and an operator's TfcClient for it: (fake, client)."""
    token = "teardown-test-token-" + os.urandom(6).hex()
    with TfcFake(ca, token) as fake:
        yield fake, TfcClient(token, fake.organization, base_url=fake.url, verify=ca.ca, timeout=5)
