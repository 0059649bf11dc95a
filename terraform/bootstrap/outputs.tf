output "state_bucket" {
  description = "Bucket holding the main root's state."
  value       = module.state_bucket.id
}

output "state_kms_key_arn" {
  description = "KMS key encrypting the state."
  value       = aws_kms_key.state.arn
}

output "backend_config" {
  description = "Contents of terraform/backend.hcl (`make bootstrap` writes it)."
  value       = <<-EOT
    bucket     = "${module.state_bucket.id}"
    key        = "${var.state_key}"
    region     = "${var.region}"
    kms_key_id = "${aws_kms_key.state.arn}"
  EOT
}
