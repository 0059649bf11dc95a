# What GitHub Actions signs in to AWS with (issues #13 item 7, #21): GitHub's OIDC identity
# provider (or an existing one), a deploy role only the production environment's deploy workflow
# on the deploy branch can assume, and a read-only plan role for pull requests. Created when
# github_owner and github_repository are set.
#
# The deploy role cannot escalate (tests/iam_policy.rs evaluates these statements against the
# ways it could try): it may create, change, pass or re-trust only roles under the stack's IAM
# path and only with the workload boundary (boundary.tf); it changes EC2 resources only when they
# carry the stack's tag, which it may set only while creating them; S3 only in this account;
# secrets only the stack's, never their values; no function URLs or public permissions; no
# reading of data objects; no deleting of object versions, versioning, lifecycle or bucket policy
# changes on the data buckets (the first apply, which creates them, is an administrator's:
# docs/deploy.md). The roles are github-<prefix>-deploy / -plan, outside the stack's path.

locals {
  github_roles  = var.github_owner != null && var.github_repository != null
  github_count  = local.github_roles ? 1 : 0
  github_repo   = local.github_roles ? "${var.github_owner}/${var.github_repository}" : ""
  github_issuer = "token.actions.githubusercontent.com"

  oidc_provider_arn = var.github_oidc_provider_arn != null ? var.github_oidc_provider_arn : one(aws_iam_openid_connect_provider.github[*].arn)

  # GitHub's customised subject claim (include_claim_keys = repo, context, job_workflow_ref; set
  # once per repository, docs/deploy.md): the deploy role trusts the production environment
  # running deploy.yml from the deploy branch, not just any job that names the environment.
  deploy_subject = "repo:${local.github_repo}:environment:production:job_workflow_ref:${local.github_repo}/.github/workflows/deploy.yml@refs/heads/${var.deploy_branch}"
  plan_subject   = "repo:${local.github_repo}:pull_request:job_workflow_ref:${local.github_repo}/.github/workflows/ci.yml@refs/pull/*/merge"

  deploy_role_name = "github-${var.name_prefix}-deploy"
  plan_role_name   = "github-${var.name_prefix}-plan"

  partition  = data.aws_partition.current.partition
  account_id = data.aws_caller_identity.current.account_id
  region     = var.region
  p          = var.name_prefix

  # What terraform/ names, from its name_prefix (main.tf, lake.tf, warehouse.tf, alerting.tf).
  arn = {
    buckets      = [for b in ["ingestion", "processed", "code", "athena-results"] : "arn:${local.partition}:s3:::${local.p}-${b}-*"]
    data_buckets = [for b in ["ingestion", "processed"] : "arn:${local.partition}:s3:::${local.p}-${b}-*"]
    data_objects = [for b in ["ingestion", "processed"] : "arn:${local.partition}:s3:::${local.p}-${b}-*/*"]
    functions    = local.stack_functions
    log_groups   = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:/aws/*/${local.p}-*"
    rds_os_logs  = "arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:RDSOSMetrics*"
    queues       = "arn:${local.partition}:sqs:${local.region}:${local.account_id}:${local.p}-*"
    topics       = "arn:${local.partition}:sns:${local.region}:${local.account_id}:${local.p}-*"
    rules        = "arn:${local.partition}:events:${local.region}:${local.account_id}:rule/${local.p}-*"
    alarms       = "arn:${local.partition}:cloudwatch:${local.region}:${local.account_id}:alarm:${local.p}-*"
    dashboard    = "arn:${local.partition}:cloudwatch::${local.account_id}:dashboard/${local.p}"
    secrets      = local.stack_secrets
    # The warehouse's master password: RDS creates and names that secret itself (rds!db-…).
    rds_secrets = "arn:${local.partition}:secretsmanager:${local.region}:${local.account_id}:secret:rds!db-*"
    glue = [
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:catalog",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:database/${local.lake_database}",
      "arn:${local.partition}:glue:${local.region}:${local.account_id}:table/${local.lake_database}/*",
    ]
    athena = [
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:workgroup/${local.p}-lake",
      "arn:${local.partition}:athena:${local.region}:${local.account_id}:datacatalog/AwsDataCatalog",
    ]
    rds = concat(
      [for r in ["db", "pg", "subgrp", "snapshot"] : "arn:${local.partition}:rds:${local.region}:${local.account_id}:${r}:${local.p}-warehouse*"],
      ["arn:${local.partition}:rds:${local.region}:${local.account_id}:og:default:postgres-*"],
    )
    # Roles and instance profiles only under the stack's path (terraform/main.tf local.iam_path).
    roles             = "arn:${local.partition}:iam::${local.account_id}:role/${local.p}/*"
    instance_profiles = "arn:${local.partition}:iam::${local.account_id}:instance-profile/${local.p}/*"
    kms               = "arn:${local.partition}:kms:${local.region}:${local.account_id}:key/*"
    alias             = "arn:${local.partition}:kms:${local.region}:${local.account_id}:alias/${local.p}"
    state             = ["${module.state_bucket.arn}/${var.state_key}", "${module.state_bucket.arn}/${var.state_key}.tflock"]
    deploy_role       = "arn:${local.partition}:iam::${local.account_id}:role/${local.deploy_role_name}"
    plan_role         = "arn:${local.partition}:iam::${local.account_id}:role/${local.plan_role_name}"
  }
  ec2_in_account = "arn:${local.partition}:ec2:${local.region}:${local.account_id}:*/*"
  # The managed policies a stack role may have attached: RDS Enhanced Monitoring's and the
  # bastion's Session Manager core (both capped by the workload boundary).
  attachable_policies = [
    "arn:${local.partition}:iam::aws:policy/service-role/AmazonRDSEnhancedMonitoringRole",
    "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore",
  ]
  # The services a stack role may be passed to: the functions, RDS monitoring, the bastion, the
  # VPC's flow logs.
  pass_role_services = ["lambda.amazonaws.com", "monitoring.rds.amazonaws.com", "ec2.amazonaws.com", "vpc-flow-logs.amazonaws.com"]
  stack_tag          = { key = "OnyxStack", value = local.p }
  stack_resources = flatten([
    local.arn.buckets, [for b in local.arn.buckets : "${b}/*"], local.arn.functions, "${local.arn.functions}:*",
    local.arn.log_groups, "${local.arn.log_groups}:*", local.arn.rds_os_logs, "${local.arn.rds_os_logs}:*",
    local.arn.queues, local.arn.topics, local.arn.rules, local.arn.alarms, local.arn.dashboard,
    local.arn.glue, local.arn.athena, local.arn.rds,
  ])
  # The EC2 reads Terraform's plan and refresh make; none can be scoped to a resource.
  ec2_reads = ["ec2:Describe*", "ec2:GetSecurityGroupsForVpc"]
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
    sid     = "GitHubDeployWorkflowInProductionOnTheDeployBranch"
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
      test     = "StringLike"
      variable = "${local.github_issuer}:sub"
      values   = [local.plan_subject]
    }
  }
}

