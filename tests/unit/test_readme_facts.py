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


@pytest.mark.parametrize("doc", ["README.md", "docs/operations.md"])
def test_the_pause_and_resume_limits_in_the_docs_are_budget_py_s(doc):
    """Issue 24 item 11: the limits the docs give for a pause and a resume (what temporary
    credentials must outlive) are budget.PAUSE and budget.RESUME."""
    text = " ".join((ROOT / doc).read_text().split())
    found = {kind: int(m) for kind, m in re.findall(r"\b(pause|resume) \(up to (\d+) min\)", text)}
    assert found == {"pause": round(budget.PAUSE / 60), "resume": round(budget.RESUME / 60)}
