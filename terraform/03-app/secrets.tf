# Every secret is generated here, none is user-provided (FR15, NFR2: >= 32 bytes of CSPRNG output).
# Alphanumeric only: Langfuse builds connection URLs without URL-encoding (decision 9).

resource "random_password" "salt" {
  length  = 64
  special = false
}

resource "random_password" "nextauth_secret" {
  length  = 64
  special = false
}

# ENCRYPTION_KEY must be 256 bits as 64 hex characters.
resource "random_id" "encryption_key" {
  byte_length = 32
}

resource "random_password" "clickhouse" {
  length  = 32
  special = false
}

resource "random_password" "redis" {
  length  = 32
  special = false
}

# Project API keys for headless init, so a trace can be sent without the UI (decision 5).
resource "random_uuid" "project_public_key" {}

resource "random_password" "project_secret_key" {
  length  = 48
  special = false
}
