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
# Issue 26: every generated secret lives in 02-deps; the in-cluster ones moved there from 03-app,
# with the revision 03-app's Secret follows (not sensitive: a digest).
DEPS_IN_CLUSTER_SECRETS = {"nextauth_secret", "clickhouse_password", "redis_password"}
DEPS_REVISION = "app_secrets_revision"


def _load(workspace: str, filename: str) -> dict:
    return hcl.load(TERRAFORM / workspace / filename)


def _outputs(workspace: str) -> dict[str, dict]:
    return hcl.blocks(TERRAFORM / workspace, "output")


def _cloud_workspace(workspace: str) -> str:
    terraform = _load(workspace, "providers.tf")["terraform"][0]
    return terraform["cloud"][0]["workspaces"][0]["name"]


def _tfe_sources(workspace: str) -> dict[str, str]:
    """data or ephemeral "tfe_outputs" label -> the TFC workspace it reads."""
    loaded = _load(workspace, "data.tf")
    blocks = loaded.get("data", []) + loaded.get("ephemeral", [])
    return {label: body["workspace"] for block in blocks for kind, items in block.items()
            if kind == "tfe_outputs" for label, body in items.items()}


def _keys_read(workspace: str, label: str) -> set[str]:
    """Output names read from tfe_outputs.<label> (data or ephemeral), directly or through
    local.<label> (the non-secret values) and local.<label>_secrets (the ephemeral ones)."""
    text = "\n".join(p.read_text() for p in (TERRAFORM / workspace).glob("*.tf"))
    direct = re.findall(rf"(?:data|ephemeral)\.tfe_outputs\.{label}\.(?:nonsensitive_values|values)\.(\w+)", text)
    via_local = re.findall(rf"local\.{label}(?:_secrets)?\.(\w+)", text)
    return set(direct) | set(via_local) | (set(_secret_outputs().values()) if (workspace, label) == ("03-app", "deps") else set())


def _secret_outputs() -> dict[str, str]:
    """03-app's Secret key -> the 02-deps output that fills it (local.secret_outputs)."""
    blocks = _load("03-app", "kubernetes_secret.tf")["locals"]
    return next(b["secret_outputs"] for b in blocks if "secret_outputs" in b)


def _deps_contract_keys() -> set[str]:
    """The keys of the contract variable 02-deps publishes (local.contract in contract.tf)."""
    blocks = _load("02-deps", "contract.tf")["locals"]
    return set(next(b["contract"] for b in blocks if "contract" in b))


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
    assert set(outputs) == (DEPS_OUTPUTS | set(DEPS_DATA_SECRETS) | DEPS_CLICKHOUSE_VOLUME | DEPS_IN_CLUSTER_SECRETS
                            | {DEPS_REVISION})
    assert {k: outputs[k].get("sensitive", False) is True for k in DEPS_DATA_SECRETS} == DEPS_DATA_SECRETS
    assert [k for k in DEPS_CLICKHOUSE_VOLUME | {DEPS_REVISION} if outputs[k].get("sensitive")] == []
    assert sorted(k for k in DEPS_IN_CLUSTER_SECRETS if outputs[k].get("sensitive") is not True) == []


def test_the_deps_contract_variable_carries_exactly_the_non_sensitive_outputs():
    """Issue 26, FR17: 03-app reads 02-deps' non-secret values from the contract variable (the
    tfe_outputs data source would store the secrets in its state too), so that variable carries
    every non-sensitive output of 02-deps and no sensitive one."""
    outputs = _outputs("02-deps")
    assert _deps_contract_keys() == {k for k, body in outputs.items() if not body.get("sensitive")}


