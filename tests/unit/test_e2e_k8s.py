"""Kubernetes mechanics of the e2e suite that must fail fast and say why (issue 10 items 2, 11-14;
static tier).

Stand-in: a fake `kubectl` (lfharness.offline.localsvc.FakeCli) written into tmp_path, answering
with the shapes the real kubectl prints: the Job and Pod JSON of the batch/v1 and v1 APIs,
`error: ...` messages on stderr with exit status 1.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from lfharness import envfile, k8s
from lfharness.offline.localsvc import FakeCli

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                            "correct-horse-battery")


def _kubectl(tmp_path: Path, *rules: tuple[str, dict]) -> tuple[k8s.Kubectl, FakeCli]:
    fake = FakeCli(tmp_path / "bin", "kubectl", list(rules))
    return k8s.Kubectl(tmp_path / "kubeconfig", env=None, binary=fake.path), fake


def _job(*conditions: tuple[str, str, str]) -> str:
    """A batch/v1 Job as `kubectl get job -o json` prints it, with (type, reason, message) conditions."""
    return json.dumps({"kind": "Job", "metadata": {"name": "irsa-check"}, "status": {
        "conditions": [{"type": t, "status": "True", "reason": r, "message": m} for t, r, m in conditions]}})


def _container(name: str, restarts: int, reason: str | None = None, exit_code: int | None = None) -> dict:
    status: dict = {"name": name, "ready": True, "restartCount": restarts, "lastState": {}}
    if reason:
        status["lastState"] = {"terminated": {"reason": reason, "exitCode": exit_code}}
    return status


def _pod(name: str, *containers: dict) -> dict:
    return {"metadata": {"name": name}, "spec": {"containers": [{"name": c["name"]} for c in containers]},
            "status": {"phase": "Running", "containerStatuses": list(containers)}}


# --- item 11: a port-forward whose kubectl exits ----------------------------------------------

def test_port_forward_whose_kubectl_exits_fails_at_once_with_its_message(tmp_path):
    """FR19, issue 10 item 11: kubectl port-forward exiting at once (service not found) fails within
    seconds with kubectl's own message, not after the whole wait (fake kubectl)."""
    kube, _ = _kubectl(tmp_path, (r"port-forward", {"stderr": 'error: services "langfuse-web" not found\n', "code": 1}))
    started = time.monotonic()
    with pytest.raises(k8s.PortForwardError, match='services "langfuse-web" not found'):
        with kube.port_forward("langfuse", "langfuse-web", 3000, timeout=60):
            pass
    assert time.monotonic() - started < 10


# --- item 12: a failing IRSA Job ----------------------------------------------------------------

def test_a_failed_job_fails_at_once_with_its_pod_log(tmp_path):
    """FR8, issue 10 item 12: a Job whose condition is Failed ends the wait at once, and the error
    carries the reason and the pod's log (fake kubectl; Job JSON as the batch/v1 API returns it)."""
    kube, _ = _kubectl(tmp_path, (r"^--kubeconfig \S+ apply", {"stdout": "job.batch/irsa-check created\n"}),
                       (r"get job irsa-check", {"stdout": _job(("Failed", "BackoffLimitExceeded",
                                                                "Job has reached the specified backoff limit"))}),
                       (r"logs job/irsa-check", {"stdout": "upload failed: An error occurred (AccessDenied)\n"}))
    started = time.monotonic()
    with pytest.raises(k8s.JobFailed) as err:
        kube.run_job("langfuse", "irsa-check", "langfuse", k8s.IRSA_CHECK_IMAGE, "true", timeout=300, interval=0.1)
    assert (("BackoffLimitExceeded" in str(err.value), "AccessDenied" in str(err.value)),
            time.monotonic() - started < 10) == ((True, True), True)


