"""Kubernetes mechanics of the e2e suite that must fail fast and say why (issue 10 items 2, 11-14;
static tier).

What a real API server cannot serve stays here: the EKS token plugin and the environment kubectl
gets (stand-in: a fake `kubectl`, lfharness.testing.localsvc.FakeCli, echoing its environment or
recording its calls), and pure functions on typed pods. The rest runs against a real Kubernetes
1.35 API server in tests/unit/test_kube_k8s.py.
"""

from __future__ import annotations

import base64
import json
import re
import subprocess
import sys
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import pytest

from lfharness.core import envfile
from lfharness.stack import k8s
from lfharness.testing.localsvc import FakeCli

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
SETTINGS = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                            "correct-horse-battery")


def _kubectl(tmp_path: Path, *rules: tuple[str, dict]) -> tuple[k8s.Kube, FakeCli]:
    fake = FakeCli(tmp_path / "bin", "kubectl", list(rules))
    return k8s.Kube(tmp_path / "kubeconfig", env=None, binary=fake.path), fake


def _container(name: str, restarts: int, reason: str | None = None, exit_code: int | None = None):
    from kubernetes import client

    last = client.V1ContainerState(terminated=client.V1ContainerStateTerminated(reason=reason, exit_code=exit_code)) \
        if reason else client.V1ContainerState()
    return client.V1ContainerStatus(name=name, ready=True, restart_count=restarts, image="x", image_id="",
                                    last_state=last)


def _pod(name: str, *containers):
    """A typed v1 Pod as the kubernetes client returns it."""
    from kubernetes import client

    return client.V1Pod(metadata=client.V1ObjectMeta(name=name),
                        spec=client.V1PodSpec(containers=[client.V1Container(name=c.name) for c in containers]),
                        status=client.V1PodStatus(phase="Running", container_statuses=list(containers)))


# Port-forward failures, Jobs reaching Complete / Failed, restarts and diagnostics against a real
# API server: tests/unit/test_kube_k8s.py (kube tier). What stays here needs no server.

# --- item 13: restarts ----------------------------------------------------------------------------

def test_a_restart_after_readiness_is_reported_with_its_reason():
    """FR22, issue 10 item 13: a container that restarted after readiness is reported with
    lastState.terminated's reason and exit code (typed v1 Pods as the client returns them)."""
    baseline = k8s.restart_counts([_pod("langfuse-worker-0", _container("langfuse-worker", 1, "Error", 1))])
    later = [_pod("langfuse-worker-0", _container("langfuse-worker", 2, "OOMKilled", 137))]
    assert [str(r) for r in k8s.restarts_since(baseline, later)] == [
        "langfuse-worker-0/langfuse-worker: 1 restart(s), last ended: OOMKilled, exit code 137"]


def test_restarts_before_readiness_are_not_counted():
    """FR22, issue 10 item 13: restarts that happened while Valkey was starting (counted at readiness)
    are not failures later (typed v1 Pods as the client returns them)."""
    items = [_pod("langfuse-worker-0", _container("langfuse-worker", 3, "Error", 1)),
             _pod("langfuse-web-0", _container("langfuse-web", 0))]
    assert k8s.restarts_since(k8s.restart_counts(items), items) == []


def test_a_successful_block_collects_no_diagnostics(tmp_path):
    """Issue 10 item 13: nothing is collected (no kubectl call, no API call) when the block succeeds (fake kubectl)."""
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
    """FR26, issue 10 item 2: `python -m lfharness.stack.k8s token` presigns with the temporary key's
    session token from its environment and ignores AWS_PROFILE / AWS_CONFIG_FILE (no network: presigning is local)."""
    env = {"AWS_ACCESS_KEY_ID": "ASIA" + "C" * 16, "AWS_SECRET_ACCESS_KEY": "y" * 40,
           "AWS_SESSION_TOKEN": "FwoGZXIvYXdzE" + "Q" * 200, "AWS_PROFILE": "no-such-profile",
           "AWS_CONFIG_FILE": str(tmp_path / "absent"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, "-m", "lfharness.stack.k8s", "token", "langfuse",
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
