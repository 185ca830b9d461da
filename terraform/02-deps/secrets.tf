# Every secret the stack generates lives in this workspace's state, and only here (issue 26): 03-app
# reads them through the ephemeral tfe_outputs and writes them with the Kubernetes Secret's
# write-only data_wo, so its own state holds none.
#
# The secrets that protect what PostgreSQL stores live as long as PostgreSQL (decision 20): SALT
# hashes the project API keys, ENCRYPTION_KEY encrypts stored LLM connection keys (AES-GCM), and
# the headless-init key pair is what the operator's SDKs hold. Generated here, beside the database,
# a destroy and re-apply of 03-app (or a pause) keeps them; destroying 02-deps deletes them with the
# data they protect.
# CSPRNG output, >= 32 bytes, alphanumeric or hex (FR15, NFR2, decision 9).

resource "random_password" "salt" {
  length  = 64
  special = false
}

# ENCRYPTION_KEY must be 256 bits as 64 hex characters (decision 13). random_bytes, not random_id:
# its provider marks hex sensitive, random_id's hex (a non-secret identifier) prints in clear in
# every plan, apply, destroy and `state show` of 02-deps.
resource "random_bytes" "encryption_key" {
  length = 32
}

# Project API keys for headless init, so a trace can be sent without the UI (decision 5).
resource "random_uuid" "project_public_key" {}

resource "random_password" "project_secret_key" {
  length  = 48
  special = false
}

locals {
  project_public_key = "pk-lf-${random_uuid.project_public_key.result}"
  project_secret_key = "sk-lf-${random_password.project_secret_key.result}"
}

# The in-cluster secrets (NEXTAUTH_SECRET, ClickHouse's and Valkey's passwords) protect no stored
# data: the session cookie signer and the passwords the pods set on their own stores at every
# start. They live here beside the others so that 03-app's state holds no secret; a 03-app rebuild
# or a pause keeps them (no forced logout, ClickHouse's kept volume opens with the same password).
# Rotate one with `terraform apply -replace=random_password.<name>` in 02-deps, then apply 03-app:
# the Secret's revision changes and the pods roll. Alphanumeric: Langfuse builds connection URLs
# without URL-encoding (decision 9).

resource "random_password" "nextauth_secret" {
  length  = 64
  special = false
}

resource "random_password" "clickhouse" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 32
  special = false
}

locals {
  # Everything 03-app puts into the Kubernetes Secret that comes from here, by output name.
  app_secrets = {
    rds_password        = random_password.db.result
    salt                = random_password.salt.result
    encryption_key      = random_bytes.encryption_key.hex
    project_secret_key  = local.project_secret_key
    nextauth_secret     = random_password.nextauth_secret.result
    clickhouse_password = random_password.clickhouse.result
    redis_password      = random_password.redis.result
  }

  # Changes exactly when one of the values above changes: 03-app's data_wo_revision (a write-only
  # value is sent only when its revision changes) and the pods' restart annotation follow it. 48
  # bits of a SHA-256 over >= 32 random characters per value reveal none of them, so it may leave
  # the sensitive marking; a number so that it fits data_wo_revision.
  app_secrets_revision = parseint(substr(nonsensitive(sha256(jsonencode(local.app_secrets))), 0, 12), 16)
}
