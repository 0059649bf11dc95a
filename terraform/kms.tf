# One customer managed key for the pipeline's data at rest: buckets, secrets, function
# environments, log groups, dead-letter queues, the two alarm topics and the optional warehouse.
resource "aws_kms_key" "onyx" {
  description             = "Onyx pipeline data at rest"
  enable_key_rotation     = true
  deletion_window_in_days = 30

  # Key policies name the key itself as "*": in a key policy, "Resource": "*" means this key.
  policy = jsonencode({
    Version = "2012-10-17"
    Statement = [
      {
        # Delegates access to IAM: the functions' roles get their narrow KMS permissions from IAM policies.
        Sid       = "KeyPolicyThisKeyAccountAdministers"
        Effect    = "Allow"
        Principal = { AWS = "arn:${local.partition}:iam::${local.account_id}:root" }
        Action    = "kms:*"
        Resource  = "*"
      },
      {
        Sid       = "KeyPolicyThisKeyCloudWatchLogs"
        Effect    = "Allow"
        Principal = { Service = "logs.${local.region}.amazonaws.com" }
        Action    = ["kms:Encrypt*", "kms:Decrypt*", "kms:ReEncrypt*", "kms:GenerateDataKey*", "kms:Describe*"]
        Resource  = "*"
        Condition = {
          ArnLike = {
            "kms:EncryptionContext:aws:logs:arn" = [
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${var.name_prefix}-*",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/rds/instance/${var.name_prefix}-*",
              "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/vpc/${var.name_prefix}-*",
            ]
          }
        }
      },
      {
        # CloudWatch alarms of this account publish to the encrypted alarm topics (outages and data
        # quality, alerting.tf).
        Sid       = "KeyPolicyThisKeyCloudWatchAlarms"
        Effect    = "Allow"
        Principal = { Service = "cloudwatch.amazonaws.com" }
        Action    = ["kms:Decrypt", "kms:GenerateDataKey*"]
        Resource  = "*"
        Condition = {
          StringEquals = { "aws:SourceAccount" = local.account_id }
        }
      },
    ]
  })
}

resource "aws_kms_alias" "onyx" {
  name          = "alias/${var.name_prefix}"
  target_key_id = aws_kms_key.onyx.key_id
}
