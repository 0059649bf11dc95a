variable "region" {
  description = "Region of the state bucket and of the stack the deploy and plan roles are scoped to (use the pipeline's region)."
  type        = string
  default     = "eu-west-2"
}

variable "name_prefix" {
  description = "Prefix of the state bucket's name, and the name_prefix of the stack (terraform/env/<env>.tfvars) whose names the deploy and plan roles are scoped to."
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

variable "github_owner" {
  description = "GitHub owner (user or organisation) of the repository whose workflows deploy and plan; with github_repository, creates the OIDC provider and the roles (github.tf). null: none."
  type        = string
  default     = null
}

variable "github_repository" {
  description = "Name of that GitHub repository (without the owner)."
  type        = string
  default     = null
}

variable "github_oidc_provider_arn" {
  description = "ARN of an existing token.actions.githubusercontent.com identity provider to reuse (an account has at most one per URL); null creates it."
  type        = string
  default     = null
}

variable "create_rds_service_linked_role" {
  description = "Create RDS's service-linked role (AWSServiceRoleForRDS), which a Terraform-created warehouse needs and the deploy role may not create. false when the account already has it (any RDS instance ever created in it made it): `aws iam get-role --role-name AWSServiceRoleForRDS` tells."
  type        = bool
  default     = true
}

variable "deploy_branch" {
  description = "The branch whose pushes the deploy role trusts (with the production environment and .github/workflows/deploy.yml): the repository's OIDC subject claim must be customised to include repo, context and job_workflow_ref (docs/deploy.md)."
  type        = string
  default     = "main"
}
