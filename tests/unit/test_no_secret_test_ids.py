"""No secret in a test id (NFR1, issue 26 item 5).

pytest names each parametrized test after its values (`test_login[<password>]`) and prints that
id in `-v` lines, the `-rA` short summary, failure headers and `--collect-only`; junit writes it in
its `name` and `classname` attributes, `tmp_path` and the e2e suite's diagnostics folder
(`.runs/<run>/k8s/<request.node.name>`) are named after it, PYTEST_CURRENT_TEST carries it to
every child process, and pytest's cache (`.pytest_cache/`) keeps it. A generated test file takes
its ids from secrets the ways a suite would:
- `.env` values read at import (the plugin learns the .env secrets when pytest starts), in a
  `parametrize` and as a fixture's `params`, two secrets in one parametrize (ids that collide once
  masked must stay two tests);
- a token a conftest registers with the session's redactor while it generates tests
  (`pytest_generate_tests`), holding the characters pytest escapes in ids (`\\`, non-ASCII) and
  Python's repr escapes (`'` with `"`);
- a value an earlier test registers at run time (masked from the moment the test runs: its
  `--collect-only` line was printed before anyone knew it, and is not searched here).
It is run by the project's pytest in a subprocess with `-v -rA --junitxml` (cache on) and with
`--collect-only` (tree and `-q`); the outputs, the junit XML, the cache and every path written under
the run and temp folders are searched for the real values in every form pytest can print them. No
stand-in: plain values.
"""

from __future__ import annotations

import os
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
PIECE = 10  # tmp_path cuts a test's name to 30 characters: no run of this many characters may show

CONFTEST = '''
import os

from lfharness.testing.pytest_redact import session_redactor


def pytest_generate_tests(metafunc):
    # A token learned while generating the tests, registered at once (as the harness does).
    if "token" in metafunc.fixturenames:
        token = session_redactor(metafunc.config).secret(os.environ["T_COLLECTED"])
        metafunc.parametrize("token", [token, "not-a-secret-at-all"])
'''

GENERATED = '''
import os
from pathlib import Path

import pytest

from lfharness.core import envfile

ENV = envfile.read(envfile.default_path())  # at import: before any fixture registered anything


def _diagnostics_folder(request):
    # Named as the e2e suite names its diagnostics folder under .runs/.
    folder = Path(os.environ["T_RUNS"]) / "k8s" / request.node.name
    folder.mkdir(parents=True)
    (folder / "test.txt").write_text(request.node.nodeid + "\\n" + os.environ["PYTEST_CURRENT_TEST"] + "\\n")


@pytest.fixture(params=[ENV["TFE_TOKEN"]])
def tfe_token(request):
    return request.param


@pytest.mark.parametrize("password", [ENV["LANGFUSE_ADMIN_PASSWORD"]])
def test_admin_login(password, request, tmp_path):
    _diagnostics_folder(request)
    assert password == "not the password"


@pytest.mark.parametrize("key", [ENV["AWS_SECRET_ACCESS_KEY"], ENV["LANGFUSE_ADMIN_PASSWORD"]])
def test_two_secrets_in_one_parametrize(key, request, tmp_path):
    _diagnostics_folder(request)


def test_fixture_param(tfe_token, request, tmp_path):
    _diagnostics_folder(request)


def test_generated_token(token, request, tmp_path):
    _diagnostics_folder(request)


def test_a_learns_a_secret_at_run_time(redactor):
    redactor.add(os.environ["T_RUNTIME"])


@pytest.mark.parametrize("value", [os.environ["T_RUNTIME"]])
def test_b_id_holds_what_test_a_learned(value, request, tmp_path):
    _diagnostics_folder(request)
'''

# Tests in the generated file, and how many fail (test_admin_login) or pass; all but test_a write a folder.
COLLECTED = 8
FAILED = 1


def _forms(value: str) -> set[str]:
    """The forms a value takes in pytest's output: as is, Python's repr (assertion messages), pytest's
    id escaping (`\\` doubled, non-ASCII as `\\xe9`), each of them XML-escaped as junit writes them."""
    forms = {value, repr(value)[1:-1], value.encode("unicode_escape").decode("ascii")}
    return forms | {xml_escape(f, {'"': "&quot;"}) for f in forms} | {xml_escape(f) for f in forms}


def _found(values: dict[str, str], text: str) -> list[str]:
    # Which values (by name, never the value) a text holds in one of their forms.
    return sorted(name for name, value in values.items() if any(form in text for form in _forms(value)))


def _pieces_shown(values: dict[str, str], text: str) -> list[str]:
    # Which values (by name) have a run of PIECE word characters in text (tmp_path turns others into "_").
    return sorted(name for name, value in values.items()
                  if any(value[i:i + PIECE] in text for i in range(len(value) - PIECE + 1)
                         if value[i:i + PIECE].isalnum()))


