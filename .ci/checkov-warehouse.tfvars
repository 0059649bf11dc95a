# Used only by .ci/infra-checks.sh: a second checkov pass with the optional warehouse switched
# on, because checkov drops resources whose count evaluates to 0.
create_warehouse          = true
warehouse_vpc_id          = "vpc-0123456789abcdef0"
warehouse_subnet_ids      = ["subnet-0aaaaaaaaaaaaaaaa", "subnet-0bbbbbbbbbbbbbbbb"]
warehouse_route_table_ids = ["rtb-0cccccccccccccccc"]
warehouse_allowed_cidr_blocks        = ["203.0.113.0/24"]
warehouse_allowed_security_group_ids = ["sg-0dddddddddddddddd"]
