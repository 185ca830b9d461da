"""Monthly cost read from the plans (NFR6, NFR8): what the three workspaces' plans create, priced
with the committed rate table (lfharness/data/rates-us-east-1.json).

The pricing is pure functions over `terraform show -json` documents (dicts) and the rate table, so
the same code prices hand-made plans in tests, the plan tier's offline plans and an operator's
plans. Rates and assumptions are data: a price change is an edit of the JSON file, never of code.
`python -m lfharness cost` (lfharness/commands.py) prices saved plans, or plans the workspaces
offline with the plan tier's Workbench (lfharness/testing/cli.py) for the full, Spot and paused
stacks, and prints one table each.
"""

from __future__ import annotations

import json
import logging
import re
import textwrap
from collections import Counter
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from lfharness.stack.workspaces import CLUSTER_WORKSPACE, ORDER

LOG = logging.getLogger("lfharness.stack.cost")

RATES_FILE = Path(__file__).resolve().parents[1] / "data" / "rates-us-east-1.json"

# Plan variants the cost command prices: the variables each workspace is planned with.
VARIANTS: dict[str, dict[str, dict[str, str]]] = {
    "full": {ws: {} for ws in ORDER},
    "spot": {ws: {"node_capacity_type": "SPOT"} if ws == CLUSTER_WORKSPACE else {} for ws in ORDER},
    "paused": {ws: {"cluster_enabled": "false"} for ws in ORDER},
}

_QUANTITY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(Ki|Mi|Gi|Ti|K|M|G|T)?\s*$")
_TO_GIB = {None: 1 / 2**30, "Ki": 1 / 2**20, "Mi": 1 / 2**10, "Gi": 1.0, "Ti": 2.0**10,
           "K": 1e3 / 2**30, "M": 1e6 / 2**30, "G": 1e9 / 2**30, "T": 1e12 / 2**30}


class CostError(ValueError):
    """A plan holds something the rate table cannot price; says what to add or change."""


class PlansUnavailable(RuntimeError):
    """The plans to price cannot be had here; says how to get them."""


@dataclass(frozen=True)
class Line:
    """One priced item: quantity x the rate under `rate_key` in the rate table."""

    workspace: str
    item: str
    quantity: float
    unit: str
    rate_key: str
    rate: float

    @property
    def monthly(self) -> float:
        return self.quantity * self.rate


@dataclass
class Estimate:
    """The priced lines of one stack variant, with what the reader must know about them."""

    lines: list[Line] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    free: Counter[str] = field(default_factory=Counter)

    @property
    def total(self) -> float:
        return sum(line.monthly for line in self.lines)

    def by_rate(self, rate_key: str) -> float:
        """Monthly USD of every line priced with one rate (tests and README look at single items)."""
        return sum(line.monthly for line in self.lines if line.rate_key == rate_key)


# --- rate table -----------------------------------------------------------------------------

def load_rates(path: Path = RATES_FILE) -> dict[str, Any]:
    """The rate table; CostError when an entry lacks its price, unit, source or date."""
    table = json.loads(Path(path).read_text())
    incomplete = [key for key, rate in table["rates"].items()
                  if not all(rate.get(k) not in (None, "") for k in ("usd", "per", "source", "as_of"))]
    if incomplete:
        raise CostError(f"{path}: rates {incomplete} lack one of usd, per, source, as_of")
    return table


def _rate(rates: Mapping[str, Any], key: str) -> float:
    try:
        return float(rates["rates"][key]["usd"])
    except KeyError:
        raise CostError(f"the plan needs rate '{key}', which the rate table lacks: add it to "
                        f"{RATES_FILE.name} with usd, per, source and as_of") from None


def _hours(rates: Mapping[str, Any]) -> float:
    return float(rates["hours_per_month"])


# --- reading plans --------------------------------------------------------------------------

