"""Warm pools: PutWarmPool/DescribeWarmPool/DeleteWarmPool, the pool's size rule, the
Warmed:* lifecycle with its hooks and events, scale-out from the pool, scale-in back
into it (instance reuse policy) and the pool's removal."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import Aws, Sink, http

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"
LAUNCH_DETAIL = "EC2 Instance-launch Lifecycle Action"
TERMINATE_DETAIL = "EC2 Instance-terminate Lifecycle Action"


def put_pool(aws: Aws, name: str = "jibri", **params: Any) -> None:
    aws.asg.put_warm_pool(AutoScalingGroupName=name, **params)


def describe(aws: Aws, name: str = "jibri", **params: Any) -> dict[str, Any]:
    return aws.asg.describe_warm_pool(AutoScalingGroupName=name, **params)


def warm(aws: Aws, name: str = "jibri") -> dict[str, str]:
    """Warm instance id -> LifecycleState, in pool order."""
    return {i["InstanceId"]: i["LifecycleState"] for i in describe(aws, name)["Instances"]}


def complete(aws: Aws, hook: str, instance: str, result: str = "CONTINUE") -> None:
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName=hook,
        InstanceId=instance,
        LifecycleActionResult=result,
    )


def details(aws: Aws) -> list[dict[str, Any]]:
    return [e["event"]["detail"] for e in aws.events("lifecycle")]


def raw_query(aws: Aws, action: str, **params: Any) -> tuple[int, bytes]:
    """A Query call without boto3's client-side checks (the Rust SDK makes none)."""
    body = "&".join([f"Action={action}", "Version=2011-01-01", *(f"{k}={v}" for k, v in params.items())])
    status, _, payload = http(
        "POST",
        aws.base_url + "/",
        raw=body.encode(),
        headers={
            "x-moto-account-id": aws.account_id,
            "Content-Type": "application/x-www-form-urlencoded",
            "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/autoscaling/aws4_request, "
            "SignedHeaders=host, Signature=0",
        },
    )
    return status, payload


def error_of(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**params)
    assert err.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return err.value.response["Error"]


# --- API ------------------------------------------------------------------------------


def test_put_describe_delete_round_trip(aws: Aws) -> None:
    aws.create_group(max_size=4)
    template_id = aws.ec2.describe_launch_templates()["LaunchTemplates"][0]["LaunchTemplateId"]
    put_pool(aws, MinSize=1, MaxGroupPreparedCapacity=2)

    answer = describe(aws)
    assert answer["WarmPoolConfiguration"] == {"MinSize": 1, "MaxGroupPreparedCapacity": 2, "PoolState": "Stopped"}
    assert "NextToken" not in answer
    assert len(answer["Instances"]) == 2
    for entry in answer["Instances"]:
        assert entry == {
            "InstanceId": entry["InstanceId"],
            "InstanceType": "t3.micro",
            "AvailabilityZone": "us-east-1a",
            "LifecycleState": "Warmed:Stopped",
            "HealthStatus": "Healthy",
            "LaunchTemplate": {
                "LaunchTemplateId": template_id,
                "LaunchTemplateName": "jibri-template",
                "Version": "1",
            },
        }

    group = aws.group()
    assert group["WarmPoolConfiguration"] == answer["WarmPoolConfiguration"]
    assert group["WarmPoolSize"] == 2
    assert group["Instances"] == []  # warm instances are listed only by DescribeWarmPool

    put_pool(aws, MinSize=2, PoolState="Running", InstanceReusePolicy={"ReuseOnScaleIn": True})
    config = describe(aws)["WarmPoolConfiguration"]
    assert config == {"MinSize": 2, "PoolState": "Running", "InstanceReusePolicy": {"ReuseOnScaleIn": True}}

    aws.asg.delete_warm_pool(AutoScalingGroupName="jibri", ForceDelete=True)
    assert describe(aws)["Instances"] == []
    assert "WarmPoolConfiguration" not in describe(aws)
    group = aws.group()
    assert "WarmPoolConfiguration" not in group and "WarmPoolSize" not in group


