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
  alarm_description   = "No successful Onyx extraction run for two schedule periods (${var.schedule_expression}): the warehouse is falling behind ToteSys."
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
  alarm_description   = "The ToteSys schema changed (a column added, dropped or retyped, or a table added or dropped). Run `onyx status` to see which; see the Schema drift part of docs/architecture.md."
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
