# The secrets that protect what PostgreSQL stores live as long as PostgreSQL (decision 20): SALT
# hashes the project API keys, ENCRYPTION_KEY encrypts stored LLM connection keys (AES-GCM), and
# the headless-init key pair is what the operator's SDKs hold. Generated here, beside the database,
# a destroy and re-apply of 03-app (or a pause) keeps them; destroying 02-deps deletes them with the
# data they protect. 03-app reads them as sensitive outputs through tfe_outputs.
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
