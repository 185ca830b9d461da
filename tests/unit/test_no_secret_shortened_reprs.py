"""No piece of a secret in what pytest shows when it shortens a value (NFR1, issue 14 item 3).

pytest cuts long reprs in the middle (`'abcd...wxyz'`: call arguments of long tracebacks, the
`where` lines and the summary of a rewritten assertion), and its string diff skips the identical
start of two strings and prints the rest. A whole-value mask cannot match either piece, so the
halves of a secret would show. A generated test file fails in those four ways, run by the
project's pytest in a subprocess (long tracebacks, `-rA`, junit XML with every captured output);
its secrets are registered with the session's redactor as the harness registers what it learns.
No stand-in: plain values.
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
PIECE = 10  # no run of this many characters of a secret may show

GENERATED = '''
import dataclasses
import os


@dataclasses.dataclass
class Conn:
    host: str
    password: str


def _short(redactor):
    value = os.environ["T_SHORT"]
    redactor.add(value)
    return value


def _pair(redactor):
    # Two secrets with a long common start, as "sk-lf-" keys of two generations: the diff skips it.
    first, second = os.environ["T_SHORT"], os.environ["T_OTHER"]
    redactor.add(first, second)
    return first, second


def _long(redactor):
    value = os.environ["T_LONG"]  # longer than pytest's 240-character repr limit, as an STS session token
    redactor.add(value)
    return value


def call_with(env):
    raise RuntimeError("terraform exited 1")


def test_an_argument_dict_cut_in_the_middle(redactor):
    env = {f"VAR_{i:02d}": "v" * 12 for i in range(3)}
    env["AWS_SECRET_ACCESS_KEY"] = _short(redactor)
    env.update({f"ZED_{i:02d}": "z" * 12 for i in range(3)})
    call_with(env)


def test_two_secrets_compared(redactor):
    first, second = _pair(redactor)
    assert first == second


def test_two_connections_compared(redactor):
    first, second = _pair(redactor)
    assert Conn("db", first) == Conn("db", second)


def test_a_long_secret_in_a_where_line(redactor):
    value = _long(redactor)
    assert len(value) == 0
'''


@pytest.fixture(scope="module")
def shortened_run(tmp_path_factory) -> dict:
    """The generated tests run once by the project's pytest: their secrets, output and junit XML."""
    folder = tmp_path_factory.mktemp("shortened-run")
    test_file = folder / "test_generated_shortened.py"
    test_file.write_text(textwrap.dedent(GENERATED))
    junit = folder / "junit.xml"
    common = secrets.token_hex(25)
    values = {"T_SHORT": common + secrets.token_hex(10), "T_OTHER": common + secrets.token_hex(10),
              "T_LONG": secrets.token_hex(200)}
    env = {**os.environ, **values, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", "--tb=long", "-rA", "-o", "junit_logging=all",
            f"--junitxml={junit}", str(test_file)]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    return {"secrets": list(values.values()), "output": done.stdout + done.stderr,
            "junit": junit.read_text() if junit.exists() else "", "returncode": done.returncode}


def _pieces_shown(values: list[str], text: str) -> list[str]:
    # Which secrets (by position, never the value) have a run of PIECE characters in the text.
    return [f"secret #{i}" for i, value in enumerate(values)
            if any(value[start:start + PIECE] in text for start in range(len(value) - PIECE + 1))]


def test_the_generated_checks_fail_where_pytest_shortens_values(shortened_run):
    """The scenario is real: all four fail, and pytest did shorten (an ellipsis in the argument
    dict, the diff's skipped start)."""
    output = shortened_run["output"]
    assert shortened_run["returncode"] == 1, output[-3000:]
    assert ("4 failed" in output, "env = {" in output, "..." in output) == (True, True, True)


def test_terminal_output_holds_no_piece_of_a_shortened_secret(shortened_run):
    """NFR1: cut reprs, string diffs and dataclass drill-downs in the terminal show no run of
    10 characters of a registered secret."""
    assert _pieces_shown(shortened_run["secrets"], shortened_run["output"]) == []


def test_junit_xml_holds_no_piece_of_a_shortened_secret(shortened_run):
    """NFR1: the junit XML (failure messages and texts) shows no run of 10 characters of a secret."""
    assert shortened_run["junit"].count("<failure") == 4
    assert _pieces_shown(shortened_run["secrets"], shortened_run["junit"]) == []
