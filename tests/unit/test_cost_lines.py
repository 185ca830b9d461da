"""The lines an operator reads in `python -m lfharness cost` and `status` (static tier, issue 28).

test_cost.py checks the money per rate; these check what each printed line says: which workspace,
which item (cluster, instance class, Single-AZ or Multi-AZ, volume size and type, where a size
comes from), the quantity and its unit, the notes, the rate printout, and that a workspace's state
is priced like a plan. The stand-in is hand-made `terraform show -json` and tfstate JSON, no
Terraform runs; quantities are computed from the committed rate table (docs/cost.md, NFR6).
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from lfharness.stack import cost

pytestmark = pytest.mark.static

NODE_MODULE = 'module.eks.module.eks_managed_node_group["default"]'


@pytest.fixture(scope="module")
def rates() -> dict[str, Any]:
    return cost.load_rates()


def _hours(rates: dict[str, Any]) -> float:
    return float(rates["hours_per_month"])


def _resource(kind: str, name: str, values: dict[str, Any], module: str = "") -> dict[str, Any]:
    return {"address": f"{module + '.' if module else ''}{kind}.{name}", "mode": "managed", "type": kind,
            "name": name, "values": values}


def _plan(*resources: dict[str, Any], modules: dict[str, list[dict[str, Any]]] | None = None,
          region: str = "us-east-1") -> dict[str, Any]:
    children = [{"address": address, "resources": items} for address, items in (modules or {}).items()]
    return {"variables": {"aws_region": {"value": region}},
            "planned_values": {"root_module": {"resources": list(resources), "child_modules": children}}}


def _rows(result: cost.Estimate) -> list[tuple[str, str, float, str, str]]:
    """What a table row shows of each line: workspace, item, quantity, unit (and the rate it uses)."""
    return [(line.workspace, line.item, round(line.quantity, 6), line.unit, line.rate_key) for line in result.lines]


def _cluster(**values: Any) -> dict[str, Any]:
    return _resource("aws_eks_cluster", "this", {"name": "langfuse", **values}, "module.eks")


def _node_group(**values: Any) -> dict[str, Any]:
    return _resource("aws_eks_node_group", "this", {"instance_types": ["t3.medium"], "capacity_type": "ON_DEMAND",
                                                     "scaling_config": [{"desired_size": 2}], **values}, NODE_MODULE)


def _db(**values: Any) -> dict[str, Any]:
    return _resource("aws_db_instance", "this", {"engine": "postgres", "instance_class": "db.t4g.micro",
                                                  "allocated_storage": 20, **values}, "module.rds")


# --- EKS ------------------------------------------------------------------------------------

def test_control_plane_line_names_the_cluster_and_standard_support(rates):
    """NFR6, decision 19: the row says which cluster and that it is billed at standard support, per hour."""
    result = cost.estimate({"01-network": _plan(_cluster(upgrade_policy=[{"support_type": "STANDARD"}]))}, rates)
    assert _rows(result) == [("01-network", "EKS control plane langfuse (standard support)", _hours(rates), "h",
                              "eks_control_plane_standard")]


def test_control_plane_without_a_name_is_called_cluster(rates):
    """NFR6: a plan that does not know the cluster's name still prints a readable row."""
    values = {"upgrade_policy": [{"support_type": "STANDARD"}]}
    result = cost.estimate({"01-network": _plan(_resource("aws_eks_cluster", "this", values))}, rates)
    assert [row[1] for row in _rows(result)] == ["EKS control plane cluster (standard support)"]


