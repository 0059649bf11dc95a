# Optional private RDS PostgreSQL warehouse (create_warehouse = true).
#
# The instance lives in existing private subnets with no public address. The load function is
# attached to the same subnets and reaches the processed bucket through an S3 gateway endpoint
# and Secrets Manager through an interface endpoint, so no NAT gateway is needed.
# The master password is generated, stored and rotated by RDS (manage_master_user_password),
# so it never appears in Terraform code or state. The loader's own credentials go into the
# warehouse secret with `make secrets` (docs/deploy.md).

locals {
  warehouse_count      = var.create_warehouse ? 1 : 0
  warehouse_identifier = "${var.name_prefix}-warehouse"
  warehouse_pg_family  = "postgres${split(".", var.warehouse_engine_version)[0]}"

  # VPC endpoints for the load function: created here, or the VPC's own reused
  # (warehouse_reuse_vpc_endpoints; a VPC allows one S3 gateway endpoint per route table and one
  # private-DNS endpoint per service, so a VPC that has them cannot take a second).
  endpoints_count       = var.create_warehouse && !var.warehouse_reuse_vpc_endpoints ? 1 : 0
  reused_endpoint_count = var.create_warehouse && var.warehouse_reuse_vpc_endpoints ? 1 : 0
  s3_prefix_list_id = var.create_warehouse ? (
    var.warehouse_reuse_vpc_endpoints ? data.aws_vpc_endpoint.s3[0].prefix_list_id : aws_vpc_endpoint.s3[0].prefix_list_id
  ) : null
  vpc_dns_ok = var.create_warehouse ? (
    data.aws_vpc.warehouse[0].enable_dns_support && data.aws_vpc.warehouse[0].enable_dns_hostnames
  ) : true
  vpc_dns_message = "The VPC ${coalesce(var.warehouse_vpc_id, "-")} needs enableDnsSupport and enableDnsHostnames: the load function finds Secrets Manager through the interface endpoint's private DNS name (aws ec2 modify-vpc-attribute --vpc-id ... --enable-dns-support / --enable-dns-hostnames)."
}

data "aws_vpc" "warehouse" {
  count = local.warehouse_count

  id = var.warehouse_vpc_id
}

# The VPC's existing endpoints (warehouse_reuse_vpc_endpoints = true). Terraform stops at plan
# when one is missing.
data "aws_vpc_endpoint" "s3" {
  count = local.reused_endpoint_count

  vpc_id       = var.warehouse_vpc_id
  service_name = "com.amazonaws.${local.region}.s3"

  filter {
    name   = "vpc-endpoint-type"
    values = ["Gateway"]
  }
}

data "aws_vpc_endpoint" "secretsmanager" {
  count = local.reused_endpoint_count

  vpc_id       = var.warehouse_vpc_id
  service_name = "com.amazonaws.${local.region}.secretsmanager"

  lifecycle {
    precondition {
      condition     = local.vpc_dns_ok
      error_message = local.vpc_dns_message
    }
    postcondition {
      condition     = self.private_dns_enabled
      error_message = "The existing Secrets Manager endpoint has private DNS off: the load function would reach the public endpoint, which a private subnet cannot."
    }
  }
}

resource "aws_db_subnet_group" "warehouse" {
  count = local.warehouse_count

  name        = local.warehouse_identifier
  description = "Private subnets of the Onyx warehouse"
  subnet_ids  = var.warehouse_subnet_ids

  lifecycle {
    precondition {
      condition     = var.warehouse_vpc_id != null && length(var.warehouse_subnet_ids) >= 2
      error_message = "create_warehouse needs warehouse_vpc_id and at least two warehouse_subnet_ids in different Availability Zones."
    }
  }
}

# ------------------------------------------------------------------------------------------
# Network: database <- load function -> VPC endpoints
# ------------------------------------------------------------------------------------------
resource "aws_security_group" "warehouse" {
  count = local.warehouse_count

  name        = "${local.warehouse_identifier}-db"
  description = "Onyx warehouse: PostgreSQL from the load function only"
  vpc_id      = var.warehouse_vpc_id
}

resource "aws_security_group" "load" {
  #checkov:skip=CKV2_AWS_5:Attached to the load function through module.load's vpc_config. With the default create_warehouse = false (count 0) checkov's graph has no edge to follow; the checkov pass with .ci/checkov-warehouse.tfvars sees the attachment.
  count = local.warehouse_count

  name        = "${var.name_prefix}-load-lambda"
  description = "Onyx load function: to the warehouse, S3 and Secrets Manager only"
  vpc_id      = var.warehouse_vpc_id
}