def _run(folder: Path, env: dict[str, str], *args: str) -> str:
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", *args]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def id_runs(tmp_path_factory) -> dict:
    """The generated tests, run and collected by the project's pytest: their secrets, outputs, junit
    XML and the paths they wrote."""
    folder = tmp_path_factory.mktemp("test-ids")
    (folder / "conftest.py").write_text(textwrap.dedent(CONFTEST))
    (folder / "test_generated_ids.py").write_text(textwrap.dedent(GENERATED))
    env_values = {"AWS_SECRET_ACCESS_KEY": secrets.token_hex(20), "TFE_TOKEN": "tfe." + secrets.token_hex(16),
                  "LANGFUSE_ADMIN_PASSWORD": "admin-" + secrets.token_hex(10)}
    (folder / ".env").write_text("".join(f"{k}={v}\n" for k, v in env_values.items()))
    collected = {
        # pytest escapes the backslash and the é in ids, repr escapes the backslash and the ' (beside a ").
        "T_COLLECTED": secrets.token_hex(8) + "\\'\"é" + secrets.token_hex(8),
        "T_RUNTIME": "late-" + secrets.token_hex(12),
    }
    runs = folder / "runs"
    env = {**os.environ, **collected, "PYTHONPATH": str(ROOT), "LFK8S_ENV_FILE": str(folder / ".env"),
           "T_RUNS": str(runs)}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    junit = folder / "junit.xml"
    basetemp = folder / "basetemp"
    cache = folder / "cache"  # pytest's cache (on by default) keeps the ids it saw and those that failed
    output = _run(folder, env, "-o", f"cache_dir={cache}", "-v", "-rA", "--tb=short", f"--basetemp={basetemp}",
                  f"--junitxml={junit}", "test_generated_ids.py")
    tree = _run(folder, env, "-p", "no:cacheprovider", "--collect-only", "test_generated_ids.py")
    quiet = _run(folder, env, "-p", "no:cacheprovider", "--collect-only", "-q", "test_generated_ids.py")
    written = [p for top in (runs, basetemp, cache) if top.exists() for p in top.rglob("*")]
    return {"known_at_collection": {**env_values, "T_COLLECTED": collected["T_COLLECTED"]},
            "all": {**env_values, **collected}, "output": output, "collect_only": tree + quiet,
            "junit": junit.read_text() if junit.exists() else "",
            "paths": "\n".join(str(p.relative_to(folder)) for p in written),
            "files": "\n".join(p.read_text() for p in written if p.is_file() and p.suffix in (".txt", ""))}


def test_the_generated_ids_are_run_and_collected(id_runs):
    """The scenario is real: every test runs (ids that collide once masked stay eight tests), one
    fails, the diagnostics folders are written, and --collect-only lists all eight."""
    output = id_runs["output"]
    assert f"{FAILED} failed, {COLLECTED - FAILED} passed" in output, output[-3000:]
    assert id_runs["junit"].count("<testcase ") == COLLECTED
    assert id_runs["files"].count("::test_") == 2 * (COLLECTED - 1) + COLLECTED + FAILED  # + cache's nodeids, lastfailed
    assert id_runs["collect_only"].count("<Function ") == COLLECTED, id_runs["collect_only"][-3000:]
    assert f"{COLLECTED} tests collected" in id_runs["collect_only"]


def test_verbose_output_and_short_summary_hold_no_secret_of_a_test_id(id_runs):
    """NFR1: `-v` lines, failure headers and the `-rA` summary show no secret that a test id holds,
    known at collection or learned by an earlier test."""
    assert _found(id_runs["all"], id_runs["output"]) == []


def test_collect_only_holds_no_secret_known_at_collection(id_runs):
    """NFR1: `--collect-only` (tree and -q) shows no secret the session knows when it collects."""
    assert _found(id_runs["known_at_collection"], id_runs["collect_only"]) == []


def test_junit_names_and_classnames_hold_no_secret_of_a_test_id(id_runs):
    """NFR1: junit's name and classname attributes (and everything else in the file) hold no secret."""
    assert 'name="test_admin_login[' in id_runs["junit"]
    assert _found(id_runs["all"], id_runs["junit"]) == []


def test_folders_and_files_named_after_a_test_hold_no_secret(id_runs):
    """NFR1: the e2e suite's diagnostics folder (request.node.name), tmp_path (cut to 30 characters),
    PYTEST_CURRENT_TEST and pytest's cache (`nodeids`, `lastfailed`) hold neither a secret nor a piece of one."""
    assert _found(id_runs["all"], id_runs["paths"] + id_runs["files"]) == []
    assert _pieces_shown(id_runs["all"], id_runs["paths"]) == []
