"""Plan-tier speed: the harness's plan of a whole workspace (tftest's plan -out, show -json, parse,
run in the Workbench's in-process Terraform worker, lfharness.testing.tfworker) against a bare
`terraform plan` process of the same prepared copy, in turn, several rounds. The former harness
path (tftest starting one terraform process for plan -out and one for show -json) runs in the
same rounds, for comparison.

A benchmark, not a test: `.venv/bin/python benchmarks/plan_overhead.py [ROUNDS]`. 01-network needs
LFK8S_MODULE_MIRROR (or a reachable registry); 03-app plans everywhere. All sides run after the
same `terraform init`, in the same Workbench (provider stand-in servers, local Terraform Cloud fake),
so the ratio is what the harness adds to a plan (or saves: the worker keeps provider schemas
between commands, which a bare plan decodes anew). The load average is printed with the figures.
"""

from __future__ import annotations

import logging
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import tftest

from lfharness.core import tf
from lfharness.testing import plan


def _seconds(action: Callable[[], object]) -> float:
    started = time.monotonic()
    action()
    return time.monotonic() - started


def _load() -> str:
    return "load average " + ", ".join(f"{x:.2f}" for x in os.getloadavg())


def main(rounds: int = 5) -> int:
    logging.basicConfig(level=logging.WARNING)
    print(f"start: {_load()}")
    print(f"{'workspace':<12}{'harness plan':>14}{'bare plan':>12}{'ratio':>8}{'subprocess harness':>20}{'ratio':>8}"
          f"   (median of {rounds})")
    with tempfile.TemporaryDirectory() as tmp, plan.Workbench(Path(tmp) / "bench") as bench:
        if bench.worker is None:
            print("note: no in-process worker (LFK8S_TF_INPROCESS=0 or it failed to start): harness = subprocesses")
        for workspace in ("01-network", "03-app"):
            reason = bench.unavailable(workspace)
            if reason:
                print(f"{workspace:<12}skipped: {reason}")
                continue
            folder = bench.prepare(workspace, Path(tmp) / workspace)
            test = bench.terraform(folder)  # init once, shared by all sides
            old = tftest.TerraformTest(str(folder), binary=str(tf.terraform_bin()), env={**os.environ, **bench.env})
            tf_vars = bench.default_variables(workspace)
            args = ["plan", "-input=false", "-no-color"] + [f"-var={k}={v}" for k, v in tf_vars.items()]
            harness, bare, subprocess_harness = [], [], []
            for _ in range(rounds):  # in turn, so drift in the machine's speed hits every side
                harness.append(_seconds(lambda: test.plan(output=True, tf_vars=tf_vars)))  # noqa: B023 (called at once)
                bare.append(_seconds(lambda: tf.run(args, folder, bench.env)))  # noqa: B023 (called at once)
                subprocess_harness.append(_seconds(lambda: old.plan(output=True, tf_vars=tf_vars)))  # noqa: B023 (called at once)
            h, b, s = (statistics.median(x) for x in (harness, bare, subprocess_harness))
            print(f"{workspace:<12}{h:>13.2f}s{b:>11.2f}s{h / b:>8.2f}{s:>19.2f}s{s / b:>8.2f}")
    print(f"end: {_load()}")
    return 0


if __name__ == "__main__":
    sys.exit(main(int(sys.argv[1]) if len(sys.argv) > 1 else 5))
