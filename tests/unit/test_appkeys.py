"""The project's key pair for an application (issue 27, Journey 2; lfharness.stack.appkeys): read from
02-deps' outputs, the secret only when it is going to be written or shown, written 0600 (static tier;
issue 28's mutation score of the module).

Stand-in: the local Terraform Cloud fake serving 02-deps' outputs (the secret key sensitive).
"""

from __future__ import annotations

import os
import secrets
import stat

import pytest

from lfharness.stack import appkeys

pytestmark = pytest.mark.static

PUBLIC = "pk-lf-" + secrets.token_hex(8)
SECRET = "sk-lf-" + secrets.token_hex(16)


def test_keys_read_without_reveal_hold_no_secret_and_with_reveal_hold_it(tfc_fake):
    """NFR1, issue 27: the secret key is read from Terraform Cloud only when asked to reveal it; the
    public key and the host of `connect` always (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.set_outputs("langfuse-deps", {"project_public_key": (PUBLIC, False), "project_secret_key": (SECRET, True)})
    assert (appkeys.read(client, reveal=False), appkeys.read(client, reveal=True)) == (
        appkeys.AppKeys("http://localhost:3000", PUBLIC, None), appkeys.AppKeys("http://localhost:3000", PUBLIC, SECRET))


@pytest.mark.parametrize("outputs", [{"rds_endpoint": ("db.example:5432", False)},
                                     {"project_public_key": (None, False)}], ids=["no output", "null output"])
def test_keys_of_a_02_deps_without_a_key_pair_say_to_deploy_first(tfc_fake, outputs):
    """Issue 27, decision 20: a 02-deps with no project_public_key output, or a null one, has no key pair
    to give: KeysUnavailable naming the workspace and `python -m lfharness up` (local Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.set_outputs("langfuse-deps", outputs)
    with pytest.raises(appkeys.KeysUnavailable) as caught:
        appkeys.read(client, reveal=True)
    assert str(caught.value) == ("Terraform Cloud workspace langfuse-deps has no project_public_key output: deploy "
                                 "first (`python -m lfharness up`)")


def test_keys_with_a_null_secret_key_hold_no_secret(tfc_fake):
    """Issue 27: a null project_secret_key is no secret key: nothing to write, nothing to show (local
    Terraform Cloud fake)."""
    fake, client = tfc_fake
    fake.set_outputs("langfuse-deps", {"project_public_key": (PUBLIC, False), "project_secret_key": (None, True)})
    assert appkeys.read(client, reveal=True).secret_key is None


def test_the_secret_key_is_shown_only_when_asked_for_and_held():
    """NFR1, issue 27: the export lines show the secret key only with show_secret and when it was read;
    otherwise a comment saying how to get it, never the value nor "None"."""
    held = appkeys.AppKeys(appkeys.HOST, PUBLIC, SECRET)
    hidden = f"# LANGFUSE_SECRET_KEY: {appkeys.HIDDEN}"
    assert (appkeys.exports(held, show_secret=False).splitlines(), appkeys.exports(held, show_secret=True).splitlines()[2],
            appkeys.exports(appkeys.AppKeys(appkeys.HOST, PUBLIC, None), show_secret=True).splitlines()[2]) == (
        ["export LANGFUSE_HOST=http://localhost:3000", f"export LANGFUSE_PUBLIC_KEY={PUBLIC}", hidden],
        f"export LANGFUSE_SECRET_KEY={SECRET}", hidden)


def test_the_env_file_is_written_whole_0600_in_a_new_folder_over_a_longer_old_file(tmp_path):
    """NFR1, issue 27: --out creates missing folders, and over an existing longer, wider file leaves
    exactly the three lines, mode 0600 (nothing of the old file left)."""
    new = tmp_path / "a" / "b" / "langfuse.env"
    old = tmp_path / "old.env"
    old.write_text("x" * 500 + "\n")
    old.chmod(0o644)
    keys = appkeys.AppKeys(appkeys.HOST, PUBLIC, SECRET)
    for path in (new, old):
        appkeys.write_env_file(path, keys)
    expected = f"LANGFUSE_HOST=http://localhost:3000\nLANGFUSE_PUBLIC_KEY={PUBLIC}\nLANGFUSE_SECRET_KEY={SECRET}\n"
    assert [(p.read_text(), stat.S_IMODE(os.stat(p).st_mode)) for p in (new, old)] == [(expected, 0o600)] * 2


def test_the_env_file_refusal_says_the_secret_was_not_read(tmp_path):
    """Issue 27: without the secret key nothing is written, and the operator reads why."""
    with pytest.raises(appkeys.KeysUnavailable, match="^the secret key was not read: nothing written$"):
        appkeys.write_env_file(tmp_path / "x.env", appkeys.AppKeys(appkeys.HOST, PUBLIC, None))
