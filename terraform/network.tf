# The network the extract and load functions, the optional warehouse and the bastion live in
# (var.network, docs/network.md).
#
# "vpc" (the default): private subnets in two Availability Zones, egress through ONE NAT gateway
# whose Elastic IP is the only address ToteSys and an outside warehouse see (output egress_ip),
# and an S3 gateway endpoint on the private route tables, so S3 traffic never crosses the NAT.
# Terraform creates that VPC, or reuses one named by var.vpc_id (then that VPC's own NAT, or
# whatever its route tables point at, is the way out, and egress_ip is null).
#
# "public": the functions run outside any VPC and reach both databases over the internet from
# Lambda's changing public addresses; only for a warehouse you bring (create_warehouse is refused),
# and the functions then require verify-full TLS (ONYX_DB_MIN_SSLMODE, main.tf).
#
# The transform stays outside the VPC in both modes: it touches only S3 (and its own logs), never
# a database, so a VPC would add cold-start ENI work and NAT traffic and isolate nothing.

locals {
  in_vpc     = var.network == "vpc"
  create_vpc = local.in_vpc && var.vpc_id == null

  vpc_id                  = local.in_vpc ? (local.create_vpc ? aws_vpc.this[0].id : var.vpc_id) : null
  private_subnet_ids      = local.in_vpc ? (local.create_vpc ? aws_subnet.private[*].id : var.private_subnet_ids) : []
  private_route_table_ids = local.in_vpc ? (local.create_vpc ? aws_route_table.private[*].id : var.private_route_table_ids) : []

  # module.extract and module.load (main.tf): in the private subnets, behind the functions'
  # security group; null (outside any VPC) in public mode.
  function_vpc_config = local.in_vpc ? {
    subnet_ids         = local.private_subnet_ids
    security_group_ids = [aws_security_group.functions[0].id]
  } : null

  flow_log_group_name = "/aws/vpc/${var.name_prefix}-flow-logs"
}

# Public mode is a choice with a cost in exposure: say so in every plan and apply (a check block
# warns, it does not stop the run).
check "public_network_exposure" {
  assert {
    condition     = var.network != "public"
    error_message = "network = \"public\": the extract and load functions run outside any VPC and reach ToteSys and the warehouse over the internet from Lambda's changing public addresses, so both databases must accept PostgreSQL (5432) from the internet. The functions require sslmode verify-full (ONYX_DB_MIN_SSLMODE). network = \"vpc\" gives one fixed egress address instead (output egress_ip); see docs/network.md."
  }
}

# ------------------------------------------------------------------------------------------
# The created VPC (network = "vpc", vpc_id = null)
# ------------------------------------------------------------------------------------------
data "aws_availability_zones" "available" {
  count = local.create_vpc ? 1 : 0

  state = "available"

  # Regular zones only (no Local or Wavelength Zones, which need an opt-in).
  filter {
    name   = "opt-in-status"
    values = ["opt-in-not-required"]
  }
}

resource "aws_vpc" "this" {
  count = local.create_vpc ? 1 : 0

  cidr_block           = var.vpc_cidr
  enable_dns_support   = true
  enable_dns_hostnames = true

  tags = { Name = var.name_prefix }
}

# No rules: nothing that lands in the default security group by mistake can talk to anything.
resource "aws_default_security_group" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id
}

# Two private subnets (the first two quarters of vpc_cidr) in two zones: the functions' network
# interfaces, the warehouse (RDS needs two zones for its subnet group) and the bastion.
resource "aws_subnet" "private" {
  count = local.create_vpc ? 2 : 0

  vpc_id            = aws_vpc.this[0].id
  cidr_block        = cidrsubnet(var.vpc_cidr, 2, count.index)
  availability_zone = data.aws_availability_zones.available[0].names[count.index]

  tags = { Name = "${var.name_prefix}-private-${data.aws_availability_zones.available[0].names[count.index]}" }
}

