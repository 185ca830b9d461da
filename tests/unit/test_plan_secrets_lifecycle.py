"""Plan tier, stand-in lifecycle: the secrets that protect stored data live as long as the data
(decision 20, FR28, Journey 3).

02-deps is applied with the provider stand-in; its outputs as applied (not the samples) are served
by the local Terraform Cloud fake to 03-app, which is applied, destroyed and applied again; then
02-deps is destroyed. Stand-ins: the provider stand-in (aws, helm, kubernetes schemas), the real
random and tfe providers, the local Terraform Cloud fake, the real rds and iam modules from
LFK8S_MODULE_MIRROR. Values are compared by sha256 digest, never printed.
"""

from __future__ import annotations

import pytest

from lfharness.testing import datakeys, plan

pytestmark = pytest.mark.plan

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

SECRET = "kubernetes_secret_v1.langfuse[0]"
DATA_KEYS = ("salt", "encryption-key", "project-secret-key")  # the Secret's keys fed by 02-deps
ROTATED_KEYS = ("nextauth-secret", "clickhouse-password", "redis-password")  # 03-app's own


@pytest.fixture(scope="module")
def lifecycle(workbench, tmp_path_factory) -> dict:
    """Digests at each step: 02-deps applied, 03-app applied, 03-app destroyed and re-applied,
    02-deps destroyed. 02-deps is destroyed (and 03-app before it) even when a step fails."""
    root = tmp_path_factory.mktemp("secrets-lifecycle")
    deps = workbench.plan("02-deps", root / "02-deps")
    found: dict = {}
    try:
        workbench.apply(deps)
        served = datakeys.applied_outputs(deps.folder, workbench.env)
        found["deps outputs"] = datakeys.digests(datakeys.output_values(deps.folder, workbench.env))
        with workbench.upstream(plan.NETWORK_SAMPLE, served):
            app = workbench.plan("03-app", root / "03-app")
            try:
                workbench.apply(app)
                found["first"] = datakeys.secret_digests(workbench.state(app), SECRET)
                found["first outputs"] = datakeys.digests(datakeys.output_values(app.folder, workbench.env),
                                                          ("project_public_key", "project_secret_key"))
                datakeys.destroy(app.folder, workbench.env, app.variables)
                workbench.apply(app)
                found["rebuilt"] = datakeys.secret_digests(workbench.state(app), SECRET)
                found["rebuilt outputs"] = datakeys.digests(datakeys.output_values(app.folder, workbench.env),
                                                            ("project_public_key", "project_secret_key"))
            finally:
                datakeys.destroy(app.folder, workbench.env, app.variables)
    finally:
        datakeys.destroy(deps.folder, workbench.env, deps.variables)
    found["deps outputs after destroy"] = datakeys.applied_outputs(deps.folder, workbench.env)
    found["deps resources after destroy"] = sorted(plan.state_resources(workbench.state(deps)))
    return found


def test_the_secret_carries_the_data_protecting_secrets_02_deps_generated(lifecycle):
    """Decision 20: the Secret's salt, encryption key and project secret key are 02-deps' outputs."""
    deps = lifecycle["deps outputs"]
    first = lifecycle["first"]
    assert (first["salt"], first["encryption-key"], first["project-secret-key"]) == (
        deps["salt"], deps["encryption_key"], deps["project_secret_key"])


def test_rebuilding_03_app_keeps_the_salt_encryption_key_and_project_keys(lifecycle):
    """FR28, Journey 3, decision 20: 03-app destroyed and re-applied, the salt, the encryption key
    and the project key pair (in the Secret and in 03-app's outputs) are the ones from before."""
    assert {k: lifecycle["rebuilt"][k] == lifecycle["first"][k] for k in DATA_KEYS} == dict.fromkeys(DATA_KEYS, True)
    assert lifecycle["rebuilt outputs"] == lifecycle["first outputs"]
    assert None not in lifecycle["first outputs"].values()


def test_rebuilding_03_app_rotates_only_what_logs_users_out_or_resets_in_cluster_data(lifecycle):
    """Decision 20, README Teardown: what a 03-app destroy rotates is the NextAuth secret and the
    ClickHouse and Redis passwords, nothing else."""
    changed = sorted(k for k in lifecycle["first"] if lifecycle["rebuilt"].get(k) != lifecycle["first"][k])
    assert changed == sorted(ROTATED_KEYS)


def test_destroying_02_deps_removes_the_data_protecting_secrets(lifecycle):
    """Decision 20, FR27: with 02-deps destroyed, its state holds no resource and it outputs none of
    the data-protecting secrets: they went with the data."""
    gone = set(datakeys.DATA_PROTECTING_OUTPUTS) & set(lifecycle["deps outputs after destroy"])
    assert sorted(gone) == [] and lifecycle["deps resources after destroy"] == []
