"""Fixtures: one test-bed server per session (started through the real launcher),
one fresh AWS account per test, and a loopback HTTP sink that records deliveries."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

AWS_DIR = Path(__file__).resolve().parents[1]
SERVER = AWS_DIR / "server.py"
# The AWS event samples, verbatim from the AWS documentation: one copy in the repository.
FIXTURES = Path(__file__).resolve().parents[3] / "tests" / "fixtures" / "aws-events"
REGION = "us-east-1"
IMAGE_ID = "ami-12c6146b"  # one of moto's bundled AMIs
STARTUP_TIMEOUT_S = 30.0

# Never let a proxy from the environment sit between the tests and loopback.
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))
for _name in ("HTTP_PROXY", "HTTPS_PROXY", "http_proxy", "https_proxy", "ALL_PROXY", "all_proxy"):
    os.environ.pop(_name, None)
os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def load_fixture(name: str) -> dict[str, Any]:
    return json.loads((FIXTURES / name).read_text())


# --- the server -------------------------------------------------------------------


@dataclass
class RunningServer:
    process: subprocess.Popen[bytes]
    port: int
    port_file: Path
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def stop(self, timeout_s: float = 10.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=timeout_s)


def start_server(tmp_dir: Path, *extra: str) -> RunningServer:
    port_file = tmp_dir / "testbed.port"
    log_path = tmp_dir / "testbed.log"
    log = log_path.open("wb")
    process = subprocess.Popen(
        [
            sys.executable,
            str(SERVER),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--port-file",
            str(port_file),
            *extra,
        ],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + STARTUP_TIMEOUT_S
    while not port_file.exists():
        if process.poll() is not None:
            raise RuntimeError(f"test bed exited early:\n{log_path.read_text()}")
        if time.monotonic() > deadline:
            process.kill()
            raise RuntimeError(f"test bed did not start:\n{log_path.read_text()}")
        time.sleep(0.05)
    return RunningServer(process, int(port_file.read_text()), port_file, log_path)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningServer]:
    running = start_server(tmp_path_factory.mktemp("testbed"))
    yield running
    assert running.stop() == 0, running.log_path.read_text()


# --- one account per test -----------------------------------------------------------

# Fresh 12-digit account ids: every test gets a world of its own on the shared server.
_ACCOUNTS = itertools.count(200_000_000_000)


@pytest.fixture
def account() -> str:
    return f"{next(_ACCOUNTS):012d}"


def http(
    method: str, url: str, body: Any = None, headers: dict[str, str] | None = None, raw: bytes | None = None
) -> tuple[int, dict[str, str], bytes]:
    data = raw if raw is not None else (json.dumps(body).encode() if body is not None else None)
    request = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with _OPENER.open(request, timeout=30) as response:
            return response.status, dict(response.headers), response.read()
    except urllib.error.HTTPError as err:
        return err.code, dict(err.headers), err.read()


class Aws:
    """boto3 clients and control-API helpers bound to one account."""

    def __init__(self, base_url: str, account_id: str, region: str = REGION) -> None:
        self.base_url = base_url
        self.account_id = account_id
        self.region = region
        self.asg = self.client("autoscaling")
        self.ec2 = self.client("ec2")

    def client(self, service: str, region: str | None = None) -> Any:
        client = boto3.client(
            service,
            endpoint_url=self.base_url,
            region_name=region or self.region,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
            config=Config(retries={"total_max_attempts": 1}),
        )
        account_id = self.account_id

        def add_account(request: Any, **_: Any) -> None:
            request.headers["x-moto-account-id"] = account_id

        client.meta.events.register("before-sign.*.*", add_account)
        return client

    # --- control API ----------------------------------------------------------
    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        status, _, payload = http(
            method,
            f"{self.base_url}/_testbed{path}",
            body,
            {"x-moto-account-id": self.account_id, "Content-Type": "application/json"},
        )
        return status, json.loads(payload) if payload else None

    def ok(self, method: str, path: str, body: Any = None) -> Any:
        status, payload = self.control(method, path, body)
        assert status == 200, payload
        return payload

    def configure(self, **changes: Any) -> dict[str, Any]:
        return self.ok("POST", "/config", changes)

    def advance(self, seconds: float) -> dict[str, Any]:
        return self.ok("POST", "/clock/advance", {"seconds": seconds})

    def deliveries(self) -> list[dict[str, Any]]:
        return self.ok("GET", "/deliveries")

    def events(self, kind: str | None = None) -> list[dict[str, Any]]:
        return [e for e in self.ok("GET", "/events") if kind is None or e["kind"] == kind]

    def active_actions(self) -> list[dict[str, Any]]:
        return self.ok("GET", "/actions")["actions"]

    def wait_for(self, predicate: Any, timeout_s: float = 5.0, what: str = "condition") -> Any:
        deadline = time.monotonic() + timeout_s
        while True:
            value = predicate()
            if value:
                return value
            if time.monotonic() > deadline:
                raise AssertionError(f"timed out waiting for {what}")
            time.sleep(0.02)

    # --- Auto Scaling helpers -------------------------------------------------
    def create_group(
        self,
        name: str = "jibri",
        *,
        min_size: int = 0,
        max_size: int = 6,
        desired: int | None = None,
        terminate_hook: dict[str, Any] | None = None,
        launch_hook: dict[str, Any] | None = None,
        policy: str | None = None,
        zones: tuple[str, ...] = ("us-east-1a",),
    ) -> str:
        template = f"{name}-template"
        self.ec2.create_launch_template(
            LaunchTemplateName=template,
            LaunchTemplateData={"ImageId": IMAGE_ID, "InstanceType": "t3.micro"},
        )
        extra: dict[str, Any] = {}
        if policy is not None:
            extra["InstanceLifecyclePolicy"] = {"RetentionTriggers": {"TerminateHookAbandon": policy}}
        self.asg.create_auto_scaling_group(
            AutoScalingGroupName=name,
            MinSize=min_size,
            MaxSize=max_size,
            DesiredCapacity=min_size,
            LaunchTemplate={"LaunchTemplateName": template},
            AvailabilityZones=list(zones),
            **extra,
        )
        if terminate_hook is not None:
            self.put_hook(name, "autoscaling:EC2_INSTANCE_TERMINATING", **terminate_hook)
        if launch_hook is not None:
            self.put_hook(name, "autoscaling:EC2_INSTANCE_LAUNCHING", **launch_hook)
        if desired is not None and desired != min_size:
            self.asg.set_desired_capacity(AutoScalingGroupName=name, DesiredCapacity=desired)
        return name

    def put_hook(self, group: str, transition: str, **settings: Any) -> None:
        params: dict[str, Any] = {
            "AutoScalingGroupName": group,
            "LifecycleHookName": settings.pop("name", "guard" if "TERMINATING" in transition else "warm"),
            "LifecycleTransition": transition,
            "HeartbeatTimeout": settings.pop("timeout", 300),
            "DefaultResult": settings.pop("default", "CONTINUE"),
        }
        if "metadata" in settings:
            params["NotificationMetadata"] = settings.pop("metadata")
        assert not settings, settings
        self.asg.put_lifecycle_hook(**params)

    def group(self, name: str = "jibri") -> dict[str, Any]:
        return self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[name])["AutoScalingGroups"][0]

    def states(self, name: str = "jibri") -> dict[str, str]:
        """Instance id -> LifecycleState, in the group's order."""
        return {i["InstanceId"]: i["LifecycleState"] for i in self.group(name)["Instances"]}

    def in_state(self, state: str, name: str = "jibri") -> list[str]:
        return [iid for iid, s in self.states(name).items() if s == state]

    def ec2_state(self, instance_id: str) -> str:
        reservations = self.ec2.describe_instances(InstanceIds=[instance_id])["Reservations"]
        return reservations[0]["Instances"][0]["State"]["Name"]