# One small public subnet (the last /28 of a /20, /24 of a /16) holding only the NAT gateway.
# Nothing in it gets a public address on launch.
resource "aws_subnet" "public" {
  count = local.create_vpc ? 1 : 0

  vpc_id                  = aws_vpc.this[0].id
  cidr_block              = cidrsubnet(var.vpc_cidr, 8, 255)
  availability_zone       = data.aws_availability_zones.available[0].names[0]
  map_public_ip_on_launch = false

  tags = { Name = "${var.name_prefix}-public-nat" }
}

resource "aws_internet_gateway" "this" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = var.name_prefix }
}

# The egress address (output egress_ip): ToteSys and an outside warehouse allow exactly this one.
# It stays as long as the VPC does; re-creating the network (or switching to vpc_id) changes it.
resource "aws_eip" "nat" {
  count = local.create_vpc ? 1 : 0

  domain = "vpc"

  tags = { Name = "${var.name_prefix}-nat" }

  depends_on = [aws_internet_gateway.this]
}

# One NAT gateway, in one zone: the cheaper choice (docs/network.md, cost). If that zone fails,
# the functions cannot reach ToteSys or AWS's public endpoints until it is back; the warehouse
# (Multi-AZ) and S3 (gateway endpoint) are unaffected.
resource "aws_nat_gateway" "this" {
  count = local.create_vpc ? 1 : 0

  allocation_id     = aws_eip.nat[0].id
  subnet_id         = aws_subnet.public[0].id
  connectivity_type = "public"

  tags = { Name = var.name_prefix }

  depends_on = [aws_internet_gateway.this]
}

resource "aws_route_table" "public" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${var.name_prefix}-public" }
}

resource "aws_route" "public_internet" {
  count = local.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.public[0].id
  destination_cidr_block = "0.0.0.0/0"
  gateway_id             = aws_internet_gateway.this[0].id
}

resource "aws_route_table_association" "public" {
  count = local.create_vpc ? 1 : 0

  subnet_id      = aws_subnet.public[0].id
  route_table_id = aws_route_table.public[0].id
}

resource "aws_route_table" "private" {
  count = local.create_vpc ? 1 : 0

  vpc_id = aws_vpc.this[0].id

  tags = { Name = "${var.name_prefix}-private" }
}

resource "aws_route" "private_nat" {
  count = local.create_vpc ? 1 : 0

  route_table_id         = aws_route_table.private[0].id
  destination_cidr_block = "0.0.0.0/0"
  nat_gateway_id         = aws_nat_gateway.this[0].id
}

resource "aws_route_table_association" "private" {
  count = local.create_vpc ? 2 : 0

  subnet_id      = aws_subnet.private[count.index].id
  route_table_id = aws_route_table.private[0].id
}

# Flow logs of the created VPC (who talked to what, accepted and rejected), encrypted with the
# stack's key. A reused VPC keeps whatever flow logs its owner runs.
resource "aws_cloudwatch_log_group" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name              = local.flow_log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.onyx.arn
}

