"""Terminate lifecycle hooks: every way a group removes an instance goes through
Terminating:Wait, which holds the instance (EC2 still running) until the action
ends by CompleteLifecycleAction, its heartbeat timeout or the global timeout."""

from __future__ import annotations

import pytest
from botocore.exceptions import ClientError
from conftest import Aws

WAIT = "Terminating:Wait"
TERMINATING = "autoscaling:EC2_INSTANCE_TERMINATING"


def test_scale_in_holds_the_victim_in_terminating_wait_with_ec2_running(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)

    waiting = aws.in_state(WAIT)
    assert len(waiting) == 1
    assert aws.ec2_state(waiting[0]) == "running"
    assert len(aws.in_state("InService")) == 1
    listed = aws.asg.describe_auto_scaling_instances(InstanceIds=waiting)["AutoScalingInstances"]
    assert listed[0]["LifecycleState"] == WAIT


def test_waiting_instance_stays_until_the_action_completes(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 600})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    aws.advance(599)
    [victim] = aws.in_state(WAIT)
    assert aws.ec2_state(victim) == "running"


def test_continue_by_token_terminates_the_instance(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    [event] = aws.events("lifecycle")
    detail = event["event"]["detail"]

    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        LifecycleActionToken=detail["LifecycleActionToken"],
        LifecycleActionResult="CONTINUE",
    )

    assert aws.states() == {}
    assert aws.ec2_state(detail["EC2InstanceId"]) == "terminated"


@pytest.mark.parametrize("result", ["CONTINUE", "ABANDON"])
def test_completing_by_instance_id_terminates_without_a_retention_policy(aws: Aws, result: str) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId=instance,
        LifecycleActionResult=result,
    )

    assert aws.states() == {}
    assert aws.ec2_state(instance) == "terminated"


def test_completing_twice_answers_no_active_action(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    complete = dict(
        AutoScalingGroupName="jibri",
        LifecycleHookName="guard",
        InstanceId=instance,
        LifecycleActionResult="CONTINUE",
    )
    aws.asg.complete_lifecycle_action(**complete)
    with pytest.raises(ClientError) as err:
        aws.asg.complete_lifecycle_action(**complete)
    assert (
        err.value.response["Error"]["Message"]
        == f"No active Lifecycle Action found with instance ID {instance}"
    )


@pytest.mark.parametrize("default", ["CONTINUE", "ABANDON"])
def test_heartbeat_timeout_applies_the_default_result(aws: Aws, default: str) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 120, "default": default})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    aws.advance(119)
    assert aws.states() == {instance: WAIT}
    aws.advance(2)

    assert aws.states() == {}
    assert aws.ec2_state(instance) == "terminated"


def test_heartbeat_restarts_the_timeout(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={"timeout": 60})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    [event] = aws.events("lifecycle")
    token = event["event"]["detail"]["LifecycleActionToken"]

    aws.advance(50)
    aws.asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="jibri", LifecycleHookName="guard", LifecycleActionToken=token
    )
    aws.advance(50)
    aws.asg.record_lifecycle_action_heartbeat(
        AutoScalingGroupName="jibri", LifecycleHookName="guard", InstanceId=instance
    )
    aws.advance(59)
    assert aws.states() == {instance: WAIT}

    aws.advance(2)
    assert aws.states() == {}


def test_global_timeout_ends_the_action_however_many_heartbeats(aws: Aws) -> None:
    # HeartbeatTimeout 7200 s: global cap = min(48 h, 100 x 7200 s) = 172800 s.
    aws.create_group(desired=1, terminate_hook={"timeout": 7200})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    heartbeat = dict(AutoScalingGroupName="jibri", LifecycleHookName="guard", InstanceId=instance)

    for _ in range(24):  # 24 x 7000 s = 168000 s
        aws.advance(7000)
        aws.asg.record_lifecycle_action_heartbeat(**heartbeat)
    aws.advance(4790)  # 172790 s after the start
    assert aws.states() == {instance: WAIT}

    aws.advance(20)
    assert aws.states() == {}
    with pytest.raises(ClientError):
        aws.asg.record_lifecycle_action_heartbeat(**heartbeat)


def test_describe_lifecycle_hooks_reports_metadata_and_global_timeout(aws: Aws) -> None:
    aws.create_group(terminate_hook={"timeout": 30, "metadata": "shard=a"})
    [hook] = aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri")["LifecycleHooks"]
    assert hook["NotificationMetadata"] == "shard=a"
    assert hook["HeartbeatTimeout"] == 30
    assert hook["GlobalTimeout"] == 3000


