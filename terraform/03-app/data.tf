# Upstream contracts (FR17). Both source workspaces must share their state with
# langfuse-app, or tfe_outputs silently returns an empty object (decision 12).
data "tfe_outputs" "network" {
  organization = var.tfc_organization
  workspace    = "langfuse-network"

  lifecycle {
    # Resume order is 01 -> 02 -> 03: the release needs a cluster to go into.
    postcondition {
      condition = !var.cluster_enabled || (
        try(self.nonsensitive_values.cluster_name, "") != "" &&
        try(self.nonsensitive_values.cluster_endpoint, null) != null &&
        try(self.nonsensitive_values.cluster_ca_data, null) != null
      )
      error_message = "cluster_enabled is true but langfuse-network has no cluster (cluster_name is empty): apply 01-network with cluster_enabled = true first (resume order 01 -> 02 -> 03)."
    }
  }
}

data "tfe_outputs" "deps" {
  organization = var.tfc_organization
  workspace    = "langfuse-deps"

  lifecycle {
    # Without the IRSA role the pods would get no S3 credentials.
    postcondition {
      condition     = !var.cluster_enabled || try(self.nonsensitive_values.irsa_role_arn, null) != null
      error_message = "cluster_enabled is true but langfuse-deps has no irsa_role_arn: apply 02-deps with cluster_enabled = true first (resume order 01 -> 02 -> 03)."
    }
    # Without ClickHouse's volume the release would have nowhere to keep traces (decision 24).
    postcondition {
      condition     = !var.cluster_enabled || try(self.nonsensitive_values.clickhouse_volume_id, null) != null
      error_message = "cluster_enabled is true but langfuse-deps has no clickhouse_volume_id: apply 02-deps (its ClickHouse volume) first."
    }
  }
}

locals {
  network = data.tfe_outputs.network.nonsensitive_values
  deps    = data.tfe_outputs.deps.nonsensitive_values

  # While 01-network is paused cluster_name is "" and the other two are null, which Terraform
  # does not store: the keys are absent.
  cluster_name     = try(local.network.cluster_name, "")
  cluster_endpoint = try(local.network.cluster_endpoint, null)
  cluster_ca_data  = try(local.network.cluster_ca_data, null)

  # rds_endpoint is host:port; Langfuse wants the bare host (story 3.2). Every read is null-safe:
  # a 03-app left behind by a failed destroy is destroyed after 02-deps is gone, and Terraform
  # evaluates these locals in that destroy too. The release that uses them exists only with
  # cluster_enabled, which the postconditions above guard.
  rds_host         = try(split(":", local.deps.rds_endpoint)[0], null)
  rds_password     = try(data.tfe_outputs.deps.values.rds_password, null)
  s3_bucket_name   = try(local.deps.s3_bucket_name, null)
  s3_bucket_region = try(local.deps.s3_bucket_region, null)
  irsa_role_arn    = try(local.deps.irsa_role_arn, null)

  # ClickHouse's volume (decision 24), owned by 02-deps.
  clickhouse_volume_id       = try(local.deps.clickhouse_volume_id, null)
  clickhouse_volume_zone     = try(local.deps.clickhouse_volume_zone, null)
  clickhouse_volume_size_gib = try(local.deps.clickhouse_volume_size_gib, null)

  # The secrets that protect stored data come from 02-deps (decision 20); null when 02-deps
  # has none (gone, or not yet applied), so a destroy still plans.
  salt               = try(data.tfe_outputs.deps.values.salt, null)
  encryption_key     = try(data.tfe_outputs.deps.values.encryption_key, null)
  project_public_key = try(local.deps.project_public_key, null)
  project_secret_key = try(data.tfe_outputs.deps.values.project_secret_key, null)
}
