"""No secret in what pytest prints when a session is interrupted (NFR1, issue 14 item 3; issue 15
defect 4 makes SIGTERM an interrupt too).

pytest reports a KeyboardInterrupt outside the test reports: a `!!! KeyboardInterrupt: <message> !!!`
banner, and with --full-trace the whole traceback with every frame's arguments. A generated test
raises one whose message and caller's arguments hold a registered secret; it is run by the project's
pytest in a subprocess, with and without --full-trace. No stand-in: plain values.
"""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lfharness

pytestmark = pytest.mark.static

ROOT = Path(lfharness.__file__).resolve().parent.parent

GENERATED = '''
import os


def interrupted(env):
    raise KeyboardInterrupt(f"terraform apply interrupted while using {env['TOKEN']}")


def test_interrupted_with_a_secret_at_hand(redactor):
    value = os.environ["T_SECRET"]
    redactor.add(value)
    interrupted({"TOKEN": value})
'''


@pytest.mark.parametrize("trace", ["", "--full-trace"])
def test_an_interrupted_session_prints_no_secret(tmp_path, trace):
    """NFR1: the interrupt banner and (--full-trace) the interrupt's traceback with its frames'
    arguments show the secret masked; the banner is still printed (so the search could fail)."""
    test_file = tmp_path / "test_generated_interrupt.py"
    test_file.write_text(textwrap.dedent(GENERATED))
    value = secrets.token_hex(24)
    env = {**os.environ, "T_SECRET": value, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", *([trace] if trace else []), str(test_file)]
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300, check=False)
    output = done.stdout + done.stderr
    assert ("KeyboardInterrupt: terraform apply interrupted while using ***" in output, value in output) == (
        True, False), output[-2000:]
