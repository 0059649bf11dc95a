variable "region" {
  description = "AWS region of the pipeline."
  type        = string
  default     = "eu-west-2"
}

variable "name_prefix" {
  description = "Prefix of every resource name (functions are <prefix>-extract, <prefix>-transform, <prefix>-load)."
  type        = string
  default     = "onyx"

  validation {
    condition     = can(regex("^[a-z][a-z0-9-]{1,20}$", var.name_prefix))
    error_message = "name_prefix must be 2-21 lowercase letters, digits or dashes, starting with a letter."
  }
}

variable "environment" {
  description = "Environment name, used in tags."
  type        = string
  default     = "prod"
}

variable "permissions_boundary_arn" {
  description = "Permission boundary every IAM role of this stack carries: terraform/bootstrap's permissions_boundary_arn output, which the deploy role may only create roles with. null (or empty): none, for an administrator's apply without the bootstrap roles."
  type        = string
  default     = null
}

variable "tags" {
  description = "Extra tags applied to every resource."
  type        = map(string)
  default     = {}
}

variable "bucket_name_suffix" {
  description = "Suffix making bucket names globally unique; null uses the AWS account ID."
  type        = string
  default     = null
}

variable "lambda_zip_dir" {
  description = "Directory holding <bin>/bootstrap.zip as written by `cargo lambda build --output-format zip`; null means ../target/lambda relative to this directory."
  type        = string
  default     = null
}

variable "schedule_expression" {
  description = "EventBridge schedule of the extract function: rate(N minutes) with N from 1 to 30, so the warehouse is never more than 30 minutes behind."
  type        = string
  default     = "rate(30 minutes)"

  validation {
    condition = (
      can(regex("^rate\\(([0-9]+) minutes?\\)$", var.schedule_expression)) &&
      try(tonumber(regex("^rate\\(([0-9]+) minutes?\\)$", var.schedule_expression)[0]) >= 1, false) &&
      try(tonumber(regex("^rate\\(([0-9]+) minutes?\\)$", var.schedule_expression)[0]) <= 30, false)
    )
    error_message = "schedule_expression must be rate(N minutes) with 1 <= N <= 30."
  }
}

variable "source_timezone" {
  description = "ONYX_SOURCE_TIMEZONE of the extract function: the IANA time zone ToteSys writes its timestamp columns in (e.g. Europe/London)."
  type        = string
  default     = "UTC"
}

variable "max_run_rows" {
  description = "ONYX_MAX_RUN_ROWS of the extract function: the most row versions one run carries. A larger first load or backlog arrives as consecutive runs (the extract continues at once), so every stage of every run stays well inside its function's timeout and memory."
  type        = number
  default     = 500000
  validation {
    condition     = var.max_run_rows >= 1000
    error_message = "max_run_rows must be at least 1000."
  }
}

variable "rust_log" {
  description = "RUST_LOG filter of every function."
  type        = string
  default     = "info"
}

variable "lambda_settings" {
  description = "Memory (MiB) and timeout (s) per function."
  type = map(object({
    memory_size = number
    timeout     = number
  }))
  default = {
    extract   = { memory_size = 512, timeout = 600 }
    transform = { memory_size = 1024, timeout = 600 }
    load      = { memory_size = 512, timeout = 600 }
  }

  validation {
    condition     = alltrue([for k in ["extract", "transform", "load"] : contains(keys(var.lambda_settings), k)])
    error_message = "lambda_settings must have entries for extract, transform and load."
  }
}

variable "reserved_concurrency" {
  description = "Concurrency reserved for each of the three functions; null (default) reserves none. AWS keeps at least 100 units of the account's quota unreserved, so reserving fails on an account whose quota is below 100 + 3 x this (new accounts often have 10). Correctness does not depend on it."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrency == null || try(var.reserved_concurrency >= 1, false)
    error_message = "reserved_concurrency must be null (no reservation) or at least 1."
  }
}

variable "log_retention_days" {
  description = "Retention of the functions' log groups, in days."
  type        = number
  default     = 365
}

variable "alarm_emails" {
  description = "E-mail addresses subscribed to the alarm topic; each must confirm the subscription from the mail AWS sends."
  type        = list(string)
  default     = []
}

variable "force_destroy_buckets" {
  description = "Let `terraform destroy` delete the buckets with everything in them. Set only to tear the pipeline down (docs/deploy.md)."
  type        = bool
  default     = false
}

variable "secret_recovery_window_days" {
  description = "Days a deleted secret can still be restored (0 deletes at once)."
  type        = number
  default     = 7
}

# ------------------------------------------------------------------------------------------
# Optional RDS PostgreSQL warehouse
# ------------------------------------------------------------------------------------------
variable "create_warehouse" {
  description = "Create a private RDS PostgreSQL warehouse and attach the load function to its VPC. false: the warehouse exists elsewhere and is reachable from Lambda."
  type        = bool
  default     = false
}

