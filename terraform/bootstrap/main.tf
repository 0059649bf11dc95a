# Creates the bucket that holds the main root's Terraform state (with its S3-native lock file).

data "aws_caller_identity" "current" {}
data "aws_partition" "current" {}

locals {
  bucket_name = "${var.name_prefix}-tfstate-${coalesce(var.bucket_name_suffix, data.aws_caller_identity.current.account_id)}"
}

resource "aws_kms_key" "state" {
  description             = "Onyx Terraform state"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # In a key policy "Resource": "*" means this key. Access is delegated to IAM, so only
        # principals whose IAM policies allow it (administrators, the deploy role) can read state.
        Sid       = "KeyPolicyThisKeyAccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${data.aws_partition.current.partition}:iam::${data.aws_caller_identity.current.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
    ]
  })
}

resource "aws_kms_alias" "state" {
  name          = "alias/${var.name_prefix}-tfstate"
  target_key_id = aws_kms_key.state.key_id
}

module "state_bucket" {
  source = "../modules/private_bucket"

  bucket_name = local.bucket_name
  kms_key_arn = aws_kms_key.state.arn

  force_destroy = var.force_destroy_state_bucket
  # Old state versions are the way back from a bad apply: keep them for three months.
  noncurrent_version_expiration_days = 90
}
