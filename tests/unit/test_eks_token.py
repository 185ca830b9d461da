"""03-app's cluster credentials (decision 21, issue 15 defect 3): the helm and kubernetes providers
run `aws eks get-token` for every token they need, so a Helm wait longer than an EKS token's 15
minutes keeps working (static tier).

The command is read from 03-app's providers.tf (python-hcl2), its two references filled with the
values the plan tier serves (cluster "langfuse" from the local Terraform Cloud fake's sample,
region us-east-1), and run as the providers run it: the set-up's `aws` from .venv/bin (awscli from
PyPI), fake credentials, KUBERNETES_EXEC_INFO as client-go sets it, and every proxy pointed at a
closed port so any network call would fail. Presigning the STS call is local: no AWS involved.
"""

from __future__ import annotations

import base64
import datetime as dt
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlparse

import pytest

from lfharness.core import hcl, tf
from lfharness.testing import plan

pytestmark = pytest.mark.static

PROVIDERS = tf.TERRAFORM_DIR / "03-app" / "providers.tf"
# What the two references in the command evaluate to in the plan tier.
VALUES = {"${local.cluster_name}": plan.NETWORK_SAMPLE["cluster_name"][0], "${var.aws_region}": "us-east-1"}


def _kubernetes_blocks() -> dict[str, dict[str, Any]]:
    """Each provider's Kubernetes connection settings: kubernetes' own block, helm's `kubernetes`."""
    found: dict[str, dict[str, Any]] = {}
    for block in hcl.load(PROVIDERS)["provider"]:
        if "kubernetes" in block:
            found["kubernetes"] = block["kubernetes"]
        if "helm" in block:
            found["helm"] = block["helm"]["kubernetes"]
    return found


def _exec(settings: dict[str, Any]) -> dict[str, Any] | None:
    value = settings.get("exec")
    return value[0] if isinstance(value, list) else value  # a block (kubernetes) or an attribute (helm 3.x)


def _command() -> tuple[list[str], str]:
    """argv of the exec credential with its references filled in, and its api_version."""
    exec_config = _exec(_kubernetes_blocks()["kubernetes"])
    assert exec_config, "the kubernetes provider has no exec credential"
    argv = [exec_config["command"], *exec_config.get("args", [])]
    filled = [VALUES.get(arg, arg) for arg in argv]
    unresolved = [arg for arg in filled if "${" in arg]
    assert not unresolved, f"the command references values this test does not know: {unresolved}"
    return filled, exec_config["api_version"]


def test_helm_and_kubernetes_providers_run_one_exec_command_and_hold_no_token():
    """Decision 21, issue 15 defect 3: both providers authenticate with the same `exec` credential
    (`aws eks get-token` for the cluster, in the region) and neither is given a one-shot token."""
    blocks = _kubernetes_blocks()
    execs = {name: _exec(settings) for name, settings in blocks.items()}
    assert (execs["helm"] == execs["kubernetes"], execs["kubernetes"] and execs["kubernetes"]["args"][:2],
            {name for name, settings in blocks.items() if "token" in settings}) == (True, ["eks", "get-token"], set())


def test_the_providers_token_command_returns_an_exec_credential_offline(tmp_path):
    """Decision 21, issue 15 defect 3, FR26: the exact command the providers run prints an
    ExecCredential of the configured apiVersion whose token is a presigned STS GetCallerIdentity
    bound to the cluster (x-k8s-aws-id signed), with an expiry, using fake credentials and no network."""
    aws = Path(sys.executable).parent / "aws"
    if not aws.exists():
        pytest.skip(f"no aws command at {aws}: bash setup.sh installs it (awscli, pyproject.toml)")
    argv, api_version = _command()
    closed = "http://127.0.0.1:9"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_") and "proxy" not in k.lower()}
    env.update({"PATH": f"{aws.parent}{os.pathsep}{env.get('PATH', '')}", "AWS_ACCESS_KEY_ID": "AKIA" + "0" * 16,
                "AWS_SECRET_ACCESS_KEY": "0" * 40, "AWS_CONFIG_FILE": os.devnull,
                "AWS_SHARED_CREDENTIALS_FILE": os.devnull, "AWS_EC2_METADATA_DISABLED": "true",
                "HTTPS_PROXY": closed, "HTTP_PROXY": closed, "https_proxy": closed, "http_proxy": closed,
                "HOME": str(tmp_path),
                "KUBERNETES_EXEC_INFO": json.dumps({"apiVersion": api_version, "kind": "ExecCredential",
                                                    "spec": {"interactive": False}})})
    done = subprocess.run(argv, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    credential = json.loads(done.stdout)
    token = credential["status"]["token"]
    url = urlparse(base64.urlsafe_b64decode(token.removeprefix("k8s-aws-v1.") + "==").decode())
    query = parse_qs(url.query)
    expires = dt.datetime.fromisoformat(credential["status"]["expirationTimestamp"].replace("Z", "+00:00"))
    assert (credential["kind"], credential["apiVersion"], token.startswith("k8s-aws-v1."), query["Action"],
            "x-k8s-aws-id" in query["X-Amz-SignedHeaders"][0], expires > dt.datetime.now(dt.UTC)) == (
        "ExecCredential", api_version, True, ["GetCallerIdentity"], True, True)
