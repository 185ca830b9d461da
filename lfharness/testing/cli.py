"""The offline tools of `python -m lfharness`: `plan` (one workspace planned as the plan tier
does), `charttree` (the chart tree from clones) and the offline planner behind `cost`.

Test machinery: `lfharness/__main__.py` joins these to the operator commands; operator code never
imports this module.
"""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any

from lfharness.commands import add_command
from lfharness.stack import cost, workspaces
from lfharness.testing import charttree

LOG = logging.getLogger("lfharness.testing.cli")


def plan_variants(variants: list[str], folder: Path) -> dict[str, dict[str, dict[str, Any]]]:
    """Offline plans of each variant's workspaces with the plan tier's Workbench."""
    from lfharness.testing import plan  # noqa: PLC0415 (heavy: tftest, the fakes; only the command needs it)

    plans: dict[str, dict[str, dict[str, Any]]] = {}
    try:
        with plan.Workbench(folder / "bench") as bench:
            for variant in variants:
                plans[variant] = {}
                for workspace, variables in cost.VARIANTS[variant].items():
                    LOG.info("planning %s for the %s stack", workspace, variant)
                    planned = bench.plan(workspace, folder / variant / workspace, variables)
                    plans[variant][workspace] = planned.raw
    except plan.PlanUnavailable as exc:
        raise cost.PlansUnavailable(str(exc)) from exc
    return plans


def _plan(args: argparse.Namespace) -> int:
    from lfharness.testing import plan  # noqa: PLC0415

    return plan.plan_main(args.workspace, args.json, dict(args.var or []))


def add_offline_commands(commands: argparse._SubParsersAction) -> None:
    """Registers `plan` and `charttree`."""
    planned = add_command(commands, "plan",
                          "plan one workspace offline exactly as the plan tier does (provider stand-in, local "
                          "Terraform Cloud fake, modules from LFK8S_MODULE_MIRROR) and print its summary", _plan)
    planned.add_argument("workspace", choices=list(workspaces.ORDER), help="the workspace folder under terraform/")
    planned.add_argument("--json", type=Path, help="also write `terraform show -json` of the plan here "
                         "(it holds the planned secrets: keep it private)")
    planned.add_argument("--var", action="append", type=lambda s: tuple(s.split("=", 1)), metavar="NAME=VALUE",
                         help="a workspace variable, e.g. cluster_enabled=false (repeatable)")
    charttree.add_arguments(add_command(commands, "charttree",
                                        "assemble the pinned chart with the dependencies its Chart.yaml / "
                                        "Chart.lock pin from git clones, check it as the chart tier does, print "
                                        "LFK8S_CHART_DIR", charttree.command))