def test_minus_one_clears_max_group_prepared_capacity(aws: Aws) -> None:
    aws.create_group(max_size=3)
    put_pool(aws, MaxGroupPreparedCapacity=-1)
    assert describe(aws)["WarmPoolConfiguration"] == {"MinSize": 0, "PoolState": "Stopped"}
    assert len(warm(aws)) == 3  # MaxSize - DesiredCapacity


def test_describe_pages_with_max_records(aws: Aws) -> None:
    aws.create_group(max_size=3)
    put_pool(aws)
    first = describe(aws, MaxRecords=2)
    assert len(first["Instances"]) == 2 and first["NextToken"]
    second = describe(aws, MaxRecords=2, NextToken=first["NextToken"])
    assert len(second["Instances"]) == 1 and "NextToken" not in second
    ids = [i["InstanceId"] for i in first["Instances"] + second["Instances"]]
    assert ids == list(warm(aws))
    assert second["WarmPoolConfiguration"] == first["WarmPoolConfiguration"]


def test_describe_without_a_pool_is_empty(aws: Aws) -> None:
    aws.create_group()
    answer = describe(aws)
    assert answer["Instances"] == [] and "WarmPoolConfiguration" not in answer


def test_unknown_group_errors(aws: Aws) -> None:
    expected = {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "AutoScalingGroup name not found - AutoScalingGroup nope not found",
    }
    assert error_of(aws.asg.put_warm_pool, AutoScalingGroupName="nope", MinSize=1) == expected
    assert error_of(aws.asg.describe_warm_pool, AutoScalingGroupName="nope") == expected
    assert error_of(aws.asg.delete_warm_pool, AutoScalingGroupName="nope") == expected


def test_delete_without_a_pool_and_bad_parameters(aws: Aws) -> None:
    aws.create_group()
    error = error_of(aws.asg.delete_warm_pool, AutoScalingGroupName="jibri")
    assert error["Code"] == "ValidationError"
    assert error["Message"].startswith("No warm pool found")
    error = error_of(aws.asg.put_warm_pool, AutoScalingGroupName="jibri", PoolState="Frozen")
    assert error["Code"] == "ValidationError" and "poolState" in error["Message"]
    status, payload = raw_query(aws, "PutWarmPool", AutoScalingGroupName="jibri", MaxGroupPreparedCapacity=-2)
    assert status == 400
    assert b"<Code>ValidationError</Code>" in payload and b"maxGroupPreparedCapacity" in payload
    assert "WarmPoolConfiguration" not in describe(aws)


# --- size rule --------------------------------------------------------------------------


def test_size_is_max_size_minus_desired_when_prepared_capacity_is_unset(aws: Aws) -> None:
    aws.create_group(max_size=5, desired=2)
    put_pool(aws)
    assert len(warm(aws)) == 3
    # Scaling in grows the pool (no reuse: the victim is terminated, a new one launched).
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    assert len(warm(aws)) == 4
    aws.asg.update_auto_scaling_group(AutoScalingGroupName="jibri", MaxSize=3)
    assert list(warm(aws).values()) == ["Warmed:Stopped", "Warmed:Stopped"]


def test_size_uses_max_group_prepared_capacity(aws: Aws) -> None:
    aws.create_group(max_size=10, desired=1)
    put_pool(aws, MaxGroupPreparedCapacity=4)
    assert len(warm(aws)) == 3  # 4 - 1
    put_pool(aws, MaxGroupPreparedCapacity=2)
    assert len(warm(aws)) == 1  # shrunk, no terminate hook: terminated at once


def test_min_size_is_a_floor(aws: Aws) -> None:
    aws.create_group(max_size=10, desired=3)
    put_pool(aws, MinSize=2, MaxGroupPreparedCapacity=3)
    assert len(warm(aws)) == 2  # max(2, 3 - 3)
    put_pool(aws, MinSize=0, MaxGroupPreparedCapacity=3)
    assert len(warm(aws)) == 0


# --- launch into the pool --------------------------------------------------------------


