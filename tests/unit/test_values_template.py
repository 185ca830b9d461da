"""values.yaml.tpl rendered by Terraform's own templatefile() and read as YAML (static)."""

from __future__ import annotations

import hashlib
import json
import re
import secrets
from pathlib import Path

import pytest
import yaml

from lfharness.core import tf

pytestmark = pytest.mark.static

TEMPLATE = tf.TERRAFORM_DIR / "03-app" / "values.yaml.tpl"
# The key tree of chart 1.5.19's values and its subcharts', derived from the upstream files by
# tests/data/reference/derive.py (the values files themselves are not committed).
CHART_KEYS = Path(__file__).resolve().parents[1] / "data" / "reference" / "langfuse-chart-1.5.19-value-keys.json"
# helm.tf's secrets before decision 20; none of them may reach the template any more.
SECRET_VARS = ("db_password", "salt", "nextauth_secret", "encryption_key", "clickhouse_password",
               "redis_password", "project_secret_key", "admin_password")
SECRET = "langfuse-secrets-" + secrets.token_hex(3)  # any name: the template must use the one given


def _sample() -> dict[str, object]:
    """Inputs shaped like helm.tf's (no secret among them since decision 20)."""
    return {
        "secret_name": SECRET, "storage_class": "gp3-encrypted", "app_uid": 1001,
        "clickhouse_claim": "langfuse-clickhouse-data",
        "secret_checksum": hashlib.sha256(SECRET.encode()).hexdigest(),
        "db_host": "langfuse.abc123.us-east-1.rds.amazonaws.com", "db_port": 5432,
        "db_name": "langfuse", "db_username": "langfuse",
        "s3_bucket_name": "langfuse-storage-1a2b3c4d", "s3_bucket_region": "us-east-1",
        "irsa_role_arn": "arn:aws:iam::123456789012:role/langfuse-s3-2024",
        "org_id": "langfuse", "org_name": "Langfuse", "project_id": "langfuse-default",
        "project_name": "Default", "project_public_key": "pk-lf-" + secrets.token_hex(8),
        "admin_email": "ops@example.com", "admin_name": 'Ada "Ops" Lovelace: #1 \\ \'q\'',
    }


@pytest.fixture(scope="module")
def sample() -> dict[str, object]:
    return _sample()


@pytest.fixture(scope="module")
def values(sample) -> dict:
    return yaml.safe_load(tf.render_template(TEMPLATE, sample))


def _env(values: dict, component: str) -> dict[str, dict]:
    return {e["name"]: e for e in values["langfuse"][component]["pod"]["additionalEnv"]}


def _ref(key: str) -> dict:
    return {"secretKeyRef": {"name": SECRET, "key": key}}


def test_bundled_postgresql_off_and_external_rds_wired_with_tls(values, sample):
    """FR11, decision 15, decision 20: bundled PostgreSQL off; host (no port), db, user, the
    password from the Secret (existingSecret), sslmode=require."""
    pg = values["postgresql"]
    assert pg["deploy"] is False
    assert pg["host"] == sample["db_host"] and ":" not in pg["host"]
    assert pg["auth"] == {"username": "langfuse", "database": "langfuse", "existingSecret": SECRET,
                          "secretKeys": {"userPasswordKey": "database-password"}}
    assert pg["args"] == "sslmode=require"


def test_direct_url_comes_from_the_secret_and_shadow_database_url_is_empty(values):
    """Story 3.2, decision 20: DIRECT_URL for web and worker from the Secret (the chart's
    postgresql.directUrl would be a literal env value), shadowDatabaseUrl empty."""
    shared = {e["name"]: e for e in values["langfuse"]["additionalEnv"]}
    assert shared["DIRECT_URL"] == {"name": "DIRECT_URL", "valueFrom": _ref("direct-url")}
    assert "directUrl" not in values["postgresql"] and values["postgresql"]["shadowDatabaseUrl"] == ""


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


def test_nextauth_url_and_signup_disabled_and_telemetry_off(values):
    """Story 3.2: NEXTAUTH_URL is http://localhost:3000, sign-up disabled via the chart switch;
    telemetry off (hardening)."""
    assert values["langfuse"]["nextauth"]["url"] == "http://localhost:3000"
    assert values["langfuse"]["features"]["signUpDisabled"] is True
    assert values["langfuse"]["features"]["telemetryEnabled"] is False


def test_secrets_go_through_the_chart_keys_as_references_to_the_secret(values):
    """FR15, decisions 13 and 20: salt, NextAuth secret, encryption key through the chart's own keys,
    ClickHouse and Redis passwords through existingSecret, each naming the Secret and its key."""
    lf = values["langfuse"]
    assert (lf["salt"], lf["encryptionKey"], lf["nextauth"]["secret"]) == (
        _ref("salt"), _ref("encryption-key"), _ref("nextauth-secret"))
    assert values["clickhouse"]["auth"] == {"existingSecret": SECRET, "existingSecretKey": "clickhouse-password"}
    assert values["redis"]["auth"] == {"existingSecret": SECRET, "existingSecretPasswordKey": "redis-password"}


