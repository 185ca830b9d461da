"""The operator's .env: loading, validation before anything runs, secret masking, and the
environments of child processes.

Nothing here touches os.environ: values are read with dotenv_values and handed to Terraform,
kubectl and boto3 explicitly. Every child environment is built from .env alone: the operator's
shell may hold a stale AWS_SESSION_TOKEN, an AWS_PROFILE or an AWS_ENDPOINT_URL that, mixed
with the .env keys, would sign requests with the wrong credentials or send them elsewhere.
"""

from __future__ import annotations

import datetime as dt
import functools
import ipaddress
import json
import os
import re
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dotenv import dotenv_values

REQUIRED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "TFE_TOKEN",
            "TFC_ORGANIZATION", "LANGFUSE_ADMIN_EMAIL", "LANGFUSE_ADMIN_NAME", "LANGFUSE_ADMIN_PASSWORD")
SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "TFE_TOKEN", "LANGFUSE_ADMIN_PASSWORD")
TOKEN_ALIAS = "TFC_TOKEN"  # the stories' name; the tfe provider reads TFE_TOKEN (decision 2)
SESSION_TOKEN = "AWS_SESSION_TOKEN"  # optional: required with temporary (ASIA...) keys, refused with AKIA keys
# Optional, likewise: when the temporary keys expire (ISO 8601, as `aws sts assume-role` prints it).
SESSION_EXPIRATION = "AWS_SESSION_EXPIRATION"
# Optional, comma-separated IPv4 CIDRs that narrow who reaches the EKS public endpoint (NFR5) and
# RDS on 5432 (NFR3); absent or empty, Terraform's default 0.0.0.0/0 stays. Key -> the variable it sets.
EKS_PUBLIC_ACCESS_CIDRS = "LFK8S_EKS_PUBLIC_ACCESS_CIDRS"
RDS_INGRESS_CIDRS = "LFK8S_RDS_INGRESS_CIDRS"
CIDR_VARIABLES = {EKS_PUBLIC_ACCESS_CIDRS: "cluster_endpoint_public_access_cidrs",
                  RDS_INGRESS_CIDRS: "rds_ingress_cidrs"}
_CIDR_SHAPE = re.compile(r"\d{1,3}(\.\d{1,3}){3}/\d{1,2}")

# AWS partitions' region names: <area>-[gov-|iso-]<direction>-<digit>, e.g. us-east-1, us-gov-west-1.
# Same rule as the aws_region validation in terraform/*/variables.tf (China partition not supported).
_REGION = (r"(us|eu|ap|ca|sa|me|af|il|mx)-(gov-)?"
           r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]")

# The admin e-mail rule of Langfuse 3.150's web container (web/src/env.mjs: zod 3's `email()`,
# /^(?!\.)(?!.*\.\.)([A-Z0-9_'+\-\.]*)[A-Z0-9_+-]@([A-Z0-9][A-Z0-9\-]*\.)+[A-Z]{2,}$/i), written
# without look-aheads so Terraform's RE2 reads the same pattern (03-app's langfuse_admin_email):
# ASCII only, no leading, trailing or doubled dot in the local part, a domain of labels and a
# letters-only top-level label of 2+. What it refuses, the web pod would refuse at start.
ADMIN_EMAIL = r"([A-Za-z0-9_'+-]+\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9-]*\.)+[A-Za-z]{2,}"

