"""Instance lifecycle policy: with TerminateHookAbandon=retain, an abandoned
termination (explicit, heartbeat timeout or global timeout with DefaultResult
ABANDON) leaves the instance running in Terminating:Retained, outside desired
capacity, until TerminateInstanceInAutoScalingGroup is called on it."""

from __future__ import annotations

import re

import pytest
from botocore.exceptions import ClientError
from conftest import Aws, http

RETAINED = "Terminating:Retained"


def abandon(aws: Aws, instance: str) -> None:
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId=instance,
        LifecycleActionResult="ABANDON",
    )


def test_explicit_abandon_retains_the_instance_running(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={}, policy="retain")
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [victim] = aws.in_state("Terminating:Wait")

    abandon(aws, victim)

    assert aws.states()[victim] == RETAINED
    assert aws.ec2_state(victim) == "running"
    assert aws.active_actions() == []


def test_abandon_by_heartbeat_timeout_retains_the_instance(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 60, "default": "ABANDON"}, policy="retain")
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    aws.advance(61)

    assert aws.states() == {instance: RETAINED}
    assert aws.ec2_state(instance) == "running"


def test_abandon_by_global_timeout_retains_the_instance(aws: Aws) -> None:
    # HeartbeatTimeout 7200 s: the global timeout is 48 h, reached despite heartbeats.
    aws.create_group(desired=1, terminate_hook={"timeout": 7200, "default": "ABANDON"}, policy="retain")
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    for _ in range(25):  # 25 x 7000 s > 172800 s
        aws.advance(7000)
        if aws.states()[instance] != "Terminating:Wait":
            break
        aws.asg.record_lifecycle_action_heartbeat(
            AutoScalingGroupName="jibri", LifecycleHookName="guard", InstanceId=instance
        )

    assert aws.states() == {instance: RETAINED}
    assert aws.ok("GET", "/clock")["offset_s"] >= 172800


def test_continue_still_terminates_with_retention(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={}, policy="retain")
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId=instance,
        LifecycleActionResult="CONTINUE",
    )
    assert aws.states() == {}
    assert aws.ec2_state(instance) == "terminated"


def test_terminate_policy_terminates_on_abandon(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={}, policy="terminate")
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    abandon(aws, instance)
    assert aws.states() == {}


def test_retained_instance_is_outside_desired_capacity(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={}, policy="retain")
    [old] = aws.states()
    aws.asg.terminate_instance_in_auto_scaling_group(InstanceId=old, ShouldDecrementDesiredCapacity=False)
    abandon(aws, old)

    states = aws.states()
    assert states.pop(old) == RETAINED
    assert list(states.values()) == ["InService"]  # the replacement
    assert aws.group()["DesiredCapacity"] == 1


def test_retained_instance_is_ignored_by_scale_in(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={}, policy="retain")
    first, second = aws.states()
    aws.asg.terminate_instance_in_auto_scaling_group(InstanceId=first, ShouldDecrementDesiredCapacity=True)
    abandon(aws, first)
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert aws.states() == {first: RETAINED, second: "Terminating:Wait"}


def test_terminate_instance_in_auto_scaling_group_ends_retention(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={}, policy="retain")
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    abandon(aws, instance)

    aws.asg.terminate_instance_in_auto_scaling_group(
        InstanceId=instance, ShouldDecrementDesiredCapacity=False
    )

    assert aws.states() == {}
    assert aws.ec2_state(instance) == "terminated"
    assert aws.group()["DesiredCapacity"] == 0
    assert len(aws.events("lifecycle")) == 1  # no second round of hooks


def test_policy_is_described_and_can_be_changed(aws: Aws) -> None:
    aws.create_group(policy="retain")
    assert aws.group()["InstanceLifecyclePolicy"] == {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}

    aws.asg.update_auto_scaling_group(
        AutoScalingGroupName="jibri",
        InstanceLifecyclePolicy={"RetentionTriggers": {"TerminateHookAbandon": "terminate"}},
    )
    assert aws.group()["InstanceLifecyclePolicy"]["RetentionTriggers"]["TerminateHookAbandon"] == "terminate"


def test_policy_travels_as_the_query_parameters_and_xml_aws_uses(aws: Aws) -> None:
    aws.create_group()
    headers = {
        "x-moto-account-id": aws.account_id,
        "Content-Type": "application/x-www-form-urlencoded",
        "Authorization": "AWS4-HMAC-SHA256 Credential=k/20260101/us-east-1/autoscaling/aws4_request, "
        "SignedHeaders=host, Signature=0",
    }
    update = (
        "Action=UpdateAutoScalingGroup&Version=2011-01-01&AutoScalingGroupName=jibri"
        "&InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon=retain"
    )
    status, _, _ = http("POST", aws.base_url + "/", raw=update.encode(), headers=headers)
    assert status == 200

    describe = "Action=DescribeAutoScalingGroups&Version=2011-01-01&AutoScalingGroupNames.member.1=jibri"
    status, _, body = http("POST", aws.base_url + "/", raw=describe.encode(), headers=headers)
    assert status == 200
    assert re.search(
        rb"<InstanceLifecyclePolicy><RetentionTriggers><TerminateHookAbandon>retain"
        rb"</TerminateHookAbandon></RetentionTriggers></InstanceLifecyclePolicy>",
        body,
    )


def test_an_unknown_retention_action_is_rejected(aws: Aws) -> None:
    aws.create_group()
    with pytest.raises(ClientError) as err:
        aws.asg.update_auto_scaling_group(
            AutoScalingGroupName="jibri",
            InstanceLifecyclePolicy={"RetentionTriggers": {"TerminateHookAbandon": "keep"}},
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
