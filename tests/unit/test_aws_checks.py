"""The e2e suite's data-store checks, run against real local stand-ins (static tier).

PostgreSQL and Redis are Debian's packages started on free loopback ports; S3 and the tagging
API are moto's server. Each docstring names the stand-in.
"""

from __future__ import annotations

import secrets

import boto3
import psycopg
import pytest
import redis

from lfharness import aws_checks, localsvc

pytestmark = pytest.mark.static


def _or_skip(factory, *args):
    try:
        return factory(*args)
    except localsvc.StandInMissing as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def pg():
    password = secrets.token_hex(16)
    with _or_skip(localsvc.local_postgres, password) as params:
        with psycopg.connect(**params.conn()) as db:
            db.execute("CREATE TABLE _prisma_migrations (id text PRIMARY KEY, finished_at timestamptz)")
            db.execute("INSERT INTO _prisma_migrations VALUES ('m1', now()), ('m2', now()), ('m3', NULL)")
            db.execute("CREATE TABLE users (id text PRIMARY KEY, email text UNIQUE)")
            db.execute("CREATE TABLE organizations (id text PRIMARY KEY, name text)")
            db.execute("CREATE TABLE projects (id text PRIMARY KEY, org_id text)")
            db.execute("INSERT INTO users VALUES ('u1', 'ops@example.com')")
            db.execute("INSERT INTO organizations VALUES ('langfuse', 'Langfuse')")
        yield params


@pytest.fixture(scope="module")
def redis_port():
    password = secrets.token_hex(12)
    with _or_skip(localsvc.local_redis, password) as port:
        yield port, password


@pytest.fixture(scope="module")
def moto_session():
    with localsvc.moto_server() as endpoint:
        session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                region_name="us-east-1")
        yield session, endpoint


def test_rds_select_one_connects_with_the_password(pg):
    """FR5, FR6: SELECT 1 with the generated password, against a local PostgreSQL."""
    assert aws_checks.rds_select_one(**pg.conn()) == 1


def test_rds_check_fails_with_a_wrong_password(pg):
    """FR6, NFR3: a wrong password is refused, against a local PostgreSQL."""
    with pytest.raises(psycopg.OperationalError, match="password authentication failed"):
        aws_checks.rds_select_one(**{**pg.conn(), "password": "wrong-password"})


def test_migration_count_ignores_unfinished_migrations(pg):
    """FR11: only finished Prisma migrations count, against a local PostgreSQL."""
    assert aws_checks.rds_migrations_applied(**pg.conn()) == 2


def test_headless_init_rows_report_each_missing_row(pg):
    """FR14: user and org found, the project reported missing, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows("ops@example.com", "langfuse", "langfuse-default", **pg.conn())
    assert rows == {"user": True, "organization": True, "project": False}


def test_redis_ping_answers_with_the_password(redis_port):
    """FR21: PING answers with the generated password, against a local Redis."""
    port, password = redis_port
    assert aws_checks.redis_ping("127.0.0.1", port, password) is True


def test_redis_ping_fails_with_a_wrong_password(redis_port):
    """FR21: a wrong password is refused, against a local Redis."""
    port, _ = redis_port
    with pytest.raises(redis.exceptions.AuthenticationError):
        aws_checks.redis_ping("127.0.0.1", port, "wrong")


def test_s3_round_trip_reads_back_what_it_wrote(moto_session):
    """FR7, FR9: put then get returns the same bytes, against moto."""
    session, endpoint = moto_session
    s3 = session.client("s3", endpoint_url=endpoint)
    s3.create_bucket(Bucket="langfuse-storage-test1")
    body = secrets.token_bytes(64)
    assert aws_checks.s3_round_trip(s3, "langfuse-storage-test1", "events/x.json", body) == body
    assert aws_checks.s3_list_prefix(s3, "langfuse-storage-test1", "events/") == ["events/x.json"]


def test_leftovers_finds_tagged_resources_until_they_are_deleted(moto_session):
    """FR27, NFR8: the sweep lists resources tagged with the project, then none, against moto."""
    session, endpoint = moto_session
    ec2 = session.client("ec2", endpoint_url=endpoint)
    tagging_session = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                                    region_name="us-east-1")
    tag = {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}
    vpc = ec2.create_vpc(CidrBlock="10.9.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]

    class _Endpointed:
        def client(self, name):
            return tagging_session.client(name, endpoint_url=endpoint)

    assert any(vpc["VpcId"] in arn for arn in aws_checks.leftovers(_Endpointed(), tag["Key"], tag["Value"]))
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert aws_checks.leftovers(_Endpointed(), tag["Key"], tag["Value"]) == []
