# Targets of the recorder side (recorder/: the jibri-finalize uploader), meant to be
# `include`d by the repository's Makefile (they also work as `make -f recorder/recorder.mk
# TARGET` from the repository root).
#
#   make test-recorder   the uploader's tests: unit, fakes, and end to end on the local test bed
#   make bench-upload    2 GiB to the local endpoint: jibri-finalize vs `aws s3 cp`, side by side
#   make image-kit-test  the recorder image kit's tests (provision.sh and the per-boot script in a
#                        temporary root against a fake IMDSv2 on loopback; no test bed, no cargo)
#   make image-kit       target/recorder-image-kit.tar.gz: the kit's files for an image build
#                        (unpack, then JIBRI_FINALIZE_BIN=... sh recorder/image/provision.sh)
#
# test-recorder and bench-upload start the AWS test bed (scripts/testbed.sh up --no-jitsi)
# unless AWS_ENDPOINT_URL already points at one, and stop what they started. bench-upload knobs:
# BENCH_UPLOAD_MB (2048), BENCH_UPLOAD_RUNS (2).

RECORDER_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
VENV ?= .venv
PYTHON ?= python3
# awscli pins a botocore that clashes with moto's pins in $(VENV): its own venv.
AWSCLI_VENV := $(VENV)/awscli-env

.PHONY: test-recorder bench-upload image-kit-test image-kit

# The files provision.sh reads, at their paths in this repository (it finds them from its own).
IMAGE_KIT_FILES := $(RECORDER_DIR)/image/provision.sh $(RECORDER_DIR)/image/jibri-instance-config.sh \
	$(RECORDER_DIR)/image/jibri-instance-config.service \
	$(RECORDER_DIR)/image/jibri-requires-instance-config.conf $(RECORDER_DIR)/image/jibri.base.conf.example \
	$(wildcard $(RECORDER_DIR)/systemd/*) infra/examples/wait-inservice.sh infra/examples/jibri-wait-inservice.conf

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

image-kit-test: ## the recorder image kit's tests: provision.sh + per-boot jibri.conf against a fake IMDSv2 (HOCON-checked)
	@$(MAKE) --no-print-directory venv
	$(VENV)/bin/python -m pytest -q $(RECORDER_DIR)/image/tests

image-kit: $(IMAGE_KIT_FILES) ## target/recorder-image-kit.tar.gz: the kit for an image build (Packer, Image Builder)
	@mkdir -p target
	tar -czf target/recorder-image-kit.tar.gz --owner=0 --group=0 --sort=name $(IMAGE_KIT_FILES)
	@echo "image-kit: target/recorder-image-kit.tar.gz (add the jibri-finalize binary for the image's architecture)"