@pytest.mark.parametrize("policy,shown", [(None, "unset"), ([], "unset"), ([{"support_type": "EXTENDED"}], "EXTENDED")])
def test_extended_support_row_and_note_say_the_policy_and_how_to_get_the_standard_rate(rates, policy, shown):
    """NFR6, decision 19: an unset (absent or empty block) or EXTENDED policy is printed as such, and
    the note tells the operator the setting that brings the standard rate back."""
    cluster = _cluster(**({} if policy is None else {"upgrade_policy": policy}))
    result = cost.estimate({"01-network": _plan(cluster)}, rates)
    assert (_rows(result), result.notes) == (
        [("01-network", f"EKS control plane langfuse (upgrade policy {shown}: extended support)", _hours(rates), "h",
          "eks_control_plane_extended")],
        [f"EKS cluster langfuse: upgrade policy is {shown}, priced at the extended-support rate; set "
         "support_type = STANDARD to keep the standard rate"])


def test_control_plane_log_row_lists_the_enabled_types_and_their_assumed_gb(rates):
    """NFR6: the log ingestion row names each enabled type (sorted) and the assumed GB in total."""
    assumed = rates["assumptions"]["eks_log_gb_per_month"]["values"]
    cluster = _cluster(upgrade_policy=[{"support_type": "STANDARD"}], enabled_cluster_log_types=["audit", "api"])
    result = cost.estimate({"01-network": _plan(cluster)}, rates)
    assert _rows(result)[1:] == [("01-network", "EKS control-plane logs (api, audit; assumed volume)",
                                  round(assumed["audit"] + assumed["api"], 6), "GB", "cloudwatch_logs_ingestion")]


def test_unknown_eks_log_type_error_says_where_to_add_its_volume(rates):
    """NFR6: the refusal names the rate table entry to extend."""
    with pytest.raises(cost.CostError, match=r"add them to assumptions\.eks_log_gb_per_month in the rate table$"):
        cost.estimate({"01-network": _plan(_cluster(enabled_cluster_log_types=["newLogType"]))}, rates)


# --- nodes ----------------------------------------------------------------------------------

def test_node_rows_show_count_type_capacity_root_volume_and_public_addresses(rates):
    """NFR6: two on-demand nodes in a public subnet: their instance hours, their AMI-default root
    volumes and one public IPv4 each, every row in the node group's workspace with its unit."""
    default = rates["assumptions"]["node_root_volume"]
    subnet = _resource("aws_subnet", "public", {"map_public_ip_on_launch": True}, "module.vpc")
    result = cost.estimate({"01-network": _plan(subnet, modules={NODE_MODULE: [_node_group()]})}, rates)
    assert _rows(result) == [
        ("01-network", "2 x t3.medium nodes (ON_DEMAND)", 2 * _hours(rates), "instance-h", "ec2_on_demand_t3.medium"),
        ("01-network", f"2 x node root volume {default['gib']:g} GiB {default['type']} (AMI default)",
         2 * default["gib"], "GB-month", f"ebs_{default['type']}"),
        ("01-network", "2 x public IPv4 (nodes in public subnets)", 2 * _hours(rates), "address-h", "public_ipv4")]


def test_nodes_without_a_capacity_type_are_on_demand(rates):
    """NFR6: EKS defaults capacity_type to ON_DEMAND, and the row says so."""
    group = _node_group()
    del group["values"]["capacity_type"]
    result = cost.estimate({"01-network": _plan(modules={NODE_MODULE: [group]})}, rates)
    assert _rows(result)[0][1:] == ("2 x t3.medium nodes (ON_DEMAND)", 2 * _hours(rates), "instance-h",
                                    "ec2_on_demand_t3.medium")


def test_a_node_group_scaled_to_zero_costs_nothing(rates):
    """NFR6: desired_size 0 (or unknown) means no instance hours and no root volumes."""
    group = _node_group(scaling_config=[{"desired_size": 0}])
    result = cost.estimate({"01-network": _plan(modules={NODE_MODULE: [group]})}, rates)
    assert result.total == 0


def test_a_node_group_without_instance_types_is_refused_naming_it(rates):
    """NFR6: the refusal names the node group's address, so the operator knows what to fix."""
    with pytest.raises(cost.CostError, match=r"eks_managed_node_group\[\"default\"\]\.aws_eks_node_group\.this"):
        cost.estimate({"01-network": _plan(modules={NODE_MODULE: [_node_group(instance_types=[])]})}, rates)


