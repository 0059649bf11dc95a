terraform {
  # use_lockfile (S3-native state locking) is generally available from Terraform 1.11.
  required_version = ">= 1.11"

  required_providers {
    aws = {
      # Exact: .terraform.lock.hcl carries this version's hashes from two independent public lock
      # files (terraform/PROVIDERS.md); a bump is a reviewed change of both (issue #21).
      source  = "hashicorp/aws"
      version = "6.14.0"
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