variable "warehouse_vpc_id" {
  description = "VPC of the warehouse (required when create_warehouse)."
  type        = string
  default     = null
}

variable "warehouse_subnet_ids" {
  description = "Private subnets (two or more Availability Zones) for the warehouse and the load function (required when create_warehouse)."
  type        = list(string)
  default     = []
}

variable "warehouse_route_table_ids" {
  description = "Route tables of those subnets, given the S3 gateway endpoint the load function reads the processed bucket through."
  type        = list(string)
  default     = []
}

variable "warehouse_allowed_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the Terraform-created warehouse on 5432 (an office, a VPN, a Power BI on-premises data gateway). Default none: reach it through SSM port forwarding (docs/deploy.md)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.warehouse_allowed_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "warehouse_allowed_cidr_blocks must be IPv4 CIDR blocks such as 203.0.113.0/24."
  }
}

variable "warehouse_allowed_security_group_ids" {
  description = "Security groups (in the warehouse's VPC) whose members may reach the Terraform-created warehouse on 5432: a bastion, an SSM-managed instance, a gateway. Default none."
  type        = list(string)
  default     = []
}

variable "warehouse_publicly_accessible" {
  description = "Give the Terraform-created warehouse a public endpoint (its subnets then need a route to an internet gateway). The parameter group forces TLS (rds.force_ssl = 1) either way; only warehouse_allowed_cidr_blocks get through the security group."
  type        = bool
  default     = false
}

variable "warehouse_reuse_vpc_endpoints" {
  description = "Use the VPC's existing S3 gateway endpoint and Secrets Manager interface endpoint (private DNS on) instead of creating them; the load function's security group is then admitted to that endpoint's security groups."
  type        = bool
  default     = false
}

variable "warehouse_connections_alarm_threshold" {
  description = "Alarm when the Terraform-created warehouse has more connections than this for 15 minutes (db.t4g.micro allows about 80)."
  type        = number
  default     = 60
}

variable "warehouse_instance_class" {
  description = "RDS instance class of the warehouse."
  type        = string
  default     = "db.t4g.micro"
}

variable "warehouse_allocated_storage" {
  description = "Initial storage of the warehouse in GiB (grows automatically up to 5x)."
  type        = number
  default     = 20
}

variable "warehouse_engine_version" {
  description = "PostgreSQL major version of the warehouse."
  type        = string
  default     = "17"
}

variable "warehouse_multi_az" {
  description = "Run a standby in a second Availability Zone."
  type        = bool
  default     = true
}

variable "warehouse_backup_retention_days" {
  description = "Days of automated backups (point-in-time recovery window)."
  type        = number
  default     = 7
}

variable "warehouse_db_name" {
  description = "Database created in the warehouse instance."
  type        = string
  default     = "warehouse"
}

variable "warehouse_deletion_protection" {
  description = "Refuse to delete the warehouse instance. Set to false only to tear the pipeline down."
  type        = bool
  default     = true
}

variable "warehouse_master_username" {
  description = "Master user of the warehouse; its password is generated, stored and rotated by RDS in Secrets Manager."
  type        = string
  default     = "onyx_admin"
}

variable "warehouse_freshness_alarm_minutes" {
  description = "Alarm when the newest run loaded into the warehouse is older than this many minutes (a stalled transform or load, whatever the cause)."
  type        = number
  default     = 120
}

variable "verify_schedule_expression" {
  description = "When the warehouse is verified against the source (EventBridge schedule; default daily at 05:15 UTC)."
  type        = string
  default     = "cron(15 5 * * ? *)"
}

# ------------------------------------------------------------------------------------------
# The lake: Glue Data Catalog + Athena over the processed bucket (lake.tf)
# ------------------------------------------------------------------------------------------
variable "create_lake" {
  description = "Create the Glue database and tables over the processed bucket, the Athena workgroup, its results bucket, the view queries and the analyst role. false: none of them."
  type        = bool
  default     = true
}

variable "athena_bytes_scanned_cutoff_per_query" {
  description = "Athena cancels a query of the lake workgroup that would scan more than this many bytes (at least 10 MiB)."
  type        = number
  default     = 10737418240

  validation {
    condition     = var.athena_bytes_scanned_cutoff_per_query >= 10485760
    error_message = "athena_bytes_scanned_cutoff_per_query must be at least 10485760 (10 MiB, Athena's minimum)."
  }
}

variable "athena_results_expiration_days" {
  description = "Days after which Athena query results expire from their bucket."
  type        = number
  default     = 30

  validation {
    condition     = var.athena_results_expiration_days >= 1
    error_message = "athena_results_expiration_days must be at least 1."
  }
}

variable "lake_analyst_principal_arns" {
  description = "IAM principals (users, roles) allowed to assume the lake analyst role. Empty: any principal of this account that its own IAM policy lets assume it."
  type        = list(string)
  default     = []
}