def test_launch_template_root_volume_row_says_where_the_size_comes_from(rates):
    """NFR6: a launch template's 50 GiB volume without a type is gp2 (EC2's default), and the row
    names the launch template as its origin."""
    template = _resource("aws_launch_template", "this", {"block_device_mappings": [
        {"device_name": "/dev/xvda", "ebs": [{"volume_size": 50}]}]}, NODE_MODULE)
    result = cost.estimate({"01-network": _plan(modules={NODE_MODULE: [_node_group(), template]})}, rates)
    assert _rows(result)[1] == ("01-network", "2 x node root volume 50 GiB gp2 (launch template)", 100, "GB-month",
                                "ebs_gp2")


def test_a_launch_template_of_another_module_does_not_size_these_nodes(rates):
    """NFR6: only the node group's own launch template counts; another module's template (another
    node group's) leaves these nodes on the AMI default."""
    other = 'module.eks.module.eks_managed_node_group["other"]'
    template = _resource("aws_launch_template", "this", {"block_device_mappings": [
        {"device_name": "/dev/xvda", "ebs": [{"volume_size": 50, "volume_type": "gp3"}]}]}, other)
    result = cost.estimate({"01-network": _plan(modules={NODE_MODULE: [_node_group()], other: [template]})}, rates)
    assert _rows(result)[1][1].endswith("(AMI default)")


# --- RDS ------------------------------------------------------------------------------------

def test_single_az_rds_rows(rates):
    """NFR6: a Single-AZ instance: one instance for every hour, its storage, no public address."""
    result = cost.estimate({"02-deps": _plan(_db(publicly_accessible=False))}, rates)
    assert _rows(result) == [
        ("02-deps", "RDS postgres db.t4g.micro (Single-AZ)", _hours(rates), "instance-h",
         "rds_postgres_single_az_db.t4g.micro"),
        ("02-deps", "RDS storage 20 GB gp2", 20, "GB-month", "rds_storage_gp2")]


def test_multi_az_rds_bills_a_standby_instance_and_its_storage(rates):
    """NFR6: Multi-AZ runs a standby: twice the instance hours and twice the storage, and the row says Multi-AZ."""
    result = cost.estimate({"02-deps": _plan(_db(multi_az=True, storage_type="gp3"))}, rates)
    assert _rows(result) == [
        ("02-deps", "RDS postgres db.t4g.micro (Multi-AZ)", 2 * _hours(rates), "instance-h",
         "rds_postgres_single_az_db.t4g.micro"),
        ("02-deps", "RDS storage 20 GB gp3", 40, "GB-month", "rds_storage_gp3")]


def test_rds_without_an_engine_is_postgres_and_without_storage_has_none(rates):
    """NFR6: the rds module's engine default is postgres; an unknown allocated_storage adds no GB."""
    db = _db()
    del db["values"]["engine"], db["values"]["allocated_storage"]
    result = cost.estimate({"02-deps": _plan(db)}, rates)
    assert [row[1:3] for row in _rows(result)] == [("RDS postgres db.t4g.micro (Single-AZ)", _hours(rates)),
                                                   ("RDS storage 0 GB gp2", 0)]


def test_public_rds_and_its_exported_log_have_their_own_rows(rates):
    """NFR3, NFR6: the public endpoint's IPv4 and the exported postgresql log are rows of their own."""
    assumed = rates["assumptions"]["rds_log_gb_per_month"]["values"]["postgresql"]
    db = _db(publicly_accessible=True, enabled_cloudwatch_logs_exports=["postgresql"])
    result = cost.estimate({"02-deps": _plan(db)}, rates)
    assert _rows(result)[2:] == [
        ("02-deps", "public IPv4 (publicly accessible RDS)", _hours(rates), "address-h", "public_ipv4"),
        ("02-deps", "RDS logs exported to CloudWatch (postgresql; assumed volume)", assumed, "GB",
         "cloudwatch_logs_ingestion")]


