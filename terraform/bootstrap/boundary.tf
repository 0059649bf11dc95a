# The workload boundary (issue #21): the most any role of the stack can ever do, whatever policy
# it is given — the functions', the lake analyst's, RDS monitoring's and the bastion's. Every role
# terraform/ creates carries it and lives under the stack's IAM path, and the deploy role may
# create, change, pass or re-trust a role only there and only with this boundary
# (github.tf). Created whether or not the GitHub roles are, because terraform/ always names it.
#
# It allows only what the workloads do (the VPC flow logs' delivery too), on the stack's resources, and denies reading the
# database secrets and the ingestion bucket's objects to anything but the code of the stack's
# own Lambda functions (lambda:SourceFunctionArn, which Lambda puts into every request made
# from a function's execution environment and nothing else can). So a role the deploy role
# creates with a foreign trust policy still cannot read a password or the source of truth.

locals {
  iam_path               = "/${local.p}/"
  workload_boundary_name = "${local.p}-workload-boundary"
  workload_boundary_arn  = "arn:${local.partition}:iam::${local.account_id}:policy/${local.workload_boundary_name}"
  stack_functions        = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.p}-*"
  stack_buckets          = "arn:${local.partition}:s3:::${local.p}-*"
  ingestion_buckets      = "arn:${local.partition}:s3:::${local.p}-ingestion-*"
  stack_secrets          = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.p}/*"
  lake_database          = replace("${local.p}_lake", "-", "_")
}

data "aws_iam_policy_document" "workload_boundary" {
  statement {
    sid       = "StackBucketsObjects"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:ListBucket", "s3:GetBucketLocation", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts"]
    resources = [local.stack_buckets, "${local.stack_buckets}/*"]

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "StackSecretsRead"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:DescribeSecret"]
    resources = [local.stack_secrets]
  }

  statement {
    sid       = "StackKeyUse"
    actions   = ["kms:Decrypt", "kms:GenerateDataKey", "kms:DescribeKey"]
    resources = ["arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.p}"]
    }
  }

  statement {
    sid     = "StackLogs"
    actions = ["logs:CreateLogGroup", "logs:CreateLogStream", "logs:PutLogEvents", "logs:DescribeLogStreams", "logs:GetLogEvents", "logs:PutRetentionPolicy"]
    resources = [
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/lambda/${local.p}-*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/vpc/${local.p}-*",
      "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:RDSOSMetrics*",
    ]
  }

  statement {
    # VPC Flow Logs checks its destination with DescribeLogGroups, which names no single group.
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    sid       = "StackDeadLetterQueues"
    actions   = ["sqs:SendMessage"]
    resources = ["arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.p}-*"]
  }

  statement {
    sid     = "StackLakeQueries"
    actions = ["athena:StartQueryExecution", "athena:StopQueryExecution", "athena:Get*", "athena:List*", "athena:BatchGet*", "glue:GetDatabase*", "glue:GetTable*", "glue:GetPartition*", "glue:BatchGetPartition"]
    resources = [
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:workgroup/${local.p}-lake",
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${local.lake_database}",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${local.lake_database}/*",
    ]
  }

  statement {
    # The VPC functions' network interfaces (Lambda manages them with the execution role).
    sid       = "FunctionNetworkInterfaces"
    actions   = ["ec2:CreateNetworkInterface", "ec2:DeleteNetworkInterface", "ec2:AssignPrivateIpAddresses", "ec2:UnassignPrivateIpAddresses"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:*/*"]
  }

  statement {
    # The bastion's SSM agent reports on its own instance.
    sid       = "BastionInstanceInformation"
    actions   = ["ssm:UpdateInstanceInformation", "ssm:ListInstanceAssociations"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:instance/*"]
  }

  statement {
    # AWS requires "*": X-Ray's writes, these EC2 Describe calls and the SSM agent's channel
    # (the bastion's Session Manager) name no resource.
    sid = "NoResourceLevelPermissions"
    actions = [
      "xray:PutTraceSegments", "xray:PutTelemetryRecords", "ec2:DescribeNetworkInterfaces", "ec2:DescribeSubnets",
      "ssmmessages:CreateControlChannel", "ssmmessages:CreateDataChannel", "ssmmessages:OpenControlChannel",
      "ssmmessages:OpenDataChannel", "ec2messages:GetMessages", "ec2messages:AcknowledgeMessage", "ec2messages:SendReply",
    ]
    resources = ["*"]
  }

  statement {
    # A Deny on "*" grants nothing: the database credentials and the source of truth are only for
    # the code of the stack's functions, whoever a role's trust policy admits.
    sid       = "DenySecretsAndSourceOfTruthOutsideTheFunctions"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue", "s3:GetObject", "s3:PutObject"]
    resources = [local.stack_secrets, "${local.ingestion_buckets}/*"]

    condition {
      test     = "ArnNotLike"
      variable = "lambda:SourceFunctionArn"
      values   = [local.stack_functions]
    }
  }
}

resource "aws_iam_policy" "workload_boundary" {
  name        = local.workload_boundary_name
  description = "Permission boundary of every role of the Onyx stack (path ${local.iam_path}): the functions', lake analyst's, RDS monitoring's and bastion's work on the stack's resources, nothing else"
  policy      = data.aws_iam_policy_document.workload_boundary.json
}

# RDS creates this role on first use, but only for a caller allowed iam:CreateServiceLinkedRole,
# which the deploy role is not: the bootstrap (an administrator) creates it once per account.
resource "aws_iam_service_linked_role" "rds" {
  count = var.create_rds_service_linked_role ? 1 : 0

  aws_service_name = "rds.amazonaws.com"
  description      = "Lets Amazon RDS manage the Onyx warehouse (created by terraform/bootstrap for the deploy role)"
}
