"""Plan tier, 02-deps planned whole: RDS, its security group, the S3 bucket, the IRSA role for S3.

Stand-ins: the provider stand-in serving the real aws 6.47.0 schema; the real random and tfe
providers; 01-network's outputs from the local Terraform Cloud fake (`plan.NETWORK_SAMPLE`); the real
rds and iam module sources at their tags, served by the module-registry stand-in from
LFK8S_MODULE_MIRROR. Without those clones every test here skips with one line saying so.
"""

from __future__ import annotations

import json

import pytest

from lfharness.testing import datakeys, plan

pytestmark = pytest.mark.plan

# One line for the whole file where the module sources are missing (CI), not one per test.
_UNAVAILABLE = plan.modules_unavailable("02-deps")
if _UNAVAILABLE:
    pytest.skip(_UNAVAILABLE, allow_module_level=True)

DB = "module.rds.module.db_instance.aws_db_instance.this[0]"
ROLE = "module.langfuse_irsa.aws_iam_role.this[0]"


def test_rds_is_postgres_16_on_db_t4g_micro(deps_plan):
    """FR5, NFR5: PostgreSQL 16 on the smallest Graviton class, single instance."""
    db = deps_plan.after(DB)
    assert (db["engine"], db["engine_version"], db["instance_class"]) == ("postgres", "16", "db.t4g.micro")
    assert db["multi_az"] is False
    assert len(deps_plan.of_type("aws_db_instance")) == 1


def test_rds_has_20_gb_of_storage_on_port_5432(deps_plan):
    """FR5, NFR6: 20 GB is what the cost estimate counts; 5432 is what the security group opens."""
    db = deps_plan.after(DB)
    assert (db["allocated_storage"], db["port"]) == (20, 5432)


def test_app_connects_with_the_database_and_user_deps_creates(deps_plan, app_plan):
    """FR11, story 3.2: 03-app's chart values name the database and user that 02-deps creates."""
    import yaml

    db = deps_plan.after(DB)
    (values,) = app_plan.after("helm_release.langfuse[0]")["values"]
    auth = yaml.safe_load(values)["postgresql"]["auth"]
    assert (auth["database"], auth["username"]) == (db["db_name"], db["username"])


def test_rds_is_public_and_encrypted_at_rest(deps_plan):
    """FR6, NFR3, NFR2: reachable from the operator's machine by design; storage encrypted."""
    db = deps_plan.after(DB)
    assert db["publicly_accessible"] is True
    assert db["storage_encrypted"] is True


def test_rds_can_be_deleted_without_protection_or_final_snapshot(deps_plan):
    """FR9, NFR8: teardown deletes the instance and leaves no snapshot that keeps costing."""
    db = deps_plan.after(DB)
    assert db["deletion_protection"] is False
    assert db["skip_final_snapshot"] is True


def test_rds_lives_in_the_network_subnets(deps_plan):
    """FR5, FR16: the subnet group holds 01-network's two public subnets."""
    (group,) = deps_plan.of_type("aws_db_subnet_group").values()
    assert sorted(group["subnet_ids"]) == sorted(plan.NETWORK_SAMPLE["public_subnet_ids"][0])


def test_rds_password_is_write_only_and_absent_from_the_plan(deps_plan):
    """NFR1, decision 9: the generated password goes write-only (password_wo), so neither the plan
    nor the state holds it; AWS-managed secrets are off or the password would be ignored."""
    db = deps_plan.after(DB)
    assert db["password"] is None and db["password_wo"] is None
    assert db["password_wo_version"] == 1
    assert db["manage_master_user_password"] in (None, False)
    password = deps_plan.prior("random_password.db")["result"]
    elsewhere = [c for a, c in deps_plan.changes.items() if a != "random_password.db"]
    leaked = password in json.dumps(elsewhere)  # a failure shows no value
    assert not leaked


def test_rds_password_is_32_alphanumeric_characters(deps_plan):
    """NFR2, decision 9: >= 32 CSPRNG characters and no specials (Langfuse does not URL-encode it)."""
    password = deps_plan.prior("random_password.db")
    assert password["length"] >= 32 and password["special"] is False
    alphanumeric = password["result"].isalnum()  # a failure shows no value
    assert alphanumeric


def test_rds_uses_only_the_security_group_made_here(deps_plan):
    """FR6, NFR3: exactly one security group on the instance, the one created in this plan (its id
    is unknown until apply), never the VPC's default group."""
    assert deps_plan.unknown(DB)["vpc_security_group_ids"] == [True]
    (group,) = deps_plan.of_type("aws_security_group").values()
    assert group["name_prefix"] == "langfuse-rds-"


