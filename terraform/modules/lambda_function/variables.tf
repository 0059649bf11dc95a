variable "function_name" {
  description = "Name of the Lambda function; its log group is /aws/lambda/<function_name>."
  type        = string
}

variable "description" {
  description = "Description shown in the Lambda console."
  type        = string
  default     = ""
}

variable "zip_path" {
  description = "Path of the cargo-lambda zip (target/lambda/<bin>/bootstrap.zip). Read at plan time: run `make package` first."
  type        = string
}

variable "code_bucket" {
  description = "Name of the versioned bucket the zip is uploaded to."
  type        = string
}

variable "kms_key_arn" {
  description = "Customer managed KMS key encrypting the code object, environment variables, log group and dead-letter queue."
  type        = string
}

variable "environment" {
  description = "Environment variables of the function. No secrets: secrets are fetched from Secrets Manager at run time."
  type        = map(string)
  default     = {}
}

variable "memory_size" {
  description = "Memory in MiB (CPU scales with it)."
  type        = number
  default     = 512

  validation {
    condition     = var.memory_size >= 128 && var.memory_size <= 10240
    error_message = "memory_size must be between 128 and 10240 MiB."
  }
}

variable "timeout" {
  description = "Timeout of one invocation in seconds."
  type        = number
  default     = 300

  validation {
    condition     = var.timeout >= 1 && var.timeout <= 900
    error_message = "timeout must be between 1 and 900 seconds."
  }
}

variable "policy_json" {
  description = "IAM policy document (JSON) with the function's own permissions; log, DLQ and tracing permissions are added by the module."
  type        = string
}

variable "log_retention_days" {
  description = "Retention of the function's log group."
  type        = number
  default     = 365
}

variable "alarm_topic_arn" {
  description = "SNS topic that every alarm of this function notifies (alarm and OK)."
  type        = string
}

variable "runbook_url" {
  description = "Absolute address of docs/runbook.md; each alarm description links its section (<runbook_url>#<section>)."
  type        = string

  validation {
    condition     = can(regex("^https://", var.runbook_url))
    error_message = "runbook_url must be an absolute https:// address: the alarm mail links it."
  }
}

variable "dashboard_url" {
  description = "Address of the stack's CloudWatch dashboard, linked from each alarm description."
  type        = string
}

variable "maximum_retry_attempts" {
  description = "Retries of a failed asynchronous invocation before it goes to the dead-letter queue (0-2)."
  type        = number
  default     = 2
}

variable "maximum_event_age_in_seconds" {
  description = "Age after which an undelivered asynchronous event goes to the dead-letter queue."
  type        = number
  default     = 21600
}

variable "tracing_mode" {
  description = "X-Ray tracing mode: Active records a trace segment for every invocation; PassThrough only when the caller sampled."
  type        = string
  default     = "Active"

  validation {
    condition     = contains(["Active", "PassThrough"], var.tracing_mode)
    error_message = "tracing_mode must be Active or PassThrough."
  }
}

variable "vpc_config" {
  description = "Attach the function to private subnets (e.g. to reach a private warehouse). null keeps it outside any VPC."
  type = object({
    subnet_ids         = list(string)
    security_group_ids = list(string)
  })
  default = null
}

variable "error_metric_namespace" {
  description = "CloudWatch namespace of the metric counting ERROR log lines."
  type        = string
  default     = "Onyx/Logs"
}

variable "reserved_concurrent_executions" {
  description = "Concurrency reserved for the function; null reserves none (the account's unreserved pool). Runs are exactly-once under any concurrency."
  type        = number
  default     = null

  validation {
    condition     = var.reserved_concurrent_executions == null || try(var.reserved_concurrent_executions >= 1, false)
    error_message = "reserved_concurrent_executions must be null (no reservation) or at least 1 (0 would stop the function)."
  }
}

variable "permissions_boundary_arn" {
  description = "Permission boundary of the execution role: the stack's workload boundary (terraform/bootstrap)."
  type        = string
}

variable "iam_path" {
  description = "IAM path of the execution role: the stack's path, the only one the deploy role may create roles under."
  type        = string

  validation {
    condition     = can(regex("^/[a-z0-9-]+/$", var.iam_path))
    error_message = "iam_path must look like /onyx/."
  }
}