resource "aws_security_group" "endpoints" {
  count = local.endpoints_count

  name        = "${var.name_prefix}-vpc-endpoints"
  description = "Onyx interface VPC endpoints: HTTPS from the load function only"
  vpc_id      = var.warehouse_vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "warehouse_from_load" {
  count = local.warehouse_count

  security_group_id            = aws_security_group.warehouse[0].id
  description                  = "PostgreSQL from the load function"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.load[0].id
}

# The way in for people and tools (the admin step, Power BI, analysts): only what the variables
# name. Default none; docs/deploy.md describes SSM port forwarding through an instance in
# warehouse_allowed_security_group_ids.
resource "aws_vpc_security_group_ingress_rule" "warehouse_from_cidr" {
  for_each = var.create_warehouse ? toset(var.warehouse_allowed_cidr_blocks) : toset([])

  security_group_id = aws_security_group.warehouse[0].id
  description       = "PostgreSQL (TLS only) from an allowed network"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_ingress_rule" "warehouse_from_security_group" {
  for_each = var.create_warehouse ? toset(var.warehouse_allowed_security_group_ids) : toset([])

  security_group_id            = aws_security_group.warehouse[0].id
  description                  = "PostgreSQL (TLS only) from an allowed security group"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_egress_rule" "load_to_warehouse" {
  count = local.warehouse_count

  security_group_id            = aws_security_group.load[0].id
  description                  = "PostgreSQL to the warehouse"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.warehouse[0].id
}

resource "aws_vpc_security_group_egress_rule" "load_to_endpoints" {
  count = local.endpoints_count

  security_group_id            = aws_security_group.load[0].id
  description                  = "HTTPS to the Secrets Manager endpoint"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.endpoints[0].id
}

resource "aws_vpc_security_group_egress_rule" "load_to_s3" {
  count = local.warehouse_count

  security_group_id = aws_security_group.load[0].id
  description       = "HTTPS to S3 through the gateway endpoint"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  prefix_list_id    = local.s3_prefix_list_id
}

# Reused interface endpoint: HTTPS to its security groups, and those admit the load function.
resource "aws_vpc_security_group_egress_rule" "load_to_existing_endpoint" {
  for_each = local.reused_endpoint_count == 1 ? toset(data.aws_vpc_endpoint.secretsmanager[0].security_group_ids) : toset([])

  security_group_id            = aws_security_group.load[0].id
  description                  = "HTTPS to the existing Secrets Manager endpoint"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = each.value
}

resource "aws_vpc_security_group_ingress_rule" "existing_endpoint_from_load" {
  for_each = local.reused_endpoint_count == 1 ? toset(data.aws_vpc_endpoint.secretsmanager[0].security_group_ids) : toset([])

  security_group_id            = each.value
  description                  = "HTTPS from the Onyx load function"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.load[0].id
}

resource "aws_vpc_security_group_ingress_rule" "endpoints_from_load" {
  count = local.endpoints_count

  security_group_id            = aws_security_group.endpoints[0].id
  description                  = "HTTPS from the load function"
  ip_protocol                  = "tcp"
  from_port                    = 443
  to_port                      = 443
  referenced_security_group_id = aws_security_group.load[0].id
}

resource "aws_vpc_endpoint" "s3" {
  count = local.endpoints_count

  vpc_id            = var.warehouse_vpc_id
  service_name      = "com.amazonaws.${local.region}.s3"
  vpc_endpoint_type = "Gateway"
  route_table_ids   = var.warehouse_route_table_ids

  lifecycle {
    precondition {
      condition     = length(var.warehouse_route_table_ids) > 0
      error_message = "warehouse_route_table_ids is empty: the S3 gateway endpoint would be in no route table and the load function could not reach the processed bucket. List the route tables of warehouse_subnet_ids, or set warehouse_reuse_vpc_endpoints = true to use the VPC's own endpoint."
    }
  }
}

resource "aws_vpc_endpoint" "secretsmanager" {
  count = local.endpoints_count

  vpc_id              = var.warehouse_vpc_id
  service_name        = "com.amazonaws.${local.region}.secretsmanager"
  vpc_endpoint_type   = "Interface"
  subnet_ids          = var.warehouse_subnet_ids
  security_group_ids  = [aws_security_group.endpoints[0].id]
  private_dns_enabled = true

  lifecycle {
    precondition {
      condition     = local.vpc_dns_ok
      error_message = local.vpc_dns_message
    }
  }
}

# ------------------------------------------------------------------------------------------
# Database
# ------------------------------------------------------------------------------------------
resource "aws_db_parameter_group" "warehouse" {
  count = local.warehouse_count

  # A prefix, not a fixed name: create_before_destroy makes the replacement before deleting the
  # old group, and two groups cannot share a name.
  name_prefix = "${local.warehouse_identifier}-"
  family      = local.warehouse_pg_family
  description = "Onyx warehouse: TLS only, DDL and slow statements logged"

  parameter {
    name  = "rds.force_ssl"
    value = "1"
  }

  parameter {
    name  = "log_statement"
    value = "ddl"
  }

  parameter {
    name  = "log_min_duration_statement"
    value = "1000"
  }

  lifecycle {
    create_before_destroy = true
  }
}

# RDS exports its logs here; created first so they are encrypted and expire.
resource "aws_cloudwatch_log_group" "warehouse" {
  for_each = var.create_warehouse ? toset(["postgresql", "upgrade"]) : toset([])

  name              = "/aws/rds/instance/${local.warehouse_identifier}/${each.key}"
  retention_in_days = var.log_retention_days
  kms_key_id        = aws_kms_key.onyx.arn
}

data "aws_iam_policy_document" "rds_monitoring_assume" {
  statement {
    sid     = "RdsMonitoringAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["monitoring.rds.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "rds_monitoring" {
  count = local.warehouse_count

  name               = "${local.warehouse_identifier}-monitoring"
  description        = "Lets RDS Enhanced Monitoring publish OS metrics of the Onyx warehouse"
  assume_role_policy = data.aws_iam_policy_document.rds_monitoring_assume.json

  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "rds_monitoring" {
  count = local.warehouse_count

  role       = aws_iam_role.rds_monitoring[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
}

resource "aws_db_instance" "warehouse" {
  count = local.warehouse_count

  identifier     = local.warehouse_identifier
  engine         = "postgres"
  engine_version = var.warehouse_engine_version
  instance_class = var.warehouse_instance_class

  db_name                       = var.warehouse_db_name
  username                      = var.warehouse_master_username
  manage_master_user_password   = true
  master_user_secret_kms_key_id = aws_kms_key.onyx.arn

  # IAM database authentication is switched on but not required: the loader signs in with the
  # password from the warehouse secret.
  iam_database_authentication_enabled = true

  allocated_storage     = var.warehouse_allocated_storage
  max_allocated_storage = var.warehouse_allocated_storage * 5
  storage_type          = "gp3"
  storage_encrypted     = true
  kms_key_id            = aws_kms_key.onyx.arn

  db_subnet_group_name   = aws_db_subnet_group.warehouse[0].name
  vpc_security_group_ids = [aws_security_group.warehouse[0].id]
  publicly_accessible    = var.warehouse_publicly_accessible
  multi_az               = var.warehouse_multi_az
  parameter_group_name   = aws_db_parameter_group.warehouse[0].name
  ca_cert_identifier     = "rds-ca-rsa2048-g1"

  backup_retention_period = var.warehouse_backup_retention_days
  copy_tags_to_snapshot   = true
  deletion_protection     = var.warehouse_deletion_protection
  skip_final_snapshot     = false
  # Unique per instance: a warehouse destroyed, re-created and destroyed again would otherwise
  # collide with the first final snapshot. Fixed when the instance is created (ignore_changes).
  final_snapshot_identifier = "${local.warehouse_identifier}-final-${formatdate("YYYYMMDDhhmmss", timestamp())}"

  auto_minor_version_upgrade = true
  apply_immediately          = false

  monitoring_interval                   = 60
  monitoring_role_arn                   = aws_iam_role.rds_monitoring[0].arn
  performance_insights_enabled          = true
  performance_insights_kms_key_id       = aws_kms_key.onyx.arn
  performance_insights_retention_period = 7
  enabled_cloudwatch_logs_exports       = ["postgresql", "upgrade"]

  lifecycle {
    ignore_changes = [final_snapshot_identifier]
  }

  depends_on = [aws_cloudwatch_log_group.warehouse, aws_iam_role_policy_attachment.rds_monitoring]
}
