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

variable "cluster_endpoint_public_access_cidrs" {
  description = "IPv4 CIDRs allowed to reach the EKS API server's public endpoint (NFR5: anywhere by default); every machine that runs the harness, kubectl or 03-app's apply must be inside one"
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = length(var.cluster_endpoint_public_access_cidrs) > 0
    error_message = "cluster_endpoint_public_access_cidrs must name at least one CIDR: kubectl, the harness and 03-app reach the cluster only through the public endpoint. Leave it unset for 0.0.0.0/0 (NFR5)."
  }

  validation {
    # cidrsubnet(c, 0, 0) is c's network address: equal only when no host bit is set, as EKS wants it.
    condition     = alltrue([for c in var.cluster_endpoint_public_access_cidrs : can(regex("^[0-9.]+/[0-9]+$", c)) && try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "cluster_endpoint_public_access_cidrs must hold IPv4 network CIDRs such as 203.0.113.0/24 or 198.51.100.7/32 (no host bits set); not: ${join(", ", [for c in var.cluster_endpoint_public_access_cidrs : jsonencode(c) if !(can(regex("^[0-9.]+/[0-9]+$", c)) && try(cidrsubnet(c, 0, 0) == c, false))])}."
  }
}
