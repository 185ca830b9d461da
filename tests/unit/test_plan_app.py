"""Plan tier, 03-app planned whole: the Helm release, its values, the generated secrets.

Stand-ins: the provider stand-in serving the real aws 6.47.0, helm 3.0.2 and kubernetes 2.38.0
schemas; the real random and tfe providers; upstream outputs from the local Terraform Cloud fake
(`plan.NETWORK_SAMPLE`, `plan.DEPS_SAMPLE`, whose sensitive outputs stand in for 02-deps' secrets,
the non-sensitive ones also as 02-deps' contract variable). 03-app calls no registry module, so this
file runs everywhere, CI included. What the Secret's write-only data_wo carried is read from the
stand-in's record of an apply (digests only, lfharness/testing/writeonly.py).
"""

from __future__ import annotations

import json

import pytest
import tftest
import yaml

from lfharness.testing import plan
from lfharness.testing.chartrig import render

pytestmark = pytest.mark.plan

RELEASE = "helm_release.langfuse[0]"  # count: exists while the cluster does (Journey 3)
SECRET = "kubernetes_secret_v1.langfuse[0]"
STORAGE_CLASS = "kubernetes_storage_class_v1.gp3_encrypted[0]"
# The 02-deps outputs that are secrets, as the local Terraform Cloud fake serves them.
DEPS_SECRETS = {name: value for name, (value, sensitive) in plan.DEPS_SAMPLE.items() if sensitive}
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
def every_secret() -> dict[str, str]:
    """Every secret value the pods need: 02-deps' sensitive sample outputs (issue 26: every
    generated secret lives there) and the admin password from .env (label -> value)."""
    return {**{f"02-deps {k}": v for k, v in DEPS_SECRETS.items()},
            "admin password": plan.SAMPLE_ADMIN["langfuse_admin_password"]}


@pytest.fixture(scope="module")
def secret_data(workbench, tmp_path_factory):
    """What the Kubernetes Secret's write-only data_wo carried when a copy of 03-app was applied
    (not from the plan cache: the apply must run for the stand-in to see it). Digests only."""
    applied = workbench.plan("03-app", tmp_path_factory.mktemp("secret-sent") / "03-app")
    workbench.apply(applied, cached=False)
    sent = workbench.write_only("kubernetes_secret_v1", "data_wo")
    assert sent is not None, "the stand-in recorded no data_wo for kubernetes_secret_v1"
    return sent


def _web_env(values: dict) -> dict[str, dict]:
    """additionalEnv of web by name: each entry as written ({value} or {valueFrom})."""
    return {e["name"]: e for e in values["langfuse"]["web"]["pod"]["additionalEnv"]}


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


def test_direct_url_in_the_secret_targets_rds_with_tls_and_the_deps_password(secret_data):
    """Story 3.2, FR17, decision 15: the Secret's DIRECT_URL is the RDS host from 02-deps, database
    and user langfuse, the sensitive rds_password output of 02-deps, sslmode=require."""
    host = plan.DEPS_SAMPLE["rds_endpoint"][0].split(":")[0]
    password = DEPS_SECRETS["rds_password"]
    url = f"postgresql://langfuse:{password}@{host}:5432/langfuse?sslmode=require"
    assert secret_data.matches({"direct-url": url, "database-password": password}) == {
        "direct-url": True, "database-password": True}


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
    assert env["LANGFUSE_INIT_USER_EMAIL"]["value"] == plan.SAMPLE_ADMIN["langfuse_admin_email"]
    assert env["LANGFUSE_INIT_ORG_ID"]["value"] == app_plan.outputs["org_id"]
    assert env["LANGFUSE_INIT_PROJECT_ID"]["value"] == app_plan.outputs["project_id"]
    assert env["LANGFUSE_INIT_PROJECT_PUBLIC_KEY"]["value"] == plan.DEPS_SAMPLE["project_public_key"][0]


def test_headless_init_secrets_come_from_the_secret(values, secret_data):
    """FR14, decision 20: the project secret key (from 02-deps) and the admin password (from .env)
    reach web through secretKeyRef, and the Secret holds exactly those values."""
    env = _web_env(values)
    refs = {k: env[k]["valueFrom"]["secretKeyRef"] for k in ("LANGFUSE_INIT_PROJECT_SECRET_KEY",
                                                             "LANGFUSE_INIT_USER_PASSWORD")}
    want = {"LANGFUSE_INIT_PROJECT_SECRET_KEY": DEPS_SECRETS["project_secret_key"],
            "LANGFUSE_INIT_USER_PASSWORD": plan.SAMPLE_ADMIN["langfuse_admin_password"]}
    same = {k: secret_data.matches({r["key"]: want[k]})[r["key"]] for k, r in refs.items()}  # shows no value
    assert same == dict.fromkeys(want, True)


