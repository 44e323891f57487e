"""CloudFormation: moto ignores an AutoScalingGroup's LifecycleHookSpecificationList
and InstanceLifecyclePolicy; the test bed applies both, hooks before the first
launch."""

from __future__ import annotations

import json

from conftest import IMAGE_ID, Aws

TEMPLATE = {
    "Resources": {
        "Template": {
            "Type": "AWS::EC2::LaunchTemplate",
            "Properties": {
                "LaunchTemplateName": "jibri-lt",
                "LaunchTemplateData": {"ImageId": IMAGE_ID, "InstanceType": "t3.micro"},
            },
        },
        "Group": {
            "Type": "AWS::AutoScaling::AutoScalingGroup",
            "Properties": {
                "AutoScalingGroupName": "jibri",
                "MinSize": "1",
                "MaxSize": "4",
                "DesiredCapacity": "1",
                "AvailabilityZones": ["us-east-1a"],
                "LaunchTemplate": {
                    "LaunchTemplateId": {"Ref": "Template"},
                    "Version": {"Fn::GetAtt": ["Template", "LatestVersionNumber"]},
                },
                "InstanceLifecyclePolicy": {"RetentionTriggers": {"TerminateHookAbandon": "retain"}},
                "LifecycleHookSpecificationList": [
                    {
                        "LifecycleHookName": "guard",
                        "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                        "HeartbeatTimeout": "300",
                        "DefaultResult": "ABANDON",
                        "NotificationMetadata": "from-template",
                    }
                ],
            },
        },
    }
}


def test_stack_group_gets_its_hooks_and_lifecycle_policy(aws: Aws) -> None:
    cloudformation = aws.client("cloudformation")
    cloudformation.create_stack(StackName="jibri", TemplateBody=json.dumps(TEMPLATE))

    group = aws.group()
    assert group["InstanceLifecyclePolicy"] == {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}
    [hook] = aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri")["LifecycleHooks"]
    assert (hook["LifecycleHookName"], hook["HeartbeatTimeout"], hook["DefaultResult"]) == (
        "guard",
        300,
        "ABANDON",
    )
    assert "NotificationTargetARN" not in hook  # EventBridge-only hook

    [instance] = aws.states()
    aws.asg.terminate_instance_in_auto_scaling_group(
        InstanceId=instance, ShouldDecrementDesiredCapacity=False
    )
    aws.advance(301)
    assert aws.states()[instance] == "Terminating:Retained"
    assert aws.events("lifecycle")[0]["event"]["detail"]["NotificationMetadata"] == "from-template"
