"""checkov over each workspace's whole plan, module internals included (issue 26 item 6).

checkov over terraform/ (test_checkov.py) reads HCL only and never sees a resource inside a
registry module; over the plan it sees them all. Every finding must be fixed or named in
.checkov-plan.yaml with the requirement that makes it intentional, and every skip there must
still explain a finding.

Plan tier: the session's whole plans (provider stand-in with the real aws schema, the real module
sources from LFK8S_MODULE_MIRROR, the local Terraform Cloud fake; the plan fixtures skip with one
line without them) scanned by the real checkov of the set-up (.venv/checkov).
"""

from __future__ import annotations

import re

import pytest

from lfharness.testing import planscan

NEEDS_CHECKOV = pytest.mark.skipif(not planscan.CHECKOV.exists(), reason="checkov not installed: run `bash setup.sh`")
PLANS = {"01-network": "network_plan", "02-deps": "deps_plan", "03-app": "app_plan"}


@pytest.fixture(scope="module")
def scanned() -> dict[str, list[planscan.Finding]]:
    """workspace -> every failed check of its plan, each plan scanned once per process (a worker of
    `-n 2` scans only the plans its tests ask for)."""
    return {}


@pytest.fixture
def findings(request, scanned):
    """Every failed check of a workspace's session plan: findings(workspace)."""
    def of(workspace: str) -> list[planscan.Finding]:
        if workspace not in scanned:
            passed, failed = planscan.scan(request.getfixturevalue(PLANS[workspace]).raw)
            assert passed > 0, f"checkov evaluated nothing in the {workspace} plan"
            scanned[workspace] = failed
        return scanned[workspace]
    return of


@pytest.mark.static
def test_every_plan_skip_names_the_requirement_that_makes_it_intentional():
    """NFR3, NFR5, NFR6, NFR8, issue 26 item 6: each check .checkov-plan.yaml skips carries a one-line
    reason that names an NFR, FR or decision id."""
    skips = planscan.skips()
    assert skips, "no skip read from .checkov-plan.yaml"
    assert {check: why for check, why in skips.items() if not re.match(r"(NFR\d+|FR\d+|decision \d+)\b", why)} == {}


@pytest.mark.plan
@NEEDS_CHECKOV
@pytest.mark.parametrize("workspace", list(PLANS))
def test_checkov_over_the_whole_plan_finds_nothing_unexplained(findings, workspace):
    """NFR1-NFR8, issue 26 item 6: checkov's terraform_plan framework over the workspace's whole plan
    (the resources inside the eks, vpc, rds and iam modules included) fails no check that
    .checkov-plan.yaml does not skip with its reason."""
    unexplained = planscan.unexplained(findings(workspace), planscan.skips())
    assert unexplained == [], f"{workspace}: fix these, or skip them in .checkov-plan.yaml with the requirement " \
                              "that makes them intentional:\n" + "\n".join(map(str, unexplained))


@pytest.mark.plan
@NEEDS_CHECKOV
def test_every_plan_skip_still_explains_a_finding(findings):
    """Issue 26 item 6: a skip whose check no workspace's plan fails any more is stale and goes, so the
    list says exactly what is accepted."""
    failing = {f.check_id for workspace in PLANS for f in findings(workspace)}
    assert sorted(set(planscan.skips()) - failing) == []


@pytest.mark.plan
@NEEDS_CHECKOV
def test_rds_log_exports_are_fixed_not_skipped(findings):
    """NFR3, issue 26 item 6: the finding "no RDS log exports" (CKV_AWS_129) is fixed by exporting
    the postgresql log, so it is neither failing nor in the skip list."""
    assert ("CKV_AWS_129" in {f.check_id for f in findings("02-deps")}, "CKV_AWS_129" in planscan.skips()) == (
        False, False)
