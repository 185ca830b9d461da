# ClickHouse's data volume (decision 24): traces, observations, scores and dataset run items live
# in ClickHouse, so its volume is user data like RDS and S3. 02-deps owns it: a pause or a rebuild
# of 03-app (which binds it through a static PersistentVolume) keeps it; a teardown deletes it.
# It lives in one Availability Zone, that of 01-network's first public subnet; ClickHouse can only
# run on a node there (03-app's PersistentVolume carries the zone as node affinity).
# No subnet to read once 01-network is gone: a teardown that failed on 02-deps, then destroyed
# 01-network, destroys 02-deps from there (issue 24 item 5), and the volume's zone is ignored then.
data "aws_subnet" "clickhouse" {
  count = length(local.public_subnet_ids) > 0 ? 1 : 0

  id = local.public_subnet_ids[0]
}

resource "aws_ebs_volume" "clickhouse" {
  availability_zone = one(data.aws_subnet.clickhouse[*].availability_zone)
  size              = var.clickhouse_volume_size_gib
  type              = "gp3"
  # Only for moving the data of a stack deployed before this volume existed (docs/operations.md).
  snapshot_id = var.clickhouse_volume_snapshot_id
  # The AWS-managed aws/ebs key: the EBS CSI driver's role may attach volumes encrypted with it,
  # and it outlives every workspace (01-network's KMS key goes with the cluster).
  encrypted = true

  tags = {
    Name      = "langfuse-clickhouse-data"
    Component = "clickhouse"
  }

  lifecycle {
    # Replacing the volume would delete every trace and evaluation result: once made, its zone
    # and its origin stay (03-app reads the zone from this resource, not from the subnet), so
    # dropping the snapshot id after a move changes nothing.
    ignore_changes = [availability_zone, snapshot_id]

    precondition {
      condition     = length(local.public_subnet_ids) > 0
      error_message = "langfuse-network has no public subnets (public_subnet_ids is missing): apply 01-network first (order 01 -> 02 -> 03)."
    }
  }
}