def test_update_auto_scaling_group_max_below_desired_goes_through_the_hook(aws: Aws) -> None:
    aws.create_group(desired=3, terminate_hook={})
    aws.asg.update_auto_scaling_group(AutoScalingGroupName="jibri", MaxSize=1)

    assert aws.group()["DesiredCapacity"] == 1
    assert len(aws.in_state(WAIT)) == 2
    assert len(aws.in_state("InService")) == 1


def test_update_auto_scaling_group_desired_goes_through_the_hook(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    aws.asg.update_auto_scaling_group(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert len(aws.in_state(WAIT)) == 2


def test_scaling_policy_scale_in_goes_through_the_hook_and_stops_at_min(aws: Aws) -> None:
    aws.create_group(min_size=1, desired=2, terminate_hook={})
    aws.asg.put_scaling_policy(
        AutoScalingGroupName="jibri",
        PolicyName="in",
        PolicyType="SimpleScaling",
        AdjustmentType="ChangeInCapacity",
        ScalingAdjustment=-5,
    )
    aws.asg.execute_policy(AutoScalingGroupName="jibri", PolicyName="in")

    assert aws.group()["DesiredCapacity"] == 1
    assert len(aws.in_state(WAIT)) == 1


def test_terminate_without_decrement_launches_a_replacement_while_the_old_one_waits(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [old] = aws.states()

    activity = aws.asg.terminate_instance_in_auto_scaling_group(
        InstanceId=old, ShouldDecrementDesiredCapacity=False
    )["Activity"]

    assert activity["Description"] == f"Terminating EC2 instance: {old}"
    states = aws.states()
    assert states.pop(old) == WAIT
    assert list(states.values()) == ["InService"]
    assert aws.group()["DesiredCapacity"] == 1


def test_terminate_with_decrement_lowers_desired_and_launches_nothing(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    victim = next(iter(aws.states()))

    aws.asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=True)

    assert aws.group()["DesiredCapacity"] == 1
    assert aws.states()[victim] == WAIT
    assert len(aws.states()) == 2


def test_terminate_with_decrement_at_min_size_is_refused(aws: Aws) -> None:
    aws.create_group(min_size=1, desired=1, terminate_hook={})
    [instance] = aws.states()
    with pytest.raises(ClientError) as err:
        aws.asg.terminate_instance_in_auto_scaling_group(
            InstanceId=instance, ShouldDecrementDesiredCapacity=True
        )
    assert err.value.response["Error"]["Code"] == "ValidationError"
    assert (
        "Terminating instance without replacement will violate group's min size constraint"
        in (err.value.response["Error"]["Message"])
    )
    assert aws.states() == {instance: "InService"}


def test_unhealthy_instance_is_replaced_through_the_hook(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [sick] = aws.states()

    aws.asg.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")

    states = aws.states()
    assert states.pop(sick) == WAIT
    assert list(states.values()) == ["InService"]


def test_unhealthy_instance_is_kept_when_replace_unhealthy_is_suspended(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    aws.asg.suspend_processes(AutoScalingGroupName="jibri", ScalingProcesses=["ReplaceUnhealthy"])
    [sick] = aws.states()
    aws.asg.set_instance_health(InstanceId=sick, HealthStatus="Unhealthy")
    assert aws.states() == {sick: "InService"}


def test_scale_in_never_picks_a_protected_instance(aws: Aws) -> None:
    aws.create_group(desired=3, terminate_hook={})
    first, second, third = aws.states()
    aws.asg.set_instance_protection(
        AutoScalingGroupName="jibri", InstanceIds=[first, third], ProtectedFromScaleIn=True
    )
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    assert aws.states() == {first: "InService", second: WAIT, third: "InService"}


def test_a_fully_protected_group_stays_above_desired(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    instances = list(aws.states())
    aws.asg.set_instance_protection(
        AutoScalingGroupName="jibri", InstanceIds=instances, ProtectedFromScaleIn=True
    )
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert set(aws.states().values()) == {"InService"}
    assert aws.group()["DesiredCapacity"] == 0


def test_scale_in_takes_from_the_busiest_zone_before_the_oldest_instance(aws: Aws) -> None:
    aws.create_group(zones=("us-east-1a", "us-east-1b"), terminate_hook={})

    def run_in(zone: str) -> str:
        reservation = aws.ec2.run_instances(
            ImageId="ami-12c6146b", MinCount=1, MaxCount=1, Placement={"AvailabilityZone": zone}
        )
        return reservation["Instances"][0]["InstanceId"]

    oldest_b, a1, a2 = run_in("us-east-1b"), run_in("us-east-1a"), run_in("us-east-1a")
    aws.asg.attach_instances(AutoScalingGroupName="jibri", InstanceIds=[oldest_b, a1, a2])
    assert aws.group()["DesiredCapacity"] == 3

    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)

    assert aws.in_state(WAIT) == [a1]


def test_waiting_instance_does_not_count_toward_desired_capacity(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [waiting] = aws.in_state(WAIT)

    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)

    states = aws.states()
    assert states.pop(waiting) == WAIT  # not brought back: a new instance launches
    assert list(states.values()) == ["InService", "InService"]


def test_a_group_without_terminate_hooks_terminates_at_once(aws: Aws) -> None:
    aws.create_group(desired=2)
    instances = list(aws.states())
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert aws.states() == {}
    assert {aws.ec2_state(i) for i in instances} == {"terminated"}
    assert aws.events() == []


def test_every_hook_must_finish_and_abandon_ends_the_others(aws: Aws) -> None:
    aws.create_group(desired=2)
    aws.put_hook("jibri", TERMINATING, name="drain")
    aws.put_hook("jibri", TERMINATING, name="upload")
    first, second = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)
    assert len(aws.events("lifecycle")) == 4

    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="drain",
        InstanceId=first,
        LifecycleActionResult="CONTINUE",
    )
    assert aws.states()[first] == WAIT  # "upload" still holds it
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="upload",
        InstanceId=first,
        LifecycleActionResult="CONTINUE",
    )
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="drain",
        InstanceId=second,
        LifecycleActionResult="ABANDON",
    )

    assert aws.states() == {}
    assert aws.active_actions() == []


def test_deleting_the_group_terminates_everything_and_drops_its_actions(aws: Aws) -> None:
    aws.create_group(desired=2, terminate_hook={})
    instances = list(aws.states())
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)

    aws.asg.delete_auto_scaling_group(AutoScalingGroupName="jibri")

    assert {aws.ec2_state(i) for i in instances} == {"terminated"}
    assert aws.active_actions() == []
    assert aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri")["LifecycleHooks"] == []


