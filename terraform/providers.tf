provider "aws" {
  region = var.region

  # OnyxStack: the deploy role may change EC2 resources (network, bastion) only when they carry
  # this tag, and may set it only while creating them (terraform/bootstrap/github.tf).
  default_tags {
    tags = merge(
      {
        Project     = "onyx"
        OnyxStack   = var.name_prefix
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}
