#!/usr/bin/env python3
"""`make invoke-terminate`, `make invoke-launch`, `make invoke-warm-entry` (and their `-sqs`
and `-sns` forms): the termination guard under `cargo lambda`, judging a real lifecycle
action of the local test bed.

    scripts/invoke.py terminate|launch|warm-entry[-sqs|-sns] [--recorder busy|idle]

1. Uses the test bed in the environment (AWS_ENDPOINT_URL and JITSI_EMULATOR_URL, with
   LAMBDA_ENV_FILE for the functions), else the one `.testbed/env` names (TESTBED_DIR, as
   scripts/testbed.sh), else starts one (`scripts/testbed.sh up`, which seeds the group
   `jibri-pool`; it keeps running afterwards: `make testbed-down`).
2. Sets a recorder busy or idle through the Jitsi emulator's control API and makes the test
   bed begin a real lifecycle action on its instance:
   - terminate: TerminateInstanceInAutoScalingGroup of a seeded recorder -> Terminating:Wait
     (terminate hook, Origin AutoScalingGroup, Destination EC2);
   - launch: the stack's launch hook (`jibri-autoscaler-launch`, added for the run when the
     group has none) and one more instance -> Pending:Wait (Origin EC2, Destination
     AutoScalingGroup); its Jibri answers busy or idle;
   - warm-entry: a warm pool with ReuseOnScaleIn on the group, then a scale-in of a seeded
     recorder, which returns to the pool -> Warmed:Pending:Wait (terminate hook, Origin
     AutoScalingGroup, Destination WarmPool).
3. Captures the event the test bed delivers (its `lifecycle_event_url` points at a loopback
   sink for the run, then back at what it was) and checks it against the test bed's own
   record of the event. The EventBridge form is sent as delivered; `-sqs` / `-sns` wrap the
   same action (token, instance, hook, time) in the lifecycle hook's notification message as
   an SQS or SNS target receives it. Saved under .testbed/invoke/ (TESTBED_DIR/invoke).
4. Starts `cargo lambda watch` (in the background, on a free 127.0.0.1 port, with the test
   bed's function environment), sends the file through `cargo lambda invoke
   termination-guard --data-file`, stops the watch, and prints the guard's decision, the
   instance's lifecycle state afterwards and what its Jibri went through.

The action is real and current: the guard acts only on an instance that is in the wait
state the event names and whose token is still the active action (it checks with a
heartbeat), so a saved event invoked again later is ignored. Only loopback is dialed.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
import uuid
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
# The test bed's directory, as scripts/testbed.sh names it (TESTBED_DIR, default .testbed).
TESTBED = REPO / os.environ.get("TESTBED_DIR", ".testbed")
OUT = TESTBED / "invoke"
GROUP = "jibri-pool"
TERMINATE_HOOK = "jibri-autoscaler-terminate"
LAUNCH_HOOK = "jibri-autoscaler-launch"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
KINDS = ("terminate", "launch", "warm-entry")
FORMS = ("eventbridge", "sqs", "sns")
OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))  # never through a proxy


def shown(path: Path) -> str:
    """A path as a user would type it from the repository root."""
    try:
        return str(path.relative_to(REPO))
    except ValueError:
        return str(path)


def fail(message: str) -> None:
    print(f"invoke: {message}", file=sys.stderr)
    sys.exit(2)


def say(label: str, text: str) -> None:
    print(f"  {label:<10} {text}", flush=True)


def loopback(url: str) -> str:
    if not url.startswith(("http://127.", "http://localhost")):
        fail(f"refusing non-loopback endpoint {url}")
    return url.rstrip("/")


def call(method: str, url: str, body: Any = None, timeout: float = 10) -> tuple[int, Any]:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method, headers={"content-type": "application/json"})
    try:
        with OPENER.open(req, timeout=timeout) as r:
            raw = r.read()
            return r.status, (json.loads(raw) if raw else None)
    except urllib.error.HTTPError as e:
        raw = e.read()
        try:
            return e.code, json.loads(raw)
        except ValueError:
            return e.code, raw.decode(errors="replace")


def read_env_file(path: Path) -> dict[str, str]:
    out = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#") and "=" in line:
            k, v = line.split("=", 1)
            out[k] = v
    return out


def answers(url: str) -> bool:
    try:
        return call("GET", f"{url}/_testbed/health", timeout=2)[0] == 200
    except OSError:
        return False


# --- the test bed ---------------------------------------------------------------------------


class Bed:
    """The test bed's endpoints, boto3 clients, control APIs and the watch's environment file."""

    def __init__(self) -> None:
        env_file = TESTBED / "env"
        source = "the environment"
        values = {k: os.environ[k] for k in ("AWS_ENDPOINT_URL", "JITSI_EMULATOR_URL", "AWS_REGION") if os.environ.get(k)}
        if not {"AWS_ENDPOINT_URL", "JITSI_EMULATOR_URL"} <= set(values):
            if not (env_file.exists() and answers(read_env_file(env_file).get("AWS_ENDPOINT_URL", ""))):
                print("invoke: no test bed answers: starting one (scripts/testbed.sh up; `make testbed-down` stops it)", flush=True)
                subprocess.run(["scripts/testbed.sh", "up"], cwd=REPO, check=True)
            values, source = read_env_file(env_file), shown(env_file)
        self.aws = loopback(values["AWS_ENDPOINT_URL"])
        if "JITSI_EMULATOR_URL" not in values:
            fail("the test bed runs without the Jitsi emulator: `make testbed-up`")
        self.jitsi = loopback(values["JITSI_EMULATOR_URL"])
        self.region = values.get("AWS_REGION", "us-east-1")
        self.source = source
        self.lambda_env = Path(os.environ.get("LAMBDA_ENV_FILE") or TESTBED / "lambda.env")
        if not self.lambda_env.exists():
            fail(f"{self.lambda_env} missing: the test bed was not seeded (`make testbed-up` writes it)")
        import boto3
        from botocore.config import Config

        kw = dict(endpoint_url=self.aws, aws_access_key_id="testing", aws_secret_access_key="testing",
                  config=Config(retries={"max_attempts": 2}, region_name=self.region))
        self.asg = boto3.client("autoscaling", **kw)
        self.ec2 = boto3.client("ec2", **kw)

    def testbed(self, method: str, path: str, body: Any = None) -> Any:
        status, out = call(method, f"{self.aws}/_testbed/{path}", body)
        if status >= 300:
            fail(f"test bed {method} {path}: {status} {out}")
        return out

    def control(self, method: str, path: str, body: Any = None) -> tuple[int, Any]:
        return call(method, f"{self.jitsi}/control/{path}", body)

    def group(self) -> dict[str, Any]:
        groups = self.asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"]
        if not groups:
            fail(f"no group {GROUP} on the test bed: it was started without seeding (`make testbed-up`)")
        return groups[0]

    def hooks(self) -> dict[str, dict[str, Any]]:
        return {h["LifecycleHookName"]: h for h in self.asg.describe_lifecycle_hooks(AutoScalingGroupName=GROUP)["LifecycleHooks"]}

    def recorder(self, instance: str) -> dict[str, Any] | None:
        status, body = self.control("GET", f"recorders/{instance}")
        return body if status == 200 else None

    def lifecycle_state(self, instance: str) -> str:
        found = self.asg.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
        if found:
            return found[0]["LifecycleState"]
        reservations = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
        ec2_state = reservations[0]["Instances"][0]["State"]["Name"] if reservations else "gone"
        return f"not in the group any more (EC2: {ec2_state})"

    def open_action(self, instance: str) -> dict[str, Any] | None:
        return next((a for a in self.testbed("GET", "actions")["actions"] if a["EC2InstanceId"] == instance), None)

    def wait_in_service(self, count: int) -> list[str]:
        """InService instances with a recorder, at least `count` of them (the emulator
        follows the group and gives each InService instance one), those whose Jibri runs
        first: `set_recorder` restarts an exited one (a warm start boots it again)."""
        deadline = time.monotonic() + 30
        while True:
            ids = [i["InstanceId"] for i in self.group()["Instances"] if i["LifecycleState"] == "InService"]
            recorders = {i: r for i in ids if (r := self.recorder(i)) is not None}
            usable = sorted(recorders, key=lambda i: recorders[i]["gone"])
            if len(usable) >= count or time.monotonic() > deadline:
                return usable
            time.sleep(0.25)

    def set_recorder(self, instance: str, state: str) -> None:
        r = self.recorder(instance)
        if r is not None and (r["gone"] or r["exit_pending"]):
            self.control("POST", f"recorders/{instance}/restart")  # a fresh Jibri process
        # Its address is the instance's private IP (127.N.x.y on the test bed): the emulator
        # listens there as this instance's Jibri, which the guard dials as in production.
        address = self.ec2.describe_instances(InstanceIds=[instance])["Reservations"][0]["Instances"][0]["PrivateIpAddress"]
        status, body = self.control("PUT", f"recorders/{instance}", {"status": state.upper(), "address": address})
        if status != 200:
            fail(f"could not set {instance}'s recorder {state}: {status} {body}")


# --- capturing what the test bed delivers ------------------------------------------------------


class Sink:
    """A loopback HTTP endpoint that records every POSTed JSON body (the test bed's
    lifecycle event deliveries) and answers 202, as Lambda's async invoke does."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []
        self.cond = threading.Condition()
        sink = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *_: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with sink.cond:
                    sink.bodies.append(json.loads(body))
                    sink.cond.notify_all()
                self.send_response(202)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/lifecycle"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, match: Any, timeout: float = 15) -> dict[str, Any]:
        deadline = time.monotonic() + timeout
        with self.cond:
            while True:
                found = next((b for b in self.bodies if match(b)), None)
                if found is not None:
                    return found
                left = deadline - time.monotonic()
                if left <= 0:
                    fail(f"the test bed delivered no matching lifecycle event within {timeout:.0f} s "
                         f"(got {len(self.bodies)} other)")
                self.cond.wait(left)

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# --- the event in each delivery form -------------------------------------------------------------


