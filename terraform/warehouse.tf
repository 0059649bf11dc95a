# Optional private RDS PostgreSQL warehouse (create_warehouse = true).
#
# The instance lives in the stack's private subnets (network.tf; network = "vpc" is required)
# and is never publicly accessible. Its security group admits PostgreSQL from the extract and
# load functions' group, from the bastion's (`make tunnel`) and from what
# warehouse_allowed_cidr_blocks / warehouse_allowed_security_group_ids name (default nothing).
# The functions reach S3 through the VPC's gateway endpoint and Secrets Manager through the NAT.
# The master password is generated, stored and rotated by RDS (manage_master_user_password),
# so it never appears in Terraform code or state. The loader's own credentials go into the
# warehouse secret with `make secrets` (docs/deploy.md).

locals {
  warehouse_count      = var.create_warehouse ? 1 : 0
  warehouse_identifier = "${var.name_prefix}-warehouse"
  warehouse_pg_family  = "postgres${split(".", var.warehouse_engine_version)[0]}"
}

resource "aws_db_subnet_group" "warehouse" {
  count = local.warehouse_count

  name        = local.warehouse_identifier
  description = "Private subnets of the Onyx warehouse"
  subnet_ids  = local.private_subnet_ids

  lifecycle {
    precondition {
      condition     = var.network == "vpc"
      error_message = "create_warehouse needs network = \"vpc\": the warehouse Terraform creates is private (never publicly accessible) and lives in the stack's private subnets. With network = \"public\", bring your own warehouse (docs/network.md)."
    }
  }
}

# ------------------------------------------------------------------------------------------
# Network: database <- functions, bastion, the allowed_* variables
# ------------------------------------------------------------------------------------------
resource "aws_security_group" "warehouse" {
  count = local.warehouse_count

  name        = "${local.warehouse_identifier}-db"
  description = "Onyx warehouse: PostgreSQL from the functions, the bastion and the allowed networks only"
  vpc_id      = local.vpc_id
}

resource "aws_vpc_security_group_ingress_rule" "warehouse_from_functions" {
  # In public mode the plan stops at the subnet group's precondition instead.
  count = var.create_warehouse && local.in_vpc ? 1 : 0

  security_group_id            = aws_security_group.warehouse[0].id
  description                  = "PostgreSQL from the extract and load functions"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.functions[0].id
}

resource "aws_vpc_security_group_ingress_rule" "warehouse_from_bastion" {
  count = local.create_bastion && var.create_warehouse ? 1 : 0

  security_group_id            = aws_security_group.warehouse[0].id
  description                  = "PostgreSQL from the bastion (make tunnel)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.bastion[0].id
}

# Other ways in (a VPN range, a peered network, a Power BI on-premises data gateway in the VPC):
# only what the variables name. Default none: use the bastion (`make tunnel`).
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

# The functions' way to the warehouse, whatever database_egress_cidr_blocks says.
resource "aws_vpc_security_group_egress_rule" "functions_to_warehouse" {
  # In public mode the plan stops at the subnet group's precondition instead.
  count = var.create_warehouse && local.in_vpc ? 1 : 0

  security_group_id            = aws_security_group.functions[0].id
  description                  = "PostgreSQL to the warehouse"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.warehouse[0].id
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
  path               = local.iam_path
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
  publicly_accessible    = false
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
