# The non-secret half of this workspace's contract, published where 03-app can read it without a
# secret beside it (issue 26). 03-app needs these values in ordinary arguments (Helm values, the
# PersistentVolume), which an ephemeral value cannot reach; and the tfe_outputs *data source*
# stores every output of the workspace it reads, sensitive ones included, in the reader's state
# (tfe 0.79.0's data source fills `values` with all outputs). So 03-app reads the secrets with the
# ephemeral tfe_outputs and these with the tfe_variables data source: one environment variable of
# this workspace, as JSON. Category env and local execution: no Terraform run ever reads it as a
# variable (the cloud backend skips workspace variables in local execution mode). It exists while
# this workspace's resources do; 03-app's reads are null-safe without it.

data "tfe_workspace" "this" {
  organization = var.tfc_organization
  name         = local.contract_workspace
}

locals {
  contract_workspace = "langfuse-deps"
  contract_variable  = "LFK8S_DEPS_CONTRACT"

  # The values of the non-sensitive outputs of the same names (outputs.tf), and the secrets' revision.
  contract = {
    rds_endpoint               = module.rds.db_instance_endpoint
    s3_bucket_name             = aws_s3_bucket.langfuse.bucket
    s3_bucket_region           = aws_s3_bucket.langfuse.region
    irsa_role_arn              = module.langfuse_irsa.arn
    project_public_key         = local.project_public_key
    clickhouse_volume_id       = aws_ebs_volume.clickhouse.id
    clickhouse_volume_zone     = aws_ebs_volume.clickhouse.availability_zone
    clickhouse_volume_size_gib = aws_ebs_volume.clickhouse.size
    app_secrets_revision       = local.app_secrets_revision
  }
}

resource "tfe_variable" "contract" {
  workspace_id = data.tfe_workspace.this.id
  key          = local.contract_variable
  value        = jsonencode(local.contract)
  category     = "env"
  sensitive    = false
  description  = "Non-secret outputs of langfuse-deps that langfuse-app reads (written by 02-deps' Terraform; do not edit)"
}
