# Operations dashboard built from the Embedded Metric Format records the functions write
# (namespace Onyx; dimension sets [], [Stage] and [Stage, Table]), from AWS/Lambda and AWS/SQS,
# and from the functions' log groups (Logs Insights). Top to bottom: every alarm; freshness and
# blocked runs; rows per table; durations, runs and quarantined rows; errors, throttles and
# dead-letter queues; the recent ERROR lines.

locals {
  stages = ["extract", "transform", "load"]

  stage_functions = {
    extract   = module.extract
    transform = module.transform
    load      = module.load
  }

  # The alarm descriptions link the dashboard (alerting.tf), and the dashboard lists the alarms:
  # its name and address come from the variables, not from the dashboard resource.
  dashboard_name = var.name_prefix
  dashboard_url  = "https://${local.region}.console.aws.amazon.com/cloudwatch/home?region=${local.region}#dashboards/dashboard/${local.dashboard_name}"

  # Every alarm of the stack: the root's (the warehouse's when Terraform creates it) and every
  # alarm of each function (its module's alarm_arns).
  dashboard_alarm_arns = concat(
    [
      aws_cloudwatch_metric_alarm.extract_freshness.arn,
      aws_cloudwatch_metric_alarm.blocked_runs.arn,
      aws_cloudwatch_metric_alarm.warehouse_freshness.arn,
      aws_cloudwatch_metric_alarm.schema_changes.arn,
      aws_cloudwatch_metric_alarm.source_discontinuity.arn,
      aws_cloudwatch_metric_alarm.verify_differences.arn,
      aws_cloudwatch_metric_alarm.quarantined_rows.arn,
    ],
    [for alarm in aws_cloudwatch_metric_alarm.warehouse : alarm.arn],
    flatten([for stage in local.stages : local.stage_functions[stage].alarm_arns]),
  )

  # One graph per stage of the rows each table contributed, one point per run.
  rows_per_table_widgets = [
    for i, stage in local.stages : {
      type   = "metric"
      x      = 8 * i
      y      = 12
      width  = 8
      height = 6
      properties = {
        title  = "Rows per table per run: ${stage}"
        region = local.region
        view   = "timeSeries"
        period = 60
        stat   = "Sum"
        metrics = [
          [{
            id         = "rows_${stage}"
            expression = "SEARCH('{Onyx,Stage,Table} MetricName=\"Rows\" Stage=\"${stage}\"', 'Sum', 60)"
            label      = "$${PROP('Dim.Table')}"
          }]
        ]
      }
    }
  ]

  dashboard_widgets = concat(
    [
      {
        type   = "alarm"
        x      = 0
        y      = 0
        width  = 24
        height = 6
        properties = {
          title  = "Alarms"
          alarms = local.dashboard_alarm_arns
        }
      },
      {
        # Freshness: the extract-stale alarm drawn over its metric.
        type   = "metric"
        x      = 0
        y      = 6
        width  = 8
        height = 6
        properties = {
          title       = "Freshness: successful extract runs per ${2 * local.schedule_minutes} min"
          region      = local.region
          annotations = { alarms = [aws_cloudwatch_metric_alarm.extract_freshness.arn] }
          view        = "timeSeries"
          stacked     = false
        }
      },
      {
        # What warehouse-stale watches: the age of the newest loaded run, reported by every load.
        type   = "metric"
        x      = 8
        y      = 6
        width  = 8
        height = 6
        properties = {
          title   = "Warehouse freshness: age of the newest loaded run (s)"
          region  = local.region
          view    = "timeSeries"
          period  = 300
          stat    = "Maximum"
          metrics = [["Onyx", "WarehouseFreshnessSeconds", "Stage", "load", { label = "age (s)" }]]
          annotations = {
            horizontal = [{ label = "warehouse-stale", value = var.warehouse_freshness_alarm_minutes * 60 }]
          }
          yAxis = { left = { min = 0 } }
        }
      },
      {
        # What run-blocked watches: how many transform or load runs are blocked (0: none).
        type   = "metric"
        x      = 16
        y      = 6
        width  = 8
        height = 6
        properties = {
          title   = "Blocked runs (above 0: later runs wait)"
          region  = local.region
          view    = "timeSeries"
          period  = local.schedule_minutes * 60
          stat    = "Maximum"
          metrics = [["Onyx", "BlockedRuns", { label = "blocked", color = "#d62728" }]]
          yAxis   = { left = { min = 0 } }
        }
      },
    ],
    local.rows_per_table_widgets,
    [
      {
        type   = "metric"
        x      = 0
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Run duration per stage (ms)"
          region  = local.region
          view    = "timeSeries"
          period  = 60
          stat    = "Maximum"
          metrics = [for stage in local.stages : ["Onyx", "DurationMs", "Stage", stage, { label = stage }]]
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Successful runs per stage"
          region  = local.region
          view    = "timeSeries"
          period  = 3600
          stat    = "Sum"
          metrics = [for stage in local.stages : ["Onyx", "RunSucceeded", "Stage", stage, { label = stage }]]
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 18
        width  = 8
        height = 6
        properties = {
          title   = "Quarantined rows (transform)"
          region  = local.region
          view    = "timeSeries"
          period  = 60
          stat    = "Sum"
          metrics = [["Onyx", "QuarantinedRows", "Stage", "transform", { label = "quarantined", color = "#d62728" }]]
        }
      },
      {
        type   = "metric"
        x      = 0
        y      = 24
        width  = 8
        height = 6
        properties = {
          title  = "Errors: failed invocations and ERROR log lines"
          region = local.region
          view   = "timeSeries"
          period = 300
          stat   = "Sum"
          metrics = concat(
            [for stage in local.stages : ["AWS/Lambda", "Errors", "FunctionName", local.stage_functions[stage].function_name, { label = "${stage} invocation errors" }]],
            [for stage in local.stages : [local.stage_functions[stage].error_metric.namespace, local.stage_functions[stage].error_metric.name, { label = "${stage} ERROR lines" }]],
          )
        }
      },
      {
        type   = "metric"
        x      = 8
        y      = 24
        width  = 8
        height = 6
        properties = {
          title   = "Throttles"
          region  = local.region
          view    = "timeSeries"
          period  = 300
          stat    = "Sum"
          metrics = [for stage in local.stages : ["AWS/Lambda", "Throttles", "FunctionName", local.stage_functions[stage].function_name, { label = stage }]]
        }
      },
      {
        type   = "metric"
        x      = 16
        y      = 24
        width  = 8
        height = 6
        properties = {
          title   = "Dead-letter queue depth"
          region  = local.region
          view    = "timeSeries"
          period  = 300
          stat    = "Maximum"
          metrics = [for stage in local.stages : ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", local.stage_functions[stage].dlq_name, { label = stage }]]
        }
      },
      {
        # Logs Insights over the three functions' log groups: their ERROR lines (JSON with level,
        # message, stage, run_id and error, as telemetry::lambda_subscriber writes them), newest
        # first; @log names the log group, so the function.
        type   = "log"
        x      = 0
        y      = 30
        width  = 24
        height = 8
        properties = {
          title  = "Recent ERROR lines (extract, transform, load)"
          region = local.region
          view   = "table"
          query  = "SOURCE '${module.extract.log_group_name}' | SOURCE '${module.transform.log_group_name}' | SOURCE '${module.load.log_group_name}' | fields @timestamp, @log, stage, run_id, message, error | filter level = \"ERROR\" | sort @timestamp desc | limit 50"
        }
      },
    ],
  )
}

resource "aws_cloudwatch_dashboard" "onyx" {
  dashboard_name = local.dashboard_name
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
