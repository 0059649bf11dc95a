# The production environment: `make plan/deploy/destroy` (INFRA_ENV=prod, the default) and the
# deploy workflow pass this file with -var-file. It is the one place the region is set: make
# exports it as AWS_REGION for the aws CLI (make secrets, make smoke) and CI reads it with
# `make -s infra-region`. No secrets here: they are set out of band (docs/deploy.md section 6).
region      = "eu-west-2"
environment = "prod"
name_prefix = "onyx"
