# Two topics, so that whoever runs the pipeline and whoever owns the data each get their own mail:
#
# - Outages, aws_sns_topic.alarms (<prefix>-alarms; the address stays, so applying this does not
#   re-create the topic or its subscriptions): the pipeline is stalled, failing or short of
#   capacity. extract-stale, run-blocked, warehouse-stale, every function alarm (the module's
#   alarm_topic_arn) and the RDS alarms.
# - Data quality, aws_sns_topic.data_quality (<prefix>-data-quality): the pipeline works, but the
#   data needs someone. These are the alarms whose descriptions are about the data's content:
#   source-schema-changed (a modelled column changed), source-discontinuity (the source was
#   restored or rewound; check its history with `onyx verify`), verify-differences (the warehouse
#   differs from the source) and rows-quarantined (rows held back from the warehouse). A
#   function's error-log-lines alarm stays an outage alarm: its metric filter leaves out the
#   ERROR lines about the data, which carry "data_quality": true (modules/lambda_function).
#
# Publishing: neither topic has a policy of its own. SNS's default topic policy lets this
# account's principals publish, and CloudWatch alarms of the account publish as it. Both topics
# are encrypted with the stack's key, whose policy lets cloudwatch.amazonaws.com use it for this
# account's alarms (kms.tf, KeyPolicyThisKeyCloudWatchAlarms).
#
# Every alarm mails its OK too (ok_actions = alarm_actions), so a mail saying something broke is
# followed by one saying it cleared. Every description names the first `onyx` command to run and
# links its runbook section and the dashboard absolutely, so both links work from a mail.
locals {
  runbook_url = "${var.repository_url}/blob/${var.docs_ref}/docs/runbook.md"

  alarm_topics = {
    outages      = aws_sns_topic.alarms.arn
    data_quality = aws_sns_topic.data_quality.arn
  }

  data_quality_emails = toset(length(var.data_quality_emails) > 0 ? var.data_quality_emails : var.alarm_emails)
}

resource "aws_sns_topic" "alarms" {
  name              = "${var.name_prefix}-alarms"
  display_name      = "Onyx alarms"
  kms_master_key_id = aws_kms_key.onyx.arn
}

resource "aws_sns_topic" "data_quality" {
  name              = "${var.name_prefix}-data-quality"
  display_name      = "Onyx data quality"
  kms_master_key_id = aws_kms_key.onyx.arn
}

resource "aws_sns_topic_subscription" "alarm_email" {
  for_each = toset(var.alarm_emails)

  topic_arn = aws_sns_topic.alarms.arn
  protocol  = "email"
  endpoint  = each.value
}

resource "aws_sns_topic_subscription" "data_quality_email" {
  for_each = local.data_quality_emails

  topic_arn = aws_sns_topic.data_quality.arn
  protocol  = "email"
  endpoint  = each.value
}

# Optional chat or paging integrations: every HTTPS endpoint receives both topics. The endpoint
# confirms the subscription itself (SNS posts a SubscriptionConfirmation first); until then the
# subscription is pending and receives nothing.
resource "aws_sns_topic_subscription" "alarm_https" {
  for_each = {
    for pair in setproduct(keys(local.alarm_topics), var.alarm_https_endpoints) :
    "${pair[0]} ${pair[1]}" => { topic = pair[0], endpoint = pair[1] }
  }

  topic_arn = local.alarm_topics[each.value.topic]
  protocol  = "https"
  endpoint  = each.value.endpoint
}

# ------------------------------------------------------------------------------------------
# Outages
# ------------------------------------------------------------------------------------------

