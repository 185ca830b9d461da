"""`python -m lfharness up` (issue 27, Journey 1): from whatever state the stack is in to running, with the
zone check before 03-app and Langfuse's health at the end (static tier; issue 28's mutation score of
lfharness/stack/deploy.py, whose other coverage is the lifecycle tier).

Stand-in: a small fake stack recording each init and apply in order; an apply with cluster_enabled=true
gives the workspace the outputs a real apply writes, so pause.read_state reads the kind the real
workspaces would give. The health and zone checks are functions recording their calls.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from typing import Any

import pytest
import requests

from lfharness.stack import deploy, pause
from lfharness.stack.k8s import KubectlError

pytestmark = pytest.mark.static

ZONE = "us-east-1a"
RUNNING: dict[str, dict[str, Any]] = {
    "01-network": {"vpc_id": "vpc-1", "public_subnet_ids": ["subnet-1", "subnet-2"], "cluster_name": "langfuse",
                   "cluster_endpoint": "https://example.eks.amazonaws.com", "cluster_ca_data": "Q0E=",
                   "node_security_group_id": "sg-0123456789abcdef0"},
    "02-deps": {"rds_endpoint": "langfuse.c1x2y3.us-east-1.rds.amazonaws.com:5432", "s3_bucket_name": "langfuse-bucket",
                "clickhouse_volume_zone": ZONE, "irsa_role_arn": "arn:aws:iam::123456789012:role/langfuse-s3"},
    "03-app": {"namespace": "langfuse", "project_id": "p-1"},
}
PAUSED = {"01-network": {"vpc_id": "vpc-1", "public_subnet_ids": ["subnet-1", "subnet-2"], "cluster_name": ""},
          "02-deps": {k: v for k, v in RUNNING["02-deps"].items() if k != "irsa_role_arn"}, "03-app": {}}
PARTIAL = {**PAUSED, "01-network": RUNNING["01-network"]}  # an interrupted resume: the cluster, no release
ABSENT: dict[str, dict[str, Any]] = {"01-network": {}, "02-deps": {}, "03-app": {}}


class FakeStack:
    """Records init, apply (with its variables) and the checks in one list, in order; an apply with
    cluster_enabled=true writes the running workspace's outputs, as a real apply does."""

    def __init__(self, outputs: Mapping[str, dict[str, Any]]) -> None:
        self._outputs = {ws: dict(values) for ws, values in outputs.items()}
        self.calls: list[tuple[str, ...]] = []

    def init(self, workspace: str) -> None:
        self.calls.append(("init", workspace))

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        enabled = (variables or {}).get("cluster_enabled")
        self.calls.append(("apply", workspace, str(enabled)))
        if enabled == "true":
            self._outputs[workspace] = dict(RUNNING[workspace])

    def outputs(self, workspace: str) -> dict[str, Any]:
        return dict(self._outputs[workspace])

    def steps(self) -> list[tuple[str, ...]]:
        """The applies and checks, without the inits (read_state's)."""
        return [call for call in self.calls if call[0] != "init"]


def _health(stack: FakeStack, answers: list[int | Exception]) -> Callable[[Mapping[str, Any]], int]:
    """Answers in turn (the last one repeated); records the cluster it was asked about."""
    def health(network: Mapping[str, Any]) -> int:
        stack.calls.append(("health", str(network.get("cluster_name"))))
        answer = answers.pop(0) if len(answers) > 1 else answers[0]
        if isinstance(answer, Exception):
            raise answer
        return answer
    return health


def _zone_check(stack: FakeStack, problem: str | None = None) -> Callable[[Mapping[str, Any], str | None], str | None]:
    def check(network: Mapping[str, Any], zone: str | None) -> str | None:
        stack.calls.append(("zone check", str(network.get("cluster_name")), str(zone)))
        return problem
    return check


FAST = {"health_timeout": 2, "health_interval": 0.01}
DEPLOYED = [("apply", "01-network", "true"), ("apply", "02-deps", "true"), ("zone check", "langfuse", ZONE),
            ("apply", "03-app", "true"), ("health", "langfuse")]