def notification(event: dict[str, Any]) -> dict[str, Any]:
    """The lifecycle hook's notification message (what an SQS or SNS notification target
    receives) for the action an EventBridge event describes."""
    d = event["detail"]
    at = datetime.strptime(event["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=timezone.utc)
    message = {
        "Origin": d["Origin"],
        "LifecycleHookName": d["LifecycleHookName"],
        "Destination": d["Destination"],
        "AccountId": event["account"],
        "RequestId": str(uuid.uuid4()),
        "LifecycleTransition": d["LifecycleTransition"],
        "AutoScalingGroupName": d["AutoScalingGroupName"],
        "Service": "AWS Auto Scaling",
        "Time": at.strftime("%Y-%m-%dT%H:%M:%S.000Z"),
        "EC2InstanceId": d["EC2InstanceId"],
        "LifecycleActionToken": d["LifecycleActionToken"],
    }
    if "NotificationMetadata" in d:
        message["NotificationMetadata"] = d["NotificationMetadata"]
    return message


def in_form(event: dict[str, Any], form: str) -> dict[str, Any]:
    if form == "eventbridge":
        return event
    body = json.dumps(notification(event))
    region, account = event["region"], event["account"]
    sent_ms = str(int(time.time() * 1000))
    if form == "sqs":
        return {"Records": [{
            "messageId": str(uuid.uuid4()),
            "receiptHandle": "invoke-" + uuid.uuid4().hex,
            "body": body,
            "attributes": {"ApproximateReceiveCount": "1", "SentTimestamp": sent_ms,
                           "SenderId": "AROAEXAMPLE:AutoScaling", "ApproximateFirstReceiveTimestamp": sent_ms},
            "messageAttributes": {},
            "md5OfBody": hashlib.md5(body.encode()).hexdigest(),
            "eventSource": "aws:sqs",
            "eventSourceARN": f"arn:aws:sqs:{region}:{account}:jibri-lifecycle",
            "awsRegion": region,
        }]}
    d = event["detail"]
    action = "LAUNCHING" if d["LifecycleTransition"] == LAUNCHING else "TERMINATING"
    topic = f"arn:aws:sns:{region}:{account}:jibri-lifecycle"
    return {"Records": [{
        "EventSource": "aws:sns",
        "EventVersion": "1.0",
        "EventSubscriptionArn": f"{topic}:{uuid.uuid4()}",
        "Sns": {
            "Type": "Notification",
            "MessageId": str(uuid.uuid4()),
            "TopicArn": topic,
            "Subject": f"Auto Scaling:  Lifecycle action '{action}' for instance {d['EC2InstanceId']} in progress.",
            "Message": body,
            "Timestamp": notification(event)["Time"],
            "SignatureVersion": "1",
            "Signature": "EXAMPLE",
            "SigningCertUrl": f"https://sns.{region}.amazonaws.com/SimpleNotificationService-0000000000000000000000.pem",
            "UnsubscribeUrl": f"https://sns.{region}.amazonaws.com/?Action=Unsubscribe",
            "MessageAttributes": {},
        },
    }]}


# --- the lifecycle actions -------------------------------------------------------------------------


def begin_terminate(bed: Bed, recorder_state: str, sink: Sink) -> tuple[str, dict[str, Any], list[str]]:
    live = bed.wait_in_service(1)
    if not live:
        fail(f"no InService instance of {GROUP} with a recorder")
    instance = live[0]
    bed.set_recorder(instance, recorder_state)
    say("recorder", f"{instance}: {recorder_state.upper()} (through the Jitsi emulator)")
    bed.asg.terminate_instance_in_auto_scaling_group(InstanceId=instance, ShouldDecrementDesiredCapacity=False)
    say("action", f"TerminateInstanceInAutoScalingGroup {instance} -> {bed.lifecycle_state(instance)}")
    event = sink.wait_for(lambda b: b.get("detail", {}).get("EC2InstanceId") == instance
                          and b["detail"].get("LifecycleTransition") == TERMINATING)
    return instance, event, []


def begin_launch(bed: Bed, recorder_state: str, sink: Sink) -> tuple[str, dict[str, Any], list[str]]:
    notes = []
    if LAUNCH_HOOK not in bed.hooks():
        # The stack's launch hook (infra/template.yaml LaunchHook). The seed has none: the
        # emulator gives a recorder only to InService instances, and a launch hook with no
        # guard listening would hold every new instance.
        bed.asg.put_lifecycle_hook(LifecycleHookName=LAUNCH_HOOK, AutoScalingGroupName=GROUP, LifecycleTransition=LAUNCHING,
                                   HeartbeatTimeout=1200, DefaultResult="CONTINUE")
        notes.append("remove-launch-hook")
        say("hook", f"{LAUNCH_HOOK} added to {GROUP} for this run (the stack's: 1200 s, CONTINUE)")
    group = bed.group()
    before = {i["InstanceId"] for i in group["Instances"]}
    desired = group["DesiredCapacity"] + 1
    if desired > group["MaxSize"]:
        fail(f"{GROUP} is at its MaxSize {group['MaxSize']}")
    bed.asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=desired)
    boot_delay = bed.testbed("GET", "config").get("boot_delay_s") or 0
    if boot_delay:
        bed.testbed("POST", "clock/advance", {"seconds": boot_delay})
        say("clock", f"test-bed clock advanced by its boot delay ({boot_delay:g} s)")
    event = sink.wait_for(lambda b: b.get("detail", {}).get("LifecycleTransition") == LAUNCHING
                          and b["detail"].get("EC2InstanceId") not in before)
    instance = event["detail"]["EC2InstanceId"]
    say("action", f"SetDesiredCapacity {desired} -> {instance} {bed.lifecycle_state(instance)}")
    # Its Jibri has booted during Pending:Wait and answers busy or idle.
    bed.set_recorder(instance, recorder_state)
    say("recorder", f"{instance}: {recorder_state.upper()} (through the Jitsi emulator)")
    return instance, event, notes


def begin_warm_entry(bed: Bed, recorder_state: str, sink: Sink) -> tuple[str, dict[str, Any], list[str]]:
    group = bed.group()
    if group["DesiredCapacity"] < max(2, group["MinSize"] + 1):
        want = max(2, group["MinSize"] + 1)
        bed.asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=want)
        group = bed.group()
    live = bed.wait_in_service(2)
    if len(live) < 2:
        fail(f"{GROUP} needs two InService instances with recorders for a scale-in")
    instance = live[0]
    desired = group["DesiredCapacity"]
    pool = bed.asg.describe_warm_pool(AutoScalingGroupName=GROUP)
    in_pool = [i for i in pool.get("Instances", []) if not i["LifecycleState"].endswith("Retained")]
    # Room for exactly one more: the pool's size is MaxGroupPreparedCapacity - desired.
    bed.asg.put_warm_pool(AutoScalingGroupName=GROUP, MinSize=0, MaxGroupPreparedCapacity=desired + len(in_pool),
                          PoolState="Stopped", InstanceReusePolicy={"ReuseOnScaleIn": True})
    say("pool", f"warm pool on {GROUP}: Stopped, ReuseOnScaleIn, room for one more (it stays: `make testbed-up` resets)")
    # The emulator drops a followed recorder as soon as its instance leaves the group's
    # instance list, which a return to the warm pool does; on AWS the instance (and its
    # Jibri) runs on until the hook is completed. So the recorder is made anew, unfollowed,
    # while the follower pauses.
    follow = bed.control("GET", "follow")[1]
    if follow:
        bed.control("DELETE", "follow")
    try:
        bed.set_recorder(instance, "idle")  # ends any session cleanly first
        bed.control("DELETE", f"recorders/{instance}")
        bed.set_recorder(instance, recorder_state)
        say("recorder", f"{instance}: {recorder_state.upper()} (through the Jitsi emulator)")
        others = [i for i in group["Instances"] if i["InstanceId"] != instance and i["LifecycleState"] == "InService"]
        unprotected = [i["InstanceId"] for i in others if not i["ProtectedFromScaleIn"]]
        if unprotected:  # the scale-in must pick this instance
            bed.asg.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=unprotected, ProtectedFromScaleIn=True)
        bed.asg.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=[instance], ProtectedFromScaleIn=False)
        bed.asg.set_desired_capacity(AutoScalingGroupName=GROUP, DesiredCapacity=desired - 1)
        if unprotected:
            bed.asg.set_instance_protection(AutoScalingGroupName=GROUP, InstanceIds=unprotected, ProtectedFromScaleIn=False)
    finally:
        if follow:
            bed.control("POST", "follow", follow["config"])
    say("action", f"scale-in {desired} -> {desired - 1} of {instance} -> {bed.lifecycle_state(instance)}")
    event = sink.wait_for(lambda b: b.get("detail", {}).get("EC2InstanceId") == instance
                          and b["detail"].get("Destination") == "WarmPool")
    return instance, event, []


