# shellcheck shell=bash
# Shared by package.sh and deploy.sh (sourced, not run).

# Where `cargo lambda build --output-format zip` leaves the zips.
LAMBDA_DIR="${LAMBDA_DIR:-target/lambda}"

lambda_zip() { # lambda_zip FUNCTION
    printf '%s/%s/bootstrap.zip' "$LAMBDA_DIR" "$1"
}

# artifact_key FUNCTION: the S3 key of a zip, named by its SHA-256 so that a new build
# is a new key (CloudFormation then updates the function code) and a rebuild of the same
# code is the same key (no update). Without the zip (a dry run before `make package`),
# the key shows a placeholder.
artifact_key() {
    local zip sha
    zip="$(lambda_zip "$1")"
    if [[ -f "$zip" ]]; then
        sha="$(sha256sum "$zip" | cut -d' ' -f1)"
    else
        echo "note: $zip not built yet: its key below is a placeholder ('make package' first)" >&2
        sha="NOT-BUILT"
    fi
    printf '%s%s/%s.zip' "${ARTIFACT_PREFIX:-jibri-autoscaler/}" "$1" "$sha"
}

# code_sha256 < ZIP: what Lambda reports as a function's CodeSha256 for that zip.
code_sha256() {
    python3 -c 'import base64, hashlib, sys; print(base64.b64encode(hashlib.sha256(sys.stdin.buffer.read()).digest()).decode())'
}

# print_cmd WORD...: one shell-quoted, copy-pastable command line.
print_cmd() {
    local out="" w
    for w in "$@"; do
        if [[ "$w" =~ ^[A-Za-z0-9_./:=@,+%-]+$ ]]; then
            out+="$w "
        else
            out+="'${w//\'/\'\\\'\'}' "
        fi
    done
    printf '%s\n' "${out% }"
}