def test_launch_into_the_pool_without_hook_stops_the_instance(aws: Aws) -> None:
    aws.create_group(max_size=1)
    put_pool(aws)
    [(instance, state)] = warm(aws).items()
    assert state == "Warmed:Stopped"
    [reservation] = aws.ec2.describe_instances(InstanceIds=[instance])["Reservations"]
    ec2_instance = reservation["Instances"][0]
    assert ec2_instance["State"]["Name"] == "stopped"
    assert {"Key": "aws:autoscaling:groupName", "Value": "jibri"} in ec2_instance["Tags"]
    assert aws.events() == []


def test_pool_state_running_keeps_the_instance_running(aws: Aws) -> None:
    aws.create_group(max_size=1)
    put_pool(aws, PoolState="Running")
    [(instance, state)] = warm(aws).items()
    assert state == "Warmed:Running" and aws.ec2_state(instance) == "running"


def test_launch_into_the_pool_waits_for_the_launch_hook(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url, boot_delay_s=30)
    aws.create_group(max_size=1, launch_hook={"metadata": "warming"})
    put_pool(aws)
    [(instance, state)] = warm(aws).items()
    assert state == "Warmed:Pending" and aws.events() == []
    [boot] = aws.ok("GET", "/actions")["booting"]
    assert (boot["EC2InstanceId"], boot["Origin"], boot["Destination"]) == (instance, "EC2", "WarmPool")

    aws.advance(30)
    assert warm(aws) == {instance: "Warmed:Pending:Wait"}
    assert aws.ec2_state(instance) == "running"
    event = sink.wait(1)[0].json()
    assert event["detail-type"] == LAUNCH_DETAIL
    assert event["resources"] == [aws.group()["AutoScalingGroupARN"]]
    detail = event["detail"]
    uuid.UUID(detail["LifecycleActionToken"])
    assert detail | {"LifecycleActionToken": None} == {
        "LifecycleActionToken": None,
        "AutoScalingGroupName": "jibri",
        "LifecycleHookName": "warm",
        "EC2InstanceId": instance,
        "LifecycleTransition": LAUNCHING,
        "NotificationMetadata": "warming",
        "Origin": "EC2",
        "Destination": "WarmPool",
    }
    [action] = aws.active_actions()
    assert (action["Origin"], action["Destination"]) == ("EC2", "WarmPool")

    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="warm",
        LifecycleActionToken=detail["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )
    assert warm(aws) == {instance: "Warmed:Stopped"}
    assert aws.ec2_state(instance) == "stopped"
    assert aws.group()["Instances"] == []


def test_heartbeat_timeout_applies_the_default_result_to_a_warm_launch(aws: Aws) -> None:
    aws.create_group(max_size=1, launch_hook={"timeout": 60, "default": "CONTINUE"})
    put_pool(aws)
    [instance] = warm(aws)
    aws.advance(40)
    aws.asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="jibri", LifecycleHookName="warm", InstanceId=instance
    )
    aws.advance(59)
    assert warm(aws) == {instance: "Warmed:Pending:Wait"}
    aws.advance(1)
    assert warm(aws) == {instance: "Warmed:Stopped"}
    assert aws.active_actions() == []


def test_abandon_at_warmed_pending_wait_terminates_and_the_pool_refills(aws: Aws) -> None:
    aws.create_group(max_size=1, launch_hook={"timeout": 60, "default": "ABANDON"})
    put_pool(aws)
    [first] = warm(aws)
    complete(aws, "warm", first, "ABANDON")
    assert aws.ec2_state(first) == "terminated"
    [second] = warm(aws)
    assert second != first and warm(aws) == {second: "Warmed:Pending:Wait"}
    # The default result ABANDON does the same on timeout.
    aws.advance(61)
    [third] = warm(aws)
    assert third not in (first, second) and aws.ec2_state(second) == "terminated"
    assert [d["Destination"] for d in details(aws)] == ["WarmPool"] * 3


# --- scale-out from the pool -----------------------------------------------------------


