#!/usr/bin/env bash
# Fails if any tracked file reads or names the workplace's sibling folder of reference material
# (the parent directory's "shared"): a user's clone has nothing beside it, so every fixture the
# project tests against lives in tests/fixtures/. The pattern is assembled so that this script
# does not match itself.
set -euo pipefail
cd "$(dirname "$0")/.."
sibling='shared'
pattern="(\.\./|/work/)${sibling}([/\"' ]|$)"
if hits=$(git grep -n -I -E "$pattern" -- . ); then
    echo "check-self-contained: these tracked files refer to ../${sibling} (copy what they need into tests/fixtures/):" >&2
    echo "$hits" >&2
    exit 1
fi
echo "check-self-contained: no tracked file refers to ../${sibling}"
