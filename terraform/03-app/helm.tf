locals {
  namespace     = "langfuse"
  chart_version = "1.5.19"

  # Headless init creates nothing without an org id, and no project without a project id (decision 13).
  org_id       = "langfuse"
  org_name     = "Langfuse"
  project_id   = "langfuse-default"
  project_name = "Default"

  project_public_key = "pk-lf-${random_uuid.project_public_key.result}"
  project_secret_key = "sk-lf-${random_password.project_secret_key.result}"
}

# Namespace and release exist only while the cluster does (Journey 3 pause). The secrets in
# secrets.tf have no such switch: SALT hashes the project API keys and ENCRYPTION_KEY encrypts
# stored secrets, so new values after a resume would lock the operator out of their data.
resource "kubernetes_namespace_v1" "langfuse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name = local.namespace
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }
}

# Langfuse v3 from its official chart, pinned (FR10, NFR10). The release name must be
# "langfuse": the chart derives service and service account names from it.
resource "helm_release" "langfuse" {
  count = var.cluster_enabled ? 1 : 0

  name       = "langfuse"
  repository = "https://langfuse.github.io/langfuse-k8s"
  chart      = "langfuse"
  version    = local.chart_version
  namespace  = kubernetes_namespace_v1.langfuse[0].metadata[0].name

  # First boot runs hundreds of migrations against RDS and ClickHouse (decision 13).
  timeout         = 1200
  wait            = true
  atomic          = false
  cleanup_on_fail = false

  values = [
    templatefile("${path.module}/values.yaml.tpl", {
      db_host     = local.rds_host
      db_port     = 5432
      db_name     = "langfuse"
      db_username = "langfuse"
      db_password = local.rds_password

      s3_bucket_name   = local.s3_bucket_name
      s3_bucket_region = local.s3_bucket_region
      irsa_role_arn    = local.irsa_role_arn

      salt                = random_password.salt.result
      nextauth_secret     = random_password.nextauth_secret.result
      encryption_key      = random_id.encryption_key.hex
      clickhouse_password = random_password.clickhouse.result
      redis_password      = random_password.redis.result

      org_id             = local.org_id
      org_name           = local.org_name
      project_id         = local.project_id
      project_name       = local.project_name
      project_public_key = local.project_public_key
      project_secret_key = local.project_secret_key
      admin_email        = var.langfuse_admin_email
      admin_name         = var.langfuse_admin_name
      admin_password     = var.langfuse_admin_password
    })
  ]
}
