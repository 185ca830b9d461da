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

# 02-deps, in two halves (issue 26): this workspace's state holds no secret. The tfe_outputs data
# source stores every output of the workspace it reads in state, sensitive ones included, so 02-deps
# is never read with it: the non-secret values come from the contract variable 02-deps publishes on
# its workspace (02-deps/contract.tf), the secrets from the ephemeral tfe_outputs below, which
# Terraform never writes to state or plan. Both workspaces outlive every destroy, so both reads
# work from any state of the stack; without the variable (02-deps gone, or applied before this
# change) every value is null.
data "tfe_workspace" "deps" {
  organization = var.tfc_organization
  name         = "langfuse-deps"
}

data "tfe_variables" "deps" {
  workspace_id = data.tfe_workspace.deps.id

  lifecycle {
    # Without the IRSA role the pods would get no S3 credentials.
    postcondition {
      condition     = !var.cluster_enabled || try(jsondecode(one([for v in self.env : v.value if v.name == "LFK8S_DEPS_CONTRACT"])).irsa_role_arn, null) != null
      error_message = "cluster_enabled is true but langfuse-deps publishes no irsa_role_arn (its LFK8S_DEPS_CONTRACT variable is missing or paused): apply 02-deps with cluster_enabled = true first (resume order 01 -> 02 -> 03)."
    }
    # Without ClickHouse's volume the release would have nowhere to keep traces (decision 24).
    postcondition {
      condition     = !var.cluster_enabled || try(jsondecode(one([for v in self.env : v.value if v.name == "LFK8S_DEPS_CONTRACT"])).clickhouse_volume_id, null) != null
      error_message = "cluster_enabled is true but langfuse-deps publishes no clickhouse_volume_id: apply 02-deps (its ClickHouse volume and LFK8S_DEPS_CONTRACT variable) first."
    }
  }
}

ephemeral "tfe_outputs" "deps" {
  organization = var.tfc_organization
  workspace    = "langfuse-deps"
}

locals {
  network = data.tfe_outputs.network.nonsensitive_values
  deps    = try(jsondecode(one([for v in data.tfe_variables.deps.env : v.value if v.name == "LFK8S_DEPS_CONTRACT"])), {})
  # Ephemeral: usable only in write-only arguments (the Secret's data_wo) and other ephemeral values.
  deps_secrets = ephemeral.tfe_outputs.deps.values

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
  s3_bucket_name   = try(local.deps.s3_bucket_name, null)
  s3_bucket_region = try(local.deps.s3_bucket_region, null)
  irsa_role_arn    = try(local.deps.irsa_role_arn, null)

  # ClickHouse's volume (decision 24), owned by 02-deps.
  clickhouse_volume_id       = try(local.deps.clickhouse_volume_id, null)
  clickhouse_volume_zone     = try(local.deps.clickhouse_volume_zone, null)
  clickhouse_volume_size_gib = try(local.deps.clickhouse_volume_size_gib, null)

  project_public_key = try(local.deps.project_public_key, null)
}
