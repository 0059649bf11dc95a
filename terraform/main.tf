data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}
data "aws_region" "current" {}

locals {
  account_id = data.aws_caller_identity.current.account_id
  partition  = data.aws_partition.current.partition
  region     = data.aws_region.current.region

  bucket_suffix = coalesce(var.bucket_name_suffix, local.account_id)
  zip_dir       = coalesce(var.lambda_zip_dir, "${path.root}/../target/lambda")

  function_names = {
    extract   = "${var.name_prefix}-extract"
    transform = "${var.name_prefix}-transform"
    load      = "${var.name_prefix}-load"
  }

  # Run manifests, written last by each stage, start the next stage. Equal to
  # onyx_core::keys::{MANIFEST_PREFIX, MANIFEST_SUFFIX}; tests/terraform_wiring.rs checks it.
  manifest_prefix = "_runs/"
  manifest_suffix = ".json"

  # `make package` (.ci/package_zips.py) puts the RDS global CA bundle next to `bootstrap`, and
  # Lambda unpacks the zip into /var/task: every function verifies database certificates against it
  # (sslmode verify-full, the default for RDS hosts). tests/terraform_wiring.rs checks the wiring.
  function_environment = {
    ONYX_DB_CA_BUNDLE   = "/var/task/global-bundle.pem"
    ONYX_DB_MIN_SSLMODE = var.network == "public" ? "verify-full" : "require"
    RUST_LOG            = var.rust_log
  }

  # Every IAM role (and instance profile) of the stack lives under this path and carries the
  # workload boundary terraform/bootstrap creates: the deploy role may create, change, pass or
  # re-trust roles only there and only with that boundary (terraform/bootstrap/github.tf).
  iam_path                 = "/${var.name_prefix}/"
  permissions_boundary_arn = "arn:${local.partition}:iam::${local.account_id}:policy/${var.name_prefix}-workload-boundary"

  schedule_minutes = tonumber(regex("^rate\\(([0-9]+) minutes?\\)$", var.schedule_expression)[0])
}

# ------------------------------------------------------------------------------------------
# Buckets
# ------------------------------------------------------------------------------------------
module "ingestion_bucket" {
  source      = "./modules/private_bucket"
  bucket_name = "${var.name_prefix}-ingestion-${local.bucket_suffix}"
  kms_key_arn = aws_kms_key.onyx.arn

  force_destroy = var.force_destroy_buckets
}

module "processed_bucket" {
  source      = "./modules/private_bucket"
  bucket_name = "${var.name_prefix}-processed-${local.bucket_suffix}"
  kms_key_arn = aws_kms_key.onyx.arn

  force_destroy = var.force_destroy_buckets
}

module "code_bucket" {
  source      = "./modules/private_bucket"
  bucket_name = "${var.name_prefix}-code-${local.bucket_suffix}"
  kms_key_arn = aws_kms_key.onyx.arn

  force_destroy = var.force_destroy_buckets
  # Earlier zips stay available for a rollback (docs/deploy.md) for three months.
  noncurrent_version_expiration_days = 90
}

