"""The cost model over small hand-made plan documents (static tier).

Each plan here has the shape of `terraform show -json` output (planned_values, variables) with
only the resources a test needs; the stand-in is that hand-made JSON, no Terraform runs. Expected
figures are computed from the committed rate table, so a rate edit does not break these tests but
a change in how a resource is counted does. Plan-based totals against NFR6 are in
test_plan_paused.py.
"""

from __future__ import annotations

import datetime as dt
import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from lfharness import commands
from lfharness.stack import cost

pytestmark = pytest.mark.static

# Chart 1.5.19's sizing defaults after its clickhouse/redis sections are merged over the Bitnami
# subcharts' values, derived from the upstream files by tests/data/reference/derive.py.
CHART_DEFAULTS = Path(__file__).resolve().parents[1] / "data" / "reference" / "langfuse-chart-1.5.19-defaults.json"


@pytest.fixture(scope="module")
def rates() -> dict[str, Any]:
    return cost.load_rates()


def _rate(rates: dict[str, Any], key: str) -> float:
    return rates["rates"][key]["usd"]


def _resource(kind: str, name: str, values: dict[str, Any], module: str = "") -> dict[str, Any]:
    address = f"{module + '.' if module else ''}{kind}.{name}"
    return {"address": address, "mode": "managed", "type": kind, "name": name, "values": values}


def _plan(*resources: dict[str, Any], modules: dict[str, list[dict[str, Any]]] | None = None,
          region: str = "us-east-1") -> dict[str, Any]:
    """A `terraform show -json`-shaped document: root resources plus child modules by address."""
    children = [{"address": address, "resources": items} for address, items in (modules or {}).items()]
    return {"format_version": "1.2", "variables": {"aws_region": {"value": region}},
            "planned_values": {"root_module": {"resources": list(resources), "child_modules": children}}}


def _cluster(support: str | None = "STANDARD", log_types: list[str] | None = None) -> dict[str, Any]:
    values: dict[str, Any] = {"name": "langfuse", "enabled_cluster_log_types": log_types or []}
    if support:
        values["upgrade_policy"] = [{"support_type": support}]
    return _resource("aws_eks_cluster", "this", values, "module.eks")


NODE_MODULE = 'module.eks.module.eks_managed_node_group["default"]'


def _node_group(count: int = 2, capacity: str = "ON_DEMAND") -> dict[str, Any]:
    return _resource("aws_eks_node_group", "this", {"instance_types": ["t3.medium"], "capacity_type": capacity,
                                                     "scaling_config": [{"desired_size": count, "min_size": count,
                                                                         "max_size": count}]}, NODE_MODULE)


def _subnet(public: bool) -> dict[str, Any]:
    return _resource("aws_subnet", "public", {"map_public_ip_on_launch": public}, "module.vpc")


def _db(**overrides: Any) -> dict[str, Any]:
    values = {"engine": "postgres", "instance_class": "db.t4g.micro", "multi_az": False, "allocated_storage": 20,
              "publicly_accessible": True, **overrides}
    return _resource("aws_db_instance", "this", values, "module.rds.module.db_instance")


def _release(values_yaml: str) -> dict[str, Any]:
    return _resource("helm_release", "langfuse", {"name": "langfuse", "chart": "langfuse", "values": [values_yaml]})


def _nodes_estimate(rates: dict[str, Any], *extra: dict[str, Any], **group: Any) -> cost.Estimate:
    return cost.estimate({"01-network": _plan(*extra, modules={NODE_MODULE: [_node_group(**group)]})}, rates)


# --- rate table -----------------------------------------------------------------------------

def test_every_rate_names_its_source_and_a_date(rates):
    """NFR6: each rate in the committed table says where it comes from and when (ISO date)."""
    undated = [k for k, r in rates["rates"].items() if dt.date.fromisoformat(r["as_of"]) > dt.date.today()
               or len(r["source"]) < 10]
    assert undated == []


