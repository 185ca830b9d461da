"""The lifecycle rehearsal (issue 15, decision 22): the harness's own sequences through real Terraform,
offline, from every state the stack can be in to empty states.

What runs is the harness's code, unchanged: Stack.apply / rebuild / teardown, pause.pause,
pause.resume, stack.teardown_workspaces and clickhouse.Quiesce (decision 24), on the three real
workspaces. The stand-ins (lfharness/testing/lifecycle.py): the provider stand-in for aws, helm,
kubernetes and null, with the real random, tls, time, cloudinit and tfe providers and the real
modules from LFK8S_MODULE_MIRROR; each workspace's own `cloud` block against the local Terraform
Cloud fake, which keeps the states Terraform uploads (and takes its locks) and serves their outputs
to the downstream tfe_outputs (null outputs absent, as in Terraform Cloud); moto, in an account of
its own per stack, following the applied outputs (EKS cluster, RDS, bucket, the log group EKS
re-creates after a destroy); for Kubernetes, only
LocalStack.release_health (Langfuse "healthy" while 03-app's state holds the release) and the
quiesce's KubeStandIn (web, worker and ClickHouse pods that go when scaled to 0); for Langfuse's
Redis, Debian's redis-server (conftest's `local_redis`), its BullMQ queues empty unless a test
fills them.

It proves Terraform-level sequencing, the cluster_enabled each step passes, where the quiesce
runs, null upstream outputs, that ClickHouse's volume stays in 02-deps' state through a pause and
a rebuild, and what Terraform evaluates at destroy time. It cannot see AWS-, EKS- or Helm-side
behaviour (API errors, dependency violations, eventual consistency), Langfuse's worker or
ClickHouse themselves, or timing.

The journey runs once per module; the teardown-from-state tests restore the three states the
journey's own sequences wrote at that point (the state an interruption there leaves) and tear down.
"""

from __future__ import annotations

import json
import logging
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import redis

from lfharness.core import tf
from lfharness.stack import clickhouse, pause
from lfharness.stack.stack import ORDER, TeardownError, teardown_workspaces
from lfharness.testing import datakeys, lifecycle, plan

pytestmark = pytest.mark.lifecycle

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("01-network") or plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

EMPTY = {workspace: [] for workspace in ORDER}
QUICK_CHECKS = {"check_timeout": 5, "check_interval": 0.5}
QUICK_HEALTH = {"health_timeout": 5, "health_interval": 0.5}
QUICK_QUIESCE = {"drain_timeout": 10, "stop_timeout": 10}
QUIESCE = ("quiesce", "03-app", None)


def _up(stack: lifecycle.LocalStack) -> tuple[str, list[str | None], list[tuple[str, str, str | None]]]:
    """deploy.up through real Terraform: what it did, the zones its zone check was asked about
    (the check itself is the kube tier's), the steps it took."""
    from lfharness.stack import deploy

    asked: list[str | None] = []

    def zone_check(network: dict, zone: str | None) -> None:
        asked.append(zone)

    before = len(stack.steps)
    outcome = deploy.up(stack, stack.aws, stack.release_health(), zone_check=zone_check, **QUICK_HEALTH)
    assert outcome.state.kind == "running"
    return outcome.action, asked, [(s.command, s.workspace, s.cluster_enabled) for s in stack.steps[before:]]


@dataclass
class Journey:
    stack: lifecycle.LocalStack
    aws_at_end: dict[str, list[str]]
    # `up` on empty states, then `up` again on the running stack: (action, zones asked, steps taken).
    ups: list[tuple[str, list[str | None], list[tuple[str, str, str | None]]]]
    # phase ("deployed", "paused", "resumed", "rebuilt", "torn down") -> how many snapshots the
    # stack had taken when it ended: its last state write is stack.snapshots[n - 1].
    phases: dict[str, int]

    def after(self, phase: str) -> lifecycle.Snapshot:
        """The three states as `phase` left them."""
        return self.stack.snapshots[self.phases[phase] - 1][1]

    def through(self, first: str, last: str) -> list[tuple[str, lifecycle.Snapshot]]:
        """Every (step, states) from the end of phase `first` to the end of phase `last`."""
        return self.stack.snapshots[self.phases[first] - 1:self.phases[last]]

    def state_after(self, step: str, since: str | None = None) -> lifecycle.Snapshot:
        """The three states as the journey left them right after `step` (its first occurrence, or
        the first after phase `since` ended)."""
        start = self.phases[since] if since else 0
        for label, snapshot in self.stack.snapshots[start:]:
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
def redis_opener(local_redis) -> Callable[[], Any]:
    """Opens a client on the session's redis-server, Langfuse's Redis for the quiesce."""
    return lifecycle.redis_opener(local_redis)


