"""Plan tier, issue 26 item 6: who may reach the EKS public endpoint (NFR5) and RDS on 5432 (NFR3).

Both default to 0.0.0.0/0 as the spec says; an operator narrows them with two optional .env keys
(LFK8S_EKS_PUBLIC_ACCESS_CIDRS, LFK8S_RDS_INGRESS_CIDRS), which the harness passes as the
variables cluster_endpoint_public_access_cidrs (01-network) and rds_ingress_cidrs (02-deps). The
narrowed plans take their variables from what envfile.Settings.terraform_env() exports, so the
value Terraform reads is the harness's own.

Stand-ins: the provider stand-in serving the real aws schema; the real random, tls, time,
cloudinit and tfe providers; the local Terraform Cloud fake serving upstream outputs; the real
vpc, eks, iam and rds module sources from LFK8S_MODULE_MIRROR (without them this file skips with
one line). Terraform's own validation makes the negative plans fail.
"""

from __future__ import annotations

import json
import re

import pytest
import tftest

from lfharness.core import envfile, hcl, tf
from lfharness.testing import plan

pytestmark = pytest.mark.plan

_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

EKS = "module.eks.aws_eks_cluster.this[0]"
RULE = "aws_vpc_security_group_ingress_rule"
NARROW = ("203.0.113.0/24", "198.51.100.7/32")  # documentation ranges (RFC 5737)
ANYWHERE = ["0.0.0.0/0"]


def _narrowed_variables(workspace: str) -> dict[str, str]:
    """The CIDR variables a workspace declares, as the harness exports them from a .env that sets
    both keys (JSON lists, which Terraform reads as HCL)."""
    settings = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                                "x" * 12, eks_public_access_cidrs=NARROW, rds_ingress_cidrs=NARROW)
    declared = hcl.blocks(tf.TERRAFORM_DIR / workspace, "variable")
    exported = {k.removeprefix("TF_VAR_"): v for k, v in settings.terraform_env().items()}
    return {name: exported[name] for name in envfile.CIDR_VARIABLES.values() if name in declared}


@pytest.fixture(scope="module")
def narrowed_network(workbench, tmp_path_factory) -> plan.Plan:
    return workbench.plan("01-network", tmp_path_factory.mktemp("narrow") / "01-network",
                          _narrowed_variables("01-network"))


@pytest.fixture(scope="module")
def narrowed_deps(workbench, tmp_path_factory) -> plan.Plan:
    return workbench.plan("02-deps", tmp_path_factory.mktemp("narrow") / "02-deps", _narrowed_variables("02-deps"))


def _cidr_rules(deps: plan.Plan) -> list[str]:
    return sorted(r["cidr_ipv4"] for r in deps.of_type(RULE).values() if r["cidr_ipv4"])


# --- 01-network: the EKS public endpoint ----------------------------------------------------

def test_the_eks_public_endpoint_admits_only_the_cidrs_the_env_narrows_it_to(narrowed_network):
    """NFR5, issue 26 item 6: with LFK8S_EKS_PUBLIC_ACCESS_CIDRS set, the cluster's public endpoint
    stays on and admits exactly those CIDRs."""
    vpc_config = narrowed_network.after(EKS)["vpc_config"][0]
    assert (vpc_config["endpoint_public_access"], sorted(vpc_config["public_access_cidrs"])) == (True, sorted(NARROW))


def test_the_nodes_keep_the_private_endpoint_when_the_public_one_is_narrowed(narrowed_network):
    """FR3, issue 26 item 6: the private endpoint stays on, so the nodes (in the VPC) reach the API
    server whatever the public CIDRs say."""
    assert narrowed_network.after(EKS)["vpc_config"][0]["endpoint_private_access"] is True


def test_the_eks_public_endpoint_is_open_to_anywhere_by_default(network_plan):
    """NFR5: without the key, the public endpoint admits 0.0.0.0/0, the spec's default."""
    assert network_plan.after(EKS)["vpc_config"][0]["public_access_cidrs"] == ANYWHERE


