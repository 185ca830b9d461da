# The 7 outputs below are a contract read by name from 02-deps and 03-app via tfe_outputs (FR16, FR17).
# While paused the cluster outputs are null, and Terraform does not store null outputs: readers
# must expect those keys to be absent.

output "vpc_id" {
  description = "ID of the VPC that holds EKS and RDS"
  value       = module.vpc.vpc_id
}

output "public_subnet_ids" {
  description = "IDs of the two public subnets (one per AZ)"
  value       = module.vpc.public_subnets
}

output "cluster_name" {
  description = "Name of the EKS cluster (empty while paused: cluster_enabled = false)"
  value       = module.eks.cluster_name
}

output "cluster_endpoint" {
  description = "Public endpoint of the EKS API server (null while paused)"
  value       = module.eks.cluster_endpoint
}

output "cluster_ca_data" {
  description = "Base64-encoded certificate authority data of the EKS cluster (null while paused)"
  value       = module.eks.cluster_certificate_authority_data
}

output "oidc_provider_arn" {
  description = "ARN of the cluster's IAM OIDC provider, for IRSA roles (null while paused)"
  value       = module.eks.oidc_provider_arn
}

output "node_security_group_id" {
  description = "Security group of the EKS nodes, allowed into RDS on 5432 (null while paused)"
  value       = module.eks.node_security_group_id
}