def _modules(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield module
    for child in module.get("child_modules", []):
        yield from _modules(child)


def resources(plan: Mapping[str, Any]) -> list[dict[str, Any]]:
    """Managed resources the plan leaves in place: planned_values, all modules (known values only)."""
    root = plan.get("planned_values", {}).get("root_module", {})
    return [r for m in _modules(root) for r in m.get("resources", []) if r.get("mode") == "managed"]


def region(plan: Mapping[str, Any]) -> str | None:
    """The aws_region variable the plan was made with, if it has one."""
    return plan.get("variables", {}).get("aws_region", {}).get("value")


def _module_of(address: str) -> str:
    """`module.a.module.b["x"].aws_thing.name[0]` -> `module.a.module.b["x"]` (root: "")."""
    parts = re.findall(r'module\.[^.\[]+(?:\["[^"]*"\]|\[\d+\])?', address)
    return ".".join(parts)


def _first(value: Any) -> Any:
    # Nested blocks come as lists of one object in plan JSON.
    return value[0] if isinstance(value, list) and value else (value if isinstance(value, dict) else {})


def to_gib(quantity: str | int | float) -> float:
    """A Kubernetes quantity ("8Gi", "500Mi", "10G") as GiB; a bare number counts as bytes."""
    match = _QUANTITY.match(str(quantity))
    if not match:
        raise CostError(f"cannot read {quantity!r} as a volume size (expected e.g. 8Gi)")
    return float(match.group(1)) * _TO_GIB[match.group(2)]


def _merge(base: Mapping[str, Any], override: Mapping[str, Any]) -> dict[str, Any]:
    """Helm's value merge: maps merge key by key, anything else replaces."""
    merged = dict(base)
    for key, value in override.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, Mapping) and isinstance(
            merged.get(key), Mapping) else value
    return merged


def chart_values(release: Mapping[str, Any]) -> dict[str, Any]:
    """A helm_release's `values` documents merged in order; CostError if the plan does not know them."""
    documents = release.get("values")
    if documents is None:
        raise CostError(f"helm_release {release.get('name')}: its values are unknown in this plan (built from "
                        "secrets not created yet); plan with the secrets applied first, as the plan tier does")
    merged: dict[str, Any] = {}
    for document in documents:
        merged = _merge(merged, yaml.safe_load(document) or {})
    return merged


def state_as_plan(state: Mapping[str, Any]) -> dict[str, Any]:
    """A raw state (terraform.tfstate, format 4) in the shape estimate() reads from plans: every
    managed resource instance under planned_values, with its full address and its attributes.
    So what a workspace holds now is priced by the same code as what a plan would create."""
    priced = []
    for resource in state.get("resources", []):
        if resource.get("mode") != "managed":
            continue
        prefix = f"{resource['module']}." if resource.get("module") else ""
        for instance in resource.get("instances", []):
            key = instance.get("index_key")
            index = "" if key is None else (f"[{key}]" if isinstance(key, int) else f'["{key}"]')
            priced.append({"address": f"{prefix}{resource['type']}.{resource['name']}{index}", "mode": "managed",
                           "type": resource["type"], "name": resource["name"],
                           "values": instance.get("attributes", {})})
    return {"planned_values": {"root_module": {"resources": priced}}}


# --- pricing --------------------------------------------------------------------------------

