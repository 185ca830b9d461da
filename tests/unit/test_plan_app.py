"""Plan tier, 03-app planned whole: the Helm release, its values, the generated secrets.

Stand-ins: the provider stand-in serving the real aws 6.47.0, helm 3.0.2 and kubernetes 2.38.0
schemas; the real random and tfe providers; upstream outputs from the local Terraform Cloud fake
(`plan.NETWORK_SAMPLE`, `plan.DEPS_SAMPLE`). 03-app calls no registry module, so this file runs
everywhere, CI included. Its random_* resources are applied first, so the values are known.
"""

from __future__ import annotations

import json

import pytest
import tftest
import yaml

from lfharness import plan

pytestmark = pytest.mark.plan

RELEASE = "helm_release.langfuse[0]"  # count: exists while the cluster does (Journey 3)
SECRETS = {  # address -> (attribute holding the value, length)
    "random_password.salt": ("result", 64),
    "random_password.nextauth_secret": ("result", 64),
    "random_id.encryption_key": ("hex", 64),
    "random_password.clickhouse": ("result", 32),
    "random_password.redis": ("result", 32),
    "random_password.project_secret_key": ("result", 48),
}
INIT_KEYS = ("ORG_ID", "ORG_NAME", "PROJECT_ID", "PROJECT_NAME", "PROJECT_PUBLIC_KEY", "PROJECT_SECRET_KEY",
             "USER_EMAIL", "USER_NAME", "USER_PASSWORD")


@pytest.fixture(scope="module")
def release(app_plan) -> dict:
    return app_plan.after(RELEASE)


@pytest.fixture(scope="module")
def values(release) -> dict:
    """The Helm values as planned (one YAML document), secrets included."""
    assert len(release["values"]) == 1, "03-app passes one values document"
    return yaml.safe_load(release["values"][0])


@pytest.fixture(scope="module")
def secrets(app_plan) -> dict[str, str]:
    """The generated secrets as applied before the plan (prior state)."""
    return {address: app_plan.prior(address)[attribute] for address, (attribute, _) in SECRETS.items()}


def _web_env(values: dict) -> dict[str, str]:
    return {e["name"]: e["value"] for e in values["langfuse"]["web"]["pod"]["additionalEnv"]}


def test_release_is_langfuse_chart_1_5_19_from_the_langfuse_k8s_repository(release):
    """FR10, NFR10: helm_release "langfuse", chart langfuse 1.5.19 from the official repository."""
    assert (release["name"], release["chart"], release["version"]) == ("langfuse", "langfuse", "1.5.19")
    assert release["repository"].rstrip("/").endswith("langfuse.github.io/langfuse-k8s")


def test_release_goes_into_namespace_langfuse_created_here(app_plan, release):
    """FR10: namespace langfuse is created by 03-app and the release is installed into it."""
    assert app_plan.after("kubernetes_namespace_v1.langfuse[0]")["metadata"][0]["name"] == "langfuse"
    assert release["namespace"] == "langfuse"


def test_release_waits_long_enough_for_first_boot_migrations(release):
    """FR10, decision 13: the release waits, with a timeout that allows hundreds of migrations."""
    assert release["wait"] is True
    assert release["timeout"] >= 900


def test_web_liveness_probe_allows_five_minutes_of_first_boot_migrations(values):
    """FR10, decision 13: the first boot runs hundreds of migrations; the web pod must not be killed
    before they can finish (initial delay + period x failure threshold >= 300 s)."""
    probe = values["langfuse"]["web"]["livenessProbe"]
    assert probe["initialDelaySeconds"] + probe.get("periodSeconds", 10) * probe["failureThreshold"] >= 300


def test_values_point_at_the_rds_host_without_port_and_with_tls(values):
    """FR11, story 3.2, decision 15: RDS host from 02-deps without :5432, sslmode=require."""
    host = plan.DEPS_SAMPLE["rds_endpoint"][0].split(":")[0]
    assert values["postgresql"]["host"] == host
    assert values["postgresql"]["port"] == 5432
    assert "sslmode=require" in values["postgresql"]["args"]
    assert values["postgresql"]["directUrl"].startswith("postgresql://langfuse:")
    assert f"@{host}:5432/langfuse?sslmode=require" in values["postgresql"]["directUrl"]


