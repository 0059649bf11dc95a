# Used only by .ci/infra-checks.sh: a checkov pass over terraform/bootstrap with its GitHub OIDC
# provider and roles switched on (checkov drops resources whose count evaluates to 0, and applies
# a var file to the directory it is given only).
github_owner      = "example-owner"
github_repository = "onyx"