# ---------------------------------------------------------------------------------------------
# Deploy role: terraform apply of terraform/ (and its state). Four managed policies (each under
# IAM's 6,144 characters): the stack's services, its roles, its network, and the guardrails —
# explicit denies no Allow anywhere can override. The role is outside the stack's path, so it
# can change neither its own policies nor the plan role's.
# ---------------------------------------------------------------------------------------------
data "aws_iam_policy_document" "deploy_services" {
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

  # A bucket is always created in the caller's account; everything else on a bucket name only
  # when that bucket is this account's (a name pattern alone could match someone else's).
  statement {
    sid       = "CreateStackBuckets"
    actions   = ["s3:CreateBucket"]
    resources = local.arn.buckets
  }

  statement {
    sid       = "ManageStackBucketsOfThisAccount"
    actions   = ["s3:*"]
    resources = flatten([local.arn.buckets, [for b in local.arn.buckets : "${b}/*"]])

    condition {
      test     = "StringEquals"
      variable = "s3:ResourceAccount"
      values   = [local.account_id]
    }
  }

  statement {
    sid       = "ManageTheStack"
    actions   = ["lambda:*", "logs:*", "sqs:*", "sns:*", "events:*", "cloudwatch:*", "glue:*", "athena:*", "rds:*"]
    resources = local.stack_resources
  }

  # Terraform creates the secrets empty and never reads or writes their values.
  statement {
    sid = "ManageTheStackSecretsNotTheirValues"
    actions = [
      "secretsmanager:CreateSecret", "secretsmanager:DeleteSecret", "secretsmanager:DescribeSecret",
      "secretsmanager:GetResourcePolicy", "secretsmanager:RestoreSecret", "secretsmanager:TagResource",
      "secretsmanager:UntagResource",
    ]
    resources = [local.arn.secrets]
  }

  # A warehouse with manage_master_user_password: RDS creates (and rotates) its secret in the
  # caller's name. None of these reads or chooses a value.
  statement {
    sid       = "LetRdsManageTheWarehouseMasterSecret"
    actions   = ["secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:RotateSecret", "secretsmanager:DescribeSecret"]
    resources = [local.arn.rds_secrets]
  }

  statement {
    sid       = "DescribeLogGroups"
    actions   = ["logs:DescribeLogGroups"]
    resources = ["arn:${local.partition}:logs:${local.region}:${local.account_id}:log-group:*"]
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
    # AWS requires "*": kms:CreateKey and kms:ListAliases name no resource.
    sid       = "NoResourceLevelPermissions"
    actions   = ["kms:CreateKey", "kms:ListAliases"]
    resources = ["*"]
  }
}