BEGIN = {"terminate": begin_terminate, "launch": begin_launch, "warm-entry": begin_warm_entry}


# --- cargo lambda -----------------------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Watch:
    """`cargo lambda watch` in its own process group, stopped (by its id) on exit."""

    def __init__(self, env_file: Path) -> None:
        self.port = free_port()
        self.log_path = OUT / "watch.log"
        self.log = self.log_path.open("w")
        cmd = ["cargo", "lambda", "watch", "--invoke-address", "127.0.0.1", "--invoke-port", str(self.port),
               "--env-file", str(env_file), "--ignore-changes"]
        self.proc = subprocess.Popen(cmd, cwd=REPO, stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 60
        while True:
            if self.proc.poll() is not None:
                fail(f"cargo lambda watch exited ({self.proc.returncode}); see {self.log_path}")
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5).close()
                break
            except OSError:
                if time.monotonic() > deadline:
                    fail(f"cargo lambda watch did not listen within 60 s; see {self.log_path}")
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self.log.close()


def guard_log(path: Path, offset: int) -> list[str]:
    """The function's own log lines of the invocation (LOG_FORMAT=text), without the
    runtime's span prefix and colours."""
    text = re.sub(r"\x1b\[[0-9;]*m", "", path.read_text(errors="replace")[offset:])
    return [line.split("}: ", 1)[-1] for line in text.splitlines() if "Lambda runtime invoke{requestId" in line]


