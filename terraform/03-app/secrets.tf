# What 03-app generates: only secrets whose rotation logs users out or resets in-cluster data
# (decision 20). The secrets that protect stored data (SALT, ENCRYPTION_KEY, the project key pair)
# come from 02-deps, so destroying and re-applying 03-app keeps them.
# Alphanumeric only: Langfuse builds connection URLs without URL-encoding (decision 9). >= 32
# characters of CSPRNG output (FR15, NFR2).

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
