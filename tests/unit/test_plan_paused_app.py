"""Plan tier, the pause of 03-app (Journey 3, NFR11, decision 18).

03-app, cheap to plan and free of registry modules, goes the whole way here (everywhere, CI
included): running, applied, paused (what the pause deletes), applied, resumed; and planned against
paused upstream workspaces.
Stand-ins: the provider stand-in serving the real aws, helm and kubernetes schemas; the real random
and tfe providers; the local Terraform Cloud fake serving running (`plan.NETWORK_SAMPLE`,
`plan.DEPS_SAMPLE`) or paused (`plan.NETWORK_PAUSED`, `plan.DEPS_PAUSED`) upstream outputs.
"""

from __future__ import annotations

import pytest
import tftest

from lfharness.testing import plan

pytestmark = pytest.mark.plan


APPLY_NETWORK_FIRST = plan.error_pattern("apply", "01-network", "with", "cluster_enabled", "=", "true", "first")
APPLY_DEPS_FIRST = plan.error_pattern("apply", "02-deps", "with", "cluster_enabled", "=", "true", "first")


# --- 03-app --------------------------------------------------------------------------------

# What 03-app has in the cluster, all of it behind cluster_enabled (the Secret's values come back
# unchanged: they are random_* here or 02-deps' outputs, decision 20; the PersistentVolume and
# claim are only Kubernetes' handles on 02-deps' EBS volume, which stays, decision 24).
IN_CLUSTER = {"helm_release.langfuse[0]", "kubernetes_namespace_v1.langfuse[0]", "kubernetes_secret_v1.langfuse[0]",
              "kubernetes_storage_class_v1.gp3_encrypted[0]", "kubernetes_persistent_volume_v1.clickhouse[0]",
              "kubernetes_persistent_volume_claim_v1.clickhouse[0]",
              # Issue 26 item 1: the namespace's NetworkPolicies go and come back with it.
              *(f"kubernetes_network_policy_v1.{name}[0]"
                for name in ("default_deny", "dns", "langfuse_app", "clickhouse", "valkey", "jobs"))}


def test_paused_app_keeps_only_the_generated_secrets(app_cycle):
    """Journey 3: with cluster_enabled=false 03-app holds its random_* secrets and nothing else."""
    assert {a for a, kind in app_cycle["paused"].remaining().items() if not kind.startswith("random_")} == set()


def test_pausing_the_app_never_deletes_a_secret(app_cycle):
    """Journey 3, decision 18: SALT, ENCRYPTION_KEY and the other secrets survive the pause
    (new ones would lock the operator out of the project API keys and stored secrets)."""
    deleted = app_cycle["paused"].with_actions("delete")
    assert (deleted, {a for a in deleted if a.startswith("random_")}) == (IN_CLUSTER, set())


def test_resuming_the_app_creates_the_namespace_and_release_with_the_same_secrets(app_cycle):
    """Journey 3: the resume creates namespace and release again and leaves every secret as it was."""
    resuming = app_cycle["resuming"]
    secrets = {a for a, c in resuming.changes.items() if a.startswith("random_")}
    assert resuming.with_actions("create") == IN_CLUSTER
    assert {a for a in secrets if resuming.changes[a]["change"]["actions"] != ["no-op"]} == set()


def test_app_plans_paused_while_the_cluster_is_gone(workbench, tmp_path):
    """Journey 3, NFR11: with 01-network and 02-deps paused (no endpoint, CA, OIDC or role outputs)
    03-app plans with cluster_enabled=false: no token, providers unused."""
    with workbench.upstream(plan.NETWORK_PAUSED, plan.DEPS_PAUSED):
        paused = workbench.plan("03-app", tmp_path / "03-app", plan.PAUSED)
    assert {kind for kind in paused.remaining().values() if not kind.startswith("random_")} == set()


def test_app_wanting_the_cluster_while_the_network_is_paused_names_01_network(workbench, tmp_path):
    """Journey 3, NFR11: cluster_enabled=true without a cluster fails the plan saying to apply 01-network first."""
    with workbench.upstream(plan.NETWORK_PAUSED, plan.DEPS_PAUSED), pytest.raises(
            tftest.TerraformTestError, match=APPLY_NETWORK_FIRST):
        workbench.plan("03-app", tmp_path / "03-app", plan.RUNNING)


def test_app_wanting_the_cluster_while_deps_is_paused_names_02_deps(workbench, tmp_path):
    """Journey 3, NFR11: a cluster but no IRSA role from 02-deps fails the plan saying to apply 02-deps first."""
    with workbench.upstream(plan.NETWORK_SAMPLE, plan.DEPS_PAUSED), pytest.raises(
            tftest.TerraformTestError, match=APPLY_DEPS_FIRST):
        workbench.plan("03-app", tmp_path / "03-app", plan.RUNNING)