data "aws_iam_policy_document" "deploy_roles" {
  count = local.github_count

  # Roles only under the stack's path and only with the workload boundary: a role the deploy
  # role makes can do no more than the boundary allows, so it cannot make itself an administrator.
  statement {
    sid       = "WriteStackRolesOnlyWithTheWorkloadBoundary"
    actions   = ["iam:CreateRole", "iam:PutRolePolicy", "iam:PutRolePermissionsBoundary", "iam:DeleteRolePolicy", "iam:DetachRolePolicy"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.workload_boundary_arn]
    }
  }

  statement {
    sid       = "AttachOnlyTheStacksManagedPoliciesWithTheWorkloadBoundary"
    actions   = ["iam:AttachRolePolicy"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.workload_boundary_arn]
    }

    condition {
      test     = "ArnEquals"
      variable = "iam:PolicyARN"
      values   = local.attachable_policies
    }
  }

  # IAM has no condition on a trust policy's contents: re-trusting is confined to the path, and
  # whatever a role trusts, the workload boundary keeps secrets and the source of truth from it.
  statement {
    sid = "ManageStackRoles"
    actions = [
      "iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies",
      "iam:ListInstanceProfilesForRole", "iam:ListRoleTags", "iam:TagRole", "iam:UntagRole", "iam:UpdateRole",
      "iam:UpdateRoleDescription", "iam:UpdateAssumeRolePolicy", "iam:DeleteRole",
    ]
    resources = [local.arn.roles]
  }

  statement {
    sid = "ManageStackInstanceProfiles"
    actions = [
      "iam:CreateInstanceProfile", "iam:DeleteInstanceProfile", "iam:GetInstanceProfile", "iam:AddRoleToInstanceProfile",
      "iam:RemoveRoleFromInstanceProfile", "iam:TagInstanceProfile", "iam:UntagInstanceProfile", "iam:ListInstanceProfileTags",
    ]
    resources = [local.arn.instance_profiles]
  }

  statement {
    sid       = "PassStackRolesToTheStacksServices"
    actions   = ["iam:PassRole"]
    resources = [local.arn.roles]

    condition {
      test     = "StringEquals"
      variable = "iam:PassedToService"
      values   = local.pass_role_services
    }
  }

  statement {
    sid       = "ReadTheBoundaryAndTheAttachablePolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = concat(local.attachable_policies, [local.workload_boundary_arn])
  }
}