# key -> (full-match pattern, what a good value looks like); the description is what errors show.
_RULES: dict[str, tuple[str, str]] = {
    "AWS_ACCESS_KEY_ID": (r"(AKIA|ASIA)[A-Z0-9]{16}", "20 characters starting with AKIA or ASIA"),
    "AWS_SECRET_ACCESS_KEY": (r"[A-Za-z0-9/+=]{40}", "40 characters"),
    "AWS_DEFAULT_REGION": (_REGION, "an AWS region name such as us-east-1"),
    "TFE_TOKEN": (r"\S{20,}", "a Terraform Cloud API token (20+ characters, no spaces)"),
    "TFC_ORGANIZATION": (r"[A-Za-z0-9_-]+", "a Terraform Cloud organization name: letters, digits, '-' and '_'"),
    "LANGFUSE_ADMIN_EMAIL": (ADMIN_EMAIL, "an email address Langfuse accepts (ASCII, e.g. admin@example.org)"),
    "LANGFUSE_ADMIN_NAME": (r"[^\x00-\x1f\x7f]{1,100}", "a name of 1-100 characters on one line"),
    "LANGFUSE_ADMIN_PASSWORD": (r".{12,}", "at least 12 characters"),
    # STS session tokens are long base64 strings (several hundred characters).
    SESSION_TOKEN: (r"[A-Za-z0-9/+=]{100,}", "an STS session token (100+ base64 characters)"),
    # A zone is required: a bare local time would be read in whichever zone the runner happens to be.
    SESSION_EXPIRATION: (r"\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d+)?)?(Z|[+-]\d{2}:\d{2})",
                         "an ISO 8601 time with its zone, e.g. 2026-12-01T18:30:00Z"),
}


def _expiration(value: str) -> dt.datetime | None:
    """The UTC time of an AWS_SESSION_EXPIRATION value, None when it is not a real ISO 8601 time."""
    if not re.fullmatch(_RULES[SESSION_EXPIRATION][0], value):
        return None
    try:
        return dt.datetime.fromisoformat(value.replace("Z", "+00:00")).astimezone(dt.UTC)
    except ValueError:  # e.g. month 13: the pattern alone lets it through
        return None


def cidr_list(value: str) -> tuple[str, ...]:
    """The CIDRs of a comma-separated .env value. ValueError says which entries (by position,
    never by value) are not IPv4 network CIDRs: the same rule as the Terraform variables'
    validation (a.b.c.d/n with no host bit set), so a bad list stops before Terraform starts."""
    entries = [entry.strip() for entry in value.split(",")]
    bad = []
    for number, entry in enumerate(entries, 1):
        try:
            # strict: 10.0.0.1/8 has host bits set; EKS and EC2 want the network address.
            if not _CIDR_SHAPE.fullmatch(entry) or str(ipaddress.IPv4Network(entry, strict=True)) != entry:
                bad.append(number)
        except ValueError:
            bad.append(number)
    if bad:
        raise ValueError(f"entry {bad[0]} of {len(entries)} is not one" if len(bad) == 1 else
                         f"entries {', '.join(map(str, bad))} of {len(entries)} are not")
    return tuple(entries)


def _duration(seconds: float) -> str:
    minutes = max(0, round(seconds / 60))
    return f"{minutes // 60}h{minutes % 60:02d}m"


def default_path() -> Path:
    """The .env the e2e suite and `python -m lfharness` read: $LFK8S_ENV_FILE, else the repository's."""
    return Path(os.environ.get("LFK8S_ENV_FILE", Path(__file__).resolve().parents[2] / ".env"))


class EnvError(ValueError):
    """Every problem of a .env at once, by key, never with a secret value."""


class CredentialsExpireTooSoon(EnvError):
    """The temporary AWS credentials expire before the operation could end."""


