output "function_name" {
  description = "Name of the function."
  value       = aws_lambda_function.this.function_name
}

output "function_arn" {
  description = "ARN of the function."
  value       = aws_lambda_function.this.arn
}

output "role_arn" {
  description = "ARN of the execution role."
  value       = aws_iam_role.this.arn
}

output "log_group_name" {
  description = "Log group of the function."
  value       = aws_cloudwatch_log_group.this.name
}

output "dlq_name" {
  description = "Name of the dead-letter queue."
  value       = aws_sqs_queue.dlq.name
}

output "dlq_arn" {
  description = "ARN of the dead-letter queue."
  value       = aws_sqs_queue.dlq.arn
}

output "error_metric" {
  description = "Namespace and name of the metric counting ERROR log lines."
  value = {
    namespace = var.error_metric_namespace
    name      = local.error_metric_name
  }
}

output "alarm_arns" {
  description = "ARNs of every alarm of the function (the dashboard's alarm widget shows them)."
  value = [
    aws_cloudwatch_metric_alarm.error_log_lines.arn,
    aws_cloudwatch_metric_alarm.errors.arn,
    aws_cloudwatch_metric_alarm.throttles.arn,
    aws_cloudwatch_metric_alarm.dlq_depth.arn,
    aws_cloudwatch_metric_alarm.async_events_dropped.arn,
    aws_cloudwatch_metric_alarm.destination_delivery_failures.arn,
  ]
}
