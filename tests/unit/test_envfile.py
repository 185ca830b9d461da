"""The .env: every missing and malformed key reported before anything runs; secrets masked (static).

Each test writes its own .env into a temporary folder and reads it with python-dotenv.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import pytest

from lfharness.core import envfile, hcl, tf

pytestmark = pytest.mark.static

ROOT = Path(__file__).resolve().parents[2]

GOOD = {
    "AWS_ACCESS_KEY_ID": "AKIA" + "ABCDEFGHIJKLMNOP", "AWS_SECRET_ACCESS_KEY": "s" * 40,
    "AWS_DEFAULT_REGION": "eu-west-1", "TFE_TOKEN": "tok" + "x" * 30, "TFC_ORGANIZATION": "my-org",
    "LANGFUSE_ADMIN_EMAIL": "ops@example.com", "LANGFUSE_ADMIN_NAME": "Ops",
    "LANGFUSE_ADMIN_PASSWORD": "correct-horse-battery",
}

# One malformed value per key: all of them at once must come back in a single error.
BAD = {
    "AWS_ACCESS_KEY_ID": "XYZ123", "AWS_SECRET_ACCESS_KEY": "short-secret-value",
    "AWS_DEFAULT_REGION": "us-east-9x", "TFE_TOKEN": "has spaces in the token value",
    "TFC_ORGANIZATION": "bad org!", "LANGFUSE_ADMIN_EMAIL": "not-an-email", "LANGFUSE_ADMIN_NAME": "Ops\nTeam",
    "LANGFUSE_ADMIN_PASSWORD": "tiny-secret",
}


def _write(tmp_path: Path, values: dict[str, str]) -> Path:
    path = tmp_path / ".env"
    path.write_text("".join(f'{k}="{v}"\n' for k, v in values.items()))
    return path


def _error(tmp_path: Path, values: dict[str, str]) -> str:
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(_write(tmp_path, values))
    return str(err.value)


def test_a_complete_env_loads(tmp_path):
    """FR23: one .env holds all configuration."""
    settings = envfile.load(_write(tmp_path, GOOD))
    assert (settings.aws_region, settings.tfc_organization, settings.admin_email) == (
        "eu-west-1", "my-org", "ops@example.com")


def test_loading_leaves_os_environ_untouched(tmp_path, monkeypatch):
    """FR26: reading .env does not export anything by itself; Terraform gets terraform_env() explicitly."""
    for key in GOOD:
        monkeypatch.delenv(key, raising=False)
    envfile.load(_write(tmp_path, GOOD))
    assert not set(GOOD) & set(os.environ)


def test_every_missing_key_is_named_in_one_error(tmp_path):
    """FR23: an empty .env yields one error listing all eight required keys as missing."""
    text = _error(tmp_path, {})
    assert [k for k in envfile.REQUIRED if f"{k}: missing" not in text] == []


def test_an_absent_env_file_names_every_key_as_missing(tmp_path):
    """FR23: with no .env at all, the error lists every required key."""
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(tmp_path / "no-such.env")
    assert [k for k in envfile.REQUIRED if f"{k}: missing" not in str(err.value)] == []


def test_every_malformed_key_is_named_in_one_error(tmp_path):
    """FR23: with every value malformed, one error names each key as malformed."""
    text = _error(tmp_path, BAD)
    assert [k for k in envfile.REQUIRED if f"{k}: malformed" not in text] == []


def test_missing_and_malformed_keys_are_reported_together(tmp_path):
    """FR23: a missing key and a malformed key come back in the same error, each labelled."""
    values = {k: v for k, v in GOOD.items() if k != "LANGFUSE_ADMIN_EMAIL"} | {"AWS_DEFAULT_REGION": "useast1"}
    text = _error(tmp_path, values)
    assert "LANGFUSE_ADMIN_EMAIL: missing" in text and "AWS_DEFAULT_REGION: malformed" in text


@pytest.mark.parametrize("key", sorted(BAD))
def test_a_malformed_value_is_named_by_key_with_what_was_expected(tmp_path, key):
    """FR23: a malformed value is named by its key, with a description of a good value."""
    assert f"{key}: malformed, expected " in _error(tmp_path, {**GOOD, key: BAD[key]})


@pytest.mark.parametrize("region", ["us-east-1", "eu-central-2", "ap-southeast-5", "us-gov-west-1",
                                    "il-central-1", "ca-west-1"])
def test_real_region_names_are_accepted(tmp_path, region):
    """FR23: AWS_DEFAULT_REGION accepts real AWS region names."""
    assert envfile.load(_write(tmp_path, {**GOOD, "AWS_DEFAULT_REGION": region})).aws_region == region


@pytest.mark.parametrize("region", ["us-east-9x", "useast1", "US-EAST-1", "us-east-0", "mars-east-1", "us-east",
                                    "cn-northwest-1"])
def test_region_lookalikes_are_rejected(tmp_path, region):
    """FR23: AWS_DEFAULT_REGION rejects names that are not AWS regions."""
    assert "AWS_DEFAULT_REGION: malformed" in _error(tmp_path, {**GOOD, "AWS_DEFAULT_REGION": region})


def test_errors_never_echo_values(tmp_path):
    """NFR1: the error names keys and expected shapes, never a value that was given."""
    text = _error(tmp_path, BAD)
    assert [v for v in BAD.values() if v.strip() and v in text] == []


def test_settings_repr_hides_the_secrets(tmp_path):
    """NFR1: a Settings printed in a traceback or log shows no secret."""
    text = repr(envfile.load(_write(tmp_path, TEMPORARY)))
    assert [k for k in envfile.SECRET_KEYS if TEMPORARY[k] in text] == []


def test_tfc_token_is_accepted_as_an_alias(tmp_path):
    """FR23, decision 2: the stories' TFC_TOKEN works where TFE_TOKEN is absent."""
    values = {k: v for k, v in GOOD.items() if k != "TFE_TOKEN"} | {"TFC_TOKEN": "alias" + "y" * 30}
    assert envfile.load(_write(tmp_path, values)).tfe_token == "alias" + "y" * 30