def test_a_rate_without_a_source_is_refused(tmp_path, rates):
    """NFR6: the table is data with provenance; an entry without a source does not load."""
    broken = {**rates, "rates": {**rates["rates"], "kms_key": {"usd": 1.0, "per": "month", "as_of": "2026-11-23"}}}
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(cost.CostError, match="kms_key"):
        cost.load_rates(path)


def test_chart_defaults_in_the_rate_table_are_the_chart_1_5_19_defaults(rates):
    """NFR6: the PVC sizes and counts assumed for unset values are chart 1.5.19's and its subcharts'."""
    chart = json.loads(CHART_DEFAULTS.read_text())
    merged_ch, merged_redis = chart["clickhouse"], chart["redis"]
    table = rates["assumptions"]["chart_defaults"]["values"]
    found = {
        "clickhouse": (merged_ch["shards"], merged_ch["replicaCount"], merged_ch["persistence"]["size"],
                       merged_ch["zookeeper"]["enabled"], merged_ch["zookeeper"]["replicaCount"]),
        "redis": (merged_redis["architecture"], merged_redis["primary"]["persistence"]["size"],
                  merged_redis["replica"]["replicaCount"], merged_redis["replica"]["persistence"]["size"]),
    }
    assumed = {
        "clickhouse": (table["clickhouse"]["shards"], table["clickhouse"]["replicaCount"],
                       table["clickhouse"]["persistence"]["size"], table["clickhouse"]["zookeeper"]["enabled"],
                       table["clickhouse"]["zookeeper"]["replicaCount"]),
        "redis": (table["redis"]["architecture"], table["redis"]["primary"]["persistence"]["size"],
                  table["redis"]["replica"]["replicaCount"], table["redis"]["replica"]["persistence"]["size"]),
    }
    assert assumed == found


# --- EKS ------------------------------------------------------------------------------------

def test_control_plane_with_standard_upgrade_policy_is_billed_at_the_standard_rate(rates):
    """NFR6, decision 19: support_type STANDARD -> the standard hourly rate for every hour of the month."""
    result = cost.estimate({"01-network": _plan(_cluster("STANDARD"))}, rates)
    expected = _rate(rates, "eks_control_plane_standard") * rates["hours_per_month"]
    assert (result.by_rate("eks_control_plane_standard"), result.by_rate("eks_control_plane_extended")) == (
        pytest.approx(expected), 0)


def test_control_plane_without_upgrade_policy_is_billed_at_the_extended_rate_with_a_note(rates):
    """NFR6, decision 19: an unset policy lets EKS bill extended support, so the plan is priced so and says why."""
    result = cost.estimate({"01-network": _plan(_cluster(None))}, rates)
    assert result.by_rate("eks_control_plane_extended") == pytest.approx(
        _rate(rates, "eks_control_plane_extended") * rates["hours_per_month"])
    assert any("STANDARD" in note for note in result.notes)


def test_log_ingestion_follows_the_enabled_control_plane_log_types(rates):
    """NFR6: fewer control-plane log types cost less: ingestion is the assumed GB of each enabled type."""
    assumed = rates["assumptions"]["eks_log_gb_per_month"]["values"]
    three = cost.estimate({"01-network": _plan(_cluster(log_types=["audit", "api", "authenticator"]))}, rates)
    one = cost.estimate({"01-network": _plan(_cluster(log_types=["api"]))}, rates)
    unit = _rate(rates, "cloudwatch_logs_ingestion")
    assert (three.by_rate("cloudwatch_logs_ingestion"), one.by_rate("cloudwatch_logs_ingestion")) == (
        pytest.approx(unit * (assumed["audit"] + assumed["api"] + assumed["authenticator"])),
        pytest.approx(unit * assumed["api"]))


def test_a_log_type_without_an_assumed_volume_is_refused_naming_it(rates):
    """NFR6: log volume is an explicit assumption; a type the table does not cover is not priced as zero."""
    with pytest.raises(cost.CostError, match="newLogType"):
        cost.estimate({"01-network": _plan(_cluster(log_types=["newLogType"]))}, rates)


