"""`python -m lfharness status`: the stack's kind, what each workspace holds and its monthly cost,
read from the workspaces' outputs and states (issue 15; static tier).

Stand-in: the local Terraform Cloud fake, holding for each case hand-made terraform.tfstate
documents (format 4) shaped like the workspaces' real states (module addresses, attributes the
cost table reads, contract outputs; null outputs absent, as Terraform stores none); and local state
files for --state-dir.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from lfharness import commands
from lfharness.core.tfc import TfcClient
from lfharness.stack import cost, status
from lfharness.testing import localca
from lfharness.testing.tfc_fake import TfcFake

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
NAMES = {"01-network": "langfuse-network", "02-deps": "langfuse-deps", "03-app": "langfuse-app"}
RDS_PASSWORD = "state-only-password-" + os.urandom(6).hex()


def _resource(address: str, attributes: dict[str, Any], count: int = 1) -> dict[str, Any]:
    """A state `resources` entry: module path, type and name from an address such as module.vpc.aws_subnet.public."""
    *module, kind, name = address.split(".")
    entry = {"mode": "managed", "type": kind, "name": name, "provider": "provider[\"registry/hashicorp/aws\"]",
             "instances": [{"index_key": i, "attributes": attributes} if count > 1 else {"attributes": attributes}
                           for i in range(count)]}
    if module:
        entry["module"] = ".".join(module)
    return entry


def _state(resources: list[dict[str, Any]], outputs: dict[str, Any], sensitive: tuple[str, ...] = ()) -> dict:
    return {"version": 4, "terraform_version": "1.14.0", "serial": 3, "lineage": "l-" + os.urandom(4).hex(),
            "outputs": {k: {"value": v, "type": "string", **({"sensitive": True} if k in sensitive else {})}
                        for k, v in outputs.items()},
            "resources": resources}


_VPC = [_resource("module.vpc.aws_vpc.this", {"id": "vpc-1", "cidr_block": "10.0.0.0/16"}),
        _resource("module.vpc.aws_subnet.public", {"id": "subnet-1", "map_public_ip_on_launch": True}, count=2)]
_NETWORK = {"vpc_id": "vpc-1", "public_subnet_ids": "subnet-1,subnet-2"}
_CLUSTER = {"cluster_name": "langfuse", "cluster_endpoint": "https://eks.example", "cluster_ca_data": "Q0E=",
            "oidc_provider_arn": "arn:aws:iam::123456789012:oidc-provider/x", "node_security_group_id": "sg-1"}
NETWORK_RUNNING = _state(_VPC + [
    _resource("module.eks.aws_eks_cluster.this", {"name": "langfuse", "upgrade_policy": [{"support_type": "STANDARD"}],
                                                  "enabled_cluster_log_types": []}),
    _resource('module.eks.module.eks_managed_node_group["default"].aws_eks_node_group.this',
              {"scaling_config": [{"desired_size": 2}], "instance_types": ["t3.medium"], "capacity_type": "ON_DEMAND"}),
    _resource("module.eks.module.kms.aws_kms_key.this", {"key_id": "k-1"})], {**_NETWORK, **_CLUSTER})
NETWORK_PAUSED = _state(_VPC, _NETWORK)
DEPS = _state([
    _resource("module.rds.module.db_instance.aws_db_instance.this",
              {"identifier": "langfuse", "instance_class": "db.t4g.micro", "engine": "postgres", "multi_az": False,
               "storage_type": "gp3", "allocated_storage": 20, "publicly_accessible": True, "password": RDS_PASSWORD}),
    _resource("module.s3.aws_s3_bucket.this", {"bucket": "langfuse-bucket"}),
    _resource("aws_ebs_volume.clickhouse", {"id": "vol-0c1c2c3c4c5c6c7c8", "size": 8, "type": "gp3",
                                            "availability_zone": "us-east-1a",
                                            "tags": {"Name": "langfuse-clickhouse-data"}}),
    _resource("random_password.rds", {"result": RDS_PASSWORD})],
    {"rds_endpoint": "langfuse.abc.us-east-1.rds.amazonaws.com:5432", "rds_password": RDS_PASSWORD,
     "s3_bucket_name": "langfuse-bucket", "s3_bucket_region": "us-east-1", "clickhouse_volume_id": "vol-0c1c2c3c4c5c6c7c8",
     "clickhouse_volume_zone": "us-east-1a", "clickhouse_volume_size_gib": 8}, sensitive=("rds_password",))
APP_RUNNING = _state([
    _resource("helm_release.langfuse", {"name": "langfuse", "chart": "langfuse", "values": ["{}"]}),
    _resource("kubernetes_namespace.langfuse", {"id": "langfuse"}),
    _resource("random_password.nextauth", {"result": "x" * 32})],
    {"namespace": "langfuse", "health_url": "http://localhost:3000/api/public/health", "project_id": "p-1"})
APP_PAUSED = _state([_resource("random_password.nextauth", {"result": "x" * 32})], {})
EMPTY = _state([], {})

CASES: dict[str, dict[str, dict | None]] = {
    "running": {"01-network": NETWORK_RUNNING, "02-deps": DEPS, "03-app": APP_RUNNING},
    "paused": {"01-network": NETWORK_PAUSED, "02-deps": DEPS, "03-app": APP_PAUSED},
    "cluster without release": {"01-network": NETWORK_RUNNING, "02-deps": DEPS, "03-app": EMPTY},
    "03-app left behind": {"01-network": EMPTY, "02-deps": EMPTY, "03-app": APP_RUNNING},
    "never applied": {"01-network": None, "02-deps": None, "03-app": None},
    "destroyed": {"01-network": EMPTY, "02-deps": EMPTY, "03-app": EMPTY},
}


@pytest.fixture
def fake(tmp_path: Path):
    ca = localca.make_ca(tmp_path / "ca")
    token = "status-test-token-" + os.urandom(6).hex()
    with TfcFake(ca, token) as server:
        # A short processing interval: a 503 "still processing" is retried every 50 ms, up to 10 s.
        yield server, TfcClient(token, server.organization, base_url=server.url, verify=ca.ca, timeout=5,
                                processing_timeout=10, processing_interval=0.05)


def _seed(server: TfcFake, case: str) -> None:
    for workspace, state in CASES[case].items():
        server.add_workspace(NAMES[workspace], {"execution-mode": "local"})
        if state is not None:
            server.set_state(NAMES[workspace], state)


def _assess(fake, case: str) -> status.Status:
    server, client = fake
    _seed(server, case)
    return status.assess(status.from_terraform_cloud(client), cost.load_rates())


@pytest.mark.parametrize(("case", "kind"), [("running", "running"), ("paused", "paused"),
                                            ("cluster without release", "partial"), ("03-app left behind", "partial"),
                                            ("never applied", "absent"), ("destroyed", "absent")])
def test_status_names_the_stacks_kind_from_the_workspaces_outputs_and_states(fake, case, kind):
    """Journey 3, issue 15: status reads absent, running, paused or partial from Terraform Cloud; a stack
    whose outputs look absent while a state still holds resources is partial (local Terraform Cloud fake)."""
    assert _assess(fake, case).kind == kind


def test_status_without_workspaces_is_absent_and_costs_nothing(fake):
    """NFR8, issue 15: with no workspace in Terraform Cloud the stack is absent at $0 (local Terraform Cloud fake)."""
    _, client = fake
    result = status.assess(status.from_terraform_cloud(client), cost.load_rates())
    assert (result.kind, result.estimate.total, [v.exists for v in result.workspaces.values()]) == (
        "absent", 0, [False, False, False])


def test_status_counts_what_each_workspace_holds(fake):
    """Issue 15: each workspace's managed resource instances, by type, from its current state (local
    Terraform Cloud fake serving the state at its download URL)."""
    result = _assess(fake, "paused")
    assert {ws: dict(view.resources()) for ws, view in result.workspaces.items()} == {
        "01-network": {"aws_vpc": 1, "aws_subnet": 2},
        "02-deps": {"aws_db_instance": 1, "aws_s3_bucket": 1, "aws_ebs_volume": 1, "random_password": 1},
        "03-app": {"random_password": 1}}


def test_paused_stack_is_billed_for_rds_s3_and_no_cluster(fake):
    """NFR8, Journey 3, issue 15, decision 24: the paused state's monthly cost has RDS, its storage and
    address, S3 and ClickHouse's kept volume, and nothing of EKS, its nodes or its KMS key (local
    Terraform Cloud fake; the committed rate table)."""
    estimate = _assess(fake, "paused").estimate
    priced = {line.rate_key for line in estimate.lines}
    assert priced == {"rds_postgres_single_az_db.t4g.micro", "rds_storage_gp3", "public_ipv4", "s3_standard", "ebs_gp3"}
    assert estimate.by_rate("ebs_gp3") == pytest.approx(8 * cost.load_rates()["rates"]["ebs_gp3"]["usd"])


def test_running_stack_adds_the_cluster_nodes_and_kms_key_to_the_bill(fake):
    """NFR6, issue 15: the running state costs the paused bill plus the EKS control plane, two t3.medium
    nodes with their root volumes and addresses, and the KMS key, priced from the state's own
    attributes (local Terraform Cloud fake; the committed rate table)."""
    rates = cost.load_rates()
    running = _assess(fake, "running").estimate
    hours = rates["hours_per_month"]
    assert (running.by_rate("eks_control_plane_standard"), running.by_rate("ec2_on_demand_t3.medium"),
            running.by_rate("kms_key") > 0) == (
        pytest.approx(hours * rates["rates"]["eks_control_plane_standard"]["usd"]),
        pytest.approx(2 * hours * rates["rates"]["ec2_on_demand_t3.medium"]["usd"]), True)


def test_status_report_names_kind_counts_and_total_but_no_secret(fake, capsys):
    """NFR1, issue 15: the printed report says the kind, each workspace's count and the monthly total,
    and nothing of the secrets the states hold (local Terraform Cloud fake)."""
    server, client = fake
    _seed(server, "paused")
    code = commands.status_command(ROOT / "absent.env", None, client)
    out = capsys.readouterr().out
    assert (code, out.splitlines()[0].startswith("stack: paused"), "4 resources: 1 aws_db_instance" in out,
            "total" in out, RDS_PASSWORD in out) == (0, True, True, True, False)


def test_status_report_names_clickhouses_volume_and_that_only_teardown_deletes_it(fake, capsys):
    """Decision 24: the report says where ClickHouse's data is (volume id, size, zone) and what keeps
    or deletes it (local Terraform Cloud fake)."""
    server, client = fake
    _seed(server, "paused")
    commands.status_command(ROOT / "absent.env", None, client)
    assert ("ClickHouse's data: EBS volume vol-0c1c2c3c4c5c6c7c8 (8 GiB, us-east-1a), kept by pause and rebuild, "
            "deleted only by teardown") in capsys.readouterr().out


def _node(session, cluster: str, zone: str) -> None:
    ec2 = session.client("ec2")
    vpc = ec2.create_vpc(CidrBlock="10.0.0.0/16")["Vpc"]["VpcId"]
    subnet = ec2.create_subnet(VpcId=vpc, CidrBlock="10.0.0.0/20", AvailabilityZone=zone)["Subnet"]["SubnetId"]
    ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1, SubnetId=subnet, TagSpecifications=[
        {"ResourceType": "instance", "Tags": [{"Key": "eks:cluster-name", "Value": cluster}]}])


@pytest.mark.parametrize(("node_zone", "warned"), [("us-east-1b", True), ("us-east-1a", False)])
def test_status_warns_when_no_node_runs_in_the_zone_of_clickhouses_volume(fake, moto, node_zone, warned):
    """Decision 24: ClickHouse can start only on a node in its volume's zone; a running stack whose
    node instances are all elsewhere gets one line saying so with the way out (local Terraform
    Cloud fake; moto holding the node instance)."""
    server, client = fake
    cluster = "lf-" + os.urandom(4).hex()
    for workspace, state in CASES["running"].items():
        outputs = {k: v["value"] for k, v in state["outputs"].items()}
        if workspace == "01-network":
            outputs["cluster_name"] = cluster
        server.add_workspace(NAMES[workspace], {"execution-mode": "local"})
        server.set_state(NAMES[workspace], _state(state["resources"], outputs, sensitive=("rds_password",)))
    session = moto.session("us-east-1")
    _node(session, cluster, node_zone)
    assessed = status.with_placement(status.assess(status.from_terraform_cloud(client), cost.load_rates()), session)
    line = status.render(assessed, cost.load_rates(), "test")
    assert ("WARNING: no running node instance in us-east-1a" in line) is warned


def test_status_command_reads_local_backend_states(tmp_path):
    """Issue 15: `python -m lfharness status --state-dir` reads <dir>/<workspace>/terraform.tfstate, the
    local backends of an offline run, and reports the kind (local state files written by the test)."""
    for workspace, state in CASES["cluster without release"].items():
        (tmp_path / workspace).mkdir()
        (tmp_path / workspace / "terraform.tfstate").write_text(json.dumps(state))
    result = subprocess.run([sys.executable, "-m", "lfharness", "status", "--state-dir", str(tmp_path)], cwd=ROOT,
                            capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, result.stdout.splitlines()[0]) == (
        0, "stack: partial (cluster langfuse exists without the Langfuse release)")


def test_status_without_a_target_says_so(tmp_path):
    """FR23, issue 15: with no .env target and no --state-dir there is nothing to read: exit 2 naming the
    missing keys and the option (no Terraform Cloud is contacted)."""
    result = subprocess.run([sys.executable, "-m", "lfharness", "status", "--env-file", str(tmp_path / "absent.env")],
                            cwd=ROOT, capture_output=True, text=True, timeout=60, check=False)
    assert (result.returncode, "TFE_TOKEN" in result.stderr, "--state-dir" in result.stderr) == (2, True, True)


def test_status_right_after_an_apply_waits_out_outputs_still_being_processed(fake):
    """FR16, issue 15 defect 8: Terraform Cloud answers 503 while it processes a new state version's
    outputs; status reads them through TfcClient.outputs, which retries, so it still reports the
    stack (local Terraform Cloud fake answering 503 twice)."""
    server, client = fake
    _seed(server, "running")
    server.outputs_still_processing("langfuse-network", reads=2)
    assert status.assess(status.from_terraform_cloud(client), cost.load_rates()).kind == "running"


def test_status_registers_the_secrets_of_the_states_it_reads(fake):
    """NFR1, issue 15: the states status reads hold secrets (the RDS password); they are registered with the
    redactor, so a log line carrying one is masked (local Terraform Cloud fake; lfharness.core.redact)."""
    from lfharness.core import redact

    server, client = fake
    _seed(server, "paused")
    redactor = redact.Redactor()
    status.learn_secrets(redactor, status.from_terraform_cloud(client))
    assert RDS_PASSWORD not in redactor.mask(f"connecting with {RDS_PASSWORD}")


def test_local_state_views_hold_no_sensitive_output_value(tmp_path):
    """NFR1, issue 15: status reads only the non-sensitive outputs (as from Terraform Cloud); the
    views it builds from local states, whose repr a traceback or a failed assertion prints, hold
    no sensitive output (the RDS password) while the state itself has it (local state files)."""
    for workspace, state in CASES["paused"].items():
        if state is not None:
            (tmp_path / workspace).mkdir()
            (tmp_path / workspace / "terraform.tfstate").write_text(json.dumps(state))
    views = status.from_state_dir(tmp_path)
    assert (RDS_PASSWORD in json.dumps(views["02-deps"].state), RDS_PASSWORD in repr(views),
            "rds_endpoint" in views["02-deps"].outputs) == (True, False, True)


def _write_states(folder: Path, states: dict[str, dict | None]) -> Path:
    """Local backends: <folder>/<workspace>/terraform.tfstate; None is a workspace folder with no state file."""
    for workspace, state in states.items():
        (folder / workspace).mkdir(parents=True, exist_ok=True)
        if state is not None:
            (folder / workspace / "terraform.tfstate").write_text(json.dumps(state))
    return folder


_TEARDOWN = "still hold resources: run `python -m lfharness teardown` (or re-apply what is missing)"
KIND_AND_DETAIL = {
    "running": CASES["running"], "paused": CASES["paused"], "cluster without release": CASES["cluster without release"],
    "03-app left behind": CASES["03-app left behind"], "never applied": CASES["never applied"],
    "destroyed": CASES["destroyed"],
    # Outputs gone (an interrupted teardown) while 01-network and 02-deps still hold resources.
    "outputs gone, resources left": {"01-network": _state(_VPC, {}), "02-deps": _state(DEPS["resources"], {}),
                                     "03-app": EMPTY},
}
EXPECTED_FIRST_LINE = {
    "running": "stack: running (cluster langfuse and the Langfuse release exist)",
    "paused": "stack: paused (no cluster, no release; RDS and S3 kept)",
    "cluster without release": "stack: partial (cluster langfuse exists without the Langfuse release)",
    "03-app left behind": f"stack: partial (01-network, 02-deps not applied, but 03-app {_TEARDOWN})",
    "never applied": "stack: absent (no workspace holds any resource)",
    "destroyed": "stack: absent (no workspace holds any resource)",
    "outputs gone, resources left": f"stack: partial (01-network, 02-deps not applied, but 01-network, 02-deps {_TEARDOWN})",
}


@pytest.mark.parametrize("source", ["Terraform Cloud", "local states"])
@pytest.mark.parametrize("case", list(KIND_AND_DETAIL))
def test_status_report_opens_with_the_kind_and_why_and_the_way_out_of_a_partial_stack(fake, tmp_path, source, case):
    """Journey 3, FR23, issue 15: the report's first line is the kind with its reason, read the same from
    Terraform Cloud as from the local states of an offline run; a partial stack's line names every
    workspace still holding resources and the teardown command that removes them (local Terraform Cloud
    fake; local state files)."""
    rates = cost.load_rates()
    if source == "Terraform Cloud":
        server, client = fake
        for workspace, state in KIND_AND_DETAIL[case].items():
            server.add_workspace(NAMES[workspace], {"execution-mode": "local"})
            if state is not None:
                server.set_state(NAMES[workspace], state)
        views = status.from_terraform_cloud(client)
    else:
        views = status.from_state_dir(_write_states(tmp_path / "states", KIND_AND_DETAIL[case]))
    report = status.render(status.assess(views, rates), rates, source)
    assert report.splitlines()[0] == EXPECTED_FIRST_LINE[case]


@pytest.mark.parametrize(("states", "rows"), [
    ({"01-network": _state(_VPC + [_resource("module.vpc.aws_subnet.private", {"id": "subnet-3"}, count=2)], {}),
      "02-deps": None},
     ["  01-network  5 resources: 4 aws_subnet, 1 aws_vpc", "  02-deps     never applied: no state",
      "  03-app      no such workspace: holds nothing"]),
    ({"01-network": EMPTY, "02-deps": EMPTY, "03-app": EMPTY},
     ["  01-network  0 resources", "  02-deps     0 resources", "  03-app      0 resources"]),
], ids=["applied, never applied, no workspace", "destroyed"])
def test_status_report_says_what_each_workspace_holds_then_the_monthly_cost(tmp_path, states, rows):
    """Issue 15, NFR8: after the kind and where it was read, one row per workspace: its resource
    instances by type (every instance of a type counted, wherever in the modules it is), or that it
    was never applied, or that there is no such workspace, or that it holds nothing; then, after a
    blank line, the monthly cost of what the states hold (local state files)."""
    rates = cost.load_rates()
    folder = _write_states(tmp_path, states)
    report = status.render(status.assess(status.from_state_dir(folder), rates), rates, f"the local states under {folder}")
    title = f"Monthly cost of what the states hold ({rates['hours_per_month']} h/month, {rates['region']} list prices)"
    assert report.splitlines()[1:7] == [f"read from the local states under {folder}", *rows, "", title]


def test_status_report_names_every_workspace_missing_from_terraform_cloud(fake):
    """NFR8, issue 15: with no workspace in Terraform Cloud the report names each of the three as
    holding nothing (local Terraform Cloud fake)."""
    _, client = fake
    rates = cost.load_rates()
    report = status.render(status.assess(status.from_terraform_cloud(client), rates), rates, "test")
    assert report.splitlines()[2:5] == ["  01-network  no such workspace: holds nothing",
                                        "  02-deps     no such workspace: holds nothing",
                                        "  03-app      no such workspace: holds nothing"]


def test_status_registers_secrets_only_marked_sensitive_and_secret_attributes_not_exported(tmp_path):
    """NFR1, issue 15: a value the states hold only as a sensitive output, and one held only as a secret
    attribute (a random_password's result) that no output exports, are both registered with the
    redactor by status, so no log line can show either (local state files; lfharness.core.redact)."""
    from lfharness.core import redact

    output_only = "output-only-secret-" + os.urandom(6).hex()
    attribute_only = "attribute-only-secret-" + os.urandom(6).hex()
    deps = _state([_resource("random_password.salt", {"result": attribute_only})],
                  {"rds_endpoint": "langfuse.abc.us-east-1.rds.amazonaws.com:5432", "langfuse_salt": output_only},
                  sensitive=("langfuse_salt",))
    folder = _write_states(tmp_path, {"01-network": NETWORK_PAUSED, "02-deps": deps, "03-app": EMPTY})
    redactor = redact.Redactor()
    status.learn_secrets(redactor, status.from_state_dir(folder))
    masked = redactor.mask(f"salt {output_only}, password {attribute_only}")
    assert (output_only in masked, attribute_only in masked) == (False, False)


def test_status_warns_about_clickhouses_zone_only_for_a_running_stack(tmp_path, moto):
    """Decision 24: the placement line is for a running stack; a partial one (a cluster without the
    release) gets none, even with no node in the volume's zone (local state files; moto holding no node
    of the cluster)."""
    cluster = "lf-" + os.urandom(4).hex()
    network = _state(NETWORK_RUNNING["resources"], {**_NETWORK, **_CLUSTER, "cluster_name": cluster})
    folder = _write_states(tmp_path, {"01-network": network, "02-deps": DEPS, "03-app": EMPTY})
    rates = cost.load_rates()
    assessed = status.with_placement(status.assess(status.from_state_dir(folder), rates), moto.session("us-east-1"))
    report = status.render(assessed, rates, "test")
    assert (assessed.kind, "WARNING" in report) == ("partial", False)
