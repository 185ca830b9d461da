"""The operator's .env: loading, validation before anything runs, and secret masking.

Nothing here touches os.environ: values are read with dotenv_values and handed to
Terraform explicitly through Settings.terraform_env().
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from dotenv import dotenv_values

REQUIRED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "TFE_TOKEN",
            "TFC_ORGANIZATION", "LANGFUSE_ADMIN_EMAIL", "LANGFUSE_ADMIN_NAME", "LANGFUSE_ADMIN_PASSWORD")
SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "TFE_TOKEN", "LANGFUSE_ADMIN_PASSWORD")
TOKEN_ALIAS = "TFC_TOKEN"  # the stories' name; the tfe provider reads TFE_TOKEN (decision 2)

# AWS partitions' region names: <area>-[gov-|iso-]<direction>-<digit>, e.g. us-east-1, us-gov-west-1.
# Same rule as the aws_region validation in terraform/*/variables.tf (China partition not supported).
_REGION = (r"(us|eu|ap|ca|sa|me|af|il|mx)-(gov-)?"
           r"(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]")

# key -> (full-match pattern, what a good value looks like); the description is what errors show.
_RULES: dict[str, tuple[str, str]] = {
    "AWS_ACCESS_KEY_ID": (r"(AKIA|ASIA)[A-Z0-9]{16}", "20 characters starting with AKIA or ASIA"),
    "AWS_SECRET_ACCESS_KEY": (r"[A-Za-z0-9/+=]{40}", "40 characters"),
    "AWS_DEFAULT_REGION": (_REGION, "an AWS region name such as us-east-1"),
    "TFE_TOKEN": (r"\S{20,}", "a Terraform Cloud API token (20+ characters, no spaces)"),
    "TFC_ORGANIZATION": (r"[A-Za-z0-9_-]+", "a Terraform Cloud organization name: letters, digits, '-' and '_'"),
    "LANGFUSE_ADMIN_EMAIL": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address"),
    "LANGFUSE_ADMIN_NAME": (r"[^\x00-\x1f\x7f]{1,100}", "a name of 1-100 characters on one line"),
    "LANGFUSE_ADMIN_PASSWORD": (r".{12,}", "at least 12 characters"),
}


class EnvError(ValueError):
    """Every problem of a .env at once, by key, never with a secret value."""


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

    @property
    def secrets(self) -> tuple[str, ...]:
        return (self.aws_secret_access_key, self.tfe_token, self.admin_password)

    def terraform_env(self) -> dict[str, str]:
        """What Terraform, its providers and the cloud block read (decision 2)."""
        return {
            "AWS_ACCESS_KEY_ID": self.aws_access_key_id,
            "AWS_SECRET_ACCESS_KEY": self.aws_secret_access_key,
            "AWS_REGION": self.aws_region,
            "AWS_DEFAULT_REGION": self.aws_region,
            "TFE_TOKEN": self.tfe_token,
            # The cloud block takes no variables: token and organization come from these two.
            "TF_TOKEN_app_terraform_io": self.tfe_token,
            "TF_CLOUD_ORGANIZATION": self.tfc_organization,
            "TF_VAR_aws_region": self.aws_region,
            "TF_VAR_tfc_organization": self.tfc_organization,
            "TF_VAR_langfuse_admin_email": self.admin_email,
            "TF_VAR_langfuse_admin_name": self.admin_name,
            "TF_VAR_langfuse_admin_password": self.admin_password,
        }


def read(path: Path) -> dict[str, str]:
    """Raw key/values of a .env (empty if the file is absent); TFC_TOKEN counts as TFE_TOKEN."""
    path = Path(path)
    values = {k: (v or "").strip() for k, v in dotenv_values(path).items()} if path.is_file() else {}
    if not values.get("TFE_TOKEN") and values.get(TOKEN_ALIAS):
        values["TFE_TOKEN"] = values[TOKEN_ALIAS]
    return values


def missing_keys(values: dict[str, str]) -> list[str]:
    """Required keys that are absent or empty, in REQUIRED order."""
    return [k for k in REQUIRED if not values.get(k)]


def malformed_keys(values: dict[str, str]) -> dict[str, str]:
    """Present keys whose value breaks its rule -> what was expected."""
    return {k: expected for k, (pattern, expected) in _RULES.items()
            if values.get(k) and not re.fullmatch(pattern, values[k])}


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
                    values["LANGFUSE_ADMIN_NAME"], values["LANGFUSE_ADMIN_PASSWORD"])


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


def mask(text: str, secrets: Iterable[str]) -> str:
    """text with every non-empty secret replaced by *** (longest first, so overlaps mask fully)."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class SecretMasker(logging.Filter):
    """Replaces secrets with *** in every log record that passes through: message, args, traceback."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        # Merge args into the message first: a secret can be split across msg and args.
        record.msg = mask(record.getMessage(), self._secrets)
        record.args = None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = mask(record.exc_text, self._secrets)
        return True


def install_record_masking(secrets: Iterable[str]) -> Callable[[], None]:
    """Masks secrets in every log record created from now on, whichever logger or handler
    (pytest's capture handlers included) ends up emitting it. Returns a function that undoes it."""
    previous = logging.getLogRecordFactory()
    masker = SecretMasker(secrets)

    def factory(*args, **kwargs) -> logging.LogRecord:
        record = previous(*args, **kwargs)
        masker.filter(record)
        return record

    logging.setLogRecordFactory(factory)
    return lambda: logging.setLogRecordFactory(previous)
