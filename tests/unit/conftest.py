"""Shared fixtures of the unit tier."""

from __future__ import annotations

import pytest

from lfharness import plan


@pytest.fixture(scope="session")
def plan_offline(tmp_path_factory):
    """One local Terraform Cloud fake + CLI config for every offline plan of the session."""
    with plan.offline(tmp_path_factory.mktemp("offline")) as env:
        yield env
