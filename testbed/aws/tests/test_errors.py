"""AWS error shapes: HTTP 400 query-protocol XML with Type Sender and Code
ValidationError, and the messages AWS writes."""

from __future__ import annotations

import re
from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import Aws, http


def error_of(call: Any, **params: Any) -> dict[str, Any]:
    with pytest.raises(ClientError) as err:
        call(**params)
    response = err.value.response
    assert response["ResponseMetadata"]["HTTPStatusCode"] == 400
    return response["Error"]


def test_complete_with_an_unknown_token_is_the_exact_aws_xml(aws: Aws) -> None:
    aws.create_group(terminate_hook={})
    body = (
        "Action=CompleteLifecycleAction&Version=2011-01-01&AutoScalingGroupName=jibri"
        "&LifecycleHookName=guard&LifecycleActionResult=CONTINUE"
        "&LifecycleActionToken=87654321-4321-4321-4321-210987654321"
    )
    status, headers, payload = http(
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
    assert status == 400
    assert re.fullmatch(
        rb'<ErrorResponse xmlns="http://autoscaling.amazonaws.com/doc/2011-01-01/"><Error><Type>Sender</Type>'
        rb"<Code>ValidationError</Code><Message>No active Lifecycle Action found with token "
        rb"87654321-4321-4321-4321-210987654321</Message></Error><RequestId>[^<]+</RequestId></ErrorResponse>",
        payload.strip(),
    ), payload


def test_complete_and_heartbeat_by_instance_id_with_nothing_active(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [instance] = aws.states()
    expected = {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": f"No active Lifecycle Action found with instance ID {instance}",
    }
    assert (
        error_of(
            aws.asg.complete_lifecycle_action,
            AutoScalingGroupName="jibri",
            LifecycleHookName="guard",
            InstanceId=instance,
            LifecycleActionResult="CONTINUE",
        )
        == expected
    )
    assert (
        error_of(
            aws.asg.record_lifecycle_action_heartbeat,
            AutoScalingGroupName="jibri",
            LifecycleHookName="guard",
            InstanceId=instance,
        )
        == expected
    )


def test_heartbeat_with_an_unknown_token(aws: Aws) -> None:
    aws.create_group(terminate_hook={})
    error = error_of(
        aws.asg.record_lifecycle_action_heartbeat,
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        LifecycleActionToken="00000000-0000-0000-0000-000000000000",
    )
    assert (
        error["Message"] == "No active Lifecycle Action found with token 00000000-0000-0000-0000-000000000000"
    )


def test_a_token_of_another_hook_is_not_active_for_this_one(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    token = aws.events("lifecycle")[0]["event"]["detail"]["LifecycleActionToken"]
    error = error_of(
        aws.asg.complete_lifecycle_action,
        AutoScalingGroupName="jibri",
        LifecycleHookName="other",
        LifecycleActionToken=token,
        LifecycleActionResult="CONTINUE",
    )
    assert error["Message"] == f"No active Lifecycle Action found with token {token}"


def test_an_expired_action_is_no_longer_active(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 30})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    token = aws.events("lifecycle")[0]["event"]["detail"]["LifecycleActionToken"]
    aws.advance(31)
    error = error_of(
        aws.asg.complete_lifecycle_action,
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        LifecycleActionToken=token,
        LifecycleActionResult="CONTINUE",
    )
    assert error["Message"].startswith("No active Lifecycle Action found with token")


def test_actions_are_per_account(aws: Aws, server: Any) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    stranger = Aws(server.url, "999999999999")
    error = error_of(
        stranger.asg.complete_lifecycle_action,
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId=instance,
        LifecycleActionResult="CONTINUE",
    )
    assert error["Message"] == f"No active Lifecycle Action found with instance ID {instance}"
    assert aws.states() == {instance: "Terminating:Wait"}


def test_set_desired_capacity_outside_the_bounds(aws: Aws) -> None:
    aws.create_group(min_size=1, max_size=3)
    assert error_of(aws.asg.set_desired_capacity, AutoScalingGroupName="jibri", DesiredCapacity=4)[
        "Message"
    ] == ("New SetDesiredCapacity value 4 is above max value 3 for the AutoScalingGroup.")
    assert error_of(aws.asg.set_desired_capacity, AutoScalingGroupName="jibri", DesiredCapacity=0)[
        "Message"
    ] == ("New SetDesiredCapacity value 0 is below min value 1 for the AutoScalingGroup.")
    assert aws.group()["DesiredCapacity"] == 1


def test_update_auto_scaling_group_outside_the_bounds(aws: Aws) -> None:
    aws.create_group(min_size=1, max_size=3)
    assert (
        error_of(aws.asg.update_auto_scaling_group, AutoScalingGroupName="jibri", DesiredCapacity=5)[
            "Message"
        ]
        == "Desired capacity:5 must be between the specified min size:1 and max size:3"
    )
    assert (
        error_of(aws.asg.update_auto_scaling_group, AutoScalingGroupName="jibri", MinSize=4)["Message"]
        == "Max bound, 3, must be greater than or equal to min bound, 4"
    )


def test_create_auto_scaling_group_outside_the_bounds(aws: Aws) -> None:
    aws.ec2.create_launch_template(
        LaunchTemplateName="t-1", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"}
    )
    error = error_of(
        aws.asg.create_auto_scaling_group,
        AutoScalingGroupName="jibri",
        MinSize=0,
        MaxSize=2,
        DesiredCapacity=3,
        LaunchTemplate={"LaunchTemplateName": "t-1"},
        AvailabilityZones=["us-east-1a"],
    )
    assert error["Message"] == "Desired capacity:3 must be between the specified min size:0 and max size:2"


def test_update_raising_min_size_raises_desired_capacity(aws: Aws) -> None:
    aws.create_group(desired=1)
    aws.asg.update_auto_scaling_group(AutoScalingGroupName="jibri", MinSize=2)
    assert aws.group()["DesiredCapacity"] == 2
    assert len(aws.states()) == 2


@pytest.mark.parametrize("operation", ["set_desired_capacity", "update_auto_scaling_group"])
def test_unknown_group_on_capacity_calls(aws: Aws, operation: str) -> None:
    params: dict[str, Any] = {"AutoScalingGroupName": "nope"}
    if operation == "set_desired_capacity":
        params["DesiredCapacity"] = 1
    error = error_of(getattr(aws.asg, operation), **params)
    assert error == {
        "Type": "Sender",
        "Code": "ValidationError",
        "Message": "AutoScalingGroup name not found - null",
    }


def test_unknown_group_on_other_group_calls(aws: Aws) -> None:
    error = error_of(
        aws.asg.set_instance_protection,
        AutoScalingGroupName="nope",
        InstanceIds=["i-0123456789abcdef0"],
        ProtectedFromScaleIn=True,
    )
    assert error["Code"] == "ValidationError"
    assert error["Message"] == "AutoScalingGroup name not found - AutoScalingGroup nope not found"


def test_terminate_an_instance_no_group_manages(aws: Aws) -> None:
    error = error_of(
        aws.asg.terminate_instance_in_auto_scaling_group,
        InstanceId="i-0123456789abcdef0",
        ShouldDecrementDesiredCapacity=False,
    )
    assert (
        error["Message"]
        == "Instance Id not found - No managed instance found for instance ID: i-0123456789abcdef0"
    )


def test_an_invalid_lifecycle_action_result(aws: Aws) -> None:
    aws.create_group(terminate_hook={})
    error = error_of(
        aws.asg.complete_lifecycle_action,
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId="i-0123456789abcdef0",
        LifecycleActionResult="MAYBE",
    )
    assert error["Code"] == "ValidationError"
