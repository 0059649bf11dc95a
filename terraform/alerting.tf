# Every alarm notifies this topic; people subscribe by e-mail (var.alarm_emails).
resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  display_name      = "Onyx alarms"
  kms_master_key_id = aws_kms_key.onyx.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

# Freshness: extraction must succeed at least once in every two schedule periods. Missing data
# (the function never ran, or never reached the end of a run) counts as breaching.
resource "aws_cloudwatch_metric_alarm" "extract_freshness" {
  alarm_name          = "${var.name_prefix}-extract-stale"
  alarm_description   = "No successful Onyx extraction for two schedule periods (${var.schedule_expression}): the warehouse is falling behind ToteSys. First: `onyx logs --stage extract --level warn --since 2h`. Runbook: docs/runbook.md#extract-stale"
  namespace           = "Onyx"
  metric_name         = "RunSucceeded"
  dimensions          = { Stage = "extract" }
  statistic           = "Sum"
  period              = 2 * local.schedule_minutes * 60
  evaluation_periods  = 1
  threshold           = 1
  comparison_operator = "LessThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Schema drift: the extract compares each run's source columns with the previous run's and counts
# the differences (`SchemaChanges`). Any change alarms: the ingestion bucket keeps every column,
# but a modelled column that disappeared quarantines its table's rows. `onyx status` lists them.
resource "aws_cloudwatch_metric_alarm" "schema_changes" {
  alarm_name          = "${var.name_prefix}-source-schema-changed"
  alarm_description   = "The ToteSys schema changed (a column or table added, dropped or retyped); a modelled column that changed quarantines its rows. First: `onyx status` (names the change). Runbook: docs/runbook.md#source-schema-changed"
  namespace           = "Onyx"
  metric_name         = "SchemaChanges"
  dimensions          = { Stage = "extract" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# Continuity: the extract found the source restored or failed over (a new WAL timeline, a WAL
# position behind the previous run's, or a row version the previous run saw gone back). It read
# everything once so nothing is lost; someone should know the database changed underneath.
resource "aws_cloudwatch_metric_alarm" "source_discontinuity" {
  alarm_name          = "${var.name_prefix}-source-discontinuity"
  alarm_description   = "The ToteSys source was restored, rewound or failed over since the previous extract; the run read every row once so nothing is lost. First: `onyx logs --stage extract` (the ERROR names what changed), then `onyx verify`. Runbook: docs/runbook.md#source-discontinuity"
  namespace           = "Onyx"
  metric_name         = "SourceDiscontinuities"
  dimensions          = { Stage = "extract" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# A transform or load run failed for a reason retrying will not fix (bad data the database
# rejects, an unreadable manifest, a permission): later runs wait behind it, in order.
resource "aws_cloudwatch_metric_alarm" "blocked_runs" {
  alarm_name          = "${var.name_prefix}-run-blocked"
  alarm_description   = "An Onyx transform or load run failed for a reason retrying will not fix; later runs wait behind it. First: `onyx status` (names the run and the error), then fix or `onyx park RUN --reason ...`. Runbook: docs/runbook.md#run-blocked"
  namespace           = "Onyx"
  metric_name         = "BlockedRuns"
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
}

# Warehouse freshness: the load reports how old the newest loaded run is on every invocation.
# Growing (a blocked load) or missing (no load at all: a stalled transform) both alarm.
resource "aws_cloudwatch_metric_alarm" "warehouse_freshness" {
  alarm_name          = "${var.name_prefix}-warehouse-stale"
  alarm_description   = "The newest run loaded into the Onyx warehouse is older than ${var.warehouse_freshness_alarm_minutes} minutes, or the load has not run: the transform or the load is stalled. First: `onyx status`. Runbook: docs/runbook.md#warehouse-stale"
  namespace           = "Onyx"
  metric_name         = "WarehouseFreshnessSeconds"
  dimensions          = { Stage = "load" }
  statistic           = "Maximum"
  period              = 3600
  evaluation_periods  = 1
  threshold           = var.warehouse_freshness_alarm_minutes * 60
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "breaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Verification: the scheduled `onyx verify` found the warehouse different from the source.
resource "aws_cloudwatch_metric_alarm" "verify_differences" {
  alarm_name          = "${var.name_prefix}-verify-differences"
  alarm_description   = "The scheduled verification found Onyx warehouse rows that differ from ToteSys (missing, extra or different; report under _verify/ in the processed bucket). First: `onyx verify`. Runbook: docs/runbook.md#verify-differences"
  namespace           = "Onyx"
  metric_name         = "VerifyDifferences"
  statistic           = "Maximum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# ------------------------------------------------------------------------------------------
# The Terraform-created warehouse (create_warehouse = true): CPU, free storage, connections.
# ------------------------------------------------------------------------------------------
locals {
  warehouse_alarms = {
    cpu = {
      metric      = "CPUUtilization"
      statistic   = "Average"
      threshold   = 80
      comparison  = "GreaterThanThreshold"
      periods     = 3
      description = "The Onyx warehouse CPU has averaged over 80% for 15 minutes; loads slow down and may hit their statement_timeout. First: `onyx logs --stage load --level warn`, then pg_stat_activity / Performance Insights. Runbook: docs/runbook.md#warehouse-cpu"
    }
    storage = {
      metric      = "FreeStorageSpace"
      statistic   = "Minimum"
      threshold   = max(2, var.warehouse_allocated_storage * 0.1) * 1024 * 1024 * 1024
      comparison  = "LessThanThreshold"
      periods     = 1
      description = "The Onyx warehouse has less than ${max(2, var.warehouse_allocated_storage * 0.1)} GiB free (it grows up to ${var.warehouse_allocated_storage * 5} GiB); at that ceiling loads fail. First: `onyx status` (rows per table). Runbook: docs/runbook.md#warehouse-storage"
    }
    connections = {
      metric      = "DatabaseConnections"
      statistic   = "Maximum"
      threshold   = var.warehouse_connections_alarm_threshold
      comparison  = "GreaterThanThreshold"
      periods     = 3
      description = "The Onyx warehouse has had more than ${var.warehouse_connections_alarm_threshold} connections for 15 minutes; near max_connections the load is refused. First: `onyx logs --stage load --level error`, then pg_stat_activity. Runbook: docs/runbook.md#warehouse-connections"
    }
  }
}

resource "aws_cloudwatch_metric_alarm" "warehouse" {
  for_each = var.create_warehouse ? local.warehouse_alarms : {}

  alarm_name          = "${local.warehouse_identifier}-${each.key}"
  alarm_description   = each.value.description
  namespace           = "AWS/RDS"
  metric_name         = each.value.metric
  dimensions          = { DBInstanceIdentifier = aws_db_instance.warehouse[0].identifier }
  statistic           = each.value.statistic
  period              = 300
  evaluation_periods  = each.value.periods
  threshold           = each.value.threshold
  comparison_operator = each.value.comparison
  treat_missing_data  = "missing"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}
