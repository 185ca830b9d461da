"""Plan tier, ClickHouse's data volume (decision 24, Journey 3): 02-deps owns an EBS volume that
outlives 03-app and the cluster, 03-app binds it statically, and a pause keeps it.

Stand-ins: the provider stand-in serving the real aws 6.47.0 and kubernetes schemas (its
`aws_subnet` data source answers us-east-1a); the real random, helm-values and tfe providers; the
local Terraform Cloud fake serving the upstream outputs (`plan.NETWORK_SAMPLE`, `plan.DEPS_SAMPLE`);
the real module sources from LFK8S_MODULE_MIRROR (without them this file skips with one line).
What no plan can show (the EBS CSI driver attaching the volume, the scheduler honouring the zone)
is the kube tier's and the e2e suite's part.
"""

from __future__ import annotations

import pytest
import tftest
import yaml

from lfharness.stack import workspaces
from lfharness.testing import plan

pytestmark = pytest.mark.plan

_UNAVAILABLE = plan.modules_unavailable("02-deps") or plan.modules_unavailable("03-app")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

VOLUME = "aws_ebs_volume.clickhouse"
SUBNET = "data.aws_subnet.clickhouse[0]"
PV = "kubernetes_persistent_volume_v1.clickhouse[0]"
PVC = "kubernetes_persistent_volume_claim_v1.clickhouse[0]"
DEPS_VOLUME_ID = plan.DEPS_SAMPLE["clickhouse_volume_id"][0]
DEPS_VOLUME_ZONE = plan.DEPS_SAMPLE["clickhouse_volume_zone"][0]
DEPS_VOLUME_SIZE = plan.DEPS_SAMPLE["clickhouse_volume_size_gib"][0]


def _clickhouse_values(app_plan: plan.Plan) -> dict:
    (values,) = app_plan.after("helm_release.langfuse[0]")["values"]
    return yaml.safe_load(values)["clickhouse"]


# --- 02-deps owns the volume ----------------------------------------------------------------

def test_clickhouse_volume_is_an_encrypted_gp3_volume_of_8_gib_by_default(deps_plan):
    """Decision 24, NFR2: one encrypted gp3 volume, chart 1.5.19's 8 GiB unless configured."""
    volume = deps_plan.after(VOLUME)
    assert (volume["type"], volume["encrypted"], volume["size"]) == ("gp3", True, 8)
    assert list(deps_plan.of_type("aws_ebs_volume")) == [VOLUME]


def test_clickhouse_volume_lives_in_the_zone_of_the_first_network_subnet(deps_plan):
    """Decision 24, FR16: the zone is read from 01-network's first public subnet (a zone where the
    node group runs a node), not written down."""
    subnet = deps_plan.data(SUBNET)
    assert subnet["id"] == plan.NETWORK_SAMPLE["public_subnet_ids"][0][0]
    assert deps_plan.after(VOLUME)["availability_zone"] == subnet["availability_zone"]


def test_clickhouse_volume_carries_the_stack_tags_the_sweep_finds(deps_plan):
    """FR9, NFR8: tagged like the rest through the provider's default_tags (tags_all, known only
    at apply; the teardown's sweep looks for Project: test_contract holds the provider's tags), and named."""
    assert deps_plan.after(VOLUME)["tags"]["Name"] == "langfuse-clickhouse-data"
    assert deps_plan.unknown(VOLUME).get("tags_all") is True



def test_clickhouse_volume_id_zone_and_size_are_outputs(deps_plan):
    """Decision 24, FR16: 03-app reads the volume from 02-deps' outputs; the registry names them."""
    outputs = deps_plan.raw["planned_values"]["outputs"]
    assert {"clickhouse_volume_id", "clickhouse_volume_zone", "clickhouse_volume_size_gib"} <= set(outputs)
    assert outputs["clickhouse_volume_size_gib"]["value"] == 8
    assert {"clickhouse_volume_id", "clickhouse_volume_zone",
            "clickhouse_volume_size_gib"} <= set(workspaces.get(workspaces.DATA_WORKSPACE).sample_outputs)


@pytest.mark.parametrize("size", [7, 8.5, 16385])
def test_a_clickhouse_volume_size_out_of_range_is_rejected_before_anything_is_created(workbench, tmp_path, size):
    """FR23: the size is a whole number of GiB from 8 to 16384; anything else fails the plan naming it."""
    with pytest.raises(tftest.TerraformTestError, match="clickhouse_volume_size_gib must be a whole number"):
        workbench.plan("02-deps", tmp_path / "deps", {"clickhouse_volume_size_gib": size})


