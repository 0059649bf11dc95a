# The production environment: the ONE configuration of every apply, from a laptop
# (`make plan/deploy/destroy`, INFRA_ENV=prod, the default) and from CI (the deploy workflow and
# the pull-request plan pass this same file with -var-file and set no TF_VAR_), so applies from
# either never undo each other (issue #21). make exports the region as AWS_REGION for the aws CLI
# and CI reads it with `make -s infra-region`. No secrets here: they are set out of band
# (docs/deploy.md). The workload boundary every role carries is derived from the account and
# name_prefix (terraform/main.tf), so it needs no setting.
region      = "eu-west-2"
environment = "prod"
name_prefix = "onyx"

# "vpc" (private subnets, one NAT gateway whose address is the `egress_ip` output) or "public"
# (no VPC: both databases reached over the internet, verify-full TLS required). docs/network.md.
network = "vpc"

# Who receives the alarms (each address confirms AWS's subscription e-mail once): outages
# (<prefix>-alarms) and data quality (<prefix>-data-quality; empty: the alarm_emails too).
alarm_emails        = []
data_quality_emails = []

# Chat or paging integrations subscribed to both topics (https:// URLs that confirm the SNS
# subscription). This file is committed: no URL whose secrecy is its only protection.
alarm_https_endpoints = []

# Alarm mails link <repository_url>/blob/<docs_ref>/docs/runbook.md#<section>.
repository_url = "https://github.com/terrific-totes/onyx"
docs_ref       = "main"