def test_a_job_completing_after_a_while_returns_its_log(tmp_path):
    """FR8, issue 10 item 12: a Job that completes is waited for and its log returned (fake kubectl)."""
    kube, fake = _kubectl(tmp_path, (r"^--kubeconfig \S+ apply", {"stdout": "job.batch/irsa-check created\n"}),
                          (r"get job irsa-check", {"stdout": _job(("Complete", "", ""))}),
                          (r"logs job/irsa-check", {"stdout": "irsa-ok\n"}))
    assert kube.run_job("langfuse", "irsa-check", "langfuse", k8s.IRSA_CHECK_IMAGE, "true", interval=0.1) == "irsa-ok"


# --- item 13: restarts and diagnostics ------------------------------------------------------------

def test_a_restart_after_readiness_is_reported_with_its_reason():
    """FR22, issue 10 item 13: a container that restarted after readiness is reported with
    lastState.terminated's reason and exit code (Pod JSON as the v1 API returns it)."""
    baseline = k8s.restart_counts([_pod("langfuse-worker-0", _container("langfuse-worker", 1, "Error", 1))])
    later = [_pod("langfuse-worker-0", _container("langfuse-worker", 2, "OOMKilled", 137))]
    assert [str(r) for r in k8s.restarts_since(baseline, later)] == [
        "langfuse-worker-0/langfuse-worker: 1 restart(s), last ended: OOMKilled, exit code 137"]


def test_restarts_before_readiness_are_not_counted():
    """FR22, issue 10 item 13: restarts that happened while Valkey was starting (counted at readiness)
    are not failures later (Pod JSON as the v1 API returns it)."""
    items = [_pod("langfuse-worker-0", _container("langfuse-worker", 3, "Error", 1)),
             _pod("langfuse-web-0", _container("langfuse-web", 0))]
    assert k8s.restarts_since(k8s.restart_counts(items), items) == []


def test_diagnostics_keep_the_previous_log_of_a_restarted_container(tmp_path):
    """Issue 10 item 13: a restarted container's crash log (--previous) is saved next to its current
    log; a container that never restarted gets none (fake kubectl)."""
    pods = {"items": [_pod("langfuse-worker-0", _container("langfuse-worker", 2, "Error", 1)),
                      _pod("langfuse-web-0", _container("langfuse-web", 0))]}
    kube, _ = _kubectl(tmp_path, (r"get pods -o json", {"stdout": json.dumps(pods)}),
                       (r"logs langfuse-worker-0 -c langfuse-worker --previous", {"stdout": "crash: ECONNREFUSED\n"}),
                       (r"logs \S+ -c \S+ --tail", {"stdout": "running\n"}),
                       (r".", {"stdout": "ok\n"}))
    kube.collect_diagnostics("langfuse", tmp_path / "diag")
    found = sorted(p.name for p in (tmp_path / "diag").glob("*.previous.log"))
    assert (found, (tmp_path / "diag" / found[0]).read_text()) == (
        ["langfuse-worker-0.langfuse-worker.previous.log"], "crash: ECONNREFUSED\n")


def test_a_failed_apply_leaves_diagnostics_and_its_own_error(tmp_path):
    """Issue 10 item 13: when the block (the 03-app apply) raises, diagnostics are collected and the
    original error still propagates (fake kubectl)."""
    kube, _ = _kubectl(tmp_path, (r"get pods -o json", {"stdout": json.dumps({"items": []})}),
                       (r".", {"stdout": "No resources found\n"}))
    with pytest.raises(RuntimeError, match="context deadline exceeded"):
        with kube.diagnostics_on_failure("langfuse", tmp_path / "diag"):
            raise RuntimeError("helm_release.langfuse: context deadline exceeded")
    assert (tmp_path / "diag" / "events.txt").exists()


def test_a_successful_block_collects_no_diagnostics(tmp_path):
    """Issue 10 item 13: nothing is collected (no kubectl call) when the block succeeds (fake kubectl)."""
    kube, fake = _kubectl(tmp_path, (r".", {"stdout": ""}))
    with kube.diagnostics_on_failure("langfuse", tmp_path / "diag"):
        pass
    assert fake.calls() == []


