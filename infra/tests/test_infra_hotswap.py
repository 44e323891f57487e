"""`cargo lambda deploy` as a real path: `make hotswap STACK=...` swaps the code of a
stack's functions and nothing else.

- The functions' cargo-lambda metadata (functions/*/Cargo.toml) and the repository's
  CargoLambda.toml agree with the template's functions, and hand nothing of the local
  test bed to a deploy.
- The stack is deployed into the test bed, then `make hotswap` runs the real
  `cargo lambda deploy` (cargo-lambda 1.9 from .venv) against it, with AWS_ENDPOINT_URL
  pointing at the test bed. The binary is the host build of termination-guard
  (target/debug; built here with `cargo build` if absent): no arm64 cross-compile. It is
  staged as HOTSWAP_DIR/termination-guard/bootstrap with SKIP_BUILD=1, so the deploy runs
  with `--lambda-dir` and `--binary-name`, exactly as `make hotswap` does after its own
  build. (`--binary-path` would skip the package metadata: cargo-lambda 1.9 looks the
  metadata up by the deployed name or `--binary-name`, which conflicts with it.)
- cargo-lambda sends no x-moto-account-id header, so this module's stack lives in the
  test bed's default account (123456789012), which no other infra test uses.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import subprocess
import tomllib
from pathlib import Path
from typing import Any

import pytest

from cfn_eval import Stack
from infra_testlib import (  # noqa: F401  (template, testbed_url: fixtures)
    INFRA,
    REGION,
    REPO,
    Aws,
    base_parameters,
    deploy,
    make_world,
    template,
    testbed_url,
)

DEFAULT_ACCOUNT = "123456789012"
FUNCTIONS = {"pool-controller": "ControllerFunction", "termination-guard": "GuardFunction"}
CARGO_LAMBDA = REPO / ".venv" / "bin" / "cargo-lambda"
# Where cargo puts it: CARGO_TARGET_DIR when set (relative to the repository), else target/.
GUARD_BINARY = REPO / os.environ.get("CARGO_TARGET_DIR", "target") / "debug" / "termination-guard"


def cargo_lambda_metadata(fn: str) -> dict[str, Any]:
    manifest = tomllib.loads((REPO / "functions" / fn / "Cargo.toml").read_text())
    return manifest["package"]["metadata"]["lambda"]


# --- the metadata and the template ------------------------------------------------------


@pytest.mark.parametrize("fn", sorted(FUNCTIONS))
def test_cargo_lambda_metadata_matches_the_template(fn: str, template: dict[str, Any]) -> None:
    props = template["Resources"][FUNCTIONS[fn]]["Properties"]
    meta = cargo_lambda_metadata(fn)
    assert meta["build"] == {"arm64": True}
    assert props["Architectures"] == ["arm64"]
    deploy_meta = meta["deploy"]
    assert deploy_meta["runtime"] == props["Runtime"] == "provided.al2023"
    assert deploy_meta["memory"] == props["MemorySize"]
    assert deploy_meta["timeout"] == props["Timeout"]
    assert deploy_meta["tags"] == {t["Key"]: t["Value"] for t in props["Tags"]}
    # The stack's environment stays (merged), and the deploy changes nothing the stack
    # owns: no variable, role, VPC, layer, alias, tracing, function URL or log retention.
    assert deploy_meta["merge_env"] is True
    assert set(deploy_meta) == {"runtime", "memory", "timeout", "merge_env", "tags"}
    assert set(meta) == {"build", "deploy"}  # no [package.metadata.lambda.env] either
    assert props["FunctionName"] == {"Fn::Sub": f"${{AWS::StackName}}-{fn}"}


def test_cargo_lambda_toml_serves_the_test_bed_and_hands_nothing_to_a_deploy() -> None:
    config = tomllib.loads((REPO / "CargoLambda.toml").read_text())
    # A top-level [env] would be added to every deployed function's environment.
    assert set(config) == {"watch"}
    # Only what cargo-lambda 1.9 honours from the file: its command-line defaults override
    # an invoke_address or invoke_port given here (the README passes `-A 127.0.0.1`).
    assert config["watch"] == {"env_file": ".testbed/lambda.env"}
    # testbed.sh writes that file (dir=.testbed).
    testbed = (REPO / "scripts" / "testbed.sh").read_text()
    assert re.search(r"^dir=.*\.testbed\b", testbed, re.M) and re.search(r'>\s*"?\$dir"?/lambda\.env', testbed)


# --- make hotswap against a stack in the test bed ----------------------------------------


@pytest.fixture(scope="module")
def guard_binary() -> Path:
    if not GUARD_BINARY.exists():
        # The workspace's own feature set (as `make test` builds it): `-p termination-guard`
        # alone would resolve the SDK's features anew and rebuild it (minutes on 2 cores).
        subprocess.run(["cargo", "build", "-q", "--workspace", "--tests", "--bins", "--locked"], cwd=REPO, check=True, timeout=1200)
    return GUARD_BINARY


@pytest.fixture(scope="module")
def stack(testbed_url: str, template: dict[str, Any]) -> tuple[Aws, Stack]:
    """One stack for the module: the default account takes one world only."""
    aws = Aws(testbed_url, DEFAULT_ACCOUNT)
    w = make_world(aws)
    aws.asg.create_auto_scaling_group(
        AutoScalingGroupName="jibri-hot", MinSize=0, MaxSize=2, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": w.launch_template, "Version": "$Latest"},
        VPCZoneIdentifier=",".join(w.subnets))
    stack = deploy(aws, template, "hot", base_parameters(w, "jibri-hot"))
    # moto's CloudFormation leaves Number parameters as JSON numbers in a function's
    # environment, where AWS has strings; the Rust SDK in cargo-lambda refuses such a
    # GetFunction answer. Put the strings CloudFormation would have put.
    for fn in FUNCTIONS:
        variables = aws.lambda_.get_function_configuration(FunctionName=f"hot-{fn}")["Environment"]["Variables"]
        if any(not isinstance(v, str) for v in variables.values()):
            aws.lambda_.update_function_configuration(
                FunctionName=f"hot-{fn}", Environment={"Variables": {k: str(v) for k, v in variables.items()}})
    return aws, stack


def hotswap(testbed_url: str, lambda_dir: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("AWS_", "MAKE", "MFLAGS"))}
    env.update(AWS_ENDPOINT_URL=testbed_url, AWS_ACCESS_KEY_ID="testing", AWS_SECRET_ACCESS_KEY="testing",
               AWS_EC2_METADATA_DISABLED="true", AWS_MAX_ATTEMPTS="1", NO_PROXY="127.0.0.1,localhost", no_proxy="127.0.0.1,localhost")
    args = [f"{k}={v}" for k, v in {"STACK": "hot", "REGION": REGION, "SKIP_BUILD": "1", "HOTSWAP_DIR": str(lambda_dir),
                                      "HOTSWAP_FUNCTIONS": "termination-guard", **variables}.items()]
    return subprocess.run(["make", "--no-print-directory", "-s", "-f", str(INFRA / "infra.mk"), "hotswap", *args],
                          cwd=REPO, env=env, capture_output=True, text=True, timeout=120)


def stage(binary: Path, lambda_dir: Path) -> Path:
    target = lambda_dir / "termination-guard" / "bootstrap"
    target.parent.mkdir(parents=True)
    shutil.copy2(binary, target)
    return target


@pytest.mark.skipif(not CARGO_LAMBDA.exists(), reason="cargo-lambda comes with `make venv`")
def test_make_hotswap_swaps_the_guards_code_and_nothing_else(
    testbed_url: str, stack: tuple[Aws, Stack], guard_binary: Path, tmp_path: Path
) -> None:
    aws, s = stack
    name = "hot-termination-guard"
    before = {fn: aws.lambda_.get_function(FunctionName=f"hot-{fn}") for fn in FUNCTIONS}
    functions_before = sorted(f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"])
    stage(guard_binary, tmp_path)

    # DEPLOY_DRY_RUN=1: `cargo lambda deploy --dry` with the package's metadata, no AWS call.
    dry = hotswap(testbed_url, tmp_path, DEPLOY_DRY_RUN="1")
    assert dry.returncode == 0, dry.stderr
    assert f"cargo lambda deploy --lambda-dir {tmp_path} --binary-name termination-guard --region {REGION} --dry {name}" in dry.stdout
    assert "tagged with jibri-autoscaler:function=termination-guard" in dry.stdout
    assert "memory: Some(Memory(256))" in dry.stdout and "timeout: Some(Timeout(60))" in dry.stdout
    assert aws.lambda_.get_function(FunctionName=name)["Configuration"]["CodeSha256"] == before["termination-guard"]["Configuration"]["CodeSha256"]

    done = hotswap(testbed_url, tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    after = {fn: aws.lambda_.get_function(FunctionName=f"hot-{fn}") for fn in FUNCTIONS}
    code = after["termination-guard"]["Configuration"]["CodeSha256"]
    uploaded = tmp_path / "termination-guard" / "bootstrap.zip"
    assert code == base64.b64encode(hashlib.sha256(uploaded.read_bytes()).digest()).decode()
    assert code != before["termination-guard"]["Configuration"]["CodeSha256"]
    # What cargo-lambda uploaded is the staged binary, as `bootstrap`.
    import zipfile

    with zipfile.ZipFile(uploaded) as z:
        assert z.namelist() == ["bootstrap"]
        assert hashlib.sha256(z.read("bootstrap")).digest() == hashlib.sha256(guard_binary.read_bytes()).digest()
    # Nothing else changed: the stack's environment, role, memory, timeout, VPC, tags; the
    # controller; no new function.
    keep = ("Environment", "Role", "MemorySize", "Timeout", "Runtime", "Handler", "VpcConfig")
    for fn in FUNCTIONS:
        b, a = before[fn]["Configuration"], after[fn]["Configuration"]
        assert {k: a.get(k) for k in keep} == {k: b.get(k) for k in keep}, fn
    # moto's CloudFormation drops a function's Tags; the stack's (as evaluated) are what
    # cargo-lambda applied, so on AWS the hotswap re-applies the stack's own tag.
    stack_tags = {t["Key"]: t["Value"] for t in s.properties("GuardFunction")["Tags"]}
    assert after["termination-guard"].get("Tags") == stack_tags == {"jibri-autoscaler:function": "termination-guard"}
    assert after["pool-controller"]["Configuration"]["CodeSha256"] == before["pool-controller"]["Configuration"]["CodeSha256"]
    assert sorted(f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]) == functions_before
    assert f"hotswap: {name}: CodeSha256 {before['termination-guard']['Configuration']['CodeSha256']} -> {code}" in done.stdout
    assert s.physical["GuardFunction"][1] == name


@pytest.mark.skipif(not CARGO_LAMBDA.exists(), reason="cargo-lambda comes with `make venv`")
def test_make_hotswap_refuses_a_function_that_is_not_the_stacks(
    testbed_url: str, stack: tuple[Aws, Stack], guard_binary: Path, tmp_path: Path
) -> None:
    """cargo-lambda would create `typo-termination-guard` with a role of its own."""
    aws, _ = stack
    stage(guard_binary, tmp_path)
    functions_before = sorted(f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"])
    roles_before = len(aws.iam.list_roles()["Roles"])
    done = hotswap(testbed_url, tmp_path, STACK="typo")
    assert done.returncode != 0
    assert "refusing to deploy typo-termination-guard" in done.stderr
    assert sorted(f["FunctionName"] for f in aws.lambda_.list_functions()["Functions"]) == functions_before
    assert len(aws.iam.list_roles()["Roles"]) == roles_before


def test_make_hotswap_refuses_a_host_binary_for_real_aws(guard_binary: Path, tmp_path: Path) -> None:
    """The stack's functions run arm64 and UpdateFunctionCode keeps the architecture: an
    x86_64 host build is accepted only by the local test bed. Refused before any AWS call
    (the endpoint below is closed)."""
    stage(guard_binary, tmp_path)
    done = hotswap("http://127.0.0.1:9", tmp_path)  # loopback: accepted
    assert "accepted only because AWS_ENDPOINT_URL is the local test bed" in done.stderr
    env_real = hotswap("", tmp_path)
    assert env_real.returncode != 0
    assert "the stack's functions run arm64: refusing" in env_real.stderr
