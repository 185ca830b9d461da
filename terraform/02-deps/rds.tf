locals {
  db_name     = "langfuse"
  db_username = "langfuse"
}

# Alphanumeric: Langfuse builds its connection URL without URL-encoding (decision 9, NFR2).
resource "random_password" "db" {
  length  = 32
  special = false
}

# 5432 from the EKS nodes and from anywhere: public RDS is a documented dev choice (FR6, NFR3),
# protected by the generated password and TLS (decision 15).
resource "aws_security_group" "rds" {
  name_prefix = "langfuse-rds-"
  description = "PostgreSQL 5432 from the EKS nodes and from anywhere (dev access, NFR3)"
  vpc_id      = local.vpc_id

  lifecycle {
    create_before_destroy = true
  }
}

# Only while the cluster exists (Journey 3 pause): AWS refuses to delete the node security group
# while another group's rule references it (DependencyViolation). The group id is checked too:
# before a destroy Terraform plans with failed postconditions as warnings only, and a rule with a
# null group would fail that plan.
resource "aws_vpc_security_group_ingress_rule" "rds_from_nodes" {
  count = var.cluster_enabled && local.node_security_group_id != null ? 1 : 0

  security_group_id            = aws_security_group.rds.id
  description                  = "PostgreSQL from the EKS nodes"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = local.node_security_group_id
}

# One rule per CIDR of rds_ingress_cidrs (0.0.0.0/0 unless the operator narrows it, NFR3), keyed by
# the CIDR so adding or removing one leaves the others in place.
resource "aws_vpc_security_group_ingress_rule" "rds_from_cidrs" {
  for_each = toset(var.rds_ingress_cidrs)

  security_group_id = aws_security_group.rds.id
  description       = "PostgreSQL from the operator's machine (public by design, NFR3)"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

# The single 0.0.0.0/0 rule of stacks applied before the variable: kept when the default stays.
moved {
  from = aws_vpc_security_group_ingress_rule.rds_from_anywhere
  to   = aws_vpc_security_group_ingress_rule.rds_from_cidrs["0.0.0.0/0"]
}

# PostgreSQL 16 on db.t4g.micro, public, deletable (FR5, FR6, FR9).
module "rds" {
  source  = "terraform-aws-modules/rds/aws"
  version = "~> 7.1"

  identifier = "langfuse"

  engine               = "postgres"
  engine_version       = "16"
  family               = "postgres16"
  major_engine_version = "16"
  instance_class       = "db.t4g.micro"

  allocated_storage = 20
  storage_encrypted = true

  db_name  = local.db_name
  username = local.db_username
  port     = 5432

  # Write-only password: module 7.x ignores it unless AWS-managed secrets are off (decision 9).
  manage_master_user_password = false
  password_wo                 = random_password.db.result
  password_wo_version         = 1

  create_db_subnet_group = true
  subnet_ids             = local.public_subnet_ids
  vpc_security_group_ids = [aws_security_group.rds.id]
  publicly_accessible    = true

  # Full teardown means zero cost (NFR8): no deletion protection, no final snapshot to pay for.
  deletion_protection = false
  skip_final_snapshot = true

  backup_retention_period = 1

  # RDS is public (NFR3): the server itself refuses connections without TLS, whatever a client
  # asks for (decision 15; sslmode=require is the client's side), and every attempt on 5432,
  # refused or not, becomes a line of the postgresql log, each session's end another with its
  # length (issue 26 item 6). All three are dynamic: no reboot.
  parameters = [
    {
      name  = "rds.force_ssl"
      value = "1"
    },
    {
      name  = "log_connections"
      value = "1"
    },
    {
      name  = "log_disconnections"
      value = "1"
    },
  ]

  # The postgresql log goes to /aws/rds/instance/langfuse/postgresql, a group the module creates
  # before the instance and deletes after it (full teardown, NFR8), with 01-network's 90 days.
  enabled_cloudwatch_logs_exports        = ["postgresql"]
  create_cloudwatch_log_group            = true
  cloudwatch_log_group_retention_in_days = 90
}
