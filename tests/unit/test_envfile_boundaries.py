"""The .env at its edges (FR23-FR26, NFR1, issue 28): what its errors say and where they point, which
.env is read, which token wins, the CIDR lists' errors, the refusal of credentials that expire too
soon, and AWS sessions that read nothing of the shell or ~/.aws.

Each test writes its own .env into a temporary folder; AWS sessions are made, never used to call AWS.
"""

from __future__ import annotations

import datetime as dt
import re
import time
from pathlib import Path

import pytest

from lfharness.core import envfile

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "AWS_ACCESS_KEY_ID": "AKIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": "s" * 39 + "9",
    "AWS_DEFAULT_REGION": "eu-west-1", "TFE_TOKEN": "tok" + "x" * 30, "TFC_ORGANIZATION": "my-org",
    "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
    "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery",
}
TEMPORARY = {**GOOD, "AWS_ACCESS_KEY_ID": "ASIA" + "ABCDEFGHIJKLMNOP", "AWS_SESSION_TOKEN": "IQoJb3JpZ2luX2VjE" + "A" * 300,
             "AWS_SESSION_EXPIRATION": "2099-01-01T00:00:00Z"}


def _write(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    return path


def _error(tmp_path: Path, values: dict[str, str]) -> str:
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(_write(tmp_path, values))
    return str(err.value)


# Where the errors point, and how they read.

def test_the_error_names_the_env_file_and_lists_one_problem_per_indented_line(tmp_path):
    """FR23, FR24: the refusal names the .env it read, points to .env.example, and lists each problem on a
    line of its own, key first, so an operator fixes them in one pass."""
    values = {k: v for k, v in GOOD.items() if k not in ("TFE_TOKEN", "TFC_ORGANIZATION")}
    lines = _error(tmp_path, values).split("\n")
    assert lines == [f"{tmp_path / '.env'} is not usable (2 problem(s)); fix these keys (see .env.example):",
                     "  TFE_TOKEN: missing", "  TFC_ORGANIZATION: missing"]


def test_missing_for_cloud_names_the_env_file_it_refuses(tmp_path):
    """FR23: a malformed key stops the cloud run with an error naming the .env that holds it."""
    path = _write(tmp_path, {**GOOD, "AWS_DEFAULT_REGION": "mars-1"})
    with pytest.raises(envfile.EnvError, match=f"^{re.escape(str(path))} is not usable"):
        envfile.missing_for_cloud(path)


def test_a_malformed_expiration_says_what_shape_is_expected(tmp_path):
    """FR23, issue 15 defect 6: a malformed AWS_SESSION_EXPIRATION is reported with the shape it must have."""
    error = _error(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": "tomorrow"})
    assert "AWS_SESSION_EXPIRATION: malformed, expected an ISO 8601 time with its zone" in error


@pytest.mark.parametrize("case", ["temporary key without token", "long-term key with token",
                                  "temporary key without expiration", "long-term key with expiration"])
def test_a_token_or_expiration_problem_names_the_key_it_depends_on_as_env_spells_it(tmp_path, case):
    """FR23, issue 10 item 2, issue 15 defect 6: whether a session token and an expiration belong in .env
    depends on AWS_ACCESS_KEY_ID's kind; the error names that key, and the kind's prefix, in .env's own
    spelling (keys are case-sensitive)."""
    values = {"temporary key without token": {**TEMPORARY, "AWS_SESSION_TOKEN": ""},
              "long-term key with token": {**GOOD, "AWS_SESSION_TOKEN": TEMPORARY["AWS_SESSION_TOKEN"]},
              "temporary key without expiration": {**TEMPORARY, "AWS_SESSION_EXPIRATION": ""},
              "long-term key with expiration": {**GOOD, "AWS_SESSION_EXPIRATION": "2099-01-01T00:00:00Z"}}[case]
    prefix = "ASIA..." if case.startswith("temporary") else "AKIA..."
    key = "AWS_SESSION_TOKEN" if "token" in case else "AWS_SESSION_EXPIRATION"
    line = next(line for line in _error(tmp_path, values).splitlines() if line.strip().startswith(key))
    assert (f"({prefix})" in line, "AWS_ACCESS_KEY_ID" in line) == (True, True), line


# Which .env, which token.

def test_lfk8s_env_file_names_the_env_to_read(tmp_path, monkeypatch):
    """FR23: an operator (or the e2e suite) points the harness at another .env with LFK8S_ENV_FILE."""
    monkeypatch.setenv("LFK8S_ENV_FILE", str(tmp_path / "other.env"))
    assert envfile.default_path() == tmp_path / "other.env"


def test_without_lfk8s_env_file_the_env_at_the_repository_root_is_read(monkeypatch):
    """FR23: by default the harness reads .env at the repository root, where .env.example is copied to."""
    monkeypatch.delenv("LFK8S_ENV_FILE", raising=False)
    assert envfile.default_path() == ROOT / ".env"


def test_tfe_token_wins_over_the_tfc_token_alias(tmp_path):
    """FR23, decision 2: the tfe provider reads TFE_TOKEN; TFC_TOKEN (the stories' name) is only used
    when TFE_TOKEN is absent."""
    values = envfile.read(_write(tmp_path, {"TFE_TOKEN": "the-tfe-token-value-1234", "TFC_TOKEN": "an-older-token-5678"}))
    assert values["TFE_TOKEN"] == "the-tfe-token-value-1234"


def test_terraform_env_sets_the_region_and_organization_variables(tmp_path):
    """FR23, FR26: every workspace's aws_region and tfc_organization variables come from .env."""
    env = envfile.load(_write(tmp_path, GOOD)).terraform_env()
    assert (env.get("TF_VAR_aws_region"), env.get("TF_VAR_tfc_organization")) == ("eu-west-1", "my-org")


# CIDR lists.

def test_a_bad_cidr_list_names_each_bad_entry_by_position(tmp_path):
    """FR23, issue 26 item 6: one bad entry is named by its position, several by theirs, never by value."""
    with pytest.raises(ValueError, match=r"^entry 2 of 3 is not one$"):
        envfile.cidr_list("10.0.0.0/8, 10.0.0.1/8, 192.168.0.0/16")
    with pytest.raises(ValueError, match=r"^entries 1, 3 of 3 are not$"):
        envfile.cidr_list("10.0.0.1/8, 10.0.0.0/8, 10.0.0.0")  # host bits set; no prefix length


# Credentials that expire before an operation could end.

def _expiring(tmp_path: Path, minutes: float) -> envfile.Settings:
    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    return envfile.load(_write(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": at.strftime("%Y-%m-%dT%H:%M:%SZ")}))


def test_the_refusal_says_how_long_the_operation_needs_and_when_the_credentials_end(tmp_path):
    """FR23, issue 15 defect 6: a 2-hour operation with 30 minutes of credentials left is refused in
    hours and minutes, with an assume-role command whose session outlasts it by 10 minutes, and
    names the .env keys to replace."""
    with pytest.raises(envfile.CredentialsExpireTooSoon) as err:
        _expiring(tmp_path, 30).require_lifetime("rebuild", 2 * 3600)
    message = str(err.value)
    assert message.startswith("rebuild needs up to 2h00m")
    assert re.search(r"\(in 0h(29|30)m\)", message) and "--duration-seconds 7800`" in message, message
    assert message.endswith("into .env (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN, "
                            "AWS_SESSION_EXPIRATION) and run again"), message


def test_the_refusal_of_expired_credentials_says_how_long_ago_they_ended(tmp_path):
    """FR23, issue 15 defect 6: credentials that ended an hour ago are reported as such, not as "in"."""
    with pytest.raises(envfile.CredentialsExpireTooSoon, match=r"\(1h00m ago\)"):
        _expiring(tmp_path, -60).require_lifetime("resume", 600)


def test_the_refusal_gives_the_expiry_in_utc_whatever_the_machine_s_zone(tmp_path, monkeypatch):
    """FR23, issue 15 defect 6: the expiry shown ends in Z; it is UTC also on a machine whose zone is
    another (TZ set to UTC+9 for this test, restored after)."""
    monkeypatch.setenv("TZ", "JST-9")
    time.tzset()
    try:
        settings = envfile.load(_write(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": "2030-06-01T12:00:00+02:00"}))
        with pytest.raises(envfile.CredentialsExpireTooSoon) as err:
            settings.require_lifetime("resume", 600, now=dt.datetime(2030, 6, 1, 9, 55, tzinfo=dt.UTC))
    finally:
        monkeypatch.undo()
        time.tzset()
    assert "expire at 2030-06-01T10:00:00Z (in 0h05m)" in str(err.value)


# AWS sessions that read nothing of the shell or ~/.aws.

def test_child_env_without_a_base_is_the_harness_s_environment_without_its_aws_settings(monkeypatch):
    """FR26: a child's environment is the harness's own (PATH, HOME, ...) minus every AWS_* setting."""
    monkeypatch.setenv("LFK8S_PROBE", "kept")
    monkeypatch.setenv("AWS_PROFILE", "stale-profile")
    env = envfile.child_env({"AWS_REGION": "eu-west-1"})
    assert (env.get("LFK8S_PROBE"), "AWS_PROFILE" in env, env["AWS_REGION"]) == ("kept", False, "eu-west-1")


def test_the_session_signs_with_the_env_secret_key(tmp_path):
    """FR26: the AWS session pairs .env's key id with .env's secret key (a missing secret would sign
    nothing)."""
    credentials = envfile.load(_write(tmp_path, GOOD)).boto3_session().get_credentials()
    assert (credentials.access_key, credentials.secret_key) == (GOOD["AWS_ACCESS_KEY_ID"], GOOD["AWS_SECRET_ACCESS_KEY"])


@pytest.mark.parametrize("broken", ["config", "credentials"])
def test_a_broken_aws_file_in_home_does_not_stop_the_harness_s_sessions(tmp_path, monkeypatch, broken):
    """FR26: the harness's AWS sessions read neither ~/.aws/config nor ~/.aws/credentials; one that
    does not parse (HOME pointed at a folder holding it) stops nothing."""
    (tmp_path / ".aws").mkdir()
    (tmp_path / ".aws" / broken).write_text("[default\nregion\n")
    monkeypatch.setenv("HOME", str(tmp_path))
    session = envfile.load(_write(tmp_path, GOOD)).boto3_session()
    assert session.client("sts").meta.region_name == "eu-west-1"


def test_a_session_made_from_keys_carries_them_and_its_region():
    """FR26: the test machinery's sessions (moto, the lifecycle tier) are made from keys and a region
    passed in; the session carries them."""
    key_id = "AKIA" + "0" * 16  # made up here, the shape of an access key id, never a real one
    session = envfile.boto3_session(aws_access_key_id=key_id, aws_secret_access_key="testing",
                                    region_name="ap-south-1")
    assert (session.region_name, session.get_credentials().access_key) == ("ap-south-1", key_id)

