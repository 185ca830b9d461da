locals {
  name = "langfuse"
  azs  = slice(data.aws_availability_zones.available.names, 0, 2)
}

# Public subnets only and no NAT gateway: the cheapest layout that works (FR1, NFR7).
module "vpc" {
  source  = "terraform-aws-modules/vpc/aws"
  version = "~> 6.6"

  name = local.name
  cidr = "10.0.0.0/16"

  azs            = local.azs
  public_subnets = ["10.0.0.0/20", "10.0.16.0/20"]

  enable_nat_gateway      = false
  enable_dns_hostnames    = true
  enable_dns_support      = true
  map_public_ip_on_launch = true

  # Lets a future AWS load balancer controller find the subnets (Phase 2 ingress).
  public_subnet_tags = {
    "kubernetes.io/role/elb" = 1
  }
}