def test_values_carry_the_rds_password_from_deps(values):
    """FR17, decision 12: the sensitive rds_password output of 02-deps reaches the chart."""
    assert values["postgresql"]["auth"]["password"] == plan.DEPS_SAMPLE["rds_password"][0]


def test_values_use_the_s3_bucket_region_and_prefixes_without_path_style(values):
    """FR12, decision 13: bucket and region from 02-deps, virtual-hosted style, one prefix per use."""
    s3 = values["s3"]
    assert (s3["bucket"], s3["region"]) == (plan.DEPS_SAMPLE["s3_bucket_name"][0], plan.DEPS_SAMPLE["s3_bucket_region"][0])
    assert s3["forcePathStyle"] is False
    assert (s3["eventUpload"]["prefix"], s3["mediaUpload"]["prefix"], s3["batchExport"]["prefix"]) == \
        ("events/", "media/", "exports/")
    assert s3["batchExport"]["enabled"] is True


def test_values_annotate_the_service_account_with_the_irsa_role(values):
    """FR12, NFR4: the chart's service account assumes the IRSA role from 02-deps; no static keys."""
    sa = values["langfuse"]["serviceAccount"]
    assert sa["create"] is True
    assert sa["annotations"]["eks.amazonaws.com/role-arn"] == plan.DEPS_SAMPLE["irsa_role_arn"][0]
    assert "accessKeyId" not in json.dumps(values["s3"]) and "secretAccessKey" not in json.dumps(values["s3"])


def test_values_set_nextauth_url_and_turn_sign_up_off(values):
    """FR14, FR19: NEXTAUTH_URL is the port-forward address; self sign-up is disabled."""
    assert values["langfuse"]["nextauth"]["url"] == "http://localhost:3000"
    assert values["langfuse"]["features"]["signUpDisabled"] is True


def test_values_carry_every_langfuse_init_variable(app_plan, values):
    """FR14, decision 5, decision 13: headless init gets org, project, API keys and the admin user."""
    env = _web_env(values)
    assert {f"LANGFUSE_INIT_{k}" for k in INIT_KEYS} <= set(env)
    assert env["LANGFUSE_INIT_USER_EMAIL"] == plan.SAMPLE_ADMIN["langfuse_admin_email"]
    assert env["LANGFUSE_INIT_USER_PASSWORD"] == plan.SAMPLE_ADMIN["langfuse_admin_password"]
    assert env["LANGFUSE_INIT_ORG_ID"] == app_plan.outputs["org_id"]
    assert env["LANGFUSE_INIT_PROJECT_ID"] == app_plan.outputs["project_id"]
    assert env["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"].startswith("pk-lf-")
    assert env["LANGFUSE_INIT_PROJECT_SECRET_KEY"].startswith("sk-lf-")


def test_bundled_postgres_and_minio_are_off_clickhouse_and_redis_on(values):
    """FR11-FR13: external RDS and S3; bundled ClickHouse (1 replica, no ZooKeeper) and Valkey."""
    assert values["postgresql"]["deploy"] is False
    assert values["s3"]["deploy"] is False
    assert values["clickhouse"]["deploy"] is True
    assert values["clickhouse"]["replicaCount"] == 1
    assert values["clickhouse"]["zookeeper"]["enabled"] is False
    assert values["redis"]["deploy"] is True


@pytest.mark.parametrize("address", sorted(SECRETS))
def test_generated_secret_has_its_length_and_is_alphanumeric(secrets, address):
    """FR15, NFR2, decision 9: >= 32 CSPRNG characters, no characters that break connection URLs."""
    value = secrets[address]
    assert len(value) == SECRETS[address][1] >= 32
    assert value.isalnum()