def test_5432_is_open_from_the_node_security_group_and_anywhere_and_nothing_else(deps_plan):
    """FR6, NFR3: two ingress rules on the RDS group, both 5432/tcp: the EKS nodes' group and
    0.0.0.0/0; no other rule and no inline ingress."""
    rules = sorted(deps_plan.of_type("aws_vpc_security_group_ingress_rule").values(),
                   key=lambda r: r["cidr_ipv4"] or "")
    assert [(r["ip_protocol"], r["from_port"], r["to_port"]) for r in rules] == [("tcp", 5432, 5432)] * 2
    assert rules[0]["referenced_security_group_id"] == plan.NETWORK_SAMPLE["node_security_group_id"][0]
    assert rules[1]["cidr_ipv4"] == "0.0.0.0/0" and rules[1]["referenced_security_group_id"] is None
    assert not deps_plan.of_type("aws_security_group_rule")
    config = deps_plan.raw["configuration"]["root_module"]["resources"]
    (group,) = [r for r in config if r["address"] == "aws_security_group.rds"]
    assert "ingress" not in group["expressions"]


def test_bucket_is_langfuse_storage_with_force_destroy(deps_plan):
    """FR7, NFR8, story 2.2: a random suffix keeps the global name unique; teardown empties it."""
    bucket = deps_plan.after("aws_s3_bucket.langfuse")
    assert bucket["bucket"] == "langfuse-storage-" + deps_plan.prior("random_id.bucket")["hex"]
    assert bucket["force_destroy"] is True


def test_bucket_blocks_public_access_encrypts_and_enforces_the_owner(deps_plan):
    """FR7, NFR2: all four public-access blocks, SSE by default, ACLs disabled (owner enforced)."""
    block = deps_plan.after("aws_s3_bucket_public_access_block.langfuse")
    assert all(block[k] is True for k in ("block_public_acls", "block_public_policy", "ignore_public_acls",
                                          "restrict_public_buckets"))
    sse = deps_plan.after("aws_s3_bucket_server_side_encryption_configuration.langfuse")
    assert sse["rule"][0]["apply_server_side_encryption_by_default"][0]["sse_algorithm"] in ("AES256", "aws:kms")
    owner = deps_plan.after("aws_s3_bucket_ownership_controls.langfuse")
    assert owner["rule"][0]["object_ownership"] == "BucketOwnerEnforced"


def test_bucket_policy_denies_every_request_without_tls(deps_plan):
    """Decision 15: one Deny statement on s3:* for everyone when aws:SecureTransport is false."""
    (statement,) = deps_plan.data("data.aws_iam_policy_document.bucket_tls_only")["statement"]
    assert (statement["effect"], statement["actions"]) == ("Deny", ["s3:*"])
    assert statement["principals"] == [{"identifiers": ["*"], "type": "*"}]
    assert statement["condition"] == [{"test": "Bool", "variable": "aws:SecureTransport", "values": ["false"]}]
    assert len(deps_plan.of_type("aws_s3_bucket_policy")) == 1


def test_irsa_role_is_trusted_by_the_langfuse_service_account_with_sts_audience(deps_plan):
    """FR8, NFR4: web identity from 01-network's OIDC provider, subject langfuse:langfuse, audience STS."""
    (statement,) = deps_plan.data("module.langfuse_irsa.data.aws_iam_policy_document.assume[0]")["statement"]
    assert statement["actions"] == ["sts:AssumeRoleWithWebIdentity"]
    assert statement["principals"][0]["identifiers"] == [plan.NETWORK_SAMPLE["oidc_provider_arn"][0]]
    conditions = {c["variable"].rsplit(":", 1)[1]: (c["test"], c["values"]) for c in statement["condition"]}
    assert conditions == {"sub": ("StringEquals", ["system:serviceaccount:langfuse:langfuse"]),
                          "aud": ("StringEquals", ["sts.amazonaws.com"])}


def test_irsa_role_may_only_get_put_delete_objects_and_list_the_bucket(deps_plan):
    """FR8, NFR4: least privilege: object Get/Put/Delete, bucket List, nothing else."""
    statements = deps_plan.data("module.langfuse_irsa.data.aws_iam_policy_document.inline[0]")["statement"]
    actions = sorted(a for s in statements for a in s["actions"])
    assert actions == ["s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject"]
    assert {s["effect"] for s in statements} == {"Allow"}
    # Resources derive from the bucket ARN (known after apply); a wildcard would be known now.
    assert all(r is None or r.startswith("arn:") and r != "*" for s in statements for r in s["resources"])
    assert all(len(s["resources"]) == 1 for s in statements)
    assert len(deps_plan.of_type("aws_iam_role")) == 1 and ROLE in deps_plan.changes


def test_the_five_contract_outputs_are_planned(deps_plan):
    """FR17: 03-app reads these five outputs by name; the password output is sensitive."""
    assert set(deps_plan.output_changes) >= {"rds_endpoint", "rds_password", "s3_bucket_name", "s3_bucket_region",
                                              "irsa_role_arn"}
    assert deps_plan.output_changes["rds_password"]["after_sensitive"] is True


