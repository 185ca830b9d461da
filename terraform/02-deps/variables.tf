variable "aws_region" {
  description = "AWS region for RDS and S3 (the region of 01-network)"
  type        = string
  default     = "us-east-1"

  validation {
    condition     = can(regex("^(us|eu|ap|ca|sa|me|af|il|mx)-(gov-)?(north|south|east|west|central|northeast|southeast|northwest|southwest)-[1-9]$", var.aws_region))
    error_message = "aws_region must be an AWS region name such as us-east-1."
  }
}

variable "tfc_organization" {
  description = "Terraform Cloud organization that holds the langfuse-* workspaces"
  type        = string

  validation {
    condition     = can(regex("^[A-Za-z0-9_-]+$", var.tfc_organization))
    error_message = "tfc_organization may contain only letters, digits, '-' and '_'."
  }
}

variable "cluster_enabled" {
  description = "Whether the EKS cluster exists; false (paused) drops the node rule into RDS and the IRSA role, RDS and S3 stay"
  type        = bool
  default     = true
  nullable    = false
}