@pytest.fixture(scope="module")
def journey(rig, redis_opener, tmp_path_factory) -> Journey:
    """Deploy with `python -m lfharness up`'s sequence (01 -> 02 -> 03, as the e2e suite's deploy
    stage applies them), `up` again, pause, resume, rebuild 03-app, then `python -m lfharness
    teardown`'s sequence (teardown_workspaces); pause and rebuild take the quiesce on the Kubernetes
    stand-in and the local Redis (its queues empty)."""
    stack = rig.stack(tmp_path_factory.mktemp("journey-run"))
    # Short waits: the queues are empty and the stand-in's pods go at once; a job another test
    # left in Redis fails the journey in seconds, not after the operator's ten minutes.
    quiesce = stack.quiesce(redis_opener, **QUICK_QUIESCE)
    phases: dict[str, int] = {}
    ups = [_up(stack)]
    phases["deployed"] = len(stack.snapshots)
    ups.append(_up(stack))
    pause.pause(stack, stack.aws, quiesce, **QUICK_CHECKS)
    phases["paused"] = len(stack.snapshots)
    pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)
    phases["resumed"] = len(stack.snapshots)
    stack.rebuild("03-app", quiesce)
    phases["rebuilt"] = len(stack.snapshots)
    teardown_workspaces(rig.tfc(), stack)
    phases["torn down"] = len(stack.snapshots)
    return Journey(stack, stack.follower.holds(), ups, phases)


# --- the journey ---------------------------------------------------------------------------------

def test_the_journey_passes_each_step_the_cluster_enabled_its_sequence_says(journey):
    """Journey 3, decisions 18, 22 and 24, FR27, FR28: deploy with true (`up`), a second `up` that
    applies nothing, quiesce then pause with false (03 -> 02 -> 01), resume with true (01 -> 02 -> 03),
    quiesce then rebuild 03-app, then every destroy with the cluster_enabled its workspace is in
    (true: all running; the rebuild's apply passes none, the default)."""
    default, on, off = None, "true", "false"
    expected = ([("apply", ws, on) for ws in ORDER]
                + [QUIESCE] + [("apply", ws, off) for ws in pause.PAUSE_ORDER]
                + [("apply", ws, on) for ws in pause.RESUME_ORDER]
                + [QUIESCE, ("destroy", "03-app", on), ("apply", "03-app", default)]
                + [("destroy", ws, on) for ws in reversed(ORDER)])
    assert [(s.command, s.workspace, s.cluster_enabled) for s in journey.stack.steps] == expected


def test_the_quiesce_runs_right_before_03_app_goes_in_the_pause_and_the_rebuild_and_nowhere_else(journey):
    """Decision 24, FR28, Journey 3: Langfuse finishes what it accepted and ClickHouse stops right
    before the step that removes the release: pause's 03-app apply and the rebuild's 03-app destroy.
    The deploy, the resume and the teardown (which deletes the volume anyway) run none. Stand-ins:
    the Kubernetes stand-in and the local Redis."""
    steps = journey.stack.steps
    followed_by = [str(steps[i + 1]) if i + 1 < len(steps) else "nothing"
                   for i, step in enumerate(steps) if step.command == lifecycle.QUIESCE]
    assert followed_by == ["apply 03-app cluster_enabled=false", "destroy 03-app cluster_enabled=true"]


def test_each_quiesce_of_the_journey_stops_web_then_worker_then_clickhouse_of_the_release_it_finds(journey):
    """Decision 24: each quiesce is the harness's clickhouse.Quiesce acting on the release as it
    stands (the resumed release is a new one, at one replica each again): web, worker, ClickHouse
    to 0, in that order. Stand-ins: the Kubernetes stand-in (it refuses to scale what is not
    there) and the local Redis."""
    once = [("langfuse", kind, name, 0) for name, kind in lifecycle.RELEASE_OWNERS.items()]
    assert journey.stack.kube.calls == once + once


def _clickhouse_volume(snapshot: lifecycle.Snapshot) -> tuple[str | None, bool]:
    """02-deps' state at a snapshot: its output clickhouse_volume_id, and whether it holds
    aws_ebs_volume.clickhouse."""
    state = json.loads(snapshot["02-deps"] or b"{}")
    volume_id = state.get("outputs", {}).get("clickhouse_volume_id", {}).get("value")
    held = any(r["mode"] == "managed" and r["type"] == "aws_ebs_volume" and r["name"] == "clickhouse"
               and r.get("instances") for r in state.get("resources", []))
    return volume_id, held