def test_rds_refuses_connections_without_tls(deps_plan):
    """Decision 15, NFR3: the parameter group the instance uses sets rds.force_ssl = 1, so the
    public endpoint accepts no plain-text client, whatever sslmode it asks for."""
    (group,) = deps_plan.of_type("aws_db_parameter_group").values()
    assert group["family"] == "postgres16"
    assert {(p["name"], p["value"]) for p in group["parameter"]} >= {("rds.force_ssl", "1")}


DATA_SECRETS = {"random_password.salt": ("result", 64), "random_bytes.encryption_key": ("hex", 64),
                "random_password.project_secret_key": ("result", 48)}


@pytest.mark.parametrize("address", sorted(DATA_SECRETS))
def test_data_protecting_secret_is_generated_beside_the_database(deps_plan, address):
    """Decision 20, FR15, NFR2: salt, encryption key (64 hex) and project secret key are CSPRNG
    output of >= 32 characters, alphanumeric, generated in 02-deps (they live as long as the data)."""
    attribute, length = DATA_SECRETS[address]
    value = deps_plan.prior(address)[attribute]
    shape = (len(value), value.isalnum())  # a failure shows the shape, never the value
    assert shape == (length, True)


# Moved here from 03-app (issue 26): every generated secret lives in 02-deps' state.
IN_CLUSTER_SECRETS = {"random_password.nextauth_secret": ("result", 64), "random_password.clickhouse": ("result", 32),
                      "random_password.redis": ("result", 32)}


@pytest.mark.parametrize("address", sorted(IN_CLUSTER_SECRETS))
def test_in_cluster_secret_has_its_length_and_is_alphanumeric(deps_plan, address):
    """FR15, NFR2, decision 9, issue 26: the NextAuth secret and the ClickHouse and Redis passwords are
    >= 32 CSPRNG characters with none that break connection URLs, generated in 02-deps."""
    attribute, length = IN_CLUSTER_SECRETS[address]
    value = deps_plan.prior(address)[attribute]
    shape = (len(value), value.isalnum())  # a failure shows the shape, never the value
    assert shape == (length, True) and length >= 32


def test_data_protecting_secrets_are_outputs_and_all_but_the_public_key_sensitive(deps_plan):
    """Decision 20: 03-app reads them through tfe_outputs; Terraform never prints the secret ones."""
    changes = deps_plan.output_changes
    sensitive = {k: changes[k]["after_sensitive"] for k in ("salt", "encryption_key", "project_public_key",
                                                            "project_secret_key")}
    assert sensitive == {"salt": True, "encryption_key": True, "project_public_key": False, "project_secret_key": True}
    assert deps_plan.outputs["encryption_key"] == deps_plan.prior("random_bytes.encryption_key")["hex"]
    assert deps_plan.outputs["project_public_key"] == "pk-lf-" + deps_plan.prior("random_uuid.project_public_key")["result"]
    assert deps_plan.outputs["project_secret_key"] == "sk-lf-" + deps_plan.prior("random_password.project_secret_key")["result"]


def test_no_resource_of_02_deps_holds_a_data_protecting_secret_unmarked(deps_plan):
    """Decision 20, NFR1: every state attribute holding the salt, the encryption key or the project
    secret key carries Terraform's sensitive mark, so a raw-CLI plan, apply or destroy of 02-deps, its
    Terraform Cloud run log and `terraform state show` print `(sensitive value)` (random_id's hex, the
    documented non-secret identifier, would print the encryption key). Stand-in: the real random
    provider, applied before the plan."""
    secrets = {name: deps_plan.outputs[name] for name in ("salt", "encryption_key", "project_secret_key")}
    assert all(secrets.values())
    assert datakeys.unmarked_secret_attributes(deps_plan.raw["prior_state"], secrets) == []


def test_a_second_plan_after_apply_shows_no_changes(workbench, deps_plan):
    """FR29 at configuration level: after the stand-in apply, `plan -detailed-exitcode` exits 0."""
    workbench.apply(deps_plan)
    assert workbench.changes_after_apply(deps_plan) == 0


def test_a_typo_in_the_network_workspace_name_fails_the_plan(workbench, tmp_path):
    """FR16: reading a workspace the local Terraform Cloud fake does not know fails the plan."""
    reason = workbench.unavailable("02-deps")
    if reason:
        pytest.skip(reason)
    data = (plan.tf.TERRAFORM_DIR / "02-deps" / "data.tf").read_text().replace('"langfuse-network"', '"langfuse-netwrok"')
    with pytest.raises(plan.tftest.TerraformTestError, match="Unable to read workspace"):
        workbench.plan("02-deps", tmp_path / "deps", edit={"data.tf": data}, known_secrets=False)
