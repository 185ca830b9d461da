"""Set-up that fits who runs it (issue 27 item 4): without Go, or when asked, `setup.sh` sets up
the operator's commands only and says in one line what it skipped and why (static tier).

Runs the repository's own setup.sh in this checkout with a PATH that has no `go` (the venv, its
packages, terraform, kubectl and helm are already there, so the run only checks and says);
nothing is stubbed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]


def _path_without_go(tmp_path: Path) -> str:
    """The current PATH minus every folder holding a `go`, plus a folder with this Python as python3."""
    keep = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and not (Path(d) / "go").exists()]
    shim = tmp_path / "bin"
    shim.mkdir()
    (shim / "python3").symlink_to(shutil.which("python3") or sys.executable)
    return os.pathsep.join([str(shim), *keep])


def _setup(tmp_path: Path, **env: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(["bash", "setup.sh"], cwd=ROOT, capture_output=True, text=True, timeout=600, check=False,
                          env={**os.environ, "PATH": _path_without_go(tmp_path), **env})


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv: run `bash setup.sh` first")
def test_without_go_the_set_up_prepares_the_operators_commands_and_says_what_it_skipped(tmp_path):
    """Issue 27: no Go on PATH is not a failure: exit 0, one line naming the offline tiers' needs
    (Go, PostgreSQL, Redis), and the operator's commands run."""
    result = _setup(tmp_path)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-2000:]
    said = [line for line in result.stdout.splitlines() if "no Go on PATH" in line]
    assert len(said) == 1 and "offline test tiers need Go" in said[0] and "PostgreSQL and Redis" in said[0]
    assert "building the providers" not in result.stdout
    commands = subprocess.run([str(ROOT / ".venv" / "bin" / "python"), "-m", "lfharness", "--help"], cwd=ROOT,
                              capture_output=True, text=True, timeout=60, check=True).stdout
    assert all(name in commands for name in ("up", "connect", "keys", "pause", "resume", "status", "teardown"))


@pytest.mark.skipif(not (ROOT / ".venv" / "bin" / "python").exists(), reason="no .venv: run `bash setup.sh` first")
def test_the_operator_set_up_can_be_asked_for_even_with_go(tmp_path):
    """Issue 27: LFK8S_SETUP=operator skips the offline tiers' set-up and says so (the teardown
    workflow uses it)."""
    result = _setup(tmp_path, LFK8S_SETUP="operator")
    assert result.returncode == 0
    assert "LFK8S_SETUP=operator: the operator's commands only" in result.stdout
    assert "building the providers" not in result.stdout
