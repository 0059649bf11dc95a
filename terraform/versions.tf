terraform {
  # use_lockfile (S3-native state locking) is generally available from Terraform 1.11.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
    }
  }

  # Partial configuration: bucket, region and kms_key_id come from backend.hcl, which
  # `make bootstrap` writes from the outputs of terraform/bootstrap (see docs/deploy.md).
  backend "s3" {
    key          = "onyx/terraform.tfstate"
    encrypt      = true
    use_lockfile = true
  }
}
