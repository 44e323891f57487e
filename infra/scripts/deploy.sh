#!/usr/bin/env bash
# Deploys one pool's stack (infra/template.yaml) with `aws cloudformation deploy`, from
# the variables documented in infra/infra.mk and infra/README.md.
#
#   deploy.sh                      deploy (runs the commands)
#   DEPLOY_DRY_RUN=1 deploy.sh     print the exact commands instead, one per line
#   deploy.sh --parameters         print the stack parameters (Key=Value, one per line),
#                                  used by `make lint-infra` to lint the examples
#
# Only variables that are set become parameter overrides: on create the template's
# defaults apply, on update the stack's previous values stay.
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=infra/scripts/lib.sh
source "$here/lib.sh"

mode=deploy
[[ "${1:-}" == "--parameters" ]] && mode=parameters

template="${TEMPLATE:-$(realpath --relative-to=. "$here/../template.yaml")}"
missing=()
for v in STACK REGION ASG_NAME VPC_ID SUBNET_IDS RECORDER_SG_ID ARTIFACT_BUCKET; do
    [[ -n "${!v:-}" ]] || missing+=("$v")
done
if ((${#missing[@]})); then
    echo "deploy: missing ${missing[*]} (see infra/README.md, 'Parameters')" >&2
    exit 2
fi

# Code keys: content-addressed from the zips `make package` built and uploaded, unless
# given explicitly (e.g. to roll back to an earlier upload).
controller_key="${CONTROLLER_CODE_KEY:-}"
guard_key="${GUARD_CODE_KEY:-}"
if [[ -z "$controller_key" ]]; then controller_key="$(artifact_key pool-controller)"; fi
if [[ -z "$guard_key" ]]; then guard_key="$(artifact_key termination-guard)"; fi

params=()
add() { # add PARAMETER VALUE: only when VALUE is set
    if [[ -n "${2:-}" ]]; then params+=("$1=$2"); fi
}
add GroupName "$ASG_NAME"
add PoolKind "${POOL_KIND:-}"
add LaunchTemplateId "${LAUNCH_TEMPLATE_ID:-}"
add LaunchTemplateVersion "${LAUNCH_TEMPLATE_VERSION:-}"
add GroupMinSize "${MIN_SIZE:-}"
add GroupMaxSize "${MAX_SIZE:-}"
add RecorderSubnetIds "${RECORDER_SUBNET_IDS:-}"
add WarmPool "${WARM_POOL:-}"
add WarmPoolMin "${WARM_POOL_MIN:-}"
add WarmPoolMax "${WARM_POOL_MAX:-}"
add VpcId "$VPC_ID"
add SubnetIds "$SUBNET_IDS"
add RecorderSecurityGroupId "$RECORDER_SG_ID"
add JicofoStatsUrls "${JICOFO_STATS_URLS:-}"
add JicofoSecurityGroupId "${JICOFO_SG_ID:-}"
add JicofoCidr "${JICOFO_CIDR:-}"
add CreateVpcEndpoints "${CREATE_VPC_ENDPOINTS:-}"
add RouteTableIds "${ROUTE_TABLE_IDS:-}"
add S3PrefixListId "${S3_PREFIX_LIST_ID:-}"
add ExistingBucketName "${EXISTING_BUCKET:-}"
add ExistingBucketKmsKeyArn "${EXISTING_BUCKET_KMS_KEY_ARN:-}"
add RecordingsPrefix "${RECORDINGS_PREFIX:-}"
add RecorderRoleName "${RECORDER_ROLE_NAME:-}"
add AlarmEmail "${ALARM_EMAIL:-}"
add DryRun "${AUTOSCALER_DRY_RUN:-}"
add ArtifactBucket "$ARTIFACT_BUCKET"
add ControllerCodeKey "$controller_key"
add GuardCodeKey "$guard_key"
# PARAMS: any further Key=Value pairs, e.g. PARAMS="SpareMode=fixed SpareFixed=3".
read -r -a extra <<< "${PARAMS:-}"
for kv in "${extra[@]}"; do
    [[ "$kv" == *=* ]] || { echo "deploy: PARAMS entry '$kv' is not Key=Value" >&2; exit 2; }
    params+=("$kv")
done

if [[ "$mode" == parameters ]]; then
    printf '%s\n' "${params[@]}"
    exit 0
fi

# An existing group is not the stack's: its retention policy and new-instance
# protection are set here, before the hooks exist (retain first: a hook without it
# would let an ABANDON terminate a busy recorder).
group_cmd=()
if [[ -z "${LAUNCH_TEMPLATE_ID:-}" ]]; then
    group_cmd=(aws autoscaling update-auto-scaling-group
        --region "$REGION"
        --auto-scaling-group-name "$ASG_NAME"
        --new-instances-protected-from-scale-in
        --instance-lifecycle-policy '{"RetentionTriggers":{"TerminateHookAbandon":"retain"}}')
fi

read -r -a tags <<< "${TAGS:-}"
deploy_cmd=(aws cloudformation deploy
    --region "$REGION"
    --stack-name "$STACK"
    --template-file "$template"
    # The template is larger than the 51,200 bytes an inline template may have.
    --s3-bucket "$ARTIFACT_BUCKET"
    --s3-prefix "${ARTIFACT_PREFIX:-jibri-autoscaler/}cloudformation"
    --capabilities CAPABILITY_IAM
    --no-fail-on-empty-changeset
    --parameter-overrides "${params[@]}"
    --tags "jibri-autoscaler:group=$ASG_NAME" ${tags[@]+"${tags[@]}"})

if [[ -n "${DEPLOY_DRY_RUN:-}" && "${DEPLOY_DRY_RUN}" != 0 ]]; then
    if ((${#group_cmd[@]})); then print_cmd "${group_cmd[@]}"; fi
    print_cmd "${deploy_cmd[@]}"
    echo "# then: each function whose running code is not its artifact above (after a 'make hotswap') gets the artifact back" >&2
    exit 0
fi

# A key computed from a zip needs the zip (and `make package` to have uploaded it).
for pair in "pool-controller:${CONTROLLER_CODE_KEY:-}" "termination-guard:${GUARD_CODE_KEY:-}"; do
    fn="${pair%%:*}"
    if [[ -z "${pair#*:}" && ! -f "$(lambda_zip "$fn")" ]]; then
        echo "deploy: $(lambda_zip "$fn") missing: run 'make package' first" >&2
        exit 2
    fi
done
if ((${#group_cmd[@]})); then "${group_cmd[@]}"; fi
"${deploy_cmd[@]}"

# Back to the reviewed artifact. Code that `make hotswap` (cargo lambda deploy) put into a
# function is not CloudFormation's business: with unchanged keys the deploy above changes
# no code. So every function whose running code is not its artifact gets the artifact
# (Lambda's CodeSha256 is the base64 of the zip's SHA-256).
for fn in pool-controller termination-guard; do
    if [[ "$fn" == pool-controller ]]; then key="$controller_key" given="${CONTROLLER_CODE_KEY:-}"
    else key="$guard_key" given="${GUARD_CODE_KEY:-}"; fi
    if [[ -z "$given" ]]; then
        artifact="$(code_sha256 < "$(lambda_zip "$fn")")"
    else
        artifact="$(aws s3 cp --only-show-errors --region "$REGION" "s3://$ARTIFACT_BUCKET/$key" - | code_sha256)"
    fi
    running="$(aws lambda get-function-configuration --region "$REGION" --function-name "$STACK-$fn" \
        --query CodeSha256 --output text)"
    if [[ "$running" != "$artifact" ]]; then
        echo "deploy: $STACK-$fn runs code $running, not s3://$ARTIFACT_BUCKET/$key ($artifact): putting the artifact back"
        aws lambda update-function-code --region "$REGION" --function-name "$STACK-$fn" \
            --s3-bucket "$ARTIFACT_BUCKET" --s3-key "$key" --query CodeSha256 --output text
    fi
done
aws cloudformation describe-stacks --region "$REGION" --stack-name "$STACK" \
    --query 'Stacks[0].Outputs[].[OutputKey,OutputValue]' --output table
