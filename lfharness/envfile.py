"""The operator's .env: loading, validation before anything runs, and secret masking."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from dotenv import dotenv_values

REQUIRED = ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_DEFAULT_REGION", "TFE_TOKEN",
            "TFC_ORGANIZATION", "LANGFUSE_ADMIN_EMAIL", "LANGFUSE_ADMIN_NAME", "LANGFUSE_ADMIN_PASSWORD")
SECRET_KEYS = ("AWS_SECRET_ACCESS_KEY", "TFE_TOKEN", "LANGFUSE_ADMIN_PASSWORD")
TOKEN_ALIAS = "TFC_TOKEN"  # the stories' name; the tfe provider reads TFE_TOKEN (decision 2)

_RULES: dict[str, tuple[str, str]] = {
    "AWS_ACCESS_KEY_ID": (r"(AKIA|ASIA)[A-Z0-9]{16}", "20 characters starting with AKIA or ASIA"),
    "AWS_SECRET_ACCESS_KEY": (r"[A-Za-z0-9/+=]{40}", "40 characters"),
    "AWS_DEFAULT_REGION": (
        r"(us|eu|ap|ca|sa|me|af|il|mx)-(gov-)?(north|south|east|west|central|northeast|southeast"
        r"|northwest|southwest)-[1-9]", "an AWS region name such as us-east-1"),
    "TFE_TOKEN": (r"\S{20,}", "a Terraform Cloud API token (20+ characters, no spaces)"),
    "TFC_ORGANIZATION": (r"[A-Za-z0-9_-]+", "letters, digits, '-' and '_'"),
    "LANGFUSE_ADMIN_EMAIL": (r"[^@\s]+@[^@\s]+\.[^@\s]+", "an email address"),
    "LANGFUSE_ADMIN_NAME": (r".*\S.*", "a non-empty name"),
    "LANGFUSE_ADMIN_PASSWORD": (r".{12,}", "at least 12 characters"),
}


class EnvError(ValueError):
    """Every problem of a .env at once, by key, never with a secret value."""


@dataclass(frozen=True)
class Settings:
    aws_access_key_id: str
    aws_secret_access_key: str
    aws_region: str
    tfe_token: str
    tfc_organization: str
    admin_email: str
    admin_name: str
    admin_password: str

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
    values = {k: (v or "").strip() for k, v in dotenv_values(path).items()} if path.exists() else {}
    if not values.get("TFE_TOKEN") and values.get(TOKEN_ALIAS):
        values["TFE_TOKEN"] = values[TOKEN_ALIAS]
    return values


def missing_keys(values: dict[str, str]) -> list[str]:
    return [k for k in REQUIRED if not values.get(k)]


def malformed_keys(values: dict[str, str]) -> dict[str, str]:
    """Present keys whose value breaks its rule -> what was expected."""
    return {k: expected for k, (pattern, expected) in _RULES.items()
            if values.get(k) and not re.fullmatch(pattern, values[k])}


def load(path: Path) -> Settings:
    """Validated settings, or EnvError listing every missing and malformed key."""
    values = read(path)
    problems = [f"{k}: missing" for k in missing_keys(values)]
    problems += [f"{k}: malformed, expected {exp}" for k, exp in malformed_keys(values).items()]
    if problems:
        raise EnvError(f"{path} is not usable ({len(problems)} problem(s)); fix these keys "
                       "(see .env.example):\n  " + "\n  ".join(problems))
    return Settings(values["AWS_ACCESS_KEY_ID"], values["AWS_SECRET_ACCESS_KEY"], values["AWS_DEFAULT_REGION"],
                    values["TFE_TOKEN"], values["TFC_ORGANIZATION"], values["LANGFUSE_ADMIN_EMAIL"],
                    values["LANGFUSE_ADMIN_NAME"], values["LANGFUSE_ADMIN_PASSWORD"])


def mask(text: str, secrets: Iterable[str]) -> str:
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, "***")
    return text


class SecretMasker(logging.Filter):
    """Replaces secrets with *** in every log record that passes through."""

    def __init__(self, secrets: Iterable[str]) -> None:
        super().__init__()
        self._secrets = tuple(s for s in secrets if s)

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = mask(record.getMessage(), self._secrets)
        record.args = None
        return True


def install_record_masking(secrets: Iterable[str]):
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
