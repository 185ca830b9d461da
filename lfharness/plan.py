"""Offline plans with tftest: a temporary copy of (part of) a workspace, providers from the
offline mirror, upstream outputs from the local Terraform Cloud fake (decision 7 wiring)."""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import tftest

from lfharness import hcl, tf
from lfharness.offline import localca, registry, toolchain
from lfharness.offline.tfc_fake import TfcFake

# Outputs shaped like the 7 + 5 contract, served by the fake to tfe_outputs.
NETWORK_SAMPLE = {
    "vpc_id": ("vpc-0abc1234def567890", False),
    "public_subnet_ids": (["subnet-0aaa1111bbb22222c", "subnet-0ddd3333eee44444f"], False),
    "cluster_name": ("langfuse", False),
    "cluster_endpoint": ("https://ABCDEF0123456789.gr7.us-east-1.eks.amazonaws.com", False),
    "cluster_ca_data": ("LS0tLS1CRUdJTiBDRVJUSUZJQ0FURS0tLS0tCg==", False),
    "oidc_provider_arn": ("arn:aws:iam::123456789012:oidc-provider/oidc.eks.us-east-1.amazonaws.com/id/ABC", False),
    "node_security_group_id": ("sg-0123456789abcdef0", False),
}
DEPS_SAMPLE = {
    "rds_endpoint": ("langfuse.c1x2y3z4.us-east-1.rds.amazonaws.com:5432", False),
    "rds_password": ("Sample0Password0For0Plans0Only00", True),
    "s3_bucket_name": ("langfuse-storage-1a2b3c4d", False),
    "s3_bucket_region": ("us-east-1", False),
    "irsa_role_arn": ("arn:aws:iam::123456789012:role/langfuse-s3-20260101", False),
}


@dataclass
class Offline:
    """The environment an offline plan needs, and the fake behind tfe_outputs."""

    env: dict[str, str]
    fake: TfcFake


@contextlib.contextmanager
def offline(folder: Path) -> Iterator[Offline]:
    """The Terraform Cloud fake with contract-shaped outputs, a trusted CA, the mirror CLI config."""
    ca = localca.make_ca(folder / "ca")
    token = "plan-" + os.urandom(12).hex()
    with TfcFake(ca, token) as fake:
        fake.set_outputs("langfuse-network", NETWORK_SAMPLE)
        fake.set_outputs("langfuse-deps", DEPS_SAMPLE)
        config = registry.write_cli_config(folder / "terraform.rc", toolchain.cache_dir(), None)
        yield Offline({"TF_CLI_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(localca.write_ca_bundle(ca)),
                       "TFE_TOKEN": token, "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}, fake)


def missing_providers(names: list[str]) -> list[str]:
    return toolchain.missing([("providers", n) for n in names])


def subset(workspace: str, files: list[str], providers: list[str], dest: Path, tfe_hostname: str,
           extra: dict[str, str] | None = None) -> Path:
    """Copies only `files` of a workspace and a terraform block requiring `providers` with the
    workspace's own constraints (read from its providers.tf), the tfe provider aimed at the fake."""
    source = tf.TERRAFORM_DIR / workspace
    target = dest / workspace
    target.mkdir(parents=True)
    for name in files:
        shutil.copy(source / name, target / name)
    required = {k: v for block in hcl.load(source / "providers.tf")["terraform"][0]["required_providers"]
                for k, v in block.items() if k in providers}
    missing = set(providers) - set(required)
    if missing:
        raise ValueError(f"{workspace}/providers.tf does not require {sorted(missing)}")
    lines = ["terraform {", "  required_providers {"]
    lines += [f"    {k} = {{\n      source  = {json.dumps(v['source'])}\n      version = {json.dumps(v['version'])}\n    }}"
              for k, v in sorted(required.items())]
    lines += ["  }", "}"]
    if "tfe" in providers:
        lines += ["", 'provider "tfe" {', f"  hostname = {json.dumps(tfe_hostname)}", "}"]
    (target / "test_providers.tf").write_text("\n".join(lines) + "\n")
    for name, text in (extra or {}).items():
        (target / name).write_text(text)
    return target


def terraform_test(folder: Path, env: dict[str, str]) -> tftest.TerraformTest:
    test = tftest.TerraformTest(str(folder), binary=str(tf.terraform_bin()), env=env)
    test.setup()
    return test