data "aws_iam_policy_document" "deploy_network" {
  count = local.github_count

  # Everything the stack creates in EC2 (VPC, subnets, gateways, addresses, route tables,
  # security groups, endpoints, flow logs, the bastion) carries the stack's tag from creation.
  statement {
    sid = "CreateOnlyTaggedNetwork"
    actions = [
      "ec2:CreateVpc", "ec2:CreateSubnet", "ec2:CreateInternetGateway", "ec2:CreateNatGateway", "ec2:AllocateAddress",
      "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateVpcEndpoint", "ec2:CreateFlowLogs", "ec2:RunInstances",
    ]
    resources = [local.ec2_in_account]

    condition {
      test     = "StringEquals"
      variable = "aws:RequestTag/${local.stack_tag.key}"
      values   = [local.stack_tag.value]
    }
  }

  # What a new resource is created in or launched from: a subnet or VPC (the stack's, or one the
  # user brings), an Amazon image, and the bastion's own disk and network interface (the instance
  # itself must be tagged, above). Naming them in a create call changes nothing about them; a
  # reused VPC's route tables take the S3 gateway endpoint.
  statement {
    sid       = "CreateInsideAVpcOrFromAnAmazonImage"
    actions   = ["ec2:CreateSubnet", "ec2:CreateRouteTable", "ec2:CreateSecurityGroup", "ec2:CreateVpcEndpoint", "ec2:ModifyVpcEndpoint", "ec2:CreateNatGateway", "ec2:RunInstances"]
    resources = [for r in ["vpc", "subnet", "route-table", "security-group", "elastic-ip", "image", "volume", "network-interface"] : "arn:${local.partition}:ec2:${local.region}:*:${r}/*"]
  }

  statement {
    sid       = "TagOnlyWhatIsBeingCreated"
    actions   = ["ec2:CreateTags"]
    resources = [local.ec2_in_account]

    condition {
      test     = "StringEquals"
      variable = "ec2:CreateAction"
      values   = ["CreateVpc", "CreateSubnet", "CreateInternetGateway", "CreateNatGateway", "AllocateAddress", "CreateRouteTable", "CreateSecurityGroup", "CreateVpcEndpoint", "CreateFlowLogs", "RunInstances", "AuthorizeSecurityGroupIngress", "AuthorizeSecurityGroupEgress"]
    }
  }

  statement {
    sid = "ChangeOnlyTheStacksNetwork"
    actions = [
      "ec2:DeleteVpc", "ec2:ModifyVpcAttribute", "ec2:DeleteSubnet", "ec2:ModifySubnetAttribute", "ec2:AttachInternetGateway",
      "ec2:DetachInternetGateway", "ec2:DeleteInternetGateway", "ec2:DeleteNatGateway", "ec2:ReleaseAddress", "ec2:DisassociateAddress",
      "ec2:CreateRoute", "ec2:ReplaceRoute", "ec2:DeleteRoute", "ec2:AssociateRouteTable", "ec2:DisassociateRouteTable",
      "ec2:DeleteRouteTable", "ec2:DeleteSecurityGroup", "ec2:AuthorizeSecurityGroup*", "ec2:RevokeSecurityGroup*",
      "ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptions*", "ec2:ModifyVpcEndpoint", "ec2:DeleteVpcEndpoints",
      "ec2:DeleteFlowLogs", "ec2:TerminateInstances", "ec2:StopInstances", "ec2:StartInstances", "ec2:ModifyInstanceAttribute",
      "ec2:ModifyInstanceMetadataOptions", "ec2:AssociateIamInstanceProfile", "ec2:ReplaceIamInstanceProfileAssociation",
    ]
    resources = [local.ec2_in_account]

    condition {
      test     = "StringEquals"
      variable = "aws:ResourceTag/${local.stack_tag.key}"
      values   = [local.stack_tag.value]
    }
  }

  statement {
    # The rules of the stack's groups: new rules carry no tag yet; the group's own check applies too.
    sid       = "RulesOfTheStacksSecurityGroups"
    actions   = ["ec2:AuthorizeSecurityGroup*", "ec2:RevokeSecurityGroup*", "ec2:ModifySecurityGroupRules", "ec2:UpdateSecurityGroupRuleDescriptions*"]
    resources = ["arn:${local.partition}:ec2:${local.region}:${local.account_id}:security-group-rule/*"]
  }

  statement {
    # The bastion's image: the public parameter naming the current Amazon Linux 2023.
    sid       = "ReadTheAmazonLinuxImageParameter"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = ["arn:${local.partition}:ssm:${local.region}::parameter/aws/service/ami-amazon-linux-latest/*"]
  }

  statement {
    # AWS requires "*": the EC2 Describe calls name no resource.
    sid       = "ReadNetworkNoResourceLevelPermissions"
    actions   = local.ec2_reads
    resources = ["*"]
  }
}