def test_terraform_env_exports_the_token_for_the_cloud_block(tmp_path):
    """FR26, decision 2: TF_TOKEN_app_terraform_io (and TFE_TOKEN) carry the .env token."""
    env = envfile.load(_write(tmp_path, GOOD)).terraform_env()
    assert (env["TF_TOKEN_app_terraform_io"], env["TFE_TOKEN"]) == (GOOD["TFE_TOKEN"], GOOD["TFE_TOKEN"])


def test_terraform_env_exports_the_organization_for_the_cloud_block(tmp_path):
    """FR26, decision 2: TF_CLOUD_ORGANIZATION comes from TFC_ORGANIZATION (a cloud block takes no variables)."""
    assert envfile.load(_write(tmp_path, GOOD)).terraform_env()["TF_CLOUD_ORGANIZATION"] == "my-org"


def test_terraform_env_exports_aws_credentials_and_region(tmp_path):
    """FR26: the AWS provider reads keys and region from the environment, no aws configure."""
    env = envfile.load(_write(tmp_path, GOOD)).terraform_env()
    assert {k: env[k] for k in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_REGION", "AWS_DEFAULT_REGION")} == {
        "AWS_ACCESS_KEY_ID": GOOD["AWS_ACCESS_KEY_ID"], "AWS_SECRET_ACCESS_KEY": GOOD["AWS_SECRET_ACCESS_KEY"],
        "AWS_REGION": "eu-west-1", "AWS_DEFAULT_REGION": "eu-west-1"}


def test_terraform_env_exports_the_admin_as_tf_vars(tmp_path):
    """FR23, FR26: the Langfuse admin reaches Terraform as TF_VAR_langfuse_admin_*."""
    env = envfile.load(_write(tmp_path, GOOD)).terraform_env()
    assert (env["TF_VAR_langfuse_admin_email"], env["TF_VAR_langfuse_admin_name"],
            env["TF_VAR_langfuse_admin_password"]) == ("ops@example.com", "Ops", GOOD["LANGFUSE_ADMIN_PASSWORD"])


def test_missing_for_cloud_names_the_absent_keys(tmp_path):
    """FR23: a partial .env yields the absent keys (the e2e suite names them and uses its local default)."""
    values = {k: v for k, v in GOOD.items() if k not in ("TFE_TOKEN", "TFC_ORGANIZATION")}
    assert envfile.missing_for_cloud(_write(tmp_path, values)) == ["TFE_TOKEN", "TFC_ORGANIZATION"]