def test_a_cidr_with_host_bits_fails_the_network_plan_naming_the_variable_and_the_value(workbench, tmp_path):
    """Issue 26 item 6: Terraform's own validation refuses 10.1.2.3/8 (not a network address) and
    says which variable and which value."""
    with pytest.raises(tftest.TerraformTestError) as failed:
        workbench.plan("01-network", tmp_path / "01-network",
                       {"cluster_endpoint_public_access_cidrs": ["203.0.113.0/24", "10.1.2.3/8"]}, known_secrets=False)
    message = str(failed.value)
    assert re.search(plan.error_pattern("cluster_endpoint_public_access_cidrs", "must", "hold", "IPv4"), message)
    assert re.search(r'not:(?:\s|\\n)+\\?"10\.1\.2\.3/8\\?"', message)


# --- 02-deps: RDS's 5432 --------------------------------------------------------------------

def test_rds_5432_admits_only_the_narrowed_cidrs_besides_the_nodes(narrowed_deps):
    """NFR3, FR6, issue 26 item 6: with LFK8S_RDS_INGRESS_CIDRS set, one 5432/tcp rule per CIDR and
    the nodes' rule, no 0.0.0.0/0."""
    rules = narrowed_deps.of_type(RULE)
    assert _cidr_rules(narrowed_deps) == sorted(NARROW)
    assert {(r["ip_protocol"], r["from_port"], r["to_port"]) for r in rules.values()} == {("tcp", 5432, 5432)}
    assert [r["referenced_security_group_id"] for r in rules.values() if not r["cidr_ipv4"]] == [
        plan.NETWORK_SAMPLE["node_security_group_id"][0]]


def test_rds_5432_is_open_to_anywhere_by_default(deps_plan):
    """NFR3: without the key, 5432 is open to 0.0.0.0/0, the spec's default."""
    assert _cidr_rules(deps_plan) == ANYWHERE


def test_an_empty_cidr_list_fails_the_deps_plan_naming_the_variable(workbench, tmp_path):
    """Issue 26 item 6: Terraform's own validation refuses an empty rds_ingress_cidrs (it would
    leave the operator's machine no way in) and says so."""
    with pytest.raises(tftest.TerraformTestError,
                       match=plan.error_pattern("rds_ingress_cidrs", "must", "name", "at", "least", "one", "CIDR")):
        workbench.plan("02-deps", tmp_path / "02-deps", {"rds_ingress_cidrs": []}, known_secrets=False)


def test_the_anywhere_rule_of_an_earlier_stack_is_moved_not_replaced(workbench, tmp_path):
    """NFR3, FR29, issue 26 item 6: a 02-deps applied with the single rds_from_anywhere rule (before
    the variable) plans its rule as moved to rds_from_cidrs["0.0.0.0/0"] with no change: an upgrade
    does not close and reopen 5432."""
    current = (tf.TERRAFORM_DIR / "02-deps" / "rds.tf").read_text()
    before = re.sub(r"\nmoved \{.*?\n\}\n", "\n", current, flags=re.S)
    before = before.replace(f'"{RULE}" "rds_from_cidrs" {{\n  for_each = toset(var.rds_ingress_cidrs)\n',
                            f'"{RULE}" "rds_from_anywhere" {{\n')
    before = before.replace("cidr_ipv4         = each.value", f"cidr_ipv4         = {json.dumps(ANYWHERE[0])}")
    assert "rds_from_cidrs" not in before and "moved" not in before, "rds.tf changed shape: update this test's edit"
    earlier = workbench.plan("02-deps", tmp_path / "02-deps", edit={"rds.tf": before})
    workbench.apply(earlier)
    (earlier.folder / "rds.tf").write_text(current)
    change = workbench.replan(earlier, {}).changes[f'{RULE}.rds_from_cidrs["0.0.0.0/0"]']
    assert (change.get("previous_address"), change["change"]["actions"]) == (f"{RULE}.rds_from_anywhere", ["no-op"])