def test_the_rds_engine_of_the_plan_picks_the_rate(rates):
    """NFR6: a mysql instance needs the mysql rate; the refusal names the key to add."""
    with pytest.raises(cost.CostError, match="rds_mysql_single_az_db.t4g.micro"):
        cost.estimate({"02-deps": _plan(_db(engine="mysql"))}, rates)


def test_rds_log_row_lists_every_exported_type(rates):
    """NFR6: two exported log types are both named on the row (sorted) with their assumed GB together."""
    logs = rates["assumptions"]["rds_log_gb_per_month"]
    table = {**rates, "assumptions": {**rates["assumptions"], "rds_log_gb_per_month": {
        **logs, "values": {**logs["values"], "upgrade": 0.25}}}}
    db = _db(publicly_accessible=False, enabled_cloudwatch_logs_exports=["upgrade", "postgresql"])
    row = _rows(cost.estimate({"02-deps": _plan(db)}, table))[-1]
    assert row[1:3] == ("RDS logs exported to CloudWatch (postgresql, upgrade; assumed volume)",
                        logs["values"]["postgresql"] + 0.25)


def test_unknown_rds_log_export_error_says_where_to_add_its_volume(rates):
    """NFR6: the refusal names the rate table entry to extend."""
    with pytest.raises(cost.CostError, match=r"add them to assumptions\.rds_log_gb_per_month in the rate table$"):
        cost.estimate({"02-deps": _plan(_db(enabled_cloudwatch_logs_exports=["upgrade"]))}, rates)


# --- KMS, S3, EBS, chart --------------------------------------------------------------------

def test_kms_and_s3_rows(rates):
    """NFR6: a KMS key row names the key's address; the S3 row the assumed stored GB."""
    stored = rates["assumptions"]["s3_stored_gb"]["value"]
    result = cost.estimate({"02-deps": _plan(_resource("aws_kms_key", "k", {}, "module.kms"),
                                             _resource("aws_s3_bucket", "langfuse", {}))}, rates)
    assert _rows(result) == [("02-deps", "KMS key (module.kms.aws_kms_key.k)", 1, "key-month", "kms_key"),
                             ("02-deps", f"S3 bucket, {stored:g} GB stored (assumed)", stored, "GB-month",
                              "s3_standard")]


def test_clickhouse_ebs_volume_row_names_the_volume_its_size_and_type(rates):
    """NFR6, FR13: 02-deps' ClickHouse volume is priced by its Name tag, size and type (kept while paused)."""
    volume = _resource("aws_ebs_volume", "clickhouse", {"size": 30, "type": "gp3",
                                                        "tags": {"Name": "langfuse-clickhouse"}})
    result = cost.estimate({"02-deps": _plan(volume)}, rates)
    assert (_rows(result), result.total) == (
        [("02-deps", "EBS volume langfuse-clickhouse 30 GiB gp3", 30, "GB-month", "ebs_gp3")],
        pytest.approx(30 * rates["rates"]["ebs_gp3"]["usd"]))


def test_an_ebs_volume_without_tags_or_type_is_named_by_address_and_gp2(rates):
    """NFR6: no Name tag -> the address names the volume; no type -> EBS's gp2 default; no known size -> 0 GiB."""
    result = cost.estimate({"02-deps": _plan(_resource("aws_ebs_volume", "data", {}))}, rates)
    assert _rows(result) == [("02-deps", "EBS volume aws_ebs_volume.data 0 GiB gp2", 0, "GB-month", "ebs_gp2")]


