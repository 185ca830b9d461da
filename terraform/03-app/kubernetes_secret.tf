# The one Kubernetes Secret the pods read (decision 20): every generated secret comes from 02-deps
# through the ephemeral tfe_outputs (data.tf), the admin password from .env. All of it goes in
# through the write-only data_wo, so neither this workspace's plan nor its state holds a value
# (issue 26); data_wo_revision tells the provider when to send them again.

locals {
  secret_name = "langfuse-secrets"

  # DIRECT_URL for Prisma migrations (story 3.2). The chart has no secret reference for
  # postgresql.directUrl, so the whole URL, password included, lives in the Secret. Null without
  # 02-deps' outputs: a string template rejects null, and the destroy of a 03-app left behind by
  # a failed teardown evaluates this after 02-deps is gone.
  rds_password = try(local.deps_secrets.rds_password, null)
  direct_url   = local.rds_password == null || local.rds_host == null ? null : "postgresql://${local.db_username}:${local.rds_password}@${local.rds_host}:${local.db_port}/${local.db_name}?sslmode=require"

  # The Secret's keys the values reference (values.yaml.tpl) that 02-deps' outputs fill: key ->
  # output. Not ephemeral, so the layout below can be hashed.
  secret_outputs = {
    "salt"                = "salt"
    "encryption-key"      = "encryption_key"
    "nextauth-secret"     = "nextauth_secret"
    "database-password"   = "rds_password"
    "clickhouse-password" = "clickhouse_password"
    "redis-password"      = "redis_password"
    "project-secret-key"  = "project_secret_key"
  }

  # Each key and what the pods read under it. Ephemeral (it holds 02-deps' secrets): only data_wo
  # may take it. Null members without 02-deps (the precondition below refuses them).
  secret_data = merge(
    { for key, output in local.secret_outputs : key => try(local.deps_secrets[output], null) },
    {
      "direct-url"     = local.direct_url
      "admin-password" = var.langfuse_admin_password
    },
  )

  # Changes exactly when a secret 02-deps generates changes (its app_secrets_revision) or the
  # Secret's layout does (its keys, DIRECT_URL's host and database: kubernetes_secret.tf); null
  # without 02-deps. The admin password is not in it: Langfuse reads LANGFUSE_INIT_USER_PASSWORD
  # only to create the user on first start, so a changed password reaches the Secret with the next
  # rebuild, and changes no login before or after.
  secrets_revision = try(parseint(substr(sha256("${local.deps.app_secrets_revision}/${local.secret_layout}"), 0, 12), 16), null)

  # What the Secret is apart from its values: its keys and DIRECT_URL without the password. The
  # provider sends data_wo again only when data_wo_revision changes, so a change here must change
  # the revision too (data.tf), or a new key would never reach the Secret.
  secret_layout = jsonencode({
    keys       = sort(concat(keys(local.secret_outputs), ["direct-url", "admin-password"]))
    direct_url = "postgresql://${local.db_username}:@${coalesce(local.rds_host, "-")}:${local.db_port}/${local.db_name}?sslmode=require"
  })
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

  type             = "Opaque"
  data_wo          = local.secret_data
  data_wo_revision = local.secrets_revision

  lifecycle {
    # A 02-deps applied before issue 26 publishes no contract (no revision, no in-cluster
    # secrets): say so before anything is created.
    precondition {
      condition     = local.secrets_revision != null && local.project_public_key != null
      error_message = "langfuse-deps publishes no app_secrets_revision or project_public_key (its LFK8S_DEPS_CONTRACT variable): apply 02-deps (it generates every secret) before 03-app."
    }
    # The contract is written during 02-deps' apply, its outputs after Terraform Cloud has processed
    # the new state: right after a rotation the ephemeral read may still return the previous
    # secrets (or none) under the new revision, which the provider would never send again.
    precondition {
      condition     = try(ephemeral.tfe_outputs.deps.nonsensitive_values.app_secrets_revision, null) == try(local.deps.app_secrets_revision, null) && alltrue([for key, value in local.secret_data : value != null])
      error_message = "langfuse-deps' outputs do not match its LFK8S_DEPS_CONTRACT variable yet (Terraform Cloud may still be processing its last state, or 02-deps' apply did not finish): retry in a minute, or apply 02-deps first."
    }
  }
}
