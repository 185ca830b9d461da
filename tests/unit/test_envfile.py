"""The .env: every missing and malformed key reported before anything runs (static)."""

from __future__ import annotations

import logging
from pathlib import Path

import pytest

from lfharness import envfile, hcl, tf

pytestmark = pytest.mark.static

GOOD = {
    "AWS_ACCESS_KEY_ID": "AKIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": "s" * 40,
    "AWS_DEFAULT_REGION": "eu-west-1", "TFE_TOKEN": "tok" + "x" * 30, "TFC_ORGANIZATION": "my-org",
    "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
    "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery",
}


def _write(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f"{k}={v}\n" for k, v in values.items()))
    return path


def test_a_complete_env_loads(tmp_path):
    """FR23: one .env holds all configuration."""
    settings = envfile.load(_write(tmp_path, GOOD))
    assert settings.aws_region == "eu-west-1" and settings.tfc_organization == "my-org"


def test_every_missing_key_is_named_in_one_error(tmp_path):
    """FR23: one error lists every absent key."""
    values = {k: v for k, v in GOOD.items() if k not in ("TFE_TOKEN", "LANGFUSE_ADMIN_EMAIL")}
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(_write(tmp_path, values))
    assert "TFE_TOKEN: missing" in str(err.value) and "LANGFUSE_ADMIN_EMAIL: missing" in str(err.value)


@pytest.mark.parametrize("key,bad", [
    ("AWS_DEFAULT_REGION", "us-east-9x"), ("AWS_DEFAULT_REGION", "useast1"),
    ("AWS_ACCESS_KEY_ID", "XYZ123"), ("AWS_SECRET_ACCESS_KEY", "short"),
    ("LANGFUSE_ADMIN_EMAIL", "not-an-email"), ("LANGFUSE_ADMIN_PASSWORD", "short"),
    ("TFC_ORGANIZATION", "bad org!"),
])
def test_malformed_values_are_rejected_by_key(tmp_path, key, bad):
    """FR23: a malformed value is named by key with what was expected."""
    with pytest.raises(envfile.EnvError, match=f"{key}: malformed"):
        envfile.load(_write(tmp_path, {**GOOD, key: bad}))


def test_errors_never_echo_secret_values(tmp_path):
    """NFR1: the error names keys, never the secret values."""
    values = {**GOOD, "AWS_ACCESS_KEY_ID": "bad", "LANGFUSE_ADMIN_PASSWORD": "tiny-secret"}
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(_write(tmp_path, values))
    assert "tiny-secret" not in str(err.value) and GOOD["AWS_SECRET_ACCESS_KEY"] not in str(err.value)


def test_tfc_token_is_accepted_as_an_alias(tmp_path):
    """Decision 2: the stories' TFC_TOKEN works where TFE_TOKEN is absent."""
    values = {k: v for k, v in GOOD.items() if k != "TFE_TOKEN"} | {"TFC_TOKEN": "alias" + "y" * 30}
    assert envfile.load(_write(tmp_path, values)).tfe_token == "alias" + "y" * 30


def test_terraform_env_exports_what_terraform_reads(tmp_path):
    """Decision 2, FR26: TF_TOKEN_app_terraform_io, TF_CLOUD_ORGANIZATION and TF_VAR_* from .env."""
    env = envfile.load(_write(tmp_path, GOOD)).terraform_env()
    assert env["TF_TOKEN_app_terraform_io"] == GOOD["TFE_TOKEN"]
    assert env["TF_CLOUD_ORGANIZATION"] == "my-org"
    assert env["TF_VAR_langfuse_admin_email"] == "ops@example.com"


def test_masker_hides_secrets_in_log_output(caplog):
    """NFR1: secrets never reach logs."""
    logger = logging.getLogger("test.masker")
    logger.addFilter(envfile.SecretMasker(["hunter2hunter2"]))
    with caplog.at_level(logging.INFO, logger="test.masker"):
        logger.info("connecting with %s", "hunter2hunter2")
    assert "hunter2hunter2" not in caplog.text and "***" in caplog.text


def test_env_example_lists_exactly_the_required_keys():
    """FR24: .env.example has a placeholder for every key the harness requires."""
    example = envfile.read(Path(__file__).resolve().parents[2] / ".env.example")
    assert set(example) == set(envfile.REQUIRED)
    assert not envfile.malformed_keys(example), "placeholders should have the right shape"


def test_dot_env_is_ignored_by_git():
    """FR25, NFR1: .env is in .gitignore."""
    lines = (Path(__file__).resolve().parents[2] / ".gitignore").read_text().splitlines()
    assert ".env" in lines


def test_record_masking_covers_every_logger_until_undone(caplog):
    """NFR1: once installed, secrets are masked in records of any logger; undo restores logging."""
    undo = envfile.install_record_masking(["s3cr3t-token-value"])
    try:
        with caplog.at_level(logging.INFO):
            logging.getLogger("lfharness.tf").info("token=%s", "s3cr3t-token-value")
    finally:
        undo()
    assert "s3cr3t-token-value" not in caplog.text and "token=***" in caplog.text
    with caplog.at_level(logging.INFO):
        logging.getLogger("other").info("plain %s", "s3cr3t-token-value")
    assert caplog.records[-1].getMessage() == "plain s3cr3t-token-value"


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_every_workspace_variable_is_fed_from_env(tmp_path, workspace):
    """FR23, FR26: each Terraform variable is exported as TF_VAR_* from .env, none needs a prompt."""
    names = set(hcl.blocks(tf.TERRAFORM_DIR / workspace, "variable"))
    exported = {k.removeprefix("TF_VAR_") for k in envfile.load(_write(tmp_path, GOOD)).terraform_env()
                if k.startswith("TF_VAR_")}
    assert names <= exported, f"{workspace} variables without a .env source: {names - exported}"
