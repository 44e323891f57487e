# Deployment targets of jibri-autoscaler, meant to be `include`d by the repository's
# Makefile (they also work as `make -f infra/infra.mk TARGET` from the repository root).
#
#   make lint-infra                   cfn-lint + checkov on infra/template.yaml, cfn-lint on the
#                                     example templates (infra/examples/*.yaml), offline
#   make test-infra                   pytest infra/tests (moto deploy + deploy wiring)
#   make package ARTIFACT_BUCKET=...  cargo lambda build (arm64 zips) + upload to S3
#   make deploy  STACK=... ...        aws cloudformation deploy of one pool's stack
#   make hotswap STACK=...            cargo lambda build + deploy of new code into the stack's
#                                     two functions (only the code: see infra/README.md)
#
# DEPLOY_DRY_RUN=1 makes `package` and `deploy` print their exact commands instead of
# running them (`hotswap` prints its build and runs `cargo lambda deploy --dry`).
# POOL=infra/examples/pool-a.env reads a pool's variables from a file; variables given
# on the command line win over the file.
#
# deploy variables -> stack parameters (infra/README.md has the full table):
#   STACK (stack name)  REGION  ASG_NAME -> GroupName  POOL_KIND -> PoolKind  VPC_ID -> VpcId
#   SUBNET_IDS -> SubnetIds  RECORDER_SG_ID -> RecorderSecurityGroupId
#   ARTIFACT_BUCKET -> ArtifactBucket (and the template upload)  ARTIFACT_PREFIX
#   LAUNCH_TEMPLATE_ID, LAUNCH_TEMPLATE_VERSION, MIN_SIZE, MAX_SIZE, RECORDER_SUBNET_IDS
#   WARM_POOL -> WarmPool, WARM_POOL_MIN -> WarmPoolMin, WARM_POOL_MAX -> WarmPoolMax
#   JICOFO_STATS_URLS, JICOFO_SG_ID, JICOFO_CIDR
#   CREATE_VPC_ENDPOINTS, ROUTE_TABLE_IDS, S3_PREFIX_LIST_ID
#   EXISTING_BUCKET, EXISTING_BUCKET_KMS_KEY_ARN, RECORDINGS_PREFIX, RECORDER_ROLE_NAME
#   ALARM_EMAIL, AUTOSCALER_DRY_RUN -> DryRun, CONTROLLER_CODE_KEY, GUARD_CODE_KEY
#   PARAMS="Key=Value ..." (any other parameter)  TAGS="Key=Value ..." (stack tags)

