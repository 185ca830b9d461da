# Upstream contracts (FR17). Both source workspaces must share their state with
# langfuse-app, or tfe_outputs silently returns an empty object (decision 12).
data "tfe_outputs" "network" {
  organization = var.tfc_organization
  workspace    = "langfuse-network"
}

data "tfe_outputs" "deps" {
  organization = var.tfc_organization
  workspace    = "langfuse-deps"
}

locals {
  network = data.tfe_outputs.network.nonsensitive_values
  deps    = data.tfe_outputs.deps.nonsensitive_values

  cluster_name     = local.network.cluster_name
  cluster_endpoint = local.network.cluster_endpoint
  cluster_ca_data  = local.network.cluster_ca_data

  # rds_endpoint is host:port; Langfuse wants the bare host (story 3.2).
  rds_host         = split(":", local.deps.rds_endpoint)[0]
  rds_password     = data.tfe_outputs.deps.values.rds_password
  s3_bucket_name   = local.deps.s3_bucket_name
  s3_bucket_region = local.deps.s3_bucket_region
  irsa_role_arn    = local.deps.irsa_role_arn
}
