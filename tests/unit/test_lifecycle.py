"""The lifecycle rehearsal (issue 15, decision 22): the harness's own sequences through real Terraform,
offline, from every state the stack can be in to empty states.

What runs is the harness's code, unchanged: Stack.apply / rebuild / teardown, pause.pause,
pause.resume and stack.teardown_workspaces, on the three real workspaces. The stand-ins
(lfharness/testing/lifecycle.py): the provider stand-in for aws, helm, kubernetes and null, with
the real random, tls, time, cloudinit and tfe providers and the real modules from
LFK8S_MODULE_MIRROR; a local backend per workspace whose outputs the local Terraform Cloud fake
serves to the downstream tfe_outputs after every state write (null outputs absent, as in
Terraform Cloud); moto, in an account of its own per stack, following the applied outputs (EKS
cluster, RDS, bucket, the log group EKS re-creates after a destroy); for Kubernetes,
LocalStack.release_health (Langfuse "healthy" while 03-app's state holds the release).

It proves Terraform-level sequencing, the cluster_enabled each step passes, null upstream outputs
and what Terraform evaluates at destroy time. It cannot see AWS-, EKS- or Helm-side behaviour
(API errors, dependency violations, eventual consistency) or timing.

The journey runs once per module; the teardown-from-state tests restore the three states the
journey's own sequences wrote at that point (the state an interruption there leaves) and tear down.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import pytest

from lfharness.core import tf
from lfharness.stack import pause
from lfharness.stack.stack import ORDER, TeardownError, teardown_workspaces
from lfharness.testing import lifecycle, plan

pytestmark = pytest.mark.lifecycle

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

EMPTY = {workspace: [] for workspace in ORDER}
QUICK_CHECKS = {"check_timeout": 5, "check_interval": 0.5}
QUICK_HEALTH = {"health_timeout": 5, "health_interval": 0.5}


@dataclass
class Journey:
    stack: lifecycle.LocalStack
    aws_at_end: dict[str, list[str]]

    def state_after(self, step: str) -> lifecycle.Snapshot:
        """The three states as the journey left them right after `step` (first occurrence)."""
        for label, snapshot in self.stack.snapshots:
            if label == step:
                return snapshot
        raise KeyError(f"the journey has no step {step!r}; steps: {[str(s) for s in self.stack.steps]}")


@pytest.fixture(scope="module")
def rig(workbench, moto, tmp_path_factory):
    """The three workspaces prepared once, shared by every rehearsal of this module."""
    try:
        with lifecycle.LifecycleRig(workbench, tmp_path_factory.mktemp("lifecycle"), moto) as prepared:
            yield prepared
    except plan.PlanUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture(scope="module")
def journey(rig, tmp_path_factory) -> Journey:
    """Deploy 01 -> 02 -> 03 (as the e2e suite: no variables), pause, resume, rebuild 03-app,
    then `python -m lfharness teardown`'s sequence (teardown_workspaces)."""
    stack = rig.stack(tmp_path_factory.mktemp("journey-run"))
    for workspace in ORDER:
        stack.apply(workspace)
    pause.pause(stack, stack.aws, **QUICK_CHECKS)
    pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)
    stack.rebuild("03-app")
    teardown_workspaces(rig.tfc(), stack)
    return Journey(stack, stack.follower.holds())


# --- the journey ---------------------------------------------------------------------------------

def test_the_journey_passes_each_step_the_cluster_enabled_its_sequence_says(journey):
    """Journey 3, decisions 18 and 22, FR27, FR28: deploy without variables, pause with false
    (03 -> 02 -> 01), resume with true (01 -> 02 -> 03), rebuild 03-app, then every destroy with
    the cluster_enabled its workspace is in (true: all running)."""
    default, on, off = None, "true", "false"
    expected = ([("apply", ws, default) for ws in ORDER]
                + [("apply", ws, off) for ws in pause.PAUSE_ORDER]
                + [("apply", ws, on) for ws in pause.RESUME_ORDER]
                + [("destroy", "03-app", on), ("apply", "03-app", default)]
                + [("destroy", ws, on) for ws in reversed(ORDER)])
    assert [(s.command, s.workspace, s.cluster_enabled) for s in journey.stack.steps] == expected


def test_every_apply_of_the_journey_is_followed_by_a_plan_without_changes(journey):
    """FR29, Journey 3: after each of the journey's ten applies, planning the workspace again with
    the same variables shows no changes."""
    replans = journey.stack.replans
    assert (len(replans), [str(step) for step, changes in replans if changes]) == (10, [])


def test_the_journey_ends_with_every_state_empty(journey):
    """FR27, NFR8: after the teardown the three workspaces' states hold no resource."""
    assert journey.stack.resources() == EMPTY


def test_the_journey_ends_with_nothing_left_in_aws_not_even_the_log_group_eks_recreated(journey):
    """NFR8, issue 15 defect 5: moto, following the outputs, holds no cluster, RDS or bucket at the
    end, and the control-plane log group EKS wrote again after 01-network's destroy was removed by
    the teardown's leftover sweep."""
    assert journey.aws_at_end == {"eks": [], "rds": [], "s3": [], "logs": []}