def test_bundled_postgres_and_minio_are_off_clickhouse_and_redis_on(values):
    """FR11-FR13: external RDS and S3; bundled ClickHouse (1 replica, no ZooKeeper) and Valkey."""
    assert values["postgresql"]["deploy"] is False
    assert values["s3"]["deploy"] is False
    assert values["clickhouse"]["deploy"] is True
    assert values["clickhouse"]["replicaCount"] == 1
    assert values["clickhouse"]["zookeeper"]["enabled"] is False
    assert values["redis"]["deploy"] is True


def test_no_secret_appears_anywhere_in_the_release_values(release, every_secret):
    """NFR1, decision 20: none of 02-deps' secret outputs (served by the local Terraform Cloud fake)
    or the admin password is in the Helm values, in any form."""
    text = "\n".join(release["values"])
    assert sorted(label for label, value in every_secret.items() if value in text) == []


def test_values_reference_only_the_secret_03_app_creates(app_plan, values):
    """Decision 20: salt, encryption key, NextAuth secret, DIRECT_URL, the database, ClickHouse and
    Redis passwords and the headless-init secrets are references to the one Secret of 03-app."""
    refs = render.secret_refs(values)
    name = app_plan.after(SECRET)["metadata"][0]["name"]
    assert len(refs) >= 9
    assert sorted({secret for secret, _ in refs}) == [name]


def test_the_secret_holds_every_key_the_values_reference(values, secret_data):
    """Decision 20: each key the chart and its subcharts read from the Secret exists in its data."""
    keys = {key for _, key in render.secret_refs(values)}
    assert sorted(keys - set(secret_data.sha256)) == []


def test_the_secret_holds_each_secret_02_deps_generated_under_its_key(secret_data):
    """FR15, decision 20, issue 26: the Secret carries every secret 02-deps generated (the
    data-protecting ones and the in-cluster passwords), each under the key the values read."""
    want = {"nextauth-secret": DEPS_SECRETS["nextauth_secret"],
            "clickhouse-password": DEPS_SECRETS["clickhouse_password"],
            "redis-password": DEPS_SECRETS["redis_password"],
            "salt": DEPS_SECRETS["salt"], "encryption-key": DEPS_SECRETS["encryption_key"],
            "project-secret-key": DEPS_SECRETS["project_secret_key"]}
    assert secret_data.matches(want) == dict.fromkeys(want, True)
    assert secret_data.null == ()


def test_the_secret_lives_in_namespace_langfuse_and_its_data_is_write_only(app_plan):
    """NFR1, issue 26: the Secret is in the release's namespace; its data goes through the
    write-only data_wo, so the plan holds no value of it (data and data_wo both null), only the
    revision that says when to send it again."""
    after = app_plan.changes[SECRET]["change"]["after"]
    assert after["metadata"][0]["namespace"] == "langfuse"
    assert (after.get("data"), after.get("data_wo")) == (None, None)
    assert isinstance(after["data_wo_revision"], int)


def test_03_app_generates_no_secret(app_plan):
    """Issue 26, decision 20, FR28: 03-app has no random_* at all (02-deps generates every secret),
    so its state holds none and destroying it rotates nothing."""
    assert sorted(a for a in app_plan.changes if a.startswith("random_")) == []


def test_no_secret_appears_anywhere_in_03_apps_plan(app_plan, every_secret):
    """FR15, NFR1, issue 26: the whole plan document (changes, prior state, outputs, variables,
    configuration) holds none of 02-deps' secrets and not the admin password (an ephemeral
    variable): they reach only the Secret's write-only data_wo."""
    text = json.dumps(app_plan.raw)
    assert [label for label, s in every_secret.items() if s in text] == []


def _secret_checksums(values: dict) -> tuple:
    """The digest annotation of langfuse-secrets in each pod template the values configure: web and
    worker (langfuse.pod), ClickHouse, Valkey (None where absent)."""
    def annotation(*path: str):
        return render.value_at(values, path + (render.SECRET_CHECKSUM_ANNOTATION,))
    return (annotation("langfuse", "pod", "annotations"), annotation("clickhouse", "podAnnotations"),
            annotation("redis", "primary", "podAnnotations"))


