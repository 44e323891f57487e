#!/usr/bin/env python3
"""`make hotswap STACK=...`: `cargo lambda deploy` of freshly built code into the two
functions of a deployed stack, `<STACK>-pool-controller` and `<STACK>-termination-guard`.

Only the code changes. The stack keeps owning everything else (role, VPC, environment,
triggers, hooks, alarms); the functions' Cargo.toml metadata holds the template's memory,
timeout, runtime and tags, and `merge_env = true` keeps the stack's environment, so
cargo-lambda finds nothing else to update. `make deploy` puts the stack's reviewed
artifact back (infra/README.md, "Hot-swapping code").

Variables (from infra/infra.mk or the environment):
  STACK               the stack's name (required)
  REGION              AWS region (else the AWS SDKs' usual sources)
  HOTSWAP_FUNCTIONS   which functions, default "pool-controller termination-guard"
  HOTSWAP_DIR         where the binaries are built, default target/hotswap (not
                      target/lambda: `make package`'s zips stay what was uploaded)
  SKIP_BUILD=1        deploy binaries built earlier into HOTSWAP_DIR/<function>/bootstrap
  DEPLOY_DRY_RUN=1    print the build, run `cargo lambda deploy --dry` (no AWS call)

Refuses, before any AWS call, a binary that is not arm64 (the stack's functions are;
Lambda's UpdateFunctionCode keeps the function's architecture), except against a
loopback AWS_ENDPOINT_URL (the local test bed runs no code). Refuses, before
`cargo lambda deploy`, a function that is not the stack's own: cargo-lambda would
create a new function and a new role instead.
"""

from __future__ import annotations

import base64
import hashlib
import os
import shlex
import subprocess
import sys
from pathlib import Path
from urllib.parse import urlparse

REPO = Path(__file__).resolve().parents[2]
# function (= package = binary) -> the template's logical id.
FUNCTIONS = {"pool-controller": "ControllerFunction", "termination-guard": "GuardFunction"}
ELF_MACHINES = {0x3E: "x86_64", 0xB7: "arm64"}
STACK_FUNCTION_NAME_MAX = 64


def fail(message: str) -> None:
    print(f"hotswap: {message}", file=sys.stderr)
    sys.exit(2)


def elf_architecture(binary: Path) -> str:
    """The Lambda architecture of an ELF executable (e_machine at offset 18)."""
    with binary.open("rb") as f:
        header = f.read(20)
    if len(header) < 20 or header[:4] != b"\x7fELF":
        return "not an ELF executable"
    machine = int.from_bytes(header[18:20], "little" if header[5] == 1 else "big")
    return ELF_MACHINES.get(machine, f"ELF machine {machine:#x}")


def loopback_endpoint() -> bool:
    url = os.environ.get("AWS_ENDPOINT_URL", "")
    host = urlparse(url).hostname or ""
    return host == "localhost" or host.startswith("127.")


def code_sha256(zip_path: Path) -> str:
    """Lambda's CodeSha256 of a zip: base64 of its SHA-256."""
    return base64.b64encode(hashlib.sha256(zip_path.read_bytes()).digest()).decode()


def run(cmd: list[str]) -> None:
    print(shlex.join(cmd), flush=True)
    done = subprocess.run(cmd, cwd=REPO)
    if done.returncode != 0:
        fail(f"{cmd[0]} {cmd[1]} {cmd[2]} failed (exit {done.returncode})")


