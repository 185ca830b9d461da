"""Cross-workspace contract: what 02-deps and 03-app read via tfe_outputs exists upstream (static)."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from lfharness.core import hcl

pytestmark = pytest.mark.static

TERRAFORM = Path(__file__).resolve().parents[2] / "terraform"
NETWORK_OUTPUTS = {"vpc_id", "public_subnet_ids", "cluster_name", "cluster_endpoint",
                   "cluster_ca_data", "oidc_provider_arn", "node_security_group_id"}
DEPS_OUTPUTS = {"rds_endpoint", "rds_password", "s3_bucket_name", "s3_bucket_region", "irsa_role_arn"}
# Decision 20: the secrets that protect stored data, added beside the five (name -> sensitive).
DEPS_DATA_SECRETS = {"salt": True, "encryption_key": True, "project_public_key": False, "project_secret_key": True}
# Decision 24: ClickHouse's volume, owned by 02-deps and bound by 03-app (none of it secret).
DEPS_CLICKHOUSE_VOLUME = {"clickhouse_volume_id", "clickhouse_volume_zone", "clickhouse_volume_size_gib"}


def _load(workspace: str, filename: str) -> dict:
    return hcl.load(TERRAFORM / workspace / filename)


def _outputs(workspace: str) -> dict[str, dict]:
    return hcl.blocks(TERRAFORM / workspace, "output")


def _cloud_workspace(workspace: str) -> str:
    terraform = _load(workspace, "providers.tf")["terraform"][0]
    return terraform["cloud"][0]["workspaces"][0]["name"]


def _tfe_sources(workspace: str) -> dict[str, str]:
    """data "tfe_outputs" label -> the TFC workspace it reads."""
    data = _load(workspace, "data.tf").get("data", [])
    return {label: body["workspace"] for block in data for kind, items in block.items()
            if kind == "tfe_outputs" for label, body in items.items()}


def _keys_read(workspace: str, label: str) -> set[str]:
    """Output names read from data.tfe_outputs.<label>, directly or through local.<label>."""
    text = "\n".join(p.read_text() for p in (TERRAFORM / workspace).glob("*.tf"))
    direct = re.findall(rf"data\.tfe_outputs\.{label}\.(?:nonsensitive_values|values)\.(\w+)", text)
    via_local = re.findall(rf"local\.{label}\.(\w+)", text)
    return set(direct) | set(via_local)


def test_network_exports_the_seven_contract_outputs_with_descriptions():
    """FR16: 01-network exports exactly the 7 outputs of story 1.2, each described."""
    outputs = _outputs("01-network")
    assert set(outputs) == NETWORK_OUTPUTS
    assert all(body.get("description") for body in outputs.values())


def test_deps_exports_the_five_contract_outputs_with_the_password_sensitive():
    """FR17, NFR1: 02-deps exports the 5 outputs of story 2.3; rds_password is sensitive."""
    outputs = _outputs("02-deps")
    assert DEPS_OUTPUTS <= set(outputs)
    assert outputs["rds_password"].get("sensitive") is True
    assert all(body.get("description") for body in outputs.values())


def test_deps_exports_the_data_protecting_secrets_sensitive_and_nothing_else():
    """Decision 20, FR28: 02-deps adds salt, encryption key and the project key pair to the five;
    every one but the public key is sensitive. Decision 24 adds ClickHouse's volume, not sensitive."""
    outputs = _outputs("02-deps")
    assert set(outputs) == DEPS_OUTPUTS | set(DEPS_DATA_SECRETS) | DEPS_CLICKHOUSE_VOLUME
    assert {k: outputs[k].get("sensitive", False) is True for k in DEPS_DATA_SECRETS} == DEPS_DATA_SECRETS
    assert [k for k in DEPS_CLICKHOUSE_VOLUME if outputs[k].get("sensitive")] == []


