"""Plan tier, the pause of 01-network and 02-deps (Journey 3, NFR8, NFR11) and the monthly cost
read from the plans (NFR6).

01-network and 02-deps are each applied running with the provider stand-in, planned and applied
with cluster_enabled=false (what a pause deletes and leaves; 02-deps is paused while 01-network
still runs, as in the pause order), planned again while everything is paused (no changes), and
planned with true (what a resume brings back).
Stand-ins: the provider stand-in serving the real aws and null schemas; the real random, tls, time,
cloudinit and tfe providers; the local Terraform Cloud fake serving upstream outputs (running:
`plan.NETWORK_SAMPLE` / `plan.DEPS_SAMPLE`; paused: `plan.NETWORK_PAUSED` / `plan.DEPS_PAUSED`);
the real module sources from LFK8S_MODULE_MIRROR (without them this file skips with one line).
"""

from __future__ import annotations

import re
from typing import Any

import pytest
import tftest

from lfharness.core import tf
from lfharness.stack import cost
from lfharness.testing import plan

pytestmark = pytest.mark.plan

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

NFR6_BUDGET = 155.0  # PRD NFR6: total monthly infrastructure cost does not exceed ~$155
README = tf.REPO_ROOT / "README.md"
LOG_GROUP = "aws_cloudwatch_log_group.eks"
NODE_RULE = "aws_vpc_security_group_ingress_rule.rds_from_nodes[0]"


APPLY_NETWORK_FIRST = plan.error_pattern("apply", "01-network", "with", "cluster_enabled", "=", "true", "first")


def _cycle(workbench, tmp_path_factory, workspace: str) -> dict[str, plan.Plan]:
    """A running workspace applied, then planned and applied with cluster_enabled=false (during a
    pause 02-deps is paused while 01-network still runs), then planned again while everything is
    paused ("idle"), then with the cluster wanted again (after 01-network's resume)."""
    running = workbench.plan(workspace, tmp_path_factory.mktemp(workspace) / workspace)
    workbench.apply(running)
    paused = workbench.replan(running, plan.PAUSED)
    workbench.apply(paused)
    with workbench.upstream(plan.NETWORK_PAUSED, plan.DEPS_PAUSED):
        idle = workbench.replan(running, plan.PAUSED)
    return {"running": running, "paused": paused, "idle": idle, "resuming": workbench.replan(running, plan.RUNNING)}


@pytest.fixture(scope="module")
def network_cycle(workbench, tmp_path_factory) -> dict[str, plan.Plan]:
    return _cycle(workbench, tmp_path_factory, "01-network")


@pytest.fixture(scope="module")
def deps_cycle(workbench, tmp_path_factory) -> dict[str, plan.Plan]:
    return _cycle(workbench, tmp_path_factory, "02-deps")



# --- 01-network ----------------------------------------------------------------------------

def test_pausing_the_network_deletes_only_the_cluster_and_its_irsa_role(network_cycle):
    """Journey 3, NFR8: planned from a running 01-network, the pause deletes the eks module's and the
    EBS CSI role's resources and nothing of the VPC or the log group."""
    deleted = network_cycle["paused"].with_actions("delete")
    assert deleted and {a for a in deleted if not a.startswith(("module.eks.", "module.ebs_csi_irsa."))} == set()
    assert "module.eks.aws_eks_cluster.this[0]" in deleted


def test_a_paused_network_plans_no_changes_while_paused(network_cycle):
    """Journey 3: re-planning the paused 01-network while paused changes nothing (the pause is stable)."""
    assert network_cycle["idle"].with_actions("create", "update", "delete") == set()


def test_paused_network_keeps_only_the_vpc_and_the_log_group(network_cycle):
    """Journey 3, NFR8: with cluster_enabled=false 01-network holds the VPC module's resources and
    the control-plane log group, nothing else."""
    remaining = network_cycle["paused"].remaining()
    assert [a for a in remaining if not a.startswith("module.vpc.") and a != LOG_GROUP] == []


