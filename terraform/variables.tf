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
  description = "Directory holding <bin>/bootstrap.zip as `make package` writes it; null means ../target/lambda relative to this directory."
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

variable "reconcile_every" {
  description = "ONYX_RECONCILE_EVERY of the extract function: how often a run compares the keys it delivered with the source's to find deleted rows, which the warehouse then marks (deleted_at). A duration such as 1h or 30m; 0s reconciles on every run."
  type        = string
  default     = "1h"
  validation {
    condition     = can(regex("^[0-9]+(s|m|h|d)$", var.reconcile_every))
    error_message = "reconcile_every must be a whole number with a unit: s, m, h or d (e.g. 1h)."
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

# ------------------------------------------------------------------------------------------
# Alarm notifications (alerting.tf): two topics, outages and data quality
# ------------------------------------------------------------------------------------------
variable "alarm_emails" {
  description = "E-mail addresses subscribed to the outage topic (<prefix>-alarms: every alarm except the data-quality ones); each must confirm the subscription from the mail AWS sends."
  type        = list(string)
  default     = []
}

variable "data_quality_emails" {
  description = "E-mail addresses subscribed to the data-quality topic (<prefix>-data-quality: source schema changed, source discontinuity, verification differences, quarantined rows); each must confirm. Empty (default): the alarm_emails."
  type        = list(string)
  default     = []
}

variable "alarm_https_endpoints" {
  description = "HTTPS endpoints subscribed to both topics, e.g. a chat or paging tool's Amazon SNS integration URL. SNS first posts a SubscriptionConfirmation the endpoint must confirm (a plain Slack incoming webhook cannot). The URLs are in the committed env file and the Terraform state: use no URL whose secrecy is its only protection. Default none."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for url in var.alarm_https_endpoints : can(regex("^https://[^\\s]+$", url))])
    error_message = "alarm_https_endpoints must be https:// URLs."
  }
}

variable "repository_url" {
  description = "Web address of this repository (no trailing slash). Alarm mails link the runbook as <repository_url>/blob/<docs_ref>/docs/runbook.md#<section>, so a fork sets its own."
  type        = string
  default     = "https://github.com/terrific-totes/onyx"

  validation {
    condition     = can(regex("^https://[^\\s]*[^/\\s]$", var.repository_url)) && length(var.repository_url) <= 150
    error_message = "repository_url must be an https:// address of at most 150 characters without a trailing slash."
  }
}

