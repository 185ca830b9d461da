"""Deploy and keep the stack (`python -m lfharness up`): from whatever state it is in to running.

- absent (nothing applied, or an interrupted first deploy): 01 -> 02 -> 03 applied, each with
  cluster_enabled=true (re-applying what an interrupted run already made changes nothing);
- paused, or half-paused / half-resumed: `pause.resume` (it finishes what an interrupted run left);
- running: nothing is applied; the health check says whether Langfuse answers.

Before 03-app, the zone check stops the deploy when no Ready node is in the zone of ClickHouse's
volume (decision 24) instead of a Helm timeout. The e2e suite's deploy stage applies each workspace
with `apply_workspace`, the function `up` uses, so both take the same steps.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import requests

from lfharness.core.wait import Stopwatch, WaitTimeout, retry
from lfharness.stack import pause
from lfharness.stack.k8s import KubectlError
from lfharness.stack.workspaces import APP_WORKSPACE, CLUSTER_WORKSPACE, DATA_WORKSPACE, ORDER

LOG = logging.getLogger("lfharness.stack.deploy")


class DeployError(RuntimeError):
    """The deploy stopped: what, and how to proceed."""


@dataclass(frozen=True)
class Outcome:
    """What `up` did: "deployed", "resumed" or "unchanged", and the state it ended in."""

    action: str
    state: pause.StackState


def apply_workspace(stack: pause.StackLike, workspace: str, zone_check: pause.ZoneCheck | None = None) -> None:
    """One workspace of the deploy, with cluster_enabled=true; 03-app only once ClickHouse's
    volume has a Ready node in its zone."""
    if workspace == APP_WORKSPACE and zone_check is not None:
        problem = zone_check(stack.outputs(CLUSTER_WORKSPACE), stack.outputs(DATA_WORKSPACE).get("clickhouse_volume_zone"))
        if problem:
            raise DeployError(f"01-network and 02-deps are applied, 03-app is not: {problem}")
    with Stopwatch(f"up: apply {workspace}", logger=LOG):
        stack.apply(workspace, variables={"cluster_enabled": "true"})


def _healthy(stack: pause.StackLike, health: pause.HealthCheck, timeout: float, interval: float) -> None:
    network = stack.outputs(CLUSTER_WORKSPACE)
    try:
        retry(lambda: health(network), timeout=timeout, interval=interval,
              what="Langfuse /api/public/health?failIfDatabaseUnavailable=true through a port-forward",
              validator=lambda status: status == 200, retry_on=(KubectlError, requests.RequestException))
    except WaitTimeout as exc:
        raise DeployError(f"the stack is applied but Langfuse is not healthy: {exc}. `python -m lfharness status` "
                          "shows the workspaces; the run folder holds the logs") from exc


def up(stack: pause.StackLike, session: Any, health: pause.HealthCheck, *, zone_check: pause.ZoneCheck | None = None,
       health_timeout: float = 900, health_interval: float = 15) -> Outcome:
    """From whatever state the stack is in to running (see the module docstring); ends with health 200."""
    state = pause.read_state(stack)
    LOG.info("up: stack is %s (%s)", state.kind, state.detail)
    if state.kind == "running":
        _healthy(stack, health, health_timeout, health_interval)
        LOG.info("up: already running and healthy: nothing changed")
        return Outcome("unchanged", state)
    if state.kind in ("paused", "partial"):
        resumed = pause.resume(stack, session, health, zone_check=zone_check, health_timeout=health_timeout,
                               health_interval=health_interval)
        return Outcome("resumed", resumed)
    with Stopwatch("up: deploy 01 -> 02 -> 03", logger=LOG):
        for workspace in ORDER:
            apply_workspace(stack, workspace, zone_check)
        _healthy(stack, health, health_timeout, health_interval)
    return Outcome("deployed", pause.read_state(stack))


def next_steps(outputs: Mapping[str, Any]) -> str:
    """What to do once the stack runs: reach it, log in, send a trace."""
    return "\n".join([
        "Langfuse is running. Next:",
        "  .venv/bin/python -m lfharness connect      # UI and API on http://localhost:3000 (held until Ctrl-C)",
        f"  log in at http://localhost:3000 as LANGFUSE_ADMIN_EMAIL from .env (project {outputs.get('project_id', '?')})",
        "  .venv/bin/python -m lfharness keys --out .langfuse.env   # LANGFUSE_HOST and the project keys for your app",
    ])
