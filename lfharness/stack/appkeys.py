"""`python -m lfharness keys`: what an application needs to send traces to this Langfuse.

The project's key pair lives in 02-deps' state (decision 20: generated beside the database, so a
03-app rebuild keeps it); the host is the UI/API port-forward that `connect` holds. The secret key
is read from Terraform Cloud only when it is going to be written or shown, and shown only when
asked for explicitly.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from lfharness.core.tfc import TfcClient
from lfharness.stack import workspaces

HOST = "http://localhost:3000"  # `python -m lfharness connect` (FR19)
HIDDEN = "<hidden: add --show-secret, or --out FILE>"


class KeysUnavailable(RuntimeError):
    """02-deps has no key pair to give (not deployed, or deployed before decision 20)."""


@dataclass(frozen=True)
class AppKeys:
    host: str
    public_key: str
    secret_key: str | None  # None unless read with reveal

    def lines(self, *, show_secret: bool) -> list[tuple[str, str]]:
        secret = self.secret_key if show_secret and self.secret_key else HIDDEN
        return [("LANGFUSE_HOST", self.host), ("LANGFUSE_PUBLIC_KEY", self.public_key), ("LANGFUSE_SECRET_KEY", secret)]


def read(client: TfcClient, *, reveal: bool) -> AppKeys:
    """The key pair from 02-deps' outputs in Terraform Cloud (the secret only with `reveal`)."""
    name = workspaces.get(workspaces.DATA_WORKSPACE).tfc_name
    outputs = client.outputs(name, reveal_sensitive=reveal)
    public = outputs.get("project_public_key")
    if public is None or public.value is None:
        raise KeysUnavailable(f"Terraform Cloud workspace {name} has no project_public_key output: deploy first "
                              "(`python -m lfharness up`)")
    secret = outputs.get("project_secret_key")
    return AppKeys(HOST, str(public.value), str(secret.value) if reveal and secret and secret.value else None)


def exports(keys: AppKeys, *, show_secret: bool) -> str:
    """`export NAME=value` lines for a shell."""
    return "\n".join(f"export {name}={value}" if value != HIDDEN else f"# {name}: {value}"
                     for name, value in keys.lines(show_secret=show_secret))


def write_env_file(path: Path, keys: AppKeys) -> None:
    """A `.env`-style file with all three, created 0600 before anything is written to it."""
    if keys.secret_key is None:
        raise KeysUnavailable("the secret key was not read: nothing written")
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # an existing file keeps its mode through O_CREAT: narrow it too
    with os.fdopen(fd, "w") as out:
        out.writelines(f"{name}={value}\n" for name, value in keys.lines(show_secret=True))
