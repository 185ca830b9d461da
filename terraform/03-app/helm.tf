locals {
  namespace     = "langfuse"
  chart_version = "1.5.19"

  # Headless init creates nothing without an org id, and no project without a project id (decision 13).
  org_id       = "langfuse"
  org_name     = "Langfuse"
  project_id   = "langfuse-default"
  project_name = "Default"

  # The database and user 02-deps creates.
  db_name     = "langfuse"
  db_username = "langfuse"
  db_port     = 5432

  # The images' user: uid and gid 1001 (nextjs in langfuse/langfuse, expressjs in
  # langfuse/langfuse-worker: web/Dockerfile and worker/Dockerfile of Langfuse).
  app_uid = 1001
}

# Namespace and release exist only while the cluster does (Journey 3 pause). The secrets that
# protect stored data live in 02-deps (decision 20), so a pause or a rebuild keeps them.
resource "kubernetes_namespace_v1" "langfuse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name = local.namespace
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
      # Pod Security Admission refuses any pod short of restricted (issue 26 item 6): web, worker,
      # ClickHouse, Valkey and the e2e IRSA Job (lfharness.stack.k8s.job_manifest) all pass it
      # (tests/unit/test_kube_psa_restricted.py, against a real kube-apiserver).
      "pod-security.kubernetes.io/enforce" = "restricted"
      "pod-security.kubernetes.io/warn"    = "restricted"
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

  # No secret in here: the values name the Secret and the storage class (their references also
  # order the release after both), never a value from them (decision 20).
  values = [
    templatefile("${path.module}/values.yaml.tpl", {
      secret_name   = kubernetes_secret_v1.langfuse[0].metadata[0].name
      storage_class = kubernetes_storage_class_v1.gp3_encrypted[0].metadata[0].name
      # The claim's reference also orders the release after the claim and its volume.
      clickhouse_claim = kubernetes_persistent_volume_claim_v1.clickhouse[0].metadata[0].name
      app_uid          = local.app_uid
      # The pods read the Secret only when they start, and Kubernetes restarts nothing when it
      # changes: its revision in the pod templates makes a changed secret roll them.
      secret_checksum = tostring(kubernetes_secret_v1.langfuse[0].data_wo_revision)

      db_host     = local.rds_host
      db_port     = local.db_port
      db_name     = local.db_name
      db_username = local.db_username

      s3_bucket_name   = local.s3_bucket_name
      s3_bucket_region = local.s3_bucket_region
      irsa_role_arn    = local.irsa_role_arn

      org_id             = local.org_id
      org_name           = local.org_name
      project_id         = local.project_id
      project_name       = local.project_name
      project_public_key = local.project_public_key
      admin_email        = var.langfuse_admin_email
      admin_name         = var.langfuse_admin_name
    })
  ]
}
