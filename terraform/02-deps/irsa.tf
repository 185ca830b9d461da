locals {
  # The chart names its service account after the release: "langfuse" (reference facts, chart 1.5.19).
  langfuse_namespace       = "langfuse"
  langfuse_service_account = "langfuse"
}

# S3 read/write for the Langfuse pods through IRSA, no static keys (FR8, NFR4).
# In iam 6.x the module is iam-role-for-service-accounts (decision 8).
module "langfuse_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.4"

  # Only while the cluster exists: a re-created cluster has a new OIDC issuer, so the trust is
  # written anew on resume. The bucket and its objects stay. The provider ARN is checked too: the
  # plan Terraform runs before a destroy turns the postcondition in data.tf into a warning, and
  # the module rejects a null ARN, so a paused stack could not be destroyed.
  create = var.cluster_enabled && local.oidc_provider_arn != null

  name = "langfuse-s3"

  oidc_providers = {
    eks = {
      provider_arn               = local.oidc_provider_arn
      namespace_service_accounts = ["${local.langfuse_namespace}:${local.langfuse_service_account}"]
    }
  }

  create_inline_policy = true
  inline_policy_permissions = {
    Objects = {
      actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
      resources = ["${aws_s3_bucket.langfuse.arn}/*"]
    }
    Bucket = {
      actions   = ["s3:ListBucket"]
      resources = [aws_s3_bucket.langfuse.arn]
    }
  }
}
