"""Checks on the deployed data stores; explicit connection parameters so they run on AWS or stand-ins."""

from __future__ import annotations

import logging

LOG = logging.getLogger("lfharness.aws_checks")


def pg_connect(host: str, port: int, user: str, password: str, dbname: str, sslmode: str = "require",
               timeout: int = 10):
    import psycopg  # noqa: PLC0415

    return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                           sslmode=sslmode, connect_timeout=timeout)


def rds_select_one(**conn) -> int:
    with pg_connect(**conn) as db:
        return db.execute("SELECT 1").fetchone()[0]


def rds_migrations_applied(**conn) -> int:
    """Finished rows in Langfuse's Prisma migrations table."""
    with pg_connect(**conn) as db:
        return db.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL").fetchone()[0]


def rds_headless_init_rows(email: str, org_id: str, project_id: str, **conn) -> dict[str, bool]:
    """Which of the headless-init user, organization and project exist."""
    with pg_connect(**conn) as db:
        one = lambda sql, arg: db.execute(sql, (arg,)).fetchone() is not None  # noqa: E731
        return {"user": one("SELECT 1 FROM users WHERE email = %s", email),
                "organization": one("SELECT 1 FROM organizations WHERE id = %s", org_id),
                "project": one("SELECT 1 FROM projects WHERE id = %s", project_id)}


def redis_ping(host: str, port: int, password: str | None, timeout: float = 5) -> bool:
    import redis  # noqa: PLC0415

    return bool(redis.Redis(host=host, port=port, password=password, socket_timeout=timeout).ping())


def s3_round_trip(client, bucket: str, key: str, body: bytes) -> bytes:
    client.put_object(Bucket=bucket, Key=key, Body=body)
    got = client.get_object(Bucket=bucket, Key=key)["Body"].read()
    if got != body:
        raise AssertionError(f"s3://{bucket}/{key}: wrote {len(body)} bytes, read back {len(got)} different bytes")
    return got


def s3_list_prefix(client, bucket: str, prefix: str) -> list[str]:
    pages = client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
    return [obj["Key"] for page in pages for obj in page.get("Contents", [])]


def leftovers(session, tag_key: str, tag_value: str) -> list[str]:
    """ARNs still carrying the project tag (after teardown this should be empty)."""
    client = session.client("resourcegroupstaggingapi")
    pages = client.get_paginator("get_resources").paginate(TagFilters=[{"Key": tag_key, "Values": [tag_value]}])
    return [r["ResourceARN"] for page in pages for r in page.get("ResourceTagMappingList", [])]
