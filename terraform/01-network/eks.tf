locals {
  # Stories say 1.35 (decision 1): in EKS standard support until 2027-03. A bump is this one line.
  kubernetes_version = "1.35"

  # The module's default types, spelled out because each costs log ingestion (README, Cost):
  # dropping "audit" saves the most.
  cluster_log_types = ["audit", "api", "authenticator"]
}

# EKS with IRSA, a public endpoint and 2x t3.medium in the public subnets (FR2-FR4, NFR5).
module "eks" {
  source  = "terraform-aws-modules/eks/aws"
  version = "~> 21.15"

  # false pauses the stack (Journey 3): every cluster resource goes, outputs become null.
  create = var.cluster_enabled

  name               = local.name
  kubernetes_version = local.kubernetes_version

  # STANDARD: when 1.35 leaves standard support (2027-03-27) EKS upgrades the control plane
  # instead of moving it to extended support, billed $0.60/h instead of $0.10/h (decision 19).
  upgrade_policy = {
    support_type = "STANDARD"
  }

  # The log group is the workspace's (logs.tf), so a pause does not delete it. Naming it in a tag
  # also orders it: created before the cluster starts logging, deleted after the cluster.
  enabled_log_types           = local.cluster_log_types
  create_cloudwatch_log_group = false
  cluster_tags = {
    ControlPlaneLogGroup = aws_cloudwatch_log_group.eks.name
  }

  vpc_id     = module.vpc.vpc_id
  subnet_ids = module.vpc.public_subnets

  # The public endpoint is how the operator's machine reaches the cluster (local execution, NFR5);
  # the nodes use the private endpoint (the module's default), so narrowing the CIDRs spares them.
  endpoint_public_access       = true
  endpoint_public_access_cidrs = var.cluster_endpoint_public_access_cidrs
  enable_irsa                  = true

  # The operator who applies gets cluster-admin, so kubectl works with the same .env keys.
  enable_cluster_creator_admin_permissions = true

  # The module's secrets-encryption KMS key outlives a destroy in PendingDeletion (no charge, still
  # tagged): 7 days, the minimum AWS allows, instead of the default 30.
  kms_key_deletion_window_in_days = 7

  # 21.x installs no default addons (decision 10); vpc-cni must exist before the nodes join.
  addons = {
    vpc-cni = {
      before_compute = true
      # NetworkPolicy enforcement (issue 26 item 1, docs/security.md): the addon's node agent (the
      # aws-eks-nodeagent container of aws-node, on by default) filters each pod's traffic with eBPF
      # on its host-side veth, and EKS's network policy controller resolves the policies 03-app
      # creates. A string, as the addon's schema wants. Standard mode (the default) is kept: a new
      # pod is open for the moment until its policies are in place; strict mode would start every
      # pod of the cluster, CoreDNS and the EBS CSI driver included, with nothing allowed.
      configuration_values = jsonencode({
        enableNetworkPolicy = "true"
      })
    }
    kube-proxy = {}
    coredns    = {}
    aws-ebs-csi-driver = {
      service_account_role_arn = module.ebs_csi_irsa.arn
      # EKS >= 1.30 ships no default StorageClass, and the addon's own (ebs-csi-default-sc) stays off:
      # the chart's class takes no parameters (defaultStorageClass has only `enabled`), so it would be
      # an unencrypted default. 03-app's encrypted gp3-encrypted class is the only default (issue 26
      # item 6); while 03-app is paused there is none, and nothing else asks for a volume then.
      # The volumes it creates carry the Project tag (default_tags do not reach them), so the pause and
      # the teardown sweep can see a volume left behind.
      configuration_values = jsonencode({
        defaultStorageClass = {
          enabled = false
        }
        controller = {
          extraVolumeTags = {
            Project = "langfuse-k8s-cluster"
          }
        }
      })
    }
  }

  eks_managed_node_groups = {
    default = {
      ami_type       = "AL2023_x86_64_STANDARD"
      instance_types = ["t3.medium"]
      capacity_type  = var.node_capacity_type

      min_size     = 2
      max_size     = 2
      desired_size = 2

      subnet_ids = module.vpc.public_subnets

      # Encrypted root volumes (the AWS-managed aws/ebs key: no cost). 20 GiB gp3 as the AMI's
      # own default, so the cost table does not move (decision 19).
      block_device_mappings = {
        xvda = {
          device_name = "/dev/xvda"
          ebs = {
            volume_size           = 20
            volume_type           = "gp3"
            encrypted             = true
            delete_on_termination = true
          }
        }
      }
    }
  }
}

# The EBS CSI controller's own IRSA role (Architecture: EBS CSI with a dedicated role).
module "ebs_csi_irsa" {
  source  = "terraform-aws-modules/iam/aws//modules/iam-role-for-service-accounts"
  version = "~> 6.4"

  # Lives and goes with the cluster: its trust names the cluster's OIDC issuer.
  create = var.cluster_enabled

  name = "${local.name}-ebs-csi"

  attach_ebs_csi_policy = true

  oidc_providers = {
    eks = {
      provider_arn               = module.eks.oidc_provider_arn
      namespace_service_accounts = ["kube-system:ebs-csi-controller-sa"]
    }
  }
}