def _eks_lines(workspace: str, cluster: Mapping[str, Any], rates: Mapping[str, Any],
               notes: list[str]) -> list[Line]:
    support = _first(cluster.get("upgrade_policy")).get("support_type")
    name = cluster.get("name", "cluster")
    if support == "STANDARD":
        key, label = "eks_control_plane_standard", "standard support"
    else:
        # Unset means EXTENDED for clusters made through the API: billed at the extended rate once
        # the version leaves standard support, so that is the rate this plan commits to.
        key, label = "eks_control_plane_extended", f"upgrade policy {support or 'unset'}: extended support"
        notes.append(f"EKS cluster {name}: upgrade policy is {support or 'unset'}, priced at the extended-support "
                     "rate; set support_type = STANDARD to keep the standard rate")
    lines = [Line(workspace, f"EKS control plane {name} ({label})", _hours(rates), "h", key, _rate(rates, key))]
    assumed = rates["assumptions"]["eks_log_gb_per_month"]["values"]
    log_types = cluster.get("enabled_cluster_log_types") or []
    unknown = [t for t in log_types if t not in assumed]
    if unknown:
        raise CostError(f"no assumed log volume for EKS log types {unknown}: add them to "
                        "assumptions.eks_log_gb_per_month in the rate table")
    if log_types:
        gb = sum(float(assumed[t]) for t in log_types)
        lines.append(Line(workspace, f"EKS control-plane logs ({', '.join(sorted(log_types))}; assumed volume)",
                          gb, "GB", "cloudwatch_logs_ingestion", _rate(rates, "cloudwatch_logs_ingestion")))
    return lines


def _root_volume(group_address: str, everything: list[dict[str, Any]],
                 rates: Mapping[str, Any]) -> tuple[float, str, str]:
    """(GiB, volume type, where from) of a node's root volume: the node group's launch template
    when it maps one, else the AMI default from the assumptions."""
    module = _module_of(group_address)
    for resource in everything:
        if resource["type"] == "aws_launch_template" and _module_of(resource["address"]) == module:
            for mapping in resource.get("values", {}).get("block_device_mappings") or []:
                ebs = _first(mapping.get("ebs"))
                if ebs.get("volume_size"):
                    return float(ebs["volume_size"]), ebs.get("volume_type") or "gp2", "launch template"
    default = rates["assumptions"]["node_root_volume"]
    return float(default["gib"]), default["type"], "AMI default"


def _node_lines(workspace: str, group: Mapping[str, Any], address: str, everything: list[dict[str, Any]],
                rates: Mapping[str, Any]) -> list[Line]:
    values = group["values"]
    count = int(_first(values.get("scaling_config")).get("desired_size") or 0)
    types = values.get("instance_types") or []
    if not types:
        raise CostError(f"{address}: no instance_types in the plan, cannot price the nodes")
    capacity = values.get("capacity_type") or "ON_DEMAND"
    key = f"ec2_{'spot' if capacity == 'SPOT' else 'on_demand'}_{types[0]}"
    hours = _hours(rates)
    lines = [Line(workspace, f"{count} x {types[0]} nodes ({capacity})", count * hours, "instance-h", key,
                  _rate(rates, key))]
    gib, volume_type, origin = _root_volume(address, everything, rates)
    lines.append(Line(workspace, f"{count} x node root volume {gib:g} GiB {volume_type} ({origin})", count * gib,
                      "GB-month", f"ebs_{volume_type}", _rate(rates, f"ebs_{volume_type}")))
    # Nodes in subnets that map public IPs on launch each hold one public IPv4 address.
    public = any(r["type"] == "aws_subnet" and r.get("values", {}).get("map_public_ip_on_launch")
                 for r in everything)
    if public and count:
        lines.append(Line(workspace, f"{count} x public IPv4 (nodes in public subnets)", count * hours, "address-h",
                          "public_ipv4", _rate(rates, "public_ipv4")))
    return lines


