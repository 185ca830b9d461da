# The 5 outputs below are a contract read by name from 03-app via tfe_outputs (FR17).

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
