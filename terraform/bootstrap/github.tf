# What GitHub Actions signs in to AWS with (issue #13 item 7): GitHub's OIDC identity provider
# (or an existing one), a deploy role only the `production` environment of this repository can
# assume, a read-only plan role for its pull requests, and the permission boundary that caps the
# deploy role and every role it creates. Created when github_owner and github_repository are set.
#
# Names: the roles are github-<prefix>-deploy / -plan, outside the `<prefix>-*` role names the
# deploy role manages, so it cannot change itself or the plan role (the boundary denies it too).

locals {
  github_roles  = var.github_owner != null && var.github_repository != null
  github_count  = local.github_roles ? 1 : 0
  github_repo   = local.github_roles ? "${var.github_owner}/${var.github_repository}" : ""
  github_issuer = "token.actions.githubusercontent.com"

  oidc_provider_arn = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : one(aws_iam_openid_connect_provider.github[*].arn)

  # The `sub` claims GitHub puts in the token: a job with `environment: production`, and a job
  # run for a pull_request event (docs: "Example subject claims").
  deploy_subject = "repo:${local.github_repo}:environment:production"
  plan_subject   = "repo:${local.github_repo}:pull_request"

  deploy_role_name = "github-${var.name_prefix}-deploy"
  plan_role_name   = "github-${var.name_prefix}-plan"
  boundary_name    = "${var.name_prefix}-deploy-boundary"
  # Built, not read from the policy resource: the boundary's own statements name it.
  boundary_arn = "arn:${local.partition}:iam::${local.account_id}:policy/${local.boundary_name}"

  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = var.region
  p          = var.name_prefix

  # What terraform/ names, from its name_prefix (main.tf, lake.tf, warehouse.tf, alerting.tf).
  arn = {
    buckets     = [for b in ["ingestion", "processed", "code", "athena-results"] : "arn:${local.partition}:s3:::${local.p}-${b}-*"]
    functions   = "arn:${local.partition}:lambda:${local.region}:${local.account_id}:function:${local.p}-*"
    log_groups  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/*/${local.p}-*"
    rds_os_logs = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:RDSOSMetrics*"
    queues      = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.p}-*"
    topics      = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.p}-*"
    rules       = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.p}-*"
    alarms      = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.p}-*"
    dashboard   = "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.p}"
    secrets     = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:${local.p}/*"
    # The warehouse's master password: RDS creates and names that secret itself (rds!db-…).
    rds_secrets = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:rds!db-*"
    glue = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${replace("${local.p}_lake", "-", "_")}",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${replace("${local.p}_lake", "-", "_")}/*",
    ]
    athena = [
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:workgroup/${local.p}-lake",
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog",
    ]
    rds = concat(
      [for r in ["db", "pg", "subgrp", "snapshot"] : "arn:${local.partition}:rds:${local.region}:${local.account_id}:${r}:${local.p}-warehouse*"],
      ["arn:${local.partition}:rds:${local.region}:${local.account_id}:og:default:postgres-*"],
    )
    roles = "arn:${local.partition}:iam::${local.account_id}:role/${local.p}-*"
    kms   = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
    alias = "arn:${local.partition}:kms:${local.region}:${local.account_id}:alias/${local.p}"
    state = ["${module.state_bucket.arn}/${var.state_key}", "${module.state_bucket.arn}/${var.state_key}.tflock"]
  }
  ec2_in_account = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:*/*"
  # The EC2 reads of the optional warehouse's network (none can be scoped to a resource).
  ec2_reads = [
    "ec2:DescribeSecurityGroups", "ec2:DescribeSecurityGroupRules", "ec2:DescribeVpcEndpoints", "ec2:DescribeVpcs",
    "ec2:DescribeSubnets", "ec2:DescribeNetworkInterfaces", "ec2:DescribePrefixLists", "ec2:DescribeRouteTables",
    "ec2:DescribeAccountAttributes",
  ]
  rds_monitoring_policy = "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole"
  stack_resources = flatten([
    local.arn.buckets, [for b in local.arn.buckets : "${b}/*"], local.arn.functions, "${local.arn.functions}:*",
    local.arn.log_groups, "${local.arn.log_groups}:*", local.arn.rds_os_logs, "${local.arn.rds_os_logs}:*",
    local.arn.queues, local.arn.topics, local.arn.rules, local.arn.alarms, local.arn.dashboard,
    local.arn.secrets, local.arn.rds_secrets, local.arn.glue, local.arn.athena, local.arn.rds,
  ])
}

resource "aws_iam_openid_connect_provider" "github" {
  # One provider per URL and account: set github_oidc_provider_arn to reuse an existing one.
  count = local.github_roles && var.github_oidc_provider_arn == null ? 1 : 0

  url            = "https://${local.github_issuer}"
  client_id_list = ["sts.amazonaws.com"]
}

# ---------------------------------------------------------------------------------------------
# Trust: who may assume each role.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "deploy_trust" {
  count = local.github_count

  statement {
    sid     = "GitHubProductionEnvironmentOfThisRepository"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:sub"
      values   = [local.deploy_subject]
    }
  }
}

