"""Plan tier: a stack whose 03-app state still holds the Secret's values from before they went
write-only gets them out of its state with the harness's next apply (issue 26).

The real kubernetes provider never clears `data` once `data_wo_revision` is set (its Read skips
`data` then), so a Secret created before keeps every value in 03-app's state; the harness replaces
it once. Stand-ins: the provider stand-in (kubernetes schema), the real tfe provider, the local
Terraform Cloud fake serving `plan.NETWORK_SAMPLE` and `plan.DEPS_SAMPLE`; the "before" state is
made by applying 03-app with plan.SECRET_EXPOSED_EDIT (its Secret's data set in clear, as the
earlier 03-app wrote it), then the real configuration is applied by a Stack on the same folder.
03-app calls no registry module, so this file runs everywhere.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from lfharness.core import envfile
from lfharness.core.tfc import TfcClient
from lfharness.stack.stack import Stack, stale_secret_addresses
from lfharness.testing import datakeys, plan

pytestmark = pytest.mark.plan

SECRET = "kubernetes_secret_v1.langfuse[0]"
DEPS_SECRETS = {name: value for name, (value, sensitive) in plan.DEPS_SAMPLE.items() if sensitive}


def _state(folder: Path) -> dict[str, Any]:
    return json.loads((folder / "terraform.tfstate").read_text())


@pytest.fixture(scope="module")
def upgraded(workbench, tmp_path_factory) -> dict[str, Any]:
    """03-app applied as before (Secret data in the state), then applied by the harness as now."""
    folder = tmp_path_factory.mktemp("secret-upgrade")
    before = workbench.plan("03-app", folder / "terraform" / "03-app", edit=plan.SECRET_EXPOSED_EDIT)
    workbench.apply(before, cached=False)
    found: dict[str, Any] = {"before": datakeys.labels_found((before.folder / "terraform.tfstate").read_text(),
                                                             DEPS_SECRETS)}
    for name in plan.SECRET_EXPOSED_EDIT:
        (before.folder / name).unlink()
    settings = envfile.Settings("AKIA" + "0" * 16, workbench.env["AWS_SECRET_ACCESS_KEY"], "us-east-1",
                                workbench.env["TFE_TOKEN"], workbench.organization, "ops@example.com", "Ops",
                                plan.SAMPLE_ADMIN["langfuse_admin_password"])
    client = TfcClient(workbench.env["TFE_TOKEN"], workbench.organization, base_url=workbench.fake.url,
                       verify=workbench.env["SSL_CERT_FILE"])
    run_dir = folder / "run"
    stack = Stack(settings, run_dir, before.folder.parent, extra_env=workbench.env, tfc=client)
    try:
        stack.apply("03-app")
        found["after"] = datakeys.labels_found((before.folder / "terraform.tfstate").read_text(), DEPS_SECRETS)
        found["stale after"] = stale_secret_addresses(json.loads(
            plan.tf.run(["show", "-json", "-no-color"], before.folder, dict(stack.env)).stdout))
        found["logs"] = "\n".join(p.read_text() for p in sorted(run_dir.rglob("*apply.log")))
        found["sent"] = workbench.write_only("kubernetes_secret_v1", "data_wo")
    finally:
        stack.destroy("03-app")
    return found


def test_the_scenario_starts_from_a_state_holding_the_secret_values(upgraded):
    """The check below can fail: the earlier 03-app's state held 02-deps' secrets in the Secret's data."""
    assert len(upgraded["before"]) >= 5


def test_the_harness_apply_replaces_the_old_secret_so_its_values_leave_the_state(upgraded):
    """Issue 26: after the harness's apply the state holds none of the secrets, the Secret was
    replaced (the run log names it) and it holds no stale data; the new Secret got its values
    write-only."""
    assert upgraded["after"] == [] and upgraded["stale after"] == []
    assert f"-replace={SECRET}" in upgraded["logs"]
    assert upgraded["sent"] is not None and upgraded["sent"].matches({"salt": DEPS_SECRETS["salt"]}) == {"salt": True}


def test_an_unchanged_new_style_state_is_not_replaced_again():
    """Issue 26: only a state whose Secret still holds data is replaced; a Secret created write-only
    (data null) or an empty data map is left alone."""
    def state(data: Any) -> dict[str, Any]:
        return {"values": {"root_module": {"resources": [
            {"address": SECRET, "mode": "managed", "type": "kubernetes_secret_v1", "values": {"data": data}}]}}}
    assert [stale_secret_addresses(state(d)) for d in (None, {}, {"salt": "x"})] == [[], [], [SECRET]]