@dataclass(frozen=True)
class Settings:
    """A validated .env. Secret fields are left out of repr so a traceback or log cannot show them."""

    aws_access_key_id: str
    aws_secret_access_key: str = field(repr=False)
    aws_region: str
    tfe_token: str = field(repr=False)
    tfc_organization: str
    admin_email: str
    admin_name: str
    admin_password: str = field(repr=False)
    aws_session_token: str = field(default="", repr=False)  # only with temporary (ASIA...) keys
    aws_session_expiration: dt.datetime | None = None  # UTC; only with temporary keys
    eks_public_access_cidrs: tuple[str, ...] = ()  # empty: 01-network's default (0.0.0.0/0, NFR5)
    rds_ingress_cidrs: tuple[str, ...] = ()  # empty: 02-deps' default (0.0.0.0/0, NFR3)

    def require_lifetime(self, action: str, seconds: float, now: dt.datetime | None = None) -> None:
        """Refuses (CredentialsExpireTooSoon) to start `action`, which may take up to `seconds`,
        when the temporary credentials expire before it could end. Long-term keys never expire.

        Called before anything is created: credentials expiring mid-apply leave Terraform with a
        half-written state and a held lock, and nothing that could still tear it down.
        """
        if self.aws_session_expiration is None:
            return
        now = now or dt.datetime.now(dt.UTC)
        left = (self.aws_session_expiration - now).total_seconds()
        if left >= seconds:
            return
        raise CredentialsExpireTooSoon(
            f"{action} needs up to {_duration(seconds)}, but the temporary AWS credentials in .env expire at "
            f"{self.aws_session_expiration:%Y-%m-%dT%H:%M:%SZ} ("
            + (f"in {_duration(left)}" if left > 0 else f"{_duration(-left)} ago") + "). Get a session that lasts "
            f"at least {_duration(seconds)} (e.g. `aws sts assume-role --duration-seconds {int(seconds) + 600}`, up to "
            "the role's maximum session duration), put its keys, token and expiration into .env "
            f"(AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, {SESSION_TOKEN}, {SESSION_EXPIRATION}) and run again")

    @property
    def secrets(self) -> tuple[str, ...]:
        return tuple(s for s in (self.aws_secret_access_key, self.aws_session_token, self.tfe_token,
                                 self.admin_password) if s)

    def aws_env(self) -> dict[str, str]:
        """The AWS credentials and region as environment variables, session token only when .env has one."""
        env = {
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_REGION": self.aws_region,
            "AWS_DEFAULT_REGION": self.aws_region,
        }
        if self.aws_session_token:
            env["AWS_SESSION_TOKEN"] = self.aws_session_token
        return env

    def child_env(self, base: Mapping[str, str] | None = None) -> dict[str, str]:
        """A child process's environment (kubectl, its token plugin): base without any of the
        shell's AWS settings, plus the .env credentials."""
        return child_env(self.aws_env(), base)

    def boto3_session(self) -> Any:
        """A boto3 Session on the .env credentials only (see isolated_session)."""
        return isolated_session(self.aws_access_key_id, self.aws_secret_access_key, self.aws_session_token,
                                self.aws_region)

    def terraform_env(self) -> dict[str, str]:
        """What Terraform, its providers and the cloud block read (decision 2). The CIDR lists go
        to every workspace as TF_VAR_ (a JSON list is an HCL list); a workspace that does not
        declare the variable ignores it."""
        narrowed = {f"TF_VAR_{CIDR_VARIABLES[key]}": json.dumps(list(cidrs))
                    for key, cidrs in ((EKS_PUBLIC_ACCESS_CIDRS, self.eks_public_access_cidrs),
                                       (RDS_INGRESS_CIDRS, self.rds_ingress_cidrs)) if cidrs}
        return {
            **self.aws_env(),
            "TFE_TOKEN": self.tfe_token,
            # The cloud block takes no variables: token and organization come from these two.
            "TF_TOKEN_app_terraform_io": self.tfe_token,
            "TF_CLOUD_ORGANIZATION": self.tfc_organization,
            "TF_VAR_aws_region": self.aws_region,
            "TF_VAR_tfc_organization": self.tfc_organization,
            "TF_VAR_langfuse_admin_email": self.admin_email,
            "TF_VAR_langfuse_admin_name": self.admin_name,
            "TF_VAR_langfuse_admin_password": self.admin_password,
            **narrowed,
        }


def read(path: Path) -> dict[str, str]:
    """Raw key/values of a .env (empty if the file is absent); TFC_TOKEN counts as TFE_TOKEN."""
    path = Path(path)
    values = {k: (v or "").strip() for k, v in dotenv_values(path).items()} if path.is_file() else {}
    if not values.get("TFE_TOKEN") and values.get(TOKEN_ALIAS):
        values["TFE_TOKEN"] = values[TOKEN_ALIAS]
    return values