def test_app_reads_sensitive_deps_outputs_only_from_values_and_null_safe():
    """Decision 12, decision 22: a sensitive output is absent from nonsensitive_values, so 03-app reads
    each data-protecting secret from `values`, wrapped in try() (02-deps may be gone at destroy)."""
    text = (TERRAFORM / "03-app" / "data.tf").read_text()
    for name, sensitive in DEPS_DATA_SECRETS.items():
        source = "data.tfe_outputs.deps.values" if sensitive else "local.deps"
        assert re.search(rf"=\s*try\({re.escape(source)}\.{name},\s*null\)", text), f"{name} is not read null-safe from {source}"


def test_workspaces_use_the_three_fixed_terraform_cloud_names():
    """NFR12: state lives in the TFC workspaces langfuse-network, -deps, -app."""
    names = [_cloud_workspace(ws) for ws in ("01-network", "02-deps", "03-app")]
    assert names == ["langfuse-network", "langfuse-deps", "langfuse-app"]


@pytest.mark.parametrize("consumer", ["02-deps", "03-app"])
def test_tfe_outputs_read_only_names_the_upstream_workspace_exports(consumer):
    """FR16, FR17: every key read through tfe_outputs is an output of the workspace it names."""
    exports = {"langfuse-network": NETWORK_OUTPUTS | set(_outputs("01-network")),
               "langfuse-deps": set(_outputs("02-deps"))}
    sources = _tfe_sources(consumer)
    assert sources, f"{consumer} reads no tfe_outputs"
    for label, workspace in sources.items():
        assert workspace in exports, f"data.tfe_outputs.{label} reads unknown workspace {workspace!r}"
        read = _keys_read(consumer, label)
        assert read, f"nothing is read from data.tfe_outputs.{label}"
        assert read <= exports[workspace], f"{consumer} reads {read - exports[workspace]} not exported by {workspace}"


def test_app_reads_the_cluster_and_all_deps_outputs():
    """FR17, decision 20, decision 24: 03-app consumes cluster_name/endpoint/ca_data from 01, all 5
    contract outputs of 02, its 4 data-protecting secrets and ClickHouse's volume."""
    assert {"cluster_name", "cluster_endpoint", "cluster_ca_data"} <= _keys_read("03-app", "network")
    assert _keys_read("03-app", "deps") == DEPS_OUTPUTS | set(DEPS_DATA_SECRETS) | DEPS_CLICKHOUSE_VOLUME


def test_deps_reads_vpc_subnets_node_sg_and_oidc_from_network():
    """FR16: 02-deps places RDS in 01's VPC, admits 01's nodes and trusts 01's OIDC provider."""
    assert {"vpc_id", "public_subnet_ids", "node_security_group_id", "oidc_provider_arn"} <= _keys_read("02-deps", "network")


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_variables_are_only_what_the_operator_configures(workspace):
    """NFR11, FR23: variables exist only for values that come from .env, and the operator's three
    knobs with defaults: cluster_enabled (the pause, Journey 3), node_capacity_type (cost, NFR6),
    clickhouse_volume_size_gib (how much trace history fits, decision 24) and
    clickhouse_volume_snapshot_id (moving an older stack's ClickHouse data, decision 24)."""
    allowed = {"aws_region", "tfc_organization", "langfuse_admin_email", "langfuse_admin_name",
               "langfuse_admin_password", "cluster_enabled", "node_capacity_type", "clickhouse_volume_size_gib",
               "clickhouse_volume_snapshot_id"}
    names = {name for block in _load(workspace, "variables.tf")["variable"] for name in block}
    assert {"aws_region", "tfc_organization"} <= names <= allowed


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_every_aws_resource_gets_project_and_workspace_tags(workspace):
    """NFR8: default_tags mark everything with the project and its workspace, so a sweep finds leftovers."""
    provider = next(b["aws"] for b in _load(workspace, "providers.tf")["provider"] if "aws" in b)
    tags = provider["default_tags"][0]["tags"]
    assert tags["Project"] == "langfuse-k8s-cluster"
    assert tags["Workspace"] == _cloud_workspace(workspace)
