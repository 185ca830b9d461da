"""No secret in what pytest shows or writes when a check that holds one fails (NFR1, issue 14 item 3).

A generated test file is run by the project's pytest in a subprocess, as a user would run it,
with the project's pytest.ini and its masking plugin (`-p lfharness.testing.pytest_redact`, which the root
conftest.py loads for the project's own tests), long tracebacks, `-rA` and `--junitxml` with every
captured output in it. Its four tests fail on purpose:
- `assert migrations(**conn) > 100`: assertion rewriting prints the call's arguments, password included;
- `assert aws_checks.rds_migrations_applied(conn) > 100` with a DbConn;
- a terraform call through `Stack` that fails, with AWS_SECRET_ACCESS_KEY in its env (long tracebacks
  print each frame's arguments);
- a direct `tf.run` with a plain env dict and a `-var` carrying the admin password.
Each secret is registered with the session's redactor the way the harness does it when it learns
one (Stack from .env settings, `redactor.add` for a value read at run time).
Stand-ins: a local PostgreSQL (Debian's package) with two finished migrations; the project's
terraform failing on a broken configuration (no provider, no network).
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
from pathlib import Path

from lfharness.core import envfile, tf

from lfharness.stack import aws_checks
from lfharness.stack.stack import Stack


def _conn(redactor):
    conn = {"host": os.environ["T_PG_HOST"], "port": int(os.environ["T_PG_PORT"]), "user": os.environ["T_PG_USER"],
            "password": os.environ["T_PG_PASSWORD"], "dbname": os.environ["T_PG_DBNAME"], "sslmode": "disable"}
    redactor.add(conn["password"])  # as Stack.outputs does when it reads rds_password
    return conn


def migrations(**conn):
    return aws_checks.rds_migrations_applied(aws_checks.DbConn(**conn))


def _settings():
    return envfile.Settings("AKIA" + "A" * 16, os.environ["T_AWS_SECRET"], "us-east-1", os.environ["T_TFE_TOKEN"],
                            "org", "ops@example.com", "Ops", os.environ["T_ADMIN_PASSWORD"])


def _broken_workspace(tmp_path):
    folder = tmp_path / "terraform" / "03-app"
    folder.mkdir(parents=True)
    (folder / "main.tf").write_text("this is { not HCL\\n")
    return folder


def test_migrations_with_a_connection_dict(redactor):
    conn = _conn(redactor)
    assert migrations(**conn) > 100


def test_migrations_with_a_connection_object(redactor):
    conn = aws_checks.DbConn(**_conn(redactor))
    assert aws_checks.rds_migrations_applied(conn) > 100


def test_terraform_through_the_stack(tmp_path, redactor):
    folder = _broken_workspace(tmp_path)
    Stack(_settings(), tmp_path / "run", folder.parent, redactor=redactor).init("03-app")


def test_terraform_with_a_plain_env(tmp_path, redactor):
    folder = _broken_workspace(tmp_path)
    settings = _settings()
    redactor.add(*settings.secrets)  # as the e2e target fixture does with the .env secrets
    env = {"AWS_SECRET_ACCESS_KEY": os.environ["T_AWS_SECRET"], "TFE_TOKEN": os.environ["T_TFE_TOKEN"]}
    tf.run(["plan", "-input=false", f"-var=langfuse_admin_password={os.environ['T_ADMIN_PASSWORD']}"], folder, env,
           tmp_path / "run", redactor=redactor)
'''


@pytest.fixture(scope="module")
def failing_run(local_pg, tmp_path_factory) -> dict:
    """The generated tests run once by the project's pytest; their secrets, output and junit XML."""
    folder = tmp_path_factory.mktemp("failing-run")
    test_file = folder / "test_generated_failures.py"
    test_file.write_text(textwrap.dedent(GENERATED))
    junit = folder / "junit.xml"
    values = {"T_AWS_SECRET": secrets.token_urlsafe(30)[:40], "T_TFE_TOKEN": "tfe." + secrets.token_hex(20),
              "T_ADMIN_PASSWORD": "admin-" + secrets.token_urlsafe(12)}
    conn = local_pg.conn()
    env = {**os.environ, **values, "PYTHONPATH": str(ROOT), "T_PG_HOST": conn["host"], "T_PG_PORT": str(conn["port"]),
           "T_PG_USER": conn["user"], "T_PG_PASSWORD": conn["password"], "T_PG_DBNAME": conn["dbname"]}
    env.pop("GITHUB_ACTIONS", None)  # ::add-mask:: lines print the value itself (for the runner)
    argv = [str(Path(sys.executable).parent / "pytest"), "-c", str(ROOT / "pytest.ini"), "--rootdir", str(ROOT),
            "-p", "lfharness.testing.pytest_redact", "-p", "no:cacheprovider", "--tb=long", "-rA", "-o", "junit_logging=all",
            f"--junitxml={junit}", str(test_file)]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=300, check=False)
    return {"secrets": [*values.values(), conn["password"]], "output": done.stdout + done.stderr,
            "junit": junit.read_text() if junit.exists() else "", "returncode": done.returncode}


def _found(secrets_: list[str], text: str) -> list[str]:
    # Which of them (by position, never the value) a text holds.
    return [f"secret #{i}" for i, value in enumerate(secrets_) if value in text]


def test_the_generated_checks_fail_showing_call_arguments_and_terraform_env(failing_run):
    """The scenario is real: all four tests fail, the assertion message shows the rewritten call's
    arguments and the long traceback shows the terraform call's env (masked)."""
    output = failing_run["output"]
    assert failing_run["returncode"] == 1, output[-3000:]
    assert "4 failed" in output
    assert "where 2 = migrations(**{" in output and "env = {" in output and "'AWS_SECRET_ACCESS_KEY': '***'" in output


def test_terminal_output_of_failing_checks_holds_no_secret(failing_run):
    """NFR1: stdout and stderr of the pytest run (assertion messages, long tracebacks with frame
    arguments, exception messages, live log, captured output, short summary) hold no secret."""
    assert _found(failing_run["secrets"], failing_run["output"]) == []


def test_junit_xml_of_failing_checks_holds_no_secret(failing_run):
    """NFR1: the junit XML (failure messages and texts, captured output and logs) holds no secret."""
    assert failing_run["junit"].count("<failure") == 4
    assert _found(failing_run["secrets"], failing_run["junit"]) == []
