# Every entry point a person types. Tools are installed here, never by hand:
# Python tools into .venv (pinned in testbed/requirements.txt), Rust through cargo.
SHELL := /bin/bash
.DEFAULT_GOAL := help
VENV := .venv
PY := $(VENV)/bin/python
PYTHON ?= python3
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: bench demo help venv build test test-long test-rust test-testbed testbed-up testbed-down plan invoke-% fmt lint config-table clean-testbed

help: ## list the targets
	@grep -hE '^[a-zA-Z_%-]+:.*## ' $(MAKEFILE_LIST) | sed -E 's/:.*## /\t/' | column -t -s $$'\t'

$(VENV)/.installed: testbed/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --disable-pip-version-check -r testbed/requirements.txt
	touch $@

venv: $(VENV)/.installed ## create .venv with moto, cbor2, pytest, cfn-lint, cargo-lambda (pinned)

build: ## build every crate (debug)
	cargo build --workspace --locked

test: venv ## run every test: Rust unit + integration tests on the local AWS test bed, and the test bed's pytest
	scripts/run-tests.sh

test-long: ## the long randomized runs: the simulator's properties over PROPTEST_CASES (default 200) random worlds (CI runs it after make test)
	PROPTEST_CASES=$${PROPTEST_CASES:-200} cargo test --locked -p jibri-sim --test simulator

test-testbed: venv ## only the AWS test bed's own pytest suite
	$(PY) -m pytest -q testbed/aws/tests

testbed-up: venv ## start the AWS test bed and the Jitsi emulator in the background; writes .testbed/env
	scripts/testbed.sh up

testbed-down: ## stop what testbed-up started
	scripts/testbed.sh down

plan: ## one dry observe->plan through the Lambda's code; config from the environment, else .testbed/lambda.env
	@set -a; [[ -z "$${ASG_NAMES:-}" && -f .testbed/lambda.env ]] && source .testbed/lambda.env; set +a; \
	cargo run -q -p pool-controller -- --plan

fmt: ## rustfmt
	cargo fmt --all

lint: ## rustfmt check + clippy
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets --locked -- -D warnings

config-table: ## print the README's configuration table from the code
	@cargo test -q -p jibri-core --lib -- --ignored print_config_table --nocapture 2>/dev/null | sed -n '/^| variable/,/^$$/p'

include infra/infra.mk
include sim/sim.mk
include recorder/recorder.mk
include scripts/invoke.mk

demo: venv ## a working day on the local test bed (both functions under cargo lambda watch, a pool that lived a week): report + docs/demo.svg, ~3 min; DEMO_LONG=1 the whole day
	scripts/demo.sh

.PHONY: pictures
pictures: ## the README's policy comparison, docs/policy-comparison.svg, from make bench-policy (docs/demo.svg comes from make demo)
	cargo run -q --locked --profile bench-opt -p jibri-sim --bin bench-policy -- --json target/sim/bench-policy.json >/dev/null
	$(PYTHON) scripts/policy_chart.py target/sim/bench-policy.json docs/policy-comparison.svg

bench: venv ## controller tick over 1,000 recorders (50 hung) on the test bed: wall, CPU, peak RSS (optimized build)
	cargo build --profile bench-opt -p jibri-autoscaler -p jitsi-emulator --example bench_tick --bin jitsi-emulator
	@trap 'scripts/testbed.sh down' EXIT; JITSI_BIN=target/bench-opt/jitsi-emulator scripts/testbed.sh up --no-seed && \
	set -a && source .testbed/env && set +a && target/bench-opt/examples/bench_tick

.PHONY: size
size: venv ## each Lambda's bootstrap size and cold start (cargo lambda build --release: arm64 where its standard library is installed, else x86-64; a Lambda runtime-API emulator on 127.0.0.1, median of 5)
	@arch=arm64; rustup target list --installed 2>/dev/null | grep -q '^aarch64-unknown-linux-gnu$$' || { arch=x86-64; echo "size: no aarch64 standard library installed here: building x86-64 (the deploy target is arm64)"; }; \
	PATH="$(CURDIR)/$(VENV)/bin:$$PATH" cargo lambda build --release --$$arch -p pool-controller -p termination-guard && \
	LAMBDA_DIR="$${CARGO_TARGET_DIR:-target}/lambda" $(PYTHON) scripts/size.py $$arch pool-controller termination-guard

.PHONY: chaos
# --workspace, as `make test` builds: `-p jibri-autoscaler` alone resolves features differently
# and rebuilds the AWS SDK.
chaos: venv ## the fault matrix on the test bed: prints per row recordings (bridge pools: conferences) cut, lost, wrong completions and the metric raised
	@trap 'scripts/testbed.sh down' EXIT; scripts/testbed.sh up --no-jitsi && \
	set -a && source .testbed/env && set +a && \
	cargo test --workspace --locked --test chaos_testbed -- --nocapture
