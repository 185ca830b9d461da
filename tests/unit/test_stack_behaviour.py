"""The Stack's behaviour an operator relies on, one behaviour a test (static tier; issue 28's mutation
score of lfharness/stack/stack.py, whose full runs are the lifecycle tier's).

What is tested: the teardown's order, what it reports (never a clean teardown while a workspace or
an AWS leftover stays), the secrets learned before a command can print them and masked in what it
reports, the Terraform Cloud locks a killed Terraform left, and the outputs read back.

Stand-ins: a fake Terraform runner in place of tf.run (`FakeTerraform`: each workspace's state is a
list of resources and a dict of outputs here, and every call is recorded with what its redactor hid
at that moment); the local Terraform Cloud fake (lfharness.testing.tfc_fake) for locks, workspaces
and upstream outputs; the AWS steps of a teardown (PVC volumes, the leftover sweep, EKS's status) are
small functions recording their calls in the same list as the Terraform commands, so the order is
visible.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from botocore.exceptions import ClientError

from lfharness.core import procs, redact, tf
from lfharness.core.tfc import TfcClient, TfcError
from lfharness.stack import aws_checks, pause, stack
from lfharness.stack.stack import ORDER, Stack, TeardownError
from lfharness.testing.quickstack import SETTINGS
from lfharness.testing.tfc_fake import TfcFake

pytestmark = pytest.mark.static

NAMES = {"01-network": "langfuse-network", "02-deps": "langfuse-deps", "03-app": "langfuse-app"}
# Made-up values shaped like the stack's secrets: no real credential anywhere.
RDS_PASSWORD = "Fake0Rds0Password0For0Tests0Only"
STATE_SECRET = "Fake0Random0Password0In0State000"
BUCKET = "langfuse-storage-1a2b3c4d"  # a plain output, long enough that a redactor would mask it if told
CONTRACT = 'variable "cluster_enabled" {\n  type    = bool\n  default = true\n}\n'


@dataclass
class Call:
    """One command the Stack ran, and which probed secrets its redactor hid when it ran."""

    workspace: str
    args: list[str]
    ok: tuple[int, ...]
    log_dir: Path | None
    env: dict[str, str]
    hidden: dict[str, bool]
    learns_after: bool  # a before_log given: the apply's new secrets learned before its log is written

    @property
    def sub(self) -> str:
        return self.args[0]


@dataclass
class FakeTerraform:
    """Stands in for tf.run. A workspace is in `resources` once it has a state (its addresses and
    `show -json` values); `outputs` are what `output -json` prints (value, sensitive); `failures`
    holds, per (workspace, subcommand), the stderr of the next calls that fail (exit 1).
    `steps` is shared with the AWS stand-ins: ("terraform", workspace, subcommand) per command."""

    resources: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    outputs: dict[str, dict[str, tuple[Any, bool]]] = field(default_factory=dict)
    failures: dict[tuple[str, str], list[str]] = field(default_factory=dict)
    exit_codes: dict[tuple[str, str], int] = field(default_factory=dict)
    output_stderr: dict[str, str] = field(default_factory=dict)
    probe: tuple[str, ...] = ()
    interrupt: set[tuple[str, str]] = field(default_factory=set)  # Ctrl-C during these commands
    calls: list[Call] = field(default_factory=list)
    steps: list[tuple[str, ...]] = field(default_factory=list)

    def __call__(self, args: list[str], cwd: Path, env: dict[str, str] | None = None, log_dir: Path | None = None,
                 ok_codes: tuple[int, ...] = (0,), stdin: str | None = None, *, timeout: float | None = None,
                 grace: float | None = None, redactor: redact.Redactor | None = None,
                 before_log: Callable[[], None] | None = None) -> tf.Result:
        workspace = cwd.name
        mask = redactor.mask if redactor is not None else (lambda text: text)
        self.calls.append(Call(workspace, list(args), ok_codes, log_dir, dict(env or {}),
                               {v: v not in mask(v) for v in self.probe}, before_log is not None))
        sub = " ".join(args[:2]) if args[0] == "state" else args[0]
        self.steps.append(("terraform", workspace, sub))
        if (workspace, sub) in self.interrupt:
            raise tf.TerraformInterrupted(f"terraform {sub} in {workspace}: interrupted")
        code, out, err = self._answer(workspace, sub, args)
        if sub in ("apply", "destroy", "state rm") and workspace in self.resources:
            # As a local backend does: the state file changes with the state.
            (cwd / "terraform.tfstate").write_text(json.dumps(self.resources[workspace]))
        if before_log is not None:
            before_log()
        if code not in ok_codes:
            raise tf.TerraformError(mask(f"terraform {' '.join(args)} in {cwd} exited {code}:\n{err}"))
        return tf.Result(list(args), code, out, err, 0.0)

    def last(self, sub: str) -> list[str]:
        """The arguments of the last `sub` command run."""
        return [c.args for c in self.calls if c.sub == sub][-1]

    def commands(self, *subs: str) -> list[tuple[str, str]]:
        """(workspace, subcommand) of the commands run, those named in `subs` only when given."""
        return [(c.workspace, c.sub) for c in self.calls if not subs or c.sub in subs]

    def _answer(self, workspace: str, sub: str, args: list[str]) -> tuple[int, str, str]:
        pending = self.failures.get((workspace, sub))
        if pending:
            return 1, "", pending.pop(0)
        if sub != "plan" and self.exit_codes.get((workspace, sub), 0):
            return self.exit_codes[(workspace, sub)], "", f"Error: {sub} failed"
        held = self.resources.get(workspace)
        if sub == "show":
            root = {"resources": held} if held is not None else {}
            return 0, json.dumps({"values": {"root_module": root}}), ""
        if sub == "output":
            if workspace in self.output_stderr:
                return 1, "", self.output_stderr[workspace]
            shown = {k: {"value": v, "sensitive": s} for k, (v, s) in self.outputs.get(workspace, {}).items()}
            return 0, json.dumps(shown), ""
        if sub == "state list":
            if held is None:
                return 1, "", "No state file was found!"
            return 0, "\n".join(r["address"] for r in held), ""
        if sub == "state rm":
            self.resources[workspace] = [r for r in held or [] if r["address"] not in args]
        if sub == "destroy":
            self.resources[workspace] = []
            self.outputs[workspace] = {}
        return self.exit_codes.get((workspace, sub), 0), "", ""


@pytest.fixture
def fake_tf(monkeypatch) -> FakeTerraform:
    fake = FakeTerraform()
    monkeypatch.setattr(tf, "run", fake)
    return fake


def _root(tmp_path: Path, contract: tuple[str, ...] = ()) -> Path:
    """The three workspace folders; those in `contract` declare cluster_enabled."""
    root = tmp_path / "terraform"
    for workspace in ORDER:
        (root / workspace).mkdir(parents=True)
        (root / workspace / "main.tf").write_text(CONTRACT if workspace in contract else "")
    return root


def _stack(tmp_path: Path, **kwargs: Any) -> Stack:
    return Stack(SETTINGS, tmp_path / "run", _root(tmp_path), **kwargs)


def _said(caplog: pytest.LogCaptureFixture) -> list[str]:
    """What the Stack logged (not the stand-ins)."""
    return [r.getMessage() for r in caplog.records if r.name == "lfharness.stack.stack"]


def _applied(fake: FakeTerraform, *workspaces: str) -> None:
    for workspace in workspaces:
        fake.resources[workspace] = [{"address": "random_id.this", "mode": "managed", "type": "random_id",
                                      "values": {"hex": "ab"}}]


# --- the teardown: order and what it reports -------------------------------------------------------

def test_teardown_destroys_every_applied_workspace_downstream_first(tmp_path, fake_tf):
    """FR27: 03-app, then 02-deps, then 01-network, and the Stack then holds nothing applied
    (fake Terraform runner)."""
    st = _stack(tmp_path)
    _applied(fake_tf, *ORDER)
    st.applied = list(ORDER)
    assert st.teardown() is None
    assert (fake_tf.commands("destroy"), st.applied) == (
        [("03-app", "destroy"), ("02-deps", "destroy"), ("01-network", "destroy")], [])


def test_teardown_destroys_only_the_workspaces_it_is_given(tmp_path, fake_tf):
    """FR27: `only` limits the teardown to those workspaces (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = list(ORDER)
    st.teardown(("02-deps",))
    assert fake_tf.commands("destroy") == [("02-deps", "destroy")]


def test_a_failed_destroy_is_reported_and_the_next_workspaces_are_still_destroyed(tmp_path, fake_tf):
    """FR27: 03-app's destroy fails; 02-deps and 01-network are still destroyed, and the teardown
    raises naming 03-app, the count, where the logs are and how to finish (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = list(ORDER)
    fake_tf.failures[("03-app", "destroy")] = ["Error: helm release stuck"]
    with pytest.raises(TeardownError) as err:
        st.teardown()
    message = str(err.value)
    assert fake_tf.commands("destroy") == [("03-app", "destroy"), ("02-deps", "destroy"), ("01-network", "destroy")]
    assert message.startswith(f"teardown left 1 problem(s) (logs in {tmp_path / 'run' / 'terraform'}); destroy "
                              "them by hand or re-run `python -m lfharness teardown`:\n03-app: ")
    assert message.endswith("Error: helm release stuck")


def test_a_workspace_whose_destroy_failed_stays_recorded_as_applied(tmp_path, fake_tf):
    """FR27: what could not be destroyed is still the Stack's to tear down; what was, is not
    (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = list(ORDER)
    fake_tf.failures[("02-deps", "destroy")] = ["Error: DependencyViolation"]
    with pytest.raises(TeardownError):
        st.teardown()
    assert st.applied == ["02-deps"]


def test_every_failed_workspace_is_listed_one_a_line(tmp_path, fake_tf):
    """FR27: two failures, two lines, counted (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = list(ORDER)
    fake_tf.failures[("03-app", "destroy")] = ["boom three"]
    fake_tf.failures[("01-network", "destroy")] = ["boom one"]
    with pytest.raises(TeardownError, match=r"teardown left 2 problem\(s\)") as err:
        st.teardown()
    lines = str(err.value).split("\n")
    assert [line.split(":")[0] for line in lines if line.startswith(("01-", "02-", "03-"))] == ["03-app", "01-network"]


def test_ctrl_c_during_a_destroy_ends_the_teardown(tmp_path, fake_tf):
    """Ctrl-C is not a failure to go on from: the teardown stops there, nothing after it destroyed
    (fake Terraform runner interrupted during 03-app's destroy)."""
    st = _stack(tmp_path)
    st.applied = list(ORDER)
    fake_tf.interrupt = {("03-app", "destroy")}
    with pytest.raises(KeyboardInterrupt):
        st.teardown()
    assert fake_tf.commands("destroy") == [("03-app", "destroy")]


def test_teardown_with_keep_stack_destroys_nothing_and_says_what_it_keeps(tmp_path, fake_tf, monkeypatch, caplog):
    """Terratest style: LFK8S_KEEP_STACK=1 keeps the stack, naming what stays (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = ["01-network", "02-deps"]
    monkeypatch.setenv(stack.KEEP_ENV, "1")
    with caplog.at_level(logging.WARNING):
        st.teardown_unless_kept()
    assert (fake_tf.commands("destroy"), "keeps 01-network, 02-deps" in caplog.text) == ([], True)


def test_teardown_unless_kept_destroys_without_the_keep_flag(tmp_path, fake_tf, monkeypatch):
    """Any other LFK8S_KEEP_STACK value tears the stack down (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = ["01-network"]
    monkeypatch.setenv(stack.KEEP_ENV, "true")
    st.teardown_unless_kept()
    assert fake_tf.commands("destroy") == [("01-network", "destroy")]


# --- the teardown's AWS side: PVC volumes, the sweep, what it deleted ---------------------------------

class FakeAws:
    """An AWS session as the Stack's teardown steps see it (stand-ins for aws_checks and pause below);
    EKS's DescribeCluster answers from `statuses` (None: ResourceNotFoundException, THROTTLED: a
    ThrottlingException, MALFORMED: an answer without its cluster), the last one repeated."""

    def __init__(self, steps: list[tuple[str, ...]], statuses: list[str | None] | None = None) -> None:
        self.steps = steps
        self.statuses = list(statuses or [None])

    def client(self, service: str) -> Any:
        assert service == "eks", service
        return self

    def describe_cluster(self, name: str) -> dict:
        status = self.statuses.pop(0) if len(self.statuses) > 1 else self.statuses[0]
        self.steps.append(("eks", name, str(status)))
        if status == "MALFORMED":
            return {}
        if status == "THROTTLED":
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded"}},
                              "DescribeCluster")
        if status is None:
            raise ClientError({"Error": {"Code": "ResourceNotFoundException", "Message": "No cluster found"}},
                              "DescribeCluster")
        return {"cluster": {"status": status}}


@dataclass
class AwsSide:
    """What the AWS stand-ins answer: PVC volumes per call, the sweep's result or error, the volumes
    deleted once 01-network is gone, the node security group release."""

    pvc: list[list[str]] = field(default_factory=lambda: [[]])
    sweep: aws_checks.Sweep | Exception = field(default_factory=lambda: aws_checks.Sweep(()))
    released: aws_checks.VolumeRelease = field(default_factory=aws_checks.VolumeRelease)
    enis: pause.EniReport = field(default_factory=pause.EniReport)
    sessions: list[Any] = field(default_factory=list)  # the session each AWS step was given
    sweep_options: dict[str, Any] = field(default_factory=dict)


@pytest.fixture
def aws_side(monkeypatch, fake_tf) -> AwsSide:
    side = AwsSide()

    def pvc_volumes(session: Any, namespace: str = "langfuse") -> list[str]:
        side.sessions.append(session)
        fake_tf.steps.append(("pvc volumes",))
        return side.pvc.pop(0) if len(side.pvc) > 1 else side.pvc[0]

    def sweep(session: Any, *tag: str, **kwargs: Any) -> aws_checks.Sweep:
        side.sessions.append(session)
        side.sweep_options = kwargs
        fake_tf.steps.append(("sweep", *tag, ",".join(kwargs["log_groups"])))
        if isinstance(side.sweep, Exception):
            raise side.sweep
        return side.sweep

    def delete_detached(session: Any, namespace: str = "langfuse") -> aws_checks.VolumeRelease:
        side.sessions.append(session)
        fake_tf.steps.append(("delete detached pvc volumes",))
        return side.released

    def release_group(session: Any, group: str, cluster: str) -> pause.EniReport:
        side.sessions.append(session)
        fake_tf.steps.append(("release node security group", group, cluster))
        return side.enis

    monkeypatch.setattr(aws_checks, "pvc_volumes", pvc_volumes)
    monkeypatch.setattr(aws_checks, "wait_for_clean_sweep", sweep)
    monkeypatch.setattr(aws_checks, "delete_detached_pvc_volumes", delete_detached)
    monkeypatch.setattr(pause, "release_node_security_group", release_group)
    return side


def _aws_stack(tmp_path: Path, fake: FakeTerraform, statuses: list[str | None] | None = None) -> Stack:
    return Stack(SETTINGS, tmp_path / "run", _root(tmp_path), aws=FakeAws(fake.steps, statuses), pvc_timeout=0.3,
                 sweep_timeout=0.3, poll_interval=0.05, cluster_settle_timeout=0.3)


def _destroys_and_aws(fake: FakeTerraform) -> list[tuple[str, ...]]:
    return [s for s in fake.steps if s[0] != "terraform" or s[2] == "destroy"]


def test_teardown_waits_for_pvc_volumes_after_03_app_and_sweeps_after_01_network(tmp_path, fake_tf, aws_side):
    """FR27, NFR8: the PVC volumes are checked right after 03-app's destroy (before 01-network takes
    the EBS CSI driver away), EKS is asked about the cluster before 01-network's destroy, detached
    PVC volumes are deleted after it, and the leftover sweep of the project tag and the two log
    groups ends the teardown (fake Terraform runner; AWS steps recorded by stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = list(ORDER)
    found = st.teardown()
    assert _destroys_and_aws(fake_tf) == [
        ("terraform", "03-app", "destroy"), ("pvc volumes",), ("terraform", "02-deps", "destroy"),
        ("eks", "langfuse", "None"), ("terraform", "01-network", "destroy"), ("eks", "langfuse", "None"),
        ("delete detached pvc volumes",),
        ("sweep", "Project", "langfuse-k8s-cluster", "/aws/eks/langfuse/cluster,/aws/rds/instance/langfuse/postgresql")]
    assert found is aws_side.sweep


def test_teardown_without_01_network_runs_no_sweep(tmp_path, fake_tf, aws_side):
    """NFR8: the sweep judges the whole account, so only a teardown that includes 01-network runs it
    by default (fake Terraform runner; AWS steps recorded by stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["02-deps"]
    assert st.teardown() is None
    assert not any(step[0] == "sweep" for step in fake_tf.steps)


def test_teardown_sweeps_when_told_even_without_01_network(tmp_path, fake_tf, aws_side):
    """NFR8: sweep=True runs the sweep whatever was destroyed (the teardown command's way)
    (fake Terraform runner; AWS steps recorded by stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.teardown((), sweep=True)
    assert [s[0] for s in fake_tf.steps] == ["sweep"]


def test_teardown_of_01_network_skips_the_sweep_when_told(tmp_path, fake_tf, aws_side):
    """sweep=False: no sweep even when 01-network is destroyed (fake Terraform runner; AWS stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert not any(step[0] == "sweep" for step in fake_tf.steps)


def test_a_sweep_that_finds_leftovers_fails_the_teardown_naming_them(tmp_path, fake_tf, aws_side):
    """NFR8: every workspace destroyed, yet an account still holding a tagged resource is no clean
    teardown (fake Terraform runner; the sweep stand-in raises as aws_checks does)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["01-network"]
    aws_side.sweep = aws_checks.CheckError("arn:aws:s3:::langfuse-storage-1 still tagged")
    with pytest.raises(TeardownError, match=r"1 problem\(s\)") as err:
        st.teardown()
    assert "leftover sweep: arn:aws:s3:::langfuse-storage-1 still tagged" in str(err.value)


def test_pvc_volumes_that_outlive_the_wait_fail_the_teardown_naming_the_namespace(tmp_path, fake_tf, aws_side):
    """FR27: PVC volumes still there after 03-app's destroy (and 01-network not part of it) are a
    problem the teardown raises, with how to delete them (fake Terraform runner; AWS stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["03-app"]
    aws_side.pvc = [["vol-0aaa"]]
    with pytest.raises(TeardownError) as err:
        st.teardown()
    assert "PVC volumes: " in str(err.value)
    assert "tag kubernetes.io/created-for/pvc/namespace=langfuse" in str(err.value)
    assert "vol-0aaa" in str(err.value).split("PVC volumes: ", 1)[1]
    assert ("once the cluster is gone nothing deletes them: `python -m lfharness teardown` deletes the detached ones "
            "after 01-network, or delete them by hand (EC2 console, Volumes, ") in str(err.value)


def test_pvc_volumes_that_go_within_the_wait_are_no_problem(tmp_path, fake_tf, aws_side):
    """FR27: volumes deleted by the CSI driver a little after 03-app's destroy: a clean teardown
    (fake Terraform runner; AWS stand-ins answering one volume, then none)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["03-app"]
    aws_side.pvc = [["vol-0aaa"], []]
    assert st.teardown() is None
    assert fake_tf.steps.count(("pvc volumes",)) == 2


def test_pvc_volumes_deleted_after_01_network_settle_the_earlier_wait(tmp_path, fake_tf, aws_side):
    """Issue 24 item 5: the volumes the PVC wait found are deleted once 01-network is gone: the
    teardown is clean and names what it deleted (fake Terraform runner; AWS stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = list(ORDER)
    aws_side.pvc = [["vol-0aaa"]]
    aws_side.released = aws_checks.VolumeRelease(deleted=["vol-0aaa"])
    st.teardown()
    assert st.cleaned_up == ["EBS volume vol-0aaa (a PVC's in namespace langfuse)"]


def test_pvc_volumes_that_could_not_be_deleted_after_01_network_fail_the_teardown(tmp_path, fake_tf, aws_side):
    """Issue 24 item 5: a volume still attached after 01-network's destroy is named, with where to
    delete it, and the ones deleted are listed in the error too (fake Terraform runner; AWS stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["01-network"]
    aws_side.released = aws_checks.VolumeRelease(deleted=["vol-0aaa", "vol-0fff"],
                                                 kept=["vol-0bbb (in-use)", "vol-0eee (creating)"])
    with pytest.raises(TeardownError) as err:
        st.teardown()
    message = str(err.value)
    assert ("PVC volumes of namespace langfuse left after 01-network's destroy and not deleted: vol-0bbb (in-use), "
            "vol-0eee (creating); delete them by hand once detached") in message
    assert message.endswith("\ndeleted on the way: EBS volume vol-0aaa (a PVC's in namespace langfuse), EBS volume "
                            "vol-0fff (a PVC's in namespace langfuse)")


def test_pvc_volumes_are_left_while_eks_still_lists_the_cluster(tmp_path, fake_tf, aws_side):
    """Issue 24 item 5: when EKS still lists the cluster after 01-network's destroy, its CSI driver may
    still delete the volumes: none is deleted, and those there are named (fake Terraform runner;
    EKS stand-in answering ACTIVE, then DELETING)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["ACTIVE", "DELETING"])
    st.applied = ["01-network"]
    aws_side.pvc = [["vol-0ccc", "vol-0ddd"]]
    with pytest.raises(TeardownError) as err:
        st.teardown()
    assert ("delete detached pvc volumes",) not in fake_tf.steps
    assert ("PVC volumes: vol-0ccc, vol-0ddd still there, and cluster langfuse is still DELETING: re-run `python -m "
            "lfharness teardown` once it is gone") in str(err.value)


def test_no_pvc_volume_left_while_eks_still_lists_the_cluster_is_no_problem(tmp_path, fake_tf, aws_side):
    """Issue 24 item 5: a cluster still listed but no PVC volume: nothing to report (fake Terraform
    runner; EKS stand-in answering DELETING)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["ACTIVE", "DELETING"])
    st.applied = ["01-network"]
    assert st.teardown(sweep=False) is None


def test_an_aws_error_looking_for_orphaned_volumes_fails_the_teardown(tmp_path, fake_tf, aws_side, monkeypatch,
                                                                      caplog):
    """Issue 24 item 5: not knowing is not clean: an AWS error while looking for the volumes is a
    problem raised at the end (fake Terraform runner; AWS stand-ins, the volume lookup refused)."""
    def refused(session: Any, namespace: str = "langfuse") -> aws_checks.VolumeRelease:
        raise ClientError({"Error": {"Code": "UnauthorizedOperation", "Message": "no"}}, "DescribeVolumes")
    monkeypatch.setattr(aws_checks, "delete_detached_pvc_volumes", refused)
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["01-network"]
    with caplog.at_level(logging.ERROR), pytest.raises(
            TeardownError, match="PVC volumes: could not look for or delete them after 01-network's "
                                 "destroy: .*UnauthorizedOperation"):
        st.teardown(sweep=False)
    assert _said(caplog) == ["teardown: could not look for orphaned PVC volumes: An error occurred "
                             "(UnauthorizedOperation) when calling the DescribeVolumes operation: no"]


# --- 01-network's destroy: a settling cluster, the node security group -------------------------------

def test_01_network_waits_for_a_creating_cluster_then_destroys(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: EKS refuses to delete a CREATING cluster; the teardown waits until it is
    ACTIVE, then destroys (fake Terraform runner; EKS stand-in answering CREATING twice, then ACTIVE)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["CREATING", "CREATING", "ACTIVE", None])
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert _destroys_and_aws(fake_tf)[:4] == [("eks", "langfuse", "CREATING"), ("eks", "langfuse", "CREATING"),
                                               ("eks", "langfuse", "ACTIVE"), ("terraform", "01-network", "destroy")]


def test_01_network_waits_for_an_updating_cluster_too(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: UPDATING is waited out like CREATING (fake Terraform runner; EKS stand-in)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["UPDATING", "FAILED", None])
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert _destroys_and_aws(fake_tf)[:3] == [("eks", "langfuse", "UPDATING"), ("eks", "langfuse", "FAILED"),
                                               ("terraform", "01-network", "destroy")]


def test_a_cluster_that_never_settles_is_reported_and_01_network_not_destroyed(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: still CREATING after the wait: 01-network is not destroyed, and the error
    names the status, the wait and the command that tells when to re-run (fake Terraform runner;
    EKS stand-in answering CREATING)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["CREATING"])
    st.applied = ["01-network"]
    with pytest.raises(TeardownError) as err:
        st.teardown(sweep=False)
    assert fake_tf.commands("destroy") == []
    assert ("EKS cluster langfuse is still CREATING after 0.3s of waiting, and EKS refuses to delete a cluster in "
            "that status, so 01-network was not destroyed; re-run `python -m lfharness teardown` once `aws eks "
            "describe-cluster --name langfuse` shows ACTIVE or FAILED") in str(err.value)


def test_the_settle_wait_asks_eks_about_the_cluster_01_network_names(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: the cluster asked about is the one 01-network's outputs name (fake
    Terraform runner; EKS stand-in)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"cluster_name": ("langfuse-blue", False)}
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert [s for s in fake_tf.steps if s[0] == "eks"] == [("eks", "langfuse-blue", "None")] * 2


def test_an_unreadable_01_network_assumes_the_default_cluster_and_still_destroys(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: 01-network's outputs unreadable: the cluster is assumed to be `langfuse`,
    and 01-network is destroyed all the same (fake Terraform runner; EKS stand-in)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.output_stderr["01-network"] = "Error: connection refused"
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert (fake_tf.commands("destroy"), [s for s in fake_tf.steps if s[0] == "eks"][0]) == (
        [("01-network", "destroy")], ("eks", "langfuse", "None"))


def test_a_01_network_refused_for_cni_interfaces_is_released_and_destroyed_again(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: the first destroy fails on the node security group; its detached VPC CNI
    interfaces are deleted and 01-network destroyed once more, clean, the interfaces listed as
    cleaned up (fake Terraform runner; the release stand-in reports one deleted interface)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False), "cluster_name": ("langfuse", False)}
    fake_tf.failures[("01-network", "destroy")] = ["DependencyViolation: sg-0123"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa"])
    st.applied = ["01-network"]
    st.teardown(sweep=False)
    assert (fake_tf.commands("destroy"), ("release node security group", "sg-0123", "langfuse") in fake_tf.steps,
            st.cleaned_up) == ([("01-network", "destroy")] * 2, True,
                               ["network interface eni-0aaa (a detached VPC CNI interface in the node security "
                                "group sg-0123)"])


def test_a_01_network_that_fails_again_names_the_interfaces_left_alone(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: released, destroyed again, refused again: the error holds the second failure
    and the other interfaces in the group, to delete by hand (fake Terraform runner; release stand-in
    with one deleted and one kept)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["first refusal", "second refusal"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa"], kept=["eni-0bbb (in-use, i-1, 'ELB')"])
    st.applied = ["01-network"]
    with pytest.raises(TeardownError) as err:
        st.teardown(sweep=False)
    message = str(err.value)
    assert "second refusal" in message
    assert ("; the node security group sg-0123 is also used by network interfaces that are not detached VPC CNI "
            "leftovers, left alone: eni-0bbb (in-use, i-1, 'ELB')") in message
    assert "network interface eni-0aaa" in message.split("deleted on the way: ")[1]


def test_a_01_network_that_fails_again_without_other_interfaces_reports_the_failure(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: released, refused again, no other interface: the second failure is raised
    (fake Terraform runner; release stand-in with one deleted)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["first refusal", "second refusal"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa"])
    st.applied = ["01-network"]
    with pytest.raises(TeardownError, match="(?s)01-network: .*second refusal") as err:
        st.teardown(sweep=False)
    assert "left alone" not in str(err.value)


def test_a_01_network_held_only_by_other_interfaces_is_not_destroyed_again(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: nothing to release but other interfaces: one destroy, the error names them
    (fake Terraform runner; release stand-in with one kept)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["first refusal"]
    aws_side.enis = pause.EniReport(kept=["eni-0bbb (in-use, i-1, 'ELB')"])
    st.applied = ["01-network"]
    with pytest.raises(TeardownError, match="first refusal; the node security group sg-0123 is also used"):
        st.teardown(sweep=False)
    assert fake_tf.commands("destroy") == [("01-network", "destroy")]


def test_a_01_network_refused_with_nothing_in_its_group_reports_the_refusal(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: nothing released, nothing else there: the destroy's own failure, once (fake
    Terraform runner; release stand-in finding nothing)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["first refusal"]
    st.applied = ["01-network"]
    with pytest.raises(TeardownError, match="(?s)01-network: .*first refusal") as err:
        st.teardown(sweep=False)
    assert (fake_tf.commands("destroy"), "also used" in str(err.value)) == ([("01-network", "destroy")], False)


def test_a_01_network_refused_without_a_known_group_is_not_released(tmp_path, fake_tf, aws_side):
    """Issue 24 item 4: no node security group in 01-network's outputs: nothing to release, the
    failure reported (fake Terraform runner; release stand-in)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.failures[("01-network", "destroy")] = ["first refusal"]
    st.applied = ["01-network"]
    with pytest.raises(TeardownError, match="first refusal"):
        st.teardown(sweep=False)
    assert not any(s[0] == "release node security group" for s in fake_tf.steps)


# --- secrets: learned before a command can print them, masked in what is reported -------------------

def _secret_state(secret: str) -> list[dict[str, Any]]:
    return [{"address": "random_password.db", "mode": "managed", "type": "random_password",
             "values": {"result": secret}, "sensitive_values": {"result": True}}]


@pytest.mark.parametrize("command", ["plan", "destroy"])
def test_a_state_secret_is_masked_before_a_command_that_prints_the_state_runs(tmp_path, fake_tf, command):
    """NFR1: plan and destroy print the state's old values; the state's secrets are known to the
    redactor before they run (fake Terraform runner holding a random_password in the state)."""
    st = _stack(tmp_path)
    fake_tf.resources["02-deps"] = _secret_state(STATE_SECRET)
    fake_tf.probe = (STATE_SECRET,)
    st.plan_has_changes("02-deps") if command == "plan" else st.destroy("02-deps", variables={})
    run = [c for c in fake_tf.calls if c.sub == command][0]
    assert run.hidden == {STATE_SECRET: True}


def test_an_apply_learns_the_secrets_it_created_before_its_log_is_written(tmp_path, fake_tf):
    """NFR1: an apply creates secrets (random_password); they are learned once Terraform exits, before
    its log and errors are written (fake Terraform runner; the secret appears with the apply)."""
    st = _stack(tmp_path)
    fake_tf.probe = (STATE_SECRET,)
    original = fake_tf._answer

    def creating(workspace: str, sub: str, args: list[str]) -> tuple[int, str, str]:
        if sub == "apply":
            fake_tf.resources[workspace] = _secret_state(STATE_SECRET)
        return original(workspace, sub, args)
    fake_tf._answer = creating  # type: ignore[method-assign]
    st.apply("02-deps")
    assert ([c.learns_after for c in fake_tf.calls if c.sub in ("apply", "plan", "output")],
            st.redactor.knows(STATE_SECRET)) == ([True], True)


def test_a_plan_does_not_relearn_after_it_runs(tmp_path, fake_tf):
    """NFR1: only an apply writes new secrets; a plan's log needs no second reading of the state
    (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.plan_has_changes("02-deps")
    assert [c.learns_after for c in fake_tf.calls if c.sub == "plan"] == [False]


@pytest.mark.parametrize("command", ["init", "output"])
def test_commands_that_print_no_state_values_do_not_read_the_state_first(tmp_path, fake_tf, command):
    """NFR1 without waste: init and output print no old values, so no `show -json` (a Terraform run
    starting every provider) precedes them (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.init("02-deps") if command == "init" else st.outputs("02-deps")
    assert fake_tf.commands() == [("02-deps", command)]


def test_the_state_is_read_with_show_json_into_the_run_folder(tmp_path, fake_tf):
    """NFR1: the state is read with `show -json -no-color` in the workspace, its run log in the run
    folder (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.plan_has_changes("02-deps")
    show = fake_tf.calls[0]
    assert (show.args, show.workspace, show.log_dir) == (["show", "-json", "-no-color"], "02-deps",
                                                         tmp_path / "run" / "terraform")


def test_the_state_is_read_with_the_stacks_credentials_and_its_log_masked(tmp_path, fake_tf):
    """NFR1: `show` reaches the state with the Stack's environment (the Terraform Cloud token) and
    its own log and errors are masked like every other command's (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.probe = (SETTINGS.tfe_token,)
    st.plan_has_changes("02-deps")
    show = fake_tf.calls[0]
    assert (show.sub, show.env, show.hidden) == ("show", st.env, {SETTINGS.tfe_token: True})


def test_learning_a_state_logs_how_many_secrets_it_holds(tmp_path, fake_tf, caplog):
    """NFR1: the debug log counts the secret values a state gave (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["02-deps"] = _secret_state(STATE_SECRET)
    with caplog.at_level(logging.DEBUG, logger="lfharness.stack.stack"):
        st.plan_has_changes("02-deps")
    assert any(re.fullmatch(r"02-deps: [1-9]\d* secret value\(s\) known from the state", m) for m in _said(caplog))


def test_an_unreadable_state_is_logged_with_the_reason(tmp_path, fake_tf, caplog):
    """NFR1: the warning names the workspace and Terraform's reason (fake Terraform runner failing
    `show`)."""
    st = _stack(tmp_path)
    fake_tf.failures[("02-deps", "show")] = ["Error: state locked"]
    with caplog.at_level(logging.WARNING):
        st.plan_has_changes("02-deps")
    assert _said(caplog) == ["could not read the 02-deps state to learn its secrets, so the next run log may hold some "
                             f"the harness has not seen yet: terraform show -json -no-color in "
                             f"{st.terraform_dir / '02-deps'} exited 1:\nError: state locked"]


def test_a_state_show_prints_nothing_for_holds_no_secret_and_no_warning(tmp_path, fake_tf, caplog):
    """NFR1: an empty `show -json` (nothing to show) is no risk: no warning, and not read again
    (fake Terraform runner printing nothing for `show`)."""
    st = _stack(tmp_path)
    original = fake_tf._answer

    def silent(workspace: str, sub: str, args: list[str]) -> tuple[int, str, str]:
        return (0, "", "") if sub == "show" else original(workspace, sub, args)
    fake_tf._answer = silent  # type: ignore[method-assign]
    with caplog.at_level(logging.WARNING):
        st.plan_has_changes("02-deps")
        st.plan_has_changes("02-deps")
    assert (_said(caplog), len(fake_tf.commands("show"))) == ([], 1)


def test_an_unreadable_state_is_warned_about_and_the_command_still_runs(tmp_path, fake_tf, caplog):
    """NFR1: a state that cannot be read (show fails) is logged as a risk, not a failure: the plan
    still runs (fake Terraform runner failing `show`)."""
    st = _stack(tmp_path)
    fake_tf.failures[("02-deps", "show")] = ["Error: state locked"]
    with caplog.at_level(logging.WARNING):
        st.plan_has_changes("02-deps")
    assert (fake_tf.commands("plan"), "could not read the 02-deps state to learn its secrets" in caplog.text) == (
        [("02-deps", "plan")], True)


def test_a_failed_state_reading_is_tried_again_before_the_next_command(tmp_path, fake_tf):
    """NFR1: a state that could not be read is not remembered as learned (fake Terraform runner, local
    state file; `show` fails once)."""
    st = _stack(tmp_path)
    (st.terraform_dir / "02-deps" / "terraform.tfstate").write_text("{}")
    fake_tf.failures[("02-deps", "show")] = ["Error: busy"]
    st.plan_has_changes("02-deps")
    st.plan_has_changes("02-deps")
    assert fake_tf.commands("show") == [("02-deps", "show")] * 2


def test_an_unchanged_local_state_is_read_once_a_changed_one_again(tmp_path, fake_tf):
    """NFR1 without waste: a local state file read once is not read again until it changes (fake
    Terraform runner; the local state file written by the test)."""
    st = _stack(tmp_path)
    state = st.terraform_dir / "02-deps" / "terraform.tfstate"
    state.write_text('{"serial": 1}')
    st.plan_has_changes("02-deps")
    st.plan_has_changes("02-deps")
    state.write_text('{"serial": 2}')
    st.plan_has_changes("02-deps")
    assert len(fake_tf.commands("show")) == 2


def test_a_missing_local_state_is_read_once(tmp_path, fake_tf):
    """NFR1 without waste: a local-backend workspace with no state file yet is read once (fake
    Terraform runner)."""
    st = _stack(tmp_path)
    st.plan_has_changes("02-deps")
    st.plan_has_changes("02-deps")
    assert len(fake_tf.commands("show")) == 1


@pytest.mark.parametrize("backend", [
    {"backend": {"type": "cloud", "config": {}}},
    {"backend": {"type": "local", "config": {"path": "elsewhere.tfstate"}}},
    {"backend": {"type": "local", "config": {"workspace_dir": "states"}}},
], ids=["cloud", "local elsewhere", "local workspace dir"])
def test_a_state_kept_elsewhere_is_read_before_every_command(tmp_path, fake_tf, backend):
    """NFR1: Terraform Cloud's state (or a local one at another path) may change behind the Stack:
    read every time (fake Terraform runner; the backend in .terraform/terraform.tfstate)."""
    st = _stack(tmp_path)
    (st.terraform_dir / "02-deps" / ".terraform").mkdir()
    (st.terraform_dir / "02-deps" / ".terraform" / "terraform.tfstate").write_text(json.dumps(backend))
    st.plan_has_changes("02-deps")
    st.plan_has_changes("02-deps")
    assert len(fake_tf.commands("show")) == 2


@pytest.mark.parametrize("selected", ["default\n", ""])
def test_a_local_backend_at_the_default_path_is_read_once(tmp_path, fake_tf, selected):
    """NFR1 without waste: `.terraform` naming the local backend, default path and workspace: one
    reading (fake Terraform runner)."""
    st = _stack(tmp_path)
    (st.terraform_dir / "02-deps" / ".terraform").mkdir()
    (st.terraform_dir / "02-deps" / ".terraform" / "terraform.tfstate").write_text(
        json.dumps({"backend": {"type": "local", "config": {"path": None}}}))
    (st.terraform_dir / "02-deps" / ".terraform" / "environment").write_text(selected)
    for _ in range(2):
        st.plan_has_changes("02-deps")
    assert len(fake_tf.commands("show")) == 1


@pytest.mark.parametrize("setting", [("environment", "blue"), ("env", "TF_WORKSPACE"), ("env", "TF_DATA_DIR"),
                                     ("backend", "not json")])
def test_a_state_the_stack_cannot_place_is_read_before_every_command(tmp_path, fake_tf, setting):
    """NFR1: another Terraform workspace, TF_WORKSPACE, TF_DATA_DIR or an unreadable backend file:
    the state file is not guessed at, the state read every time (fake Terraform runner)."""
    kind, value = setting
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), {value: "x"} if kind == "env" else None)
    data = st.terraform_dir / "02-deps" / ".terraform"
    data.mkdir()
    if kind == "environment":
        (data / "environment").write_text(value)
    if kind == "backend":
        (data / "terraform.tfstate").write_text(value)
    for _ in range(2):
        st.plan_has_changes("02-deps")
    assert len(fake_tf.commands("show")) == 2


def test_03_app_knows_02_deps_secrets_from_terraform_cloud_before_its_plan(tmp_path, fake_tf, tfc_fake):
    """NFR1, issue 26: 03-app's state holds none of 02-deps' secrets, yet its providers get them: they
    are read from 02-deps' outputs in Terraform Cloud and masked before 03-app's plan runs; the
    non-sensitive ones are not (local Terraform Cloud fake; fake Terraform runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.set_outputs("langfuse-deps", {"rds_password": (RDS_PASSWORD, True), "s3_bucket_name": (BUCKET, False)})
    st = _stack(tmp_path, tfc=client)
    fake_tf.probe = (RDS_PASSWORD, BUCKET)
    st.plan_has_changes("03-app")
    assert [c.hidden for c in fake_tf.calls if c.sub == "plan"] == [{RDS_PASSWORD: True, BUCKET: False}]


def test_an_upstream_with_a_local_state_is_learned_from_that_state(tmp_path, fake_tf):
    """NFR1, issue 26: a rehearsal's 02-deps keeps its state locally: 03-app's plan learns 02-deps'
    state secrets from it (fake Terraform runner; local state files)."""
    st = _stack(tmp_path)
    (st.terraform_dir / "02-deps" / "terraform.tfstate").write_text('{"serial": 1}')
    fake_tf.resources["02-deps"] = _secret_state(RDS_PASSWORD)
    fake_tf.probe = (RDS_PASSWORD,)
    st.plan_has_changes("03-app")
    assert ([c.workspace for c in fake_tf.calls if c.sub == "show"],
            [c.hidden for c in fake_tf.calls if c.sub == "plan"]) == (["03-app", "02-deps"], [{RDS_PASSWORD: True}])


def test_an_upstream_without_secrets_is_not_asked(tmp_path, fake_tf, tfc_fake):
    """Issue 26: 01-network publishes no secret, so 02-deps' plan asks Terraform Cloud nothing about it
    (local Terraform Cloud fake, recording its calls; fake Terraform runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-network")
    st = _stack(tmp_path, tfc=client)
    st.plan_has_changes("02-deps")
    assert [c for c in fake.calls() if "langfuse-network" in c[1] or "outputs" in c[1]] == []


def test_unreadable_upstream_outputs_are_warned_about_and_the_plan_still_runs(tmp_path, fake_tf, tfc_fake, caplog):
    """NFR1: Terraform Cloud refusing 02-deps' outputs is a logged risk, not a failure (local
    Terraform Cloud fake without the workspace; fake Terraform runner)."""
    _, client = tfc_fake
    st = _stack(tmp_path, tfc=client)
    with caplog.at_level(logging.WARNING):
        st.plan_has_changes("03-app")
    with pytest.raises(TfcError) as refusal:
        client.outputs("langfuse-deps", reveal_sensitive=True)
    assert (fake_tf.commands("plan"), _said(caplog)) == ([("03-app", "plan")], [
        "could not read langfuse-deps's outputs to learn their secrets, so a run log of 03-app may hold some the "
        f"harness has not seen: {refusal.value}"])


def test_an_upstream_kept_in_terraform_cloud_is_asked_with_the_settings_token(tmp_path, fake_tf, tfc_fake,
                                                                              monkeypatch):
    """NFR1, issue 26: a Stack given no client still learns 02-deps' secrets when 02-deps' backend is
    Terraform Cloud, with a client made from the .env (local Terraform Cloud fake standing in for the
    client the settings make; fake Terraform runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.set_outputs("langfuse-deps", {"rds_password": (RDS_PASSWORD, True)})
    made: list[tuple[str, str]] = []
    monkeypatch.setattr(stack, "TfcClient", lambda token, organization: made.append((token, organization)) or client)
    st = _stack(tmp_path)
    (st.terraform_dir / "02-deps" / ".terraform").mkdir()
    (st.terraform_dir / "02-deps" / ".terraform" / "terraform.tfstate").write_text(
        json.dumps({"backend": {"type": "cloud"}}))
    fake_tf.probe = (RDS_PASSWORD,)
    st.plan_has_changes("03-app")
    assert ([c.hidden for c in fake_tf.calls if c.sub == "plan"], made) == (
        [{RDS_PASSWORD: True}], [(SETTINGS.tfe_token, SETTINGS.tfc_organization)])


def test_an_upstream_folder_absent_here_is_asked_through_the_given_client(tmp_path, fake_tf, tfc_fake):
    """NFR1, issue 26: a Stack of 03-app alone (no 02-deps folder) still learns 02-deps' secrets from
    Terraform Cloud (local Terraform Cloud fake; fake Terraform runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.set_outputs("langfuse-deps", {"rds_password": (RDS_PASSWORD, True)})
    root = tmp_path / "terraform"
    (root / "03-app").mkdir(parents=True)
    st = Stack(SETTINGS, tmp_path / "run", root, tfc=client)
    fake_tf.probe = (RDS_PASSWORD,)
    st.plan_has_changes("03-app")
    assert [c.hidden for c in fake_tf.calls if c.sub == "plan"] == [{RDS_PASSWORD: True}]


def test_an_upstream_absent_here_without_a_client_is_skipped(tmp_path, fake_tf):
    """Issue 26: no 02-deps folder and no Terraform Cloud client: nothing to ask, the plan runs
    (fake Terraform runner)."""
    root = tmp_path / "terraform"
    (root / "03-app").mkdir(parents=True)
    st = Stack(SETTINGS, tmp_path / "run", root)
    assert st.plan_has_changes("03-app") is False


def test_the_env_files_secrets_are_masked_from_the_start(tmp_path, fake_tf):
    """NFR1: the .env's secrets (the Terraform Cloud token among them) are masked in the first
    command already, and the environment handed to Terraform shows them masked in a repr (fake
    Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.probe = (SETTINGS.tfe_token, SETTINGS.aws_secret_access_key)
    st.init("01-network")
    assert fake_tf.calls[0].hidden == {SETTINGS.tfe_token: True, SETTINGS.aws_secret_access_key: True}
    assert SETTINGS.tfe_token not in repr(st.env)
    assert st.env["TFE_TOKEN"] == SETTINGS.tfe_token


def test_the_stack_masks_with_the_redactor_it_is_given(tmp_path, fake_tf):
    """NFR1: the session's redactor (pytest's) is the one that learns (fake Terraform runner)."""
    shared = redact.Redactor()
    st = _stack(tmp_path, redactor=shared)
    fake_tf.outputs["02-deps"] = {"rds_password": (RDS_PASSWORD, True)}
    st.outputs("02-deps")
    assert (st.redactor is shared, shared.knows(RDS_PASSWORD), shared.knows(SETTINGS.tfe_token)) == (True, True, True)


def test_terraform_runs_with_this_pythons_bin_first_on_its_path(tmp_path, fake_tf, monkeypatch):
    """Decision 21: 03-app's providers run `aws eks get-token`; the set-up's `aws` next to this Python
    comes first, the caller's PATH after it; extra variables reach Terraform (fake Terraform runner)."""
    monkeypatch.setenv("PATH", "/opt/caller/bin")
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), {"TF_CLI_CONFIG_FILE": "/tmp/x.rc"})
    st.init("01-network")
    env = fake_tf.calls[0].env
    assert (env["PATH"].split(os.pathsep), env["TF_CLI_CONFIG_FILE"], env["TFE_TOKEN"]) == (
        [str(Path(sys.executable).parent), "/opt/caller/bin"], "/tmp/x.rc", SETTINGS.tfe_token)


# --- outputs -----------------------------------------------------------------------------------

def test_sensitive_outputs_are_learned_and_come_back_masked_in_reprs(tmp_path, fake_tf):
    """NFR1: a sensitive output is known to the redactor once read and its string is a Secret; a
    plain one is neither (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.outputs["02-deps"] = {"rds_password": (RDS_PASSWORD, True), "s3_bucket_name": (BUCKET, False)}
    read = st.outputs("02-deps")
    assert (read, RDS_PASSWORD in repr(read), st.redactor.knows(BUCKET)) == (
        {"rds_password": RDS_PASSWORD, "s3_bucket_name": BUCKET}, False, False)


def test_a_workspace_without_a_state_in_terraform_cloud_has_no_outputs(tmp_path, fake_tf):
    """Terraform Cloud's 404 for a workspace with no state version yet means no outputs, not a
    failure, however Terraform wraps the line (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.output_stderr["02-deps"] = ("Error: Error loading state: could not read state version outputs:\n"
                                        "resource   not found")
    assert st.outputs("02-deps") == {}


def test_a_failed_output_reading_is_raised_with_terraforms_words_masked(tmp_path, fake_tf):
    """NFR1: any other failure of `output -json` is raised with what Terraform said, secrets masked
    (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.redactor.add(RDS_PASSWORD)
    fake_tf.output_stderr["02-deps"] = f"Error: token rejected near {RDS_PASSWORD}"
    with pytest.raises(tf.TerraformError) as err:
        st.outputs("02-deps")
    assert str(err.value).startswith("terraform output -json in 02-deps failed:\nError: token rejected near ")
    assert RDS_PASSWORD not in str(err.value)


def test_output_errors_are_treated_as_errors_only_past_exit_1(tmp_path, fake_tf):
    """`output -json` exiting 2 is a failure of the command itself (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.exit_codes[("02-deps", "output")] = 2
    with pytest.raises(tf.TerraformError):
        st.outputs("02-deps")


def test_state_addresses_lists_the_state_and_none_without_one(tmp_path, fake_tf):
    """A workspace with no state holds no address; one with a state lists them (fake Terraform runner)."""
    st = _stack(tmp_path)
    _applied(fake_tf, "02-deps")
    assert (st.state_addresses("01-network"), st.state_addresses("02-deps")) == ([], ["random_id.this"])


def test_a_failed_state_list_is_raised(tmp_path, fake_tf):
    """`state list` failing for another reason than a missing state is an error, with Terraform's
    words (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.failures[("02-deps", "state list")] = ["Error: backend unreachable"]
    fake_tf.exit_codes[("02-deps", "state list")] = 1
    with pytest.raises(tf.TerraformError, match="terraform state list in 02-deps failed:\nError: backend unreachable"):
        st.state_addresses("02-deps")


# --- apply, plan, destroy, rebuild --------------------------------------------------------------

def test_apply_initialises_once_and_passes_sorted_variables_and_the_lock_timeout(tmp_path, fake_tf):
    """Run logs compare: the variables in a stable order; a lock held by a Terraform that outlived
    its parent is waited for (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.apply("02-deps", variables={"zeta": "1", "alpha": "2"})
    st.apply("02-deps")
    assert [c.args for c in fake_tf.calls if c.sub in ("init", "apply")] == [
        ["init", "-input=false", "-no-color"],
        ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=20m", "-var=alpha=2", "-var=zeta=1"],
        ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=20m"]]


def test_a_failed_apply_is_still_recorded_for_the_teardown(tmp_path, fake_tf):
    """Terratest style: a half-applied workspace still needs its teardown, once (fake Terraform runner
    failing the apply)."""
    st = _stack(tmp_path)
    fake_tf.failures[("01-network", "apply")] = ["Error: quota"]
    with pytest.raises(tf.TerraformError):
        st.apply("01-network")
    st.apply("01-network")
    assert st.applied == ["01-network"]


def test_plan_has_changes_is_exit_code_2(tmp_path, fake_tf):
    """FR29: exit 2 of `plan -detailed-exitcode` means changes, 0 none, 1 a failure (fake Terraform
    runner)."""
    st = _stack(tmp_path)
    fake_tf.exit_codes[("02-deps", "plan")] = 2
    fake_tf.exit_codes[("03-app", "plan")] = 1
    assert (st.plan_has_changes("01-network"), st.plan_has_changes("02-deps")) == (False, True)
    with pytest.raises(tf.TerraformError):
        st.plan_has_changes("03-app")
    assert fake_tf.last("plan")[:2] == ["plan", "-detailed-exitcode"]


def test_a_failed_destroy_keeps_the_workspace_recorded(tmp_path, fake_tf):
    """FR27: only a destroy that succeeded takes a workspace off the Stack's list (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = ["02-deps"]
    fake_tf.failures[("02-deps", "destroy")] = ["Error: timeout"]
    with pytest.raises(tf.TerraformError):
        st.destroy("02-deps", variables={})
    assert st.applied == ["02-deps"]


def test_destroy_of_a_workspace_not_applied_here_is_fine(tmp_path, fake_tf):
    """The teardown command destroys workspaces an earlier run applied (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.destroy("02-deps", variables={"cluster_enabled": "false"})
    assert fake_tf.last("destroy") == ["destroy", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=20m",
                                      "-var=cluster_enabled=false"]


@pytest.mark.parametrize(("workspace", "quiesced"), [("03-app", True), ("02-deps", False)])
def test_rebuild_quiesces_only_the_workspace_in_the_cluster_before_its_destroy(tmp_path, fake_tf, workspace,
                                                                               quiesced):
    """FR28: 03-app's rebuild first lets ClickHouse write what Langfuse accepted, then destroys and
    applies again; 02-deps' needs no quiesce (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.rebuild(workspace, lambda: fake_tf.steps.append(("quiesce",)))
    steps = [s for s in fake_tf.steps if s[0] == "quiesce" or s[2] in ("destroy", "apply")]
    assert steps == ([("quiesce",)] if quiesced else []) + [("terraform", workspace, "destroy"),
                                                             ("terraform", workspace, "apply")]


def _stale_secret(address: str = "kubernetes_secret_v1.langfuse") -> dict[str, Any]:
    return {"address": address, "mode": "managed", "type": "kubernetes_secret_v1",
            "values": {"data": {"salt": STATE_SECRET}}}


def test_an_apply_replaces_a_secret_still_holding_values_from_before_write_only(tmp_path, fake_tf, caplog):
    """Issue 26: 03-app's Secret written before its values went write-only keeps them in its state
    until replaced: the apply replaces it once, saying why (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["03-app"] = [_stale_secret()]
    with caplog.at_level(logging.INFO):
        st.apply("03-app")
    assert fake_tf.last("apply")[-1] == "-replace=kubernetes_secret_v1.langfuse"
    assert "03-app: kubernetes_secret_v1.langfuse still holds secret values in its state" in caplog.text


def test_an_apply_that_pauses_the_cluster_side_replaces_nothing(tmp_path, fake_tf):
    """Issue 26: cluster_enabled=false removes the Secret anyway: no -replace (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["03-app"] = [_stale_secret()]
    st.apply("03-app", variables={"cluster_enabled": "false"})
    assert not any(a.startswith("-replace") for a in fake_tf.last("apply"))


def test_an_apply_of_a_clean_secret_replaces_nothing(tmp_path, fake_tf):
    """Issue 26: a Secret whose state holds no data (written write-only) is left in place (fake
    Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["03-app"] = [{**_stale_secret(), "values": {"data": None}}]
    st.apply("03-app")
    assert not any(a.startswith("-replace") for a in fake_tf.last("apply"))


def test_stale_secret_addresses_names_only_managed_secrets_holding_data():
    """Issue 26: only a managed kubernetes_secret_v1 with data in its state is stale; a data source
    or another type is not; the addresses come sorted."""
    state = {"values": {"root_module": {"resources": [
        _stale_secret("kubernetes_secret_v1.z"), _stale_secret("kubernetes_secret_v1.a"),
        {**_stale_secret("data.kubernetes_secret_v1.read"), "mode": "data"},
        {**_stale_secret("kubernetes_config_map_v1.c"), "type": "kubernetes_config_map_v1"},
        {"address": "kubernetes_secret_v1.empty", "mode": "managed", "type": "kubernetes_secret_v1"}]}}}
    assert stack.stale_secret_addresses(state) == ["kubernetes_secret_v1.a", "kubernetes_secret_v1.z"]


def test_stale_secret_addresses_of_an_empty_state_is_none():
    """Issue 26: no state, nothing stale."""
    assert (stack.stale_secret_addresses({}), stack.stale_secret_addresses({"values": None})) == ([], [])


# --- the cluster_enabled of a destroy ---------------------------------------------------------------

def _contract_stack(tmp_path: Path) -> Stack:
    return Stack(SETTINGS, tmp_path / "run", _root(tmp_path, contract=tuple(ORDER)))


@pytest.mark.parametrize(("network", "deps", "expected"), [
    ({"cluster_name": ("langfuse", False), "cluster_endpoint": ("https://x", False)},
     {"irsa_role_arn": ("arn:role", False)}, "true"),
    ({"cluster_name": ("", False)}, {"irsa_role_arn": ("arn:role", False)}, "false"),
    ({"cluster_name": ("langfuse", False), "cluster_endpoint": ("https://x", False)}, {}, "false"),
], ids=["running", "cluster gone", "own part paused"])
def test_02_deps_is_destroyed_with_the_cluster_enabled_it_stands_in(tmp_path, fake_tf, network, deps, expected):
    """Decision 22: a destroy plans with cluster_enabled=true only while the workspace's own
    cluster-side output is there and 01-network still has a cluster (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs.update({"01-network": network, "02-deps": deps})
    st.destroy("02-deps")
    assert fake_tf.last("destroy")[-1] == f"-var=cluster_enabled={expected}"


@pytest.mark.parametrize(("outputs", "expected"), [({"cluster_name": ("langfuse", False)}, "true"),
                                                   ({"cluster_name": ("", False)}, "false")])
def test_01_network_is_destroyed_with_the_cluster_enabled_its_outputs_show(tmp_path, fake_tf, outputs, expected):
    """Decision 22: 01-network's own cluster_name says whether its cluster exists (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs["01-network"] = outputs
    st.destroy("01-network")
    assert fake_tf.last("destroy")[-1] == f"-var=cluster_enabled={expected}"


def test_a_workspace_without_cluster_enabled_is_destroyed_without_variables(tmp_path, fake_tf):
    """Decision 22: a workspace that declares no cluster_enabled gets none (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.destroy("02-deps")
    assert fake_tf.last("destroy") == ["destroy", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=20m"]


def test_a_workspace_alone_goes_by_its_own_outputs(tmp_path, fake_tf, caplog):
    """Decision 22: with no 01-network folder here, 02-deps' own output decides, and the log says so
    (fake Terraform runner)."""
    root = tmp_path / "terraform"
    (root / "02-deps").mkdir(parents=True)
    (root / "02-deps" / "main.tf").write_text(CONTRACT)
    st = Stack(SETTINGS, tmp_path / "run", root)
    fake_tf.outputs["02-deps"] = {"irsa_role_arn": ("arn:role", False)}
    with caplog.at_level(logging.INFO):
        st.destroy("02-deps")
    assert (fake_tf.last("destroy")[-1], st.cluster_exists()) == ("-var=cluster_enabled=true", None)
    assert "02-deps: cluster_enabled=true for its destroy (irsa_role_arn output present, 01-network not here)" \
        in caplog.text


def test_03_app_whose_cluster_is_gone_forgets_its_kubernetes_side_before_its_destroy(tmp_path, fake_tf, caplog):
    """Decision 22: the cluster that held 03-app's helm_ and kubernetes_ resources is gone: they are
    removed from the state without deleting anything (nothing to reach), the rest destroyed with
    cluster_enabled=false (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs.update({"01-network": {"cluster_name": ("", False)}, "03-app": {"namespace": ("langfuse", False)}})
    fake_tf.resources["03-app"] = [{"address": a, "mode": "managed", "type": a.split(".")[0], "values": {}}
                                   for a in ("helm_release.langfuse", "kubernetes_namespace_v1.langfuse",
                                             "random_id.suffix")]
    with caplog.at_level(logging.INFO):
        st.destroy("03-app")
    rm = [c.args for c in fake_tf.calls if c.sub == "state"][-1]
    assert rm == ["state", "rm", "-lock-timeout=20m", "helm_release.langfuse", "kubernetes_namespace_v1.langfuse"]
    assert fake_tf.last("destroy")[-1] == "-var=cluster_enabled=false"
    assert "03-app: cluster_enabled=false for its destroy (namespace output present, no cluster)" in caplog.text


def test_03_app_with_its_cluster_keeps_its_state_whole(tmp_path, fake_tf, caplog):
    """Decision 22: with the cluster there, nothing is forgotten (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs.update({"01-network": {"cluster_endpoint": ("https://x", False)},
                            "03-app": {"namespace": ("langfuse", False)}})
    with caplog.at_level(logging.INFO):
        st.destroy("03-app")
    assert ("state rm" not in [" ".join(c.args[:2]) for c in fake_tf.calls],
            "(namespace output present, cluster exists)" in caplog.text) == (True, True)


def test_forgetting_a_state_without_kubernetes_resources_removes_nothing(tmp_path, fake_tf):
    """Decision 22: nothing of the cluster's in the state: no `state rm` (fake Terraform runner)."""
    st = _stack(tmp_path)
    _applied(fake_tf, "03-app")
    assert (st.forget_kubernetes_side("03-app"), fake_tf.commands("state")) == ([], [("03-app", "state")])


def test_cluster_exists_needs_an_endpoint(tmp_path, fake_tf):
    """03-app's providers connect to 01-network's cluster_endpoint: without it, no cluster (fake
    Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.outputs["01-network"] = {"cluster_name": ("langfuse", False)}
    assert st.cluster_exists() is False
    fake_tf.outputs["01-network"]["cluster_endpoint"] = ("https://x", False)
    assert st.cluster_exists() is True


# --- locks a killed Terraform left -----------------------------------------------------------------

def _killed(folder: Path, subcommand: str = "apply") -> None:
    procs.write_json(folder / tf.KILLED_FILE, {"subcommand": subcommand, "workspace": folder.name, "pid": 1,
                                               "why": "timed out", "killed_at": "2026-12-04T10:00:00Z"})


def _killed_with_unlock_refused(tmp_path: Path, tfc_fake: tuple[TfcFake, TfcClient]) -> Stack:
    """02-deps locked by a Terraform the harness killed, and Terraform Cloud refusing its force-unlock (403)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    st = _stack(tmp_path, tfc=client)
    _killed(st.terraform_dir / "02-deps")
    return st


def test_a_lock_left_by_a_killed_terraform_is_released_before_the_destroy(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 24 item 2: the harness killed 02-deps' apply; the teardown releases its Terraform Cloud
    lock first, saying when and why, and clears the mark (local Terraform Cloud fake; fake Terraform
    runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    st = _stack(tmp_path, tfc=client)
    _killed(st.terraform_dir / "02-deps")
    with caplog.at_level(logging.WARNING):
        st.teardown(("02-deps",))
    assert (fake.locked("langfuse-deps"), tf.killed_marker(st.terraform_dir / "02-deps")) == (False, None)
    assert ("teardown: 02-deps: the harness killed terraform apply there at 2026-12-04T10:00:00Z (timed out), so its "
            "lock may have stayed held in Terraform Cloud: released the lock on langfuse-deps before destroying"
            in caplog.text)


def test_release_lock_left_by_kill_says_true_only_when_it_released_one(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 24 item 2: a marked workspace that is not locked: nothing released (False), said so, the
    mark cleared (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    st = _stack(tmp_path, tfc=client)
    _killed(st.terraform_dir / "02-deps")
    with caplog.at_level(logging.WARNING):
        released = st.release_lock_left_by_kill("02-deps")
    assert (released, tf.killed_marker(st.terraform_dir / "02-deps"), "langfuse-deps was not locked" in caplog.text) \
        == (False, None, True)
    fake.lock_workspace("langfuse-deps")
    _killed(st.terraform_dir / "02-deps")
    assert st.release_lock_left_by_kill("02-deps") is True


def test_a_workspace_without_a_kill_mark_keeps_its_lock(tmp_path, fake_tf, tfc_fake):
    """Issue 24 item 2: a lock with no kill mark may be a live run elsewhere: not touched (local
    Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    st = _stack(tmp_path, tfc=client)
    assert (st.release_lock_left_by_kill("02-deps"), fake.locked("langfuse-deps")) == (False, True)


def test_a_lock_a_live_terraform_holds_is_not_released(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 24 item 2: a Terraform of this machine runs there now (its pid record, this process):
    its lock is rightly held, the mark kept (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    st = _stack(tmp_path, tfc=client)
    folder = st.terraform_dir / "02-deps"
    _killed(folder)
    procs.PidRecord.write(folder / tf.PID_FILE, os.getpid(), "terraform apply")
    with caplog.at_level(logging.WARNING):
        released = st.release_lock_left_by_kill("02-deps")
    assert (released, fake.locked("langfuse-deps"), tf.killed_marker(folder) is not None) == (False, True, True)
    assert _said(caplog) == [f"teardown: 02-deps: the harness killed terraform apply there earlier, but terraform apply "
                             f"(pid {os.getpid()}) runs there now and holds the lock: not released"]


def test_a_refused_release_keeps_the_mark_for_unlock(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 24 item 2: Terraform Cloud refusing the force-unlock keeps the mark, and the log says
    how to try again (local Terraform Cloud fake refusing with 403)."""
    st = _killed_with_unlock_refused(tmp_path, tfc_fake)
    with caplog.at_level(logging.ERROR):
        released = st.release_lock_left_by_kill("02-deps")
    assert (released, tf.killed_marker(st.terraform_dir / "02-deps") is not None) == (False, True)
    assert "Terraform Cloud refused to release langfuse-deps's lock" in caplog.text
    assert "`python -m lfharness unlock` tries again" in caplog.text


def test_a_killed_terraform_on_a_local_backend_left_no_lock(tmp_path, fake_tf, caplog):
    """Issue 24 item 2: a local backend's lock went with the killed process: nothing to release, the
    mark cleared (`.terraform` says local)."""
    st = _stack(tmp_path)
    folder = st.terraform_dir / "02-deps"
    (folder / ".terraform").mkdir()
    (folder / ".terraform" / "terraform.tfstate").write_text(json.dumps({"backend": {"type": "local"}}))
    _killed(folder)
    with caplog.at_level(logging.INFO):
        assert st.release_lock_left_by_kill("02-deps") is False
    assert (tf.killed_marker(folder), "its backend is local, so its lock went with the process" in caplog.text) == (
        None, True)


@pytest.mark.parametrize(("backend", "declared", "cloud"), [
    ("cloud", "", True), ("remote", "", True), ("local", "", False), (None, 'terraform {\n  cloud {}\n}\n', True),
    (None, 'terraform {\n  cloud {}\n  backend "local" {}\n}\n', False), (None, "", False),
])
def test_the_lock_client_is_made_only_for_a_terraform_cloud_backend(tmp_path, fake_tf, backend, declared, cloud):
    """Issue 24 item 2: the lock lives in Terraform Cloud when `.terraform` says cloud or remote, or, not
    initialised, the configuration has a cloud block and no backend override (the settings' token)."""
    st = _stack(tmp_path)
    folder = st.terraform_dir / "02-deps"
    (folder / "main.tf").write_text(declared)
    if backend is not None:
        (folder / ".terraform").mkdir()
        (folder / ".terraform" / "terraform.tfstate").write_text(json.dumps({"backend": {"type": backend}}))
    client = st._lock_client("02-deps")
    assert (client is not None, client is not None and client.organization == SETTINGS.tfc_organization) == (
        cloud, cloud)


def test_an_unreadable_backend_releases_no_lock(tmp_path, fake_tf, caplog):
    """Issue 24 item 2: `.terraform/terraform.tfstate` unreadable: no guess, no release, and the warning
    says why the backend could not be told."""
    st = _stack(tmp_path)
    folder = st.terraform_dir / "02-deps"
    (folder / ".terraform").mkdir()
    (folder / ".terraform" / "terraform.tfstate").write_text("{broken")
    with caplog.at_level(logging.WARNING):
        assert st._lock_client("02-deps") is None
    assert _said(caplog) == ["02-deps: could not tell its backend (Expecting property name enclosed in double "
                             "quotes: line 1 column 2 (char 1)): no Terraform Cloud lock released"]


# --- `python -m lfharness teardown`: teardown_workspaces ---------------------------------------------

def _all_in_cloud(fake: Any) -> None:
    for name in NAMES.values():
        fake.add_workspace(name, {"execution-mode": "local"})


def test_the_teardown_command_destroys_what_terraform_cloud_has_downstream_first(tmp_path, fake_tf, tfc_fake):
    """FR27: the workspaces Terraform Cloud has are tried (in order) and destroyed downstream first;
    the report says which and that no sweep ran without AWS (local Terraform Cloud fake; fake
    Terraform runner)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    report = stack.teardown_workspaces(client, _stack(tmp_path))
    assert (report.tried, fake_tf.commands("destroy"), report.describe()) == (
        list(ORDER), [("03-app", "destroy"), ("02-deps", "destroy"), ("01-network", "destroy")],
        "destroyed 01-network, 02-deps, 03-app; leftover sweep not run: no AWS session")


def test_the_teardown_command_releases_a_stale_lock_and_says_what_killed_terraform(tmp_path, fake_tf, tfc_fake,
                                                                                   caplog):
    """Issue 10 item 10: a locked workspace is force-unlocked before its destroy, the log naming the
    kill the harness recorded, whose mark is then cleared (local Terraform Cloud fake; fake Terraform
    runner)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-app")
    st = _stack(tmp_path)
    _killed(st.terraform_dir / "03-app", "destroy")
    with caplog.at_level(logging.WARNING):
        stack.teardown_workspaces(client, st)
    assert (fake.locked("langfuse-app"), tf.killed_marker(st.terraform_dir / "03-app")) == (False, None)
    assert ("langfuse-app was locked by an interrupted run (a cancelled job kills Terraform mid-apply; the harness "
            "killed terraform destroy there: timed out); lock released" in caplog.text)


def test_the_teardown_command_refused_by_terraform_cloud_reports_it_and_skips_the_sweep(tmp_path, fake_tf, tfc_fake,
                                                                                        aws_side):
    """FR27, NFR8: a refused force-unlock leaves that workspace out, destroys the others, runs no sweep
    (it would judge a stack not torn down) and raises naming the refusal (local Terraform Cloud fake
    refusing 02-deps' unlock; fake Terraform runner; AWS stand-ins)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    st = _aws_stack(tmp_path, fake_tf)
    with pytest.raises(TeardownError) as err:
        stack.teardown_workspaces(client, st)
    assert fake_tf.commands("destroy") == [("03-app", "destroy"), ("01-network", "destroy")]
    assert not any(s[0] == "sweep" for s in fake_tf.steps)
    assert str(err.value).startswith("teardown could not try 1 workspace(s), so the leftover sweep did not run; fix "
                                     "the cause and re-run `python -m lfharness teardown`:\n02-deps: Terraform Cloud "
                                     "refused: ")


def test_a_refusal_and_a_failed_destroy_are_reported_together(tmp_path, fake_tf, tfc_fake):
    """FR27: a destroy failing while another workspace was refused: both in one error (local Terraform
    Cloud fake refusing 02-deps' unlock; fake Terraform runner failing 03-app's destroy)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    fake_tf.failures[("03-app", "destroy")] = ["Error: stuck"]
    with pytest.raises(TeardownError) as err:
        stack.teardown_workspaces(client, _stack(tmp_path))
    lines = str(err.value).split("\n")
    assert lines[0].startswith("teardown left 1 problem(s)")
    assert [line.split(":")[0] for line in lines if line[:3] in ("01-", "02-", "03-")] == ["03-app", "02-deps"]
    assert "02-deps: Terraform Cloud refused: " in str(err.value)


def test_the_teardown_command_with_aws_reports_a_clean_sweep(tmp_path, fake_tf, tfc_fake, aws_side):
    """NFR8: every workspace tried with an AWS session: the sweep runs and the report says clean (local
    Terraform Cloud fake; AWS stand-ins)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    report = stack.teardown_workspaces(client, _aws_stack(tmp_path, fake_tf))
    assert (report.sweep, report.describe()) == (aws_side.sweep, "destroyed 01-network, 02-deps, 03-app; "
                                                                 "leftover sweep clean")


def test_the_teardown_command_sweeps_when_terraform_cloud_has_no_workspace(tmp_path, fake_tf, tfc_fake, aws_side):
    """NFR8, issue 24 item 9: a wrong organization finds no workspace; the sweep still runs (local
    Terraform Cloud fake with none; AWS stand-ins)."""
    _, client = tfc_fake
    report = stack.teardown_workspaces(client, _aws_stack(tmp_path, fake_tf))
    assert ([s[0] for s in fake_tf.steps], report.absent) == (["sweep"], list(ORDER))


def test_the_closing_line_names_what_the_teardown_deleted_and_what_the_sweep_cannot_judge(tmp_path, fake_tf,
                                                                                         tfc_fake, aws_side):
    """Issue 24 items 3 and 5: the closing line lists the PVC volumes deleted and the resources of a
    kind the sweep cannot judge (local Terraform Cloud fake; AWS stand-ins)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    aws_side.released = aws_checks.VolumeRelease(deleted=["vol-0aaa"])
    odd = aws_checks.Finding("arn:aws:foo:us-east-1:1:thing/x", "unknown", "no judge for foo")
    aws_side.sweep = aws_checks.Sweep((odd,))
    report = stack.teardown_workspaces(client, _aws_stack(tmp_path, fake_tf))
    assert report.describe() == (
        "destroyed 01-network, 02-deps, 03-app; deleted what the cluster left: EBS volume vol-0aaa (a PVC's in "
        f"namespace langfuse); leftover sweep clean but for 1 resource(s) of a kind it cannot judge, to check by "
        f"hand: {odd}")


# --- `python -m lfharness unlock`: unlock_workspaces ----------------------------------------------

def test_unlock_releases_locked_workspaces_and_sorts_the_others(tmp_path, tfc_fake):
    """Issue 24 item 2: locked -> released (its kill mark cleared), not locked -> free, not in
    Terraform Cloud -> absent, stale pid and SIGINT records removed (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-network")
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    root = _root(tmp_path)
    for workspace in ORDER:
        (root / workspace / ".terraform").mkdir()
        (root / workspace / tf.PID_FILE).write_text(json.dumps({"pid": 999999, "start": 1, "what": "terraform apply"}))
        (root / workspace / tf.SIGINT_FILE).write_text("{}")
    _killed(root / "02-deps")
    report = stack.unlock_workspaces(client, root)
    assert (report.released, report.free, report.absent, report.refused, report.running) == (
        ["02-deps"], ["01-network"], ["03-app"], {}, {})
    assert (fake.locked("langfuse-deps"), tf.killed_marker(root / "02-deps"),
            [p.name for ws in ORDER for p in (root / ws / ".terraform").iterdir()]) == (False, None, [])


def test_unlock_releases_nothing_while_a_terraform_of_this_machine_runs(tmp_path, tfc_fake):
    """Issue 24 item 2: two Terraforms would write one state: with one running (its pid record, this
    process), no lock is released (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    root = _root(tmp_path)
    (root / "03-app" / ".terraform").mkdir()
    procs.PidRecord.write(root / "03-app" / tf.PID_FILE, os.getpid(), "terraform destroy")
    report = stack.unlock_workspaces(client, root)
    assert (list(report.running), report.released, fake.locked("langfuse-deps")) == (["03-app"], [], True)


def test_unlock_goes_on_after_a_refusal_and_keeps_that_mark(tmp_path, tfc_fake):
    """Issue 24 item 2: a 403 on 02-deps' force-unlock is reported; 03-app is still released; 02-deps'
    kill mark stays for the next try (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-app")
    fake.refuse_force_unlock("langfuse-deps", 403)
    root = _root(tmp_path)
    _killed(root / "02-deps")
    report = stack.unlock_workspaces(client, root)
    assert (list(report.refused), report.released, tf.killed_marker(root / "02-deps") is not None) == (
        ["02-deps"], ["03-app"], True)


def test_unlock_names_the_kill_it_released_a_lock_for(tmp_path, tfc_fake, caplog):
    """Issue 24 item 2: the log says the lock was released, nothing destroyed, and when the harness
    killed Terraform there (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-app")
    root = _root(tmp_path)
    _killed(root / "03-app")
    with caplog.at_level(logging.WARNING):
        stack.unlock_workspaces(client, root)
    assert ("unlock: 03-app (langfuse-app) was locked: lock released (force-unlock); the harness had killed "
            "terraform apply there at 2026-12-04T10:00:00Z; nothing destroyed") in caplog.text


# --- the log group EKS re-created ----------------------------------------------------------------------

class FakeLogs:
    """CloudWatch Logs as _remove_unheld_log_group sees it: the control-plane group (or none) with its
    tags (None: the answer has no tags key), and a group whose name it prefixes, carrying the project
    tag."""

    def __init__(self, name: str | None, tags: dict[str, str] | None) -> None:
        self.groups = {n: t for n, t in ((name, tags), (stack.CLUSTER_LOG_GROUP + "-audit",
                                                        {"Project": "langfuse-k8s-cluster"})) if n}
        self.deleted: list[str] = []

    def client(self, service: str) -> FakeLogs:
        if service != "logs":
            raise ValueError(f"unknown service {service!r}")
        return self

    def describe_log_groups(self, logGroupNamePrefix: str) -> dict:  # noqa: N803 (boto3's names)
        return {"logGroups": [{"logGroupName": n, "arn": f"arn:aws:logs:us-east-1:1:log-group:{n}:*"}
                              for n in self.groups if n.startswith(logGroupNamePrefix)]}

    def list_tags_for_resource(self, resourceArn: str) -> dict:  # noqa: N803
        tags = self.groups[resourceArn.rsplit(":", 1)[-1]]
        return {} if tags is None else {"tags": tags}

    def delete_log_group(self, logGroupName: str) -> None:  # noqa: N803
        self.deleted.append(logGroupName)


@pytest.mark.parametrize(("tags", "deleted"), [({}, [stack.CLUSTER_LOG_GROUP]), (None, [stack.CLUSTER_LOG_GROUP]),
                                                ({"Project": "other"}, [stack.CLUSTER_LOG_GROUP]),
                                                ({"Project": "langfuse-k8s-cluster"}, [])])
def test_applying_01_network_deletes_only_an_untagged_unheld_control_plane_log_group(tmp_path, fake_tf, tags,
                                                                                     deleted):
    """Issue 15 defect 5: EKS re-creates its log group after a destroy, untagged; applying 01-network
    deletes it first, but never one carrying the project tag (fake Terraform runner; CloudWatch Logs
    stand-in)."""
    logs = FakeLogs(stack.CLUSTER_LOG_GROUP, tags)
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), aws=logs)
    st.apply("01-network")
    assert logs.deleted == deleted


def test_applying_01_network_keeps_the_log_group_its_state_holds(tmp_path, fake_tf):
    """Issue 15 defect 5: the group 01-network's state holds is its own (fake Terraform runner; Logs
    stand-in)."""
    logs = FakeLogs(stack.CLUSTER_LOG_GROUP, {})
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), aws=logs)
    fake_tf.resources["01-network"] = [{"address": stack.LOG_GROUP_ADDRESS, "mode": "managed",
                                        "type": "aws_cloudwatch_log_group", "values": {}}]
    st.apply("01-network")
    assert logs.deleted == []


def test_applying_01_network_without_the_group_deletes_nothing(tmp_path, fake_tf):
    """Issue 15 defect 5: no group, nothing deleted (fake Terraform runner; Logs stand-in)."""
    logs = FakeLogs(None, {})
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), aws=logs)
    st.apply("01-network")
    assert logs.deleted == []


def test_applying_01_network_says_why_it_deletes_the_log_group(tmp_path, fake_tf, caplog):
    """Issue 15 defect 5: the operator reads which group was deleted and why (fake Terraform runner;
    Logs stand-in)."""
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), aws=FakeLogs(stack.CLUSTER_LOG_GROUP, {}))
    with caplog.at_level(logging.WARNING):
        st.apply("01-network")
    assert caplog.messages == ["apply 01-network: deleting log group /aws/eks/langfuse/cluster: untagged and in no "
                               "state, so EKS re-created it after an earlier destroy (terraform-aws-eks issue 2763); "
                               "the apply would fail on it"]


def test_applying_01_network_says_why_it_keeps_a_tagged_log_group(tmp_path, fake_tf, caplog):
    """Issue 15 defect 5: a tagged group no state holds is kept, and the operator told the apply will
    fail on it and what to do (fake Terraform runner; Logs stand-in)."""
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path),
               aws=FakeLogs(stack.CLUSTER_LOG_GROUP, {"Project": "langfuse-k8s-cluster"}))
    with caplog.at_level(logging.WARNING):
        st.apply("01-network")
    assert caplog.messages == ["apply 01-network: log group /aws/eks/langfuse/cluster carries the project tag but no "
                               "state holds it; kept (the apply will fail with ResourceAlreadyExistsException: "
                               "delete it or import it)"]


# --- what the operator reads along the way -----------------------------------------------------------

class RecordingStack(Stack):
    """The Stack as the lifecycle stand-in subclasses it: told after every state write."""

    written: list[str]

    def _state_written(self, workspace: str) -> None:
        self.written = [*getattr(self, "written", []), workspace]


def test_every_state_write_is_announced_with_its_workspace_failed_ones_too(tmp_path, fake_tf):
    """The local-backend stand-in publishes a workspace's outputs after each apply, destroy and
    `state rm`, failed ones included (fake Terraform runner; a Stack subclass recording the hook)."""
    st = RecordingStack(SETTINGS, tmp_path / "run", _root(tmp_path))
    fake_tf.resources["03-app"] = [{"address": "helm_release.langfuse", "mode": "managed", "type": "helm_release",
                                    "values": {}}]
    fake_tf.failures[("01-network", "apply")] = ["Error: quota"]
    st.apply("02-deps")
    with pytest.raises(tf.TerraformError):
        st.apply("01-network")
    st.forget_kubernetes_side("03-app")
    st.destroy("03-app", variables={})
    assert st.written == ["02-deps", "01-network", "03-app", "03-app"]


def test_an_apply_of_03_app_whose_state_cannot_be_read_still_runs(tmp_path, fake_tf):
    """Issue 26: an unreadable 03-app state (show fails) leaves nothing known to replace: the apply
    runs, replacing nothing (fake Terraform runner failing `show`)."""
    st = _stack(tmp_path)
    fake_tf.failures[("03-app", "show")] = ["Error: busy", "Error: busy", "Error: busy"]
    st.apply("03-app")
    assert fake_tf.last("apply") == ["apply", "-auto-approve", "-input=false", "-no-color", "-lock-timeout=20m"]


def test_the_replacement_of_stale_secrets_is_explained_naming_each(tmp_path, fake_tf, caplog):
    """Issue 26: the operator reads which secrets are replaced once, and that the pods keep running
    (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["03-app"] = [_stale_secret("kubernetes_secret_v1.a"), _stale_secret("kubernetes_secret_v1.b")]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        st.apply("03-app")
    assert ("03-app: kubernetes_secret_v1.a, kubernetes_secret_v1.b still holds secret values in its state from "
            "before they went write-only: replaced once by this apply (the pods keep running; the new one has the "
            "same values)") in caplog.messages
    assert fake_tf.last("apply")[-2:] == ["-replace=kubernetes_secret_v1.a", "-replace=kubernetes_secret_v1.b"]


def test_a_plan_runs_with_its_variables_non_interactive_and_waiting_on_a_held_lock(tmp_path, fake_tf):
    """FR29: the no-change check never prompts, prints no colour codes into the log, waits on a
    lock a finished run still holds, and plans with the variables given (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.plan_has_changes("02-deps", variables={"cluster_enabled": "false"})
    assert fake_tf.last("plan") == ["plan", "-detailed-exitcode", "-input=false", "-no-color", "-lock-timeout=20m",
                                    "-var=cluster_enabled=false"]


def test_outputs_are_read_as_json(tmp_path, fake_tf):
    """The outputs come from `terraform output -json` (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.outputs("02-deps")
    assert fake_tf.last("output") == ["output", "-json"]


def test_a_workspace_without_a_state_is_said_to_have_no_outputs(tmp_path, fake_tf, caplog):
    """The debug log says why a workspace came back without outputs (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.output_stderr["02-deps"] = "Error: could not read state version outputs: resource not found"
    with caplog.at_level(logging.DEBUG, logger="lfharness.stack.stack"):
        st.outputs("02-deps")
    assert "02-deps has no state in Terraform Cloud yet: no outputs" in caplog.messages


def test_forgetting_the_kubernetes_side_names_what_it_removes_and_why(tmp_path, fake_tf, caplog):
    """Decision 22: removing resources from a state without deleting them is said, naming each and
    why (fake Terraform runner)."""
    st = _stack(tmp_path)
    fake_tf.resources["03-app"] = [{"address": a, "mode": "managed", "type": a.split(".")[0], "values": {}}
                                   for a in ("helm_release.langfuse", "kubernetes_secret_v1.langfuse")]
    with caplog.at_level(logging.WARNING):
        st.forget_kubernetes_side("03-app")
    assert caplog.messages == ["03-app: removing helm_release.langfuse, kubernetes_secret_v1.langfuse from its state "
                               "without deleting them: the cluster that held them no longer exists (01-network has "
                               "no cluster endpoint), so there is nothing to delete them from and no endpoint to "
                               "reach"]


@pytest.mark.parametrize(("applied", "kept"), [(["01-network", "02-deps"], "01-network, 02-deps"), ([], "nothing")])
def test_keep_stack_says_what_stays_and_how_to_remove_it_later(tmp_path, fake_tf, monkeypatch, caplog, applied, kept):
    """Terratest style: the kept stack is named, with the command that removes it (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = applied
    monkeypatch.setenv(stack.KEEP_ENV, "1")
    with caplog.at_level(logging.WARNING):
        st.teardown_unless_kept()
    assert caplog.messages == [f"teardown skipped: LFK8S_KEEP_STACK=1 keeps {kept}; run `python -m lfharness "
                               "teardown` when done"]


@pytest.mark.parametrize("after", ["DELETING", None], ids=["cluster still listed", "cluster gone"])
def test_every_aws_step_of_a_teardown_uses_the_stacks_session(tmp_path, fake_tf, aws_side, after):
    """The teardown acts on the account of the .env's credentials, the Stack's session, in every AWS
    step (fake Terraform runner; AWS stand-ins recording the session they were given)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["ACTIVE", after])
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["DependencyViolation"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa"])
    st.applied = list(ORDER)
    st.teardown(sweep=True)
    assert (len(aws_side.sessions), all(s is st.aws for s in aws_side.sessions)) == (4, True)


def test_the_sweep_judges_this_deployments_iam_and_removes_recreated_log_groups_within_its_timeout(
        tmp_path, fake_tf, aws_side):
    """NFR8: IAM resources are judged by this organization's tags, a log group EKS or RDS wrote again
    is deleted, and the sweep waits the Stack's sweep timeout at its poll interval (fake Terraform
    runner; the sweep stand-in records what it was asked)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.teardown((), sweep=True)
    assert aws_side.sweep_options == {"log_groups": stack.SWEPT_LOG_GROUPS,
                                      "iam_tags": aws_checks.stack_tags(SETTINGS.tfc_organization),
                                      "remove_recreated": True, "timeout": 0.3, "interval": 0.05}


def test_a_sweep_that_finds_leftovers_is_logged_as_it_happens(tmp_path, fake_tf, aws_side, caplog):
    """NFR8: the sweep's finding is logged when it happens, not only at the end (fake Terraform runner;
    the sweep stand-in raises)."""
    st = _aws_stack(tmp_path, fake_tf)
    aws_side.sweep = aws_checks.CheckError("arn:aws:s3:::langfuse-storage-1 still tagged")
    with caplog.at_level(logging.ERROR), pytest.raises(TeardownError):
        st.teardown((), sweep=True)
    assert caplog.messages == ["teardown: leftover sweep not clean: arn:aws:s3:::langfuse-storage-1 still tagged"]


def test_a_sweep_clean_but_for_unknown_kinds_names_them_to_check_by_hand(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 3: the kinds the sweep cannot judge are named, one a line (fake Terraform runner;
    the sweep stand-in finds two)."""
    st = _aws_stack(tmp_path, fake_tf)
    odd = [aws_checks.Finding(f"arn:aws:foo:us-east-1:1:thing/{n}", "unknown", "no judge") for n in "xy"]
    aws_side.sweep = aws_checks.Sweep(tuple(odd))
    with caplog.at_level(logging.WARNING):
        st.teardown((), sweep=True)
    assert caplog.messages == ["teardown: the leftover sweep is clean but for 2 resource(s) of a kind it cannot "
                               f"judge; check them by hand:\n{odd[0]}\n{odd[1]}"]


def test_a_teardown_without_aws_says_the_sweep_did_not_run(tmp_path, fake_tf, caplog):
    """NFR8: without an AWS session nothing says clean: the log says the sweep did not run."""
    st = _stack(tmp_path)
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        assert st.teardown((), sweep=True) is None
    assert "teardown: no AWS session (local workspaces): leftover sweep not run" in caplog.messages


def test_pvc_volumes_left_while_eks_lists_the_cluster_are_logged(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 5: the log names the cluster, its status and the volumes left (fake Terraform
    runner; EKS stand-in answering ACTIVE, then DELETING)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["ACTIVE", "DELETING"])
    st.applied = ["01-network"]
    aws_side.pvc = [["vol-0ccc", "vol-0ddd"]]
    with caplog.at_level(logging.WARNING), pytest.raises(TeardownError):
        st.teardown(sweep=False)
    assert ("teardown: 01-network is destroyed but EKS still lists cluster langfuse (DELETING): PVC volumes vol-0ccc, "
            "vol-0ddd left for its EBS CSI driver or the next teardown") in caplog.messages


def test_no_pvc_volume_left_while_eks_lists_the_cluster_is_logged_as_none(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 5 (fake Terraform runner; EKS stand-in answering ACTIVE, then DELETING)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["ACTIVE", "DELETING"])
    st.applied = ["01-network"]
    with caplog.at_level(logging.WARNING):
        st.teardown(sweep=False)
    assert caplog.messages == ["teardown: 01-network is destroyed but EKS still lists cluster langfuse (DELETING): PVC "
                               "volumes (none) left for its EBS CSI driver or the next teardown"]


def test_the_settle_wait_is_logged_with_the_status_and_the_time_it_took(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 10: the operator reads the status, how long the teardown will wait, each status
    seen with the time elapsed, and when it goes on (fake Terraform runner; EKS stand-in answering
    CREATING, then gone)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["CREATING", None])
    st.applied = ["01-network"]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        st.teardown(sweep=False)
    said = [m for m in caplog.messages if m.startswith("teardown: EKS cluster")]
    assert said == ["teardown: EKS cluster langfuse is CREATING (a run stopped while EKS was creating or updating "
                    "it), and EKS refuses to delete it until it settles: waiting up to 0.3s before destroying "
                    "01-network", "teardown: EKS cluster langfuse is gone, 0s elapsed",
                    "teardown: EKS cluster langfuse is gone after 0s; destroying 01-network"]


def test_the_settle_wait_goes_on_through_a_throttled_answer(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 10: an EKS error while waiting (throttling) is retried, not a failed teardown;
    the wait is named in its log (fake Terraform runner; EKS stand-in answering CREATING, an error,
    then ACTIVE)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["CREATING", "THROTTLED", "ACTIVE", None])
    st.applied = ["01-network"]
    with caplog.at_level(logging.INFO):
        st.teardown(sweep=False)
    assert fake_tf.commands("destroy") == [("01-network", "destroy")]
    assert any(m.startswith("EKS cluster langfuse to leave CREATING/UPDATING: ") for m in caplog.messages)


def test_a_failed_status_question_destroys_01_network_without_waiting(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 10: EKS not answering is said, and 01-network destroyed anyway (fake Terraform
    runner; EKS stand-in answering an error)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["THROTTLED"])
    st.applied = ["01-network"]
    with caplog.at_level(logging.WARNING), pytest.raises(TeardownError):
        st.teardown(sweep=False)
    assert fake_tf.commands("destroy") == [("01-network", "destroy")]
    assert caplog.messages[0].startswith("teardown: could not ask EKS for cluster langfuse's status (An error "
                                         "occurred (ThrottlingException)")
    assert caplog.messages[0].endswith("; destroying 01-network without waiting")


def test_the_closing_line_without_workspaces_says_so_and_names_those_not_in_terraform_cloud():
    """Issue 24 item 9: the closing line says exactly what ran."""
    report = stack.TeardownReport(absent=["02-deps", "03-app"], sweep_note="leftover sweep not run: no AWS session")
    assert report.describe() == ("no workspace to destroy; not in Terraform Cloud: 02-deps, 03-app; leftover sweep "
                                 "not run: no AWS session")


def test_the_closing_line_lists_everything_the_teardown_deleted(tmp_path):
    """Issue 24 items 4 and 5: each thing deleted on AWS is listed."""
    report = stack.TeardownReport(tried=["01-network"], cleaned_up=["network interface eni-1", "EBS volume vol-1"],
                                  sweep_note="leftover sweep clean")
    assert report.describe() == ("destroyed 01-network; deleted what the cluster left: network interface eni-1, EBS "
                                 "volume vol-1; leftover sweep clean")


def test_the_teardown_command_says_which_workspaces_terraform_cloud_does_not_have(tmp_path, fake_tf, tfc_fake,
                                                                                   caplog):
    """Issue 10 item 10 (local Terraform Cloud fake with 01-network only; fake Terraform runner)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-network", {"execution-mode": "local"})
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        stack.teardown_workspaces(client, _stack(tmp_path))
    assert [m for m in caplog.messages if "does not exist" in m] == [
        "teardown: 02-deps (langfuse-deps) does not exist in Terraform Cloud: nothing to destroy",
        "teardown: 03-app (langfuse-app) does not exist in Terraform Cloud: nothing to destroy"]


def test_the_teardown_command_releases_a_lock_without_a_kill_mark_saying_so(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 10 item 10: a lock a cancelled CI job left (no kill recorded here) is released, said plainly
    (local Terraform Cloud fake; fake Terraform runner)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-network")
    with caplog.at_level(logging.WARNING):
        stack.teardown_workspaces(client, _stack(tmp_path))
    assert _said(caplog) == ["teardown: langfuse-network was locked by an interrupted run (a cancelled job kills "
                               "Terraform mid-apply); lock released so its state can be destroyed"]


def test_the_teardown_command_logs_a_refusal_as_it_happens(tmp_path, fake_tf, tfc_fake, caplog):
    """Issue 24 item 7 (local Terraform Cloud fake refusing 02-deps' unlock; fake Terraform runner)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    with caplog.at_level(logging.ERROR), pytest.raises(TeardownError):
        stack.teardown_workspaces(client, _stack(tmp_path))
    with pytest.raises(TfcError) as refusal:
        client.force_unlock_if_locked("langfuse-deps")
    assert _said(caplog)[0] == ("teardown: Terraform Cloud refused 02-deps (langfuse-deps), so it is left out; "
                                f"continuing with the others: {refusal.value}")


def test_a_failed_01_network_destroy_and_its_release_are_logged(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 4: the operator reads which interfaces were deleted from which group, which were
    left alone, and that 01-network is destroyed once more (fake Terraform runner; release stand-in)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["DependencyViolation"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa", "eni-0bbb"], kept=["eni-0ccc (in-use, i-1, 'ELB')"])
    st.applied = ["01-network"]
    with caplog.at_level(logging.WARNING, logger="lfharness.stack.stack"):
        st.teardown(sweep=False)
    assert _said(caplog) == [
        "teardown: 01-network's destroy failed; deleted 2 detached VPC CNI interface(s) eni-0aaa, eni-0bbb that held "
        "the node security group sg-0123; the node security group sg-0123 is also used by network interfaces that "
        "are not detached VPC CNI leftovers, left alone: eni-0ccc (in-use, i-1, 'ELB') (delete them once detached, "
        "then re-run `python -m lfharness teardown`); destroying 01-network once more"]


def test_a_released_01_network_with_nothing_else_in_its_group_logs_no_other_interfaces(tmp_path, fake_tf, aws_side,
                                                                                       caplog):
    """Issue 24 item 4 (fake Terraform runner; release stand-in deleting one interface)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.outputs["01-network"] = {"node_security_group_id": ("sg-0123", False)}
    fake_tf.failures[("01-network", "destroy")] = ["DependencyViolation"]
    aws_side.enis = pause.EniReport(deleted=["eni-0aaa"])
    st.applied = ["01-network"]
    with caplog.at_level(logging.WARNING, logger="lfharness.stack.stack"):
        st.teardown(sweep=False)
    assert _said(caplog)[0].endswith("that held the node security group sg-0123; destroying 01-network once more")


def test_unreadable_01_network_outputs_are_logged_with_what_is_assumed(tmp_path, fake_tf, aws_side, caplog):
    """Issue 24 item 10: the operator reads why the outputs could not be read and what is assumed
    (fake Terraform runner failing `output`)."""
    st = _aws_stack(tmp_path, fake_tf)
    fake_tf.output_stderr["01-network"] = "Error: connection refused"
    st.applied = ["01-network"]
    with caplog.at_level(logging.WARNING, logger="lfharness.stack.stack"):
        st.teardown(sweep=False)
    said = _said(caplog)[0]
    assert said.startswith("teardown: could not read 01-network's outputs before its destroy (terraform output -json "
                           "in 01-network failed:\nError: connection refused); cluster langfuse assumed, node "
                           "security group unknown")


def test_a_backend_already_initialised_decides_without_reading_the_configuration(tmp_path, fake_tf):
    """Issue 24 item 2: `.terraform` says cloud: the lock is in Terraform Cloud, whatever the .tf files
    hold (here one no parser reads)."""
    st = _stack(tmp_path)
    folder = st.terraform_dir / "02-deps"
    (folder / "main.tf").write_text("terraform {\n  cloud {\n")
    (folder / ".terraform").mkdir()
    (folder / ".terraform" / "terraform.tfstate").write_text(json.dumps({"backend": {"type": "cloud"}}))
    assert st._lock_client("02-deps") is not None


def test_pvc_volumes_outliving_the_wait_are_logged_as_it_happens(tmp_path, fake_tf, aws_side, caplog):
    """FR27: the wait's failure is logged when it happens, saying the teardown continues, and the
    wait is named in its progress lines (fake Terraform runner; AWS stand-ins)."""
    st = _aws_stack(tmp_path, fake_tf)
    st.applied = ["03-app"]
    aws_side.pvc = [["vol-0aaa"]]
    with caplog.at_level(logging.INFO), pytest.raises(TeardownError):
        st.teardown()
    errors = [r.getMessage() for r in caplog.records if r.levelno == logging.ERROR]
    assert errors[0].startswith("teardown: PVC volumes still there after 03-app, continuing (deleted once 01-network is "
                                "gone, if it is part of this teardown): gave up waiting for EBS volumes of namespace "
                                "langfuse's PVCs deleted by the EBS CSI driver after ")
    assert any(m.startswith("EBS volumes of namespace langfuse's PVCs deleted by the EBS CSI driver: not yet")
               for m in caplog.messages)


def test_a_teardown_without_aws_says_the_pvc_volumes_were_not_checked(tmp_path, fake_tf, caplog):
    """FR27: local workspaces: the PVC check is said to be skipped (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.applied = ["03-app"]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        st.teardown()
    assert "teardown: no AWS session (local workspaces): PVC volumes not checked" in _said(caplog)


@pytest.mark.parametrize("workspace", ["01-network", "02-deps"])
def test_only_03_app_forgets_resources_when_the_cluster_is_gone(tmp_path, fake_tf, workspace):
    """Decision 22: only the workspace whose resources live inside the cluster is trimmed; 01-network
    and 02-deps destroy every resource they hold (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs["01-network"] = {"cluster_name": ("", False)}
    fake_tf.resources[workspace] = [{"address": "helm_release.addon", "mode": "managed", "type": "helm_release",
                                     "values": {}}]
    st.destroy(workspace)
    assert fake_tf.commands("state") == []


def test_the_destroy_log_says_the_cluster_side_output_is_absent(tmp_path, fake_tf, caplog):
    """Decision 22: the log explains a cluster_enabled=false destroy (fake Terraform runner)."""
    st = _contract_stack(tmp_path)
    fake_tf.outputs["01-network"] = {"cluster_name": ("langfuse", False), "cluster_endpoint": ("https://x", False)}
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        st.destroy("02-deps")
    assert "02-deps: cluster_enabled=false for its destroy (irsa_role_arn output absent, cluster exists)" in _said(caplog)


def test_the_teardown_command_reports_each_refusal_with_terraform_clouds_reason(tmp_path, fake_tf, tfc_fake):
    """Issue 24 item 7: two workspaces refused, each named with the reason, one a line (local
    Terraform Cloud fake refusing two unlocks; fake Terraform runner)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    for name in ("langfuse-deps", "langfuse-app"):
        fake.lock_workspace(name)
        fake.refuse_force_unlock(name, 403)
    with pytest.raises(TeardownError) as err:
        stack.teardown_workspaces(client, _stack(tmp_path))
    lines = str(err.value).split("\n")
    assert lines[0] == ("teardown could not try 2 workspace(s), so the leftover sweep did not run; fix the cause "
                        "and re-run `python -m lfharness teardown`:")
    assert [line.split(": Terraform Cloud refused: ")[0] for line in lines[1:]] == ["02-deps", "03-app"]
    assert all("HTTP 403" in line for line in lines[1:])


def test_the_closing_line_names_each_kind_the_sweep_cannot_judge(tmp_path, fake_tf, tfc_fake, aws_side):
    """Issue 24 item 3: two unknown kinds, both named (local Terraform Cloud fake; AWS stand-ins)."""
    _, client = tfc_fake
    odd = [aws_checks.Finding(f"arn:aws:foo:us-east-1:1:thing/{n}", "unknown", "no judge") for n in "xy"]
    aws_side.sweep = aws_checks.Sweep(tuple(odd))
    report = stack.teardown_workspaces(client, _aws_stack(tmp_path, fake_tf))
    assert report.sweep_note == ("leftover sweep clean but for 2 resource(s) of a kind it cannot judge, to check by "
                                 f"hand: {odd[0]}; {odd[1]}")


def test_unlock_says_which_terraform_runs_where_and_how_to_stop_it(tmp_path, tfc_fake, caplog):
    """Issue 24 item 2: the refusal names the running Terraform, its pid and workspace, and the one
    signal that stops it cleanly (local Terraform Cloud fake)."""
    _, client = tfc_fake
    root = _root(tmp_path)
    (root / "03-app" / ".terraform").mkdir()
    procs.PidRecord.write(root / "03-app" / tf.PID_FILE, os.getpid(), "terraform destroy")
    with caplog.at_level(logging.ERROR):
        report = stack.unlock_workspaces(client, root)
    pid = os.getpid()
    assert _said(caplog) == [f"unlock: terraform destroy (pid {pid}) still runs on 03-app: not releasing any lock; wait "
                             f"for it to end (or stop it: `kill -INT {pid}`, once), then run unlock again"]
    assert (report.running["03-app"].pid, report.running["03-app"].what) == (pid, "terraform destroy")


def test_unlock_says_what_it_found_in_each_workspace(tmp_path, tfc_fake, caplog):
    """Issue 24 item 2: absent, free, released (no kill recorded), each said (local Terraform Cloud
    fake)."""
    fake, client = tfc_fake
    fake.add_workspace("langfuse-network")
    fake.add_workspace("langfuse-deps")
    fake.lock_workspace("langfuse-deps")
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        stack.unlock_workspaces(client, _root(tmp_path))
    assert _said(caplog) == ["unlock: 01-network (langfuse-network) is not locked",
                             "unlock: 02-deps (langfuse-deps) was locked: lock released (force-unlock); nothing "
                             "destroyed",
                             "unlock: 03-app (langfuse-app) does not exist in Terraform Cloud: no lock"]


def test_unlock_logs_a_refusal_with_its_reason(tmp_path, tfc_fake, caplog):
    """Issue 24 item 2 (local Terraform Cloud fake refusing 02-deps' unlock)."""
    fake, client = tfc_fake
    _all_in_cloud(fake)
    fake.lock_workspace("langfuse-deps")
    fake.refuse_force_unlock("langfuse-deps", 403)
    with caplog.at_level(logging.ERROR):
        report = stack.unlock_workspaces(client, _root(tmp_path))
    assert _said(caplog) == [f"unlock: Terraform Cloud refused 02-deps (langfuse-deps): {report.refused['02-deps']}"]
    assert "HTTP 403" in report.refused["02-deps"]


def test_every_command_keeps_its_log_in_the_run_folder(tmp_path, fake_tf):
    """Long operations leave their logs under the run folder's terraform/ (uploaded by CI), each run
    in its own workspace folder (fake Terraform runner)."""
    st = _stack(tmp_path)
    st.apply("02-deps")
    st.plan_has_changes("02-deps")
    st.outputs("02-deps")
    st.destroy("02-deps")
    assert {(c.log_dir, c.workspace) for c in fake_tf.calls} == {(tmp_path / "run" / "terraform", "02-deps")}


def test_without_path_terraform_gets_this_pythons_bin_and_the_default_path(tmp_path, fake_tf, monkeypatch):
    """Decision 21: a caller without PATH (a bare CI step) still gives Terraform a usable one."""
    monkeypatch.delenv("PATH")
    st = _stack(tmp_path)
    assert st.env["PATH"] == os.pathsep.join([str(Path(sys.executable).parent), os.defpath])


def test_only_secret_environment_values_are_masked(tmp_path, fake_tf):
    """NFR1 without noise: a path handed to Terraform is not a secret, so logs keep it readable."""
    config = "/tmp/terraform-cli-config.rc"
    st = Stack(SETTINGS, tmp_path / "run", _root(tmp_path), {"TF_CLI_CONFIG_FILE": config})
    assert (st.redactor.knows(config), st.redactor.knows(st.env["PATH"]), type(st.env["TF_CLI_CONFIG_FILE"])) == (
        False, False, str)


def test_the_teardown_logs_each_workspace_as_it_starts_and_each_failure_as_it_happens(tmp_path, fake_tf, caplog):
    """FR27: the operator follows the teardown in the log: each destroy as it starts, each failure as
    it happens, saying the teardown goes on (fake Terraform runner failing 02-deps' destroy)."""
    st = _stack(tmp_path)
    st.applied = ["02-deps", "01-network"]
    fake_tf.failures[("02-deps", "destroy")] = ["Error: stuck"]
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"), pytest.raises(TeardownError):
        st.teardown()
    said = [m for m in _said(caplog) if m.startswith("teardown: destroying")]
    assert said[0] == "teardown: destroying 02-deps"
    assert said[1].startswith("teardown: destroying 02-deps failed, continuing with the next workspace: terraform "
                              "destroy ")
    assert said[1].endswith("exited 1:\nError: stuck")
    assert said[2] == "teardown: destroying 01-network"


def test_a_release_refused_by_terraform_cloud_is_logged_with_the_kill_and_the_reason(tmp_path, fake_tf, tfc_fake,
                                                                                    caplog):
    """Issue 24 item 2: the error names the workspace, the killed subcommand and why, the lock, and
    Terraform Cloud's reason (local Terraform Cloud fake refusing with 403)."""
    st = _killed_with_unlock_refused(tmp_path, tfc_fake)
    with caplog.at_level(logging.ERROR):
        st.release_lock_left_by_kill("02-deps")
    said = _said(caplog)[0]
    assert said.startswith("teardown: 02-deps: the harness killed terraform apply there (timed out), and Terraform "
                           "Cloud refused to release langfuse-deps's lock: ")
    assert "HTTP 403" in said


def test_a_killed_terraform_on_a_local_backend_is_logged_with_what_and_why(tmp_path, fake_tf, caplog):
    """Issue 24 item 2 (`.terraform` says local)."""
    st = _stack(tmp_path)
    folder = st.terraform_dir / "02-deps"
    (folder / ".terraform").mkdir()
    (folder / ".terraform" / "terraform.tfstate").write_text(json.dumps({"backend": {"type": "local"}}))
    _killed(folder, "destroy")
    with caplog.at_level(logging.INFO, logger="lfharness.stack.stack"):
        st.release_lock_left_by_kill("02-deps")
    assert _said(caplog) == ["teardown: 02-deps: the harness killed terraform destroy there (timed out); its backend is "
                             "local, so its lock went with the process: nothing to release"]


def test_an_unexpected_answer_while_waiting_for_the_cluster_is_reported_not_waited_out(tmp_path, fake_tf, aws_side):
    """Issue 24 item 10: only AWS's own errors are retried; an answer the teardown cannot read ends the
    wait at once and is reported as what it is (fake Terraform runner; EKS stand-in answering
    CREATING, then an answer without its cluster)."""
    st = _aws_stack(tmp_path, fake_tf, statuses=["CREATING", "MALFORMED"])
    st.cluster_settle_timeout = 5
    st.applied = ["01-network"]
    with pytest.raises(TeardownError) as err:
        st.teardown(sweep=False)
    assert ("01-network: 'cluster'" in str(err.value), "still" in str(err.value)) == (True, False)