def test_generated_secrets_flow_into_the_chart_values(values, secrets):
    """FR15, decision 13: salt, NextAuth secret, encryption key, ClickHouse and Redis passwords and
    the project secret key are the ones 03-app generated."""
    assert values["langfuse"]["salt"]["value"] == secrets["random_password.salt"]
    assert values["langfuse"]["nextauth"]["secret"]["value"] == secrets["random_password.nextauth_secret"]
    assert values["langfuse"]["encryptionKey"]["value"] == secrets["random_id.encryption_key"]
    assert values["clickhouse"]["auth"]["password"] == secrets["random_password.clickhouse"]
    assert values["redis"]["auth"]["password"] == secrets["random_password.redis"]
    assert _web_env(values)["LANGFUSE_INIT_PROJECT_SECRET_KEY"] == "sk-lf-" + secrets["random_password.project_secret_key"]


def test_generated_secrets_appear_in_the_release_values_and_nowhere_else(app_plan, secrets):
    """FR15, NFR1: outside the random_* resources, only the Helm values and the one sensitive
    output hold a generated secret."""
    allowed = {RELEASE, *SECRETS, "random_uuid.project_public_key"}
    elsewhere = {a: c["change"]["after"] for a, c in app_plan.changes.items() if a not in allowed}
    text = json.dumps(elsewhere) + json.dumps({k: v for k, v in app_plan.outputs.items() if k != "project_secret_key"})
    assert [a for a, s in secrets.items() if s in text] == []


def test_release_values_are_sensitive_in_the_plan(app_plan):
    """NFR1: the values hold secrets, so Terraform marks them sensitive and never prints them."""
    assert app_plan.changes[RELEASE]["change"]["after_sensitive"]["values"]


def test_the_cluster_token_is_ephemeral_and_never_in_the_plan(app_plan):
    """Decision 11: the EKS token comes from an ephemeral resource, so no token is written to the plan."""
    assert "k8s-aws-v1." not in json.dumps(app_plan.raw)
    assert not app_plan.data_of_type("aws_eks_cluster_auth")


def test_a_second_plan_after_apply_shows_no_changes(workbench, app_plan):
    """FR29 at configuration level: after a provider stand-in apply into the local state, a second
    `plan -detailed-exitcode` exits 0."""
    workbench.apply(app_plan)
    assert workbench.changes_after_apply(app_plan) == 0


def test_a_typo_in_the_upstream_workspace_name_fails_the_plan(workbench, tmp_path):
    """FR17: tfe_outputs of a workspace the local Terraform Cloud fake does not know fails the plan."""
    data = (plan.tf.TERRAFORM_DIR / "03-app" / "data.tf").read_text().replace('"langfuse-deps"', '"langfuse-dep"')
    with pytest.raises(tftest.TerraformTestError, match="Unable to read workspace"):
        workbench.plan("03-app", tmp_path / "app", edit={"data.tf": data}, known_secrets=False)


def test_an_invalid_region_is_rejected_before_anything_is_created(workbench, tmp_path):
    """FR23: aws_region is validated with a clear message (Terraform's own error)."""
    with pytest.raises(tftest.TerraformTestError, match="aws_region must be an AWS region name"):
        workbench.plan("03-app", tmp_path / "app", {"aws_region": "us-east-9x"}, known_secrets=False)


def test_a_missing_admin_email_is_rejected(workbench, tmp_path):
    """FR14, FR23: langfuse_admin_email has no default; the plan fails naming it."""
    bench_vars = workbench.default_variables("03-app")
    bench_vars.pop("langfuse_admin_email")
    folder = workbench.prepare("03-app", tmp_path / "app")
    with pytest.raises(tftest.TerraformTestError, match="langfuse_admin_email"):
        workbench.terraform(folder).plan(output=True, tf_vars=bench_vars)


def test_the_plan_command_plans_a_workspace_as_the_plan_tier_does(workbench, tmp_path, capsys):
    """Issue 8: `python -m lfharness plan 03-app --json PATH` prints the summary and writes the plan."""
    from lfharness.__main__ import main  # noqa: PLC0415

    assert main(["plan", "03-app", "--json", str(tmp_path / "plan.json")]) == 0
    written = json.loads((tmp_path / "plan.json").read_text())
    assert RELEASE in {c["address"] for c in written["resource_changes"]}
    assert "03-app: " in capsys.readouterr().out
