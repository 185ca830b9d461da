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

resource "aws_vpc_security_group_ingress_rule" "rds_from_anywhere" {
  security_group_id = aws_security_group.rds.id
  description       = "PostgreSQL from the operator's machine (public by design, NFR3)"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = "0.0.0.0/0"
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
  # asks for (decision 15; sslmode=require is the client's side). Dynamic, no reboot, no cost.
  parameters = [
    {
      name  = "rds.force_ssl"
      value = "1"
    },
  ]
}
