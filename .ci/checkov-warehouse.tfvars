# Used only by .ci/infra-checks.sh: a second checkov pass with the optional warehouse (and so the
# bastion) switched on in the created VPC, because checkov drops resources whose count evaluates to 0.
create_warehouse                     = true
warehouse_allowed_cidr_blocks        = ["10.99.0.0/16"]
warehouse_allowed_security_group_ids = ["sg-0dddddddddddddddd"]