def test_clickhouses_volume_is_the_same_one_after_the_deploy_the_pause_the_resume_and_the_rebuild(journey):
    """Decision 24, FR28, Journey 3: traces live on the EBS volume 02-deps owns; the pause (02-deps
    applied with cluster_enabled=false), the resume and the rebuild of 03-app keep it: after every
    state write from the deploy's end to the rebuild's, 02-deps' state holds aws_ebs_volume.clickhouse
    and outputs the clickhouse_volume_id it had after the deploy. The provider stand-in plans no
    replacement and derives ids from the configuration, so a volume re-created alike would keep its
    id: what shows it going is a state write without it, hence every write is checked."""
    deployed_id, _ = _clickhouse_volume(journey.after("deployed"))
    changed = [(step, volume) for step, states in journey.through("deployed", "rebuilt")
               if (volume := _clickhouse_volume(states)) != (deployed_id, True)]
    assert (bool(deployed_id), changed) == (True, [])


def test_the_teardown_deletes_clickhouses_volume(journey):
    """Decision 24, FR27, NFR8: the teardown's 02-deps destroy deletes ClickHouse's volume with
    RDS and S3; 02-deps' state holds neither the volume nor its id afterwards."""
    assert _clickhouse_volume(journey.after("torn down")) == (None, False)


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
# The resume's applies carry the same labels as the deploy's (`up` passes true): look after the pause.
SINCE = {"half-resumed after 01-network": "paused"}


@pytest.mark.parametrize("state", list(FROM))
def test_teardown_from_any_state_ends_with_empty_states(state, journey, rig, tmp_path):
    """Issue 15 defect 1, decision 22, FR27: from each state the journey passed through (what an
    interrupted pause or resume leaves), `python -m lfharness teardown`'s sequence destroys every
    workspace with the cluster_enabled it is in and leaves every state empty."""
    step, flags = FROM[state]
    stack = rig.stack(tmp_path / "run", replan=False)
    stack.restore(journey.state_after(step, SINCE.get(state)))
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
    stack.restore(journey.after("deployed"))
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

def test_pause_is_refused_on_a_paused_stack_before_any_apply(journey, rig, redis_opener, tmp_path):
    """Journey 3: pausing the paused stack the journey left stops with "already paused" and
    quiesces and applies nothing."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.state_after("apply 01-network cluster_enabled=false"))
    with pytest.raises(pause.PauseError, match="already paused"):
        pause.pause(stack, stack.aws, stack.quiesce(redis_opener), **QUICK_CHECKS)
    assert stack.steps == []


def test_resume_is_refused_on_a_running_stack_before_any_apply(journey, rig, tmp_path):
    """Journey 3: resuming the running stack the journey deployed stops with "not paused" and applies nothing."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.after("deployed"))
    with pytest.raises(pause.PauseError, match="not paused"):
        pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)
    assert stack.steps == []


@pytest.mark.parametrize("action", ["pause", "resume"])
def test_pause_and_resume_are_refused_on_an_absent_stack(action, rig, redis_opener, tmp_path):
    """Journey 3: with empty states there is nothing to pause or resume; nothing is quiesced or applied."""
    stack = rig.stack(tmp_path / "run")
    run = {"pause": lambda: pause.pause(stack, stack.aws, stack.quiesce(redis_opener), **QUICK_CHECKS),
           "resume": lambda: pause.resume(stack, stack.aws, stack.release_health(), **QUICK_HEALTH)}[action]
    with pytest.raises(pause.PauseError, match="nothing to"):
        run()
    assert stack.steps == []


# --- the quiesce stops the pause -----------------------------------------------------------------

STUCK_KEY = f"{clickhouse.BULLMQ_PREFIX}:ingestion-queue:wait"


@pytest.fixture
def stuck_queue(local_redis) -> Iterator[str]:
    """One job waiting in Langfuse's ingestion queue, in BullMQ's layout, that no worker takes.
    The session's Redis is shared: only this key is removed afterwards, and it must not exist
    before (another test's job would make the count in the message wrong)."""
    with redis.Redis(host=local_redis.host, port=local_redis.port, password=local_redis.password) as client:
        assert not client.exists(STUCK_KEY), f"{STUCK_KEY} left behind by another test"
        try:  # the removal is in place before the job is written
            client.lpush(STUCK_KEY, "job-1")
            yield STUCK_KEY
        finally:
            client.delete(STUCK_KEY)


