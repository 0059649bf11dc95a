terraform {
  required_version = ">= 1.11"

  required_providers {
    aws = {
      source  = "hashicorp/aws"
      version = "~> 6.0"
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
