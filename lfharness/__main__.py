"""`python -m lfharness <command>`: the harness's operator commands.

A small dispatcher: each subcommand is one parser entry whose handler is a function in the
module that owns the concern; no logic lives here. Add a command with `_command(...)`.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from lfharness import cost, envfile, pause, plan, procs, stack, status, tf
from lfharness.offline import charttree

Handler = Callable[[argparse.Namespace], int]


def _command(commands: argparse._SubParsersAction, name: str, help_text: str,
             handler: Handler) -> argparse.ArgumentParser:
    parser = commands.add_parser(name, help=help_text, description=help_text)
    parser.set_defaults(handler=handler)
    return parser


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m lfharness", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="command")

    teardown = _command(commands, "teardown",
                        "destroy what the workspaces' states still hold, 03-app -> 02-deps -> 01-network, "
                        "reading .env like the e2e suite (idempotent)",
                        lambda a: stack.teardown_command(a.env_file, a.runs_dir))
    teardown.add_argument("--env-file", type=Path, default=envfile.default_path(),
                          help="the .env to read (default: $LFK8S_ENV_FILE or the repository's .env)")
    teardown.add_argument("--runs-dir", type=Path, default=tf.REPO_ROOT / ".runs",
                          help="where the run folder with the terraform logs goes (default: .runs/)")
    planned = _command(commands, "plan",
                       "plan one workspace offline exactly as the plan tier does (provider stand-in, local "
                       "Terraform Cloud fake, modules from LFK8S_MODULE_MIRROR) and print its summary",
                       lambda a: plan.plan_main(a.workspace, a.json, dict(a.var or [])))
    planned.add_argument("workspace", choices=sorted(tf.WORKSPACES), help="the workspace folder under terraform/")
    planned.add_argument("--json", type=Path, help="also write `terraform show -json` of the plan here "
                         "(it holds the planned secrets: keep it private)")
    planned.add_argument("--var", action="append", type=lambda s: tuple(s.split("=", 1)), metavar="NAME=VALUE",
                         help="a workspace variable, e.g. cluster_enabled=false (repeatable)")
    for name, help_text, handler in (
            ("pause", "pause the stack to save money (Journey 3): 03-app -> 02-deps -> 01-network with "
             "cluster_enabled=false; EKS and its nodes go, RDS, S3 and the secrets stay; ends with a check",
             pause.pause_command),
            ("resume", "resume a paused stack: 01-network -> 02-deps -> 03-app with cluster_enabled=true; "
             "ends when Langfuse's health endpoint answers 200 through a port-forward",
             pause.resume_command)):
        command = _command(commands, name, help_text, lambda a, run=handler: run(a.env_file, a.runs_dir))
        command.add_argument("--env-file", type=Path, default=envfile.default_path(),
                             help="the .env to read (default: $LFK8S_ENV_FILE or the repository's .env)")
        command.add_argument("--runs-dir", type=Path, default=tf.REPO_ROOT / ".runs",
                             help="where the run folder with the terraform logs goes (default: .runs/)")
    shown = _command(commands, "status",
                     "whether the stack is absent, running, paused or partial, what each workspace's state "
                     "holds, and the monthly cost of that (read only; Terraform Cloud from .env, or --state-dir)",
                     lambda a: status.status_command(a.env_file, a.state_dir))
    shown.add_argument("--env-file", type=Path, default=envfile.default_path(),
                       help="the .env to read (default: $LFK8S_ENV_FILE or the repository's .env)")
    shown.add_argument("--state-dir", type=Path,
                       help="read <dir>/<workspace>/terraform.tfstate (local backends of an offline run) instead")
    priced = _command(commands, "cost",
                      "monthly cost of the full, Spot and paused stacks read from their plans (offline, as "
                      "the plan tier plans), line by line, with the rate table used (NFR6, NFR8)",
                      lambda a: cost.cost_command(a.variant or list(cost.VARIANTS), a.plan_dir))
    priced.add_argument("--variant", action="append", choices=list(cost.VARIANTS),
                        help="price only this variant (repeatable; default: all)")
    priced.add_argument("--plan-dir", type=Path, help="read <variant>/<workspace>.json (terraform show -json) "
                        "from here instead of planning")
    charttree.add_arguments(_command(commands, "charttree",
                                     "assemble the pinned chart with the dependencies its Chart.yaml / Chart.lock "
                                     "pin from git clones, check it as the chart tier does, print LFK8S_CHART_DIR",
                                     charttree.command))
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    undo = procs.handle_termination()  # SIGTERM (a CI cancel) stops a command like Ctrl-C does
    try:
        return args.handler(args)
    finally:
        undo()


if __name__ == "__main__":
    sys.exit(main())