# Freshness: extraction must succeed at least once in every two schedule periods. Missing data
# (the function never ran, or never reached the end of a run) counts as breaching.
resource "aws_cloudwatch_metric_alarm" "extract_freshness" {
  alarm_name          = "${var.name_prefix}-extract-stale"
  alarm_description   = "No successful Onyx extraction for two schedule periods (${var.schedule_expression}): the warehouse is falling behind ToteSys. First: `onyx logs --stage extract --level warn --since 2h`. Runbook: ${local.runbook_url}#extract-stale Dashboard: ${local.dashboard_url}"
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

# A transform or load run failed for a reason retrying will not fix (bad data the database
# rejects, an unreadable manifest, a permission): later runs wait behind it, in order.
#
# The load function reports BlockedRuns on every invocation and on its periodic check
# (triggers.tf, check_schedule): the number of runs still blocked, 0 when none; a stage also
# reports 1 the moment a run fails for good. No dimensions (one alarm for both stages). The alarm takes the
# maximum over one schedule period, as often as the reports come. A period without a report keeps
# the alarm's state (treat_missing_data = "ignore"): a blocked pipeline that stops being invoked
# stays in ALARM, where "notBreaching" would clear it and "missing" would turn it to
# INSUFFICIENT_DATA, which notifies nobody. The first 0 clears it and mails the OK. A stall that
# reports nothing at all is warehouse-stale's to catch.
resource "aws_cloudwatch_metric_alarm" "blocked_runs" {
  alarm_name          = "${var.name_prefix}-run-blocked"
  alarm_description   = "An Onyx transform or load run failed for a reason retrying will not fix; later runs wait behind it. First: `onyx status` (names the run and the error), then fix or `onyx park RUN --reason ...`. Runbook: ${local.runbook_url}#run-blocked Dashboard: ${local.dashboard_url}"
  namespace           = "Onyx"
  metric_name         = "BlockedRuns"
  statistic           = "Maximum"
  period              = local.schedule_minutes * 60
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "ignore"
  alarm_actions       = [aws_sns_topic.alarms.arn]
  ok_actions          = [aws_sns_topic.alarms.arn]
}

# Warehouse freshness: the load reports how old the newest loaded run is on every invocation.
# Growing (a blocked load) or missing (no load at all: a stalled transform) both alarm.
resource "aws_cloudwatch_metric_alarm" "warehouse_freshness" {
  alarm_name          = "${var.name_prefix}-warehouse-stale"
  alarm_description   = "The newest run loaded into the Onyx warehouse is older than ${var.warehouse_freshness_alarm_minutes} minutes, or the load has not run: the transform or the load is stalled. First: `onyx status`. Runbook: ${local.runbook_url}#warehouse-stale Dashboard: ${local.dashboard_url}"
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

# ------------------------------------------------------------------------------------------
# Data quality
# ------------------------------------------------------------------------------------------

# Schema drift: the extract compares each run's source columns with the previous run's and counts
# the differences (`SchemaChanges`). Any change alarms: the ingestion bucket keeps every column,
# but a modelled column that disappeared quarantines its table's rows. `onyx status` lists them.
# OK (mailed) means no further change in the last period; the change itself stays to be handled.
resource "aws_cloudwatch_metric_alarm" "schema_changes" {
  alarm_name          = "${var.name_prefix}-source-schema-changed"
  alarm_description   = "The ToteSys schema changed (a column or table added, dropped or retyped); a modelled column that changed quarantines its rows. First: `onyx status` (names the change). Runbook: ${local.runbook_url}#source-schema-changed Dashboard: ${local.dashboard_url}"
  namespace           = "Onyx"
  metric_name         = "SchemaChanges"
  dimensions          = { Stage = "extract" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.data_quality.arn]
  ok_actions          = [aws_sns_topic.data_quality.arn]
}

# Continuity: the extract found the source restored or failed over (a new WAL timeline, a WAL
# position behind the previous run's, or a row version the previous run saw gone back). It read
# everything once so nothing is lost; someone should know the database changed underneath.
resource "aws_cloudwatch_metric_alarm" "source_discontinuity" {
  alarm_name          = "${var.name_prefix}-source-discontinuity"
  alarm_description   = "The ToteSys source was restored, rewound or failed over since the previous extract; the run read every row once so nothing is lost. First: `onyx logs --stage extract` (the ERROR names what changed), then `onyx verify`. Runbook: ${local.runbook_url}#source-discontinuity Dashboard: ${local.dashboard_url}"
  namespace           = "Onyx"
  metric_name         = "SourceDiscontinuities"
  dimensions          = { Stage = "extract" }
  statistic           = "Maximum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.data_quality.arn]
  ok_actions          = [aws_sns_topic.data_quality.arn]
}

# Verification: the scheduled `onyx verify` found the warehouse different from the source.
resource "aws_cloudwatch_metric_alarm" "verify_differences" {
  alarm_name          = "${var.name_prefix}-verify-differences"
  alarm_description   = "The scheduled verification found Onyx warehouse rows that differ from ToteSys (missing, extra or different; report under _verify/ in the processed bucket). First: `onyx verify`. Runbook: ${local.runbook_url}#verify-differences Dashboard: ${local.dashboard_url}"
  namespace           = "Onyx"
  metric_name         = "VerifyDifferences"
  statistic           = "Maximum"
  period              = 86400
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.data_quality.arn]
  ok_actions          = [aws_sns_topic.data_quality.arn]
}

# Quarantine: every transform run reports the rows it held back (`QuarantinedRows`, Stage
# transform); the rest of the run goes through. Any quarantined row alarms, on the data-quality
# topic. OK (mailed) means no new quarantined rows in the last period, not an empty quarantine.
resource "aws_cloudwatch_metric_alarm" "quarantined_rows" {
  alarm_name          = "${var.name_prefix}-rows-quarantined"
  alarm_description   = "The Onyx transform quarantined rows: they are held out of the warehouse (the rest of their run loaded) until fixed and requeued. First: `onyx quarantine` (table, key and reason of each row). Runbook: ${local.runbook_url}#rows-quarantined Dashboard: ${local.dashboard_url}"
  namespace           = "Onyx"
  metric_name         = "QuarantinedRows"
  dimensions          = { Stage = "transform" }
  statistic           = "Sum"
  period              = 300
  evaluation_periods  = 1
  threshold           = 0
  comparison_operator = "GreaterThanThreshold"
  treat_missing_data  = "notBreaching"
  alarm_actions       = [aws_sns_topic.data_quality.arn]
  ok_actions          = [aws_sns_topic.data_quality.arn]
}

# ------------------------------------------------------------------------------------------
# Outages of the Terraform-created warehouse (create_warehouse = true): CPU, free storage,
# connections.
# ------------------------------------------------------------------------------------------
locals {
  warehouse_alarms = {
    cpu = {
      metric      = "CPUUtilization"
      statistic   = "Average"
      threshold   = 80
      comparison  = "GreaterThanThreshold"
      periods     = 3
      description = "The Onyx warehouse CPU has averaged over 80% for 15 minutes; loads slow down and may hit their statement_timeout. First: `onyx logs --stage load --level warn`, then pg_stat_activity / Performance Insights. Runbook: ${local.runbook_url}#warehouse-cpu Dashboard: ${local.dashboard_url}"
    }
    storage = {
      metric      = "FreeStorageSpace"
      statistic   = "Minimum"
      threshold   = max(2, var.warehouse_allocated_storage * 0.1) * 1024 * 1024 * 1024
      comparison  = "LessThanThreshold"
      periods     = 1
      description = "The Onyx warehouse has less than ${max(2, var.warehouse_allocated_storage * 0.1)} GiB free (it grows up to ${var.warehouse_allocated_storage * 5} GiB); at that ceiling loads fail. First: `onyx status` (rows per table). Runbook: ${local.runbook_url}#warehouse-storage Dashboard: ${local.dashboard_url}"
    }
    connections = {
      metric      = "DatabaseConnections"
      statistic   = "Maximum"
      threshold   = var.warehouse_connections_alarm_threshold
      comparison  = "GreaterThanThreshold"
      periods     = 3
      description = "The Onyx warehouse has had more than ${var.warehouse_connections_alarm_threshold} connections for 15 minutes; near max_connections the load is refused. First: `onyx logs --stage load --level error`, then pg_stat_activity. Runbook: ${local.runbook_url}#warehouse-connections Dashboard: ${local.dashboard_url}"
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
