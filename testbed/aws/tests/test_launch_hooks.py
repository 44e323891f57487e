"""Launch lifecycle hooks and the boot delay: a new instance is Pending (for the
configured boot delay), then Pending:Wait while a launch hook holds it; CONTINUE puts
it InService, ABANDON terminates it and the group launches a replacement."""

from __future__ import annotations

from datetime import UTC, datetime

from conftest import Aws

PENDING_WAIT = "Pending:Wait"


def continue_launch(aws: Aws, instance: str, result: str = "CONTINUE") -> None:
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="warm",
        InstanceId=instance,
        LifecycleActionResult=result,
    )


def test_launched_instance_waits_in_pending_wait(aws: Aws) -> None:
    aws.create_group(launch_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.in_state(PENDING_WAIT)
    assert aws.ec2_state(instance) == "running"
    [event] = aws.events("lifecycle")
    assert event["event"]["detail-type"] == "EC2 Instance-launch Lifecycle Action"


def test_continue_puts_the_instance_in_service(aws: Aws) -> None:
    aws.create_group(launch_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.states()
    continue_launch(aws, instance)
    assert aws.states() == {instance: "InService"}


def test_abandon_terminates_and_replaces_the_instance(aws: Aws) -> None:
    aws.create_group(launch_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [first] = aws.states()

    continue_launch(aws, first, "ABANDON")

    assert aws.ec2_state(first) == "terminated"
    [replacement] = aws.in_state(PENDING_WAIT)
    assert replacement != first
    assert len(aws.events("lifecycle")) == 2


def test_launch_timeout_applies_the_default_result(aws: Aws) -> None:
    aws.create_group(launch_hook={"timeout": 90, "default": "CONTINUE"})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)
    aws.advance(91)
    assert list(aws.states().values()) == ["InService", "InService"]


def test_launch_timeout_with_abandon_keeps_replacing(aws: Aws) -> None:
    aws.create_group(launch_hook={"timeout": 60, "default": "ABANDON"})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [first] = aws.states()
    aws.advance(61)
    [second] = aws.states()
    assert second != first and aws.ec2_state(first) == "terminated"
    aws.advance(61)  # the replacement is abandoned in turn
    [third] = aws.in_state(PENDING_WAIT)
    assert third not in (first, second)


def test_waiting_launches_count_toward_desired_capacity(aws: Aws) -> None:
    aws.create_group(launch_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)
    assert list(aws.states().values()) == [PENDING_WAIT, PENDING_WAIT]


def test_scale_in_of_a_waiting_launch_ends_its_launch_action(aws: Aws) -> None:
    aws.create_group(launch_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert aws.states() == {}
    assert aws.ec2_state(instance) == "terminated"
    assert aws.active_actions() == []


def test_boot_delay_keeps_instances_pending(aws: Aws) -> None:
    aws.configure(boot_delay_s=45)
    aws.create_group()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)
    assert list(aws.states().values()) == ["Pending", "Pending"]

    aws.advance(44)
    assert list(aws.states().values()) == ["Pending", "Pending"]
    aws.advance(1)
    assert list(aws.states().values()) == ["InService", "InService"]


def test_boot_delay_then_launch_hook(aws: Aws) -> None:
    aws.configure(boot_delay_s=30)
    aws.create_group(launch_hook={"timeout": 60, "default": "CONTINUE"})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.states()
    assert aws.events() == []

    aws.advance(30)
    assert aws.states() == {instance: PENDING_WAIT}
    [event] = aws.events("lifecycle")
    assert event["event"]["detail"]["EC2InstanceId"] == instance

    # One jump across both timers: boot ends at +30, the hook times out 60 s later.
    aws.advance(60)
    assert aws.states() == {instance: "InService"}


def test_one_clock_jump_crosses_a_chain_of_timers(aws: Aws) -> None:
    aws.configure(boot_delay_s=30)
    aws.create_group(launch_hook={"timeout": 60, "default": "CONTINUE"})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [instance] = aws.states()
    aws.advance(1000)
    assert aws.states() == {instance: "InService"}
    # It entered Pending:Wait 30 s after launch, not at the end of the jump.
    [event] = aws.events("lifecycle")
    entered = datetime.strptime(event["event"]["time"], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=UTC)
    now = datetime.fromtimestamp(aws.ok("GET", "/clock")["epoch_s"], tz=UTC)
    assert 968 <= (now - entered).total_seconds() <= 972


def test_hook_specifications_at_create_hold_the_first_instances(aws: Aws) -> None:
    aws.ec2.create_launch_template(
        LaunchTemplateName="jibri-template",
        LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "t3.micro"},
    )
    aws.asg.create_auto_scaling_group(
        AutoScalingGroupName="jibri",
        MinSize=2,
        MaxSize=4,
        DesiredCapacity=2,
        LaunchTemplate={"LaunchTemplateName": "jibri-template"},
        AvailabilityZones=["us-east-1a"],
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": "warm",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_LAUNCHING",
                "HeartbeatTimeout": 300,
                "DefaultResult": "ABANDON",
                "NotificationMetadata": "first",
            },
            {
                "LifecycleHookName": "guard",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": 600,
                "DefaultResult": "CONTINUE",
            },
        ],
    )
    assert list(aws.states().values()) == [PENDING_WAIT, PENDING_WAIT]
    details = [e["event"]["detail"] for e in aws.events("lifecycle")]
    assert {d["NotificationMetadata"] for d in details} == {"first"}
    hooks = aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri")["LifecycleHooks"]
    assert sorted(h["LifecycleHookName"] for h in hooks) == ["guard", "warm"]