def test_missing_for_cloud_without_a_file_names_every_key(tmp_path):
    """FR23: no .env at all means every key is absent, so the local default is allowed."""
    assert envfile.missing_for_cloud(tmp_path / ".env") == list(envfile.REQUIRED)


def test_missing_for_cloud_is_empty_for_a_complete_env(tmp_path):
    """FR23: a complete, valid .env lacks nothing: the cloud run goes ahead."""
    assert envfile.missing_for_cloud(_write(tmp_path, GOOD)) == []


def test_missing_for_cloud_refuses_a_malformed_key(tmp_path):
    """FR23: a present but malformed key is a hard error, not a silent fall-back to the local default."""
    values = {"AWS_DEFAULT_REGION": "us-east-9x", "TFC_ORGANIZATION": "my-org"}
    with pytest.raises(envfile.EnvError, match="AWS_DEFAULT_REGION: malformed"):
        envfile.missing_for_cloud(_write(tmp_path, values))


def _example() -> Path:
    path = ROOT / ".env.example"
    if not path.is_file():
        pytest.skip(".env.example is not in the repository root yet")
    return path


def test_env_example_lists_exactly_the_required_keys():
    """FR24: .env.example has a placeholder for every key the harness requires, and no other."""
    assert set(envfile.read(_example())) == set(envfile.REQUIRED)


def test_env_example_placeholders_have_the_right_shape():
    """FR24: the placeholders pass validation, so copying the file shows only what to fill in."""
    assert envfile.malformed_keys(envfile.read(_example())) == {}


def test_dot_env_is_ignored_by_git():
    """FR25, NFR1: .env is in .gitignore."""
    assert ".env" in (ROOT / ".gitignore").read_text().splitlines()


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_every_workspace_variable_is_fed_from_env(tmp_path, workspace):
    """FR23, FR26: each Terraform variable without a default is exported as TF_VAR_* from .env,
    none needs a prompt (the pause and capacity knobs have defaults and come as -var)."""
    names = {name for name, body in hcl.blocks(tf.TERRAFORM_DIR / workspace, "variable").items()
             if "default" not in body}
    exported = {k.removeprefix("TF_VAR_") for k in envfile.load(_write(tmp_path, GOOD)).terraform_env()
                if k.startswith("TF_VAR_")}
    assert names <= exported, f"{workspace} variables without a .env source: {names - exported}"


@pytest.mark.parametrize("workspace", ["01-network", "02-deps", "03-app"])
def test_env_region_rule_is_the_one_terraform_validates(workspace):
    """FR23: .env and each workspace's aws_region validation accept exactly the same names."""
    text = (tf.TERRAFORM_DIR / workspace / "variables.tf").read_text()
    pattern = re.search(r'regex\("\^(.*?)\$", var\.aws_region\)', text).group(1)
    assert pattern == envfile._REGION


# --- temporary credentials and child environments (issue 10 item 2) -------------------------

SESSION_TOKEN = "IQoJb3JpZ2luX2VjE" + "A" * 300  # shape of an STS session token (base64, hundreds of chars)
TEMPORARY = {**GOOD, "AWS_ACCESS_KEY_ID": "ASIA" + "ABCDEFGHIJKLMNOP", "AWS_SESSION_TOKEN": SESSION_TOKEN,
             "AWS_SESSION_EXPIRATION": "2099-01-01T00:00:00Z"}
SHELL_AWS = {"AWS_PROFILE": "stale-profile", "AWS_SESSION_TOKEN": "stale-shell-token", "AWS_SECURITY_TOKEN": "stale",
             "AWS_CONFIG_FILE": "/nonexistent/config", "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent/credentials",
             "AWS_ROLE_ARN": "arn:aws:iam::123456789012:role/other", "AWS_WEB_IDENTITY_TOKEN_FILE": "/nonexistent/token",
             "AWS_ENDPOINT_URL": "http://127.0.0.1:9", "AWS_ENDPOINT_URL_STS": "http://127.0.0.1:9",
             "AWS_USE_FIPS_ENDPOINT": "true"}


