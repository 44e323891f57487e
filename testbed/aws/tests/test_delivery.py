"""Delivery: entering a wait state POSTs the EventBridge event, in the shape of the
real samples, asynchronously, with retries on connection errors; every attempt is
recorded; only loopback URLs can be configured."""

from __future__ import annotations

import re
import socket
import time
import uuid
from typing import Any

import pytest
from conftest import Aws, Sink, load_fixture

ISO_SECONDS = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def shape(value: Any) -> Any:
    """Keys and value types, recursively: what a consumer's parser depends on."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        return [shape(item) for item in value]
    return type(value).__name__


def test_terminate_event_has_the_shape_of_the_aws_sample(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(desired=1, terminate_hook={"metadata": "additional-info"})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    [received] = sink.wait(1)
    event = received.json()
    sample = load_fixture("asg-terminate-lifecycle.json")
    assert list(event) == list(sample)
    assert list(event["detail"]) == list(sample["detail"])
    assert shape(event) == shape(sample)

    assert received.headers["Content-Type"] == "application/json"
    assert received.path == "/2015-03-31/functions/termination-guard/invocations"
    uuid.UUID(event["id"])
    assert ISO_SECONDS.match(event["time"])
    assert event["account"] == aws.account_id
    assert event["region"] == "us-east-1"
    assert event["resources"] == [aws.group()["AutoScalingGroupARN"]]
    detail = event["detail"]
    uuid.UUID(detail["LifecycleActionToken"])
    assert detail | {"LifecycleActionToken": None} == {
        "LifecycleActionToken": None,
        "AutoScalingGroupName": "jibri",
        "LifecycleHookName": "guard",
        "EC2InstanceId": instance,
        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
        "NotificationMetadata": "additional-info",
        "Origin": "AutoScalingGroup",
        "Destination": "EC2",
    }
    # The token works as AWS's does.
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        LifecycleActionToken=detail["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert aws.states() == {}


def test_launch_event_has_the_shape_of_the_aws_sample(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(launch_hook={"metadata": "additional-info"})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)

    event = sink.wait(1)[0].json()
    sample = load_fixture("asg-launch-lifecycle.json")
    assert shape(event) == shape(sample)
    assert event["detail-type"] == "EC2 Instance-launch Lifecycle Action"
    assert event["detail"]["LifecycleTransition"] == "autoscaling:EC2_INSTANCE_LAUNCHING"
    assert (event["detail"]["Origin"], event["detail"]["Destination"]) == ("EC2", "AutoScalingGroup")


def test_notification_metadata_is_left_out_when_the_hook_has_none(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert "NotificationMetadata" not in sink.wait(1)[0].json()["detail"]


def test_every_attempt_is_recorded(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    received = sink.wait(1)[0]

    [attempt] = aws.wait_for(aws.deliveries, what="a recorded delivery")
    assert attempt["url"] == sink.url
    assert attempt["status"] == 200
    assert attempt["error"] is None
    assert attempt["body"] == received.json()
    assert attempt["response"] == '{"ok":true}'
    assert attempt["attempt"] == 1 and attempt["kind"] == "lifecycle"
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$", attempt["at"])


def test_delivery_never_blocks_the_api_call(aws: Aws, sink: Sink) -> None:
    sink.delay_s = 1.5
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(desired=3, terminate_hook={})

    started = time.monotonic()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert time.monotonic() - started < 1.0  # the sink takes 1.5 s per delivery

    assert len(sink.wait(3, timeout_s=10)) == 3


def test_connection_errors_are_retried(aws: Aws) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed_port = probe.getsockname()[1]
    url = f"http://127.0.0.1:{closed_port}/invocations"
    aws.configure(lifecycle_event_url=url, delivery_attempts=3, delivery_retry_delay_s=0.01)
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    attempts = aws.wait_for(lambda: len(aws.deliveries()) == 3 and aws.deliveries(), what="3 attempts")
    assert [a["attempt"] for a in attempts] == [1, 2, 3]
    assert all(a["status"] is None and a["error"].startswith("connection error") for a in attempts)


def test_an_error_status_is_recorded_and_not_retried(aws: Aws, sink: Sink) -> None:
    sink.status = 502
    aws.configure(lifecycle_event_url=sink.url, delivery_retry_delay_s=0.01)
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    [attempt] = aws.wait_for(aws.deliveries, what="a recorded delivery")
    assert (attempt["status"], attempt["error"]) == (502, "HTTP 502")
    time.sleep(0.1)
    assert len(aws.deliveries()) == 1


def test_events_without_a_url_are_logged_but_not_sent(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    [logged] = aws.events()
    assert logged["url"] is None and logged["kind"] == "lifecycle"
    assert logged["event"]["detail-type"] == "EC2 Instance-terminate Lifecycle Action"
    assert aws.deliveries() == []


@pytest.mark.parametrize(
    "url",
    [
        "http://10.0.0.1/invocations",
        "http://172.31.5.9:9000/",
        "http://192.168.1.1/",
        "https://example.com/hook",
        "http://[::1]:9000/",
        "ftp://127.0.0.1/x",
        "127.0.0.1:9000",
        "http://127.0.0.1:99999/",
    ],
)
def test_only_loopback_urls_can_be_configured(aws: Aws, url: str) -> None:
    for key in ("lifecycle_event_url", "schedule_url"):
        status, body = aws.control("POST", "/config", {key: url})
        assert status == 400, body
        assert "error" in body
    assert aws.ok("GET", "/config")["lifecycle_event_url"] is None


@pytest.mark.parametrize("url", ["http://localhost:9000/x", "http://127.3.4.5:80/", "https://127.0.0.1/"])
def test_loopback_urls_are_accepted(aws: Aws, url: str) -> None:
    assert aws.configure(lifecycle_event_url=url)["lifecycle_event_url"] == url
    assert aws.configure(lifecycle_event_url=None)["lifecycle_event_url"] is None


def test_unknown_or_malformed_config_is_rejected(aws: Aws) -> None:
    assert aws.control("POST", "/config", {"lifecycle_url": "http://127.0.0.1/"})[0] == 400
    assert aws.control("POST", "/config", {"boot_delay_s": -1})[0] == 400
    assert aws.control("POST", "/config", {"schedule_period_s": 0})[0] == 400
    assert aws.control("POST", "/config", ["not", "an", "object"])[0] == 400
