output "state_bucket" {
  description = "Bucket holding the main root's state."
  value       = module.state_bucket.id
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Contents of terraform/backend.hcl (`make bootstrap` writes it)."
  value       = <<-EOT
    bucket     = "${module.state_bucket.id}"
    key        = "${var.state_key}"
    region     = "${var.region}"
    kms_key_id = "${aws_kms_key.state.arn}"
  EOT
}

output "deploy_role_arn" {
  description = "Role the deploy workflow assumes (deploy.yml on the deploy branch, environment production); null without github_owner/github_repository."
  value       = one(aws_iam_role.deploy[*].arn)
}

output "plan_role_arn" {
  description = "Read-only role the pull-request plan assumes."
  value       = one(aws_iam_role.plan[*].arn)
}

output "workload_boundary_arn" {
  description = "The workload boundary every role of terraform/ carries (under the IAM path /<name_prefix>/); terraform/main.tf derives the same ARN from the account and name_prefix."
  value       = aws_iam_policy.workload_boundary.arn
}

output "github_oidc_provider_arn" {
  description = "GitHub's OIDC identity provider the roles trust."
  value       = local.oidc_provider_arn
}

output "github_repository_variables" {
  description = "Repository variables (Settings -> Secrets and variables -> Actions -> Variables) the workflows read."
  value = local.github_roles ? {
    AWS_DEPLOY_ROLE_ARN  = aws_iam_role.deploy[0].arn
    AWS_PLAN_ROLE_ARN    = aws_iam_role.plan[0].arn
    TF_STATE_BUCKET      = module.state_bucket.id
    TF_STATE_KMS_KEY_ARN = aws_kms_key.state.arn
  } : null
}

output "github_oidc_subject_claim" {
  description = "The OIDC subject template the repository must use (GitHub API: PUT /repos/{owner}/{repo}/actions/oidc/customization/sub); docs/deploy.md shows the gh command. The roles' trust policies match subjects in this format only."
  value       = local.github_roles ? { use_default = false, include_claim_keys = ["repo", "context", "job_workflow_ref"] } : null
}
