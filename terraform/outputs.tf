output "ingestion_bucket" {
  description = "Bucket holding every extracted row version (source of truth for rebuilds)."
  value       = module.ingestion_bucket.id
}

output "processed_bucket" {
  description = "Bucket holding the star-schema Parquet files, state snapshots and quarantined rows."
  value       = module.processed_bucket.id
}

output "code_bucket" {
  description = "Bucket holding the function zips (versioned; earlier versions serve rollbacks)."
  value       = module.code_bucket.id
}

output "function_names" {
  description = "Lambda function per stage."
  value = {
    extract   = module.extract.function_name
    transform = module.transform.function_name
    load      = module.load.function_name
  }
}

output "log_groups" {
  description = "CloudWatch log group per stage (`onyx logs --stack`)."
  value = {
    extract   = module.extract.log_group_name
    transform = module.transform.log_group_name
    load      = module.load.log_group_name
  }
}

output "dead_letter_queues" {
  description = "Dead-letter queue per stage."
  value = {
    extract   = module.extract.dlq_name
    transform = module.transform.dlq_name
    load      = module.load.dlq_name
  }
}

output "source_secret_arn" {
  description = "Secret to fill with the ToteSys connection JSON (make secrets)."
  value       = aws_secretsmanager_secret.source.arn
}

output "source_readonly_secret_arn" {
  description = "Secret to fill with the daily verification's read-only ToteSys login (make secrets INFRA_SOURCE_READONLY_SECRET_JSON=...)."
  value       = aws_secretsmanager_secret.source_readonly.arn
}

output "warehouse_secret_arn" {
  description = "Secret to fill with the warehouse connection JSON (make secrets)."
  value       = aws_secretsmanager_secret.warehouse.arn
}

output "alarm_topic_arn" {
  description = "SNS topic of the outage alarms: every alarm except the data-quality ones (alerting.tf)."
  value       = aws_sns_topic.alarms.arn
}

output "data_quality_topic_arn" {
  description = "SNS topic of the data-quality alarms: source schema changed, source discontinuity, verification differences, quarantined rows."
  value       = aws_sns_topic.data_quality.arn
}

output "dashboard_url" {
  description = "CloudWatch dashboard of the pipeline (every alarm description links it too)."
  value       = local.dashboard_url
}

output "warehouse_endpoint" {
  description = "Address of the Terraform-created warehouse (null when create_warehouse is false)."
  value       = var.create_warehouse ? aws_db_instance.warehouse[0].address : null
}

output "warehouse_master_secret_arn" {
  description = "RDS-managed secret with the warehouse master credentials (null when create_warehouse is false)."
  value       = var.create_warehouse ? aws_db_instance.warehouse[0].master_user_secret[0].secret_arn : null
}

output "warehouse_role_password_secret_arns" {
  description = "Secrets holding the passwords of the warehouse roles onyx_loader and onyx_reader (ONYX_LOADER_PASSWORD_SECRET / ONYX_READER_PASSWORD_SECRET for `onyx migrate`)."
  value       = { for role, secret in aws_secretsmanager_secret.warehouse_role : "onyx_${role}" => secret.arn }
}

output "lake" {
  description = "Athena over the processed bucket: Glue database, workgroup, analyst role, results bucket (null when create_lake = false)."
  value = var.create_lake ? {
    database       = aws_glue_catalog_database.lake[0].name
    workgroup      = aws_athena_workgroup.lake[0].name
    analyst_role   = aws_iam_role.lake_analyst[0].arn
    results_bucket = module.athena_results_bucket[0].id
  } : null
}

output "egress_ip" {
  description = "The one public address the extract and load functions (and the bastion's tunnels) reach ToteSys and any outside warehouse from: the NAT gateway's Elastic IP. ToteSys and an outside warehouse must allow PostgreSQL (5432) from this address. null when network = \"public\" (Lambda's changing addresses) or with a reused vpc_id (your own NAT's address)."
  value       = local.create_vpc ? aws_eip.nat[0].public_ip : null
}

output "network" {
  description = "The functions' network: mode (\"vpc\" or \"public\"), VPC, private subnets and the functions' security group (nulls and [] in public mode)."
  value = {
    mode                        = var.network
    vpc_id                      = local.vpc_id
    private_subnet_ids          = local.private_subnet_ids
    functions_security_group_id = local.in_vpc ? aws_security_group.functions[0].id : null
    s3_gateway_endpoint_id      = length(aws_vpc_endpoint.s3) > 0 ? aws_vpc_endpoint.s3[0].id : null
    nat_gateway_id              = local.create_vpc ? aws_nat_gateway.this[0].id : null
  }
}

output "bastion_instance_id" {
  description = "The SSM-managed bastion `make tunnel` starts port-forwarding sessions on (null when create_bastion resolves to false)."
  value       = local.create_bastion ? aws_instance.bastion[0].id : null
}
