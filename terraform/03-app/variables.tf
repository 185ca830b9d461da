variable "aws_region" {
  description = "AWS region of the EKS cluster (the region of 01-network)"
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

variable "langfuse_admin_email" {
  description = "Email of the user created by headless initialization"
  type        = string

  validation {
    # Langfuse 3.150's own rule (zod 3's email(), see lfharness/core/envfile.py ADMIN_EMAIL): an
    # address it refuses would keep the web pod from starting.
    condition     = can(regex("^([A-Za-z0-9_'+-]+\\.)*[A-Za-z0-9_'+-]*[A-Za-z0-9_+-]@([A-Za-z0-9][A-Za-z0-9-]*\\.)+[A-Za-z]{2,}$", var.langfuse_admin_email))
    error_message = "langfuse_admin_email must be an email address Langfuse accepts: ASCII, no leading, trailing or doubled dot before the @, a top-level domain of 2+ letters (e.g. ops@example.com)."
  }
}

variable "langfuse_admin_name" {
  description = "Display name of the user created by headless initialization"
  type        = string
  default     = "Langfuse Admin"

  validation {
    condition     = length(trimspace(var.langfuse_admin_name)) > 0
    error_message = "langfuse_admin_name must not be empty."
  }
}

variable "langfuse_admin_password" {
  description = "Password of the user created by headless initialization (used only when Langfuse first creates that user)"
  type        = string
  sensitive   = true
  # Reaches only the Secret's write-only data_wo: never stored in a plan file or the state.
  ephemeral = true

  validation {
    condition     = length(var.langfuse_admin_password) >= 12
    error_message = "langfuse_admin_password must be at least 12 characters."
  }
}

variable "cluster_enabled" {
  description = "Whether the EKS cluster exists; false (paused) removes the Helm release and namespace, the generated secrets stay"
  type        = bool
  default     = true
  nullable    = false
}
