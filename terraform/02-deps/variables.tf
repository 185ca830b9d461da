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

variable "clickhouse_volume_size_gib" {
  description = "Size in GiB of ClickHouse's EBS volume (traces, observations, scores, evaluation results); kept across pause and rebuild, deleted by teardown. Grow it with an apply; EBS cannot shrink"
  type        = number
  default     = 8
  nullable    = false

  validation {
    # 8 GiB is chart 1.5.19's ClickHouse persistence.size; 16 TiB is gp3's maximum.
    condition     = var.clickhouse_volume_size_gib >= 8 && var.clickhouse_volume_size_gib <= 16384 && floor(var.clickhouse_volume_size_gib) == var.clickhouse_volume_size_gib
    error_message = "clickhouse_volume_size_gib must be a whole number of GiB from 8 (chart 1.5.19's ClickHouse volume) to 16384 (gp3's maximum)."
  }
}

variable "clickhouse_volume_snapshot_id" {
  description = "EBS snapshot to make ClickHouse's volume from (moving the data of a stack deployed before 02-deps owned the volume, see docs/operations.md); read only when the volume is made: null makes an empty volume"
  type        = string
  default     = null

  validation {
    condition     = var.clickhouse_volume_snapshot_id == null || can(regex("^snap-[0-9a-f]{8,17}$", var.clickhouse_volume_snapshot_id))
    error_message = "clickhouse_volume_snapshot_id must be an EBS snapshot id (snap- and 8 or 17 hex digits), or null."
  }
}

variable "rds_ingress_cidrs" {
  description = "IPv4 CIDRs allowed to reach RDS on 5432 (NFR3: anywhere by default); the EKS nodes are allowed by their own security-group rule whatever this says"
  type        = list(string)
  default     = ["0.0.0.0/0"]
  nullable    = false

  validation {
    condition     = length(var.rds_ingress_cidrs) > 0
    error_message = "rds_ingress_cidrs must name at least one CIDR (the operator's machine reaches RDS through it, FR6). Leave it unset for 0.0.0.0/0 (NFR3)."
  }

  validation {
    # cidrsubnet(c, 0, 0) is c's network address: equal only when no host bit is set, as EC2 wants it.
    condition     = alltrue([for c in var.rds_ingress_cidrs : can(regex("^[0-9.]+/[0-9]+$", c)) && try(cidrsubnet(c, 0, 0) == c, false)])
    error_message = "rds_ingress_cidrs must hold IPv4 network CIDRs such as 203.0.113.0/24 or 198.51.100.7/32 (no host bits set); not: ${join(", ", [for c in var.rds_ingress_cidrs : jsonencode(c) if !(can(regex("^[0-9.]+/[0-9]+$", c)) && try(cidrsubnet(c, 0, 0) == c, false))])}."
  }
}