def test_chart_pvc_rows_show_count_size_and_type(rates):
    """FR13, NFR6: each chart volume is a row in 03-app: count x what, GiB each, the StorageClass's type."""
    values = "clickhouse:\n  deploy: false\nredis:\n  deploy: true\n"
    release = _resource("helm_release", "langfuse", {"name": "langfuse", "chart": "langfuse", "values": [values]})
    volume_type = rates["assumptions"]["pvc_volume_type"]["value"]
    result = cost.estimate({"03-app": _plan(release)}, rates)
    assert _rows(result) == [("03-app", f"1 x Valkey primary data PVC 8 GiB {volume_type}", 8, "GB-month",
                              f"ebs_{volume_type}")]


def test_unknown_release_values_error_names_the_release_and_the_remedy(rates):
    """NFR6: the refusal names the helm_release and ends with how to plan it."""
    release = _resource("helm_release", "langfuse", {"name": "langfuse", "chart": "langfuse"})
    with pytest.raises(cost.CostError, match=r"^helm_release langfuse: .*applied first, as the plan tier does$"):
        cost.estimate({"03-app": _plan(release)}, rates)


def test_a_chart_not_deployed_makes_no_volume(rates):
    """FR13, NFR6: deploy false for ClickHouse and Valkey: neither they nor ZooKeeper get a PVC."""
    values = {"clickhouse": {"deploy": False}, "redis": {"deploy": False}}
    assert cost.chart_volumes(values, rates["assumptions"]["chart_defaults"]["values"]) == []


def test_clickhouse_on_an_existing_claim_gets_no_chart_volume(rates):
    """FR13, NFR6: with persistence.existingClaim the chart makes no volume (02-deps' EBS volume is priced instead)."""
    values = {"clickhouse": {"persistence": {"existingClaim": "clickhouse-data"}, "zookeeper": {"enabled": False}},
              "redis": {"deploy": False}}
    assert cost.chart_volumes(values, rates["assumptions"]["chart_defaults"]["values"]) == []


@pytest.mark.parametrize("values", [
    {},
    {"clickhouse": {"deploy": True}, "redis": {"deploy": True, "architecture": "replication"}},
    {"clickhouse": {"deploy": True, "zookeeper": {"enabled": True}},
     "redis": {"deploy": True, "architecture": "replication", "primary": {}, "replica": {}}},
], ids=["no sections", "no subsections", "no persistence"])
def test_sections_without_persistence_make_no_volume(values):
    """NFR6: values that leave out a section or its persistence (a chart default we do not know) make
    no volume rather than failing."""
    assert cost.chart_volumes(values, {}) == []


def test_replica_counts_left_unset_are_one():
    """NFR6: a StatefulSet without replicas runs one pod, so one volume each."""
    on = {"enabled": True, "size": "1Gi"}
    values = {"clickhouse": {"deploy": True, "persistence": on, "zookeeper": {"enabled": True, "persistence": on}},
              "redis": {"deploy": True, "architecture": "replication", "primary": {"persistence": on},
                        "replica": {"persistence": on}}}
    assert [count for _, count, _ in cost.chart_volumes(values, {})] == [1, 1, 1, 1]


def test_volume_counts_follow_shards_times_replicas_and_the_primary_replicas():
    """FR13, NFR6: ClickHouse has one volume per shard and replica; Valkey one per primary replica."""
    on = {"enabled": True, "size": "1Gi"}
    values = {"clickhouse": {"deploy": True, "shards": 2, "replicaCount": 3, "persistence": on},
              "redis": {"deploy": True, "primary": {"replicaCount": 2, "persistence": on}}}
    assert [(what, count) for what, count, _ in cost.chart_volumes(values, {})] == [
        ("ClickHouse data", 6), ("Valkey primary data", 2)]


