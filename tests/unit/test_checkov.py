"""checkov over terraform/ with a short, justified skip list (static)."""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from lfharness.core import tf

pytestmark = pytest.mark.static

CHECKOV = tf.REPO_ROOT / ".venv" / "checkov" / "bin" / "checkov"
CONFIG = tf.REPO_ROOT / ".checkov.yaml"
K8S_CONFIG = tf.REPO_ROOT / ".checkov-kubernetes.yaml"  # the chart tier's


def test_every_checkov_skip_names_the_requirement_that_makes_it_intentional():
    """NFR3, NFR6, NFR8: each skipped check carries a comment with an NFR/FR/decision id."""
    lines = [ln for ln in CONFIG.read_text().splitlines() if re.match(r"\s*-\s*CKV", ln)]
    assert 0 < len(lines) <= 12, "the skip list should stay short"
    unexplained = [ln.strip() for ln in lines if not re.search(r"#\s*(NFR\d+|FR\d+|decision \d+)", ln)]
    assert not unexplained


def test_every_checkov_kubernetes_skip_names_its_reason():
    """Decision 20: the skips of checkov's kubernetes framework over the rendered chart (chart tier)
    each carry an NFR/FR/decision id, and the list stays short."""
    lines = [ln for ln in K8S_CONFIG.read_text().splitlines() if re.match(r"\s*-\s*CKV", ln)]
    assert 0 < len(lines) <= 12, "the skip list should stay short"
    assert [ln.strip() for ln in lines if not re.search(r"#\s*(NFR\d+|FR\d+|decision \d+)", ln)] == []


def test_public_rds_is_a_documented_skip_not_an_accident():
    """NFR3: the public-RDS check is skipped with its reason, not silenced by a blanket rule."""
    assert re.search(r"-\s*CKV_AWS_17\s*#\s*NFR3", CONFIG.read_text())


@pytest.mark.skipif(not CHECKOV.exists(), reason="checkov not installed: run `bash setup.sh`")
def test_checkov_reports_no_unexplained_failures():
    """NFR1-NFR8: checkov passes over terraform/ with only the skips above."""
    proc = subprocess.run([str(CHECKOV), "-d", str(tf.TERRAFORM_DIR), "--config-file", str(CONFIG),
                           "-o", "json"], capture_output=True, text=True, check=False, timeout=300)
    reports = json.loads(proc.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    failed = [f"{c['check_id']} {c['resource']} ({c['file_path']})"
              for r in reports for c in r.get("results", {}).get("failed_checks", [])]
    passed = sum(r.get("summary", {}).get("passed", 0) for r in reports)
    assert passed > 0, "checkov evaluated nothing"
    assert not failed, "unexplained checkov failures:\n" + "\n".join(failed)
