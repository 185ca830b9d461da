"""RDS connection logging (issue 26 item 6): RDS is public (NFR3), so every attempt on 5432 is a
line of its postgresql log, exported to a CloudWatch log group that lives and goes with 02-deps.

Plan tier: 02-deps (and 01-network, for the retention the control-plane logs keep) planned whole
with the provider stand-in serving the real aws schema, the real rds, iam, eks and vpc module
sources from LFK8S_MODULE_MIRROR (the plan fixtures skip with one line without them) and the local
Terraform Cloud fake serving the upstream outputs. Static tier: the teardown's sweep against moto.
"""

from __future__ import annotations

import pytest

from lfharness.core import envfile
from lfharness.stack import cost, stack
from lfharness.testing import lifecycle

DB = "module.rds.module.db_instance.aws_db_instance.this[0]"
PARAMETERS = "module.rds.module.db_parameter_group.aws_db_parameter_group.this[0]"
SETTINGS = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                            "x" * 12)


def _log_groups(planned) -> dict[str, dict]:
    """The log groups a plan creates, by name."""
    return {g["name"]: g for g in planned.of_type("aws_cloudwatch_log_group").values()}


@pytest.mark.plan
def test_rds_logs_every_connection_and_its_end_beside_forced_tls(deps_plan):
    """NFR3, issue 26 item 6: the instance's parameter group sets log_connections and
    log_disconnections, and still forces TLS (decision 15)."""
    parameters = {p["name"]: p["value"] for p in deps_plan.after(PARAMETERS)["parameter"]}
    assert {k: parameters.get(k) for k in ("log_connections", "log_disconnections", "rds.force_ssl")} == {
        "log_connections": "1", "log_disconnections": "1", "rds.force_ssl": "1"}


@pytest.mark.plan
def test_rds_exports_its_postgresql_log_to_cloudwatch(deps_plan):
    """NFR3, issue 26 item 6: the postgresql log (where the connection lines go) is exported."""
    assert deps_plan.after(DB)["enabled_cloudwatch_logs_exports"] == ["postgresql"]


@pytest.mark.plan
def test_the_postgresql_log_group_is_02_deps_own_with_the_control_plane_logs_retention(deps_plan, network_plan):
    """NFR6, NFR8, issue 26 item 6: 02-deps creates /aws/rds/instance/<identifier>/postgresql itself
    (so RDS does not make one without retention), keeps it as long as 01-network keeps the EKS
    control-plane logs, and lets a teardown delete it (no skip_destroy)."""
    identifier = deps_plan.after(DB)["identifier"]
    group = _log_groups(deps_plan)[f"/aws/rds/instance/{identifier}/postgresql"]
    (control_plane,) = _log_groups(network_plan).values()
    assert (group["retention_in_days"], bool(group.get("skip_destroy"))) == (control_plane["retention_in_days"], False)


@pytest.mark.plan
def test_the_teardown_sweep_looks_for_every_log_group_the_plans_create(deps_plan, network_plan):
    """NFR8, FR27: the sweep that ends a teardown checks each log group 01-network and 02-deps create
    by name, so one EKS or RDS writes again after Terraform deleted it is found."""
    assert sorted(_log_groups(network_plan) | _log_groups(deps_plan)) == sorted(stack.SWEPT_LOG_GROUPS)


@pytest.mark.plan
def test_the_cost_estimate_prices_the_exported_postgresql_log(deps_plan):
    """NFR6, issue 26 item 6: the 02-deps plan's log export is a cost line (log ingestion at its
    assumed volume), as README's cost table counts it."""
    rates = cost.load_rates()
    lines = [line for line in cost.estimate({"02-deps": deps_plan.raw}, rates).lines
             if line.rate_key == "cloudwatch_logs_ingestion"]
    assert [(line.workspace, line.quantity) for line in lines] == [
        ("02-deps", rates["assumptions"]["rds_log_gb_per_month"]["values"]["postgresql"])]


@pytest.mark.static
def test_the_teardown_sweep_deletes_a_postgresql_log_group_rds_wrote_again(tmp_path, moto):
    """NFR8, FR27, issue 26 item 6: an untagged /aws/rds/instance/langfuse/postgresql (RDS publishing a
    last line after Terraform deleted the module's group) is deleted by the sweep that ends a teardown
    (moto, in an account of its own; no workspace to destroy)."""
    aws = lifecycle.fresh_account(moto)
    logs = aws.client("logs")
    logs.create_log_group(logGroupName=stack.RDS_LOG_GROUP)
    st = stack.Stack(SETTINGS, tmp_path / "run", tmp_path / "terraform", aws=aws, sweep_timeout=5, poll_interval=0.5)
    st.teardown(only=(), sweep=True)
    assert logs.describe_log_groups(logGroupNamePrefix=stack.RDS_LOG_GROUP)["logGroups"] == []