def test_temporary_keys_load_with_their_session_token(tmp_path):
    """FR23, issue 10 item 2: ASIA keys come with AWS_SESSION_TOKEN from .env, and Terraform gets it."""
    settings = envfile.load(_write(tmp_path, TEMPORARY))
    assert settings.terraform_env()["AWS_SESSION_TOKEN"] == SESSION_TOKEN


def test_temporary_keys_without_a_session_token_are_refused(tmp_path):
    """FR23, issue 10 item 2: an ASIA key without AWS_SESSION_TOKEN is refused before anything runs."""
    values = {k: v for k, v in TEMPORARY.items() if k != "AWS_SESSION_TOKEN"}
    assert "AWS_SESSION_TOKEN: malformed, expected the session token" in _error(tmp_path, values)


def test_a_session_token_next_to_long_term_keys_is_refused(tmp_path):
    """FR23, issue 10 item 2: an AKIA key with an AWS_SESSION_TOKEN is refused (AWS would reject the pair)."""
    assert "AWS_SESSION_TOKEN: malformed, expected no session token" in _error(
        tmp_path, {**GOOD, "AWS_SESSION_TOKEN": SESSION_TOKEN})


def test_long_term_keys_pass_no_session_token_on(tmp_path):
    """FR26, issue 10 item 2: with AKIA keys no AWS_SESSION_TOKEN reaches Terraform."""
    assert "AWS_SESSION_TOKEN" not in envfile.load(_write(tmp_path, GOOD)).terraform_env()


def test_session_token_is_masked_as_a_secret(tmp_path):
    """NFR1, issue 10 item 2: the session token is among the masked secrets and hidden from repr."""
    settings = envfile.load(_write(tmp_path, TEMPORARY))
    assert (SESSION_TOKEN in settings.secrets, SESSION_TOKEN in repr(settings)) == (True, False)


def test_child_env_drops_every_shell_aws_setting(tmp_path):
    """FR26, issue 10 item 2: a child's environment has the .env credentials and none of the shell's
    AWS settings (profile, stale token, role, endpoints, config files)."""
    env = envfile.load(_write(tmp_path, GOOD)).child_env({**SHELL_AWS, "PATH": "/usr/bin"})
    leaked = {k: v for k, v in env.items() if k.startswith("AWS_") and v in SHELL_AWS.values()}
    assert (leaked, env["AWS_ACCESS_KEY_ID"], env["PATH"]) == ({}, GOOD["AWS_ACCESS_KEY_ID"], "/usr/bin")


def test_child_env_points_the_shared_aws_files_at_the_null_device(tmp_path):
    """FR26, issue 10 item 2: ~/.aws/config and credentials cannot feed a child a profile or a key."""
    env = envfile.load(_write(tmp_path, GOOD)).child_env({})
    assert (env["AWS_CONFIG_FILE"], env["AWS_SHARED_CREDENTIALS_FILE"]) == (os.devnull, os.devnull)


def test_boto3_session_pairs_the_env_key_with_no_shell_token(tmp_path, monkeypatch):
    """FR26, issue 10 item 2: with a stale AWS_SESSION_TOKEN and AWS_PROFILE in the shell, the boto3
    session signs with exactly the .env key and no token (reproduced defect: the shell's token was paired)."""
    for key, value in SHELL_AWS.items():
        monkeypatch.setenv(key, value)
    credentials = envfile.load(_write(tmp_path, GOOD)).boto3_session().get_credentials()
    assert (credentials.access_key, credentials.token) == (GOOD["AWS_ACCESS_KEY_ID"], None)


def test_boto3_session_carries_the_env_session_token(tmp_path, monkeypatch):
    """FR26, issue 10 item 2: temporary .env keys sign with the .env session token, not the shell's."""
    monkeypatch.setenv("AWS_SESSION_TOKEN", "stale-shell-token")
    assert envfile.load(_write(tmp_path, TEMPORARY)).boto3_session().get_credentials().token == SESSION_TOKEN


def test_boto3_session_ignores_the_shell_endpoint_and_fips_settings(tmp_path, monkeypatch):
    """FR26, issue 10 item 2: AWS_ENDPOINT_URL* and AWS_USE_FIPS_ENDPOINT in the shell do not redirect
    the session's clients (no request is sent: the endpoint is computed locally)."""
    for key, value in SHELL_AWS.items():
        monkeypatch.setenv(key, value)
    client = envfile.load(_write(tmp_path, GOOD)).boto3_session().client("sts")
    assert client.meta.endpoint_url == "https://sts.eu-west-1.amazonaws.com"