data "aws_iam_policy_document" "plan_trust" {
  count = local.github_count

  statement {
    sid     = "GitHubPullRequestsOfThisRepository"
    actions = ["sts:AssumeRoleWithWebIdentity"]

    principals {
      type        = "Federated"
      identifiers = [local.oidc_provider_arn]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:aud"
      values   = ["sts.amazonaws.com"]
    }

    condition {
      test     = "StringEquals"
      variable = "${local.github_issuer}:sub"
      values   = [local.plan_subject]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Deploy role: terraform apply of terraform/ (and its state), scoped to the stack's names.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "deploy" {
  count = local.github_count

  statement {
    sid       = "ReadWriteTheStateAndItsLock"
    actions   = ["s3:GetObject", "s3:PutObject", "s3:DeleteObject"]
    resources = local.arn.state
  }

  statement {
    sid       = "ListTheStateBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.state_bucket.arn]
  }

  statement {
    sid       = "UseTheStateKey"
    actions   = ["kms:Decrypt", "kms:Encrypt", "kms:GenerateDataKey"]
    resources = [aws_kms_key.state.arn]
  }

  # Secrets are left out: Terraform creates them empty and never reads or writes their values.
  statement {
    sid       = "ManageTheStack"
    actions   = ["s3:*", "lambda:*", "logs:*", "sqs:*", "sns:*", "events:*", "cloudwatch:*", "glue:*", "athena:*", "rds:*"]
    resources = local.stack_resources
  }

  statement {
    sid = "ManageTheStackSecretsNotTheirValues"
    actions = [
      "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy", "secretsmanager:RestoreSecret", "secretsmanager:TagResource",
      "secretsmanager:UntagResource", "secretsmanager:UpdateSecret",
    ]
    resources = [local.arn.secrets, local.arn.rds_secrets]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  # Roles only under the stack's names and only with the boundary: a role the deploy role makes
  # can do no more than the boundary allows, so it cannot make itself an administrator.
  statement {
    sid       = "CreateStackRolesOnlyWithTheBoundary"
    actions   = ["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }
  }

  statement {
    sid       = "AttachOnlyTheRdsMonitoringPolicyWithTheBoundary"
    actions   = ["iam:AttachRolePolicy"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = [local.rds_monitoring_policy]
    }
  }

  statement {
    sid = "ManageStackRoles"
    actions = [
      "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole", "iam:ListRoleTags", "iam:TagRole", "iam:UntagRole", "iam:UpdateRole",
      "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole", "iam:DeleteRolePolicy",
      "iam:DetachRolePolicy",
    ]
    resources = [local.arn.roles]
  }

  statement {
    sid       = "PassStackRolesToLambdaAndRdsMonitoring"
    actions   = ["iam:PassRole"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = ["lambda.amazonaws.com", "monitoring.rds.amazonaws.com"]
    }
  }

  statement {
    sid       = "ReadTheRdsMonitoringPolicy"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = [local.rds_monitoring_policy]
  }

  # The pipeline's key is the one aliased alias/<prefix> (terraform/kms.tf). The alias can be
  # created, not moved or deleted, so no other key can be brought under this statement.
  statement {
    sid       = "ManageThePipelineKey"
    actions   = ["kms:*"]
    resources = [local.arn.kms]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.p}"]
    }
  }

  # Between kms:CreateKey and its alias Terraform enables rotation on the new key and reads it:
  # nothing here changes a key policy, uses a key, or deletes one.
  statement {
    sid       = "SetUpANewKeyBeforeItsAlias"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags", "kms:EnableKeyRotation", "kms:TagResource", "kms:CreateAlias"]
    resources = [local.arn.kms]

    condition {
      test     = "Null"
      variable = "kms:ResourceAliases"
      values   = ["true"]
    }
  }

  statement {
    sid       = "CreateThePipelineKeyAlias"
    actions   = ["kms:CreateAlias"]
    resources = [local.arn.alias]
  }

  statement {
    # AWS requires "*": kms:CreateKey, kms:ListAliases and these EC2 Describe calls name no resource.
    sid       = "NoResourceLevelPermissions"
    actions   = concat(["kms:CreateKey", "kms:ListAliases"], local.ec2_reads)
    resources = ["*"]
  }

  statement {
    sid       = "DescribeVpcs"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/*"]
  }

  # The optional warehouse's security groups and VPC endpoints, in an existing VPC: created only
  # tagged Project = onyx (provider default_tags), changed only when so tagged; tags only at creation.
  statement {
    sid       = "CreateTaggedNetwork"
    actions   = ["ec2:CreateSecurityGroup", "ec2:CreateVpcEndpoint"]
    resources = [local.ec2_in_account]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/Project"
      values   = ["onyx"]
    }
  }

  statement {
    sid       = "TagOnlyWhatIsBeingCreated"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_in_account]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateSecurityGroup", "CreateVpcEndpoint", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]
    }
  }

  statement {
    sid = "ChangeTheStackNetwork"
    actions = [
      "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroup*", "ec2:RevokeSecurityGroup*", "ec2:ModifySecurityGroupRules",
      "ec2:UpdateSecurityGroupRuleDescriptions*", "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints", "ec2:DeleteTags",
    ]
    resources = [
      "arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group/*",
      "arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc-endpoint/*",
    ]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/Project"
      values   = ["onyx"]
    }
  }

  statement {
    # The rules of those groups: new rules carry no tags yet; the group's own check above applies too.
    sid       = "RulesOfTheStackSecurityGroups"
    actions   = ["ec2:AuthorizeSecurityGroup*", "ec2:RevokeSecurityGroup*", "ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptions*"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group-rule/*"]
  }
}

resource "aws_iam_role" "deploy" {
  count = local.github_count

  name                 = local.deploy_role_name
  description          = "GitHub Actions, environment production of ${local.github_repo}: terraform apply of the Onyx stack"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust[0].json
  permissions_boundary = aws_iam_policy.boundary[0].arn
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "deploy" {
  count = local.github_count

  name   = "deploy-the-stack"
  role   = aws_iam_role.deploy[0].id
  policy = data.aws_iam_policy_document.deploy[0].json
}

# ---------------------------------------------------------------------------------------------
# The permission boundary: the most the deploy role, and every role it creates (the functions',
# the lake analyst's, RDS monitoring's), can ever do, whatever their own policies say: the stack's
# services on the stack's names, the state, roles only with this boundary. It must stay under
# IAM's 6,144 characters for a managed policy, hence service-wide actions here; the deploy role's
# own policy (above) is the narrower one.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "boundary" {
  count = local.github_count

  statement {
    sid       = "StackServicesOnStackNames"
    actions   = ["s3:*", "lambda:*", "logs:*", "sqs:*", "sns:*", "events:*", "cloudwatch:*", "secretsmanager:*", "glue:*", "athena:*", "rds:*"]
    resources = concat(local.stack_resources, local.arn.state, [module.state_bucket.arn])
  }

  statement {
    sid       = "StackRoles"
    actions   = ["iam:*Role", "iam:*RolePolic*", "iam:*RolePermissionsBoundary", "iam:*RoleTags", "iam:TagRole", "iam:UntagRole", "iam:UpdateAssumeRolePolicy", "iam:ListInstanceProfilesForRole"]
    resources = [local.arn.roles]
  }

  statement {
    sid       = "ReadTheRdsMonitoringPolicy"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = [local.rds_monitoring_policy]
  }

  statement {
    sid       = "StackKeys"
    actions   = ["kms:*"]
    resources = [local.arn.kms, local.arn.alias]

    condition {
      test     = "ForAnyValue:StringEquals"
      variable = "kms:ResourceAliases"
      values   = ["alias/${local.p}", "alias/${local.p}-tfstate"]
    }
  }

  statement {
    sid       = "SetUpANewKeyBeforeItsAlias"
    actions   = ["kms:DescribeKey", "kms:GetKey*", "kms:ListResourceTags", "kms:EnableKeyRotation", "kms:TagResource", "kms:CreateAlias"]
    resources = [local.arn.kms]

    condition {
      test     = "Null"
      variable = "kms:ResourceAliases"
      values   = ["true"]
    }
  }

  statement {
    # AWS requires "*": these calls (and X-Ray's writes) name no resource.
    sid       = "NoResourceLevelPermissions"
    actions   = concat(["kms:CreateKey", "kms:ListAliases", "xray:PutTraceSegments", "xray:PutTelemetryRecords"], local.ec2_reads)
    resources = ["*"]
  }

  statement {
    # The optional warehouse's security groups and VPC endpoints; the functions' network interfaces.
    sid       = "StackNetwork"
    actions   = ["ec2:*SecurityGroup*", "ec2:*VpcEndpoint*", "ec2:*NetworkInterface*", "ec2:*PrivateIpAddresses", "ec2:*Tags", "ec2:DescribeVpcAttribute"]
    resources = [local.ec2_in_account]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }

  statement {
    # A Deny on "*" grants nothing: no role is created, or given a policy, without this boundary.
    sid       = "DenyRoleWritesWithoutThisBoundary"
    effect    = "Deny"
    actions   = ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.boundary_arn]
    }
  }

  statement {
    sid       = "DenyRemovingTheBoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  statement {
    sid     = "DenyChangingTheBoundaryAndTheGitHubRoles"
    effect  = "Deny"
    actions = ["iam:Create*", "iam:Put*", "iam:Attach*", "iam:Detach*", "iam:Delete*", "iam:Update*", "iam:Tag*", "iam:Untag*", "iam:SetDefaultPolicyVersion"]
    resources = [
      local.boundary_arn,
      "arn:${local.partition}:iam::${local.account_id}:role/${local.deploy_role_name}",
      "arn:${local.partition}:iam::${local.account_id}:role/${local.plan_role_name}",
    ]
  }

  statement {
    # The state's versions are the way back from a bad apply; its key and bucket are the bootstrap's.
    sid       = "DenyAdministeringTheStateBucketAndKey"
    effect    = "Deny"
    actions   = ["s3:DeleteBucket*", "s3:PutBucket*", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:DeleteObjectVersion", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant"]
    resources = [module.state_bucket.arn, aws_kms_key.state.arn]
  }
}

resource "aws_iam_policy" "boundary" {
  count = local.github_count

  name        = local.boundary_name
  description = "Permission boundary of the Onyx deploy role and of every role it creates: the stack's services on the stack's resources; roles only with this boundary"
  policy      = data.aws_iam_policy_document.boundary[0].json
}

# ---------------------------------------------------------------------------------------------
# Plan role: terraform plan on pull requests. Reads only: the stack's configuration (no object
# contents, no secret values), the state (-lock=false: it may not write the lock object).
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "plan" {
  count = local.github_count

  statement {
    sid       = "ReadTheState"
    actions   = ["s3:GetObject"]
    resources = ["${module.state_bucket.arn}/${var.state_key}"]
  }

  statement {
    sid       = "ListTheStateBucket"
    actions   = ["s3:ListBucket"]
    resources = [module.state_bucket.arn]
  }

  statement {
    sid       = "DecryptTheState"
    actions   = ["kms:Decrypt"]
    resources = [aws_kms_key.state.arn]
  }

  statement {
    # Configuration reads of the stack's own resources. s3:GetObject only on the code bucket (the
    # zips' metadata); data objects and secret values stay unreadable.
    sid = "ReadTheStackConfiguration"
    actions = [
      "s3:GetBucket*", "s3:GetEncryptionConfiguration", "s3:GetLifecycleConfiguration", "s3:GetAccelerateConfiguration",
      "s3:GetReplicationConfiguration", "s3:ListBucket", "lambda:Get*", "lambda:List*", "logs:Describe*", "logs:List*",
      "sqs:GetQueueAttributes", "sqs:GetQueueUrl", "sqs:ListQueueTags", "sns:GetTopicAttributes", "sns:GetSubscriptionAttributes",
      "sns:ListSubscriptionsByTopic", "sns:ListTagsForResource", "events:Describe*", "events:List*", "cloudwatch:Describe*",
      "cloudwatch:GetDashboard", "cloudwatch:ListTagsForResource", "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy", "glue:GetDatabase", "glue:GetTable", "glue:GetTags", "athena:GetWorkGroup",
      "athena:GetNamedQuery", "athena:ListNamedQueries", "athena:ListTagsForResource", "rds:Describe*", "rds:ListTagsForResource",
    ]
    resources = local.stack_resources
  }

  statement {
    sid       = "ReadTheCodeObjects"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = ["arn:${local.partition}:s3:::${local.p}-code-*/*"]
  }

  statement {
    sid       = "ReadStackRoles"
    actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListRoleTags"]
    resources = [local.arn.roles]
  }

  statement {
    sid       = "ReadThePipelineKey"
    actions   = ["kms:DescribeKey", "kms:GetKeyPolicy", "kms:GetKeyRotationStatus", "kms:ListResourceTags"]
    resources = [local.arn.kms]
  }

  statement {
    # The functions' environment variables (names and ARNs, no secrets) are encrypted with the
    # pipeline's key; reading a function's configuration decrypts them through Lambda.
    sid       = "DecryptFunctionEnvironmentsViaLambda"
    actions   = ["kms:Decrypt"]
    resources = [local.arn.kms]

    condition {
      test     = "StringEquals"
      variable = "kms:ViaService"
      values   = ["lambda.${local.region}.amazonaws.com"]
    }
  }

  statement {
    # AWS requires "*": kms:ListAliases and these EC2 Describe calls name no resource.
    sid       = "ReadNoResourceLevelPermissions"
    actions   = concat(["kms:ListAliases"], local.ec2_reads)
    resources = ["*"]
  }

  statement {
    sid       = "DescribeVpcs"
    actions   = ["ec2:DescribeVpcAttribute"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:vpc/*"]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
  }
}

resource "aws_iam_role" "plan" {
  count = local.github_count

  name                 = local.plan_role_name
  description          = "GitHub Actions, pull requests of ${local.github_repo}: read-only terraform plan of the Onyx stack"
  assume_role_policy   = data.aws_iam_policy_document.plan_trust[0].json
  max_session_duration = 3600
}

resource "aws_iam_role_policy" "plan" {
  count = local.github_count

  name   = "plan-the-stack"
  role   = aws_iam_role.plan[0].id
  policy = data.aws_iam_policy_document.plan[0].json
}