def main() -> None:
    stack = os.environ.get("STACK", "")
    if not stack:
        fail("STACK is not set: the stack whose functions get the new code (make hotswap STACK=...)")
    functions = os.environ.get("HOTSWAP_FUNCTIONS", " ".join(FUNCTIONS)).replace(",", " ").split()
    unknown = [f for f in functions if f not in FUNCTIONS]
    if unknown or not functions:
        fail(f"HOTSWAP_FUNCTIONS: {' '.join(unknown) or '(empty)'}: choose from {' '.join(FUNCTIONS)}")
    for fn in functions:
        if len(f"{stack}-{fn}") > STACK_FUNCTION_NAME_MAX:
            fail(f"{stack}-{fn} is longer than a Lambda function name may be: not a stack of this template")
    region = os.environ.get("REGION", "")
    dry = os.environ.get("DEPLOY_DRY_RUN", "") not in ("", "0")
    lambda_dir = Path(os.environ.get("HOTSWAP_DIR") or "target/hotswap")
    if not lambda_dir.is_absolute():
        lambda_dir = REPO / lambda_dir
    venv_bin = REPO / ".venv" / "bin"
    if (venv_bin / "cargo-lambda").exists():  # cargo-lambda (and its zig) from `make venv`
        os.environ["PATH"] = f"{venv_bin}{os.pathsep}{os.environ.get('PATH', '')}"

    if not os.environ.get("SKIP_BUILD"):
        build = ["cargo", "lambda", "build", "--release", "--arm64", "--lambda-dir", str(lambda_dir), "--locked"]
        for fn in functions:
            build += ["--package", fn]
        if dry:
            print(shlex.join(build))
        else:
            run(build)

    cfn = lam = resources = None
    if not dry:
        import boto3  # from .venv (`make venv`), as cargo-lambda is

        kw = {"region_name": region} if region else {}
        cfn, lam = boto3.client("cloudformation", **kw), boto3.client("lambda", **kw)

    for fn in functions:
        name = f"{stack}-{fn}"
        binary = lambda_dir / fn / "bootstrap"
        deploy = ["cargo", "lambda", "deploy", "--lambda-dir", str(lambda_dir), "--binary-name", fn]
        if region:
            deploy += ["--region", region]
        if dry:
            deploy.append("--dry")
        deploy.append(name)
        if not binary.exists():
            if dry:
                print(shlex.join(deploy))
                print(f"# {binary} not built yet: cargo lambda deploy --dry runs once it is", file=sys.stderr)
                continue
            fail(f"{binary} missing: build it (make hotswap without SKIP_BUILD)")
        arch = elf_architecture(binary)
        if arch != "arm64":
            if not loopback_endpoint():
                fail(f"{binary} is {arch}, the stack's functions run arm64: refusing "
                     "(UpdateFunctionCode keeps the function's architecture)")
            print(f"# {binary} is {arch}: accepted only because AWS_ENDPOINT_URL is the local test bed", file=sys.stderr)
        if dry:
            run(deploy)
            continue
        # The stack's own function, or nothing: for a name that does not exist
        # cargo-lambda would create a function and an IAM role of its own.
        if resources is None:
            try:
                pages = cfn.get_paginator("list_stack_resources").paginate(StackName=stack)
                resources = {r.get("LogicalResourceId"): r.get("PhysicalResourceId")
                             for page in pages for r in page["StackResourceSummaries"]}
            except Exception as err:  # botocore's ClientError: no such stack
                fail(f"stack {stack}: {err}; refusing to deploy {name}")
        physical = resources.get(FUNCTIONS[fn])
        if physical != name:
            fail(f"stack {stack}'s {FUNCTIONS[fn]} is {physical!r}, not {name}: refusing")
        before = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
        run(deploy)
        after = lam.get_function_configuration(FunctionName=name)["CodeSha256"]
        uploaded = code_sha256(lambda_dir / fn / "bootstrap.zip")
        if after != uploaded:
            fail(f"{name}: CodeSha256 is {after} after the deploy, the uploaded zip's is {uploaded}")
        print(f"hotswap: {name}: CodeSha256 {before} -> {after}{' (unchanged code)' if before == after else ''}")
    if not dry:
        print(f"hotswap: only the code changed; stack {stack} still names its reviewed artifact, "
              "and `make deploy` puts it back (infra/README.md, 'Hot-swapping code')")


if __name__ == "__main__":
    main()
