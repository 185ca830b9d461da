"""Plan-tier speed: the harness's plan of a whole workspace (tftest: plan -out, show -json, parse)
against a bare `terraform plan` of the same prepared copy, in turn, several rounds.

A benchmark, not a test: `.venv/bin/python benchmarks/plan_overhead.py [ROUNDS]`. 01-network needs
LFK8S_MODULE_MIRROR (or a reachable registry); 03-app plans everywhere. Both sides run after the
same `terraform init`, in the same Workbench (provider stand-in servers, local Terraform Cloud fake),
so the ratio is what the harness adds to a plan.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lfharness import plan, tf


def _median_seconds(action, rounds: int) -> float:
    samples = []
    for _ in range(rounds):
        started = time.monotonic()
        action()
        samples.append(time.monotonic() - started)
    return statistics.median(samples)


def main(rounds: int = 5) -> int:
    logging.basicConfig(level=logging.WARNING)
    print(f"{'workspace':<12}{'harness plan':>14}{'bare plan':>12}{'ratio':>8}   (median of {rounds})")
    with tempfile.TemporaryDirectory() as tmp, plan.Workbench(Path(tmp) / "bench") as bench:
        for workspace in ("01-network", "03-app"):
            reason = bench.unavailable(workspace)
            if reason:
                print(f"{workspace:<12}skipped: {reason}")
                continue
            folder = bench.prepare(workspace, Path(tmp) / workspace)
            test = bench.terraform(folder)  # init once, shared by both sides
            tf_vars = bench.default_variables(workspace)
            args = ["plan", "-input=false", "-no-color"] + [f"-var={k}={v}" for k, v in tf_vars.items()]
            harness, bare = [], []
            for _ in range(rounds):  # in turn, so drift in the machine's speed hits both sides
                harness.append(_median_seconds(lambda: test.plan(output=True, tf_vars=tf_vars), 1))
                bare.append(_median_seconds(lambda: tf.run(args, folder, bench.env), 1))
            h, b = statistics.median(harness), statistics.median(bare)
            print(f"{workspace:<12}{h:>13.2f}s{b:>11.2f}s{h / b:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
