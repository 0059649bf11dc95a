# Onyx — the two commands: `make demo` (the whole pipeline locally on the real sample) and
# `make test` (every test, against real PostgreSQL and moto's S3 / Secrets Manager).
SHELL := /bin/bash
.DEFAULT_GOAL := help

# Link with mold when it is installed: the test binary links polars and three AWS SDKs.
ifneq ($(shell command -v mold 2>/dev/null),)
export CARGO_TARGET_X86_64_UNKNOWN_LINUX_GNU_RUSTFLAGS ?= -C link-arg=-fuse-ld=mold
endif

DEMO_DIR ?= out/demo

.PHONY: help demo test lint fmt toolchain build bench

help: ## List the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-14s %s\n", $$1, $$2}'

toolchain: ## Check for the pinned Rust toolchain (rust-toolchain.toml) (and mold, optional, for faster links)
	@command -v cargo >/dev/null || { echo "cargo is missing: install Rust with rustup (https://rustup.rs)"; exit 1; }
	@pinned=$$(sed -n 's/^channel *= *"\(.*\)"/\1/p' rust-toolchain.toml); \
		rustc --version | grep -q "^rustc $$pinned " || { echo "rustc is '$$(rustc --version)', rust-toolchain.toml pins $$pinned: use rustup (it reads the file)" >&2; exit 1; }
	@command -v mold >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
		DEBIAN_FRONTEND=noninteractive apt-get install -y -q mold >/dev/null 2>&1 || true; }

build: toolchain ## Build the onyx CLI and the Lambda binaries (debug)
	cargo build --workspace --bins

demo: build ## Seed ToteSys, run the pipeline locally into $(DEMO_DIR), show what happened
	.ci/services.sh --no-aws .ci/demo.sh $(DEMO_DIR)

test: build ## Run every test (starts PostgreSQL and moto as needed)
	.ci/services.sh cargo test --workspace

bench: toolchain ## Benchmarks (release build): stages, full run, no-change and 1% runs, COPY floor, cold starts
	cargo build --release -p onyx-cli -p onyx-extract -p onyx-transform -p onyx-load
	.ci/services.sh python3 .ci/bench.py

lint: ## cargo fmt --check and clippy -D warnings
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

fmt: ## Format the code
	cargo fmt --all

-include make/infra.mk
