# Upstream contract from 01-network (FR16). The source workspace must share its state,
# or tfe_outputs silently returns an empty object (decision 12).
data "tfe_outputs" "network" {
  organization = var.tfc_organization
  workspace    = "langfuse-network"
}

locals {
  network = data.tfe_outputs.network.nonsensitive_values

  vpc_id                 = local.network.vpc_id
  public_subnet_ids      = local.network.public_subnet_ids
  node_security_group_id = local.network.node_security_group_id
  oidc_provider_arn      = local.network.oidc_provider_arn
}
