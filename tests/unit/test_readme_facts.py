"""README's permission list and durations come from the code (issue 24 item 11): the AWS services
the operator code calls, and the pause and resume limits budget.py sums. Static: the source and
the Markdown read as text."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import lfharness
from lfharness.stack import budget

pytestmark = pytest.mark.static

PACKAGE = Path(lfharness.__file__).resolve().parent
ROOT = PACKAGE.parent
# boto3 client name -> how README's permission list names it. sts is left out: GetCallerIdentity
# needs no permission.
PERMISSION = {"ec2": "EC2", "eks": "EKS", "iam": "IAM", "kms": "KMS", "logs": "CloudWatch Logs", "rds": "RDS",
              "s3": "S3", "resourcegroupstaggingapi": "tag:GetResources"}


def _operator_clients() -> set[str]:
    sources = [p for room in ("core", "stack") for p in (PACKAGE / room).glob("*.py")] + [PACKAGE / "commands.py"]
    return {name for p in sources for name in re.findall(r'client\("([a-z0-9-]+)"', p.read_text())} - {"sts"}


def _permission_line() -> str:
    readme = (ROOT / "README.md").read_text()
    return re.search(r"\*\*Accounts\*\*: an AWS account \(permissions for ([^)]*)\)", readme).group(1)


def test_every_aws_service_the_operator_code_calls_is_in_the_readme_permission_list():
    """Issue 24 item 11: README's permission list names each AWS service the harness calls
    (the Terraform the modules run needs the same services)."""
    clients = _operator_clients()
    assert clients <= set(PERMISSION), f"map the new client(s) to README's wording: {clients - set(PERMISSION)}"
    line = _permission_line()
    assert [PERMISSION[c] for c in sorted(clients) if PERMISSION[c] not in line] == []


# What a limit is called in the docs -> the budget it must equal, in minutes.
LIMITS = {"pause": budget.PAUSE, "resume": budget.RESUME, "deploy": budget.UP, "teardown": budget.TEARDOWN,
          "e2e job": budget.E2E_SUITE}


def _limits(doc: str) -> dict[str, int]:
    text = " ".join((ROOT / doc).read_text().split())
    return {kind: int(m) for kind, m in re.findall(r"\b(pause|resume|deploy|teardown|e2e job) \(up to (\d+) min\)", text)}


@pytest.mark.parametrize(("doc", "kinds"), [("README.md", list(LIMITS)), ("docs/operations.md", ["pause", "resume"])])
def test_every_limit_the_docs_give_is_budget_py_s(doc, kinds):
    """Issue 24 item 11, issue 27: the limits the docs give for a deploy, a pause, a resume, a
    teardown and the e2e job (what temporary credentials must outlive) are budget.py's figures."""
    assert _limits(doc) == {kind: round(LIMITS[kind] / 60) for kind in kinds}


def test_the_readme_fits_in_200_lines_and_names_the_operators_day_in_order():
    """Issue 27: README is the operator's guide: at most 200 lines, its sections in the order the
    operator lives them."""
    readme = (ROOT / "README.md").read_text()
    headings = re.findall(r"^## (.+)$", readme, re.MULTILINE)
    order = ["What you get", "Prerequisites and `.env`", "Quick start", "Deploy and keep it", "Reach it",
             "Send your first trace", "Pause and resume", "Teardown and what survives", "Cost", "Troubleshooting"]
    assert len(readme.splitlines()) <= 200
    assert [h for h in headings if h in order] == order