# --- nodes ----------------------------------------------------------------------------------

def test_nodes_cost_desired_count_times_the_on_demand_rate(rates):
    """NFR6: node hours = desired_size x hours x the instance type's on-demand rate."""
    result = _nodes_estimate(rates, count=3)
    assert result.by_rate("ec2_on_demand_t3.medium") == pytest.approx(
        3 * rates["hours_per_month"] * _rate(rates, "ec2_on_demand_t3.medium"))


def test_spot_nodes_are_priced_at_the_spot_rate(rates):
    """NFR6: capacity_type SPOT prices the nodes with the table's Spot rate, none on-demand."""
    result = _nodes_estimate(rates, capacity="SPOT")
    assert (result.by_rate("ec2_spot_t3.medium"), result.by_rate("ec2_on_demand_t3.medium")) == (
        pytest.approx(2 * rates["hours_per_month"] * _rate(rates, "ec2_spot_t3.medium")), 0)


def test_node_root_volumes_default_to_the_ami_root_volume(rates):
    """NFR6: without block_device_mappings each node has the AMI's root volume (table assumption)."""
    default = rates["assumptions"]["node_root_volume"]
    result = _nodes_estimate(rates)
    assert result.by_rate(f"ebs_{default['type']}") == pytest.approx(
        2 * default["gib"] * _rate(rates, f"ebs_{default['type']}"))


def test_node_root_volume_comes_from_the_launch_template_when_it_maps_one(rates):
    """NFR6: a launch template mapping a 50 GiB gp3 root volume is what the nodes are priced with."""
    template = _resource("aws_launch_template", "this", {"block_device_mappings": [
        {"device_name": "/dev/xvda", "ebs": [{"volume_size": 50, "volume_type": "gp3"}]}]}, NODE_MODULE)
    plan = _plan(modules={NODE_MODULE: [_node_group(), template]})
    result = cost.estimate({"01-network": plan}, rates)
    assert result.by_rate("ebs_gp3") == pytest.approx(2 * 50 * _rate(rates, "ebs_gp3"))


def test_each_node_in_a_public_subnet_holds_one_public_ipv4(rates):
    """NFR6: public subnets with map_public_ip_on_launch give every node a billed public IPv4."""
    result = _nodes_estimate(rates, _subnet(public=True), count=2)
    assert result.by_rate("public_ipv4") == pytest.approx(2 * rates["hours_per_month"] * _rate(rates, "public_ipv4"))


def test_nodes_in_private_subnets_hold_no_public_ipv4(rates):
    """NFR6: without map_public_ip_on_launch no public IPv4 is counted for the nodes."""
    assert _nodes_estimate(rates, _subnet(public=False)).by_rate("public_ipv4") == 0


# --- RDS, KMS, S3 ---------------------------------------------------------------------------

def test_rds_instance_hours_use_the_class_rate(rates):
    """NFR6: db.t4g.micro single-AZ for every hour of the month."""
    result = cost.estimate({"02-deps": _plan(_db())}, rates)
    assert result.by_rate("rds_postgres_single_az_db.t4g.micro") == pytest.approx(
        rates["hours_per_month"] * _rate(rates, "rds_postgres_single_az_db.t4g.micro"))


def test_rds_storage_without_a_type_is_priced_as_gp2(rates):
    """NFR6: allocated_storage GB at the gp2 rate when the plan leaves storage_type to RDS."""
    result = cost.estimate({"02-deps": _plan(_db(allocated_storage=20))}, rates)
    assert result.by_rate("rds_storage_gp2") == pytest.approx(20 * _rate(rates, "rds_storage_gp2"))


def test_a_publicly_accessible_rds_holds_one_public_ipv4(rates):
    """NFR3, NFR6: the public RDS endpoint is one billed public IPv4; a private one none."""
    public = cost.estimate({"02-deps": _plan(_db(publicly_accessible=True))}, rates).by_rate("public_ipv4")
    private = cost.estimate({"02-deps": _plan(_db(publicly_accessible=False))}, rates).by_rate("public_ipv4")
    assert (public, private) == (pytest.approx(rates["hours_per_month"] * _rate(rates, "public_ipv4")), 0)