def _rds_lines(workspace: str, db: Mapping[str, Any], rates: Mapping[str, Any]) -> list[Line]:
    instance_class = db.get("instance_class")
    engine = db.get("engine") or "postgres"
    multi_az = bool(db.get("multi_az"))
    key = f"rds_{engine}_single_az_{instance_class}"
    hours = _hours(rates) * (2 if multi_az else 1)  # Multi-AZ runs and bills a standby instance
    lines = [Line(workspace, f"RDS {engine} {instance_class} ({'Multi-AZ' if multi_az else 'Single-AZ'})", hours,
                  "instance-h", key, _rate(rates, key))]
    storage_type = db.get("storage_type") or rates["assumptions"]["rds_storage_type_when_unset"]["value"]
    gb = float(db.get("allocated_storage") or 0)
    lines.append(Line(workspace, f"RDS storage {gb:g} GB {storage_type}", gb * (2 if multi_az else 1), "GB-month",
                      f"rds_storage_{storage_type}", _rate(rates, f"rds_storage_{storage_type}")))
    if db.get("publicly_accessible"):
        lines.append(Line(workspace, "public IPv4 (publicly accessible RDS)", _hours(rates), "address-h",
                          "public_ipv4", _rate(rates, "public_ipv4")))
    exports = db.get("enabled_cloudwatch_logs_exports") or []
    if exports:
        assumed = rates["assumptions"]["rds_log_gb_per_month"]["values"]
        unknown = [t for t in exports if t not in assumed]
        if unknown:
            raise CostError(f"no assumed log volume for RDS log exports {unknown}: add them to "
                            "assumptions.rds_log_gb_per_month in the rate table")
        gb = sum(float(assumed[t]) for t in exports)
        lines.append(Line(workspace, f"RDS logs exported to CloudWatch ({', '.join(sorted(exports))}; assumed volume)",
                          gb, "GB", "cloudwatch_logs_ingestion", _rate(rates, "cloudwatch_logs_ingestion")))
    return lines


def chart_volumes(values: Mapping[str, Any], defaults: Mapping[str, Any]) -> list[tuple[str, int, float]]:
    """(what, count, GiB each) of the PVCs the langfuse chart creates with these values."""
    merged = _merge(defaults, values)
    volumes: list[tuple[str, int, float]] = []
    clickhouse = merged.get("clickhouse", {})
    # With an existingClaim the chart makes no volume: 02-deps' aws_ebs_volume is priced instead.
    persistence = clickhouse.get("persistence", {})
    if clickhouse.get("deploy") and persistence.get("enabled") and not persistence.get("existingClaim"):
        count = int(clickhouse.get("shards", 1)) * int(clickhouse.get("replicaCount", 1))
        volumes.append(("ClickHouse data", count, to_gib(clickhouse["persistence"]["size"])))
    zookeeper = clickhouse.get("zookeeper", {})
    if clickhouse.get("deploy") and zookeeper.get("enabled") and zookeeper.get("persistence", {}).get("enabled"):
        volumes.append(("ZooKeeper data", int(zookeeper.get("replicaCount", 1)),
                        to_gib(zookeeper["persistence"]["size"])))
    redis = merged.get("redis", {})
    if redis.get("deploy"):
        primary = redis.get("primary", {})
        if primary.get("persistence", {}).get("enabled"):
            volumes.append(("Valkey primary data", int(primary.get("replicaCount", 1)),
                            to_gib(primary["persistence"]["size"])))
        replica = redis.get("replica", {})
        if redis.get("architecture") == "replication" and replica.get("persistence", {}).get("enabled"):
            volumes.append(("Valkey replica data", int(replica.get("replicaCount", 1)),
                            to_gib(replica["persistence"]["size"])))
    return volumes


def _helm_lines(workspace: str, release: Mapping[str, Any], rates: Mapping[str, Any]) -> list[Line]:
    """The langfuse chart's PVC volumes (other charts: no line, they would need their own defaults)."""
    if release.get("chart") != "langfuse":
        return []
    assumptions = rates["assumptions"]
    volume_type = assumptions["pvc_volume_type"]["value"]
    key = f"ebs_{volume_type}"
    return [Line(workspace, f"{count} x {what} PVC {gib:g} GiB {volume_type}", count * gib, "GB-month", key,
                 _rate(rates, key))
            for what, count, gib in chart_volumes(chart_values(release), assumptions["chart_defaults"]["values"])]


