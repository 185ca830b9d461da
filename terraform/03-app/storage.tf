# Encrypted EBS volumes for the ClickHouse (trace content) and Valkey PVCs at no extra cost: the
# AWS-managed aws/ebs key. The EBS CSI addon's default class (01-network) sets no encryption, so
# the chart's global.defaultStorageClass names this one. Exists while the cluster does.
resource "kubernetes_storage_class_v1" "gp3_encrypted" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name = "gp3-encrypted"
  }

  storage_provisioner    = "ebs.csi.aws.com"
  reclaim_policy         = "Delete"
  volume_binding_mode    = "WaitForFirstConsumer"
  allow_volume_expansion = true

  parameters = {
    type      = "gp3"
    encrypted = "true"
  }
}
