"""Throwaway local-backend workspaces that the project's real terraform applies offline, for the
teardown and cancellation tests (tests/unit/test_e2e_teardown.py, tests/unit/test_cancellation.py).

Their providers are random and time from the set-up's offline mirror. `QUICK` applies in about a
second; `SLOW` creates random_id, which Terraform persists, then holds the apply for two minutes in
time_sleep, so a test can interrupt Terraform mid-apply at a known point
(`first_resource_persisted`). `SUITE` is a one-test pytest suite shaped like the e2e one (its stack
fixture registers the teardown before the first apply); `interrupted_suite` runs it and signals it
mid-apply, as a terminal or a CI runner would.
"""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import textwrap
from collections.abc import Mapping, Sequence
from pathlib import Path

from lfharness.core import envfile, tf
from lfharness.core.wait import retry
from lfharness.stack import stack
from lfharness.testing import plan, registry, toolchain

log = logging.getLogger(__name__)

# Well-formed settings that reach nothing: the local backend and the fakes never check them.
SETTINGS = envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "ops@example.com", "Ops",
                            "correct-horse-battery")

QUICK = '''terraform {
  backend "local" {}
  required_providers {
    random = {
      source = "hashicorp/random"
    }
  }
}

resource "random_id" "this" {
  byte_length = 4
}
'''

# random_id is created (and persisted) at once; time_sleep then holds the apply for two minutes.
SLOW = '''terraform {
  backend "local" {}
  required_providers {
    random = {
      source = "hashicorp/random"
    }
    time = {
      source = "hashicorp/time"
    }
  }
}

resource "random_id" "first" {
  byte_length = 4
}

resource "time_sleep" "slow" {
  depends_on      = [random_id.first]
  create_duration = "120s"
}
'''

EMPTY = 'terraform {\n  backend "local" {}\n}\n'

# How long SLOW's random_id may take to reach the state: terraform's start and the provider's, on a
# loaded 2-core machine.
_PERSIST_TIMEOUT = 90


def providers_missing(names: Sequence[str]) -> str | None:
    """Why these workspaces cannot run here (a skip reason naming the missing providers), or None."""
    missing = plan.missing_providers(list(names))
    if not missing:
        return None
    plural = "s" if len(names) > 1 else ""
    return (f"needs the {' and '.join(names)} provider{plural} in the offline mirror (run bash setup.sh): "
            + "; ".join(missing))


def cli_env(folder: Path) -> dict[str, str]:
    """Terraform's CLI config, written into `folder`, pointing at the offline provider mirror."""
    config = registry.write_cli_config(folder / "terraform.rc", toolchain.cache_dir(), None)
    return {"TF_CLI_CONFIG_FILE": str(config)}


def write_workspaces(root: Path, text: str, overrides: Mapping[str, str] | None = None) -> Path:
    """The stack's workspaces (01-network, 02-deps, 03-app) under `root`, each a main.tf of `text`
    unless `overrides` gives it another."""
    for workspace in stack.ORDER:
        (root / workspace).mkdir(parents=True)
        (root / workspace / "main.tf").write_text((overrides or {}).get(workspace, text))
    return root


def resources(workspace: Path) -> list[str]:
    """The managed resources (type.name) a local-backend workspace's state holds."""
    state = workspace / "terraform.tfstate"
    if not state.exists():
        return []
    # An interrupted apply can leave a resource it had begun to evaluate with no instance: it holds nothing.
    return [f"{r['type']}.{r['name']}" for r in json.loads(state.read_text())["resources"]
            if r["mode"] == "managed" and r.get("instances")]


def first_resource_persisted(workspace: Path) -> None:
    """Waits until SLOW's random_id is in the workspace's state."""
    # Terraform persists the local state after each finished resource: once random_id is in it,
    # the apply is inside time_sleep's two minutes.
    retry(lambda: resources(workspace), timeout=_PERSIST_TIMEOUT, interval=0.2,
          what="random_id.first in the local state", validator=lambda found: "random_id.first" in found)


def pytest_session(test_file: Path, env: Mapping[str, str], cwd: Path) -> subprocess.Popen:
    """A pytest session on one file with the repository's own configuration (pytest.ini), as CI runs it."""
    return subprocess.Popen([sys.executable, "-m", "pytest", "-c", str(tf.REPO_ROOT / "pytest.ini"),
                             "--rootdir", str(cwd), "-q", "-p", "no:cacheprovider", str(test_file)],
                            cwd=cwd, env={**os.environ, **env}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def stop(proc: subprocess.Popen) -> None:
    """Kills `proc` if it still runs, and reaps it."""
    if proc.poll() is None:
        proc.kill()
        proc.wait(timeout=30)


SUITE = textwrap.dedent('''
    import json, os
    from pathlib import Path
    import pytest
    from lfharness.core import envfile
    from lfharness.stack.stack import Stack

    @pytest.fixture(scope="session")
    def stack(request):
        st = Stack(envfile.Settings("AKIA" + "A" * 16, "s" * 40, "us-east-1", "t" * 30, "org", "a@b.co", "Ops",
                                    "correct-horse-battery"),
                   Path(os.environ["RUN_DIR"]), Path(os.environ["TF_DIR"]), json.loads(os.environ["CLI_ENV"]))
        request.addfinalizer(st.teardown_unless_kept)  # registered before the first apply
        return st

    def test_apply(stack):
        stack.apply("01-network")
''')


def interrupted_suite(folder: Path, cli_env: Mapping[str, str], signals: Sequence[tuple[signal.Signals, float]],
                      keep: bool = False) -> Path:
    """Runs SUITE in `folder` on a SLOW 01-network and, once its apply is under way, sends `signals`
    (each after its pause in seconds); returns the workspace. Run logs go to folder/run/terraform;
    `keep` sets LFK8S_KEEP_STACK=1."""
    terraform_dir = folder / "terraform"
    (terraform_dir / "01-network").mkdir(parents=True)
    (terraform_dir / "01-network" / "main.tf").write_text(SLOW)
    (folder / "test_suite.py").write_text(SUITE)
    suite = pytest_session(folder / "test_suite.py", {"RUN_DIR": str(folder / "run"), "TF_DIR": str(terraform_dir),
                                                      "CLI_ENV": json.dumps(dict(cli_env)),
                                                      stack.KEEP_ENV: "1" if keep else "0"}, folder)
    try:
        first_resource_persisted(terraform_dir / "01-network")
        for sig, pause in signals:
            try:
                suite.wait(timeout=pause)  # an explicit, bounded pause between the signals
            except subprocess.TimeoutExpired:
                pass
            log.info("sending %s to the suite", sig.name)
            suite.send_signal(sig)
        suite.wait(timeout=180)
    finally:
        stop(suite)
    return terraform_dir / "01-network"