def test_headless_init_sets_org_project_user_and_keys(values, sample):
    """FR14, decisions 5, 13 and 20: LANGFUSE_INIT_* incl. org and project ids and the key pair; the
    project secret key and the admin password by reference to the Secret."""
    env = {k: e.get("value", e.get("valueFrom")) for k, e in _env(values, "web").items()}
    assert env == {
        "LANGFUSE_INIT_ORG_ID": "langfuse", "LANGFUSE_INIT_ORG_NAME": "Langfuse",
        "LANGFUSE_INIT_PROJECT_ID": "langfuse-default", "LANGFUSE_INIT_PROJECT_NAME": "Default",
        "LANGFUSE_INIT_PROJECT_PUBLIC_KEY": sample["project_public_key"],
        "LANGFUSE_INIT_PROJECT_SECRET_KEY": _ref("project-secret-key"),
        "LANGFUSE_INIT_USER_EMAIL": sample["admin_email"], "LANGFUSE_INIT_USER_NAME": sample["admin_name"],
        "LANGFUSE_INIT_USER_PASSWORD": _ref("admin-password"),
    }


def test_user_values_with_quotes_and_colons_survive_rendering(values, sample):
    """FR23: operator-chosen strings with YAML-special characters arrive unchanged."""
    assert _env(values, "web")["LANGFUSE_INIT_USER_NAME"]["value"] == sample["admin_name"]


def test_worker_binds_all_interfaces_and_web_survives_first_boot_migrations(values):
    """Decision 13: worker HOSTNAME=0.0.0.0; web liveness delay allows for the first migrations."""
    assert _env(values, "worker") == {"HOSTNAME": {"name": "HOSTNAME", "value": "0.0.0.0"}}
    assert values["langfuse"]["web"]["livenessProbe"]["initialDelaySeconds"] >= 180


def test_web_and_worker_run_as_the_images_non_root_user_without_privileges(values):
    """Hardening (Pod Security restricted): uid/gid 1001 (the Langfuse images' user), non-root,
    no privilege escalation, all capabilities dropped, RuntimeDefault seccomp."""
    pod, ctr = values["langfuse"]["podSecurityContext"], values["langfuse"]["securityContext"]
    assert (pod["runAsNonRoot"], pod["runAsUser"], pod["seccompProfile"]) == (True, 1001, {"type": "RuntimeDefault"})
    assert (ctr["allowPrivilegeEscalation"], ctr["capabilities"], ctr["runAsNonRoot"]) == (False, {"drop": ["ALL"]}, True)


def test_template_takes_no_secret_and_holds_no_literal():
    """NFR1, decision 20: no secret is a template variable any more, and no password, secret or
    value line is a literal (only HOSTNAME's 0.0.0.0)."""
    text = TEMPLATE.read_text()
    used = set(re.findall(r"\$\{(?:jsonencode\()?(\w+)", text))
    assert sorted(used & set(SECRET_VARS)) == []
    for key in ("password", "value", "secretKey"):
        for line in text.splitlines():
            if re.match(rf"\s*{key}:\s*\S", line) and "${" not in line and "#" not in line:
                assert line.strip() in {'value: "0.0.0.0"'}, f"literal value in template: {line.strip()}"


def test_pvcs_use_the_storage_class_helm_tf_passes(values):
    """Hardening: global.defaultStorageClass (read by the Bitnami subcharts) names 03-app's class."""
    assert values["global"]["defaultStorageClass"] == "gp3-encrypted"


def test_clickhouse_keeps_its_data_on_the_claim_helm_tf_passes(values):
    """Decision 24: ClickHouse mounts the static claim 03-app makes, never a volume of its own."""
    assert values["clickhouse"]["persistence"] == {"enabled": True, "existingClaim": "langfuse-clickhouse-data"}


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


def test_every_value_key_exists_in_chart_1_5_19_or_its_subcharts(values):
    """Decision 6: every key set in values.yaml.tpl exists in chart 1.5.19 (or the Bitnami subchart)."""
    charts = json.loads(CHART_KEYS.read_text())["charts"]
    main = charts["langfuse"]
    subcharts = {"clickhouse": charts["clickhouse"], "redis": charts["redis"]}
    unknown = []
    for path in _paths(values):
        sub = subcharts.get(path[0])
        # Globals reach every subchart; the Bitnami ones read global.defaultStorageClass.
        global_in_sub = path[0] == "global" and any(_has(s, path) for s in subcharts.values())
        if not (_has(main, path) or global_in_sub or (sub is not None and _has(sub, path[1:]))):
            unknown.append(".".join(path))
    assert not unknown, f"keys not in chart 1.5.19 defaults: {unknown}"


def test_every_secret_reader_carries_the_checksum_it_is_given(values, sample):
    """Decision 20: web, worker, ClickHouse and Valkey pods carry the Secret's digest helm.tf passes
    (a digest, never a value), so a secret changed through Terraform rolls them."""
    annotation = "checksum/langfuse-secrets"
    assert values["langfuse"]["pod"]["annotations"][annotation] == sample["secret_checksum"]
    assert values["clickhouse"]["podAnnotations"][annotation] == sample["secret_checksum"]
    assert values["redis"]["primary"]["podAnnotations"][annotation] == sample["secret_checksum"]
