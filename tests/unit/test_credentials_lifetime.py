"""Temporary AWS credentials that would expire mid-run stop pause, resume, teardown and the e2e
deploy before anything is read or created (issue 15 defect 6); the budgets they are checked against
are the workflows' timeouts, the e2e job's whole and the e2e-teardown workflow's teardown step
(issue 24 item 6; static tier).

Stand-in: none is reached. Terraform Cloud's client is replaced by one that fails the test when it
is constructed, so a refusal is proven to come before the first call.
"""

from __future__ import annotations

import datetime as dt
import inspect
from pathlib import Path

import pytest
import yaml

from lfharness import commands
from lfharness.core import tf, tfc
from lfharness.stack import budget, stack

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


WORKFLOWS = ROOT / ".github" / "workflows"


def _job(workflow: Path, name: str) -> dict:
    return yaml.safe_load(workflow.read_text())["jobs"][name]


def test_the_deploy_budget_is_the_e2e_workflows_whole_job(workflows=WORKFLOWS):
    """FR23, issue 24 item 6: the e2e suite is refused when its credentials would not outlive the e2e
    job, set-up, test step and the steps after it: budget.E2E_SUITE is the job's timeout-minutes, and
    that covers every step's own timeout (each step has one, so none can take the job's whole time)."""
    job = _job(workflows / "e2e.yml", "e2e")
    steps = job["steps"]
    assert [s.get("name") or s.get("uses") or s.get("run") for s in steps if "timeout-minutes" not in s] == []
    assert (job["timeout-minutes"] * 60, job["timeout-minutes"] >= sum(s["timeout-minutes"] for s in steps)) == (
        budget.E2E_SUITE, True)


def test_the_teardown_workflow_gives_the_teardown_its_whole_budget(workflows=WORKFLOWS):
    """Issue 24 item 6: the e2e-teardown workflow's teardown step may take at least budget.TEARDOWN
    (what the command requires temporary credentials to outlive), and its job's timeout covers every
    step's own."""
    job = _job(workflows / "e2e-teardown.yml", "teardown")
    step = next(s for s in job["steps"] if "-m lfharness teardown" in s.get("run", ""))
    assert (step["timeout-minutes"] * 60 >= budget.TEARDOWN,
            job["timeout-minutes"] >= sum(s.get("timeout-minutes", job["timeout-minutes"]) for s in job["steps"])) == (
        True, True)


def test_the_teardown_budget_covers_what_the_teardown_waits_for():
    """Issue 24 items 4, 6 and 10: budget.TEARDOWN holds a Terraform left running (its wait and
    grace), one destroy per workspace as long as its apply plus 01-network's second one after the
    leftover interfaces go, and the PVC, sweep and cluster-settle waits of the Stack the command builds."""
    defaults = inspect.signature(stack.Stack).parameters
    grace = max(tf.LIVE_GRACE, tf.grace_for("apply", "03-app"), tf.grace_for("destroy", "03-app"))
    waits = (tf.LIVE_WAIT + grace + sum(budget.APPLY.values()) + budget.APPLY["01-network"]
             + defaults["pvc_timeout"].default + defaults["sweep_timeout"].default
             + defaults["cluster_settle_timeout"].default)
    assert waits <= budget.TEARDOWN <= waits + 15 * 60


def test_teardown_refuses_credentials_that_expire_before_it_could_end(tmp_path, no_terraform_cloud, caplog):
    """Issue 24 item 6: with temporary keys expiring a minute before budget.TEARDOWN ends, `teardown` exits
    2 naming AWS_SESSION_EXPIRATION, before any Terraform Cloud call and before a run folder exists:
    expiring mid-destroy would leave a held lock and a half-written state."""
    code = commands.teardown_command(_env_expiring_in(tmp_path, budget.TEARDOWN / 60 - 1), tmp_path / "runs")
    assert (code, "AWS_SESSION_EXPIRATION" in caplog.text, (tmp_path / "runs").exists()) == (2, True, False)


class _Reached(Exception):
    """Raised where Terraform Cloud would first be contacted: the lifetime check let the command on."""


def test_teardown_starts_with_credentials_that_outlive_its_budget(tmp_path, monkeypatch):
    """Issue 24 item 6: credentials lasting past budget.TEARDOWN pass the check; the command goes on to
    Terraform Cloud (stopped there by the stand-in client)."""
    def reached(self, *args, **kwargs):
        raise _Reached
    monkeypatch.setattr(tfc.TfcClient, "__init__", reached)
    with pytest.raises(_Reached):
        commands.teardown_command(_env_expiring_in(tmp_path, budget.TEARDOWN / 60 + 10), tmp_path / "runs")
