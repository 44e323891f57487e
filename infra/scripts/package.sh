#!/usr/bin/env bash
# Builds both functions for provided.al2023 on arm64 as zips, and the recorders' uploader
# for arm64 and x86_64, then uploads each function zip to
# s3://$ARTIFACT_BUCKET/$ARTIFACT_PREFIX<function>/<sha256>.zip (see lib.sh).
#
#   package.sh                    build and upload
#   DEPLOY_DRY_RUN=1 package.sh   print the commands instead
#   SKIP_BUILD=1 package.sh       upload zips built earlier
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/scripts/lib.sh
source "$here/lib.sh"

# cargo-lambda (and its zig) come from the repository's .venv (`make venv`).
if [[ -x .venv/bin/cargo-lambda ]]; then PATH="$PWD/.venv/bin:$PATH"; fi

dry=""
[[ -n "${DEPLOY_DRY_RUN:-}" && "${DEPLOY_DRY_RUN}" != 0 ]] && dry=1

build_cmd=(cargo lambda build --release --arm64 --output-format zip
    --package pool-controller --package termination-guard --locked)
if [[ -z "${SKIP_BUILD:-}" ]]; then
    if [[ -n "$dry" ]]; then print_cmd "${build_cmd[@]}"; else "${build_cmd[@]}"; fi
fi

# The recorders' uploader (jibri-finalize) for both instance architectures (Graviton and
# x86_64), into target/recorder/<arch>/: the recorder image kit installs it
# (recorder/image/provision.sh, JIBRI_FINALIZE_BIN). Needs the Rust standard library of
# each target (rustup target add aarch64-unknown-linux-gnu x86_64-unknown-linux-gnu).
if [[ -z "${SKIP_BUILD:-}" ]]; then
    for arch in arm64 x86-64; do
        finalize_cmd=(cargo lambda build --release "--$arch" --package jibri-finalize
            --bin jibri-finalize --lambda-dir "target/recorder/$arch" --locked)
        if [[ -n "$dry" ]]; then print_cmd "${finalize_cmd[@]}"; else "${finalize_cmd[@]}"; fi
    done
fi

if [[ -z "${ARTIFACT_BUCKET:-}" ]]; then
    [[ -n "$dry" ]] && { echo "# ARTIFACT_BUCKET unset: no upload" >&2; exit 0; }
    echo "package: built $(lambda_zip pool-controller) and $(lambda_zip termination-guard); set ARTIFACT_BUCKET to upload them" >&2
    exit 2
fi
for fn in pool-controller termination-guard; do
    zip="$(lambda_zip "$fn")"
    key="$(artifact_key "$fn")"
    upload=(aws s3 cp --only-show-errors "$zip" "s3://$ARTIFACT_BUCKET/$key")
    [[ -n "${REGION:-}" ]] && upload+=(--region "$REGION")
    if [[ -n "$dry" ]]; then print_cmd "${upload[@]}"; continue; fi
    [[ -f "$zip" ]] || { echo "package: $zip missing" >&2; exit 2; }
    "${upload[@]}"
    echo "uploaded s3://$ARTIFACT_BUCKET/$key"
done
