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
  description = "Role the deploy workflow assumes (environment production of the repository); null without github_owner/github_repository."
  value       = one(aws_iam_role.deploy[*].arn)
}

output "plan_role_arn" {
  description = "Read-only role the pull-request plan assumes."
  value       = one(aws_iam_role.plan[*].arn)
}

output "permissions_boundary_arn" {
  description = "Boundary of the deploy role; the main root's permissions_boundary_arn (every role it creates must carry it)."
  value       = one(aws_iam_policy.boundary[*].arn)
}

output "github_oidc_provider_arn" {
  description = "GitHub's OIDC identity provider the roles trust."
  value       = local.oidc_provider_arn
}

output "github_repository_variables" {
  description = "Repository variables (Settings -> Secrets and variables -> Actions -> Variables) the workflows read."
  value = local.github_roles ? {
    AWS_DEPLOY_ROLE_ARN           = aws_iam_role.deploy[0].arn
    AWS_PLAN_ROLE_ARN             = aws_iam_role.plan[0].arn
    ONYX_PERMISSIONS_BOUNDARY_ARN = aws_iam_policy.boundary[0].arn
    TF_STATE_BUCKET               = module.state_bucket.id
    TF_STATE_KMS_KEY_ARN          = aws_kms_key.state.arn
  } : null
}
