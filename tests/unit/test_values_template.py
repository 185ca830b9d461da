"""values.yaml.tpl rendered by Terraform's own templatefile() and read as YAML (static)."""

from __future__ import annotations

import re
import secrets

import pytest
import yaml

from lfharness import tf

pytestmark = pytest.mark.static

TEMPLATE = tf.TERRAFORM_DIR / "03-app" / "values.yaml.tpl"
REFERENCE = tf.REPO_ROOT.parent / "shared" / "reference"
SECRET_VARS = ("db_password", "salt", "nextauth_secret", "encryption_key", "clickhouse_password",
               "redis_password", "project_secret_key", "admin_password")


def _sample() -> dict[str, object]:
    """Inputs shaped like helm.tf's, with fresh random secrets so a literal cannot match."""
    return {
        "db_host": "langfuse.abc123.us-east-1.rds.amazonaws.com", "db_port": 5432,
        "db_name": "langfuse", "db_username": "langfuse", "db_password": secrets.token_hex(16),
        "s3_bucket_name": "langfuse-storage-1a2b3c4d", "s3_bucket_region": "us-east-1",
        "irsa_role_arn": "arn:aws:iam::123456789012:role/langfuse-s3-2024",
        "salt": secrets.token_hex(32), "nextauth_secret": secrets.token_hex(32),
        "encryption_key": secrets.token_hex(32), "clickhouse_password": secrets.token_hex(16),
        "redis_password": secrets.token_hex(16),
        "org_id": "langfuse", "org_name": "Langfuse", "project_id": "langfuse-default",
        "project_name": "Default", "project_public_key": "pk-lf-" + secrets.token_hex(8),
        "project_secret_key": "sk-lf-" + secrets.token_hex(16), "admin_email": "ops@example.com",
        "admin_name": 'Ada "Ops" Lovelace', "admin_password": "p@ss: w0rd #1 \\ 'q'",
    }


@pytest.fixture(scope="module")
def sample() -> dict[str, object]:
    return _sample()


@pytest.fixture(scope="module")
def values(sample) -> dict:
    return yaml.safe_load(tf.render_template(TEMPLATE, sample))


def _env(values: dict, component: str) -> dict[str, str]:
    return {e["name"]: e["value"] for e in values["langfuse"][component]["pod"]["additionalEnv"]}


def test_bundled_postgresql_off_and_external_rds_wired_with_tls(values, sample):
    """FR11, decision 15: bundled PostgreSQL off; host (no port), db, user, password, sslmode=require."""
    pg = values["postgresql"]
    assert pg["deploy"] is False
    assert pg["host"] == sample["db_host"] and ":" not in pg["host"]
    assert pg["auth"] == {"username": "langfuse", "password": sample["db_password"], "database": "langfuse"}
    assert pg["args"] == "sslmode=require"


def test_direct_url_and_shadow_database_url_for_prisma(values, sample):
    """Story 3.2: directUrl points at RDS for migrations, shadowDatabaseUrl is empty."""
    pg = values["postgresql"]
    assert pg["directUrl"] == (f"postgresql://langfuse:{sample['db_password']}@{sample['db_host']}:5432/"
                               "langfuse?sslmode=require")
    assert pg["shadowDatabaseUrl"] == ""


def test_minio_off_and_s3_wired_with_prefixes_and_no_static_keys(values, sample):
    """FR12, NFR4: bundled MinIO off; bucket, region, path style off, three prefixes, no keys."""
    s3 = values["s3"]
    assert s3["deploy"] is False
    assert (s3["bucket"], s3["region"], s3["forcePathStyle"]) == (sample["s3_bucket_name"], "us-east-1", False)
    assert s3["eventUpload"]["prefix"] == "events/"
    assert (s3["mediaUpload"]["enabled"], s3["mediaUpload"]["prefix"]) == (True, "media/")
    assert (s3["batchExport"]["enabled"], s3["batchExport"]["prefix"]) == (True, "exports/")
    assert "accessKeyId" not in s3 and "secretAccessKey" not in s3


def test_service_account_is_annotated_with_the_irsa_role(values, sample):
    """FR8, FR12: the langfuse service account carries eks.amazonaws.com/role-arn."""
    sa = values["langfuse"]["serviceAccount"]
    assert sa["create"] is True
    assert sa["annotations"] == {"eks.amazonaws.com/role-arn": sample["irsa_role_arn"]}


def test_clickhouse_and_redis_deployed_and_sized_for_two_small_nodes(values):
    """FR13, decision 13: ClickHouse 1 replica without ZooKeeper, explicit resources; Redis on."""
    ch, redis = values["clickhouse"], values["redis"]
    assert ch["deploy"] is True and ch["replicaCount"] == 1 and ch["zookeeper"]["enabled"] is False
    assert ch["resources"]["limits"]["memory"] and ch["resourcesPreset"] == "none"
    assert redis["deploy"] is True and redis["primary"]["resources"]["limits"]["memory"]


