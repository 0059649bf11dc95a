# Each function's own permissions, least privilege. The lambda_function module adds writing to
# the function's own log group, sending to its own dead-letter queue and X-Ray tracing.

locals {
  # KMS is only ever used on the caller's behalf by these services, never directly.
  kms_via_data_services = [
    "s3.${local.region}.amazonaws.com",
    "secretsmanager.${local.region}.amazonaws.com",
  ]
}

data "aws_iam_policy_document" "extract" {
  statement {
    sid       = "ReadSourceSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.source.arn]
  }

  statement {
    sid       = "ListIngestionBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.ingestion_bucket.arn]
  }

  statement {
    sid       = "ReadWriteIngestionObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${module.ingestion_bucket.arn}/*"]
  }

  statement {
    sid       = "UseDataKeyViaS3AndSecretsManager"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.onyx.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.kms_via_data_services
    }
  }
}

data "aws_iam_policy_document" "transform" {
  statement {
    sid       = "ListIngestionBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.ingestion_bucket.arn]
  }

  statement {
    sid       = "ReadIngestionObjects"
    actions   = ["s3:GetObject"]
    resources = ["${module.ingestion_bucket.arn}/*"]
  }

  statement {
    sid       = "ListProcessedBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.processed_bucket.arn]
  }

  statement {
    sid       = "ReadWriteProcessedObjects"
    actions   = ["s3:GetObject", "s3:PutObject"]
    resources = ["${module.processed_bucket.arn}/*"]
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

data "aws_iam_policy_document" "load" {
  statement {
    sid       = "ListProcessedBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.processed_bucket.arn]
  }

  statement {
    sid       = "ReadProcessedObjects"
    actions   = ["s3:GetObject"]
    resources = ["${module.processed_bucket.arn}/*"]
  }

  # A run that fails for a reason retrying will not fix is recorded (`_failed/load/<run>/…`), so
  # `onyx status` can say which run blocks the load; verification reports go to `_verify/`.
  statement {
    sid     = "RecordLoadFailuresAndVerifyReports"
    actions = ["s3:PutObject"]
    resources = [
      "${module.processed_bucket.arn}/_failed/load/*",
      "${module.processed_bucket.arn}/_verify/*",
    ]
  }

  # Verification compares the warehouse with the source as of the newest loaded run's snapshot,
  # which its ingestion run manifest records: its source secret and the manifests, nothing else.
  statement {
    sid       = "VerifyReadsItsSourceSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [var.verify_with_extract_credentials ? aws_secretsmanager_secret.source.arn : aws_secretsmanager_secret.source_readonly.arn]
  }

  statement {
    sid       = "VerifyListsRunManifests"
    actions   = ["s3:ListBucket"]
    resources = [module.ingestion_bucket.arn]
    condition {
      test     = "StringLike"
      variable = "s3:prefix"
      values   = ["_runs/*"]
    }
  }

  statement {
    sid       = "VerifyReadsRunManifests"
    actions   = ["s3:GetObject"]
    resources = ["${module.ingestion_bucket.arn}/_runs/*"]
  }

  statement {
    sid       = "ReadWarehouseSecret"
    actions   = ["secretsmanager:GetSecretValue"]
    resources = [aws_secretsmanager_secret.warehouse.arn]
  }

  statement {
    sid       = "DecryptViaS3AndSecretsManager"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.onyx.arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = local.kms_via_data_services
    }
  }
}
