# One Onyx Lambda function with everything it needs to be operated:
# code object, execution role, log group, dead-letter queue, async-invocation settings and alarms.

data "aws_partition" "current" {}
data "aws_region" "current" {}
data "aws_caller_identity" "current" {}

locals {
  # A fresh clone has no zips: `terraform destroy` (and a plan, which then shows the code as
  # changing) must still work, so the hashes are read only when the zip exists; an apply without
  # it fails uploading the code object, naming the missing file (run `make package`).
  zip_present = fileexists(var.zip_path)

  log_group_name    = "/aws/lambda/${var.function_name}"
  error_metric_name = "${var.function_name}-ErrorLogLines"
  # Lines written by the function are JSON objects with a top-level "level" field. ERROR lines
  # about the data rather than the pipeline (rows quarantined, a flagged attribute, a conflicting
  # version, a source discontinuity) carry "data_quality": true and page the data-quality topic
  # through their own alarms; this alarm, on the outage topic, counts the others.
  error_log_pattern = "{ $.level = \"ERROR\" && $.data_quality NOT EXISTS }"
}

# ---------------------------------------------------------------------------------------------
# Code: the zip `make package` builds (cargo lambda build, then .ci/package_zips.py).
# source_hash changes with the zip's content, so a new build uploads a new object version and
# the function is updated to that version; an unchanged build changes nothing.
# ---------------------------------------------------------------------------------------------
resource "aws_s3_object" "code" {
  bucket                 = var.code_bucket
  key                    = "${var.function_name}/bootstrap.zip"
  source                 = var.zip_path
  source_hash            = local.zip_present ? filemd5(var.zip_path) : null
  content_type           = "application/zip"
  server_side_encryption = "aws:kms"
  kms_key_id             = var.kms_key_arn
}

# ---------------------------------------------------------------------------------------------
# Logs: created here (not by Lambda on first run) so that retention, encryption and the ERROR
# metric filter exist before the first invocation, and `terraform destroy` removes them.
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_log_group" "this" {
  name              = local.log_group_name
  retention_in_days = var.log_retention_days
  kms_key_id        = var.kms_key_arn
}

resource "aws_cloudwatch_log_metric_filter" "error_lines" {
  name           = "${var.function_name}-error-lines"
  log_group_name = aws_cloudwatch_log_group.this.name
  pattern        = local.error_log_pattern

  metric_transformation {
    name          = local.error_metric_name
    namespace     = var.error_metric_namespace
    value         = "1"
    default_value = "0"
    unit          = "Count"
  }
}

# ---------------------------------------------------------------------------------------------
# Dead-letter queue: asynchronous invocations (EventBridge, S3) that still fail after the
# retries land here with the original event and the error, for inspection and redrive.
# ---------------------------------------------------------------------------------------------
resource "aws_sqs_queue" "dlq" {
  name                              = "${var.function_name}-dlq"
  message_retention_seconds         = 1209600
  kms_master_key_id                 = var.kms_key_arn
  kms_data_key_reuse_period_seconds = 3600
}

