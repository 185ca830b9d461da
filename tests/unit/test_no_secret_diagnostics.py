"""No secret in the Kubernetes diagnostics the e2e suite saves under the run folder (NFR1, issue 14
item 3): a container that logs a connection URL with the database password, or an event quoting a
secret, is saved with the value masked.

Logs and events: a real Kubernetes 1.35 API server (kube tier's local cluster), kubectl, the
kubernetes client; stand-in: kwok as the kubelet, the container's log is kwok's scripted log file
(what the container "printed"), the event is created through the API as a kubelet would.
errors.txt: a fake `kubectl` (lfharness.testing.localsvc.FakeCli) refusing with a secret in its
stderr, which a real API server would not do on demand.
"""

from __future__ import annotations

import json
import secrets
import uuid
from pathlib import Path

import pytest

from lfharness.core import redact
from lfharness.stack import k8s
from lfharness.testing.cluster import binaries, kwok
from lfharness.testing.localsvc import FakeCli

_REASON = binaries.unavailable_reason()


@pytest.mark.kube
@pytest.mark.skipif(_REASON is not None, reason=_REASON or "")
def test_diagnostics_hold_no_secret_the_run_knows(local_kube, tmp_path):
    """NFR1: pod logs and events saved by collect_diagnostics have every secret the redactor knows
    (here the RDS password read from 02-deps' outputs) replaced by *** (real API server; kwok's
    scripted log stands in for the container's output)."""
    password = secrets.token_hex(16)
    redactor = redact.Redactor([password])
    namespace = f"leak-{uuid.uuid4().hex[:6]}"
    kubectl = k8s.Kube(local_kube.cluster.kubeconfig, redactor=redactor)
    local_kube.cluster.write_scripted_log(f"prisma: connecting to postgresql://langfuse:{password}@db:5432/langfuse")
    pod = {"apiVersion": "v1", "kind": "Pod", "metadata": {"name": "langfuse-web-0", "namespace": namespace},
           "spec": {"containers": [{"name": kwok.SCRIPTED_LOG_CONTAINER, "image": "stand-in.invalid/web:never-pulled"}]}}
    event = {"apiVersion": "v1", "kind": "Event", "metadata": {"name": "langfuse-web-0.failed", "namespace": namespace},
             "involvedObject": {"kind": "Pod", "name": "langfuse-web-0", "namespace": namespace},
             "type": "Warning", "reason": "Failed", "message": f"bad password {password}"}
    kubectl.run("create", "namespace", namespace)
    try:
        kubectl.run("apply", "-f", "-", stdin=json.dumps({"apiVersion": "v1", "kind": "List", "items": [pod, event]}))
        kubectl.wait_all_ready(namespace, timeout=30)
        kubectl.collect_diagnostics(namespace, tmp_path / "diag")
    finally:
        kubectl.run("delete", "namespace", namespace, "--wait=false")
    saved = {p.name: p.read_text() for p in Path(tmp_path / "diag").iterdir()}
    assert "prisma: connecting to postgresql://langfuse:***@db" in saved[f"langfuse-web-0.{kwok.SCRIPTED_LOG_CONTAINER}.log"]
    assert "bad password ***" in saved["events.txt"]
    assert [name for name, text in saved.items() if password in text] == []


@pytest.mark.static
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
