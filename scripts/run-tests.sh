#!/usr/bin/env bash
# `make test`: builds, starts the AWS test bed, runs every Rust test and the test bed's own
# pytest suite, and stops what it started (by PID) also on failure.
set -euo pipefail
cd "$(dirname "$0")/.."
start=$(date +%s)
cargo build --workspace --tests --bins --locked
trap 'scripts/testbed.sh down' EXIT
scripts/testbed.sh up --no-jitsi
set -a
# shellcheck disable=SC1091
source .testbed/env
set +a
cargo test --workspace --locked -- --test-threads="${TEST_THREADS:-4}"
.venv/bin/python -m pytest -q testbed/aws/tests infra/tests recorder/image/tests
make --no-print-directory lint-infra
echo "make test: all suites passed in $(( $(date +%s) - start )) s"
