# Encrypted EBS volumes for the Valkey PVC (and any claim naming no class) at no extra cost: the
# AWS-managed aws/ebs key. The cluster's only default class (issue 26 item 6): 01-network turns
# the EBS CSI addon's unencrypted ebs-csi-default-sc off, so a claim naming no class lands here,
# and the chart's global.defaultStorageClass names it explicitly. Exists while 03-app is applied
# (paused: no default class, and nothing asks for a volume). ClickHouse's claim names its own
# static class, so the default is never filled into it.
resource "kubernetes_storage_class_v1" "gp3_encrypted" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name = "gp3-encrypted"
    annotations = {
      "storageclass.kubernetes.io/is-default-class" = "true"
    }
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

# ClickHouse's data (decision 24): the EBS volume 02-deps owns, bound statically so it outlives
# the release, the namespace and the cluster. Retain: deleting the claim or this object never
# deletes the volume. The zone affinity lets the scheduler place ClickHouse only where the volume
# can attach. The class name only pairs claim and volume (no StorageClass object has it), so no
# default class is filled into the claim and no provisioner ever makes a second volume.
locals {
  clickhouse_claim = "langfuse-clickhouse-data"
  clickhouse_class = "langfuse-clickhouse-static"
}

resource "kubernetes_persistent_volume_v1" "clickhouse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name = "langfuse-clickhouse-data"
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    capacity = {
      storage = "${local.clickhouse_volume_size_gib}Gi"
    }
    access_modes                     = ["ReadWriteOnce"]
    persistent_volume_reclaim_policy = "Retain"
    storage_class_name               = local.clickhouse_class

    # Only this namespace's claim may bind it.
    claim_ref {
      name      = local.clickhouse_claim
      namespace = local.namespace
    }

    node_affinity {
      required {
        node_selector_term {
          match_expressions {
            key      = "topology.kubernetes.io/zone"
            operator = "In"
            values   = [local.clickhouse_volume_zone]
          }
        }
      }
    }

    persistent_volume_source {
      csi {
        driver        = "ebs.csi.aws.com"
        volume_handle = local.clickhouse_volume_id
        # With an fsType the kubelet applies the pod's fsGroup (1001) to a fresh volume, whatever
        # fsGroupPolicy the EBS CSI driver declares: ClickHouse runs as uid 1001.
        fs_type = "ext4"
      }
    }
  }
}

resource "kubernetes_persistent_volume_claim_v1" "clickhouse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = local.clickhouse_claim
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
  }

  spec {
    access_modes       = ["ReadWriteOnce"]
    storage_class_name = local.clickhouse_class
    volume_name        = kubernetes_persistent_volume_v1.clickhouse[0].metadata[0].name

    resources {
      requests = {
        storage = "${local.clickhouse_volume_size_gib}Gi"
      }
    }
  }
}
