"""What pytest shows past the masking, as docs/secrets.md says it (NFR1, issue 26 item 5).

Three ways of running pytest show what no report or log record carries, so the plugin cannot mask
it: `-s` (a test's print goes straight to the terminal), `--pdb` (the debugger prints what it is
asked for) and live logging (a record made before its secret was registered). A generated test file
does each, run by the project's pytest in a subprocess with the real values; the tests pin what
each mode shows and what stays masked, and that docs/secrets.md says so and what to do instead: if
the masking ever covers one of them, the documentation must change with it. No stand-in: plain values.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lfharness

pytestmark = pytest.mark.static

ROOT = Path(lfharness.__file__).resolve().parent.parent
SECTION = "### pytest: what masking covers, and what it cannot"

GENERATED = '''
import logging
import os

LOG = logging.getLogger("lfharness.generated")


def test_prints_with_capture_off(redactor):
    value = redactor.secret(os.environ["T_PRINTED"])
    print(f"printed: {value}")


def test_logs_before_registering(redactor):
    value = os.environ["T_LOGGED"]
    LOG.warning("logged before: %s", value)
    redactor.add(value)
    LOG.warning("logged after: %s", value)
    assert not value


def test_debugged(redactor):
    value = redactor.secret(os.environ["T_DEBUGGED"])
    plain = str(value) + ""
    assert plain == "not it"
'''


def _run(folder: Path, env: dict[str, str], *args: str, stdin: str | None = None) -> str:
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", "-q", *args]
    done = subprocess.run(argv, cwd=folder, env=env, input=stdin, capture_output=True, text=True, timeout=300,
                          check=False)
    return done.stdout + done.stderr


@pytest.fixture(scope="module")
def limit_runs(tmp_path_factory) -> dict:
    """The generated tests run with -s, with live logging and under --pdb (commands on stdin)."""
    folder = tmp_path_factory.mktemp("documented-limits")
    (folder / "test_generated_limits.py").write_text(textwrap.dedent(GENERATED))
    values = {name: f"{name.lower()}-{secrets.token_hex(12)}" for name in ("T_PRINTED", "T_LOGGED", "T_DEBUGGED")}
    env = {**os.environ, **values, "PYTHONPATH": str(ROOT)}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    test_file = "test_generated_limits.py"
    return {**values,
            "capture_off": _run(folder, env, "-s", f"{test_file}::test_prints_with_capture_off"),
            "live_log": _run(folder, env, "-o", "log_cli=true", "-rA", f"{test_file}::test_logs_before_registering"),
            "debugger": _run(folder, env, "--pdb", f"{test_file}::test_debugged", stdin="p value\np plain\nc\n")}


def test_capture_off_prints_a_registered_secret_in_clear(limit_runs):
    """What docs/secrets.md says of `-s`: a test's print reaches the terminal unmasked, registered or not."""
    assert f"printed: {limit_runs['T_PRINTED']}" in limit_runs["capture_off"]


def test_live_log_prints_a_record_made_before_registration_in_clear(limit_runs):
    """What docs/secrets.md says of live logging: the record made before registration shows the value,
    the one after is masked, and the report's captured log masks both."""
    output = limit_runs["live_log"]
    assert f"logged before: {limit_runs['T_LOGGED']}" in output, output[-3000:]
    assert "logged after: ***" in output
    captured = output[output.index("Captured log call"):]
    assert ("logged before: ***" in captured, limit_runs["T_LOGGED"] in captured) == (True, False)


def test_debugger_prints_what_it_is_asked_for_in_clear(limit_runs):
    """What docs/secrets.md says of `--pdb`: the traceback it opens with is the masked report; `p` of a
    plain string shows the value, `p` of a Secret its masked repr."""
    output = limit_runs["debugger"]
    opening = output[:output.index("(Pdb)")]
    assert ("AssertionError" in opening, limit_runs["T_DEBUGGED"] in opening) == (True, False), output[-3000:]
    assert ("(Pdb) '***'" in output, f"(Pdb) '{limit_runs['T_DEBUGGED']}'" in output) == (True, True)


def test_secrets_doc_says_what_capture_off_the_debugger_and_live_logging_still_show():
    """NFR1, issue 26 item 5: docs/secrets.md names each of the three, what it can show, and what to do instead."""
    text = (ROOT / "docs" / "secrets.md").read_text()
    assert SECTION in text
    section = text[text.index(SECTION):]
    bullets = {m.group(1): m.group(2) for m in re.finditer(r"^- \*\*(.+?)\*\*(.*?)(?=^- |^#|\Z)", section, re.S | re.M)}
    shown = {name: body for name, body in bullets.items() if any(k in name for k in ("`-s`", "`--pdb`", "`log_cli`"))}
    assert len(shown) == 3, sorted(bullets)
    assert all("clear" in body or "nothing masks" in body for body in shown.values()), shown
    assert "What pytest shows past the plugin, and what to do instead" in section
