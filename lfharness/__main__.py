"""`python -m lfharness <command>`: the harness's commands.

The one place where operator code and test machinery meet: the operator commands
(lfharness/commands.py) and the offline tools (lfharness/testing/cli.py) share one parser. No
logic lives here.
"""

from __future__ import annotations

import argparse
import logging
import sys
from collections.abc import Sequence

from lfharness import commands
from lfharness.core import procs
from lfharness.testing import cli


def build_parser() -> argparse.ArgumentParser:
    return commands.build_parser(__doc__.splitlines()[0], extra=(cli.add_offline_commands,),
                                 planner=cli.plan_variants)


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
