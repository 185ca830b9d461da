"""e2e target selection: the operator's AWS + Terraform Cloud, or the embedded local default."""

from __future__ import annotations

import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from lfharness.core import envfile
from lfharness.core.tfc import TfcClient
from lfharness.testing import localca
from lfharness.testing.tfc_fake import TfcFake

ROOT = Path(__file__).resolve().parents[2]
ENV_FILE = envfile.default_path()  # $LFK8S_ENV_FILE or the repository's .env, as `python -m lfharness teardown`


@dataclass
class Target:
    kind: str  # "aws" or "local"
    missing: list[str] = field(default_factory=list)
    settings: envfile.Settings | None = None

    def skip_unless_aws(self, stage: str) -> None:
        if self.kind != "aws":
            pytest.skip(f"{stage}: needs a real AWS account and Terraform Cloud; .env lacks "
                        f"{', '.join(self.missing)} (fill them in .env to run it)")


def _target() -> Target:
    """Chosen from .env; a malformed .env raises EnvError (the root conftest turns it into a
    usage error before any test, so no Terraform call happens)."""
    missing = envfile.missing_for_cloud(ENV_FILE)
    if missing:
        return Target("local", missing)
    return Target("aws", [], envfile.load(ENV_FILE))  # malformed -> EnvError before any terraform call


@pytest.fixture(scope="session")
def target(redactor) -> Target:
    """The chosen target; its .env secrets join the session's redactor (NFR1: masked in every log
    record, run log and pytest report from here on)."""
    chosen = _target()
    if chosen.settings is not None:
        redactor.add(*chosen.settings.secrets)
    return chosen


@pytest.fixture(scope="session")
def run_dir() -> Path:
    folder = ROOT / ".runs" / time.strftime("%Y%m%d-%H%M%S")
    folder.mkdir(parents=True, exist_ok=True)
    logging.getLogger("lfharness").info("run folder: %s", folder)
    return folder


@pytest.fixture(scope="session")
def tfc(target, tmp_path_factory, redactor) -> TfcClient:
    """Terraform Cloud: the real API, or the local Terraform Cloud fake (same client code)."""
    if target.kind == "aws":
        yield TfcClient(target.settings.tfe_token, target.settings.tfc_organization)
        return
    ca = localca.make_ca(tmp_path_factory.mktemp("tfc-ca"))
    token = redactor.secret("local-fake-token-" + os.urandom(8).hex())
    with TfcFake(ca, token) as fake:
        yield TfcClient(token, fake.organization, base_url=fake.url, verify=str(ca.ca))


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """Keeps each phase's report on the item, so fixtures can collect diagnostics on failure."""
    outcome = yield
    report = outcome.get_result()
    setattr(item, f"rep_{report.when}", report)