def test_a_second_session_parses_no_service_model_again(tmp_path, monkeypatch):
    """Issue 17: every session the harness makes shares one botocore loader, so the second session's
    ec2 client reads no model file (each session parsing ec2's JSON again was most of the sweep's and
    the moto tests' CPU time)."""
    import botocore.loaders

    settings = envfile.load(_write(tmp_path, GOOD))
    settings.boto3_session().client("ec2")
    read: list[str] = []
    real_load = botocore.loaders.JSONFileLoader.load_file
    monkeypatch.setattr(botocore.loaders.JSONFileLoader, "load_file",
                        lambda self, path: read.append(path) or real_load(self, path))
    settings.boto3_session().client("ec2")
    assert read == []


def test_env_example_documents_the_optional_session_token():
    """FR24, issue 10 item 2: .env.example names AWS_SESSION_TOKEN on a commented, optional line."""
    lines = _example().read_text().splitlines()
    assert any(line.startswith("# AWS_SESSION_TOKEN=") for line in lines)


# --- issue 15 defect 6: temporary credentials that expire mid-run -----------------------------

def test_temporary_keys_without_their_expiration_are_refused(tmp_path):
    """FR23, issue 15 defect 6: ASIA keys need AWS_SESSION_EXPIRATION, so the harness can tell whether a
    run ends before they do; without it .env is refused before anything runs."""
    values = {k: v for k, v in TEMPORARY.items() if k != "AWS_SESSION_EXPIRATION"}
    assert "AWS_SESSION_EXPIRATION: malformed, expected the expiration" in _error(tmp_path, values)


