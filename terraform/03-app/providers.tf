terraform {
  # Ephemeral resources (the EKS token below) need Terraform >= 1.10; one floor for all workspaces.
  required_version = ">= 1.11.1"

  # The organization comes from TF_CLOUD_ORGANIZATION (a cloud block cannot use variables).
  cloud {
    workspaces {
      name = "langfuse-app"
    }
  }

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.28"
    }
    # helm and kubernetes: wide enough for the schemas the offline plan tier serves (helm 3.0.2,
    # kubernetes 2.38.0) and for today's releases (helm 3.1.x, kubernetes 3.x). Every argument used
    # here exists in both; the upper bounds keep the next major out.
    helm = {
      source  = "hashicorp/helm"
      version = "~> 3.0"
    }
    kubernetes = {
      source  = "hashicorp/kubernetes"
      version = ">= 2.38, < 4.0"
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

  default_tags {
    tags = {
      Project      = "langfuse-k8s-cluster"
      Workspace    = "langfuse-app"
      ManagedBy    = "terraform"
      Organization = var.tfc_organization
    }
  }
}

# Reads TFE_TOKEN from the environment; no interactive login (FR26).
provider "tfe" {}

# A fresh token on every run, never written to plan or state (decision 11). It follows the
# cluster, not cluster_enabled: pausing 03-app first still needs it to delete the release.
# With the cluster gone (01-network paused) there is no token and the providers below stay
# unused, so the workspace still plans.
ephemeral "aws_eks_cluster_auth" "this" {
  count = local.cluster_exists ? 1 : 0

  name = local.cluster_name
}

provider "kubernetes" {
  host                   = local.cluster_endpoint
  cluster_ca_certificate = try(base64decode(local.cluster_ca_data), null)
  token                  = one(ephemeral.aws_eks_cluster_auth.this[*].token)
}

provider "helm" {
  kubernetes = {
    host                   = local.cluster_endpoint
    cluster_ca_certificate = try(base64decode(local.cluster_ca_data), null)
    token                  = one(ephemeral.aws_eks_cluster_auth.this[*].token)
  }
}
