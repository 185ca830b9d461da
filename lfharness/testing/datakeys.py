"""The secrets that protect stored data (decision 20), compared by digest, never by value.

02-deps outputs them beside the database; a rebuild or a pause of 03-app must leave them as they
were. Tests and stages compare sha256 digests, so a failing assertion shows only digests.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

from lfharness.core import tf

# 02-deps outputs that protect what PostgreSQL stores: SALT hashes the project API keys,
# ENCRYPTION_KEY encrypts stored LLM connection keys, the key pair is what the SDKs hold.
DATA_PROTECTING_OUTPUTS = ("salt", "encryption_key", "project_public_key", "project_secret_key")
# The shortest random part of a generated secret (the 32-character passwords): shorter attribute
# values (ids, names, lengths) are not compared, so "none" never counts as part of a secret.
MIN_SECRET_PART = 32


def digest(value: str) -> str:
    """sha256 hex of a secret: equal digests, equal secrets; the digest reveals nothing usable."""
    return hashlib.sha256(value.encode()).hexdigest()


def digests(outputs: Mapping[str, Any], names: tuple[str, ...] = DATA_PROTECTING_OUTPUTS) -> dict[str, str | None]:
    """Digest of each named output (None where the output is absent or null)."""
    return {name: digest(str(outputs[name])) if outputs.get(name) is not None else None for name in names}


# --- the stand-in lifecycle (plan tier): applied copies of the workspaces ----------------------

def applied_outputs(folder: Path, env: Mapping[str, str]) -> dict[str, tuple[Any, bool]]:
    """`terraform output -json` of an applied copy as (value, sensitive) by name: the shape the local
    Terraform Cloud fake serves to tfe_outputs. Not logged: it holds the sensitive values."""
    raw = json.loads(tf.run(["output", "-json", "-no-color"], folder, dict(env)).stdout or "{}")
    return {name: (body["value"], bool(body.get("sensitive"))) for name, body in raw.items()}


def output_values(folder: Path, env: Mapping[str, str]) -> dict[str, Any]:
    """The applied copy's output values by name (sensitive ones included: compare them by digest)."""
    return {name: value for name, (value, _) in applied_outputs(folder, env).items()}


def destroy(folder: Path, env: Mapping[str, str], variables: Mapping[str, Any]) -> None:
    """`terraform destroy` of an applied copy with the same variables it was applied with."""
    args = ["destroy", "-auto-approve", "-input=false", "-no-color"]
    tf.run(args + [f"-var={k}={v}" for k, v in variables.items()], folder, dict(env))


def labels_found(text: str, secrets: Mapping[str, str]) -> list[str]:
    """Labels of the secrets present in `text` as they are, base64-encoded or JSON-escaped (the
    forms a state or a plan would hold them in). Labels only: a failure shows no value."""
    import base64  # noqa: PLC0415

    found = []
    for label, value in secrets.items():
        forms = {value, base64.b64encode(value.encode()).decode(), json.dumps(value)[1:-1]}
        if any(form in text for form in forms):
            found.append(label)
    return sorted(found)


def secret_digests(state: Mapping[str, Any], address: str) -> dict[str, str]:
    """Digest of each key of a Kubernetes Secret in a `terraform show -json` state."""
    root = state.get("values", {}).get("root_module", {})
    for resource in root.get("resources", []):
        if resource["address"] == address:
            return {key: digest(value) for key, value in (resource["values"].get("data") or {}).items()}
    raise KeyError(f"{address} is not in the state")


def _state_resources(module: Mapping[str, Any]) -> Iterator[Mapping[str, Any]]:
    yield from module.get("resources", [])
    for child in module.get("child_modules", []):
        yield from _state_resources(child)


def unmarked_secret_attributes(state: Mapping[str, Any], secrets: Mapping[str, str]) -> list[str]:
    """`address.attribute (label)` of every top-level string attribute in a `show -json` state (or a
    plan's prior_state) that holds a secret, or the random part of one, without Terraform's sensitive
    mark: plan, apply, destroy and `state show` print such an attribute in clear. Labels only: a
    failure shows no value."""
    root = state.get("values", {}).get("root_module", {})
    found = []
    for resource in _state_resources(root):
        marks = resource.get("sensitive_values") or {}
        for attribute, value in (resource.get("values") or {}).items():
            if not isinstance(value, str) or len(value) < MIN_SECRET_PART or marks.get(attribute) is True:
                continue
            found += [f"{resource['address']}.{attribute} ({label})" for label, secret in secrets.items()
                      if secret and value in secret]
    return sorted(found)
