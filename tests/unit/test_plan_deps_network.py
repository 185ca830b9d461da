"""Plan tier, 02-deps and 01-network: the parts whose providers build offline.

02-deps: data.tf and variables.tf with the real tfe provider against the local Terraform Cloud
fake. 01-network: variables.tf. Their aws resources and the vpc/eks/rds modules are out of this
tier here: the aws provider v6 and those module versions are refused by the Go module proxy
(README, "Offline toolchain"); test_toolchain.py skips their full init naming each refusal.
"""

from __future__ import annotations

import pytest
import tftest

from lfharness import plan

pytestmark = pytest.mark.plan

VARS = {"aws_region": "us-east-1", "tfc_organization": "langfuse-test"}
PROBE = {"zz_probe_outputs.tf": "\n".join(
    f'output "{name}" {{\n  value = local.{name}\n}}'
    for name in ("vpc_id", "public_subnet_ids", "node_security_group_id", "oidc_provider_arn")) + "\n"}


@pytest.fixture(scope="module")
def offline(plan_offline):
    missing = plan.missing_providers(["tfe"])
    if missing:
        pytest.skip("02-deps subset cannot plan offline: " + "; ".join(missing))
    return plan_offline


@pytest.fixture(scope="module")
def deps_planned(offline, tmp_path_factory):
    folder = plan.subset("02-deps", ["variables.tf", "data.tf"], ["tfe"], tmp_path_factory.mktemp("deps"),
                         offline.fake.hostname, PROBE)
    return plan.terraform_test(folder, offline.env).plan(output=True, tf_vars=VARS)


def test_deps_places_rds_in_the_network_vpc_and_subnets(deps_planned):
    """FR5, FR16: the VPC and the two public subnets come from langfuse-network."""
    assert deps_planned.outputs["vpc_id"] == plan.NETWORK_SAMPLE["vpc_id"][0]
    assert deps_planned.outputs["public_subnet_ids"] == plan.NETWORK_SAMPLE["public_subnet_ids"][0]


def test_deps_admits_the_network_node_security_group(deps_planned):
    """FR6, FR16: the node security group allowed into RDS is 01-network's."""
    assert deps_planned.outputs["node_security_group_id"] == plan.NETWORK_SAMPLE["node_security_group_id"][0]


def test_deps_trusts_the_network_oidc_provider(deps_planned):
    """FR8, FR16: the IRSA role trusts 01-network's OIDC provider."""
    assert deps_planned.outputs["oidc_provider_arn"] == plan.NETWORK_SAMPLE["oidc_provider_arn"][0]


def test_deps_plan_with_an_unshared_or_missing_network_fails(offline, tmp_path):
    """FR16: reading a workspace that does not exist fails the plan instead of yielding nothing."""
    folder = plan.subset("02-deps", ["variables.tf", "data.tf"], ["tfe"], tmp_path, offline.fake.hostname, PROBE)
    data = folder / "data.tf"
    data.write_text(data.read_text().replace('"langfuse-network"', '"langfuse-netwrok"'))
    with pytest.raises(tftest.TerraformTestError, match="Unable to read workspace"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars=VARS)


@pytest.mark.parametrize("workspace,files,providers", [
    ("01-network", ["variables.tf"], []),
    ("02-deps", ["variables.tf", "data.tf"], ["tfe"]),
])
@pytest.mark.parametrize("region", ["us-east-9x", "useast1", "moon-base-1"])
def test_an_invalid_region_is_rejected_before_anything_is_created(offline, tmp_path, workspace, files, providers,
                                                                   region):
    """FR23: each workspace validates aws_region with a clear message."""
    folder = plan.subset(workspace, files, providers, tmp_path, offline.fake.hostname)
    with pytest.raises(tftest.TerraformTestError, match="aws_region must be an AWS region name"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars={**VARS, "aws_region": region})


def test_a_malformed_organization_name_is_rejected(offline, tmp_path):
    """FR23: tfc_organization is validated (letters, digits, - and _)."""
    folder = plan.subset("01-network", ["variables.tf"], [], tmp_path, offline.fake.hostname)
    with pytest.raises(tftest.TerraformTestError, match="tfc_organization may contain only"):
        plan.terraform_test(folder, offline.env).plan(output=True, tf_vars={**VARS, "tfc_organization": "bad org"})


def test_valid_network_variables_plan_cleanly(offline, tmp_path):
    """FR1: the defaults and a real region pass validation (the negative cases above are not vacuous)."""
    folder = plan.subset("01-network", ["variables.tf"], [], tmp_path, offline.fake.hostname)
    result = plan.terraform_test(folder, offline.env).plan(output=True, tf_vars={"tfc_organization": "my-org"})
    assert result.variables["aws_region"] == "us-east-1"