def test_app_reads_02_deps_without_the_data_source_that_stores_secrets():
    """Issue 26: 03-app's state holds no secret: it reads 02-deps only with the ephemeral
    tfe_outputs (secrets) and the contract variable, never with data "tfe_outputs"."""
    loaded = _load("03-app", "data.tf")
    data_sources = {label: body["workspace"] for block in loaded.get("data", []) for kind, items in block.items()
                    if kind == "tfe_outputs" for label, body in items.items()}
    ephemeral = {label: body["workspace"] for block in loaded.get("ephemeral", []) for kind, items in block.items()
                 if kind == "tfe_outputs" for label, body in items.items()}
    assert "langfuse-deps" not in data_sources.values()
    assert ephemeral == {"deps": "langfuse-deps"}


def test_app_reads_every_deps_secret_ephemeral_and_null_safe():
    """Issue 26, decision 22: each sensitive output of 02-deps is read from the ephemeral
    tfe_outputs (local.deps_secrets) wrapped in try(), since 02-deps may be gone at destroy; each
    non-sensitive one from the contract (local.deps), also in try()."""
    text = "\n".join(p.read_text() for p in (TERRAFORM / "03-app").glob("*.tf"))
    lines = text.splitlines()
    secret_outputs = set(_secret_outputs().values())
    # The Secret's keys are filled from local.secret_outputs, each read null-safe from the ephemeral outputs.
    assert re.search(r"try\(local\.deps_secrets\[output\],\s*null\)", text)
    for name, body in _outputs("02-deps").items():
        if body.get("sensitive") and name in secret_outputs:
            continue
        source = "local.deps_secrets" if body.get("sensitive") else "local.deps"
        reads = [ln for ln in lines if re.search(rf"{re.escape(source)}\.{name}\b", ln)]
        assert reads, f"{name} is not read from {source}"
        assert [ln.strip() for ln in reads if not re.search(rf"try\(.*{re.escape(source)}\.{name}\b", ln)] == []


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
    """FR17, decision 20, decision 24, issue 26: 03-app consumes cluster_name/endpoint/ca_data from
    01, and every output of 02: the 5 contract outputs, the 4 data-protecting secrets, ClickHouse's
    volume, the in-cluster secrets and their revision."""
    assert {"cluster_name", "cluster_endpoint", "cluster_ca_data"} <= _keys_read("03-app", "network")
    assert _keys_read("03-app", "deps") == set(_outputs("02-deps"))


def test_deps_reads_vpc_subnets_node_sg_and_oidc_from_network():
    """FR16: 02-deps places RDS in 01's VPC, admits 01's nodes and trusts 01's OIDC provider."""
    assert {"vpc_id", "public_subnet_ids", "node_security_group_id", "oidc_provider_arn"} <= _keys_read("02-deps", "network")


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_variables_are_only_what_the_operator_configures(workspace):
    """NFR11, FR23: variables exist only for values that come from .env, and the operator's
    knobs with defaults: cluster_enabled (the pause, Journey 3), node_capacity_type (cost, NFR6),
    clickhouse_volume_size_gib (how much trace history fits, decision 24),
    clickhouse_volume_snapshot_id (moving an older stack's ClickHouse data, decision 24) and the
    CIDRs that narrow the EKS endpoint (NFR5) and RDS's 5432 (NFR3), issue 26."""
    allowed = {"aws_region", "tfc_organization", "langfuse_admin_email", "langfuse_admin_name",
               "langfuse_admin_password", "cluster_enabled", "node_capacity_type", "clickhouse_volume_size_gib",
               "clickhouse_volume_snapshot_id", "cluster_endpoint_public_access_cidrs", "rds_ingress_cidrs"}
    names = {name for block in _load(workspace, "variables.tf")["variable"] for name in block}
    assert {"aws_region", "tfc_organization"} <= names <= allowed


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_every_aws_resource_gets_project_and_workspace_tags(workspace):
    """NFR8: default_tags mark everything with the project and its workspace, so a sweep finds leftovers."""
    provider = next(b["aws"] for b in _load(workspace, "providers.tf")["provider"] if "aws" in b)
    tags = provider["default_tags"][0]["tags"]
    assert tags["Project"] == "langfuse-k8s-cluster"
    assert tags["Workspace"] == _cloud_workspace(workspace)
