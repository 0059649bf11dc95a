# ------------------------------------------------------------------------------------------
# The lake (issue #16): Athena over the processed bucket through the Glue Data Catalog.
# One Glue table per star table over its prefix, with the columns that `onyx lake-schema`
# generates from crates/core/src/warehouse.rs into generated/lake_tables.json (never written
# here), partition projection on the run's day in the key (<table>/YYYY/MM/DD/…: no crawler,
# no MSCK REPAIR), an Athena workgroup whose configuration is enforced (encrypted results in a
# bucket of their own that expires them, a bytes-scanned limit per query), the views of
# lake/views/*.sql as named queries (`make lake-views`, run by `make deploy`, creates them),
# and a least-privilege analyst role. `create_lake = false` leaves all of it out.
# ------------------------------------------------------------------------------------------

locals {
  lake        = jsondecode(file("${path.module}/generated/lake_tables.json"))
  lake_tables = var.create_lake ? { for table in local.lake.tables : table.name => table } : {}
  lake_views  = var.create_lake ? fileset("${path.module}/../lake/views", "*.sql") : toset([])
  # Athena's placeholder for the partition value in the location template: ${run_date}.
  lake_partition_placeholder = join("", ["$", "{", local.lake.partition_column, "}"])
  lake_database              = replace("${var.name_prefix}_lake", "-", "_")
  lake_workgroup             = "${var.name_prefix}-lake"
}

module "athena_results_bucket" {
  source = "./modules/private_bucket"
  count  = var.create_lake ? 1 : 0

  bucket_name = "${var.name_prefix}-athena-results-${local.bucket_suffix}"
  kms_key_arn = aws_kms_key.onyx.arn

  force_destroy                      = var.force_destroy_buckets
  current_version_expiration_days    = var.athena_results_expiration_days
  noncurrent_version_expiration_days = 1
}

resource "aws_glue_catalog_database" "lake" {
  count = var.create_lake ? 1 : 0

  name        = local.lake_database
  description = "Onyx star tables in the processed bucket (Parquet), for Athena. Tables generated from warehouse.rs."
}

resource "aws_glue_catalog_table" "lake" {
  for_each = local.lake_tables

  name          = each.key
  database_name = aws_glue_catalog_database.lake[0].name
  description   = "${each.value.kind} ${each.value.warehouse_table}: every run's rows under s3://${module.processed_bucket.id}/${each.value.prefix}"
  table_type    = "EXTERNAL_TABLE"

  parameters = {
    EXTERNAL                                                  = "TRUE"
    classification                                            = "parquet"
    "parquet.compression"                                     = "ZSTD"
    "projection.enabled"                                      = "true"
    "projection.${local.lake.partition_column}.type"          = "date"
    "projection.${local.lake.partition_column}.format"        = local.lake.partition_format
    "projection.${local.lake.partition_column}.range"         = "${local.lake.partition_first_day},NOW"
    "projection.${local.lake.partition_column}.interval"      = "1"
    "projection.${local.lake.partition_column}.interval.unit" = "DAYS"
    "storage.location.template"                               = "s3://${module.processed_bucket.id}/${each.value.prefix}${local.lake_partition_placeholder}/"
  }

  partition_keys {
    name    = local.lake.partition_column
    type    = "string"
    comment = "the run's day in the object key (${local.lake.partition_format}); filter on it to scan less"
  }

  storage_descriptor {
    location      = "s3://${module.processed_bucket.id}/${each.value.prefix}"
    input_format  = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetInputFormat"
    output_format = "org.apache.hadoop.hive.ql.io.parquet.MapredParquetOutputFormat"

    ser_de_info {
      serialization_library = "org.apache.hadoop.hive.ql.io.parquet.serde.ParquetHiveSerDe"
    }

    dynamic "columns" {
      for_each = each.value.columns
      content {
        name    = columns.value.name
        type    = columns.value.type
        comment = columns.value.comment
      }
    }
  }
}

resource "aws_athena_workgroup" "lake" {
  count = var.create_lake ? 1 : 0

  name          = local.lake_workgroup
  description   = "Onyx lake queries: results encrypted, expiring, and a bytes-scanned limit per query"
  force_destroy = var.force_destroy_buckets

  configuration {
    enforce_workgroup_configuration    = true
    publish_cloudwatch_metrics_enabled = true
    bytes_scanned_cutoff_per_query     = var.athena_bytes_scanned_cutoff_per_query

    engine_version {
      selected_engine_version = "Athena engine version 3"
    }

    result_configuration {
      output_location       = "s3://${module.athena_results_bucket[0].id}/results/"
      expected_bucket_owner = local.account_id

      encryption_configuration {
        encryption_option = "SSE_KMS"
        kms_key_arn       = aws_kms_key.onyx.arn
      }
    }
  }
}