@pytest.mark.parametrize("value", ["tomorrow", "2026-13-01T00:00:00Z", "2026-12-01 10:00", "2026-12-01T10:00:00"])
def test_an_expiration_that_is_not_iso_8601_with_a_zone_is_refused(tmp_path, value):
    """FR23, issue 15 defect 6: AWS_SESSION_EXPIRATION is an ISO 8601 time with its zone (as STS prints it)."""
    assert "AWS_SESSION_EXPIRATION: malformed" in _error(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": value})


def test_an_expiration_next_to_long_term_keys_is_refused(tmp_path):
    """FR23, issue 15 defect 6: long-term (AKIA) keys do not expire; an expiration beside them is a leftover."""
    assert "AWS_SESSION_EXPIRATION: malformed, expected no expiration" in _error(
        tmp_path, {**GOOD, "AWS_SESSION_EXPIRATION": "2099-01-01T00:00:00Z"})


def test_the_expiration_is_read_with_its_zone(tmp_path):
    """FR23, issue 15 defect 6: an offset other than Z is honoured (STS's output and an operator's clock differ)."""
    settings = envfile.load(_write(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": "2030-06-01T12:00:00+02:00"}))
    assert settings.aws_session_expiration.isoformat() == "2030-06-01T10:00:00+00:00"


def _expiring(tmp_path: Path, minutes: float) -> envfile.Settings:
    import datetime as dt

    at = dt.datetime.now(dt.UTC) + dt.timedelta(minutes=minutes)
    return envfile.load(_write(tmp_path, {**TEMPORARY, "AWS_SESSION_EXPIRATION": at.strftime("%Y-%m-%dT%H:%M:%SZ")}))


def test_an_operation_that_outlasts_the_credentials_is_refused_saying_what_to_do(tmp_path):
    """FR23, issue 15 defect 6: a 70-minute operation with credentials that expire in 30 minutes is refused,
    naming the expiration, the time needed and the fix."""
    with pytest.raises(envfile.CredentialsExpireTooSoon, match=r"resume needs up to 1h10m.*expire.*AWS_SESSION_EXPIRATION"):
        _expiring(tmp_path, 30).require_lifetime("resume", 70 * 60)


def test_an_operation_that_ends_before_the_credentials_expire_may_start(tmp_path):
    """FR23, issue 15 defect 6: with 2 h left, a 70-minute operation starts."""
    assert _expiring(tmp_path, 120).require_lifetime("resume", 70 * 60) is None


def test_long_term_keys_never_limit_an_operation(tmp_path):
    """FR23, issue 15 defect 6: AKIA keys carry no expiration; any operation may start."""
    assert envfile.load(_write(tmp_path, GOOD)).require_lifetime("the e2e suite", 10 * 3600) is None


def test_env_example_documents_the_optional_session_expiration():
    """FR24, issue 15 defect 6: .env.example names AWS_SESSION_EXPIRATION on a commented, optional line."""
    lines = _example().read_text().splitlines()
    assert any(line.startswith("# AWS_SESSION_EXPIRATION=") for line in lines)


# --- the admin e-mail: exactly what Langfuse 3.150's web container accepts (issue 25 item 4) ----

REFUSED_EMAILS = ["ops@example.c", "ops@10.0.0.1", "jörg@example.com", ".ops@example.com", "ops..x@example.com",
                  "ops.@example.com", "o'@example.com", "ops@-example.com", "ops@example"]
ACCEPTED_EMAILS = ["ops@example.com", "first.last+tag@sub.example.co.uk", "o'neil@example.io", "OPS@EXAMPLE.COM",
                   "a_b-c@x-y.example.org"]


@pytest.mark.parametrize("email", REFUSED_EMAILS)
def test_an_admin_email_langfuse_refuses_is_malformed_before_anything_runs(tmp_path, email):
    """FR23, issue 25: an address zod's email() refuses at Langfuse 3.150 (the web pod would not
    start) is named as malformed by the .env check, never echoed."""
    with pytest.raises(envfile.EnvError) as err:
        envfile.load(_write(tmp_path, {**GOOD, "LANGFUSE_ADMIN_EMAIL": email}))
    assert "LANGFUSE_ADMIN_EMAIL: malformed" in str(err.value) and email not in str(err.value)


@pytest.mark.parametrize("email", ACCEPTED_EMAILS)
def test_an_admin_email_langfuse_accepts_passes_the_env_check(tmp_path, email):
    """FR23, issue 25: the addresses zod's email() accepts pass, upper case and apostrophes included."""
    assert envfile.load(_write(tmp_path, {**GOOD, "LANGFUSE_ADMIN_EMAIL": email})).admin_email == email


def test_terraform_validates_the_admin_email_with_the_same_rule(tmp_path):
    """Issue 25: 03-app's langfuse_admin_email validation applies the .env rule, run by Terraform's
    own regex engine (RE2) on every case above, so neither side accepts what the other refuses."""
    cases = REFUSED_EMAILS + ACCEPTED_EMAILS
    condition = hcl.blocks(tf.TERRAFORM_DIR / "03-app", "variable")["langfuse_admin_email"]["validation"][0]["condition"]
    pattern = re.search(r'regex\("(.*)", var\.langfuse_admin_email\)', condition).group(1).replace("\\\\", "\\")
    assert pattern == f"^{envfile.ADMIN_EMAIL}$"
    expression = "[" + ", ".join(f'can(regex("{pattern.replace(chr(92), chr(92) * 2)}", "{c}"))' for c in cases) + "]"
    out = subprocess.run([str(tf.terraform_bin()), "console"], input=expression + "\n", capture_output=True,
                         text=True, timeout=60, check=True, cwd=tmp_path).stdout
    verdicts = re.findall(r"\b(true|false)\b", out)
    assert verdicts == ["false"] * len(REFUSED_EMAILS) + ["true"] * len(ACCEPTED_EMAILS)


# --- issue 26 item 6: optional CIDRs that narrow the EKS endpoint and RDS's 5432 ------------------

CIDR_KEYS = [envfile.EKS_PUBLIC_ACCESS_CIDRS, envfile.RDS_INGRESS_CIDRS]
# Values the .env check and the Terraform validation must both refuse (host bits set, no prefix,
# a netmask instead of a prefix length, IPv6, a prefix over 32, an empty entry, a leading zero) ...
REFUSED_CIDRS = ["10.0.0.1/8", "203.0.113.7", "10.0.0.0/255.0.0.0", "::/0", "1.2.3.0/33", "", "010.0.0.0/8",
                 "256.0.0.0/8", "a.b.c.d/8"]
# ... and values both accept.
ACCEPTED_CIDRS = ["0.0.0.0/0", "203.0.113.0/24", "198.51.100.7/32", "10.0.0.0/8"]


@pytest.mark.parametrize("key", CIDR_KEYS)
def test_narrowed_cidrs_reach_terraform_as_a_list_variable(tmp_path, key):
    """NFR3, NFR5, issue 26 item 6: a comma-separated CIDR key becomes TF_VAR_<its variable> as a
    JSON list (an HCL list for Terraform), spaces around the commas dropped, order kept."""
    env = envfile.load(_write(tmp_path, {**GOOD, key: "203.0.113.0/24, 198.51.100.7/32"})).terraform_env()
    assert json.loads(env[f"TF_VAR_{envfile.CIDR_VARIABLES[key]}"]) == ["203.0.113.0/24", "198.51.100.7/32"]


@pytest.mark.parametrize("value", [None, ""])
def test_without_a_cidr_key_terraform_keeps_its_anywhere_default(tmp_path, value):
    """NFR3, NFR5: absent or empty, neither CIDR variable is passed, so 0.0.0.0/0 (the variables'
    default) stays."""
    values = {**GOOD, **({} if value is None else {key: value for key in CIDR_KEYS})}
    env = envfile.load(_write(tmp_path, values)).terraform_env()
    assert [k for k in env if k.removeprefix("TF_VAR_") in envfile.CIDR_VARIABLES.values()] == []


@pytest.mark.parametrize("key", CIDR_KEYS)
def test_a_bad_cidr_is_refused_before_anything_runs_by_key_and_position_never_by_value(tmp_path, key):
    """FR23, issue 26 item 6: one bad entry stops the load with the key, the entry's position and
    the shape expected; the bad value itself is not echoed (it could be something pasted by mistake)."""
    message = _error(tmp_path, {**GOOD, key: "203.0.113.0/24,10.9.8.7/8,198.51.100.7/32"})
    assert re.search(rf"{key}: malformed, expected comma-separated IPv4 network CIDRs.*entry 2 of 3 is not one",
                     message)
    assert "10.9.8.7" not in message


def test_env_example_documents_the_optional_cidr_keys():
    """FR24, issue 26 item 6: .env.example names both CIDR keys on commented, optional lines whose
    example values pass the check."""
    lines = _example().read_text().splitlines()
    examples = {line[2:].split("=", 1)[0]: line.split("=", 1)[1] for line in lines
                if line.startswith("# LFK8S_") and "CIDRS=" in line}
    assert sorted(examples) == sorted(CIDR_KEYS)
    assert all(envfile.cidr_list(value) for value in examples.values())


@pytest.mark.parametrize("key", CIDR_KEYS)
def test_terraform_validates_the_cidrs_with_the_same_rule(tmp_path, key):
    """Issue 26 item 6: the variable's validation conditions, run by Terraform itself on each case
    above as a one-entry list (and on an empty list), refuse exactly what the .env check refuses."""
    variable = envfile.CIDR_VARIABLES[key]
    workspace = "01-network" if key == envfile.EKS_PUBLIC_ACCESS_CIDRS else "02-deps"
    conditions = [v["condition"].removeprefix("${").removesuffix("}")
                  for v in hcl.blocks(tf.TERRAFORM_DIR / workspace, "variable")[variable]["validation"]]
    cases = [[c] for c in REFUSED_CIDRS + ACCEPTED_CIDRS] + [[]]
    expression = "[" + ", ".join(
        "alltrue([" + ", ".join(c.replace(f"var.{variable}", json.dumps(case)) for c in conditions) + "])"
        for case in cases) + "]"
    out = subprocess.run([str(tf.terraform_bin()), "console"], input=expression + "\n", capture_output=True,
                         text=True, timeout=60, check=True, cwd=tmp_path).stdout
    terraform = re.findall(r"\b(true|false)\b", out)

    def env_accepts(case: list[str]) -> bool:
        try:
            return bool(case) and bool(envfile.cidr_list(",".join(case)))
        except ValueError:
            return False
    assert terraform == [str(env_accepts(case)).lower() for case in cases]
    assert terraform.count("true") == len(ACCEPTED_CIDRS)