def test_up_on_an_absent_stack_applies_01_02_03_with_the_cluster_and_checks_the_zone_before_03_app():
    """Journey 1, issue 27, decision 24: from nothing, `up` applies 01-network, 02-deps and 03-app in that
    order, each with cluster_enabled=true, checks that a node runs in the zone of ClickHouse's volume
    before 03-app, waits for Langfuse's health and reports "deployed" with the stack running (fake stack)."""
    stack = FakeStack(ABSENT)
    outcome = deploy.up(stack, None, _health(stack, [200]), zone_check=_zone_check(stack), **FAST)
    assert (outcome.action, outcome.state.kind, stack.steps()) == ("deployed", "running", DEPLOYED)


@pytest.mark.parametrize("start", [PAUSED, PARTIAL], ids=["paused", "half-resumed"])
def test_up_on_a_paused_or_half_resumed_stack_resumes_it(start):
    """Journey 1, issue 27: a paused stack, or one an interrupted resume left partial, is resumed
    (pause.resume: 01, 02, zone check, 03 with cluster_enabled=true, then health) and reported
    "resumed", running (fake stack)."""
    stack = FakeStack(start)
    outcome = deploy.up(stack, None, _health(stack, [200]), zone_check=_zone_check(stack), **FAST)
    assert (outcome.action, outcome.state.kind, stack.steps()) == ("resumed", "running", DEPLOYED)


def test_up_on_a_running_stack_applies_nothing_and_checks_its_health():
    """Journey 1, issue 27: `up` on a running stack applies nothing, asks Langfuse's health and reports
    "unchanged" (fake stack)."""
    stack = FakeStack(RUNNING)
    outcome = deploy.up(stack, None, _health(stack, [200]), zone_check=_zone_check(stack), **FAST)
    assert (outcome.action, outcome.state.kind, stack.steps()) == ("unchanged", "running", [("health", "langfuse")])


@pytest.mark.parametrize("start", [ABSENT, RUNNING, PAUSED], ids=["absent", "running", "paused"])
def test_up_waits_out_a_cluster_still_coming_up_until_health_answers_200(start):
    """Journey 1, issue 27: while the port-forward cannot start yet or the connection is refused, or
    Langfuse answers 503, `up` keeps asking until it answers 200 (fake stack, health answering
    KubectlError, ConnectionError, 503, then 200)."""
    stack = FakeStack(start)
    answers: list[int | Exception] = [KubectlError("pod not ready"), requests.ConnectionError("refused"), 503, 200]
    outcome = deploy.up(stack, None, _health(stack, answers), zone_check=_zone_check(stack), **FAST)
    assert (outcome.state.kind, stack.steps()[-4:]) == ("running", [("health", "langfuse")] * 4)


@pytest.mark.parametrize("start", [ABSENT, RUNNING], ids=["absent", "running"])
def test_up_whose_langfuse_never_answers_200_stops_saying_where_to_look(start):
    """Journey 1, issue 27: Langfuse never healthy within the wait: DeployError saying the stack is applied
    but not healthy, the last answer, `python -m lfharness status` and that the run folder holds the
    logs (fake stack, health answering 503)."""
    stack = FakeStack(start)
    with pytest.raises(deploy.DeployError) as caught:
        deploy.up(stack, None, _health(stack, [503]), zone_check=_zone_check(stack), health_timeout=0.05,
                  health_interval=0.01)
    message = str(caught.value)
    assert (message.startswith("the stack is applied but Langfuse is not healthy: gave up waiting for Langfuse "
                               "/api/public/health?failIfDatabaseUnavailable=true through a port-forward"),
            "last: value not accepted: 503" in message,
            message.endswith(". `python -m lfharness status` shows the workspaces; the run folder holds the logs")) == (
        True, True, True)


def test_up_stops_before_03_app_when_no_node_runs_in_clickhouses_zone():
    """Decision 24, issue 27: when the zone check finds no Ready node in the zone of ClickHouse's volume,
    `up` stops with DeployError saying 01-network and 02-deps are applied and 03-app is not, with the
    check's line; 03-app is not applied and no health is asked (fake stack)."""
    stack = FakeStack(ABSENT)
    problem = f"no Ready node in {ZONE}, the zone of ClickHouse's volume"
    with pytest.raises(deploy.DeployError) as caught:
        deploy.up(stack, None, _health(stack, [200]), zone_check=_zone_check(stack, problem), **FAST)
    assert (str(caught.value), stack.steps()) == (
        f"01-network and 02-deps are applied, 03-app is not: {problem}", DEPLOYED[:3])


