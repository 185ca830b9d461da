"""The DATABASE_URL Langfuse 3.150's entrypoint builds (web/entrypoint.sh, worker/entrypoint.sh),
as the chart tier reads it from the rendered env (lfharness/testing/chartrig/query.py). Static."""

from __future__ import annotations

import pytest

from lfharness.testing.chartrig import query

pytestmark = pytest.mark.static

PARTS = {"DATABASE_HOST": "db.example.internal", "DATABASE_USERNAME": "langfuse", "DATABASE_PASSWORD": "pw",
         "DATABASE_NAME": "langfuse"}


def test_the_entrypoint_never_reads_database_port():
    """Issue 25: DATABASE_PORT is not part of the URL the 3.150 entrypoint builds, so a port set
    there would be ignored by Langfuse; the harness reads the URL the same way."""
    assert query.database_url({**PARTS, "DATABASE_PORT": "6543"}) == "postgresql://langfuse:pw@db.example.internal/langfuse"


def test_database_args_become_the_query_string():
    """Decision 15: `?DATABASE_ARGS` carries sslmode=require."""
    assert query.database_url({**PARTS, "DATABASE_ARGS": "sslmode=require"}).endswith("/langfuse?sslmode=require")


def test_an_explicit_database_url_wins_and_a_missing_part_gives_none():
    """The entrypoint builds nothing when DATABASE_URL is set, and fails when a part is missing."""
    assert query.database_url({**PARTS, "DATABASE_URL": "postgresql://x"}) == "postgresql://x"
    assert query.database_url({k: v for k, v in PARTS.items() if k != "DATABASE_NAME"}) is None