# The views, one named query per file of lake/views; `make lake-views` runs them in file-name
# order (dimensions, then *_current, then the analysis views that use both).
resource "aws_athena_named_query" "lake_view" {
  for_each = local.lake_views

  name        = trimsuffix(each.value, ".sql")
  description = "CREATE OR REPLACE VIEW from lake/views/${each.value}"
  workgroup   = aws_athena_workgroup.lake[0].id
  database    = aws_glue_catalog_database.lake[0].name
  query       = file("${path.module}/../lake/views/${each.value}")
}

# ------------------------------------------------------------------------------------------
# The analyst role: query the lake through its workgroup and nothing else.
# ------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "lake_analyst_assume" {
  statement {
    sid     = "AnalystsOfThisAccountAssume"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "AWS"
      identifiers = length(var.lake_analyst_principal_arns) > 0 ? var.lake_analyst_principal_arns : ["arn:${local.partition}:iam::${local.account_id}:root"]
    }
  }
}

resource "aws_iam_role" "lake_analyst" {
  count = var.create_lake ? 1 : 0

  name               = "${var.name_prefix}-lake-analyst"
  path               = local.iam_path
  description        = "Query the Onyx lake with Athena (workgroup ${local.lake_workgroup}); read-only on the star-table prefixes"
  assume_role_policy = data.aws_iam_policy_document.lake_analyst_assume.json

  permissions_boundary = local.permissions_boundary_arn
}

data "aws_iam_policy_document" "lake_analyst" {
  count = var.create_lake ? 1 : 0

  statement {
    sid = "QueryInTheLakeWorkgroup"
    actions = [
      "athena:StartQueryExecution",
      "athena:StopQueryExecution",
      "athena:GetQueryExecution",
      "athena:GetQueryResults",
      "athena:GetQueryResultsStream",
      "athena:ListQueryExecutions",
      "athena:BatchGetQueryExecution",
      "athena:GetWorkGroup",
      "athena:ListNamedQueries",
      "athena:GetNamedQuery",
      "athena:BatchGetNamedQuery",
    ]
    resources = [aws_athena_workgroup.lake[0].arn]
  }

  # BI connectors (Power BI's Amazon Athena connector) browse the catalog, databases and tables.
  statement {
    sid = "BrowseTheDataCatalog"
    actions = [
      "athena:GetDataCatalog",
      "athena:ListDatabases",
      "athena:GetDatabase",
      "athena:ListTableMetadata",
      "athena:GetTableMetadata",
    ]
    resources = ["arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog"]
  }

  statement {
    sid = "ReadTheLakeTables"
    actions = [
      "glue:GetDatabase",
      "glue:GetDatabases",
      "glue:GetTable",
      "glue:GetTables",
      "glue:GetPartition",
      "glue:GetPartitions",
      "glue:BatchGetPartition",
    ]
    resources = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      aws_glue_catalog_database.lake[0].arn,
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${local.lake_database}/*",
    ]
  }

  # Only the star-table prefixes: not the state, quarantine, verify or run records.
  statement {
    sid       = "ListTheStarTablePrefixes"
    actions   = ["s3:ListBucket"]
    resources = [module.processed_bucket.arn]

    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = flatten([for table in local.lake.tables : [table.prefix, "${table.prefix}*"]])
    }
  }

  statement {
    sid       = "ReadTheStarTableObjects"
    actions   = ["s3:GetObject"]
    resources = [for table in local.lake.tables : "${module.processed_bucket.arn}/${table.prefix}*"]
  }

  statement {
    sid = "WriteAndReadQueryResults"
    actions = [
      "s3:GetObject",
      "s3:PutObject",
      "s3:ListBucket",
      "s3:GetBucketLocation",
      "s3:AbortMultipartUpload",
      "s3:ListMultipartUploadParts",
    ]
    resources = [module.athena_results_bucket[0].arn, "${module.athena_results_bucket[0].arn}/*"]
  }

  statement {
    sid       = "UseDataKeyViaS3"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.onyx.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["s3.${local.region}.amazonaws.com"]
    }
  }
}

resource "aws_iam_role_policy" "lake_analyst" {
  count = var.create_lake ? 1 : 0

  name   = "query-the-lake"
  role   = aws_iam_role.lake_analyst[0].id
  policy = data.aws_iam_policy_document.lake_analyst[0].json
}
