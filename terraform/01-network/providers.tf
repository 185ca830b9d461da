terraform {
  # RDS module 7.x in 02-deps needs >= 1.11.1; one floor for all three workspaces.
  required_version = ">= 1.11.1"

  # The organization comes from TF_CLOUD_ORGANIZATION (a cloud block cannot use variables).
  cloud {
    workspaces {
      name = "langfuse-network"
    }
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
  }
}

provider "aws" {
  region = var.aws_region

  # Stable tags on every resource so a sweep can find leftovers of an interrupted run.
  default_tags {
    tags = {
      Project      = "langfuse-k8s-cluster"
      Workspace    = "langfuse-network"
      ManagedBy    = "terraform"
      Organization = var.tfc_organization
    }
  }
}