INFRA_DIR := $(patsubst %/,%,$(dir $(lastword $(MAKEFILE_LIST))))
VENV ?= .venv
PYTHON ?= python3
INFRA_TEMPLATE := $(INFRA_DIR)/template.yaml
INFRA_EXAMPLES := $(sort $(wildcard $(INFRA_DIR)/examples/*.env))
# Example templates beside the stack (the recorders' launch template).
INFRA_EXAMPLE_TEMPLATES := $(sort $(wildcard $(INFRA_DIR)/examples/*.yaml))
CFN_LINT := $(VENV)/bin/cfn-lint
# checkov pins a boto3 older than the one moto needs: it lives in its own venv.
CHECKOV_VENV := $(VENV)/checkov-env
CHECKOV := $(CHECKOV_VENV)/bin/checkov
# Anything the linters might try to fetch fails at once, on this machine: a proxy on a
# closed loopback port. checkov runs with --skip-download and no API key as well.
OFFLINE_ENV := HTTP_PROXY=http://127.0.0.1:9 HTTPS_PROXY=http://127.0.0.1:9 \
	http_proxy=http://127.0.0.1:9 https_proxy=http://127.0.0.1:9 NO_PROXY= no_proxy= \
	BC_SKIP_MAPPING=TRUE

ifneq ($(strip $(POOL)),)
include $(POOL)
endif

# Variables the scripts read; exported only when set, so the template's defaults apply.
INFRA_VARS := STACK REGION ASG_NAME POOL_KIND VPC_ID SUBNET_IDS RECORDER_SG_ID ARTIFACT_BUCKET \
	ARTIFACT_PREFIX LAUNCH_TEMPLATE_ID LAUNCH_TEMPLATE_VERSION MIN_SIZE MAX_SIZE \
	RECORDER_SUBNET_IDS WARM_POOL WARM_POOL_MIN WARM_POOL_MAX JICOFO_STATS_URLS \
	JICOFO_SG_ID JICOFO_CIDR CREATE_VPC_ENDPOINTS \
	ROUTE_TABLE_IDS S3_PREFIX_LIST_ID EXISTING_BUCKET EXISTING_BUCKET_KMS_KEY_ARN \
	RECORDINGS_PREFIX RECORDER_ROLE_NAME ALARM_EMAIL AUTOSCALER_DRY_RUN \
	CONTROLLER_CODE_KEY GUARD_CODE_KEY PARAMS TAGS DEPLOY_DRY_RUN LAMBDA_DIR SKIP_BUILD \
	HOTSWAP_FUNCTIONS HOTSWAP_DIR
$(foreach v,$(INFRA_VARS),$(if $(value $(v)),$(eval export $(v))))

.PHONY: lint-infra test-infra package deploy hotswap

$(CHECKOV_VENV)/.installed: $(INFRA_DIR)/requirements.txt
	$(PYTHON) -m venv $(CHECKOV_VENV)
	$(CHECKOV_VENV)/bin/pip install --quiet --disable-pip-version-check -r $<
	touch $@

lint-infra: $(CHECKOV_VENV)/.installed ## cfn-lint and checkov on infra/template.yaml, cfn-lint on infra/examples/*.yaml (offline; zero findings or it fails)
	@test -x $(CFN_LINT) || { echo "lint-infra: $(CFN_LINT) missing: run 'make venv'"; exit 1; }
	$(OFFLINE_ENV) $(CFN_LINT) -- $(INFRA_TEMPLATE) $(INFRA_EXAMPLE_TEMPLATES)
	@# The examples' parameters too: patterns, allowed values and every condition branch
	@# they select are checked against real values.
	@set -e; tmp=$$(mktemp -d); trap 'rm -rf "$$tmp"' EXIT; \
	for pool in $(INFRA_EXAMPLES); do \
		echo "$(CFN_LINT) --parameter-files <$$pool> -- $(INFRA_TEMPLATE)"; \
		$(MAKE) --no-print-directory -s -f $(INFRA_DIR)/infra.mk infra-parameters POOL=$$pool \
			| $(VENV)/bin/python $(INFRA_DIR)/scripts/lint_params.py $(INFRA_TEMPLATE) > $$tmp/params.json; \
		$(OFFLINE_ENV) $(CFN_LINT) --parameter-files $$tmp/params.json -- $(INFRA_TEMPLATE); \
	done
	cd $(INFRA_DIR) && $(OFFLINE_ENV) $(abspath $(CHECKOV)) --skip-download --framework cloudformation \
		--file template.yaml --compact --quiet

# The stack parameters deploy would pass (Key=Value per line), for lint-infra.
.PHONY: infra-parameters
infra-parameters:
	@CONTROLLER_CODE_KEY=$${CONTROLLER_CODE_KEY:-lint/pool-controller.zip} \
	GUARD_CODE_KEY=$${GUARD_CODE_KEY:-lint/termination-guard.zip} \
	$(INFRA_DIR)/scripts/deploy.sh --parameters

test-infra: ## pytest infra/tests: deploys the template into the local moto server; checks deploy's wiring
	$(VENV)/bin/python -m pytest -q $(INFRA_DIR)/tests

package: ## build both Lambda zips (cargo lambda, arm64) and jibri-finalize for arm64 and x86_64 (target/recorder/), upload the zips to ARTIFACT_BUCKET (DEPLOY_DRY_RUN=1 prints)
	$(INFRA_DIR)/scripts/package.sh

hotswap: ## cargo lambda deploy of new code into STACK's two functions, nothing else (HOTSWAP_FUNCTIONS, SKIP_BUILD, DEPLOY_DRY_RUN=1: --dry)
	$(VENV)/bin/python $(INFRA_DIR)/scripts/hotswap.py

deploy: ## deploy one pool's stack (STACK, REGION, ASG_NAME, VPC_ID, SUBNET_IDS, RECORDER_SG_ID, ARTIFACT_BUCKET...; DEPLOY_DRY_RUN=1 prints)
	$(INFRA_DIR)/scripts/deploy.sh