# Explicit denies: they win over any Allow, so no later edit of the three policies above can
# grant these. Each names what the issue (#21) says the deploy role must never do.
data "aws_iam_policy_document" "deploy_guardrails" {
  count = local.github_count

  statement {
    sid       = "DenyRoleWritesWithoutTheWorkloadBoundary"
    effect    = "Deny"
    actions   = ["iam:CreateRole", "iam:PutRolePolicy", "iam:AttachRolePolicy", "iam:PutRolePermissionsBoundary"]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "iam:PermissionsBoundary"
      values   = [local.workload_boundary_arn]
    }
  }

  statement {
    sid       = "DenyRemovingABoundary"
    effect    = "Deny"
    actions   = ["iam:DeleteRolePermissionsBoundary"]
    resources = ["*"]
  }

  # Outside the stack's path (the GitHub roles, every other role, every policy) no IAM write.
  statement {
    sid           = "DenyIamWritesOutsideTheStacksPath"
    effect        = "Deny"
    actions       = ["iam:Create*", "iam:Put*", "iam:Attach*", "iam:Detach*", "iam:Delete*", "iam:Update*", "iam:Tag*", "iam:Untag*", "iam:PassRole", "iam:AddRoleToInstanceProfile", "iam:RemoveRoleFromInstanceProfile", "iam:SetDefaultPolicyVersion", "iam:Upload*"]
    not_resources = [local.arn.roles, local.arn.instance_profiles]
  }

  statement {
    sid       = "DenyPolicyAndIdentityAdministration"
    effect    = "Deny"
    actions   = ["iam:CreatePolicy*", "iam:DeletePolicy*", "iam:CreateUser", "iam:CreateAccessKey", "iam:CreateServiceLinkedRole", "sts:*"]
    resources = ["*"]
  }

  statement {
    sid       = "DenySecretValues"
    effect    = "Deny"
    actions   = ["secretsmanager:GetSecretValue", "secretsmanager:PutSecretValue", "secretsmanager:UpdateSecret", "secretsmanager:PutResourcePolicy", "secretsmanager:DeleteResourcePolicy", "secretsmanager:BatchGetSecretValue"]
    resources = ["*"]
  }

  statement {
    sid       = "DenyFunctionUrlsAndInvoking"
    effect    = "Deny"
    actions   = ["lambda:CreateFunctionUrlConfig", "lambda:UpdateFunctionUrlConfig", "lambda:InvokeFunctionUrl", "lambda:InvokeFunction", "lambda:InvokeAsync"]
    resources = ["*"]
  }

  statement {
    # Only S3 (the stage notifications) and EventBridge (the schedules) may be allowed to invoke.
    sid       = "DenyFunctionPermissionsForOtherPrincipals"
    effect    = "Deny"
    actions   = ["lambda:AddPermission"]
    resources = ["*"]

    condition {
      test     = "StringNotEquals"
      variable = "lambda:Principal"
      values   = ["s3.amazonaws.com", "events.amazonaws.com"]
    }
  }

  statement {
    sid       = "DenyReadingOrDeletingDataObjects"
    effect    = "Deny"
    actions   = ["s3:GetObject*", "s3:DeleteObject*", "s3:PutObjectRetention", "s3:PutObjectLegalHold", "s3:BypassGovernanceRetention", "s3:RestoreObject", "s3:ReplicateObject"]
    resources = local.arn.data_objects
  }

  statement {
    # The data buckets' protection is set by the administrator's first apply and not weakened after.
    sid       = "DenyWeakeningTheDataBuckets"
    effect    = "Deny"
    actions   = ["s3:PutBucketVersioning", "s3:PutLifecycleConfiguration", "s3:PutBucketObjectLockConfiguration", "s3:PutBucketPolicy", "s3:DeleteBucketPolicy", "s3:PutBucketAcl", "s3:PutBucketPublicAccessBlock", "s3:PutBucketOwnershipControls", "s3:PutEncryptionConfiguration", "s3:PutReplicationConfiguration", "s3:DeleteBucket"]
    resources = local.arn.data_buckets
  }

  statement {
    # Re-tagging an existing EC2 resource would bring it under "ChangeOnlyTheStacksNetwork".
    sid       = "DenyTaggingExistingNetwork"
    effect    = "Deny"
    actions   = ["ec2:CreateTags", "ec2:DeleteTags"]
    resources = ["*"]

    condition {
      test     = "Null"
      variable = "ec2:CreateAction"
      values   = ["true"]
    }
  }

  statement {
    # The state's versions are the way back from a bad apply; its key and bucket are the bootstrap's.
    sid       = "DenyAdministeringTheStateBucketAndKey"
    effect    = "Deny"
    actions   = ["s3:DeleteBucket*", "s3:PutBucket*", "s3:PutEncryptionConfiguration", "s3:PutLifecycleConfiguration", "s3:DeleteObjectVersion", "kms:PutKeyPolicy", "kms:ScheduleKeyDeletion", "kms:DisableKey", "kms:CreateGrant"]
    resources = [module.state_bucket.arn, "${module.state_bucket.arn}/*", aws_kms_key.state.arn]
  }
}