# --- main ------------------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("what", help="terminate|launch|warm-entry, optionally with -sqs or -sns")
    parser.add_argument("--recorder", choices=("busy", "idle"), default=os.environ.get("RECORDER") or "busy")
    args = parser.parse_args()
    kind, form = args.what, "eventbridge"
    for f in ("sqs", "sns"):
        if kind.endswith(f"-{f}"):
            kind, form = kind[: -len(f) - 1], f
    if kind not in KINDS:
        parser.error(f"unknown {args.what!r}: one of {', '.join(KINDS)}, optionally with -sqs or -sns")
    os.environ["PATH"] = f"{REPO / '.venv' / 'bin'}{os.pathsep}{os.environ.get('PATH', '')}"
    OUT.mkdir(parents=True, exist_ok=True)

    bed = Bed()
    print(f"invoke-{args.what}: RECORDER={args.recorder}, delivered through "
          f"{ {'eventbridge': 'EventBridge', 'sqs': 'SQS', 'sns': 'SNS'}[form] }", flush=True)
    if TERMINATE_HOOK not in bed.hooks():
        fail(f"{GROUP} has no {TERMINATE_HOOK} hook (hooks: {', '.join(bed.hooks()) or 'none'})")
    say("test bed", f"{bed.aws} (from {bed.source}), group {GROUP}, Jitsi emulator {bed.jitsi}")

    # Compiled before the watch starts, so that the invoke below does not wait for it.
    say("build", "cargo build -p termination-guard (what cargo lambda watch runs)")
    if subprocess.run(["cargo", "build", "-q", "-p", "termination-guard", "--locked"], cwd=REPO).returncode != 0:
        fail("cargo build -p termination-guard failed (above): the guard must build to be invoked")

    sink = Sink()
    previous_url = bed.testbed("GET", "config").get("lifecycle_event_url")
    bed.testbed("POST", "config", {"lifecycle_event_url": sink.url})
    notes: list[str] = []
    try:
        instance, event, notes = BEGIN[kind](bed, args.recorder, sink)
    finally:
        bed.testbed("POST", "config", {"lifecycle_event_url": previous_url})
        sink.close()
    recorded = next((e for e in bed.testbed("GET", "events") if e["event"].get("id") == event["id"]), None)
    if recorded is None or recorded["event"] != event:
        fail("the captured delivery is not the event the test bed recorded")
    d = event["detail"]
    name = f"{kind}{'' if form == 'eventbridge' else '-' + form}"
    data_file = OUT / f"{name}.json"
    data_file.write_text(json.dumps(in_form(event, form), indent=2) + "\n")
    say("event", f"{event['detail-type']}, hook {d['LifecycleHookName']}, {d['Origin']} -> {d['Destination']}, "
                 f"token {d['LifecycleActionToken']}")
    say("", f"captured from the test bed's delivery (= its event {event['id']})"
            f"{'' if form == 'eventbridge' else ', wrapped as an ' + form.upper() + ' notification'}; "
            f"saved as {shown(data_file)}")

    drains_before = ((bed.recorder(instance) or {}).get("calls") or {}).get("graceful_shutdown", 0)
    watch = Watch(bed.lambda_env)
    try:
        invoke = ["cargo", "lambda", "invoke", "termination-guard", "--invoke-address", "127.0.0.1",
                  "--invoke-port", str(watch.port), "--data-file", shown(data_file), "--output-format", "json"]
        say("invoke", " ".join(invoke))
        offset = watch.log_path.stat().st_size
        done = subprocess.run(invoke, cwd=REPO, capture_output=True, text=True, timeout=600)
        if done.returncode != 0:
            fail(f"cargo lambda invoke failed ({done.returncode}): {done.stderr.strip()}; see {watch.log_path}")
        # Read at once: the emulator removes a recorder soon after its instance is gone.
        action, state, r = bed.open_action(instance), bed.lifecycle_state(instance), bed.recorder(instance)
        time.sleep(0.3)  # the guard's last log lines
        logs = guard_log(watch.log_path, offset)
    finally:
        watch.stop()
    response = json.loads(done.stdout)
    say("guard", json.dumps(response, separators=(",", ":")))
    for line in logs:
        say("guard log", line.strip())
    for outcome in response.get("outcomes", []):
        outcome = outcome.get("outcome", outcome)  # SQS/SNS: one per record, with its id
        why = outcome.get("why")
        say("decision", f"{outcome.get('result', outcome)}{': ' + why if why else ''}")
    if "ignored" in response:
        say("decision", f"ignored: {response['ignored']}")
    if response.get("batchItemFailures"):
        say("decision", f"records handed back to SQS for a retry: {response['batchItemFailures']}")
    held = (f" (lifecycle action still open on {action['LifecycleHookName']}, heartbeat deadline {action['HeartbeatDeadline']})"
            if action else "")
    say("lifecycle", f"{instance}: {state}{held}")
    if r is None:
        say("jibri", f"{instance}: no recorder (the emulator removed it with the instance)")
    else:
        jibri = "exited" if r["gone"] else f"{r['status']}, {r['phase']}" + (", exits when its session ends" if r["exit_pending"] else "")
        drains = r["calls"]["graceful_shutdown"] - drains_before
        say("jibri", f"{instance}: {jibri}; gracefulShutdown called {drains}x by the guard")

    if "remove-launch-hook" in notes:
        if bed.open_action(instance) is None:
            bed.asg.delete_lifecycle_hook(LifecycleHookName=LAUNCH_HOOK, AutoScalingGroupName=GROUP)
            say("hook", f"{LAUNCH_HOOK} removed again")
        else:
            say("hook", f"{LAUNCH_HOOK} left on {GROUP}: its action on {instance} is still open")
    replay = f"cargo lambda invoke -A 127.0.0.1 termination-guard -F {shown(data_file)}"
    if action:
        print(f"  (the action is still open: under `cargo lambda watch -A 127.0.0.1`, `{replay}` has the guard judge it again)")
    else:
        print(f"  (the action is over: under `cargo lambda watch -A 127.0.0.1`, `{replay}` is now ignored, as a replayed event must be)")


if __name__ == "__main__":
    main()