# ---------------------------------------------------------------------------------------------
# Execution role
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "assume" {
  statement {
    sid     = "LambdaAssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["lambda.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "this" {
  name               = "${var.function_name}-lambda"
  path               = var.iam_path
  description        = "Execution role of the ${var.function_name} Lambda function"
  assume_role_policy = data.aws_iam_policy_document.assume.json

  # The deploy role may only create roles under the stack's path with the workload boundary
  # (terraform/bootstrap).
  permissions_boundary = var.permissions_boundary_arn
}

data "aws_iam_policy_document" "runtime" {
  # The function's own permissions (buckets, secrets, KMS) come from the caller.
  source_policy_documents = [var.policy_json]

  statement {
    sid     = "WriteOwnLogGroup"
    actions = ["logs:CreateLogStream", "logs:PutLogEvents"]
    resources = [
      aws_cloudwatch_log_group.this.arn,
      "${aws_cloudwatch_log_group.this.arn}:*",
    ]
  }

  statement {
    sid       = "SendFailedEventsToOwnDlq"
    actions   = ["sqs:SendMessage"]
    resources = [aws_sqs_queue.dlq.arn]
  }

  statement {
    sid       = "EncryptDlqMessages"
    actions   = ["kms:GenerateDataKey", "kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["sqs.${data.aws_region.current.region}.amazonaws.com"]
    }
  }

  statement {
    # Environment variables are encrypted with the customer managed key; decryption is scoped to
    # this function by the encryption context Lambda sets.
    sid       = "DecryptOwnEnvironment"
    actions   = ["kms:Decrypt"]
    resources = [var.kms_key_arn]

    condition {
      test     = "StringEquals"
      variable = "kms:EncryptionContext:LambdaFunctionName"
      values   = [var.function_name]
    }
  }

  statement {
    # AWS requires "*": X-Ray's PutTraceSegments and PutTelemetryRecords have no resource-level permissions.
    sid       = "XRayWriteNoResourceLevelPermissions"
    actions   = ["xray:PutTraceSegments", "xray:PutTelemetryRecords"]
    resources = ["*"]
  }

  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [1]
    content {
      # AWS requires "*": the EC2 Describe* actions have no resource-level permissions.
      sid       = "VpcDescribeNoResourceLevelPermissions"
      actions   = ["ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets"]
      resources = ["*"]
    }
  }

  dynamic "statement" {
    for_each = var.vpc_config == null ? [] : [1]
    content {
      sid = "VpcManageNetworkInterfaces"
      actions = [
        "ec2:CreateNetworkInterface",
        "ec2:DeleteNetworkInterface",
        "ec2:AssignPrivateIpAddresses",
        "ec2:UnassignPrivateIpAddresses",
      ]
      # Network interfaces get generated IDs, so they are named by account and region.
      resources = ["arn:${data.aws_partition.current.partition}:ec2:${data.aws_region.current.region}:${data.aws_caller_identity.current.account_id}:*/*"]
    }
  }
}

resource "aws_iam_role_policy" "runtime" {
  name   = "runtime"
  role   = aws_iam_role.this.id
  policy = data.aws_iam_policy_document.runtime.json
}

# ---------------------------------------------------------------------------------------------
# Function
# ---------------------------------------------------------------------------------------------
resource "aws_lambda_function" "this" {
  #checkov:skip=CKV_AWS_117:VPC attachment comes through var.vpc_config: extract and load run in the private subnets by default (network = "vpc"); transform touches only S3, where a VPC adds cold-start and NAT cost and isolates nothing.
  #checkov:skip=CKV_AWS_272:Code signing needs an AWS Signer profile and a signing step between build and deploy; the zip is built in CI from reviewed source and uploaded to a private, versioned bucket only the deploy role can write.
  #checkov:skip=CKV_AWS_116:Failed asynchronous invocations go to the SQS dead-letter queue through aws_lambda_function_event_invoke_config on_failure, the successor of dead_letter_config, which also records the error and the number of attempts.
  function_name = var.function_name
  description   = var.description
  role          = aws_iam_role.this.arn

  runtime       = "provided.al2023"
  handler       = "bootstrap"
  architectures = ["arm64"]

  s3_bucket         = aws_s3_object.code.bucket
  s3_key            = aws_s3_object.code.key
  s3_object_version = aws_s3_object.code.version_id
  source_code_hash  = local.zip_present ? filebase64sha256(var.zip_path) : null

  memory_size = var.memory_size
  timeout     = var.timeout

  # null: no reservation, the function draws on the account's unreserved pool. The pipeline is
  # exactly-once under any concurrency (tests/pipeline.rs), so this only caps cost or protects
  # other functions; AWS keeps at least 100 units unreserved (docs/deploy.md).
  reserved_concurrent_executions = var.reserved_concurrent_executions

  kms_key_arn = var.kms_key_arn

  environment {
    variables = var.environment
  }

  tracing_config {
    mode = var.tracing_mode
  }

  logging_config {
    # Text keeps each stdout line as written: the JSON log lines (for the ERROR metric filter)
    # and the Embedded Metric Format records (for the Onyx metrics) reach CloudWatch unchanged.
    log_format = "Text"
    log_group  = aws_cloudwatch_log_group.this.name
  }

  dynamic "vpc_config" {
    for_each = var.vpc_config == null ? [] : [var.vpc_config]
    content {
      subnet_ids         = vpc_config.value.subnet_ids
      security_group_ids = vpc_config.value.security_group_ids
    }
  }

  depends_on = [aws_iam_role_policy.runtime]
}

resource "aws_lambda_function_event_invoke_config" "this" {
  function_name                = aws_lambda_function.this.function_name
  maximum_retry_attempts       = var.maximum_retry_attempts
  maximum_event_age_in_seconds = var.maximum_event_age_in_seconds

  destination_config {
    on_failure {
      destination = aws_sqs_queue.dlq.arn
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Alarms, all notifying var.alarm_topic_arn (the outage topic) when they fire and when they clear;
# each description names the first `onyx` command and links its runbook section and the
# dashboard absolutely (var.runbook_url, var.dashboard_url), so both work from the mail. Every
# alarm is listed in the alarm_arns output, which the dashboard's alarm widget shows.
# ---------------------------------------------------------------------------------------------
resource "aws_cloudwatch_metric_alarm" "error_log_lines" {
  alarm_name          = "${var.function_name}-error-log-lines"
  alarm_description   = "${var.function_name} logged an ERROR line (a failed run, a malformed event; lines about the data go to the data-quality alarms). First: `onyx logs --stage ${var.function_name} --level error --since 2h`. Runbook: ${var.runbook_url}#error-log-lines Dashboard: ${var.dashboard_url}"
  namespace           = aws_cloudwatch_log_metric_filter.error_lines.metric_transformation[0].namespace
  metric_name         = aws_cloudwatch_log_metric_filter.error_lines.metric_transformation[0].name
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "errors" {
  alarm_name          = "${var.function_name}-invocation-errors"
  alarm_description   = "${var.function_name} invocations failed (returned an error, timed out or crashed); what fails every retry lands in ${aws_sqs_queue.dlq.name}. First: `onyx logs --stage ${var.function_name} --level error --since 2h`. Runbook: ${var.runbook_url}#invocation-errors Dashboard: ${var.dashboard_url}"
  namespace           = "AWS/Lambda"
  metric_name         = "Errors"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "throttles" {
  alarm_name          = "${var.function_name}-throttles"
  alarm_description   = "${var.function_name} was throttled: more invocations arrived than its concurrency admits; events are retried, but a steady rate means runs pile up. First: `onyx logs --stage ${var.function_name} --since 1h`. Runbook: ${var.runbook_url}#throttles Dashboard: ${var.dashboard_url}"
  namespace           = "AWS/Lambda"
  metric_name         = "Throttles"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

resource "aws_cloudwatch_metric_alarm" "dlq_depth" {
  alarm_name          = "${var.function_name}-dlq-not-empty"
  alarm_description   = "Events for ${var.function_name} failed every retry and wait in ${aws_sqs_queue.dlq.name}. First: `onyx dlq --stage ${var.function_name}`; fix, then `onyx dlq redrive --stage ${var.function_name}`. Runbook: ${var.runbook_url}#dlq-not-empty Dashboard: ${var.dashboard_url}"
  namespace           = "AWS/SQS"
  metric_name         = "ApproximateNumberOfMessagesVisible"
  dimensions          = { QueueName = aws_sqs_queue.dlq.name }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

# Asynchronous events that never ran to success (retries exhausted, too old, or throttled away);
# they also go to the dead-letter queue, unless delivering there failed too (next alarm).
resource "aws_cloudwatch_metric_alarm" "async_events_dropped" {
  alarm_name          = "${var.function_name}-async-events-dropped"
  alarm_description   = "${var.function_name} dropped asynchronous events without success (retries exhausted, too old, or throttled away); they should be in ${aws_sqs_queue.dlq.name}. First: `onyx dlq --stage ${var.function_name}`. Runbook: ${var.runbook_url}#async-events-dropped Dashboard: ${var.dashboard_url}"
  namespace           = "AWS/Lambda"
  metric_name         = "AsyncEventsDropped"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}

# Lambda could not put a failed event into the dead-letter queue (a queue or KMS key policy,
# a deleted queue): that event is gone.
resource "aws_cloudwatch_metric_alarm" "destination_delivery_failures" {
  alarm_name          = "${var.function_name}-destination-delivery-failures"
  alarm_description   = "${var.function_name} could not deliver failed events to ${aws_sqs_queue.dlq.name}, so they are lost. First: `onyx logs --stage ${var.function_name} --level error`; check the role's sqs:SendMessage and kms:GenerateDataKey. Runbook: ${var.runbook_url}#destination-delivery-failures Dashboard: ${var.dashboard_url}"
  namespace           = "AWS/Lambda"
  metric_name         = "DestinationDeliveryFailures"
  dimensions          = { FunctionName = aws_lambda_function.this.function_name }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [var.alarm_topic_arn]
  ok_actions          = [var.alarm_topic_arn]
}
