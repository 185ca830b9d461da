"""Plan tier, 03-app: its data.tf, variables.tf and secrets.tf planned offline with the real
tfe and random providers, upstream outputs served by the local Terraform Cloud fake.

The helm, kubernetes and aws parts of 03-app are out of this tier here: those providers do not
build offline (the Go module proxy refuses them, see README), and chart rendering is out of
this tier's scope anyway. The rendered values are checked in test_values_template.py.
"""

from __future__ import annotations

import pytest
import tftest

from lfharness import plan

pytestmark = pytest.mark.plan

FILES = ["variables.tf", "data.tf", "secrets.tf"]
PROVIDERS = ["random", "tfe"]
VARS = {"aws_region": "us-east-1", "tfc_organization": "langfuse-test", "langfuse_admin_email": "ops@example.com",
        "langfuse_admin_password": "correct-horse-battery"}
# Exposes the locals data.tf derives, so the plan shows what the helm release would receive.
PROBE = {"zz_probe_outputs.tf": "\n".join(
    f'output "{name}" {{\n  value = nonsensitive(local.{name})\n}}'
    for name in ("cluster_name", "cluster_endpoint", "cluster_ca_data", "rds_host", "rds_password",
                 "s3_bucket_name", "s3_bucket_region", "irsa_role_arn")) + "\n"}


@pytest.fixture(scope="module")
def offline(plan_offline):
    missing = plan.missing_providers(PROVIDERS)
    if missing:
        pytest.skip("03-app subset cannot plan offline: " + "; ".join(missing))
    return plan_offline


@pytest.fixture(scope="module")
def planned(offline, tmp_path_factory):
    folder = plan.subset("03-app", FILES, PROVIDERS, tmp_path_factory.mktemp("app"), offline.fake.hostname, PROBE)
    return plan.terraform_test(folder, offline.env).plan(output=True, tf_vars=VARS)


def test_app_reads_the_cluster_from_network_outputs(planned):
    """FR17: cluster name, endpoint and CA data come from langfuse-network via tfe_outputs."""
    assert planned.outputs["cluster_name"] == plan.NETWORK_SAMPLE["cluster_name"][0]
    assert planned.outputs["cluster_endpoint"] == plan.NETWORK_SAMPLE["cluster_endpoint"][0]
    assert planned.outputs["cluster_ca_data"] == plan.NETWORK_SAMPLE["cluster_ca_data"][0]


def test_app_strips_the_port_from_the_rds_endpoint(planned):
    """Story 3.2: rds_endpoint host:5432 becomes the bare host for databaseUrl."""
    assert planned.outputs["rds_host"] == plan.DEPS_SAMPLE["rds_endpoint"][0].split(":")[0]


def test_app_reads_the_sensitive_rds_password_and_the_s3_and_irsa_outputs(planned):
    """FR17, decision 12: the sensitive rds_password and the other deps outputs reach 03-app."""
    assert planned.outputs["rds_password"] == plan.DEPS_SAMPLE["rds_password"][0]
    assert planned.outputs["s3_bucket_name"] == plan.DEPS_SAMPLE["s3_bucket_name"][0]
    assert planned.outputs["s3_bucket_region"] == "us-east-1"
    assert planned.outputs["irsa_role_arn"] == plan.DEPS_SAMPLE["irsa_role_arn"][0]


@pytest.mark.parametrize("address,length", [
    ("random_password.salt", 64), ("random_password.nextauth_secret", 64),
    ("random_password.clickhouse", 32), ("random_password.redis", 32),
    ("random_password.project_secret_key", 48),
])
def test_generated_passwords_have_their_lengths_and_are_alphanumeric(planned, address, length):
    """FR15, NFR2, decision 9: >= 32 CSPRNG characters, no specials (URLs are not encoded)."""
    values = planned.resources[address]["values"]
    assert values["length"] == length and values["length"] >= 32
    assert values["special"] is False


def test_encryption_key_is_256_bits(planned):
    """Decision 13: ENCRYPTION_KEY comes from 32 random bytes (64 hex characters)."""
    assert planned.resources["random_id.encryption_key"]["values"]["byte_length"] == 32


def test_plan_creates_only_generated_secrets_in_this_subset(planned):
    """FR15: every resource planned here is a random generator, all to be created."""
    changes = planned.resource_changes
    assert changes and all(c["change"]["actions"] == ["create"] for c in changes.values())
    assert {c["type"] for c in changes.values()} <= {"random_password", "random_id", "random_uuid"}


def test_a_typo_in_the_upstream_workspace_name_fails_the_plan(offline, tmp_path):
    """FR17: tfe_outputs of a workspace that does not exist fails, so a typo in data.tf cannot pass."""
    folder = plan.subset("03-app", FILES, PROVIDERS, tmp_path, offline.fake.hostname)
    data = folder / "data.tf"
    data.write_text(data.read_text().replace('"langfuse-deps"', '"langfuse-dep"'))
    with pytest.raises(tftest.TerraformTestError, match="Unable to read workspace"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars=VARS)


def test_an_invalid_region_is_rejected_by_validation(offline, tmp_path):
    """FR23: aws_region is validated before anything is created."""
    folder = plan.subset("03-app", FILES, PROVIDERS, tmp_path, offline.fake.hostname)
    with pytest.raises(tftest.TerraformTestError, match="aws_region must be an AWS region name"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars={**VARS, "aws_region": "us-east-9x"})


def test_a_missing_admin_email_is_rejected(offline, tmp_path):
    """FR14, FR23: langfuse_admin_email is required; the plan fails naming it."""
    folder = plan.subset("03-app", FILES, PROVIDERS, tmp_path, offline.fake.hostname)
    no_email = {k: v for k, v in VARS.items() if k != "langfuse_admin_email"}
    with pytest.raises(tftest.TerraformTestError, match="langfuse_admin_email"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars=no_email)
