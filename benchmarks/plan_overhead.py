"""Plan-tier speed: tftest's plan (plan -out + show -json + parse) against a bare `terraform plan`
of the same offline subset, side by side. A benchmark, not a test: `.venv/bin/python benchmarks/plan_overhead.py`.

Both sides run after the same `terraform init`, so the ratio is the harness overhead.
"""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

from lfharness import plan, tf

CASES = {
    "01-network": (["variables.tf"], []),
    "02-deps": (["variables.tf", "data.tf"], ["tfe"]),
    "03-app": (["variables.tf", "data.tf", "secrets.tf"], ["random", "tfe"]),
}
VARS = {"tfc_organization": "langfuse-test", "langfuse_admin_email": "ops@example.com",
        "langfuse_admin_password": "correct-horse-battery"}
ROUNDS = 3


def main() -> int:
    logging.basicConfig(level=logging.WARNING)
    missing = plan.missing_providers(["random", "tfe"])
    if missing:
        print("cannot benchmark:", "; ".join(missing))
        return 1
    print(f"{'workspace':<12}{'tftest plan':>14}{'bare plan':>12}{'ratio':>8}")
    with tempfile.TemporaryDirectory() as tmp, plan.offline(Path(tmp) / "offline") as offline:
        for n, (workspace, (files, providers)) in enumerate(CASES.items()):
            folder = plan.subset(workspace, files, providers, Path(tmp) / str(n), offline.fake.hostname)
            test = plan.terraform_test(folder, offline.env)  # init once, shared by both sides
            tf_vars = {k: v for k, v in VARS.items() if workspace == "03-app" or k == "tfc_organization"}
            args = ["plan", "-input=false", "-no-color", "-refresh=true"] + [f"-var={k}={v}" for k, v in tf_vars.items()]
            harness, bare = [], []
            for _ in range(ROUNDS):
                started = time.monotonic()
                test.plan(output=True, tf_vars=tf_vars)
                harness.append(time.monotonic() - started)
                started = time.monotonic()
                tf.run(args, folder, offline.env)
                bare.append(time.monotonic() - started)
            h, b = statistics.median(harness), statistics.median(bare)
            print(f"{workspace:<12}{h:>13.2f}s{b:>11.2f}s{h / b:>8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
