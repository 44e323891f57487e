# Targets of the recorder side (recorder/: the jibri-finalize uploader), meant to be
# `include`d by the repository's Makefile (they also work as `make -f recorder/recorder.mk
# TARGET` from the repository root).
#
#   make test-recorder   the uploader's tests: unit, fakes, and end to end on the local test bed
#   make bench-upload    2 GiB to the local endpoint: jibri-finalize vs `aws s3 cp`, side by side
#
# Both start the AWS test bed (scripts/testbed.sh up --no-jitsi) unless AWS_ENDPOINT_URL
# already points at one, and stop what they started. bench-upload knobs:
# BENCH_UPLOAD_MB (2048), BENCH_UPLOAD_RUNS (2).

RECORDER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
VENV ?= .venv
PYTHON ?= python3
# awscli pins a botocore that clashes with moto's pins in $(VENV): its own venv.
AWSCLI_VENV := $(VENV)/awscli-env

.PHONY: test-recorder bench-upload

$(AWSCLI_VENV)/.installed: $(RECORDER_DIR)/bench/requirements.txt
	$(PYTHON) -m venv $(AWSCLI_VENV)
	$(AWSCLI_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

# Runs "$(1)" with AWS_ENDPOINT_URL set: the caller's test bed, or one started (and
# stopped, also on failure) here.
define with_testbed
	@if [ -n "$${AWS_ENDPOINT_URL:-}" ]; then $(1); else \
		test -x $(VENV)/bin/python || $(MAKE) --no-print-directory venv; \
		trap 'scripts/testbed.sh down' EXIT; scripts/testbed.sh up --no-jitsi && \
		set -a && . .testbed/env && set +a && $(1); fi
endef

test-recorder: ## jibri-finalize's tests (unit, fakes, end to end on the local test bed)
	cargo build -p jibri-finalize --tests
	$(call with_testbed,cargo test -p jibri-finalize)

bench-upload: $(AWSCLI_VENV)/.installed ## 2 GiB to the local endpoint: jibri-finalize vs aws s3 cp (throughput, peak RSS, ratio)
	cargo build --profile bench-opt -p jibri-finalize --bin jibri-finalize
	$(call with_testbed,$(AWSCLI_VENV)/bin/python $(RECORDER_DIR)/bench/bench_upload.py)
