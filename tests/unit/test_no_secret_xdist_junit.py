"""No secret a pytest-xdist worker learns in the controller's junit XML or terminal (NFR1, issue 26 item 5).

Under `-n 2` the tests run in worker processes, each with its own redactor, and the controller
prints the summary and writes the junit XML from the reports the workers send. A worker masks a
report when it is made; a secret it learns later (test_b registers what test_a printed, as the
harness learns a workspace's secrets after the command that printed them) was never known to the
controller, whose junit rewrite and summary then showed it in clear. A generated test file does
both, and a third test learns a secret and fails printing it; a fourth takes its id from the .env
(masked in the workers' collection). It is run by the project's pytest in a subprocess with
`-n 2 -v -rA -l --tb=long --junitxml` and every captured output in the XML; the terminal and the XML
are searched for the real values, as they are, repr-escaped and XML-escaped. No stand-in: plain
values (the secrets hold the characters those escapes change).
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path
from xml.sax.saxutils import escape as xml_escape

import pytest

import lfharness

pytestmark = pytest.mark.static

ROOT = Path(lfharness.__file__).resolve().parent.parent

GENERATED = '''
import os

import pytest

from lfharness.core import envfile

ENV = envfile.read(envfile.default_path())


def test_a_prints_a_value_then_fails():
    # Nobody knows the value yet: the worker's report of this test holds it in clear.
    value = os.environ["T_LATE"]
    print(f"token: {value}")
    assert not value, f"login with {value} refused"


def test_b_registers_the_value_test_a_printed(redactor):
    redactor.secret(os.environ["T_LATE"])


def test_c_learns_a_secret_then_fails_printing_it(redactor):
    value = redactor.secret(os.environ["T_WORKER"])
    print(f"output: {value}")
    assert value == "not it", f"got {value}"


@pytest.mark.parametrize("token", [ENV["TFE_TOKEN"]])
def test_d_id_from_the_env_file(token):
    print(f"token: {token}")
'''


def _forms(value: str) -> set[str]:
    """A value as is, repr-escaped (locals, assertion messages) and XML-escaped as junit writes it."""
    forms = {value, repr(value)[1:-1]}
    return forms | {xml_escape(f, {'"': "&quot;"}) for f in forms} | {xml_escape(f) for f in forms}


def _found(values: dict[str, str], text: str) -> list[str]:
    # Which values (by name, never the value) a text holds in one of their forms.
    return sorted(name for name, value in values.items() if any(form in text for form in _forms(value)))


@pytest.fixture(scope="module")
def xdist_run(tmp_path_factory) -> dict:
    """The generated tests run once under `-n 2`: their secrets, the terminal output and the junit XML."""
    folder = tmp_path_factory.mktemp("xdist-run")
    (folder / "test_generated_xdist.py").write_text(textwrap.dedent(GENERATED))
    tfe_token = "tfe." + secrets.token_hex(16)
    (folder / ".env").write_text(f"TFE_TOKEN={tfe_token}\n")
    learned = {
        # Characters that repr (a ' beside a ") and XML (<, &, ") write in another form.
        "T_LATE": secrets.token_hex(10) + "\\'\"<&" + secrets.token_hex(10),
        "T_WORKER": secrets.token_hex(10) + "\"<&>'" + secrets.token_hex(10),
    }
    env = {**os.environ, **learned, "PYTHONPATH": str(ROOT), "LFK8S_ENV_FILE": str(folder / ".env")}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    junit = folder / "junit.xml"
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", "-p", "xdist", "-n", "2",
            "-v", "-rA", "-l", "--tb=long", "-o", "junit_logging=all", f"--junitxml={junit}",
            "test_generated_xdist.py"]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    return {"secrets": {**learned, "TFE_TOKEN": tfe_token}, "output": done.stdout + done.stderr,
            "junit": junit.read_text() if junit.exists() else "", "returncode": done.returncode}


def test_the_generated_tests_ran_in_two_workers(xdist_run):
    """The scenario is real: two workers ran the four tests, two failed, the junit XML has all four
    with their captured output."""
    output = xdist_run["output"]
    assert xdist_run["returncode"] == 1, output[-3000:]
    assert ("created: 2/2 workers" in output, "2 failed, 2 passed" in output) == (True, True), output[-3000:]
    assert (xdist_run["junit"].count("<testcase "), xdist_run["junit"].count("<failure ")) == (4, 2)
    assert sorted(re.findall(r"Captured Out -+\n(\w+): ", xdist_run["junit"])) == ["output", "token", "token"]


def test_controller_junit_xml_holds_no_secret_a_worker_learned(xdist_run):
    """NFR1: the junit XML the controller writes holds no secret a worker learned, even one a report
    of that worker held before the worker knew it, nor a test id's secret."""
    assert _found(xdist_run["secrets"], xdist_run["junit"]) == []


def test_controller_terminal_holds_no_secret_a_worker_learned(xdist_run):
    """NFR1: the controller's failure sections (locals, long tracebacks, captured output) and `-rA`
    summary hold no secret a worker learned, nor a test id's secret."""
    assert _found(xdist_run["secrets"], xdist_run["output"]) == []
