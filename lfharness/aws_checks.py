"""Checks on the deployed data stores.

Every check takes explicit connection parameters (or a client/session), so the same code runs
against RDS, the port-forwarded Valkey and S3 on AWS, and against local stand-ins in the tests.
"""

from __future__ import annotations

import logging
from typing import Any

LOG = logging.getLogger("lfharness.aws_checks")


class CheckError(RuntimeError):
    """A data-store check could not run or found something wrong; says where, what, and what next."""


def pg_connect(host: str, port: int, user: str, password: str, dbname: str, sslmode: str = "require",
               timeout: float = 10) -> Any:
    """A psycopg connection; connection failures become CheckError naming the server and user."""
    import psycopg  # noqa: PLC0415 (optional heavy import, only for the checks that need it)

    try:
        return psycopg.connect(host=host, port=port, user=user, password=password, dbname=dbname,
                               sslmode=sslmode, connect_timeout=max(1, round(timeout)))
    except psycopg.OperationalError as exc:
        reason = str(exc).strip().splitlines()[-1] if str(exc).strip() else type(exc).__name__
        hint = ("the password was rejected: check the rds_password output / the password you passed"
                if "password authentication failed" in str(exc) else
                "check that the host is reachable on that port, the security group allows you, and sslmode fits")
        raise CheckError(f"PostgreSQL {host}:{port} db={dbname} user={user} sslmode={sslmode}: "
                         f"cannot connect ({reason}); {hint}") from exc


def rds_select_one(host: str, port: int, user: str, password: str, dbname: str, sslmode: str = "require",
                   timeout: float = 10) -> int:
    """SELECT 1 over a fresh connection: proves reachability, TLS mode and the password."""
    with pg_connect(host, port, user, password, dbname, sslmode, timeout) as db:
        return db.execute("SELECT 1").fetchone()[0]


def rds_migrations_applied(host: str, port: int, user: str, password: str, dbname: str, sslmode: str = "require",
                           timeout: float = 10) -> int:
    """Finished rows in Langfuse's Prisma migrations table (unfinished or failed ones do not count)."""
    import psycopg  # noqa: PLC0415

    with pg_connect(host, port, user, password, dbname, sslmode, timeout) as db:
        try:
            return db.execute("SELECT count(*) FROM _prisma_migrations WHERE finished_at IS NOT NULL").fetchone()[0]
        except psycopg.errors.UndefinedTable as exc:
            raise CheckError(f"{dbname} on {host}:{port} has no _prisma_migrations table: Langfuse web has not "
                             "run its migrations yet (check the langfuse-web pod logs)") from exc


def rds_headless_init_rows(email: str, org_id: str, project_id: str, *, host: str, port: int, user: str,
                           password: str, dbname: str, sslmode: str = "require",
                           timeout: float = 10) -> dict[str, bool]:
    """Which of the headless-init user (by email), organization and project (by id) exist.

    Langfuse's Prisma tables are users, organizations, projects (and organization_memberships).
    Connection parameters are keyword-only so callers can pass **conn after the three lookups.
    """
    with pg_connect(host, port, user, password, dbname, sslmode, timeout) as db:
        def found(sql: str, arg: str) -> bool:
            return db.execute(sql, (arg,)).fetchone() is not None

        return {"user": found("SELECT 1 FROM users WHERE email = %s", email),
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
                         "langfuse-redis secret (valkey-password)") from exc
    except redis.exceptions.ConnectionError as exc:
        raise CheckError(f"Redis {host}:{port}: cannot connect ({exc}); is the port-forward running?") from exc
    finally:
        client.close()


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


def leftovers(session: Any, tag_key: str, tag_value: str) -> list[str]:
    """ARNs still carrying the project tag in the session's region (after teardown this should be empty).

    The Resource Groups Tagging API may list a deleted resource for a while: callers retry.
    """
    client = session.client("resourcegroupstaggingapi")
    pages = client.get_paginator("get_resources").paginate(TagFilters=[{"Key": tag_key, "Values": [tag_value]}])
    arns = [r["ResourceARN"] for page in pages for r in page.get("ResourceTagMappingList", [])]
    LOG.info("resources tagged %s=%s: %d", tag_key, tag_value, len(arns))
    return arns