def test_valkey_replication_adds_its_replica_volumes(rates):
    """FR13, NFR6: architecture replication adds the replicas' volumes (their own size); standalone does not."""
    defaults = rates["assumptions"]["chart_defaults"]["values"]
    replica = defaults["redis"]["replica"]["replicaCount"]
    values = {"clickhouse": {"deploy": False},
              "redis": {"architecture": "replication", "replica": {"persistence": {"size": "16Gi"}}}}
    standalone = {"clickhouse": {"deploy": False}, "redis": {"replica": {"persistence": {"size": "16Gi"}}}}
    assert (cost.chart_volumes(values, defaults)[1:], cost.chart_volumes(standalone, defaults)[1:]) == (
        [("Valkey replica data", replica, 16.0)], [])


def test_valkey_replicas_without_persistence_get_no_volume(rates):
    """NFR6: replication with replica persistence disabled adds no replica volume."""
    values = {"clickhouse": {"deploy": False},
              "redis": {"architecture": "replication", "replica": {"persistence": {"enabled": False}}}}
    names = [what for what, _, _ in cost.chart_volumes(values, rates["assumptions"]["chart_defaults"]["values"])]
    assert names == ["Valkey primary data"]


def test_an_unreadable_volume_size_is_refused_quoting_it():
    """NFR6: a size that is no Kubernetes quantity is an error that shows the value read."""
    with pytest.raises(cost.CostError, match="'eight'"):
        cost.to_gib("eight")


def test_a_rate_with_an_empty_source_is_refused(tmp_path, rates):
    """NFR6: an empty source counts as none: the entry does not load."""
    broken = {**rates, "rates": {**rates["rates"], "kms_key": {**rates["rates"]["kms_key"], "source": ""}}}
    path = tmp_path / "rates.json"
    path.write_text(json.dumps(broken))
    with pytest.raises(cost.CostError, match="kms_key"):
        cost.load_rates(path)


# --- several workspaces, free resources, region ---------------------------------------------

def test_each_workspace_adds_its_lines_to_those_before_it(rates):
    """NFR6: the estimate of three workspaces is their lines one after the other, each in its workspace."""
    release = _resource("helm_release", "langfuse", {"name": "langfuse", "chart": "langfuse",
                                                     "values": ["clickhouse:\n  deploy: false\n"]})
    kms = _resource("aws_kms_key", "k", {})
    parts = {"01-network": [_plan(_cluster()), _plan(modules={NODE_MODULE: [_node_group()]})],
             "02-deps": [_plan(_db())], "03-app": [_plan(release)]}
    plans = {"01-network": _plan(kms, _cluster(), modules={NODE_MODULE: [_node_group()]}),
             "02-deps": _plan(kms, _db()), "03-app": _plan(kms, release)}
    # Each part priced on its own (one resource kind a plan), so the expected rows do not depend on
    # how the estimate adds one resource's lines to the others'.
    expected = [row for ws, alone in parts.items()
                for row in [(ws, "KMS key (aws_kms_key.k)", 1, "key-month", "kms_key")]
                + [r for plan in alone for r in _rows(cost.estimate({ws: plan}, rates))]]
    assert _rows(cost.estimate(plans, rates)) == expected


def test_free_resources_are_counted_per_kind(rates):
    """NFR6: three subnets show as 3 aws_subnet among the no-charge resources."""
    subnets = [_resource("aws_subnet", f"s{i}", {}, "module.vpc") for i in range(3)]
    assert cost.estimate({"01-network": _plan(*subnets)}, rates).free == {"aws_subnet": 3}


@pytest.mark.parametrize("plan", [{}, {"variables": {}, "planned_values": {"root_module": {}}}],
                         ids=["no planned values", "empty root module"])
def test_a_plan_that_leaves_nothing_costs_nothing(rates, plan):
    """NFR6: a workspace whose plan leaves no resource (paused, destroyed) prices to zero without a note."""
    result = cost.estimate({"03-app": plan}, rates)
    assert (result.lines, result.notes, result.total) == ([], [], 0)


