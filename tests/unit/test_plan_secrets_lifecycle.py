"""Plan tier, stand-in lifecycle: every generated secret lives in 02-deps' state, reaches the pods'
Secret through a write-only argument, and survives a 03-app rebuild (decision 20, issue 26, FR28,
Journey 3).

02-deps is applied with the provider stand-in; its outputs as applied (not the samples) are served
by the local Terraform Cloud fake to 03-app, which is applied, destroyed and applied again; one
secret is then rotated in 02-deps and 03-app applied once more; then both are destroyed. What the
Secret's data_wo carried at each apply is read from the stand-in's record (digests only,
lfharness/testing/writeonly.py); 03-app's state file is grepped for the real generated values after
each step. Stand-ins: the provider stand-in (aws, helm, kubernetes schemas), the real random and tfe
providers, the local Terraform Cloud fake (outputs, the contract variable 02-deps writes), the real
rds and iam modules from LFK8S_MODULE_MIRROR. Values are compared by sha256 digest, never printed.
"""

from __future__ import annotations

import json

import pytest

from lfharness.core import tf
from lfharness.testing import datakeys, plan

pytestmark = pytest.mark.plan

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

# The Secret's keys fed by each sensitive output of 02-deps (kubernetes_secret.tf).
KEY_OF_OUTPUT = {"salt": "salt", "encryption_key": "encryption-key", "project_secret_key": "project-secret-key",
                 "rds_password": "database-password", "nextauth_secret": "nextauth-secret",
                 "clickhouse_password": "clickhouse-password", "redis_password": "redis-password"}
ROTATED = "random_password.redis"


def _sent(workbench) -> dict[str, str]:
    sent = workbench.write_only("kubernetes_secret_v1", "data_wo")
    assert sent is not None, "the stand-in recorded no data_wo for kubernetes_secret_v1"
    return dict(sent.sha256)


def _generated(workbench, deps) -> dict[str, str]:
    """Every secret 02-deps generated, as applied (label -> value): its sensitive outputs."""
    return {name: str(value) for name, (value, sensitive) in datakeys.applied_outputs(deps.folder, workbench.env).items()
            if sensitive and value is not None}


@pytest.fixture(scope="module")
def lifecycle(workbench, tmp_path_factory) -> dict:
    """Digests and findings at each step: 02-deps applied, 03-app applied, 03-app destroyed and
    re-applied, a secret rotated in 02-deps and 03-app applied, both destroyed. 02-deps is destroyed
    (and 03-app before it) even when a step fails."""
    root = tmp_path_factory.mktemp("secrets-lifecycle")
    deps = workbench.plan("02-deps", root / "02-deps")
    found: dict = {"in 03-app state": {}}
    try:
        workbench.apply(deps, cached=False)
        served = datakeys.applied_outputs(deps.folder, workbench.env)
        secrets = _generated(workbench, deps)
        found["deps"] = {name: datakeys.digest(v) for name, v in secrets.items()}
        found["published"] = workbench.published_contract()
        found["expected contract"] = plan.deps_contract(served)
        with workbench.upstream(plan.NETWORK_SAMPLE, served):
            app = workbench.plan("03-app", root / "03-app")
            state = app.folder / "terraform.tfstate"
            try:
                workbench.apply(app, cached=False)
                found["first"] = _sent(workbench)
                found["in 03-app state"]["applied"] = datakeys.labels_found(state.read_text(), secrets)
                datakeys.destroy(app.folder, workbench.env, app.variables)
                workbench.apply(app, cached=False)
                found["rebuilt"] = _sent(workbench)
                found["in 03-app state"]["rebuilt"] = datakeys.labels_found(state.read_text(), secrets)
            except BaseException:
                datakeys.destroy(app.folder, workbench.env, app.variables)
                raise
        # One secret rotated the documented way (02-deps/secrets.tf), then 03-app applied again.
        args = ["apply", "-auto-approve", "-input=false", "-no-color", f"-replace={ROTATED}"]
        tf.run(args + [f"-var={k}={v}" for k, v in deps.variables.items()], deps.folder, dict(workbench.env))
        rotated = datakeys.applied_outputs(deps.folder, workbench.env)
        secrets |= {f"rotated {k}": v for k, v in _generated(workbench, deps).items()}
        found["deps rotated"] = {name: datakeys.digest(v) for name, v in _generated(workbench, deps).items()}
        with workbench.upstream(plan.NETWORK_SAMPLE, rotated):
            try:
                found["changes after rotation"] = workbench.changes_after_apply(app)
                workbench.apply(app, cached=False)
                found["after rotation"] = _sent(workbench)
                found["in 03-app state"]["rotated"] = datakeys.labels_found(state.read_text(), secrets)
            finally:
                datakeys.destroy(app.folder, workbench.env, app.variables)
    finally:
        datakeys.destroy(deps.folder, workbench.env, deps.variables)
    found["deps outputs after destroy"] = datakeys.applied_outputs(deps.folder, workbench.env)
    found["deps resources after destroy"] = sorted(plan.state_resources(workbench.state(deps)))
    return found


