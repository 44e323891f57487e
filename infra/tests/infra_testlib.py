"""Fixtures and helpers of the infra tests: the project's AWS test bed (moto plus the
lifecycle extension, testbed/aws/server.py) on a free loopback port, one fresh AWS
account per test, a VPC world to deploy into, and the deploy itself.

Imported by the test modules (no conftest.py: the test bed's own tests import their
conftest by name, and two modules called `conftest` in one pytest run would collide).
"""

from __future__ import annotations

import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

from cfn_eval import Stack, load_template

INFRA = Path(__file__).resolve().parents[1]
REPO = INFRA.parent
TEMPLATE_PATH = INFRA / "template.yaml"
SERVER = REPO / "testbed" / "aws" / "server.py"
REGION = "eu-central-1"
IMAGE_ID = "ami-12c6146b"  # one of moto's bundled AMIs
STARTUP_TIMEOUT_S = 30.0

# Nothing here may leave the machine: no proxy between the tests and loopback.
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


@pytest.fixture(scope="session")
def template() -> dict[str, Any]:
    return load_template(TEMPLATE_PATH)


@pytest.fixture(scope="session")
def testbed_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The project's launcher binds 127.0.0.1 only, on a free port it writes to a file."""
    tmp = tmp_path_factory.mktemp("testbed")
    port_file, log_path = tmp / "port", tmp / "server.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [sys.executable, str(SERVER), "--host", "127.0.0.1", "--port", "0", "--port-file", str(port_file),
             "--log-level", "WARNING"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT_S
        while not port_file.exists():
            if process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"test bed did not start:\n{log_path.read_text()}")
            time.sleep(0.05)
        yield f"http://127.0.0.1:{int(port_file.read_text())}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            process.kill()


_ACCOUNTS = itertools.count(310_000_000_000)


class Aws:
    """boto3 clients bound to one test-bed account (x-moto-account-id)."""

    def __init__(self, base_url: str, account_id: str) -> None:
        self.base_url = base_url
        self.account_id = account_id
        self._clients: dict[str, Any] = {}

    def __getattr__(self, service: str) -> Any:
        if service.startswith("_"):
            raise AttributeError(service)
        name = {"asg": "autoscaling", "cfn": "cloudformation", "lambda_": "lambda", "cw": "cloudwatch"}.get(service, service)
        if name not in self._clients:
            client = boto3.client(
                name,
                endpoint_url=self.base_url,
                region_name=REGION,
                aws_access_key_id="testing",
                aws_secret_access_key="testing",
                config=Config(retries={"total_max_attempts": 1}),
            )
            account_id = self.account_id

            def add_account(request: Any, **_: Any) -> None:
                request.headers["x-moto-account-id"] = account_id

            client.meta.events.register("before-sign.*.*", add_account)
            self._clients[name] = client
        return self._clients[name]


@pytest.fixture
def aws(testbed_url: str) -> Aws:
    return Aws(testbed_url, f"{next(_ACCOUNTS):012d}")


@dataclass
class World:
    """What an operator has before deploying: a VPC, private subnets, the recorders'
    and Jicofo's security groups, a launch template, the artifact bucket with the zips."""

    vpc: str
    vpc_cidr: str
    subnets: list[str]
    route_tables: list[str]
    recorder_sg: str
    jicofo_sg: str
    launch_template: str
    artifact_bucket: str


def make_world(aws: Aws) -> World:
    ec2 = aws.ec2
    vpc = ec2.create_vpc(CidrBlock="10.40.0.0/16")["Vpc"]["VpcId"]
    subnets, tables = [], []
    for i, az in enumerate(("a", "b")):
        subnets.append(
            ec2.create_subnet(VpcId=vpc, CidrBlock=f"10.40.{i + 1}.0/24", AvailabilityZone=f"{REGION}{az}")["Subnet"]["SubnetId"]
        )
        tables.append(ec2.create_route_table(VpcId=vpc)["RouteTable"]["RouteTableId"])
    recorder_sg = ec2.create_security_group(GroupName="jibri", Description="recorders", VpcId=vpc)["GroupId"]
    jicofo_sg = ec2.create_security_group(GroupName="jicofo", Description="jicofo", VpcId=vpc)["GroupId"]
    lt = ec2.create_launch_template(
        LaunchTemplateName="jibri", LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": "c6g.xlarge"}
    )["LaunchTemplate"]["LaunchTemplateId"]
    # Bucket names are global in moto as on AWS: one per account.
    artifacts = f"artifacts-{aws.account_id}"
    aws.s3.create_bucket(Bucket=artifacts, CreateBucketConfiguration={"LocationConstraint": REGION})
    for name in ("pool-controller", "termination-guard"):
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as z:
            z.writestr("bootstrap", f"#!/bin/sh\n# stand-in for the {name} binary\n")
        aws.s3.put_object(Bucket=artifacts, Key=f"jibri-autoscaler/{name}/0123abcd.zip", Body=buf.getvalue())
    return World(vpc, "10.40.0.0/16", subnets, tables, recorder_sg, jicofo_sg, lt, artifacts)


def base_parameters(w: World, group: str) -> dict[str, str]:
    return {
        "GroupName": group,
        "VpcId": w.vpc,
        "SubnetIds": ",".join(w.subnets),
        "RecorderSecurityGroupId": w.recorder_sg,
        "ArtifactBucket": w.artifact_bucket,
        "ControllerCodeKey": "jibri-autoscaler/pool-controller/0123abcd.zip",
        "GuardCodeKey": "jibri-autoscaler/termination-guard/0123abcd.zip",
    }


def deploy(aws: Aws, template: dict[str, Any], stack_name: str, parameters: dict[str, str]) -> Stack:
    """create-stack as `aws cloudformation deploy` would, then an evaluator of the same
    stack that knows the physical ids moto gave its resources."""
    aws.cfn.create_stack(
        StackName=stack_name,
        TemplateBody=json.dumps(template),
        Parameters=[{"ParameterKey": k, "ParameterValue": v} for k, v in parameters.items()],
        Capabilities=["CAPABILITY_IAM"],
    )
    stack = aws.cfn.describe_stacks(StackName=stack_name)["Stacks"][0]
    assert stack["StackStatus"] == "CREATE_COMPLETE", stack.get("StackStatusReason")
    physical = {
        r["LogicalResourceId"]: (r["ResourceType"], r.get("PhysicalResourceId", ""))
        for r in aws.cfn.describe_stack_resources(StackName=stack_name)["StackResources"]
        # moto lists the resource types it skipped without a logical id.
        if "LogicalResourceId" in r
    }
    evaluated = Stack(template, parameters, account=aws.account_id, region=REGION, stack_name=stack_name, physical=physical)
    evaluated.outputs = {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}  # type: ignore[attr-defined]
    return evaluated


def http_post_json(aws: Aws, path: str, body: Any) -> Any:
    """POST to the test bed's control API (e.g. /_testbed/clock/advance) as this account."""
    import urllib.request

    request = urllib.request.Request(
        f"{aws.base_url}{path}", data=json.dumps(body).encode(), method="POST",
        headers={"x-moto-account-id": aws.account_id, "Content-Type": "application/json"})
    opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
    with opener.open(request, timeout=30) as response:
        return json.loads(response.read())
