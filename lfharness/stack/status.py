"""`python -m lfharness status`: what the stack is and what it costs now, read from the three
workspaces' outputs and states (Terraform Cloud, or the local-backend state files of an offline
run), changing nothing.

The kind (absent, running, paused, partial) is pause.read_state's, from the outputs, so status,
pause and resume agree; a stack whose outputs say "absent" while some workspace still holds
resources is partial. The monthly cost prices what the states hold with the cost table
(cost.state_as_plan + cost.estimate), so it is the bill of the stack as it is, not as planned.
"""

from __future__ import annotations

import dataclasses
import json
import logging
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lfharness.core import redact
from lfharness.core.tfc import TfcClient
from lfharness.stack import clickhouse, cost, pause, workspaces
from lfharness.stack.workspaces import ORDER

LOG = logging.getLogger("lfharness.stack.status")


@dataclass(frozen=True)
class WorkspaceView:
    """One workspace as status sees it. `state` is the raw state: it holds secrets, never shown."""

    workspace: str
    exists: bool
    outputs: dict[str, Any] = field(default_factory=dict)
    state: dict[str, Any] | None = field(default=None, repr=False)

    def resources(self) -> Counter[str]:
        """Managed resource instances by type."""
        counts: Counter[str] = Counter()
        for resource in (self.state or {}).get("resources", []):
            if resource.get("mode") == "managed":
                counts[resource["type"]] += len(resource.get("instances", []))
        return +counts  # drops types with no instance left

    def describe(self) -> str:
        if not self.exists:
            return "no such workspace: holds nothing"
        if self.state is None:
            return "never applied: no state"
        counts = self.resources()
        if not counts:
            return "0 resources"
        listed = ", ".join(f"{n} {kind}" for kind, n in sorted(counts.items()))
        return f"{sum(counts.values())} resources: {listed}"


class _Outputs:
    """The outputs as pause.read_state reads them from a Stack (init is a no-op: nothing runs)."""

    def __init__(self, views: Mapping[str, WorkspaceView]) -> None:
        self._views = views

    def init(self, workspace: str) -> None:
        return None

    def apply(self, workspace: str, *, variables: dict[str, str] | None = None) -> None:
        raise RuntimeError("status only reads")

    def outputs(self, workspace: str) -> dict[str, Any]:
        return dict(self._views[workspace].outputs)


def _state_outputs(state: Mapping[str, Any]) -> dict[str, Any]:
    # Terraform stores no null output, so an absent key is a null (paused) output, as in Terraform Cloud.
    # Only the non-sensitive ones, as from Terraform Cloud: the kind needs no secret, and a view's
    # repr must not carry one (the state itself is left out of repr).
    return {name: out.get("value") for name, out in (state.get("outputs") or {}).items() if not out.get("sensitive")}


def from_terraform_cloud(client: TfcClient) -> dict[str, WorkspaceView]:
    """Each workspace from Terraform Cloud: does it exist, its current outputs (non-sensitive
    values only, read as tfe_outputs reads them, waiting out a 503 right after an apply) and its state."""
    views = {}
    for workspace in ORDER:
        name = workspaces.get(workspace).tfc_name
        if client.get_workspace(name) is None:
            views[workspace] = WorkspaceView(workspace, exists=False)
            continue
        state = client.current_state(name)
        outputs = ({out.name: out.value for out in client.outputs(name).values()} if state is not None else {})
        views[workspace] = WorkspaceView(workspace, True, outputs, state)
    return views


def from_state_dir(folder: Path) -> dict[str, WorkspaceView]:
    """Each workspace from <folder>/<workspace>/terraform.tfstate (local backends, as offline runs use)."""
    views = {}
    for workspace in ORDER:
        path = folder / workspace / "terraform.tfstate"
        state = json.loads(path.read_text()) if path.is_file() else None
        views[workspace] = WorkspaceView(workspace, (folder / workspace).is_dir(),
                                         _state_outputs(state) if state else {}, state)
    return views


@dataclass(frozen=True)
class Status:
    kind: str
    detail: str
    workspaces: dict[str, WorkspaceView]
    estimate: cost.Estimate
    # ClickHouse's placement: the line when no node runs in its volume's zone (decision 24).
    placement: str | None = None

    def clickhouse_volume(self) -> str | None:
        """ClickHouse's volume as 02-deps' outputs give it (decision 24), in one line."""
        deps = self.workspaces[workspaces.DATA_WORKSPACE].outputs
        if not deps.get("clickhouse_volume_id"):
            return None
        return (f"ClickHouse's data: EBS volume {deps['clickhouse_volume_id']} ({deps.get('clickhouse_volume_size_gib')} "
                f"GiB, {deps.get('clickhouse_volume_zone')}), kept by pause and rebuild, deleted only by teardown")


def assess(views: Mapping[str, WorkspaceView], rates: Mapping[str, Any]) -> Status:
    """The stack's kind and monthly cost from what the workspaces hold."""
    holding = [ws for ws in ORDER if views[ws].resources()]
    priced = cost.estimate({ws: cost.state_as_plan(views[ws].state or {}) for ws in holding}, rates)
    if not holding:
        return Status("absent", "no workspace holds any resource", dict(views), priced)
    state = pause.read_state(_Outputs(views))
    if state.kind == "absent":
        return Status("partial", f"{state.detail}, but {', '.join(holding)} still hold resources: run "
                      "`python -m lfharness teardown` (or re-apply what is missing)", dict(views), priced)
    return Status(state.kind, state.detail, dict(views), priced)


def learn_secrets(redactor: redact.Redactor, views: Mapping[str, WorkspaceView]) -> None:
    """Registers the secrets the states hold (sensitive outputs, secret attributes) with the
    redactor, so no log line can show one; the report itself prints none."""
    for view in views.values():
        if view.state:
            redactor.learn_state({"values": {"outputs": view.state.get("outputs") or {},
                                             "root_module": cost.state_as_plan(view.state)["planned_values"]["root_module"]}})


def with_placement(status: Status, session: Any) -> Status:
    """A running stack whose node group has no running instance in the zone of ClickHouse's
    volume gets the line saying so (ClickHouse cannot start anywhere else); read from EC2."""
    network = status.workspaces[workspaces.CLUSTER_WORKSPACE].outputs
    zone = status.workspaces[workspaces.DATA_WORKSPACE].outputs.get("clickhouse_volume_zone")
    if status.kind != "running" or not network.get("cluster_name") or not zone:
        return status
    zones = clickhouse.node_instance_zones(session, network["cluster_name"])
    return dataclasses.replace(status, placement=clickhouse.zone_problem(zones, zone, "running node instance"))


def render(status: Status, rates: Mapping[str, Any], source: str) -> str:
    rows = [f"stack: {status.kind} ({status.detail})", f"read from {source}"]
    rows += [f"  {view.workspace:<11} {view.describe()}" for view in status.workspaces.values()]
    volume = status.clickhouse_volume()
    if volume:
        rows.append(volume)
    if status.placement:
        rows.append(f"WARNING: {status.placement}")
    return "\n".join(rows) + "\n\n" + cost.render("Monthly cost of what the states hold", status.estimate, rates)