def test_rds_log_exports_cost_the_assumed_ingestion_of_each_exported_type(rates):
    """NFR6, issue 26 item 6: the postgresql log RDS exports (connections logged) is priced at the log
    ingestion rate for its assumed volume; an instance that exports nothing costs no ingestion."""
    assumed = rates["assumptions"]["rds_log_gb_per_month"]["values"]["postgresql"]
    exported = cost.estimate({"02-deps": _plan(_db(enabled_cloudwatch_logs_exports=["postgresql"]))}, rates)
    silent = cost.estimate({"02-deps": _plan(_db(enabled_cloudwatch_logs_exports=[]))}, rates)
    assert (exported.by_rate("cloudwatch_logs_ingestion"), silent.by_rate("cloudwatch_logs_ingestion")) == (
        pytest.approx(assumed * _rate(rates, "cloudwatch_logs_ingestion")), 0)


def test_an_rds_log_export_without_an_assumed_volume_is_refused_naming_it(rates):
    """NFR6: an exported RDS log type the rate table has no volume for is not priced as zero."""
    with pytest.raises(cost.CostError, match="upgrade"):
        cost.estimate({"02-deps": _plan(_db(enabled_cloudwatch_logs_exports=["postgresql", "upgrade"]))}, rates)


def test_each_kms_key_costs_one_key_month(rates):
    """NFR6: two keys in the plan, two key-months."""
    keys = [_resource("aws_kms_key", f"k{i}", {}, "module.eks.module.kms") for i in range(2)]
    assert cost.estimate({"01-network": _plan(*keys)}, rates).by_rate("kms_key") == pytest.approx(
        2 * _rate(rates, "kms_key"))


def test_s3_bucket_is_priced_at_the_assumed_stored_volume(rates):
    """NFR6: the bucket costs the assumed GB at the S3 Standard rate."""
    result = cost.estimate({"02-deps": _plan(_resource("aws_s3_bucket", "langfuse", {}))}, rates)
    assert result.by_rate("s3_standard") == pytest.approx(
        rates["assumptions"]["s3_stored_gb"]["value"] * _rate(rates, "s3_standard"))


def test_free_resources_are_counted_but_not_priced(rates):
    """NFR6: a VPC adds nothing to the total and shows up among the no-charge resources."""
    result = cost.estimate({"01-network": _plan(_resource("aws_vpc", "this", {}, "module.vpc"))}, rates)
    assert (result.total, result.free["aws_vpc"]) == (0, 1)


# --- chart volumes --------------------------------------------------------------------------

def test_chart_volumes_follow_our_values_over_the_chart_defaults(rates):
    """FR13, NFR6: one ClickHouse replica without ZooKeeper and one Valkey primary: two 8 GiB volumes."""
    values = "clickhouse:\n  replicaCount: 1\n  zookeeper:\n    enabled: false\nredis:\n  deploy: true\n"
    result = cost.estimate({"03-app": _plan(_release(values))}, rates)
    assert result.by_rate("ebs_gp3") == pytest.approx(2 * 8 * _rate(rates, "ebs_gp3"))


def test_chart_defaults_alone_make_three_clickhouse_and_three_zookeeper_volumes(rates):
    """NFR6: with no sizing values, the chart's defaults (3 + 3 + 1 volumes of 8 GiB) are priced."""
    volumes = cost.chart_volumes({}, rates["assumptions"]["chart_defaults"]["values"])
    assert sorted((what, count) for what, count, _ in volumes) == [
        ("ClickHouse data", 3), ("Valkey primary data", 1), ("ZooKeeper data", 3)]


