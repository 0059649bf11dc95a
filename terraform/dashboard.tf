# Operations dashboard built from the Embedded Metric Format records the functions write
# (namespace Onyx; dimension sets [Stage] and [Stage, Table]) and from AWS/Lambda and AWS/SQS.

locals {
  stages = ["extract", "transform", "load"]

  stage_functions = {
    extract   = module.extract
    transform = module.transform
    load      = module.load
  }

  # One graph per stage of the rows each table contributed, one point per run.
  rows_per_table_widgets = [
    for i, stage in local.stages : {
      type   = "metric"
      x      = 8 * i
      y      = 6
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
        width  = 16
        height = 6
        properties = {
          title = "Alarms"
          alarms = concat(
            flatten([for stage in local.stages : local.stage_functions[stage].alarm_arns]),
            [aws_cloudwatch_metric_alarm.extract_freshness.arn],
          )
        }
      },
      {
        # Freshness: the freshness alarm drawn over its metric.
        type   = "metric"
        x      = 16
        y      = 0
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
    ],
    local.rows_per_table_widgets,
    [
      {
        type   = "metric"
        x      = 0
        y      = 12
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
        y      = 12
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
        y      = 12
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
        y      = 18
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
        y      = 18
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
        y      = 18
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
    ],
  )
}

resource "aws_cloudwatch_dashboard" "onyx" {
  dashboard_name = var.name_prefix
  dashboard_body = jsonencode({ widgets = local.dashboard_widgets })
}
