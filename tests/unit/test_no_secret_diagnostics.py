"""No secret in the Kubernetes diagnostics the e2e suite saves under the run folder (NFR1, issue 14
item 3): a container that logs a connection URL with the database password, or an event quoting a
secret, is saved with the value masked.

Stand-in: a fake `kubectl` (lfharness.offline.localsvc.FakeCli) answering with Pod JSON of the v1
API and plain-text logs and events.
"""

from __future__ import annotations

import json
import secrets
from pathlib import Path

import pytest

from lfharness import k8s, redact
from lfharness.offline.localsvc import FakeCli

pytestmark = pytest.mark.static


def _pod(name: str, container: str) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": container}]},
            "status": {"containerStatuses": [{"name": container, "ready": False, "restartCount": 0}]}}


def test_diagnostics_hold_no_secret_the_run_knows(tmp_path):
    """NFR1: pod logs and events saved by collect_diagnostics have every secret the redactor knows
    (here the RDS password read from 02-deps' outputs) replaced by *** (fake kubectl)."""
    password = secrets.token_hex(16)
    redactor = redact.Redactor([password])
    pods = {"items": [_pod("langfuse-web-0", "langfuse-web")]}
    fake = FakeCli(tmp_path / "bin", "kubectl", [
        (r"get pods -o json", {"stdout": json.dumps(pods)}),
        (r"logs langfuse-web-0",
         {"stdout": f"prisma: connecting to postgresql://langfuse:{password}@db:5432/langfuse\n"}),
        (r"get events", {"stdout": f"Warning  Failed  pod/langfuse-web-0  bad password {password}\n"}),
        (r".", {"stdout": "ok\n"})])
    kube = k8s.Kubectl(tmp_path / "kubeconfig", env=None, binary=fake.path, redactor=redactor)
    kube.collect_diagnostics("langfuse", tmp_path / "diag")
    saved = {p.name: p.read_text() for p in Path(tmp_path / "diag").iterdir()}
    assert "prisma: connecting to postgresql://langfuse:***@db" in saved["langfuse-web-0.langfuse-web.log"]
    assert [name for name, text in saved.items() if password in text] == []


def test_diagnostics_errors_file_holds_no_secret_the_run_knows(tmp_path):
    """NFR1: a kubectl call that fails while diagnostics are collected is noted in errors.txt with its
    stderr; a secret quoted there (here in an admission webhook's refusal) is masked too (fake kubectl)."""
    password = secrets.token_hex(16)
    fake = FakeCli(tmp_path / "bin", "kubectl", [
        (r"get pods -o json", {"stdout": json.dumps({"items": []})}),
        (r"get events", {"stderr": f"Error from server: denied: env DATABASE_URL=postgresql://u:{password}@db\n",
                         "code": 1}),
        (r".", {"stdout": "ok\n"})])
    kube = k8s.Kubectl(tmp_path / "kubeconfig", env=None, binary=fake.path, redactor=redact.Redactor([password]))
    kube.collect_diagnostics("langfuse", tmp_path / "diag")
    errors = (tmp_path / "diag" / "errors.txt").read_text()
    assert ("events.txt: kubectl" in errors, password in errors) == (True, False)