def test_a_changed_secret_changes_every_pod_template_so_helm_rolls_the_pods(workbench, app_plan, values):
    """Decision 20, issue 26: the pods read langfuse-secrets only when they start, and Kubernetes
    restarts nothing when a Secret changes; without a trace in the values a rotated secret would
    reach each pod at its next restart, one at a time. The values carry the Secret's revision in the
    pod templates of web, worker, ClickHouse and Valkey, so a secret rotated in 02-deps (its
    app_secrets_revision changes) changes the Secret's revision and the release, and Helm rolls
    them all. Stand-in: the local Terraform Cloud fake serves 02-deps' contract with another
    revision to a second plan of the same copy."""
    rotated = {**plan.DEPS_SAMPLE, "app_secrets_revision": (plan.DEPS_SAMPLE["app_secrets_revision"][0] + 1, False)}
    with workbench.upstream(plan.NETWORK_SAMPLE, rotated):
        other = workbench.replan(app_plan, {})
    before = _secret_checksums(values)
    after = _secret_checksums(yaml.safe_load(other.after(RELEASE)["values"][0]))
    assert None not in before and len(set(before)) == 1
    assert None not in after and len(set(after)) == 1 and after != before
    assert other.after(SECRET)["data_wo_revision"] != app_plan.after(SECRET)["data_wo_revision"]


def test_chart_volumes_go_to_an_encrypted_gp3_class(app_plan, values):
    """Hardening at no cost: ClickHouse's and Valkey's PVCs land on an EBS CSI gp3 class with
    encrypted=true, named by global.defaultStorageClass."""
    sc = app_plan.after(STORAGE_CLASS)
    assert (sc["storage_provisioner"], sc["parameters"]) == ("ebs.csi.aws.com", {"type": "gp3", "encrypted": "true"})
    assert values["global"]["defaultStorageClass"] == sc["metadata"][0]["name"]


def test_telemetry_is_off(values):
    """Hardening: no usage statistics leave the cluster (langfuse.features.telemetryEnabled)."""
    assert values["langfuse"]["features"]["telemetryEnabled"] is False


def test_no_cluster_token_is_ever_in_the_plan(app_plan):
    """Decision 21 (replacing 11): the providers mint EKS tokens with `exec`, so no token is written to the plan
    and no data source reads one."""
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


def test_a_deps_workspace_from_before_the_contract_fails_the_plan_naming_02_deps(workbench, tmp_path):
    """Issue 26, FR23: a 02-deps applied before it generated every secret publishes no
    app_secrets_revision (nor the in-cluster secrets): 03-app's plan fails saying to apply 02-deps
    first, before anything is created."""
    newer = ("app_secrets_revision", "nextauth_secret", "clickhouse_password", "redis_password")
    without = {k: v for k, v in plan.DEPS_SAMPLE.items() if k not in newer}
    with workbench.upstream(plan.NETWORK_SAMPLE, without), pytest.raises(
            tftest.TerraformTestError, match=plan.error_pattern("apply", "02-deps", "(it", "generates", "every", "secret)")):
        workbench.plan("03-app", tmp_path / "app", known_secrets=False)


def test_outputs_out_of_step_with_the_contract_fail_the_plan_before_the_secret_is_written(workbench, tmp_path):
    """Issue 26: 02-deps writes its contract variable during its apply, Terraform Cloud processes
    its outputs after it; read in between, the secrets could be the previous ones under the new
    revision, which the provider would never send again. 03-app's plan refuses, saying to retry.
    Stand-in: the local Terraform Cloud fake serving a contract whose revision is not the outputs'."""
    newer = json.loads(plan.deps_contract(plan.DEPS_SAMPLE))
    newer["app_secrets_revision"] += 1
    with workbench.upstream(plan.NETWORK_SAMPLE, plan.DEPS_SAMPLE, contract=json.dumps(newer)), pytest.raises(
            tftest.TerraformTestError, match=plan.error_pattern("do", "not", "match", "its", "LFK8S_DEPS_CONTRACT")):
        workbench.plan("03-app", tmp_path / "app", known_secrets=False)


def test_a_change_of_the_secrets_layout_changes_the_revision(workbench, app_plan, tmp_path):
    """Issue 26: the provider sends data_wo again only when data_wo_revision changes, so a new key
    in the Secret (here one more key filled from 02-deps) must change the revision, or it would
    never reach the Secret and a pod reading it would not start."""
    source = (plan.tf.TERRAFORM_DIR / "03-app" / "kubernetes_secret.tf").read_text()
    edited = source.replace('"salt"                = "salt"', '"salt"                = "salt"\n    "salt-copy" = "salt"', 1)
    assert edited != source
    other = workbench.plan("03-app", tmp_path / "app", edit={"kubernetes_secret.tf": edited}, known_secrets=False)
    assert other.after(SECRET)["data_wo_revision"] != app_plan.after(SECRET)["data_wo_revision"]


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
    from lfharness.__main__ import main

    assert main(["plan", "03-app", "--json", str(tmp_path / "plan.json")]) == 0
    written = json.loads((tmp_path / "plan.json").read_text())
    assert RELEASE in {c["address"] for c in written["resource_changes"]}
    assert "03-app: " in capsys.readouterr().out
