"""`python -m lfharness keys` (issue 27, Journey 2): what an application needs to send traces, read
from 02-deps' state; the secret key written 0600 or shown only when asked for (static tier).

Stand-in: the local Terraform Cloud fake serving 02-deps' outputs (the secret key sensitive, read by
id as tfe_outputs reads it); the command's own `.env` preamble with a complete `.env` of
placeholder credentials, its Terraform Cloud client aimed at the fake.
"""

from __future__ import annotations

import os
import secrets
import stat
from pathlib import Path

import pytest

from lfharness import commands
from lfharness.core.tfc import TfcClient
from lfharness.stack import appkeys

pytestmark = pytest.mark.static

PUBLIC = "pk-lf-" + secrets.token_hex(8)
SECRET = "sk-lf-" + secrets.token_hex(16)
ENV = {"AWS_ACCESS_KEY_ID": "AKIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": "s" * 40,
       "AWS_DEFAULT_REGION": "us-east-1", "TFE_TOKEN": "tok" + "x" * 30, "TFC_ORGANIZATION": "langfuse-test",
       "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
       "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery"}


@pytest.fixture
def deployed(tfc_fake, monkeypatch, tmp_path) -> Path:
    """02-deps' outputs in the fake; the command's client aimed at it. Returns the .env path."""
    fake, client = tfc_fake
    fake.set_outputs("langfuse-deps", {"project_public_key": (PUBLIC, False), "project_secret_key": (SECRET, True),
                                       "rds_endpoint": ("db.example:5432", False)})
    monkeypatch.setattr(commands, "TfcClient", lambda token, organization: client)
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    return env


def test_keys_print_host_and_public_key_and_hide_the_secret_by_default(deployed, capsys, caplog):
    """Issue 27, NFR1: without --show-secret the secret key is neither printed nor logged; the
    host is the UI/API port-forward of `connect`."""
    assert commands.keys_command(deployed, None, show_secret=False) == 0
    out = capsys.readouterr()
    assert "export LANGFUSE_HOST=http://localhost:3000" in out.out
    assert f"export LANGFUSE_PUBLIC_KEY={PUBLIC}" in out.out
    assert "LANGFUSE_SECRET_KEY: <hidden" in out.out
    assert SECRET not in out.out + out.err + caplog.text


def test_keys_show_the_secret_only_when_asked(deployed, capsys):
    """Issue 27: --show-secret prints the export line with the secret key."""
    assert commands.keys_command(deployed, None, show_secret=True) == 0
    assert f"export LANGFUSE_SECRET_KEY={SECRET}" in capsys.readouterr().out


def test_keys_out_writes_a_0600_env_file_and_prints_no_secret(deployed, tmp_path, capsys, caplog):
    """Issue 27, NFR1: --out writes the three as NAME=value, mode 0600 (also over an existing
    wider file), and the terminal shows no secret."""
    out = tmp_path / "app" / "langfuse.env"
    out.parent.mkdir()
    out.write_text("old\n")
    out.chmod(0o644)
    assert commands.keys_command(deployed, out, show_secret=False) == 0
    assert stat.S_IMODE(os.stat(out).st_mode) == 0o600
    assert out.read_text().splitlines() == ["LANGFUSE_HOST=http://localhost:3000", f"LANGFUSE_PUBLIC_KEY={PUBLIC}",
                                            f"LANGFUSE_SECRET_KEY={SECRET}"]
    printed = capsys.readouterr()
    assert SECRET not in printed.out + printed.err + caplog.text


def test_keys_without_a_deployed_02_deps_say_to_deploy_first(tfc_fake, monkeypatch, tmp_path, caplog):
    """Issue 27: no key pair in Terraform Cloud: exit 1 saying `up`."""
    _, client = tfc_fake
    client.ensure_workspace("langfuse-deps")
    monkeypatch.setattr(commands, "TfcClient", lambda token, organization: client)
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in ENV.items()))
    assert commands.keys_command(env, None, show_secret=False) == 1
    assert "python -m lfharness up" in caplog.text


@pytest.mark.parametrize("command", ["keys", "connect", "up"])
def test_a_malformed_env_exits_2_before_anything_runs(tmp_path, monkeypatch, command, caplog):
    """FR23, issue 27: each new command reads .env through the shared preamble: a malformed key
    exits 2 naming it, before Terraform Cloud is contacted or a run folder is made."""
    def refuse(*args, **kwargs) -> TfcClient:
        raise AssertionError("Terraform Cloud contacted despite a malformed .env")

    monkeypatch.setattr(commands, "TfcClient", refuse)
    env = tmp_path / ".env"
    env.write_text("".join(f"{k}={v}\n" for k, v in {**ENV, "AWS_DEFAULT_REGION": "mars-1"}.items()))
    runs = tmp_path / "runs"
    run = {"keys": lambda: commands.keys_command(env, None, show_secret=False),
           "connect": lambda: commands.connect_command(env, runs, {"langfuse-web": 0, "langfuse-clickhouse": 0,
                                                                  "langfuse-redis-primary": 0}),
           "up": lambda: commands.up_command(env, runs)}[command]
    assert run() == 2
    assert "AWS_DEFAULT_REGION" in caplog.text and not runs.exists()


def test_the_env_file_refuses_to_write_without_the_secret(tmp_path):
    """Issue 27: a file an application would read without its secret key is never written."""
    with pytest.raises(appkeys.KeysUnavailable):
        appkeys.write_env_file(tmp_path / "x.env", appkeys.AppKeys(appkeys.HOST, PUBLIC, None))
    assert not (tmp_path / "x.env").exists()