variable "docs_ref" {
  description = "Branch, tag or commit of the repository whose docs/runbook.md the alarm mails link."
  type        = string
  default     = "main"

  validation {
    condition     = can(regex("^[A-Za-z0-9._/-]{1,64}$", var.docs_ref))
    error_message = "docs_ref must be a branch, tag or commit name of at most 64 characters."
  }
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
# Network (network.tf, bastion.tf, docs/network.md)
# ------------------------------------------------------------------------------------------
variable "network" {
  description = "Where the extract and load functions run. \"vpc\" (default): private subnets whose only way out is one NAT gateway, so ToteSys and an outside warehouse allow one address (output egress_ip); a created warehouse and the bastion live there too. \"public\": outside any VPC, reaching both databases over the internet from Lambda's changing addresses (sslmode verify-full required; no created warehouse)."
  type        = string
  default     = "vpc"

  validation {
    condition     = contains(["vpc", "public"], var.network)
    error_message = "network must be \"vpc\" or \"public\"."
  }
}

variable "vpc_id" {
  description = "Reuse this VPC instead of creating one (network = \"vpc\" only). Give private_subnet_ids and private_route_table_ids too; the VPC's own NAT (whatever those route tables point 0.0.0.0/0 at) is then the way out, so egress_ip is null and ToteSys must allow that NAT's address. null: Terraform creates the VPC, its NAT gateway and Elastic IP."
  type        = string
  default     = null
}

variable "vpc_cidr" {
  description = "IPv4 range of the VPC Terraform creates (/16 to /20): two private subnets get its first two quarters, the NAT's public subnet its last /24 (of a /16). Pick one that does not overlap networks you may peer or VPN to."
  type        = string
  default     = "10.42.0.0/16"

  validation {
    condition     = can(cidrhost(var.vpc_cidr, 0)) && try(tonumber(split("/", var.vpc_cidr)[1]) >= 16 && tonumber(split("/", var.vpc_cidr)[1]) <= 20, false)
    error_message = "vpc_cidr must be an IPv4 CIDR block from /16 to /20, such as 10.42.0.0/16."
  }
}

variable "private_subnet_ids" {
  description = "With vpc_id: private subnets of that VPC in at least two Availability Zones, whose route tables send 0.0.0.0/0 to your NAT (the functions, a created warehouse and the bastion use them)."
  type        = list(string)
  default     = []
}

variable "private_route_table_ids" {
  description = "With vpc_id: the route tables of private_subnet_ids, given the S3 gateway endpoint (unless reuse_s3_endpoint)."
  type        = list(string)
  default     = []
}

variable "reuse_s3_endpoint" {
  description = "With vpc_id: private_route_table_ids already route S3 to a gateway endpoint of that VPC (a route table takes one per service), so Terraform creates none. Ignored when Terraform creates the VPC."
  type        = bool
  default     = false
}

variable "database_egress_cidr_blocks" {
  description = "Where the functions (and the bastion) may open PostgreSQL (5432) connections in network = \"vpc\": ToteSys and an outside warehouse. Default anywhere, because their addresses are not known here; they see only egress_ip. Narrow it to their addresses when you know them (a created warehouse is always reachable)."
  type        = list(string)
  default     = ["0.0.0.0/0"]

  validation {
    condition     = alltrue([for cidr in var.database_egress_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "database_egress_cidr_blocks must be IPv4 CIDR blocks such as 203.0.113.10/32."
  }
}

variable "create_bastion" {
  description = "Create the SSM-managed bastion (t4g.nano, no inbound port, no public address) that `make tunnel` forwards PostgreSQL through. null (default): create it when create_warehouse. Needs network = \"vpc\"."
  type        = bool
  default     = null
}

variable "bastion_instance_type" {
  description = "EC2 instance type of the bastion: an arm64 (Graviton) type, because its image is Amazon Linux 2023 arm64."
  type        = string
  default     = "t4g.nano"

  validation {
    condition     = can(regex("^[a-z]+[0-9]+g[a-z]*\\.[a-z0-9]+$", var.bastion_instance_type))
    error_message = "bastion_instance_type must be a Graviton (arm64) type such as t4g.nano."
  }
}

# ------------------------------------------------------------------------------------------
# Optional RDS PostgreSQL warehouse
# ------------------------------------------------------------------------------------------
variable "create_warehouse" {
  description = "Create a private RDS PostgreSQL warehouse (never publicly accessible) in the stack's private subnets; needs network = \"vpc\". false: the warehouse exists elsewhere and the load function reaches it from the NAT's address (or, in public mode, from Lambda's)."
  type        = bool
  default     = false
}

variable "warehouse_allowed_cidr_blocks" {
  description = "IPv4 CIDR blocks allowed to reach the Terraform-created warehouse on 5432: networks that reach the VPC privately (a VPN, a peered VPC, Direct Connect); the warehouse has no public address. Default none: reach it through the bastion (`make tunnel`, docs/network.md)."
  type        = list(string)
  default     = []

  validation {
    condition     = alltrue([for cidr in var.warehouse_allowed_cidr_blocks : can(cidrhost(cidr, 0))])
    error_message = "warehouse_allowed_cidr_blocks must be IPv4 CIDR blocks such as 203.0.113.0/24."
  }
}

variable "warehouse_allowed_security_group_ids" {
  description = "Security groups (in the stack's VPC) whose members may reach the Terraform-created warehouse on 5432 besides the functions and the bastion: a Power BI on-premises data gateway, another instance. Default none."
  type        = list(string)
  default     = []
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

variable "verify_with_extract_credentials" {
  description = "The daily verification reads ToteSys with the extract's secret (<prefix>/source-db) instead of its own read-only login (<prefix>/source-db-readonly). Only when the source's owners cannot issue a read-only login: verification then holds full source credentials (used in a read-only transaction)."
  type        = bool
  default     = false
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
