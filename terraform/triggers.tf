# What starts each stage: a schedule starts extract; each stage's run manifest, written last,
# starts the next one through an S3 event notification.

# ------------------------------------------------------------------------------------------
# Schedule -> extract
# ------------------------------------------------------------------------------------------
resource "aws_cloudwatch_event_rule" "extract_schedule" {
  name                = "${var.name_prefix}-extract-schedule"
  description         = "Starts an Onyx extraction run"
  schedule_expression = var.schedule_expression
}

resource "aws_cloudwatch_event_target" "extract" {
  rule      = aws_cloudwatch_event_rule.extract_schedule.name
  target_id = "extract"
  arn       = module.extract.function_arn
}

resource "aws_lambda_permission" "schedule_invokes_extract" {
  statement_id  = "AllowScheduleInvoke"
  action        = "lambda:InvokeFunction"
  function_name = module.extract.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.extract_schedule.arn
}

# ------------------------------------------------------------------------------------------
# Schedule -> verification (inside the load function, which reaches the warehouse)
# ------------------------------------------------------------------------------------------
resource "aws_cloudwatch_event_rule" "verify_schedule" {
  name                = "${var.name_prefix}-verify-schedule"
  description         = "Starts `onyx verify` in the load function: the warehouse against the source"
  schedule_expression = var.verify_schedule_expression
}

resource "aws_cloudwatch_event_target" "verify" {
  rule      = aws_cloudwatch_event_rule.verify_schedule.name
  target_id = "verify"
  arn       = module.load.function_arn
  input     = jsonencode({ onyx = "verify" })
}

resource "aws_lambda_permission" "schedule_invokes_verify" {
  statement_id  = "AllowVerifyScheduleInvoke"
  action        = "lambda:InvokeFunction"
  function_name = module.load.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.verify_schedule.arn
}

# ------------------------------------------------------------------------------------------
# Schedule -> health check (inside the load function): BlockedRuns and the warehouse freshness
# are reported on the extract's schedule even when no run arrives, so the run-blocked alarm stays
# raised while a run stays blocked and clears once it is fixed or parked.
# ------------------------------------------------------------------------------------------
resource "aws_cloudwatch_event_rule" "check_schedule" {
  name                = "${var.name_prefix}-check-schedule"
  description         = "Counts the blocked Onyx runs and the warehouse freshness in the load function"
  schedule_expression = var.schedule_expression
}

resource "aws_cloudwatch_event_target" "check" {
  rule      = aws_cloudwatch_event_rule.check_schedule.name
  target_id = "check"
  arn       = module.load.function_arn
  input     = jsonencode({ onyx = "check" })
}

resource "aws_lambda_permission" "schedule_invokes_check" {
  statement_id  = "AllowCheckScheduleInvoke"
  action        = "lambda:InvokeFunction"
  function_name = module.load.function_name
  principal     = "events.amazonaws.com"
  source_arn    = aws_cloudwatch_event_rule.check_schedule.arn
}

# ------------------------------------------------------------------------------------------
# Ingestion run manifest -> transform
# ------------------------------------------------------------------------------------------
resource "aws_lambda_permission" "ingestion_invokes_transform" {
  statement_id   = "AllowIngestionBucketInvoke"
  action         = "lambda:InvokeFunction"
  function_name  = module.transform.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = module.ingestion_bucket.arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "ingestion" {
  bucket = module.ingestion_bucket.id

  lambda_function {
    id                  = "ingestion-run-manifest-to-transform"
    lambda_function_arn = module.transform.function_arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.manifest_prefix
    filter_suffix       = local.manifest_suffix
  }

  depends_on = [aws_lambda_permission.ingestion_invokes_transform]
}

# ------------------------------------------------------------------------------------------
# Processed run manifest -> load
# ------------------------------------------------------------------------------------------
resource "aws_lambda_permission" "processed_invokes_load" {
  statement_id   = "AllowProcessedBucketInvoke"
  action         = "lambda:InvokeFunction"
  function_name  = module.load.function_name
  principal      = "s3.amazonaws.com"
  source_arn     = module.processed_bucket.arn
  source_account = local.account_id
}

resource "aws_s3_bucket_notification" "processed" {
  bucket = module.processed_bucket.id

  lambda_function {
    id                  = "processed-run-manifest-to-load"
    lambda_function_arn = module.load.function_arn
    events              = ["s3:ObjectCreated:*"]
    filter_prefix       = local.manifest_prefix
    filter_suffix       = local.manifest_suffix
  }

  depends_on = [aws_lambda_permission.processed_invokes_load]
}