def test_scale_out_takes_warm_instances_first(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(max_size=6, launch_hook={})
    put_pool(aws, MaxGroupPreparedCapacity=2)
    oldest, newest = warm(aws)
    for instance in (oldest, newest):
        complete(aws, "warm", instance)
    assert warm(aws) == {oldest: "Warmed:Stopped", newest: "Warmed:Stopped"}

    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    assert aws.states() == {oldest: "Pending:Wait"}
    assert warm(aws) == {newest: "Warmed:Stopped"}  # 2 - 1: no refill needed
    assert aws.ec2_state(oldest) == "running"
    detail = sink.wait(3)[2].json()["detail"]
    assert detail["EC2InstanceId"] == oldest
    assert (detail["LifecycleTransition"], detail["Origin"], detail["Destination"]) == (
        LAUNCHING,
        "WarmPool",
        "AutoScalingGroup",
    )
    complete(aws, "warm", oldest)
    assert aws.states() == {oldest: "InService"}
    assert aws.group()["Instances"][0]["ProtectedFromScaleIn"] is False

    # Three more: one from the pool, two cold launches; the pool stays empty (2 - 4 < 0).
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=4)
    states = aws.states()
    assert len(states) == 4 and warm(aws) == {}
    assert states[newest] == "Pending:Wait"
    origins = {d["EC2InstanceId"]: d["Origin"] for d in details(aws)[3:]}
    assert origins[newest] == "WarmPool"
    assert sorted(origins.values()) == ["EC2", "EC2", "WarmPool"]
    assert {d["Destination"] for d in details(aws)[3:]} == {"AutoScalingGroup"}


def test_scale_out_launches_cold_when_the_pool_is_empty(aws: Aws) -> None:
    aws.create_group(max_size=2, launch_hook={})
    put_pool(aws, MaxGroupPreparedCapacity=0)
    assert warm(aws) == {}
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.states()
    [detail] = details(aws)
    assert (detail["EC2InstanceId"], detail["Origin"], detail["Destination"]) == (
        instance,
        "EC2",
        "AutoScalingGroup",
    )


def test_instances_still_warming_are_not_taken(aws: Aws) -> None:
    aws.create_group(max_size=2, launch_hook={})
    put_pool(aws, MaxGroupPreparedCapacity=1)
    [warming] = warm(aws)
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [cold] = aws.states()
    assert cold != warming
    # The pool (1 - 1 = 0 now) lets the still-warming instance go at once: no hook.
    assert warm(aws) == {}
    assert aws.ec2_state(warming) == "terminated"


def test_warm_start_delay_keeps_a_warm_instance_pending(aws: Aws) -> None:
    aws.configure(warm_start_delay_s=20)
    aws.create_group(max_size=1)
    put_pool(aws)
    [instance] = warm(aws)
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    assert aws.states() == {instance: "Pending"}
    [boot] = aws.ok("GET", "/actions")["booting"]
    assert (boot["EC2InstanceId"], boot["Origin"], boot["Destination"]) == (instance, "WarmPool", "AutoScalingGroup")
    aws.advance(19)
    assert aws.states() == {instance: "Pending"}
    aws.advance(1)
    assert aws.states() == {instance: "InService"}


def test_warm_start_delay_is_validated(aws: Aws) -> None:
    assert aws.ok("GET", "/config")["warm_start_delay_s"] == 0
    status, body = aws.control("POST", "/config", {"warm_start_delay_s": -1})
    assert status == 400 and "warm_start_delay_s" in body["error"]
    assert aws.configure(warm_start_delay_s=2.5)["warm_start_delay_s"] == 2.5


# --- scale-in -----------------------------------------------------------------------------


