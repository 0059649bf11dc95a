# The bastion (create_bastion; default: when create_warehouse): a t4g.nano in a private subnet
# that Systems Manager manages, so `make tunnel` (aws ssm start-session, port forwarding) reaches
# the private warehouse for `onyx migrate` and for analysts. No inbound port, no public address,
# no SSH key: access is IAM (ssm:StartSession on this instance) and every session is in CloudTrail.
# The SSM agent (preinstalled on Amazon Linux 2023) reaches Systems Manager over HTTPS through
# the NAT. docs/network.md.

locals {
  # Default: with a created warehouse (in public mode that plan stops at the warehouse's own
  # precondition). create_bastion = true in public mode stops at the bastion's.
  create_bastion = var.create_bastion != null ? var.create_bastion : var.create_warehouse && local.in_vpc
  bastion_count  = local.create_bastion ? 1 : 0
}

# The newest Amazon Linux 2023 arm64 image, from AWS's public parameter. Read once: the instance
# ignores later images (lifecycle below); replace it to update (docs/network.md).
data "aws_ssm_parameter" "bastion_ami" {
  count = local.bastion_count

  name = "/aws/service/ami-amazon-linux-latest/al2023-ami-kernel-default-arm64"
}

data "aws_iam_policy_document" "bastion_assume" {
  statement {
    sid     = "Ec2AssumesRole"
    actions = ["sts:AssumeRole"]

    principals {
      type        = "Service"
      identifiers = ["ec2.amazonaws.com"]
    }
  }
}

resource "aws_iam_role" "bastion" {
  count = local.bastion_count

  name               = "${var.name_prefix}-bastion"
  path               = local.iam_path
  description        = "Onyx bastion: Systems Manager agent only (port forwarding sessions)"
  assume_role_policy = data.aws_iam_policy_document.bastion_assume.json

  permissions_boundary = local.permissions_boundary_arn
}

resource "aws_iam_role_policy_attachment" "bastion_ssm" {
  count = local.bastion_count

  role       = aws_iam_role.bastion[0].name
  policy_arn = "arn:${local.partition}:iam::aws:policy/AmazonSSMManagedInstanceCore"
}

resource "aws_iam_instance_profile" "bastion" {
  count = local.bastion_count

  name = "${var.name_prefix}-bastion"
  path = local.iam_path
  role = aws_iam_role.bastion[0].name
}

resource "aws_security_group" "bastion" {
  count = local.bastion_count

  name        = "${var.name_prefix}-bastion"
  description = "Onyx bastion: no inbound; out to HTTPS (Systems Manager) and PostgreSQL only"
  vpc_id      = local.vpc_id

  lifecycle {
    precondition {
      condition     = local.in_vpc
      error_message = "create_bastion needs network = \"vpc\": the bastion lives in the private subnets and reaches Systems Manager through the NAT."
    }
  }
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_https" {
  count = local.bastion_count

  security_group_id = aws_security_group.bastion[0].id
  description       = "HTTPS to Systems Manager (through the NAT)"
  ip_protocol       = "tcp"
  from_port         = 443
  to_port           = 443
  cidr_ipv4         = "0.0.0.0/0"
}

# `make tunnel INFRA_TUNNEL_HOST=…`: the same PostgreSQL destinations as the functions (ToteSys,
# an outside warehouse), seen from the NAT's address.
resource "aws_vpc_security_group_egress_rule" "bastion_to_databases" {
  for_each = local.create_bastion ? toset(var.database_egress_cidr_blocks) : toset([])

  security_group_id = aws_security_group.bastion[0].id
  description       = "PostgreSQL to ToteSys and an outside warehouse (tunnels)"
  ip_protocol       = "tcp"
  from_port         = 5432
  to_port           = 5432
  cidr_ipv4         = each.value
}

resource "aws_vpc_security_group_egress_rule" "bastion_to_warehouse" {
  count = local.create_bastion && var.create_warehouse ? 1 : 0

  security_group_id            = aws_security_group.bastion[0].id
  description                  = "PostgreSQL to the warehouse (tunnels)"
  ip_protocol                  = "tcp"
  from_port                    = 5432
  to_port                      = 5432
  referenced_security_group_id = aws_security_group.warehouse[0].id
}

resource "aws_instance" "bastion" {
  #checkov:skip=CKV_AWS_126:Detailed (1-minute) monitoring would cost more than this t4g.nano port-forwarding relay itself; the 5-minute basic metrics and the SSM agent's status are enough for it.
  count = local.bastion_count

  ami                         = data.aws_ssm_parameter.bastion_ami[0].insecure_value
  instance_type               = var.bastion_instance_type
  subnet_id                   = try(local.private_subnet_ids[0], null)
  vpc_security_group_ids      = [aws_security_group.bastion[0].id]
  iam_instance_profile        = aws_iam_instance_profile.bastion[0].name
  associate_public_ip_address = false
  ebs_optimized               = true

  metadata_options {
    http_endpoint               = "enabled"
    http_tokens                 = "required"
    http_put_response_hop_limit = 1
  }

  root_block_device {
    encrypted             = true
    kms_key_id            = aws_kms_key.onyx.arn
    volume_type           = "gp3"
    delete_on_termination = true
  }

  tags = { Name = "${var.name_prefix}-bastion" }

  lifecycle {
    # A new image would otherwise replace the instance on the next apply after AWS publishes it.
    ignore_changes = [ami]
  }

  depends_on = [aws_iam_role_policy_attachment.bastion_ssm]
}