def test_nextauth_url_and_signup_disabled(values):
    """Story 3.2: NEXTAUTH_URL is http://localhost:3000 and sign-up is disabled via the chart switch."""
    assert values["langfuse"]["nextauth"]["url"] == "http://localhost:3000"
    assert values["langfuse"]["features"]["signUpDisabled"] is True


def test_generated_secrets_go_through_the_chart_keys(values, sample):
    """FR15, decision 13: salt, NextAuth secret, encryption key via the chart's own keys."""
    lf = values["langfuse"]
    assert lf["salt"]["value"] == sample["salt"]
    assert lf["nextauth"]["secret"]["value"] == sample["nextauth_secret"]
    assert lf["encryptionKey"]["value"] == sample["encryption_key"]
    assert values["clickhouse"]["auth"]["password"] == sample["clickhouse_password"]
    assert values["redis"]["auth"]["password"] == sample["redis_password"]


def test_headless_init_sets_org_project_user_and_keys(values, sample):
    """FR14, decision 5, decision 13: LANGFUSE_INIT_* incl. org and project ids and the key pair."""
    env = _env(values, "web")
    assert env == {
        "LANGFUSE_INIT_ORG_ID": "langfuse", "LANGFUSE_INIT_ORG_NAME": "Langfuse",
        "LANGFUSE_INIT_PROJECT_ID": "langfuse-default", "LANGFUSE_INIT_PROJECT_NAME": "Default",
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": sample["project_public_key"],
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": sample["project_secret_key"],
        "LANGFUSE_INIT_USER_EMAIL": sample["admin_email"], "LANGFUSE_INIT_USER_NAME": sample["admin_name"],
        "LANGFUSE_INIT_USER_PASSWORD": sample["admin_password"],
    }


def test_user_values_with_quotes_and_colons_survive_rendering(values, sample):
    """FR23: operator-chosen strings with YAML-special characters arrive unchanged."""
    env = _env(values, "web")
    assert env["LANGFUSE_INIT_USER_PASSWORD"] == sample["admin_password"]
    assert env["LANGFUSE_INIT_USER_NAME"] == sample["admin_name"]


def test_worker_binds_all_interfaces_and_web_survives_first_boot_migrations(values):
    """Decision 13: worker HOSTNAME=0.0.0.0; web liveness delay allows for the first migrations."""
    assert _env(values, "worker") == {"HOSTNAME": "0.0.0.0"}
    assert values["langfuse"]["web"]["livenessProbe"]["initialDelaySeconds"] >= 180


def test_template_holds_no_secret_literal():
    """NFR1: every secret in the template is a ${...} placeholder, never a literal."""
    text = TEMPLATE.read_text()
    for name in SECRET_VARS:
        assert f"jsonencode({name})" in text or f"${{{name}}}" in text, f"{name} is not templated"
    for key in ("password", "value", "secretKey"):
        for line in text.splitlines():
            if re.match(rf"\s*{key}:\s*\S", line) and "${" not in line and "#" not in line:
                assert line.strip() in {'value: "0.0.0.0"'}, f"literal value in template: {line.strip()}"


def _paths(node: object, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    if isinstance(node, dict):
        out = []
        for key, value in node.items():
            out += _paths(value, (*prefix, str(key))) or [(*prefix, str(key))]
        return out
    return []


def _has(defaults: dict, path: tuple[str, ...]) -> bool:
    node: object = defaults
    for i, part in enumerate(path):
        if not isinstance(node, dict):
            return False
        if part not in node:
            # An empty map or a resources block in the defaults is open for any keys.
            return node == {} or path[i - 1] in {"resources", "annotations"} if i else False
        node = node[part]
        if node == {} or node is None:
            return True
    return True


@pytest.mark.skipif(not (REFERENCE / "langfuse-chart-1.5.19-values.yaml").exists(),
                    reason="../shared/reference absent: clone with shared/ beside the repo to compare chart keys")
def test_every_value_key_exists_in_chart_1_5_19_or_its_subcharts(values):
    """Decision 6: every key set in values.yaml.tpl exists in chart 1.5.19 (or the Bitnami subchart)."""
    main = yaml.safe_load((REFERENCE / "langfuse-chart-1.5.19-values.yaml").read_text())
    subcharts = {
        "clickhouse": yaml.safe_load((REFERENCE / "bitnami-clickhouse-8.0.5-values.yaml").read_text()),
        "redis": yaml.safe_load((REFERENCE / "bitnami-valkey-2.2.4-values.yaml").read_text()),
    }
    unknown = []
    for path in _paths(values):
        sub = subcharts.get(path[0])
        if not (_has(main, path) or (sub is not None and _has(sub, path[1:]))):
            unknown.append(".".join(path))
    assert not unknown, f"keys not in chart 1.5.19 defaults: {unknown}"
