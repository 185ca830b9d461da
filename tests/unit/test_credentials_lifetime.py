"""Temporary AWS credentials that would expire mid-run stop pause, resume and the e2e deploy before
anything is created; teardown always tries (issue 15 defect 6; static tier).

Stand-in: none is reached. Terraform Cloud's client is replaced by one that fails the test when it
is constructed, so a refusal is proven to come before the first call.
"""

from __future__ import annotations

import datetime as dt
from pathlib import Path

import pytest
import yaml

from lfharness import commands
from lfharness.core import tfc
from lfharness.stack import budget

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
TEMPORARY = {
    "AWS_ACCESS_KEY_ID": "ASIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": "s" * 40,
    "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjE" + "A" * 300, "AWS_DEFAULT_REGION": "us-east-1",
    "TFE_TOKEN": "tok" + "x" * 30, "TFC_ORGANIZATION": "my-org", "LANGFUSE_ADMIN_EMAIL": "ops@example.com",
    "LANGFUSE_ADMIN_NAME": "Ops", "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery",
}


def _env_expiring_in(tmp_path: Path, minutes: float) -> Path:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in {
        **TEMPORARY, "AWS_SESSION_EXPIRATION": at.strftime("%Y-%m-%dT%H:%M:%SZ")}.items()))
    return path


@pytest.fixture
def no_terraform_cloud(monkeypatch):
    """Fails the test at the first Terraform Cloud client: nothing may be read or created."""
    def refuse(self, *args, **kwargs):
        raise AssertionError("Terraform Cloud was contacted although the credentials expire too soon")
    monkeypatch.setattr(tfc.TfcClient, "__init__", refuse)


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_refuse_credentials_that_expire_before_they_could_end(
        tmp_path, no_terraform_cloud, caplog, action):
    """Journey 3, FR23, issue 15 defect 6: with temporary keys expiring in 20 minutes, `pause` and `resume`
    exit 2 naming AWS_SESSION_EXPIRATION, before any Terraform Cloud call and before a run folder exists."""
    command = commands.pause_command if action == "pause" else commands.resume_command
    code = command(_env_expiring_in(tmp_path, 20), tmp_path / "runs")
    assert (code, "AWS_SESSION_EXPIRATION" in caplog.text, (tmp_path / "runs").exists()) == (2, True, False)


def test_the_deploy_budget_is_the_e2e_workflows_test_step_timeout():
    """FR23, issue 15 defect 6: the e2e suite is refused when its credentials would not outlive the
    time the workflow gives its test step, the longest a deploy-to-teardown run can take there."""
    steps = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())["jobs"]["e2e"]["steps"]
    test_step = next(s for s in steps if "pytest -m e2e" in s.get("run", ""))
    assert test_step["timeout-minutes"] * 60 == budget.E2E_SUITE