def child_env(overlay: Mapping[str, str], base: Mapping[str, str] | None = None) -> dict[str, str]:
    """base (default os.environ) with every AWS_* variable removed, the shared AWS config and
    credentials files pointed at the null device, then overlay on top.

    Dropping the whole AWS_ family rather than a list of names: AWS_PROFILE, AWS_SESSION_TOKEN,
    AWS_SECURITY_TOKEN, AWS_ROLE_ARN, AWS_WEB_IDENTITY_TOKEN_FILE, AWS_ENDPOINT_URL_<SERVICE>, ...
    all change which credentials sign a request or where it goes, and the SDKs keep adding more.
    """
    env = {k: v for k, v in (os.environ if base is None else base).items() if not k.startswith("AWS_")}
    env["AWS_CONFIG_FILE"] = os.devnull
    env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
    env.update(overlay)
    return env


@functools.cache
def shared_data_loader() -> Any:
    """The one botocore data loader of this process, given to every session the harness makes.

    Each new botocore session otherwise gets a loader of its own and parses the service models
    again (ec2's JSON alone is several MB): the sweep, the pause's checks and the offline tests make
    hundreds of clients, and that parsing was most of their CPU time. Service models are read-only
    data, so one cache serves every session and thread.
    """
    import botocore.loaders  # noqa: PLC0415

    # Not create_loader() (it reads AWS_DATA_PATH) and not the default search paths (they include
    # ~/.aws/models): these sessions read nothing from the shell or ~/.aws. boto3 adds its own.
    return botocore.loaders.Loader(extra_search_paths=[botocore.loaders.Loader.BUILTIN_DATA_PATH],
                                   include_default_search_paths=False)


_LOADER_LOCK = threading.Lock()


def boto3_session(**kwargs: Any) -> Any:
    """boto3.Session(**kwargs) on the process's shared data loader (shared_data_loader)."""
    import boto3  # noqa: PLC0415
    import botocore.session  # noqa: PLC0415

    core = kwargs.pop("botocore_session", None) or botocore.session.Session()
    loader = shared_data_loader()
    core.register_component("data_loader", loader)
    with _LOADER_LOCK:
        session = boto3.Session(botocore_session=core, **kwargs)
        # Every boto3.Session appends boto3's data folder to its loader's search paths: on a shared
        # loader the list would grow by one per session, and each uncached lookup walk all of them.
        loader.search_paths[:] = list(dict.fromkeys(loader.search_paths))
    return session


def isolated_session(access_key_id: str, secret_access_key: str, session_token: str | None,
                     region: str) -> Any:
    """A boto3 Session that reads nothing from the environment or ~/.aws.

    Explicit keys alone do not isolate a session: botocore still reads AWS_PROFILE (an unknown
    profile raises), AWS_ENDPOINT_URL*, AWS_CA_BUNDLE, AWS_USE_FIPS_ENDPOINT and the shared config
    file. Every session variable is therefore declared without its environment variable, and the
    config files point at the null device.
    """
    import botocore.configprovider  # noqa: PLC0415 (heavy import, only where a session is made)
    import botocore.session  # noqa: PLC0415

    variables = {name: (config_name, None, default, convert) for name, (config_name, _env, default, convert)
                 in botocore.configprovider.BOTOCORE_DEFAUT_SESSION_VARIABLES.items()}
    variables["config_file"] = (None, None, os.devnull, None)
    variables["credentials_file"] = (None, None, os.devnull, None)
    variables["ignore_configured_endpoint_urls"] = (None, None, True, None)
    core = botocore.session.Session(session_vars=variables)
    core.set_credentials(access_key_id, secret_access_key, session_token or None)
    core.set_config_variable("region", region)
    return boto3_session(botocore_session=core)


def missing_keys(values: dict[str, str]) -> list[str]:
    """Required keys that are absent or empty, in REQUIRED order."""
    return [k for k in REQUIRED if not values.get(k)]


