locals {
  cluster_log_group = "/aws/eks/${local.name}/cluster"
}

# The control-plane log group belongs to this workspace, not to the eks module, and is kept while
# the stack is paused (cluster_enabled = false). Deleting it on pause would not hold: EKS writes its
# last lines while the cluster is being deleted and re-creates a missing group by itself (outside
# Terraform, without retention), and the resume's create then fails with "already exists"
# (terraform-aws-eks issue 2763). Kept, it costs only the storage of logs already written, which
# expire after the retention below; nothing is ingested while paused.
# Settings are the ones the module used (retention 90 days, Name tag), so the move below is a no-op.
resource "aws_cloudwatch_log_group" "eks" {
  # checkov:skip=CKV_AWS_158: NFR6, a KMS key for the log group costs $1/month; CloudWatch encrypts log data at rest by default
  # checkov:skip=CKV_AWS_338: NFR6, the module's 90 days; a year of audit logs would be paid storage for a dev stack
  name              = local.cluster_log_group
  retention_in_days = 90

  tags = {
    Name = local.cluster_log_group
  }
}

moved {
  from = module.eks.aws_cloudwatch_log_group.this[0]
  to   = aws_cloudwatch_log_group.eks
}
