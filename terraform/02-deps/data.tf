# Upstream contract from 01-network (FR16). The source workspace must share its state,
# or tfe_outputs silently returns an empty object (decision 12).
data "tfe_outputs" "network" {
  organization = var.tfc_organization
  workspace    = "langfuse-network"

  lifecycle {
    # Resume order is 01 -> 02 -> 03: without the cluster's outputs the node rule and the IRSA
    # role below would have nothing to point at.
    postcondition {
      condition = !var.cluster_enabled || (
        try(self.nonsensitive_values.node_security_group_id, null) != null &&
        try(self.nonsensitive_values.oidc_provider_arn, null) != null
      )
      error_message = "cluster_enabled is true but langfuse-network has no cluster (node_security_group_id and oidc_provider_arn are missing): apply 01-network with cluster_enabled = true first (resume order 01 -> 02 -> 03)."
    }
  }
}

locals {
  network = data.tfe_outputs.network.nonsensitive_values

  # Null-safe too: after a teardown that failed on 02-deps and then destroyed 01-network, the
  # next teardown destroys 02-deps with none of 01-network's outputs left (issue 24 item 5).
  vpc_id            = try(local.network.vpc_id, null)
  public_subnet_ids = try(local.network.public_subnet_ids, [])

  # Null while 01-network is paused; Terraform does not store null outputs, so the keys are absent.
  node_security_group_id = try(local.network.node_security_group_id, null)
  oidc_provider_arn      = try(local.network.oidc_provider_arn, null)
}
