"""checkov over a workspace's whole plan (plan tier, issue 26 item 6).

checkov over terraform/ reads the HCL only, so it never sees a resource made inside a registry
module (the EKS cluster, the RDS instance, the VPC's subnets). Over `terraform show -json` of a
whole plan it sees every resource with the values the modules give it. `scan` runs checkov's
terraform_plan framework with no skip at all and returns every failed check; `skips` reads the
skip list of .checkov-plan.yaml with each skip's reason, so a test can tell an explained finding
from a new one, and a skip that no longer explains anything from one that does.

The plan holds generated secrets (02-deps' random_*): it goes to a 0600 file in a private
temporary folder, and checkov's stderr is masked with the plan's own secrets before an error
quotes it.
"""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lfharness.core import redact, tf
from lfharness.core.wait import Stopwatch

LOG = logging.getLogger("lfharness.testing.planscan")

CHECKOV = tf.REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"
CONFIG = tf.REPO_ROOT / ".checkov-plan.yaml"
# `  - CKV_AWS_17    # NFR3: why` -> (CKV_AWS_17, "NFR3: why")
_SKIP = re.compile(r"^\s*-\s*(CKV\w+)\s*(?:#\s*(.*?))?\s*$")


class ScanError(RuntimeError):
    """checkov did not produce a report for a plan; says what it printed (masked)."""


@dataclass(frozen=True)
class Finding:
    """One failed check on one resource of a plan."""

    check_id: str
    resource: str  # the plan's address, module path included
    name: str  # checkov's title of the check

    def __str__(self) -> str:
        return f"{self.check_id} {self.resource} ({self.name})"


def skips(config: Path = CONFIG) -> dict[str, str]:
    """The skip list of a checkov config file: check id -> the comment after it ("" when none)."""
    found: dict[str, str] = {}
    in_list = False
    for line in config.read_text().splitlines():
        if re.match(r"^[\w-]+:", line):  # a top-level key starts or ends the list
            in_list = line.startswith("skip-check:")
            continue
        match = _SKIP.match(line) if in_list else None
        if match:
            found[match.group(1)] = match.group(2) or ""
    return found


def scan(raw: Mapping[str, Any], checkov: Path = CHECKOV, timeout: float = 300.0) -> tuple[int, list[Finding]]:
    """checkov's terraform_plan framework over one `show -json` plan, with no skip: (checks passed,
    every failed check). BC_SKIP_MAPPING keeps checkov from fetching its guideline links (offline)."""
    redactor = redact.Redactor()
    redactor.learn_state(raw.get("prior_state") or {})
    redactor.learn_state({"values": raw.get("planned_values") or {}})
    with tempfile.TemporaryDirectory(prefix="plan-checkov-") as tmp:
        path = Path(tmp) / "plan.json"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            json.dump(raw, fh)
        args = [str(checkov), "-f", str(path), "--framework", "terraform_plan", "--compact", "--quiet", "-o", "json"]
        env = {**os.environ, "BC_SKIP_MAPPING": "TRUE"}
        try:
            with Stopwatch(f"checkov terraform_plan over {len(raw.get('resource_changes', []))} resources",
                           logger=LOG):
                # In the private folder: checkov reads a .checkov.yaml of its working directory by
                # itself, and the repository's (HCL skips) would silently apply here.
                proc = subprocess.run(args, capture_output=True, text=True, timeout=timeout, env=env, cwd=tmp,
                                      check=False)
        except subprocess.TimeoutExpired as exc:
            raise ScanError(f"checkov over the plan did not finish within {timeout:.0f} s") from exc
    try:
        reports = json.loads(proc.stdout)
    except json.JSONDecodeError as exc:
        raise ScanError(f"checkov exited {proc.returncode} without a JSON report: "
                        f"{redactor.mask(proc.stderr.strip())[-2000:]}") from exc
    reports = reports if isinstance(reports, list) else [reports]
    failed = [Finding(c["check_id"], c["resource"], c.get("check_name", ""))
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    return sum(r.get("summary", {}).get("passed", 0) for r in reports), failed


def unexplained(findings: list[Finding], skipped: Mapping[str, str]) -> list[Finding]:
    """The findings whose check the skip list does not name."""
    return [f for f in findings if f.check_id not in skipped]