def estimate(plans: Mapping[str, Mapping[str, Any]], rates: Mapping[str, Any]) -> Estimate:
    """Prices the resources the plans leave in place. `plans`: workspace -> `terraform show -json`.

    Everything not priced here (VPC, subnets, security groups, IAM, addons, random_*, ...) carries
    no charge of its own and is only counted in `free`.
    """
    result = Estimate()
    for workspace, plan in plans.items():
        everything = resources(plan)
        planned_region = region(plan)
        if planned_region and planned_region != rates["region"]:
            result.notes.append(f"{workspace} is planned for {planned_region}: rates are {rates['region']}")
        for resource in everything:
            kind, values = resource["type"], resource.get("values", {})
            if kind == "aws_eks_cluster":
                result.lines += _eks_lines(workspace, values, rates, result.notes)
            elif kind == "aws_eks_node_group":
                result.lines += _node_lines(workspace, resource, resource["address"], everything, rates)
            elif kind == "aws_db_instance":
                result.lines += _rds_lines(workspace, values, rates)
            elif kind == "aws_kms_key":
                result.lines.append(Line(workspace, f"KMS key ({resource['address']})", 1, "key-month", "kms_key",
                                         _rate(rates, "kms_key")))
            elif kind == "aws_s3_bucket":
                gb = float(rates["assumptions"]["s3_stored_gb"]["value"])
                result.lines.append(Line(workspace, f"S3 bucket, {gb:g} GB stored (assumed)", gb, "GB-month",
                                         "s3_standard", _rate(rates, "s3_standard")))
            elif kind == "helm_release":
                result.lines += _helm_lines(workspace, values, rates)
            elif kind == "aws_ebs_volume":
                gib, volume_type = float(values.get("size") or 0), values.get("type") or "gp2"
                name = (values.get("tags") or {}).get("Name") or resource["address"]
                result.lines.append(Line(workspace, f"EBS volume {name} {gib:g} GiB {volume_type}", gib, "GB-month",
                                         f"ebs_{volume_type}", _rate(rates, f"ebs_{volume_type}")))
            else:
                result.free[kind] += 1
    return result


# --- output ---------------------------------------------------------------------------------

def render(title: str, result: Estimate, rates: Mapping[str, Any]) -> str:
    """The monthly table, line by line, then its notes."""
    rows = [f"{title} ({rates['hours_per_month']} h/month, {rates['region']} list prices)",
            f"  {'workspace':<11} {'item':<66} {'quantity':>20} {'rate':>8} {'USD/month':>10}"]
    for line in result.lines:
        quantity = f"{line.quantity:,.2f} {line.unit}"
        rows.append(f"  {line.workspace:<11} {line.item:<66} {quantity:>20} {line.rate:>8.4f} {line.monthly:>10.2f}")
    rows.append(f"  {'total':<11} {'':<66} {'':>20} {'':>8} {result.total:>10.2f}")
    if result.free:
        free = ", ".join(f"{n} {k}" for k, n in sorted(result.free.items()))
        rows += textwrap.wrap(f"no charge of their own: {free}", width=118, initial_indent="  ",
                              subsequent_indent="    ")
    rows += [f"  note: {note}" for note in result.notes]
    return "\n".join(rows)


def render_rates(rates: Mapping[str, Any]) -> str:
    """The rate table used, with each rate's source and date, the assumptions and what is not counted."""
    rows = [f"Rates used ({rates['region']}, recorded {rates['recorded']}): {rates['provenance']}"]
    for key, rate in sorted(rates["rates"].items()):
        rows.append(f"  {key:<40} ${rate['usd']:<8g} per {rate['per']:<9} {rate['source']} ({rate['as_of']})"
                    + (f" - {rate['note']}" if rate.get("note") else ""))
    rows.append("Assumptions:")
    for key, assumption in rates["assumptions"].items():
        shown = {k: v for k, v in assumption.items() if k not in ("why", "source")}
        rows.append(f"  {key}: {json.dumps(shown, sort_keys=True)} - "
                    f"{assumption.get('why') or assumption.get('source', '')}")
    rows.append("Not counted:")
    rows += [f"  {item}" for item in rates.get("not_counted", [])]
    return "\n".join(rows)