@pytest.fixture
def aws(server: RunningServer, account: str) -> Aws:
    return Aws(server.url, account)


# --- a loopback HTTP sink for deliveries --------------------------------------------


@dataclass
class Received:
    path: str
    headers: dict[str, str]
    body: bytes

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass
class Sink:
    """Records every POST; answers `status` after `delay_s`."""

    server: ThreadingHTTPServer
    received: list[Received] = field(default_factory=list)
    status: int = 200
    delay_s: float = 0.0

    @property
    def url(self) -> str:
        return (
            f"http://127.0.0.1:{self.server.server_port}/2015-03-31/functions/termination-guard/invocations"
        )

    def wait(self, count: int, timeout_s: float = 5.0) -> list[Received]:
        deadline = time.monotonic() + timeout_s
        while len(self.received) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"expected {count} deliveries, got {len(self.received)}")
            time.sleep(0.02)
        return list(self.received)


@pytest.fixture
def sink() -> Iterator[Sink]:
    holder: dict[str, Sink] = {}

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:  # noqa: N802 (http.server naming)
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            current = holder["sink"]
            if current.delay_s:
                time.sleep(current.delay_s)
            current.received.append(Received(self.path, dict(self.headers), body))
            payload = b'{"ok":true}'
            self.send_response(current.status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        def log_message(self, *args: Any) -> None:
            pass

    http_server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    http_server.daemon_threads = True
    holder["sink"] = Sink(http_server)
    thread = threading.Thread(target=http_server.serve_forever, daemon=True)
    thread.start()
    yield holder["sink"]
    http_server.shutdown()
    http_server.server_close()