def test_paused_network_has_no_eks_iam_or_kms_resource(network_cycle):
    """Journey 3, NFR8: no cluster, node group, addon, IAM role, OIDC provider or KMS key stays behind."""
    kinds = set(network_cycle["paused"].remaining().values())
    assert {k for k in kinds if k.startswith(("aws_eks_", "aws_iam_", "aws_kms_", "aws_launch_template"))} == set()


def test_paused_network_keeps_the_vpc_and_both_subnets(network_cycle):
    """Journey 3: the VPC that holds RDS stays, with its two subnets."""
    kinds = list(network_cycle["paused"].remaining().values())
    assert (kinds.count("aws_vpc"), kinds.count("aws_subnet")) == (1, 2)


def test_paused_network_keeps_the_control_plane_log_group(network_cycle):
    """Journey 3: the log group stays through a pause (deleted, EKS would re-create it and the
    resume's create would fail, terraform-aws-eks issue 2763)."""
    assert network_cycle["paused"].remaining().get(LOG_GROUP) == "aws_cloudwatch_log_group"


def test_paused_network_outputs_an_empty_cluster_name_and_no_cluster_values(network_cycle):
    """Journey 3, NFR11: cluster_name becomes "", the other cluster outputs null (absent for readers)."""
    outputs = network_cycle["paused"].outputs
    cluster = {k: outputs.get(k) for k in ("cluster_endpoint", "cluster_ca_data", "oidc_provider_arn",
                                           "node_security_group_id")}
    assert (outputs["cluster_name"], set(cluster.values())) == ("", {None})


def test_resuming_the_network_creates_the_cluster_and_its_nodes_again(network_cycle):
    """Journey 3: a paused 01-network planned with cluster_enabled=true creates the cluster and node group."""
    created = network_cycle["resuming"].with_actions("create")
    assert {"module.eks.aws_eks_cluster.this[0]",
            'module.eks.module.eks_managed_node_group["default"].aws_eks_node_group.this[0]'} <= created


def test_resuming_the_network_leaves_the_vpc_untouched(network_cycle):
    """Journey 3: resume adds the cluster next to the kept VPC; nothing of the VPC is replaced or deleted."""
    touched = network_cycle["resuming"].with_actions("delete")
    assert {a for a in touched if a.startswith("module.vpc.") or a == LOG_GROUP} == set()


def test_control_plane_log_group_belongs_to_the_workspace_not_the_module(network_plan):
    """Journey 3: the workspace owns /aws/eks/<name>/cluster with the module's 90-day retention;
    the module creates none."""
    groups = network_plan.of_type("aws_cloudwatch_log_group")
    assert {a: (g["name"], g["retention_in_days"]) for a, g in groups.items()} == {
        LOG_GROUP: ("/aws/eks/langfuse/cluster", 90)}


def test_a_stack_deployed_before_the_pause_keeps_its_log_group_through_the_move(workbench, tmp_path):
    """Journey 3, NFR8: a 01-network applied when the eks module owned the log group plans the move
    to aws_cloudwatch_log_group.eks as a no-op, not a delete and a create (only the module's log
    group is applied before, with -target, to keep this quick)."""
    source = tf.TERRAFORM_DIR / "01-network"
    current_eks = (source / "eks.tf").read_text()
    module_owned = re.sub(r"\n  create_cloudwatch_log_group = false\n  cluster_tags = \{\n[^}]*\}\n", "\n",
                          current_eks)
    assert module_owned != current_eks, "eks.tf no longer has the lines this test removes; update the test"
    folder = workbench.prepare("01-network", tmp_path / "01-network", edit={"logs.tf": "", "eks.tf": module_owned})
    test = workbench.terraform(folder)
    tf_vars = workbench.default_variables("01-network")
    module_group = "module.eks.aws_cloudwatch_log_group.this"
    test.apply(tf_vars=tf_vars, targets=[module_group])
    for name in ("logs.tf", "eks.tf"):
        (folder / name).write_text((source / name).read_text())
    # Terraform wants both ends of a move among the targets.
    raw = test.plan(output=True, tf_vars=tf_vars, targets=[LOG_GROUP, module_group])._raw
    change = plan.Plan("01-network", raw, folder, tf_vars).changes[LOG_GROUP]
    assert (change.get("previous_address"), change["change"]["actions"]) == (
        "module.eks.aws_cloudwatch_log_group.this[0]", ["no-op"])