def test_scale_in_with_reuse_returns_the_instance_to_the_pool(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(max_size=2, desired=1, terminate_hook={"metadata": "drain"})
    [active] = aws.states()
    put_pool(aws, InstanceReusePolicy={"ReuseOnScaleIn": True})
    [spare] = warm(aws)  # 2 - 1

    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert aws.states() == {}
    assert warm(aws) == {spare: "Warmed:Stopped", active: "Warmed:Pending:Wait"}
    assert aws.ec2_state(active) == "running"
    event = sink.wait(1)[0].json()
    assert event["detail-type"] == TERMINATE_DETAIL
    assert event["detail"] | {"LifecycleActionToken": None} == {
        "LifecycleActionToken": None,
        "AutoScalingGroupName": "jibri",
        "LifecycleHookName": "guard",
        "EC2InstanceId": active,
        "LifecycleTransition": TERMINATING,
        "NotificationMetadata": "drain",
        "Origin": "AutoScalingGroup",
        "Destination": "WarmPool",
    }

    complete(aws, "guard", active)
    assert warm(aws) == {spare: "Warmed:Stopped", active: "Warmed:Stopped"}
    assert aws.ec2_state(active) == "stopped"
    assert len(aws.events()) == 1

    # The returned instance is used again on the next scale-out (the spare waited longer).
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    assert aws.states() == {spare: "InService"}
    assert warm(aws) == {active: "Warmed:Stopped"}


def test_reuse_without_terminate_hook_returns_at_once(aws: Aws) -> None:
    aws.create_group(max_size=1, desired=1)
    [active] = aws.states()
    put_pool(aws, InstanceReusePolicy={"ReuseOnScaleIn": True})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert warm(aws) == {active: "Warmed:Stopped"}
    assert aws.ec2_state(active) == "stopped"


def test_abandon_of_a_return_still_returns_unless_retained(aws: Aws) -> None:
    aws.create_group(max_size=2, desired=2, terminate_hook={})
    first, second = aws.states()
    put_pool(aws, InstanceReusePolicy={"ReuseOnScaleIn": True})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [returning] = warm(aws)
    complete(aws, "guard", returning, "ABANDON")
    assert warm(aws) == {returning: "Warmed:Stopped"}

    aws.asg.update_auto_scaling_group(
        AutoScalingGroupName="jibri",
        InstanceLifecyclePolicy={"RetentionTriggers": {"TerminateHookAbandon": "retain"}},
    )
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    [retained] = [i for i, s in warm(aws).items() if s == "Warmed:Pending:Wait"]
    complete(aws, "guard", retained, "ABANDON")
    assert warm(aws)[retained] == "Warmed:Pending:Retained"
    assert aws.ec2_state(retained) == "running"


def test_scale_in_without_reuse_terminates(aws: Aws) -> None:
    aws.create_group(max_size=2, desired=1, terminate_hook={})
    [active] = aws.states()
    put_pool(aws)
    [spare] = warm(aws)
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert aws.states() == {active: "Terminating:Wait"}
    [detail] = details(aws)
    assert (detail["Origin"], detail["Destination"]) == ("AutoScalingGroup", "EC2")
    complete(aws, "guard", active)
    assert aws.ec2_state(active) == "terminated"
    pool = warm(aws)
    assert active not in pool and len(pool) == 2 and pool[spare] == "Warmed:Stopped"


def test_reuse_only_while_the_pool_has_room(aws: Aws) -> None:
    aws.create_group(max_size=3, desired=2, terminate_hook={})
    oldest, newest = aws.states()
    put_pool(aws, MaxGroupPreparedCapacity=1, InstanceReusePolicy={"ReuseOnScaleIn": True})
    assert warm(aws) == {}  # max(0, 1 - 2)

    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    # The pool now holds 1 - 0 = 1: the first victim (the oldest) returns to it, the
    # second finds no room and is terminated.
    assert warm(aws) == {oldest: "Warmed:Pending:Wait"}
    assert aws.states() == {newest: "Terminating:Wait"}
    destinations = {d["EC2InstanceId"]: d["Destination"] for d in details(aws)}
    assert destinations == {oldest: "WarmPool", newest: "EC2"}


# --- removal ------------------------------------------------------------------------------


def test_pool_shrink_runs_the_terminate_hook(aws: Aws, sink: Sink) -> None:
    aws.configure(lifecycle_event_url=sink.url)
    aws.create_group(max_size=4, terminate_hook={})
    put_pool(aws, MaxGroupPreparedCapacity=2)
    oldest, newest = warm(aws)
    put_pool(aws, MaxGroupPreparedCapacity=1)
    assert warm(aws) == {oldest: "Warmed:Terminating:Wait", newest: "Warmed:Stopped"}
    event = sink.wait(1)[0].json()
    assert event["detail-type"] == TERMINATE_DETAIL
    detail = event["detail"]
    assert (detail["EC2InstanceId"], detail["LifecycleTransition"], detail["Origin"], detail["Destination"]) == (
        oldest,
        TERMINATING,
        "WarmPool",
        "EC2",
    )
    assert aws.group()["WarmPoolSize"] == 2

    complete(aws, "guard", oldest)
    assert warm(aws) == {newest: "Warmed:Stopped"}
    assert aws.ec2_state(oldest) == "terminated"


def test_warm_terminate_timeout_and_retention(aws: Aws) -> None:
    aws.create_group(max_size=4, terminate_hook={"timeout": 120, "default": "ABANDON"}, policy="retain")
    put_pool(aws, MaxGroupPreparedCapacity=2)
    oldest, newest = warm(aws)
    put_pool(aws, MaxGroupPreparedCapacity=1)
    aws.advance(121)
    assert warm(aws) == {oldest: "Warmed:Terminating:Retained", newest: "Warmed:Stopped"}
    aws.asg.terminate_instance_in_auto_scaling_group(InstanceId=oldest, ShouldDecrementDesiredCapacity=False)
    assert warm(aws) == {newest: "Warmed:Stopped"}
    assert aws.ec2_state(oldest) == "terminated"


def test_delete_without_force_is_pending_until_the_instances_are_gone(aws: Aws) -> None:
    aws.create_group(max_size=1, terminate_hook={})
    put_pool(aws)
    [instance] = warm(aws)
    aws.asg.delete_warm_pool(AutoScalingGroupName="jibri")
    answer = describe(aws)
    assert answer["WarmPoolConfiguration"]["Status"] == "PendingDelete"
    assert warm(aws) == {instance: "Warmed:Terminating:Wait"}
    assert aws.group()["WarmPoolConfiguration"]["Status"] == "PendingDelete"

    complete(aws, "guard", instance)
    answer = describe(aws)
    assert answer["Instances"] == [] and "WarmPoolConfiguration" not in answer
    assert aws.ec2_state(instance) == "terminated"


def test_delete_without_force_and_without_hooks_is_immediate(aws: Aws) -> None:
    aws.create_group(max_size=2)
    put_pool(aws)
    instances = list(warm(aws))
    aws.asg.delete_warm_pool(AutoScalingGroupName="jibri")
    assert "WarmPoolConfiguration" not in describe(aws)
    assert {aws.ec2_state(i) for i in instances} == {"terminated"}


def test_force_delete_terminates_at_once_and_drops_actions(aws: Aws) -> None:
    aws.create_group(max_size=2, launch_hook={}, terminate_hook={})
    put_pool(aws)
    instances = list(warm(aws))
    assert len(aws.active_actions()) == 2  # both at Warmed:Pending:Wait
    aws.asg.delete_warm_pool(AutoScalingGroupName="jibri", ForceDelete=True)
    assert "WarmPoolConfiguration" not in describe(aws)
    assert aws.active_actions() == []
    assert {aws.ec2_state(i) for i in instances} == {"terminated"}
    assert [d["LifecycleTransition"] for d in details(aws)] == [LAUNCHING, LAUNCHING]


# --- the rest of the world ----------------------------------------------------------------


def test_warm_instances_are_auto_scaling_instances(aws: Aws) -> None:
    aws.create_group(max_size=1)
    put_pool(aws)
    [instance] = warm(aws)
    [entry] = aws.asg.describe_auto_scaling_instances(InstanceIds=[instance])["AutoScalingInstances"]
    assert (entry["AutoScalingGroupName"], entry["LifecycleState"]) == ("jibri", "Warmed:Stopped")


def test_ec2_termination_of_a_warm_instance_refills_the_pool(aws: Aws) -> None:
    aws.create_group(max_size=1)
    put_pool(aws)
    [first] = warm(aws)
    aws.ec2.terminate_instances(InstanceIds=[first])
    [second] = warm(aws)
    assert second != first and warm(aws) == {second: "Warmed:Stopped"}


def test_group_deletion_terminates_warm_instances(aws: Aws) -> None:
    aws.create_group(max_size=2)
    put_pool(aws)
    instances = list(warm(aws))
    aws.asg.delete_auto_scaling_group(AutoScalingGroupName="jibri", ForceDelete=True)
    assert {aws.ec2_state(i) for i in instances} == {"terminated"}
