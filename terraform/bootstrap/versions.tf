terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      # Exact: .terraform.lock.hcl carries this version's hashes from two independent public lock
      # files (terraform/PROVIDERS.md); a bump is a reviewed change of both (issue #21).
      source  = "hashicorp/aws"
      version = "6.14.0"
    }
  }

  # No backend block: this root keeps its state in a local file (terraform.tfstate here),
  # because the bucket that could hold it is what this root creates. See docs/deploy.md.
}

provider "aws" {
  region = var.region

  default_tags {
    tags = {
      Project   = "onyx"
      ManagedBy = "terraform"
      Component = "terraform-state"
    }
  }
}
