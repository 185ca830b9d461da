terraform {
  # RDS module 7.x takes the password write-only, which needs Terraform >= 1.11.1.
  required_version = ">= 1.11.1"

  # The organization comes from TF_CLOUD_ORGANIZATION (a cloud block cannot use variables).
  cloud {
    workspaces {
      name = "langfuse-deps"
    }
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
    random = {
      source  = "hashicorp/random"
      version = "~> 3.8"
    }
    tfe = {
      source  = "hashicorp/tfe"
      version = "~> 0.79"
    }
  }
}

provider "aws" {
  region = var.aws_region

  # Stable tags on every resource so a sweep can find leftovers of an interrupted run.
  default_tags {
    tags = {
      Project      = "langfuse-k8s-cluster"
      Workspace    = "langfuse-deps"
      ManagedBy    = "terraform"
      Organization = var.tfc_organization
    }
  }
}

# Reads TFE_TOKEN from the environment; no interactive login (FR26).
provider "tfe" {}
