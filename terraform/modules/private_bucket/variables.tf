variable "bucket_name" {
  description = "Globally unique name of the bucket."
  type        = string
}

variable "kms_key_arn" {
  description = "ARN of the customer managed KMS key used as the bucket's default encryption (SSE-KMS with an S3 bucket key)."
  type        = string
}

variable "noncurrent_version_expiration_days" {
  description = "Days after which a noncurrent (overwritten or deleted) object version is removed."
  type        = number
  default     = 30

  validation {
    condition     = var.noncurrent_version_expiration_days >= 1
    error_message = "noncurrent_version_expiration_days must be at least 1."
  }
}

variable "abort_incomplete_multipart_upload_days" {
  description = "Days after which an unfinished multipart upload is aborted and its parts deleted."
  type        = number
  default     = 7
}

variable "force_destroy" {
  description = "Let `terraform destroy` delete a bucket that still holds objects. Keep false outside throwaway environments."
  type        = bool
  default     = false
}

variable "current_version_expiration_days" {
  description = "Days after which current objects expire (null: never). For buckets of short-lived output, e.g. Athena query results."
  type        = number
  default     = null

  validation {
    condition     = var.current_version_expiration_days == null || try(var.current_version_expiration_days >= 1, false)
    error_message = "current_version_expiration_days must be null or at least 1."
  }
}