# --- item 14: the IRSA Job's image ------------------------------------------------------------------

def test_irsa_job_image_is_pinned_on_ecr_public():
    """Issue 10 item 14: the IRSA check pulls aws-cli from ECR Public at an x.y.z tag, not from
    Docker Hub (anonymous pull limit) and not a floating tag."""
    assert re.fullmatch(r"public\.ecr\.aws/aws-cli/aws-cli:\d+\.\d+\.\d+", k8s.IRSA_CHECK_IMAGE)


def test_e2e_irsa_stage_uses_the_pinned_image():
    """Issue 10 item 14: the e2e IRSA stage runs its Job with k8s.IRSA_CHECK_IMAGE, not a Docker Hub image."""
    text = (ROOT / "tests" / "integration" / "test_e2e.py").read_text()
    assert ("k8s.IRSA_CHECK_IMAGE" in text, "amazon/aws-cli" in text) == (True, False)


# --- item 2: kubectl and its token plugin get the .env credentials only ----------------------------

def test_kubectl_gets_the_env_credentials_and_none_of_the_shell_aws_settings(tmp_path, monkeypatch):
    """FR26, issue 10 item 2: kubectl (and so its token plugin) runs with the .env key and without the
    shell's AWS_PROFILE or stale AWS_SESSION_TOKEN (fake kubectl echoing its environment)."""
    monkeypatch.setenv("AWS_PROFILE", "stale-profile")
    monkeypatch.setenv("AWS_SESSION_TOKEN", "stale-shell-token")
    fake = FakeCli(tmp_path / "bin", "kubectl",
                   [(r"version", {"echo_env": ["AWS_ACCESS_KEY_ID", "AWS_SESSION_TOKEN", "AWS_PROFILE"]})])
    kube = k8s.Kubectl(tmp_path / "kubeconfig", env=SETTINGS.child_env(), binary=fake.path)
    assert json.loads(kube.run("version")) == {"AWS_ACCESS_KEY_ID": SETTINGS.aws_access_key_id,
                                               "AWS_SESSION_TOKEN": None, "AWS_PROFILE": None}


def test_token_plugin_signs_with_the_session_token_it_is_given(tmp_path):
    """FR26, issue 10 item 2: `python -m lfharness.k8s token` presigns with the temporary key's
    session token from its environment and ignores AWS_PROFILE / AWS_CONFIG_FILE (no network: presigning is local)."""
    env = {"AWS_ACCESS_KEY_ID": "ASIA" + "C" * 16, "AWS_SECRET_ACCESS_KEY": "y" * 40,
           "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE" + "Q" * 200, "AWS_PROFILE": "no-such-profile",
           "AWS_CONFIG_FILE": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "lfharness.k8s", "token", "langfuse",
                          "us-east-1"], env=env, capture_output=True, text=True, check=True, cwd=ROOT)
    raw = json.loads(out.stdout)["status"]["token"].removeprefix("k8s-aws-v1.")
    query = parse_qs(urlparse(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode()).query)
    assert query["X-Amz-Security-Token"] == [env["AWS_SESSION_TOKEN"]]


def test_diagnostics_redact_literal_env_values_of_described_pods():
    """NFR1, issue 10 item 13: `kubectl describe pods` shows the chart's plain env values (salt,
    passwords, project secret key); diagnostics keep the names and secret references, never values.
    Recorded shape of kubectl 1.35's describe output."""
    described = ("Containers:\n  langfuse-web:\n    Environment:\n      SALT:             s3cr3tSalt\n"
                 "      DATABASE_PASSWORD:  <set to the key 'password' in secret 'db'>  Optional: false\n"
                 "    Mounts:\n      /data from data (rw)\n")
    redacted = k8s.redact_environment(described)
    assert "s3cr3tSalt" not in redacted
    assert "SALT:" in redacted and "<set to the key 'password' in secret 'db'>" in redacted
    assert "/data from data (rw)" in redacted