locals {
  deploy_policies = {
    services   = { document = one(data.aws_iam_policy_document.deploy_services[*].json), what = "the stack's services, state and key" }
    roles      = { document = one(data.aws_iam_policy_document.deploy_roles[*].json), what = "the stack's roles (path and workload boundary only)" }
    network    = { document = one(data.aws_iam_policy_document.deploy_network[*].json), what = "the stack's tagged network and bastion" }
    guardrails = { document = one(data.aws_iam_policy_document.deploy_guardrails[*].json), what = "explicit denies (escalation, secret values, data objects)" }
  }
}

resource "aws_iam_role" "deploy" {
  count = local.github_count

  name                 = local.deploy_role_name
  description          = "GitHub Actions, ${local.github_repo} deploy.yml on ${var.deploy_branch} in environment production: terraform apply of the Onyx stack"
  assume_role_policy   = data.aws_iam_policy_document.deploy_trust[0].json
  max_session_duration = 3600
}

resource "aws_iam_policy" "deploy" {
  for_each = local.github_roles ? local.deploy_policies : {}

  name        = "${local.deploy_role_name}-${each.key}"
  description = "Onyx deploy role: ${each.value.what}"
  policy      = each.value.document
}

resource "aws_iam_role_policy_attachment" "deploy" {
  for_each = local.github_roles ? local.deploy_policies : {}

  role       = aws_iam_role.deploy[0].name
  policy_arn = aws_iam_policy.deploy[each.key].arn
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
    resources = concat(local.stack_resources, [local.arn.secrets, local.arn.rds_secrets])
  }

  statement {
    sid       = "ReadTheCodeObjects"
    actions   = ["s3:GetObject", "s3:GetObjectTagging"]
    resources = ["arn:${local.partition}:s3:::${local.p}-code-*/*"]
  }

  statement {
    sid       = "ReadStackRoles"
    actions   = ["iam:GetRole", "iam:GetRolePolicy", "iam:ListRolePolicies", "iam:ListAttachedRolePolicies", "iam:ListRoleTags", "iam:GetInstanceProfile", "iam:ListInstanceProfileTags"]
    resources = [local.arn.roles, local.arn.instance_profiles]
  }

  statement {
    sid       = "ReadTheBoundaryAndTheAttachablePolicies"
    actions   = ["iam:GetPolicy", "iam:GetPolicyVersion"]
    resources = concat(local.attachable_policies, [local.workload_boundary_arn])
  }

  statement {
    sid       = "ReadTheAmazonLinuxImageParameter"
    actions   = ["ssm:GetParameter", "ssm:GetParameters"]
    resources = ["arn:${local.partition}:ssm:${local.region}::parameter/aws/service/ami-amazon-linux-latest/*"]
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