def test_spot_capacity_reaches_the_node_group(spot_network):
    """NFR6: node_capacity_type=SPOT is the node group's capacity type (the cost knob)."""
    nodes = spot_network.after('module.eks.module.eks_managed_node_group["default"].aws_eks_node_group.this[0]')
    assert nodes["capacity_type"] == "SPOT"


# --- 02-deps -------------------------------------------------------------------------------

def test_pausing_deps_deletes_only_the_node_rule_and_the_irsa_role(deps_cycle):
    """Journey 3, NFR8: planned from a running 02-deps (01-network still running, as in the pause
    order), the pause deletes the 5432 rule from the nodes and the IRSA role's resources, and never
    deletes or replaces RDS, its password, the bucket or the public rule."""
    deleted = deps_cycle["paused"].with_actions("delete")
    assert NODE_RULE in deleted
    assert {a for a in deleted if a != NODE_RULE and not a.startswith("module.langfuse_irsa.")} == set()


def test_a_paused_deps_plans_no_changes_while_the_network_is_paused(deps_cycle):
    """Journey 3, NFR11: with 01-network paused too (no node security group or OIDC outputs to
    read), re-planning the paused 02-deps changes nothing."""
    assert deps_cycle["idle"].with_actions("create", "update", "delete") == set()


def test_paused_deps_keeps_rds_the_bucket_and_the_public_5432_rule(deps_cycle):
    """Journey 3, NFR3, NFR11: RDS, the S3 bucket and 5432 from 0.0.0.0/0 stay through the pause."""
    remaining = deps_cycle["paused"].remaining()
    assert {"module.rds.module.db_instance.aws_db_instance.this[0]", "aws_s3_bucket.langfuse",
            'aws_vpc_security_group_ingress_rule.rds_from_cidrs["0.0.0.0/0"]'} <= set(remaining)


def test_paused_deps_keeps_the_clickhouse_volume_and_its_outputs(deps_cycle):
    """Decision 24, Journey 3: ClickHouse's volume (traces, scores, evaluation results) is neither
    deleted nor replaced by the pause or the resume, and 02-deps still outputs it while paused."""
    assert "aws_ebs_volume.clickhouse" in deps_cycle["paused"].remaining()
    touched = (deps_cycle["paused"].with_actions("delete", "update") | deps_cycle["idle"].with_actions("delete", "update")
               | deps_cycle["resuming"].with_actions("delete", "update"))
    assert "aws_ebs_volume.clickhouse" not in touched
    assert {"clickhouse_volume_id", "clickhouse_volume_zone"} <= set(deps_cycle["paused"].raw["planned_values"]["outputs"])


def test_paused_deps_has_no_rule_from_the_node_security_group(deps_cycle):
    """Journey 3: no ingress rule references a security group while paused (AWS would refuse to
    delete the node group's security group)."""
    rules = [r["values"] for r in cost.resources(deps_cycle["paused"].raw)
             if r["type"] == "aws_vpc_security_group_ingress_rule"]
    assert [r for r in rules if r.get("referenced_security_group_id") or r.get("cidr_ipv4") != "0.0.0.0/0"] == []


def test_paused_deps_has_no_irsa_role(deps_cycle):
    """Journey 3: the IRSA role goes with the cluster (a new cluster has a new OIDC issuer)."""
    assert [a for a in deps_cycle["paused"].remaining() if a.startswith("module.langfuse_irsa.")] == []


def test_paused_deps_outputs_no_irsa_role_arn(deps_cycle):
    """Journey 3, NFR11: irsa_role_arn is null while paused; RDS and bucket outputs stay."""
    outputs = deps_cycle["paused"].outputs
    assert (outputs.get("irsa_role_arn"), bool(outputs.get("s3_bucket_name"))) == (None, True)


