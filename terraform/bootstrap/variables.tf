variable "region" {
  description = "Region of the state bucket (use the pipeline's region)."
  type        = string
  default     = "eu-west-2"
}

variable "name_prefix" {
  description = "Prefix of the state bucket's name."
  type        = string
  default     = "onyx"
}

variable "bucket_name_suffix" {
  description = "Suffix making the bucket name globally unique; null uses the AWS account ID."
  type        = string
  default     = null
}

variable "state_key" {
  description = "Object key of the main root's state (must match the key in terraform/versions.tf)."
  type        = string
  default     = "onyx/terraform.tfstate"
}

variable "force_destroy_state_bucket" {
  description = "Let `terraform destroy` delete the state bucket with every state version in it. Only for tearing everything down."
  type        = bool
  default     = false
}
