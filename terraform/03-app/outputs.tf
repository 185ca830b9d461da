output "namespace" {
  description = "Kubernetes namespace of the Langfuse release (null while paused)"
  value       = one(helm_release.langfuse[*].namespace)
}

output "port_forward_commands" {
  description = "kubectl port-forward commands for the Langfuse UI, ClickHouse and Redis (FR19-FR21)"
  value = {
    langfuse_ui = "kubectl port-forward svc/langfuse-web -n ${local.namespace} 3000:3000"
    clickhouse  = "kubectl port-forward svc/langfuse-clickhouse -n ${local.namespace} 8123:8123"
    redis       = "kubectl port-forward svc/langfuse-redis-primary -n ${local.namespace} 6379:6379"
  }
}

output "health_url" {
  description = "Health endpoint to check through the UI port-forward (FR22)"
  value       = "http://localhost:3000/api/public/health"
}

output "project_public_key" {
  description = "Public API key of the project created by headless init"
  value       = local.project_public_key
}

output "project_id" {
  description = "ID of the project created by headless init"
  value       = local.project_id
}

output "org_id" {
  description = "ID of the organization created by headless init"
  value       = local.org_id
}