def test_ec2_terminating_a_waiting_instance_ends_its_action(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={})
    [instance] = aws.states()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=0)

    aws.ec2.terminate_instances(InstanceIds=[instance])

    assert aws.states() == {}
    assert aws.active_actions() == []


def test_deleting_a_hook_completes_its_actions(aws: Aws) -> None:
    aws.create_group(desired=1, terminate_hook={}, launch_hook={})
    [held_launch] = aws.states()
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri",
        LifecycleHookName="warm",
        InstanceId=held_launch,
        LifecycleActionResult="CONTINUE",
    )
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=2)
    waiting_launch = aws.in_state("Pending:Wait")
    aws.asg.terminate_instance_in_auto_scaling_group(
        InstanceId=held_launch, ShouldDecrementDesiredCapacity=True
    )

    # Terminating instances CONTINUE (terminated); launching ones ABANDON (replaced).
    aws.asg.delete_lifecycle_hook(AutoScalingGroupName="jibri", LifecycleHookName="guard")
    assert aws.ec2_state(held_launch) == "terminated"
    aws.asg.delete_lifecycle_hook(AutoScalingGroupName="jibri", LifecycleHookName="warm")
    assert aws.ec2_state(waiting_launch[0]) == "terminated"
    assert list(aws.states().values()) == ["InService"]
    assert aws.active_actions() == []


def test_termination_protection_refuses_a_direct_terminate_but_not_auto_scaling(aws: Aws) -> None:
    """EC2 User Guide, "Change instance termination protection": DisableApiTermination
    refuses TerminateInstances, and does not prevent Amazon EC2 Auto Scaling from
    terminating the instance on scale-in (moto alone refused both)."""
    aws.create_group(desired=2, terminate_hook={})
    protected = aws.in_state("InService")
    for instance in protected:
        aws.ec2.modify_instance_attribute(InstanceId=instance, DisableApiTermination={"Value": True})
    with pytest.raises(ClientError) as refused:
        aws.ec2.terminate_instances(InstanceIds=[protected[0]])
    assert refused.value.response["Error"]["Code"] == "OperationNotPermitted"
    assert aws.ec2_state(protected[0]) == "running"
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=1)
    [victim] = aws.in_state(WAIT)
    aws.asg.complete_lifecycle_action(AutoScalingGroupName="jibri", LifecycleHookName="guard",
                                      InstanceId=victim, LifecycleActionResult="CONTINUE")
    assert aws.ec2_state(victim) == "terminated"