def test_a_larger_clickhouse_volume_in_the_values_costs_more(rates):
    """NFR6: persistence.size from the values replaces the chart default."""
    values = "clickhouse:\n  replicaCount: 1\n  persistence:\n    size: 20Gi\n  zookeeper:\n    enabled: false\n"
    volumes = cost.chart_volumes(yaml.safe_load(values), rates["assumptions"]["chart_defaults"]["values"])
    assert ("ClickHouse data", 1, 20.0) in volumes


def test_unknown_release_values_are_refused_saying_how_to_plan(rates):
    """NFR6: values the plan does not know (secrets not created yet) are an error, not zero volumes."""
    release = _resource("helm_release", "langfuse", {"name": "langfuse", "chart": "langfuse"})
    with pytest.raises(cost.CostError, match="secrets applied first"):
        cost.estimate({"03-app": _plan(release)}, rates)


@pytest.mark.parametrize("quantity,gib", [("8Gi", 8.0), ("512Mi", 0.5), ("1Ti", 1024.0), (str(2**30), 1.0)])
def test_kubernetes_quantities_are_read_as_gib(quantity, gib):
    """NFR6: PVC sizes in the chart's notation become GiB."""
    assert cost.to_gib(quantity) == pytest.approx(gib)


# --- region, rates, output ------------------------------------------------------------------

def test_a_region_other_than_the_rate_table_region_is_reported(rates):
    """NFR6: a plan for eu-west-1 is priced with us-east-1 rates and the estimate says so."""
    result = cost.estimate({"02-deps": _plan(_db(), region="eu-west-1")}, rates)
    assert any("rates are us-east-1" in note for note in result.notes)


def test_a_resource_without_a_rate_names_the_rate_to_add(rates):
    """NFR6: an instance class the table lacks is an error naming the missing key."""
    with pytest.raises(cost.CostError, match="rds_postgres_single_az_db.r6g.large"):
        cost.estimate({"02-deps": _plan(_db(instance_class="db.r6g.large"))}, rates)


def test_table_shows_every_line_and_the_total(rates):
    """NFR6: the printed table has one row per priced item and the sum as its total."""
    result = cost.estimate({"02-deps": _plan(_db(), _resource("aws_s3_bucket", "langfuse", {}))}, rates)
    text = cost.render("test", result, rates)
    rows = [row for row in text.splitlines() if row.strip().startswith("02-deps")]
    assert (len(rows), text.splitlines()[2 + len(rows)].split()[-1]) == (len(result.lines), f"{result.total:.2f}")


def test_rates_printout_names_each_source_and_date(rates):
    """NFR6: the rate table printed with the cost carries every rate's source and date."""
    text = cost.render_rates(rates)
    missing = [k for k, r in rates["rates"].items() if f"{r['source']} ({r['as_of']})" not in text]
    assert missing == []


def test_cost_command_prints_each_variant_from_saved_plans_then_the_rates(tmp_path, rates, capsys):
    """NFR6, NFR8: `python -m lfharness cost --plan-dir` prices saved plans (hand-made here), one
    table per variant with its total, then the rate table."""
    plans = {"full": [_plan(_db(), _resource("aws_s3_bucket", "langfuse", {}))], "paused": [_plan(_db())]}
    for variant, (deps,) in plans.items():
        for workspace in cost.VARIANTS[variant]:
            folder = tmp_path / variant
            folder.mkdir(exist_ok=True)
            (folder / f"{workspace}.json").write_text(json.dumps(deps if workspace == "02-deps" else _plan()))
    assert commands.cost_command(["full", "paused"], tmp_path) == 0
    out = capsys.readouterr().out
    totals = [row.split()[-1] for row in out.splitlines() if row.strip().startswith("total")]
    expected = [cost.estimate({"02-deps": plans[v][0]}, rates).total for v in ("full", "paused")]
    assert (totals, "Rates used" in out) == ([f"{t:.2f}" for t in expected], True)


def test_cost_command_without_a_saved_plan_exits_2_naming_the_file(tmp_path, caplog):
    """NFR6: a missing plan document is an error naming what is missing, not an empty table."""
    assert commands.cost_command(["paused"], tmp_path) == 2
    assert "01-network.json" in caplog.text