def test_the_secret_carries_every_secret_02_deps_generated(lifecycle):
    """Decision 20, issue 26: each key of the Secret fed by 02-deps carries exactly the value of
    02-deps' output (the data-protecting secrets, the database password, the in-cluster ones)."""
    deps, first = lifecycle["deps"], lifecycle["first"]
    assert {out: first.get(key) == deps[out] for out, key in KEY_OF_OUTPUT.items()} == dict.fromkeys(KEY_OF_OUTPUT, True)


def test_02_deps_publishes_its_non_secret_outputs_as_the_contract_variable(lifecycle):
    """Issue 26, FR17: a real 02-deps apply writes the contract variable 03-app reads, holding its
    non-sensitive outputs as applied and nothing sensitive."""
    assert lifecycle["published"] is not None, "02-deps wrote no contract variable"
    assert json.loads(lifecycle["published"]) == json.loads(lifecycle["expected contract"])


def test_no_generated_secret_is_in_03_apps_state_after_apply_rebuild_or_rotation(lifecycle):
    """Issue 26: 03-app's state file holds none of 02-deps' generated secrets (grepped with the real
    values, raw, base64 and JSON-escaped) after its apply, its rebuild and a rotation."""
    assert lifecycle["in 03-app state"] == {"applied": [], "rebuilt": [], "rotated": []}


def test_rebuilding_03_app_keeps_every_secret(lifecycle):
    """FR28, Journey 3, issue 26: 03-app destroyed and re-applied, the Secret carries the same value
    under every key (03-app generates nothing, so a rebuild rotates nothing)."""
    assert lifecycle["rebuilt"] == lifecycle["first"]
    assert len(lifecycle["first"]) >= len(KEY_OF_OUTPUT)


def test_a_secret_rotated_in_02_deps_changes_the_revision_and_only_its_key(lifecycle):
    """Issue 26: `apply -replace` of one secret in 02-deps changes its app_secrets_revision, so
    03-app's next plan has a change (the Secret's data_wo_revision, the pods' annotation), and the
    Secret then carries the new value under that key alone."""
    assert lifecycle["changes after rotation"] == 2
    changed = sorted(k for k in lifecycle["first"] if lifecycle["after rotation"].get(k) != lifecycle["first"][k])
    assert changed == ["redis-password"]
    assert lifecycle["after rotation"]["redis-password"] == lifecycle["deps rotated"]["redis_password"]


def test_destroying_02_deps_removes_the_data_protecting_secrets(lifecycle):
    """Decision 20, FR27: with 02-deps destroyed, its state holds no resource and it outputs none of
    the data-protecting secrets: they went with the data."""
    gone = set(datakeys.DATA_PROTECTING_OUTPUTS) & set(lifecycle["deps outputs after destroy"])
    assert sorted(gone) == [] and lifecycle["deps resources after destroy"] == []