def test_resources_shown_without_values_are_priced_as_having_none(rates):
    """NFR6: `terraform show -json` leaves out an empty or null `values` map; a KMS key, a subnet and
    a launch template shown so are priced as resources with no attribute set (one key-month, no
    public IPv4, the AMI's root volume), not refused."""
    bare = [{key: value for key, value in resource.items() if key != "values"} for resource in (
        _resource("aws_kms_key", "k", {}), _resource("aws_subnet", "public", {}, "module.vpc"),
        _resource("aws_launch_template", "this", {}, NODE_MODULE))]
    result = cost.estimate({"01-network": _plan(bare[0], bare[1], modules={NODE_MODULE: [_node_group(), bare[2]]})},
                           rates)
    assert [row[1] for row in _rows(result)] == [
        "KMS key (aws_kms_key.k)", "2 x t3.medium nodes (ON_DEMAND)",
        f"2 x node root volume {rates['assumptions']['node_root_volume']['gib']:g} GiB "
        f"{rates['assumptions']['node_root_volume']['type']} (AMI default)"]


def test_a_plan_for_the_rate_table_region_has_no_region_note(rates):
    """NFR6: only a plan for another region is reported; one for the table's region is not."""
    result = cost.estimate({"02-deps": _plan(_db(), region=rates["region"])}, rates)
    assert result.notes == []


# --- state priced like a plan ---------------------------------------------------------------

def test_a_state_is_read_as_the_plan_that_would_create_it(rates):
    """NFR6, NFR8 (`status` prices what the workspaces hold): every managed instance of a tfstate
    becomes a plan resource with its full address (module, count or for_each key), type, name and
    attributes; data sources are left out."""
    state = {"version": 4, "resources": [
        {"mode": "managed", "type": "aws_kms_key", "name": "k", "module": "module.kms",
         "instances": [{"index_key": 0, "attributes": {"id": "a"}}, {"index_key": 1, "attributes": {"id": "b"}}]},
        {"mode": "data", "type": "aws_caller_identity", "name": "me", "instances": [{"attributes": {}}]},
        {"mode": "managed", "type": "aws_s3_bucket", "name": "langfuse", "instances": [{"attributes": {"id": "c"}}]},
        {"mode": "managed", "type": "aws_subnet", "name": "public", "module": 'module.vpc["x"]',
         "instances": [{"index_key": "a", "attributes": {"id": "d"}}, {"index_key": "b"}]},
    ]}
    expected = [
        {"address": "module.kms.aws_kms_key.k[0]", "mode": "managed", "type": "aws_kms_key", "name": "k",
         "values": {"id": "a"}},
        {"address": "module.kms.aws_kms_key.k[1]", "mode": "managed", "type": "aws_kms_key", "name": "k",
         "values": {"id": "b"}},
        {"address": "aws_s3_bucket.langfuse", "mode": "managed", "type": "aws_s3_bucket", "name": "langfuse",
         "values": {"id": "c"}},
        {"address": 'module.vpc["x"].aws_subnet.public["a"]', "mode": "managed", "type": "aws_subnet",
         "name": "public", "values": {"id": "d"}},
        {"address": 'module.vpc["x"].aws_subnet.public["b"]', "mode": "managed", "type": "aws_subnet",
         "name": "public", "values": {}},
    ]
    assert cost.state_as_plan(state) == {"planned_values": {"root_module": {"resources": expected}}}


def test_an_empty_state_holds_nothing_to_price(rates):
    """NFR6: a workspace without resources (or without instances) prices to zero."""
    state = {"version": 4, "resources": [{"mode": "managed", "type": "aws_kms_key", "name": "k"}]}
    assert (cost.state_as_plan({}), cost.state_as_plan(state)) == (
        {"planned_values": {"root_module": {"resources": []}}},) * 2


# --- printed table and rate table -----------------------------------------------------------

