terraform {
  # One floor for all three workspaces (02-deps' RDS module needs 1.11.1).
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

# Credentials from the `exec` plugin (decision 21), as terraform-aws-modules/eks documents: the
# providers run `aws eks get-token` whenever they need a token, so a Helm wait longer than a
# token's 15 minutes (the first install waits up to 20) keeps working, and no token is written to
# plan or state. `aws` must be on PATH (AWS CLI, operator tooling; the set-up puts one into
# .venv/bin); it reads the same credentials as the aws provider. The same command in both blocks.
# With the cluster gone (01-network paused) the providers stay unused, so the workspace still plans.
provider "kubernetes" {
  host                   = local.cluster_endpoint
  cluster_ca_certificate = try(base64decode(local.cluster_ca_data), null)

  exec {
    api_version = "client.authentication.k8s.io/v1beta1"
    command     = "aws"
    args        = ["eks", "get-token", "--cluster-name", local.cluster_name, "--region", var.aws_region, "--output", "json"]
  }
}

provider "helm" {
  kubernetes = {
    host                   = local.cluster_endpoint
    cluster_ca_certificate = try(base64decode(local.cluster_ca_data), null)
    exec = {
      api_version = "client.authentication.k8s.io/v1beta1"
      command     = "aws"
      args        = ["eks", "get-token", "--cluster-name", local.cluster_name, "--region", var.aws_region, "--output", "json"]
    }
  }
}