def malformed_keys(values: dict[str, str]) -> dict[str, str]:
    """Present keys whose value breaks its rule -> what was expected.

    AWS_SESSION_TOKEN is checked against the key's kind: temporary keys (ASIA...) do not work
    without their session token, and a token next to long-term keys (AKIA...) is a leftover
    that AWS would reject with them.
    """
    found = {k: expected for k, (pattern, expected) in _RULES.items()
             if values.get(k) and not re.fullmatch(pattern, values[k])}
    key_id = values.get("AWS_ACCESS_KEY_ID", "")
    if key_id.startswith("ASIA") and not values.get(SESSION_TOKEN):
        found[SESSION_TOKEN] = ("the session token that belongs to the temporary key (ASIA...) in "
                                "AWS_ACCESS_KEY_ID: such a key works only with it")
    elif key_id.startswith("AKIA") and values.get(SESSION_TOKEN):
        found[SESSION_TOKEN] = ("no session token next to the long-term key (AKIA...) in AWS_ACCESS_KEY_ID: "
                                "remove the line")
    expiration = values.get(SESSION_EXPIRATION)
    if expiration and _expiration(expiration) is None:
        found[SESSION_EXPIRATION] = _RULES[SESSION_EXPIRATION][1]
    elif key_id.startswith("ASIA") and not expiration:
        found[SESSION_EXPIRATION] = ("the expiration of the temporary key (ASIA...) in AWS_ACCESS_KEY_ID, as STS "
                                     "gave it (Credentials.Expiration, e.g. 2026-12-01T18:30:00Z): the harness refuses "
                                     "to start what cannot end before it")
    elif key_id.startswith("AKIA") and expiration:
        found[SESSION_EXPIRATION] = ("no expiration next to the long-term key (AKIA...) in AWS_ACCESS_KEY_ID: "
                                     "remove the line")
    for key, variable in CIDR_VARIABLES.items():
        if not values.get(key):
            continue
        try:
            cidr_list(values[key])
        except ValueError as exc:
            found[key] = (f"comma-separated IPv4 network CIDRs such as 203.0.113.0/24,198.51.100.7/32 (no host "
                          f"bits set; Terraform's {variable}), or the line removed for 0.0.0.0/0: {exc}")
    return found


def _problems(values: dict[str, str]) -> list[str]:
    problems = [f"{k}: missing" for k in missing_keys(values)]
    problems += [f"{k}: malformed, expected {exp}" for k, exp in malformed_keys(values).items()]
    return problems


def _error(path: Path, problems: list[str]) -> EnvError:
    # Only key names and the expected shape: a value may be a secret pasted into the wrong key.
    return EnvError(f"{path} is not usable ({len(problems)} problem(s)); fix these keys "
                    "(see .env.example):\n  " + "\n  ".join(problems))


def load(path: Path) -> Settings:
    """Validated settings, or EnvError listing every missing and malformed key."""
    values = read(path)
    problems = _problems(values)
    if problems:
        raise _error(path, problems)
    return Settings(values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"], values["AWS_DEFAULT_REGION"],
                    values["TFE_TOKEN"], values["TFC_ORGANIZATION"], values["LANGFUSE_ADMIN_EMAIL"],
                    values["LANGFUSE_ADMIN_NAME"], values["LANGFUSE_ADMIN_PASSWORD"],
                    values.get(SESSION_TOKEN, ""),
                    _expiration(values[SESSION_EXPIRATION]) if values.get(SESSION_EXPIRATION) else None,
                    eks_public_access_cidrs=_optional_cidrs(values, EKS_PUBLIC_ACCESS_CIDRS),
                    rds_ingress_cidrs=_optional_cidrs(values, RDS_INGRESS_CIDRS))


def _optional_cidrs(values: dict[str, str], key: str) -> tuple[str, ...]:
    """A validated CIDR key's list; () when absent or empty (Terraform's default stays)."""
    return cidr_list(values[key]) if values.get(key) else ()


def missing_for_cloud(path: Path) -> list[str]:
    """Keys the cloud run still lacks ([] = .env is complete and valid).

    Absent file or absent keys -> the list (the e2e suite names them in one line and falls
    back to its local default). A key that is present but malformed is an operator mistake,
    not a wish for the fallback -> EnvError, listing every malformed key.
    """
    values = read(path)
    malformed = malformed_keys(values)
    if malformed:
        raise _error(path, [f"{k}: malformed, expected {exp}" for k, exp in malformed.items()])
    return missing_keys(values)