def test_table_header_names_the_columns(rates):
    """NFR6: the table's header row names workspace, item, quantity, rate and USD/month."""
    header = cost.render("t", cost.Estimate(), rates).splitlines()[1]
    assert header.split() == ["workspace", "item", "quantity", "rate", "USD/month"]


def test_total_row_shows_only_the_word_total_and_the_sum(rates):
    """NFR6: the total row holds nothing but its label and the monthly total."""
    result = cost.estimate({"02-deps": _plan(_db())}, rates)
    total = [row for row in cost.render("t", result, rates).splitlines() if row.strip().startswith("total")]
    assert [row.split() for row in total] == [["total", f"{result.total:.2f}"]]


def test_free_resources_are_listed_by_kind_wrapped_to_the_table_width(rates):
    """NFR6: the no-charge resources are listed as "<n> <kind>" in kind order, wrapped at 118
    columns with continuation rows indented under the first."""
    # Twelve kinds and one long name: a row of exactly 119 columns would fit were the width 119.
    free = {**{f"aws_kind_{i:02d}": 1 for i in range(12)}, "aws_" + "x" * 21: 2}
    rows = cost.render("t", cost.Estimate(free=free), rates).splitlines()[3:]
    text = " ".join(row.strip() for row in rows)
    assert (text == "no charge of their own: " + ", ".join(f"{n} {k}" for k, n in sorted(free.items())),
            rows[0].startswith("  no charge"), all(row.startswith("    ") for row in rows[1:]),
            max(map(len, rows)) <= 118, len(rows[0]) > 100) == (True, True, True, True, True)


def _small_rates() -> dict[str, Any]:
    return {"region": "r", "recorded": "2026-01-01", "provenance": "p", "hours_per_month": 730,
            "rates": {"a_rate": {"usd": 1, "per": "hour", "source": "page A", "as_of": "2026-01-02",
                                 "note": "moves"},
                      "b_rate": {"usd": 2, "per": "GB", "source": "page B", "as_of": "2026-01-03"}},
            "assumptions": {"x": {"zeta": 2, "value": 1, "why": "measured"}, "y": {"value": 3, "source": "chart"},
                            "z": {"value": 4}},
            "not_counted": ["transfer"]}


def test_rates_printout_shows_a_rate_note_only_where_there_is_one():
    """NFR6: a rate's note follows its source and date on its row; a rate without one ends at its date."""
    rows = cost.render_rates(_small_rates()).splitlines()
    a_row, b_row = (next(row for row in rows if row.strip().startswith(key)) for key in ("a_rate", "b_rate"))
    assert (a_row.endswith("page A (2026-01-02) - moves"), b_row.endswith("page B (2026-01-03)")) == (True, True)


def test_rates_printout_shows_each_assumption_with_its_reason_or_source():
    """NFR6: each assumption's values (keys sorted) then why it holds, or its source when no reason is given."""
    rows = cost.render_rates(_small_rates()).splitlines()
    start = rows.index("Assumptions:")
    assert rows[start:start + 3] == ["Assumptions:", '  x: {"value": 1, "zeta": 2} - measured',
                                     '  y: {"value": 3} - chart']


def test_an_assumption_without_reason_or_source_shows_none_made_up():
    """NFR6: an assumption with neither why nor source shows its values and no invented text."""
    rows = cost.render_rates(_small_rates()).splitlines()
    z_row = next(row for row in rows if row.startswith("  z: "))
    assert z_row.rstrip(" -") == '  z: {"value": 4}'


def test_rates_printout_ends_with_what_is_not_counted():
    """NFR6: the printout ends with the "Not counted:" list, one item a row."""
    assert cost.render_rates(_small_rates()).splitlines()[-2:] == ["Not counted:", "  transfer"]


def test_rates_printout_without_a_not_counted_list_ends_with_its_heading():
    """NFR6: a table without not_counted prints the heading and nothing under it."""
    rates = _small_rates()
    del rates["not_counted"]
    assert cost.render_rates(rates).splitlines()[-1] == "Not counted:"
