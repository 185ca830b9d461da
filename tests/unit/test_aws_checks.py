"""The e2e suite's data-store checks, run against real local stand-ins (static tier).

PostgreSQL and Redis are Debian's packages started on free loopback ports; S3 and the tagging
API are moto's server (fixtures in conftest.py). Each docstring names the stand-in.
"""

from __future__ import annotations

import secrets

import pytest

from lfharness import aws_checks

pytestmark = pytest.mark.static


def test_rds_select_one_connects_with_the_password(local_pg):
    """FR5, FR6: SELECT 1 answers with the generated password, against a local PostgreSQL."""
    assert aws_checks.rds_select_one(**local_pg.conn()) == 1


def test_rds_check_with_a_wrong_password_fails_naming_the_password(local_pg):
    """FR6, NFR3: a wrong password is refused with an error saying so, against a local PostgreSQL."""
    with pytest.raises(aws_checks.CheckError, match=r"password was rejected") as err:
        aws_checks.rds_select_one(**{**local_pg.conn(), "password": "wrong-password-123"})
    assert f"{local_pg.host}:{local_pg.port}" in str(err.value)


def test_rds_check_error_never_echoes_the_password(local_pg):
    """NFR1: the connection error names server and user but not the password, against a local PostgreSQL."""
    with pytest.raises(aws_checks.CheckError) as err:
        aws_checks.rds_select_one(**{**local_pg.conn(), "password": "wrong-password-123"})
    assert "wrong-password-123" not in str(err.value)


def test_migration_count_ignores_unfinished_migrations(local_pg):
    """FR11: only finished Prisma migrations count, against a local PostgreSQL."""
    assert aws_checks.rds_migrations_applied(**local_pg.conn()) == 2


def test_headless_init_rows_are_all_found(local_pg):
    """FR14: the init user (by email), organization and project (by id) are found, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows("ops@example.com", "langfuse-org", "langfuse-project",
                                             **local_pg.conn())
    assert rows == {"user": True, "organization": True, "project": True}


def test_headless_init_rows_report_each_missing_row(local_pg):
    """FR14: an absent user and project are reported as such, against a local PostgreSQL."""
    rows = aws_checks.rds_headless_init_rows("nobody@example.com", "langfuse-org", "no-such-project",
                                             **local_pg.conn())
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


def test_leftovers_lists_a_resource_carrying_the_project_tag(moto):
    """FR27, NFR8: the sweep finds a VPC tagged with the project, against moto."""
    session = moto.session()
    tag = {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}
    vpc = session.client("ec2").create_vpc(
        CidrBlock="10.9.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]
    assert [arn for arn in aws_checks.leftovers(session, tag["Key"], tag["Value"])
            if arn.endswith(f"vpc/{vpc['VpcId']}")]


def test_leftovers_is_empty_once_the_tagged_resource_is_deleted(moto):
    """FR27, NFR8: after deletion nothing tagged with the project remains, against moto."""
    session = moto.session()
    ec2 = session.client("ec2")
    tag = {"Key": "Project", "Value": f"sweep-{secrets.token_hex(4)}"}
    vpc = ec2.create_vpc(CidrBlock="10.8.0.0/16", TagSpecifications=[{"ResourceType": "vpc", "Tags": [tag]}])["Vpc"]
    ec2.delete_vpc(VpcId=vpc["VpcId"])
    assert aws_checks.leftovers(session, tag["Key"], tag["Value"]) == []


def test_leftovers_reports_only_resources_of_this_project(moto):
    """FR27: of two tagged buckets only the one tagged with our project value is reported, against moto."""
    session = moto.session()
    s3 = session.client("s3")
    ours = f"ours-{secrets.token_hex(4)}"
    for bucket, value in ((f"{ours}-bucket", ours), (f"{ours}-neighbour", "someone-else")):
        s3.create_bucket(Bucket=bucket)
        s3.put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [{"Key": "Project", "Value": value}]})
    assert aws_checks.leftovers(session, "Project", ours) == [f"arn:aws:s3:::{ours}-bucket"]