# ------------------------------------------------------------------------------------------
# Secrets: created empty. Values are set out of band with `make secrets`
# (aws secretsmanager put-secret-value), never in Terraform code or state.
# JSON shape: {"host", "port", "dbname", "username", "password", optional "sslmode"}.
# ------------------------------------------------------------------------------------------
resource "aws_secretsmanager_secret" "source" {
  #checkov:skip=CKV2_AWS_57:The ToteSys credentials are issued by the source database's owners; rotation there is followed by `make secrets` (docs/deploy.md). Automatic rotation would need a rotation function with admin rights on a database Onyx does not own.
  name                    = "${var.name_prefix}/source-db"
  description             = "Connection to the ToteSys source database (JSON: host, port, dbname, username, password, sslmode)."
  kms_key_id              = aws_kms_key.onyx.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# The daily verification's own source login: read-only (SELECT on the 11 tables,
# default_transaction_read_only), so the load function never holds the extract's credentials.
# Empty until set (`make secrets`); until then verification reports it as not configured.
resource "aws_secretsmanager_secret" "source_readonly" {
  #checkov:skip=CKV2_AWS_57:A read-only login issued by the source database's owners, like the extract's; rotation there is followed by `make secrets` (docs/deploy.md).
  name                    = "${var.name_prefix}/source-db-readonly"
  description             = "Read-only connection to ToteSys for the daily verification (JSON: host, port, dbname, username, password, sslmode)."
  kms_key_id              = aws_kms_key.onyx.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

resource "aws_secretsmanager_secret" "warehouse" {
  #checkov:skip=CKV2_AWS_57:The loader's warehouse credentials are set with `make secrets`; when Terraform creates the warehouse, its master password is a separate RDS-managed secret that RDS rotates itself.
  name                    = "${var.name_prefix}/warehouse-db"
  description             = "Connection to the PostgreSQL warehouse (JSON: host, port, dbname, username, password, sslmode)."
  kms_key_id              = aws_kms_key.onyx.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# Passwords of the warehouse roles `onyx migrate` creates (onyx_loader, onyx_reader): created
# empty like the others and filled out of band (docs/deploy.md, "A way into the warehouse"), so no
# password is in Terraform state. The secret string is the password itself.
resource "aws_secretsmanager_secret" "warehouse_role" {
  #checkov:skip=CKV2_AWS_57:The role passwords are set with put-secret-value and applied by `onyx migrate` (ALTER ROLE); a rotation function would need the warehouse admin's rights. Rotate by putting a new value and re-running `onyx migrate` (docs/deploy.md).
  for_each = toset(["loader", "reader"])

  name                    = "${var.name_prefix}/warehouse-${each.key}-password"
  description             = "Password of the warehouse role onyx_${each.key} (the secret string is the password), applied by `onyx migrate`."
  kms_key_id              = aws_kms_key.onyx.arn
  recovery_window_in_days = var.secret_recovery_window_days
}

# ------------------------------------------------------------------------------------------
# Functions
# ------------------------------------------------------------------------------------------
module "extract" {
  source = "./modules/lambda_function"

  function_name = local.function_names.extract
  description   = "Onyx extract: ToteSys changes since the last run -> ingestion bucket"
  zip_path      = "${local.zip_dir}/onyx-extract/bootstrap.zip"
  code_bucket   = module.code_bucket.id
  kms_key_arn   = aws_kms_key.onyx.arn
  memory_size   = var.lambda_settings["extract"].memory_size
  timeout       = var.lambda_settings["extract"].timeout
  policy_json   = data.aws_iam_policy_document.extract.json

  log_retention_days             = var.log_retention_days
  reserved_concurrent_executions = var.reserved_concurrency
  alarm_topic_arn                = aws_sns_topic.alarms.arn
  runbook_url                    = local.runbook_url
  dashboard_url                  = local.dashboard_url
  permissions_boundary_arn       = local.permissions_boundary_arn
  iam_path                       = local.iam_path

  # In the private subnets in network = "vpc" (network.tf); outside any VPC in "public".
  vpc_config = local.function_vpc_config

  environment = merge(local.function_environment, {
    ONYX_SOURCE_SECRET   = aws_secretsmanager_secret.source.arn
    ONYX_INGESTION       = "s3://${module.ingestion_bucket.id}"
    ONYX_SOURCE_TIMEZONE = var.source_timezone
    ONYX_MAX_RUN_ROWS    = var.max_run_rows
    ONYX_RECONCILE_EVERY = var.reconcile_every
  })
}

module "transform" {
  source = "./modules/lambda_function"

  function_name = local.function_names.transform
  description   = "Onyx transform: ingestion run manifest -> star-schema Parquet in the processed bucket"
  zip_path      = "${local.zip_dir}/onyx-transform/bootstrap.zip"
  code_bucket   = module.code_bucket.id
  kms_key_arn   = aws_kms_key.onyx.arn
  memory_size   = var.lambda_settings["transform"].memory_size
  timeout       = var.lambda_settings["transform"].timeout
  policy_json   = data.aws_iam_policy_document.transform.json

  log_retention_days             = var.log_retention_days
  reserved_concurrent_executions = var.reserved_concurrency
  alarm_topic_arn                = aws_sns_topic.alarms.arn
  runbook_url                    = local.runbook_url
  dashboard_url                  = local.dashboard_url
  permissions_boundary_arn       = local.permissions_boundary_arn
  iam_path                       = local.iam_path

  environment = merge(local.function_environment, {
    ONYX_INGESTION = "s3://${module.ingestion_bucket.id}"
    ONYX_PROCESSED = "s3://${module.processed_bucket.id}"
  })
}

module "load" {
  source = "./modules/lambda_function"

  function_name = local.function_names.load
  description   = "Onyx load: processed run manifest -> warehouse, one transaction per run"
  zip_path      = "${local.zip_dir}/onyx-load/bootstrap.zip"
  code_bucket   = module.code_bucket.id
  kms_key_arn   = aws_kms_key.onyx.arn
  memory_size   = var.lambda_settings["load"].memory_size
  timeout       = var.lambda_settings["load"].timeout
  policy_json   = data.aws_iam_policy_document.load.json

  log_retention_days             = var.log_retention_days
  reserved_concurrent_executions = var.reserved_concurrency
  alarm_topic_arn                = aws_sns_topic.alarms.arn
  runbook_url                    = local.runbook_url
  dashboard_url                  = local.dashboard_url
  permissions_boundary_arn       = local.permissions_boundary_arn
  iam_path                       = local.iam_path

  # In the private subnets in network = "vpc" (network.tf); outside any VPC in "public".
  vpc_config = local.function_vpc_config

  # The daily verification (`{"onyx": "verify"}`) also reads the source — with its own read-only
  # login (<prefix>/source-db-readonly) unless verify_with_extract_credentials — and the
  # ingestion run manifests.
  environment = merge(local.function_environment, {
    ONYX_PROCESSED        = "s3://${module.processed_bucket.id}"
    ONYX_WAREHOUSE_SECRET = aws_secretsmanager_secret.warehouse.arn
    ONYX_INGESTION        = "s3://${module.ingestion_bucket.id}"
    }, var.verify_with_extract_credentials ? {
    ONYX_SOURCE_SECRET = aws_secretsmanager_secret.source.arn
    } : {
    ONYX_VERIFY_SOURCE_SECRET = aws_secretsmanager_secret.source_readonly.arn
  })
}
