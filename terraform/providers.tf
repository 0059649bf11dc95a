provider "aws" {
  region = var.region

  default_tags {
    tags = merge(
      {
        Project     = "onyx"
        Environment = var.environment
        ManagedBy   = "terraform"
      },
      var.tags,
    )
  }
}
