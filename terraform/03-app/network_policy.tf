# Only Langfuse reaches its stores (issue 26 item 1, docs/security.md). 01-network turns on the VPC
# CNI's enforcement (vpc-cni addon: enableNetworkPolicy); these policies say what is allowed in
# namespace langfuse. Everything not allowed here is dropped: default deny, ingress and egress.
# Exist while the cluster does, like the namespace they live in.

locals {
  # Pod labels of chart 1.5.19 (release "langfuse"), as its rendered pod templates carry them; the
  # chart tier checks every selector below against the rendered workloads.
  # Web and worker: the two Deployments of the chart itself (label app: web / worker).
  app_pod_labels = {
    "app.kubernetes.io/name"     = "langfuse"
    "app.kubernetes.io/instance" = "langfuse"
  }
  app_components = ["web", "worker"]

  # The stores: exactly the selectors of the Services web and worker connect through
  # (langfuse-clickhouse, langfuse-redis-primary). The VPC CNI's policy controller adds a Service's
  # cluster IP to an egress rule only when the rule's pod selector matches that Service's selector
  # (amazon-network-policy-controller-k8s, getMatchingServiceClusterIPs); any other selector would
  # let web reach the pods' own IPs but not the Service.
  clickhouse_pod_labels = {
    "app.kubernetes.io/instance"  = "langfuse"
    "app.kubernetes.io/name"      = "clickhouse"
    "app.kubernetes.io/component" = "clickhouse"
  }
  valkey_pod_labels = {
    "app.kubernetes.io/instance"  = "langfuse"
    "app.kubernetes.io/name"      = "redis"
    "app.kubernetes.io/component" = "primary"
  }

  # ClickHouse: 8123 HTTP (CLICKHOUSE_URL, every query) and 9000 native (CLICKHOUSE_MIGRATION_URL,
  # the migrations web runs at start). Its MySQL, PostgreSQL and interserver ports stay closed.
  clickhouse_ports = [8123, 9000]
  valkey_port      = 6379

  # RDS has no fixed IP, but it lives in 01-network's VPC (vpc.tf: 10.0.0.0/16) and, publicly
  # accessible, its endpoint resolves to its private address from inside the VPC (AWS: RDS
  # PubliclyAccessible). 5432 to the VPC, nowhere else; the plan tier checks this CIDR against
  # 01-network's.
  vpc_cidr = "10.0.0.0/16"

  # CoreDNS of the EKS addon: pods labelled k8s-app=kube-dns in kube-system, behind Service kube-dns
  # (selector k8s-app=kube-dns, ports 53/UDP and 53/TCP).
  dns_pod_labels = {
    "k8s-app" = "kube-dns"
  }
}

# Nothing in, nothing out, for every pod of the namespace, unless a policy below allows it.
resource "kubernetes_network_policy_v1" "default_deny" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "default-deny"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {}
    policy_types = ["Ingress", "Egress"]
  }
}

# Every pod may ask CoreDNS, and only CoreDNS: web and worker find the stores and RDS by name, Jobs
# find STS and S3. ClickHouse and Valkey need no names, but one rule for the namespace reads more
# simply than four, and CoreDNS is no path to the stores.
resource "kubernetes_network_policy_v1" "dns" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "allow-dns"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {}
    policy_types = ["Egress"]

    egress {
      to {
        namespace_selector {
          match_labels = {
            "kubernetes.io/metadata.name" = "kube-system"
          }
        }
        pod_selector {
          match_labels = local.dns_pod_labels
        }
      }
      ports {
        port     = "53"
        protocol = "UDP"
      }
      ports {
        port     = "53"
        protocol = "TCP"
      }
    }
  }
}

# Web and worker: the stores, RDS, and HTTPS out. No ingress: the UI is reached only through
# `kubectl port-forward`, which does not cross the pod network (docs/security.md).
resource "kubernetes_network_policy_v1" "langfuse_app" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "langfuse-app"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {
      match_labels = local.app_pod_labels
      match_expressions {
        key      = "app"
        operator = "In"
        values   = local.app_components
      }
    }
    policy_types = ["Egress"]

    egress {
      to {
        pod_selector {
          match_labels = local.clickhouse_pod_labels
        }
      }
      dynamic "ports" {
        for_each = local.clickhouse_ports
        content {
          port     = tostring(ports.value)
          protocol = "TCP"
        }
      }
    }

    egress {
      to {
        pod_selector {
          match_labels = local.valkey_pod_labels
        }
      }
      ports {
        port     = tostring(local.valkey_port)
        protocol = "TCP"
      }
    }

    # RDS (FR11): PostgreSQL over TLS, to the VPC only.
    egress {
      to {
        ip_block {
          cidr = local.vpc_cidr
        }
      }
      ports {
        port     = tostring(local.db_port)
        protocol = "TCP"
      }
    }

    # HTTPS to any address: S3 (events, media, exports; FR12) and STS (IRSA's
    # AssumeRoleWithWebIdentity) have no fixed addresses and no VPC endpoint here (no NAT, public
    # subnets), and the LLM APIs of playground and evaluations are wherever their providers are.
    # Port 443 only: no IMDS (80), no other port anywhere.
    egress {
      to {
        ip_block {
          cidr = "0.0.0.0/0"
        }
      }
      ports {
        port     = "443"
        protocol = "TCP"
      }
    }
  }
}

# ClickHouse accepts web and worker on its HTTP and native ports, and nothing else.
resource "kubernetes_network_policy_v1" "clickhouse" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "langfuse-clickhouse-clients"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {
      match_labels = local.clickhouse_pod_labels
    }
    policy_types = ["Ingress"]

    ingress {
      from {
        pod_selector {
          match_labels = local.app_pod_labels
          match_expressions {
            key      = "app"
            operator = "In"
            values   = local.app_components
          }
        }
      }
      dynamic "ports" {
        for_each = local.clickhouse_ports
        content {
          port     = tostring(ports.value)
          protocol = "TCP"
        }
      }
    }
  }
}

# Valkey accepts web and worker on 6379, and nothing else (CVE-2025-49844 needs a network path).
resource "kubernetes_network_policy_v1" "valkey" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "langfuse-valkey-clients"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {
      match_labels = local.valkey_pod_labels
    }
    policy_types = ["Ingress"]

    ingress {
      from {
        pod_selector {
          match_labels = local.app_pod_labels
          match_expressions {
            key      = "app"
            operator = "In"
            values   = local.app_components
          }
        }
      }
      ports {
        port     = tostring(local.valkey_port)
        protocol = "TCP"
      }
    }
  }
}

# Pods of Jobs (the Job controller labels them batch.kubernetes.io/job-name): HTTPS out, nothing
# in the cluster. The chart runs none; the e2e suite's IRSA check (FR8) is one, writing to S3 with
# web-identity credentials from STS. Not the stores: those accept web and worker only.
resource "kubernetes_network_policy_v1" "jobs" {
  count = var.cluster_enabled ? 1 : 0

  metadata {
    name      = "jobs-https"
    namespace = kubernetes_namespace_v1.langfuse[0].metadata[0].name
    labels = {
      "app.kubernetes.io/part-of" = "langfuse-k8s-cluster"
    }
  }

  spec {
    pod_selector {
      match_expressions {
        key      = "batch.kubernetes.io/job-name"
        operator = "Exists"
      }
    }
    policy_types = ["Egress"]

    egress {
      to {
        ip_block {
          cidr = "0.0.0.0/0"
        }
      }
      ports {
        port     = "443"
        protocol = "TCP"
      }
    }
  }
}