def test_up_resuming_a_paused_stack_also_stops_before_03_app_on_a_zone_problem():
    """Decision 24, issue 27: the zone check applies to a resume by `up` too: 03-app is not applied
    (fake stack)."""
    stack = FakeStack(PAUSED)
    with pytest.raises(pause.PauseError, match="03-app is not: no Ready node"):
        deploy.up(stack, None, _health(stack, [200]), zone_check=_zone_check(stack, "no Ready node"), **FAST)
    assert stack.steps() == DEPLOYED[:3]


def test_up_resuming_uses_the_given_health_wait():
    """Issue 27: a resume by `up` gives up on Langfuse's health after the wait `up` was given, not the
    default 15 minutes (fake stack, health answering 503)."""
    stack = FakeStack(PAUSED)
    with pytest.raises(pause.PauseError, match="not healthy"):
        deploy.up(stack, None, _health(stack, [503]), zone_check=_zone_check(stack), health_timeout=0.05,
                  health_interval=0.01)


def test_up_without_a_zone_check_deploys_all_three():
    """Issue 27: with no zone check (a caller that has no cluster access to give), `up` applies all three
    and waits for health (fake stack)."""
    stack = FakeStack(ABSENT)
    outcome = deploy.up(stack, None, _health(stack, [200]), **FAST)
    assert (outcome.action, stack.steps()) == ("deployed", [c for c in DEPLOYED if c[0] != "zone check"])


def test_next_steps_say_how_to_reach_log_in_and_send_a_trace():
    """Journey 1, FR19, issue 27: after `up`, the operator reads how to reach the UI and API (connect),
    where to log in with which account and project, and how to get the keys for an application."""
    assert deploy.next_steps({"project_id": "p-1"}).splitlines() == [
        "Langfuse is running. Next:",
        "  .venv/bin/python -m lfharness connect      # UI and API on http://localhost:3000 (held until Ctrl-C)",
        "  log in at http://localhost:3000 as LANGFUSE_ADMIN_EMAIL from .env (project p-1)",
        "  .venv/bin/python -m lfharness keys --out .langfuse.env   # LANGFUSE_HOST and the project keys for your app"]
    assert "(project ?)" in deploy.next_steps({})


def test_up_fails_at_once_on_a_health_check_error_that_is_no_cluster_coming_up():
    """Issue 27: an error of the health check itself (a kubeconfig path that does not exist) stops `up`
    at once with that error, instead of being waited out for 15 minutes and reported as "not healthy"
    (fake stack, health raising FileNotFoundError within a 5 s wait)."""
    stack = FakeStack(RUNNING)
    with pytest.raises(FileNotFoundError):
        deploy.up(stack, None, _health(stack, [FileNotFoundError("kubeconfig")]), health_timeout=5,
                  health_interval=0.01)


@pytest.mark.parametrize(("start", "lines"), [
    (ABSENT, ["up: stack is absent (01-network, 02-deps not applied)", "up: deploy 01 -> 02 -> 03 ...",
              "up: apply 01-network ...", "up: apply 02-deps ...", "up: apply 03-app ..."]),
    (RUNNING, ["up: stack is running (cluster langfuse and the Langfuse release exist)",
               "up: already running and healthy: nothing changed"]),
], ids=["absent", "running"])
def test_up_run_log_says_the_kind_found_and_each_step_taken(caplog, start, lines):
    """Journey 1, issue 27: the run log (logger lfharness.stack.deploy) says what `up` found, with
    why, then each apply it starts, or that a running stack was left unchanged (fake stack)."""
    stack = FakeStack(start)
    with caplog.at_level(logging.INFO, logger="lfharness.stack.deploy"):
        deploy.up(stack, None, _health(stack, [200]), **FAST)
    logged = [r.getMessage() for r in caplog.records if r.name == "lfharness.stack.deploy"]
    assert [line for line in lines if line not in logged] == []
