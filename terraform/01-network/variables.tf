variable "aws_region" {
  description = "AWS region for the VPC and the EKS cluster"
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
  description = "Whether the EKS cluster and its nodes exist; false pauses the stack (the VPC stays, see README)"
  type        = bool
  default     = true
  nullable    = false
}

variable "node_capacity_type" {
  description = "Capacity type of the EKS nodes: ON_DEMAND, or SPOT (cheaper but interruptible, see README Cost)"
  type        = string
  default     = "ON_DEMAND"
  nullable    = false

  validation {
    condition     = contains(["ON_DEMAND", "SPOT"], var.node_capacity_type)
    error_message = "node_capacity_type must be ON_DEMAND or SPOT."
  }
}
