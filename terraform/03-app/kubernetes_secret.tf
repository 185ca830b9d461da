# The one Kubernetes Secret the pods read (decision 20): 03-app's generated secrets (secrets.tf),
# 02-deps' data-protecting ones and the database password (data.tf), the admin password (.env).

locals {
  secret_name = "langfuse-secrets"

  # DIRECT_URL for Prisma migrations (story 3.2). The chart has no secret reference for
  # postgresql.directUrl, so the whole URL, password included, lives in the Secret. Null without
  # 02-deps' outputs: a string template rejects null, and the destroy of a 03-app left behind by
  # a failed teardown evaluates this after 02-deps is gone.
  direct_url = local.rds_password == null || local.rds_host == null ? null : "postgresql://${local.db_username}:${local.rds_password}@${local.rds_host}:${local.db_port}/${local.db_name}?sslmode=require"

  # Key names the values reference (values.yaml.tpl); each maps to what the pods read.
  secret_data = {
    "salt"                = local.salt
    "encryption-key"      = local.encryption_key
    "nextauth-secret"     = random_password.nextauth_secret.result
    "database-password"   = local.rds_password
    "direct-url"          = local.direct_url
    "clickhouse-password" = random_password.clickhouse.result
    "redis-password"      = random_password.redis.result
    "project-secret-key"  = local.project_secret_key
    "admin-password"      = var.langfuse_admin_password
  }
}

# Every secret the pods need, in one Secret the chart references (secretKeyRef, existingSecret):
# no secret in the Helm values, so none in the Deployments, the pod specs or the EKS audit log
# (decision 20). Exists while the cluster does, like the namespace.
resource "kubernetes_secret_v1" "langfuse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = local.secret_name
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  type = "Opaque"
  data = local.secret_data

  lifecycle {
    # A 02-deps applied before decision 20 has none of these outputs: say so before anything is created.
    precondition {
      condition     = local.salt != null && local.encryption_key != null && local.project_secret_key != null && local.project_public_key != null
      error_message = "langfuse-deps has no salt, encryption_key or project key outputs: apply 02-deps (it generates them) before 03-app."
    }
  }
}