# --- teardown from every state the stack can be in ---------------------------------------------

# state -> (the journey step that left it, the cluster_enabled of each destroy 03 -> 02 -> 01).
# Running is the journey's own end (its teardown follows the rebuild).
FROM = {
    "paused": ("apply 01-network cluster_enabled=false", ["false", "false", "false"]),
    "half-paused after 03-app": ("apply 03-app cluster_enabled=false", ["false", "true", "true"]),
    "half-paused after 02-deps": ("apply 02-deps cluster_enabled=false", ["false", "false", "true"]),
    "half-resumed after 01-network": ("apply 01-network cluster_enabled=true", ["false", "false", "true"]),
}


@pytest.mark.parametrize("state", list(FROM))
def test_teardown_from_any_state_ends_with_empty_states(state, journey, rig, tmp_path):
    """Issue 15 defect 1, decision 22, FR27: from each state the journey passed through (what an
    interrupted pause or resume leaves), `python -m lfharness teardown`'s sequence destroys every
    workspace with the cluster_enabled it is in and leaves every state empty."""
    step, flags = FROM[state]
    stack = rig.stack(tmp_path / "run", replan=False)
    stack.restore(journey.state_after(step))
    teardown_workspaces(rig.tfc(), stack)
    assert (stack.resources(), [s.cluster_enabled for s in stack.steps]) == (EMPTY, flags)


@dataclass
class SecondTeardown:
    held_before: list[str]
    resources: dict[str, list[str]]
    flags: list[str | None]
    forgotten: list[str]


@pytest.fixture(scope="module")
def after_failed_app_destroy(journey, rig, tmp_path_factory) -> SecondTeardown:
    """A running stack whose teardown failed at 03-app's destroy (injected as the TerraformError a
    failed destroy raises) and went on, destroying 02-deps and 01-network while 03-app kept its
    release, namespace and secrets; then the next teardown, its log lines kept."""
    stack = rig.stack(tmp_path_factory.mktemp("left-behind-run"), replan=False)
    stack.restore(journey.state_after("apply 03-app cluster_enabled=default"))
    stack.faults[("destroy", "03-app")] = tf.TerraformError("helm uninstall timed out (injected)")
    with pytest.raises(TeardownError, match="03-app"):
        teardown_workspaces(rig.tfc(), stack)
    held = stack.resources()["03-app"]
    stack.steps.clear()
    lines: list[str] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: lines.append(record.getMessage())  # type: ignore[method-assign]
    logger = logging.getLogger("lfharness.stack.stack")
    logger.addHandler(handler)
    try:
        teardown_workspaces(rig.tfc(), stack)
    finally:
        logger.removeHandler(handler)
    return SecondTeardown(held, stack.resources(), [s.cluster_enabled for s in stack.steps],
                          [line for line in lines if "without deleting them" in line])


def test_a_teardown_after_a_failed_app_destroy_empties_the_app_too(after_failed_app_destroy):
    """Issue 15 defect 2, FR27: with 01-network and 02-deps gone, the next teardown destroys what
    03-app still holds (its reads of the now-empty upstream outputs are null-safe), with
    cluster_enabled=false, and every state ends empty."""
    result = after_failed_app_destroy
    assert (result.resources, result.flags) == (EMPTY, ["false", "false", "false"])


def test_the_kubernetes_side_of_an_app_whose_cluster_is_gone_is_forgotten_saying_why(after_failed_app_destroy):
    """Issue 15 defect 2: the release and namespace cannot be deleted from a cluster that no longer
    exists; they are removed from 03-app's state, with one log line naming them and the reason."""
    result = after_failed_app_destroy
    kubernetes_side = [a for a in result.held_before if a.startswith(("helm_", "kubernetes_"))]
    assert (bool(kubernetes_side), len(result.forgotten)) == (True, 1)
    assert all(a in result.forgotten[0] for a in kubernetes_side) and "no longer exists" in result.forgotten[0]


# --- refusals ----------------------------------------------------------------------------------

def test_pause_is_refused_on_a_paused_stack_before_any_apply(journey, rig, tmp_path):
    """Journey 3: pausing the paused stack the journey left stops with "already paused" and applies nothing."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.state_after("apply 01-network cluster_enabled=false"))
    with pytest.raises(pause.PauseError, match="already paused"):
        pause.pause(stack, stack.aws, **QUICK_CHECKS)
    assert stack.steps == []


def test_resume_is_refused_on_a_running_stack_before_any_apply(journey, rig, tmp_path):
    """Journey 3: resuming the running stack the journey deployed stops with "not paused" and applies nothing."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.state_after("apply 03-app cluster_enabled=default"))
    with pytest.raises(pause.PauseError, match="not paused"):
        pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)
    assert stack.steps == []


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_are_refused_on_an_absent_stack(action, rig, tmp_path):
    """Journey 3: with empty states there is nothing to pause or resume; nothing is applied."""
    stack = rig.stack(tmp_path / "run")
    run = {"pause": lambda: pause.pause(stack, stack.aws, **QUICK_CHECKS),
           "resume": lambda: pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)}[action]
    with pytest.raises(pause.PauseError, match="nothing to"):
        run()
    assert stack.steps == []