def test_resuming_deps_creates_the_node_rule_and_the_irsa_role_again(deps_cycle):
    """Journey 3: planned with cluster_enabled=true the rule from the nodes and the role come back."""
    created = deps_cycle["resuming"].with_actions("create")
    assert {NODE_RULE, "module.langfuse_irsa.aws_iam_role.this[0]"} <= created


def test_resuming_deps_leaves_rds_and_the_bucket_untouched(deps_cycle):
    """Journey 3: the resume of 02-deps neither replaces nor deletes RDS, its password or the bucket."""
    deleted = deps_cycle["resuming"].with_actions("delete")
    assert {a for a in deleted if "db_instance" in a or "s3_bucket" in a or a.startswith("random_")} == set()


def test_deps_wanting_the_cluster_while_the_network_is_paused_names_01_network(workbench, tmp_path):
    """Journey 3, NFR11: cluster_enabled=true with a paused 01-network fails the plan saying to
    apply 01-network first."""
    with workbench.upstream(plan.NETWORK_PAUSED, plan.DEPS_SAMPLE), pytest.raises(
            tftest.TerraformTestError, match=APPLY_NETWORK_FIRST):
        workbench.plan("02-deps", tmp_path / "02-deps", plan.RUNNING)


# --- cost read from these plans (NFR6, NFR8) ------------------------------------------------

@pytest.fixture(scope="module")
def rates() -> dict[str, Any]:
    return cost.load_rates()


@pytest.fixture(scope="module")
def spot_network(workbench, tmp_path_factory) -> plan.Plan:
    return workbench.plan("01-network", tmp_path_factory.mktemp("spot") / "01-network", {"node_capacity_type": "SPOT"})


@pytest.fixture(scope="module")
def paused_plans(workbench, tmp_path_factory) -> dict[str, dict]:
    """The paused stack as `python -m lfharness cost` plans it (cost.VARIANTS["paused"]): what exists
    while paused, planned fresh (a plan from an applied stand-in state would carry placeholders)."""
    folder = tmp_path_factory.mktemp("paused-cost")
    return {ws: workbench.plan(ws, folder / ws, variables).raw for ws, variables in cost.VARIANTS["paused"].items()}


def _documented(label: str) -> float:
    """A total from README's cost table row `| <label> | $<amount> | ...`."""
    match = re.search(rf"^\|\s*{re.escape(label)}\s*\|\s*\$([\d,]+\.\d\d)\s*\|", README.read_text(), re.MULTILINE)
    assert match, f"README has no cost row '| {label} | $... |'"
    return float(match.group(1).replace(",", ""))


def test_paused_stack_costs_within_the_budget(paused_plans, rates):
    """NFR6, NFR8, Journey 3: the three paused plans priced with the rate table stay within ~$155 a month."""
    paused = cost.estimate(paused_plans, rates)
    assert paused.total <= NFR6_BUDGET


def test_paused_stack_costs_what_the_readme_documents(paused_plans, rates):
    """NFR6, Journey 3: README's paused figure is the total the paused plans price to."""
    paused = cost.estimate(paused_plans, rates)
    assert round(paused.total, 2) == _documented("paused")


def test_full_stack_with_spot_nodes_costs_within_the_budget(spot_network, deps_plan, app_plan, rates):
    """NFR6: with node_capacity_type=SPOT the full stack's plans price within ~$155 a month."""
    spot = cost.estimate({"01-network": spot_network.raw, "02-deps": deps_plan.raw, "03-app": app_plan.raw}, rates)
    assert spot.total <= NFR6_BUDGET


def test_full_on_demand_stack_costs_what_the_readme_documents(network_plan, deps_plan, app_plan, rates):
    """NFR6: the full on-demand stack's plans price to README's figure, so any change in what the
    plans create shows up as a cost change to document."""
    full = cost.estimate({"01-network": network_plan.raw, "02-deps": deps_plan.raw, "03-app": app_plan.raw}, rates)
    assert round(full.total, 2) == _documented("full, on-demand nodes")
