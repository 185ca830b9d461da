"""Repository-wide pytest hooks: the e2e banner, the .env check that runs before anything, and
secret masking of every report (lfharness.testing.pytest_redact)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from lfharness.core import envfile

# In the package, not here: a test run outside this tree (the no-secret test's own pytest run)
# loads the same hooks with -p lfharness.testing.pytest_redact.
pytest_plugins = ("lfharness.testing.pytest_redact",)

ROOT = Path(__file__).resolve().parent
_BANNER = pytest.StashKey[str]()


def _e2e_selected(config: pytest.Config) -> bool:
    return "e2e" in config.getoption("markexpr", "") and "not e2e" not in config.getoption("markexpr", "")


def pytest_configure(config: pytest.Config) -> None:
    """With -m e2e, a malformed .env fails here: before collection, before any Terraform call."""
    if not _e2e_selected(config):
        return
    if config.option.tbstyle == "auto":
        # Long tracebacks print every frame's arguments (a terraform call's env, connection
        # settings); they are masked anyway, short ones do not print them at all.
        config.option.tbstyle = "short"
    env_file = Path(os.environ.get("LFK8S_ENV_FILE", ROOT / ".env"))
    try:
        missing = envfile.missing_for_cloud(env_file)
    except envfile.EnvError as exc:
        raise pytest.UsageError(str(exc)) from exc
    if missing:
        config.stash[_BANNER] = ("e2e target: embedded local default (local Terraform Cloud fake, providers built "
                                 f"offline); .env lacks: {', '.join(missing)}")
    else:
        config.stash[_BANNER] = ("e2e target: AWS + Terraform Cloud from .env "
                                 "(creates billable resources; LFK8S_KEEP_STACK=1 keeps them after the run)")


def pytest_sessionstart(session: pytest.Session) -> None:
    banner = session.config.stash.get(_BANNER, None)
    reporter = session.config.pluginmanager.get_plugin("terminalreporter")
    if banner and reporter is not None:
        reporter.write_line(banner, bold=True)
