# The first 5 outputs below are the contract read by name from 03-app via tfe_outputs (FR17).

output "rds_endpoint" {
  description = "RDS endpoint as host:port (03-app strips the port)"
  value       = module.rds.db_instance_endpoint
}

output "rds_password" {
  description = "Generated password of the RDS master user"
  value       = random_password.db.result
  sensitive   = true
}

output "s3_bucket_name" {
  description = "Name of the Langfuse S3 bucket"
  value       = aws_s3_bucket.langfuse.bucket
}

output "s3_bucket_region" {
  description = "Region of the Langfuse S3 bucket"
  value       = aws_s3_bucket.langfuse.region
}

output "irsa_role_arn" {
  description = "ARN of the IAM role the Langfuse service account assumes for S3 (null while paused)"
  value       = module.langfuse_irsa.arn
}

# Added by decision 20: the secrets that protect stored data, read by 03-app via tfe_outputs.
# Sensitive, so 03-app reads them from `values`, never from `nonsensitive_values`.

output "salt" {
  description = "Langfuse SALT (hashes the project API keys)"
  value       = random_password.salt.result
  sensitive   = true
}

output "encryption_key" {
  description = "Langfuse ENCRYPTION_KEY, 64 hex characters (encrypts stored LLM connection keys)"
  value       = random_bytes.encryption_key.hex
  sensitive   = true
}

output "project_public_key" {
  description = "Public API key of the project created by headless init (not a secret: sent with every SDK request)"
  value       = local.project_public_key
}

output "project_secret_key" {
  description = "Secret API key of the project created by headless init"
  value       = local.project_secret_key
  sensitive   = true
}

# Added by decision 24: ClickHouse's volume, bound by 03-app through a static PersistentVolume.

output "clickhouse_volume_id" {
  description = "ID of ClickHouse's EBS volume (kept across pause and rebuild)"
  value       = aws_ebs_volume.clickhouse.id
}

output "clickhouse_volume_zone" {
  description = "Availability Zone of ClickHouse's EBS volume: ClickHouse runs only on a node in it"
  value       = aws_ebs_volume.clickhouse.availability_zone
}

output "clickhouse_volume_size_gib" {
  description = "Size in GiB of ClickHouse's EBS volume (the PersistentVolume's capacity)"
  value       = aws_ebs_volume.clickhouse.size
}

# Added by issue 26: the in-cluster secrets, generated here so that 03-app's state holds none, and
# the revision 03-app's Secret follows. 03-app reads the secrets through the ephemeral tfe_outputs.

output "nextauth_secret" {
  description = "NEXTAUTH_SECRET of Langfuse web (signs session cookies)"
  value       = random_password.nextauth_secret.result
  sensitive   = true
}

output "clickhouse_password" {
  description = "Password of ClickHouse's default user"
  value       = random_password.clickhouse.result
  sensitive   = true
}

output "redis_password" {
  description = "Password of Valkey (Langfuse's Redis)"
  value       = random_password.redis.result
  sensitive   = true
}

output "app_secrets_revision" {
  description = "Number that changes exactly when one of the secrets 03-app's Kubernetes Secret takes from here changes"
  value       = local.app_secrets_revision
}