def test_a_queue_that_never_empties_stops_the_pause_before_anything_is_applied(journey, rig, redis_opener,
                                                                               stuck_queue, tmp_path):
    """Decision 24, Journey 3: on the running stack the journey deployed, a pause whose quiesce
    finds a job that never leaves the queue stops with QuiesceError naming the queue and its count,
    and nothing is applied or destroyed: the quiesce is the only step and the three states are
    byte for byte as before. Stand-ins: the local Redis (the job), the Kubernetes stand-in; the
    rig resets states and moto for the next stack, so no teardown is needed here."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.after("deployed"))
    before = stack.snapshot()
    with pytest.raises(clickhouse.QuiesceError, match=re.escape("(ingestion-queue: 1)")):
        pause.pause(stack, stack.aws, stack.quiesce(redis_opener, **{**QUICK_QUIESCE, "drain_timeout": 0.5}),
                    **QUICK_CHECKS)
    assert ([str(s) for s in stack.steps], stack.snapshot() == before) == (["quiesce 03-app"], True)


def test_a_release_still_on_the_charts_own_clickhouse_claim_stops_the_pause_before_anything_goes(
        journey, rig, redis_opener, tmp_path):
    """Decision 24, issue 23 item 4: a stack deployed before ClickHouse had its own volume (its
    claim data-langfuse-clickhouse-shard0-0 in the namespace) would lose its data with 03-app: the
    pause's quiesce refuses, naming the claim, and nothing is scaled, applied or destroyed.
    Stand-ins: the Kubernetes stand-in holding the old claim, the local Redis."""
    stack = rig.stack(tmp_path / "run")
    stack.restore(journey.after("deployed"))
    stack.kube.claims.append(clickhouse.LEGACY_CLAIM)
    before = stack.snapshot()
    with pytest.raises(clickhouse.QuiesceError, match=re.escape(f"langfuse/{clickhouse.LEGACY_CLAIM}")):
        pause.pause(stack, stack.aws, stack.quiesce(redis_opener, **QUICK_QUIESCE), **QUICK_CHECKS)
    assert ([str(s) for s in stack.steps], stack.kube.calls, stack.snapshot() == before) == (
        ["quiesce 03-app"], [], True)


# --- `python -m lfharness up` (issue 27): from whatever state to running --------------------------

def test_up_from_nothing_deploys_01_02_03_and_checks_the_zone_before_03_app(journey):
    """Issue 27, FR27, decision 24: on empty states `up` applies 01 -> 02 -> 03 with
    cluster_enabled=true, asking the zone check about ClickHouse's volume zone (02-deps' output)
    before 03-app; the stack ends running (Langfuse's health stand-in answers 200)."""
    action, asked, steps = journey.ups[0]
    zone = json.loads(journey.after("deployed")["02-deps"])["outputs"]["clickhouse_volume_zone"]["value"]
    assert (action, steps, asked) == ("deployed", [("apply", ws, "true") for ws in ORDER], [zone])


def test_up_on_a_running_stack_changes_nothing_and_says_so(journey):
    """Issue 27, FR29: a second `up` applies and destroys nothing and reports "unchanged"."""
    action, _, steps = journey.ups[1]
    assert (action, steps) == ("unchanged", [])


def test_up_from_a_paused_stack_resumes_it(rig, journey, tmp_path):
    """Issue 27, Journey 3: from the journey's paused states `up` is the resume: 01 -> 02 -> 03 with
    cluster_enabled=true, ending running."""
    stack = rig.stack(tmp_path, replan=False)
    stack.restore(journey.after("paused"))
    action, _, steps = _up(stack)
    assert (action, steps) == ("resumed", [("apply", ws, "true") for ws in pause.RESUME_ORDER])


def test_up_from_a_half_done_first_deploy_finishes_it(rig, journey, tmp_path):
    """Issue 27, decision 22: an interrupted first deploy (only 01-network applied) is finished by
    `up`: it applies the three in order (01-network's apply changes nothing) and ends running."""
    stack = rig.stack(tmp_path, replan=False)
    stack.restore(journey.state_after("apply 01-network cluster_enabled=true"))
    action, _, steps = _up(stack)
    assert (action, steps) == ("deployed", [("apply", ws, "true") for ws in ORDER])


def test_no_generated_secret_is_ever_in_03_apps_state_through_the_journey(journey):
    """Issue 26: after every step of the journey (deploy, `up` again, pause, resume, rebuild,
    teardown) 03-app's state file holds none of the secrets 02-deps generated, grepped with their
    real values (raw, base64, JSON-escaped) read from 02-deps' own states along the way; 03-app
    takes them through the ephemeral tfe_outputs and the Secret's write-only data_wo only. The real
    random provider generated them; the real tfe provider read them from the local Terraform Cloud
    fake."""
    generated: dict[str, str] = {}
    for _, snapshot in journey.stack.snapshots:
        deps = json.loads(snapshot["02-deps"]) if snapshot.get("02-deps") else {}
        for name, output in deps.get("outputs", {}).items():
            if output.get("sensitive") and isinstance(output.get("value"), str):
                generated[f"{name} ({datakeys.digest(output['value'])[:8]})"] = output["value"]
    assert len(generated) >= 7, "the journey's 02-deps states held fewer generated secrets than it outputs"
    found = {label: datakeys.labels_found(snapshot["03-app"].decode(), generated)
             for label, snapshot in journey.stack.snapshots if snapshot.get("03-app")}
    assert {label: hits for label, hits in found.items() if hits} == {}