def test_clickhouse_volume_is_empty_unless_a_snapshot_is_given(deps_plan, workbench, tmp_path):
    """Decision 24, issue 23 item 4: by default the volume starts empty; an older stack's data
    moves in through clickhouse_volume_snapshot_id (docs/operations.md)."""
    assert deps_plan.after(VOLUME).get("snapshot_id") is None
    moved = workbench.plan("02-deps", tmp_path / "deps", {"clickhouse_volume_snapshot_id": "snap-0123456789abcdef0"})
    assert moved.after(VOLUME)["snapshot_id"] == "snap-0123456789abcdef0"


def test_a_malformed_snapshot_id_is_rejected_before_anything_is_created(workbench, tmp_path):
    """FR23: anything but an EBS snapshot id fails the plan naming the variable."""
    with pytest.raises(tftest.TerraformTestError, match="clickhouse_volume_snapshot_id must be an EBS snapshot id"):
        workbench.plan("02-deps", tmp_path / "deps", {"clickhouse_volume_snapshot_id": "vol-0123456789abcdef0"})


def test_a_larger_clickhouse_volume_is_planned_at_the_size_asked(workbench, tmp_path):
    """Decision 24: the size variable reaches the volume."""
    assert workbench.plan("02-deps", tmp_path / "deps", {"clickhouse_volume_size_gib": 20}).after(VOLUME)["size"] == 20


# --- 03-app binds it statically -------------------------------------------------------------

def test_clickhouse_persistent_volume_is_the_deps_volume_on_the_ebs_csi_driver(app_plan):
    """Decision 24: the PersistentVolume names 02-deps' volume id on ebs.csi.aws.com, ext4 so the
    kubelet gives ClickHouse's fsGroup the fresh filesystem."""
    (csi,) = app_plan.after(PV)["spec"][0]["persistent_volume_source"][0]["csi"]
    assert (csi["driver"], csi["volume_handle"], csi["fs_type"]) == ("ebs.csi.aws.com", DEPS_VOLUME_ID, "ext4")


def test_clickhouse_persistent_volume_is_retained_when_released(app_plan):
    """Decision 24: deleting the claim or the PersistentVolume never deletes the EBS volume."""
    assert app_plan.after(PV)["spec"][0]["persistent_volume_reclaim_policy"] == "Retain"


def test_clickhouse_persistent_volume_is_reachable_only_from_its_zone(app_plan):
    """Decision 24: node affinity to the volume's zone, so the scheduler places ClickHouse where
    the volume can attach."""
    (term,) = app_plan.after(PV)["spec"][0]["node_affinity"][0]["required"][0]["node_selector_term"]
    (expression,) = term["match_expressions"]
    assert (expression["key"], expression["operator"], expression["values"]) == (
        "topology.kubernetes.io/zone", "In", [DEPS_VOLUME_ZONE])


def test_clickhouse_persistent_volume_has_the_volume_size(app_plan):
    """Decision 24: the capacity is the volume's size from 02-deps."""
    assert app_plan.after(PV)["spec"][0]["capacity"] == {"storage": f"{DEPS_VOLUME_SIZE}Gi"}


def test_clickhouse_claim_binds_exactly_that_persistent_volume(app_plan):
    """Decision 24: the claim names the volume and the volume reserves the claim, with one class
    name no provisioner serves, so no second volume is ever made."""
    pv, pvc = app_plan.after(PV), app_plan.after(PVC)
    pv_name = pv["metadata"][0]["name"]
    (claim_ref,) = pv["spec"][0]["claim_ref"]
    assert pvc["spec"][0]["volume_name"] == pv_name
    assert (claim_ref["name"], claim_ref["namespace"]) == (pvc["metadata"][0]["name"], pvc["metadata"][0]["namespace"])
    assert pvc["spec"][0]["storage_class_name"] == pv["spec"][0]["storage_class_name"]
    assert pv["spec"][0]["storage_class_name"] not in {sc["metadata"][0]["name"]
                                                       for sc in app_plan.of_type("kubernetes_storage_class_v1").values()}


def test_clickhouse_uses_the_static_claim_instead_of_a_volume_of_its_own(app_plan):
    """Decision 24: the chart's clickhouse.persistence.existingClaim is the claim 03-app makes."""
    persistence = _clickhouse_values(app_plan)["persistence"]
    assert persistence == {"enabled": True, "existingClaim": app_plan.after(PVC)["metadata"][0]["name"]}


def test_an_app_without_the_deps_volume_fails_the_plan_naming_02_deps(workbench, tmp_path):
    """Decision 24, FR23: 02-deps applied before the volume existed: 03-app refuses to plan a
    release that would have nowhere to keep its traces, and says to apply 02-deps."""
    without = {k: v for k, v in plan.DEPS_SAMPLE.items() if not k.startswith("clickhouse_volume_")}
    with workbench.upstream(plan.NETWORK_SAMPLE, without), pytest.raises(
            tftest.TerraformTestError, match=plan.error_pattern("no", "clickhouse_volume_id:", "apply", "02-deps")):
        workbench.plan("03-app", tmp_path / "app", known_secrets=False)