data "aws_iam_policy_document" "flow_logs_assume" {
  statement {
    sid     = "VpcFlowLogsAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["vpc-flow-logs.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "aws:SourceAccount"
      values   = [local.account_id]
    }

    condition {
      test     = "ArnLike"
      variable = "aws:SourceArn"
      values   = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc-flow-log/*"]
    }
  }
}

data "aws_iam_policy_document" "flow_logs" {
  statement {
    sid       = "WriteFlowLogs"
    actions   = ["logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:${local.flow_log_group_name}:*"]
  }

  statement {
    sid       = "FindTheLogGroup"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name               = "${var.name_prefix}-vpc-flow-logs"
  path               = local.iam_path
  description        = "Lets VPC Flow Logs write the Onyx VPC's flow logs to CloudWatch Logs"
  assume_role_policy = data.aws_iam_policy_document.flow_logs_assume.json

  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy" "flow_logs" {
  count = local.create_vpc ? 1 : 0

  name   = "write-flow-logs"
  role   = aws_iam_role.flow_logs[0].id
  policy = data.aws_iam_policy_document.flow_logs.json
}

resource "aws_flow_log" "vpc" {
  count = local.create_vpc ? 1 : 0

  vpc_id                   = aws_vpc.this[0].id
  traffic_type             = "ALL"
  log_destination_type     = "cloud-watch-logs"
  log_destination          = aws_cloudwatch_log_group.flow_logs[0].arn
  iam_role_arn             = aws_iam_role.flow_logs[0].arn
  max_aggregation_interval = 600
}

# ------------------------------------------------------------------------------------------
# A reused VPC (network = "vpc", vpc_id set): checked, not changed
# ------------------------------------------------------------------------------------------
data "aws_subnet" "private" {
  for_each = local.in_vpc && !local.create_vpc ? toset(var.private_subnet_ids) : toset([])

  id = each.value

  lifecycle {
    postcondition {
      condition     = self.vpc_id == var.vpc_id
      error_message = "Subnet ${each.value} is not in vpc_id ${coalesce(var.vpc_id, "-")}: private_subnet_ids must be subnets of that VPC."
    }
  }
}

# ------------------------------------------------------------------------------------------
# Both modes with a VPC: S3 without the NAT, and the functions' security group
# ------------------------------------------------------------------------------------------

# S3 through the gateway endpoint (free; no NAT data charge for the buckets' traffic). Its policy
# is the default (full access): it must also carry AWS's own buckets (SSM agent updates, Amazon
# Linux repositories) for the bastion; the functions' IAM policies are what limit the buckets.
# A reused VPC whose private route tables already route S3 to a gateway endpoint (a route table
# takes one per service) sets reuse_s3_endpoint = true.
resource "aws_vpc_endpoint" "s3" {
  count = local.in_vpc && (local.create_vpc || !var.reuse_s3_endpoint) ? 1 : 0

  vpc_id            = local.vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = local.private_route_table_ids

  tags = { Name = "${var.name_prefix}-s3" }

  lifecycle {
    precondition {
      condition     = length(local.private_route_table_ids) > 0
      error_message = "private_route_table_ids is empty: the S3 gateway endpoint would be in no route table. List the route tables of private_subnet_ids, or set reuse_s3_endpoint = true when they already route S3 to a gateway endpoint."
    }
  }
}

# The extract and load functions' network interfaces: no inbound rule at all; out only to
# PostgreSQL (ToteSys, an outside warehouse, the created one) and to HTTPS (Secrets Manager,
# CloudWatch, SQS through the NAT; S3 through the gateway endpoint, whose addresses 0.0.0.0/0
# covers).
resource "aws_security_group" "functions" {
  #checkov:skip=CKV2_AWS_5:Attached to module.extract and module.load through local.function_vpc_config (their vpc_config); checkov's graph does not follow a local object into the module's dynamic block. tests/terraform_network.rs checks the attachment.
  count = local.in_vpc ? 1 : 0

  name        = "${var.name_prefix}-functions"
  description = "Onyx extract and load functions: no inbound; out to PostgreSQL and HTTPS only"
  vpc_id      = local.vpc_id

  lifecycle {
    precondition {
      condition = local.create_vpc || (
        length(var.private_subnet_ids) >= 2 &&
        length(distinct([for subnet in data.aws_subnet.private : subnet.availability_zone])) >= 2
      )
      error_message = "With vpc_id set, private_subnet_ids must name at least two private subnets of that VPC in different Availability Zones (and their route tables must reach the internet through your NAT)."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "functions_to_databases" {
  for_each = local.in_vpc ? toset(var.database_egress_cidr_blocks) : toset([])

  security_group_id = aws_security_group.functions[0].id
  description       = "PostgreSQL to ToteSys and an outside warehouse"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "functions_to_https" {
  count = local.in_vpc ? 1 : 0

  security_group_id = aws_security_group.functions[0].id
  description       = "HTTPS to AWS APIs (through the NAT; S3 through its gateway endpoint)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}
