"""Deploys infra/template.yaml into the project's AWS test bed (moto's CloudFormation
plus the lifecycle extension) and asserts the resources, hooks, rules and policies that
come out.

Where moto falls short, and what these tests do instead:
- moto's CloudFormation skips (with a warning) AWS::CloudWatch::Alarm,
  AWS::AutoScaling::LifecycleHook, AWS::AutoScaling::WarmPool, AWS::S3::BucketPolicy,
  AWS::SQS::QueuePolicy, AWS::SNS::TopicPolicy and AWS::Lambda::EventInvokeConfig. The
  tests evaluate those resources with the stack's own parameters, conditions and
  physical ids (cfn_eval) and apply the ones moto's APIs implement (hooks, warm pool,
  alarms, bucket policy) through the API, then assert what the service holds.
- moto's EventBridge has no TestEventPattern: the lifecycle rule's pattern, as the
  service holds it, is matched against AWS's documented example events with moto's own
  pattern matcher (the one its PutEvents routing uses).
- moto ignores a security group's inline SecurityGroupEgress (the group keeps the
  default allow-all): the evaluated rules are asserted and then applied the way
  CloudFormation does (default rule revoked, listed rules authorized).
- moto reports every Lambda function as x86_64 whatever Architectures says, and its
  CloudFormation drops a function's DeadLetterConfig and a log group's KmsKeyId, and
  creates a bucket with its encryption and tags only (no BucketKeyEnabled, public
  access block, ownership, versioning, logging or lifecycle): these are asserted on the
  evaluated template, the lifecycle rules also through the S3 API.
- LifecycleHookSpecificationList and InstanceLifecyclePolicy of a stack-created group
  are applied by the test bed's extension (moto itself ignores both): asserted for real.
"""

from __future__ import annotations

import ast
import json
import re
from typing import Any

import pytest

from cfn_eval import Stack
from infra_testlib import (  # noqa: F401  (aws, template, testbed_url: fixtures)
    REPO,
    Aws,
    aws,
    base_parameters,
    deploy,
    http_post_json,
    make_world,
    template,
    testbed_url,
)

def group_arn_re(group: str) -> str:
    return r"^arn:aws:autoscaling:eu-central-1:\d{12}:autoScalingGroup:\*:autoScalingGroupName/" + re.escape(group) + "$"


def metric_names_in_code() -> set[str]:
    """The metric names src/metrics.rs emits (`m("Name", ...)` or `name: "Name"`)."""
    text = (REPO / "src" / "metrics.rs").read_text()
    return set(re.findall(r'(?:\bm\(\s*|\bname:\s*)"([A-Za-z]+)"', text))


def statements(document: Any) -> dict[str, dict[str, Any]]:
    if isinstance(document, str):
        try:
            document = json.loads(document)
        except json.JSONDecodeError:
            # moto returns a CloudFormation-made inline policy as a Python repr.
            document = ast.literal_eval(document)
    return {s["Sid"]: s for s in document["Statement"]}


def role_policy(aws: Aws, stack: Stack, role_logical_id: str) -> dict[str, dict[str, Any]]:
    """Every inline statement of a role (its own policy and the AWS::IAM::Policy ones), by Sid."""
    role = stack.physical[role_logical_id][1]
    merged: dict[str, dict[str, Any]] = {}
    for name in aws.iam.list_role_policies(RoleName=role)["PolicyNames"]:
        merged.update(statements(aws.iam.get_role_policy(RoleName=role, PolicyName=name)["PolicyDocument"]))
    assert not aws.iam.list_attached_role_policies(RoleName=role)["AttachedPolicies"]
    return merged


def actions(statement: dict[str, Any]) -> set[str]:
    a = statement["Action"]
    return {a} if isinstance(a, str) else set(a)


def all_actions(policy: dict[str, dict[str, Any]]) -> set[str]:
    return set().union(*(actions(s) for s in policy.values()))


@pytest.fixture
def new_group_stack(aws: Aws, template: dict[str, Any]) -> Stack:
    w = make_world(aws)
    params = base_parameters(w, "jibri-a")
    params.update(
        LaunchTemplateId=w.launch_template,
        LaunchTemplateVersion="1",
        GroupMinSize="1",
        GroupMaxSize="8",
        JicofoStatsUrls="http://10.40.1.10:8888/stats,http://10.40.2.10:8888/stats",
        JicofoSecurityGroupId=w.jicofo_sg,
        AlarmEmail="oncall@example.org",
        MetricsSink="cloudwatch",
    )
    stack = deploy(aws, template, "pool-a", params)
    stack.world = w  # type: ignore[attr-defined]
    return stack


# --- the group and its hooks -----------------------------------------------------------


def test_new_group_is_protected_retains_on_abandon_and_has_both_hooks(aws: Aws, new_group_stack: Stack) -> None:
    [group] = aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["jibri-a"])["AutoScalingGroups"]
    assert group["NewInstancesProtectedFromScaleIn"] is True
    assert group["InstanceLifecyclePolicy"] == {"RetentionTriggers": {"TerminateHookAbandon": "retain"}}
    assert (group["MinSize"], group["MaxSize"]) == (1, 8)
    assert group["LaunchTemplate"]["LaunchTemplateId"] == new_group_stack.world.launch_template  # type: ignore[attr-defined]
    hooks = {h["LifecycleTransition"]: h for h in aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri-a")["LifecycleHooks"]}
    terminate = hooks["autoscaling:EC2_INSTANCE_TERMINATING"]
    # A timeout must never kill a recording: ABANDON (retained), and 900 s against the
    # controller's 300 s heartbeat interval.
    assert (terminate["LifecycleHookName"], terminate["HeartbeatTimeout"], terminate["DefaultResult"]) == (
        "jibri-autoscaler-terminate", 900, "ABANDON")
    launch = hooks["autoscaling:EC2_INSTANCE_LAUNCHING"]
    assert (launch["HeartbeatTimeout"], launch["DefaultResult"]) == (1200, "CONTINUE")
    assert "NotificationTargetARN" not in terminate  # EventBridge delivers the events


def test_a_terminating_recorder_that_nobody_releases_is_retained_not_killed(aws: Aws, new_group_stack: Stack) -> None:
    """The deployed hook and policy together: the functions do not run here, so the
    hook times out, and the instance must survive in Terminating:Retained."""
    instances = aws.asg.describe_auto_scaling_groups(AutoScalingGroupNames=["jibri-a"])["AutoScalingGroups"][0]["Instances"]
    assert instances, "MinSize 1 launched a recorder"
    victim = instances[0]["InstanceId"]
    # The launch hook holds it in Pending:Wait; complete it as the controller would.
    aws.asg.complete_lifecycle_action(
        AutoScalingGroupName="jibri-a", LifecycleHookName="jibri-autoscaler-launch",
        LifecycleActionResult="CONTINUE", InstanceId=victim)
    aws.asg.terminate_instance_in_auto_scaling_group(InstanceId=victim, ShouldDecrementDesiredCapacity=False)
    http_post_json(aws, "/_testbed/clock/advance", {"seconds": 901})
    state = {i["InstanceId"]: i["LifecycleState"] for i in aws.asg.describe_auto_scaling_instances(InstanceIds=[victim])["AutoScalingInstances"]}
    assert state[victim] == "Terminating:Retained"


def test_existing_group_gets_the_hooks_and_nothing_else_of_the_group(aws: Aws, template: dict[str, Any]) -> None:
    w = make_world(aws)
    aws.asg.create_auto_scaling_group(
        AutoScalingGroupName="legacy-jibri", MinSize=0, MaxSize=4, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": w.launch_template, "Version": "$Latest"},
        VPCZoneIdentifier=",".join(w.subnets))
    stack = deploy(aws, template, "pool-legacy", base_parameters(w, "legacy-jibri"))
    assert "RecorderGroup" not in stack.physical
    assert stack.exists("TerminateHook") and stack.exists("LaunchHook")
    # moto's CloudFormation skips AWS::AutoScaling::LifecycleHook: apply the evaluated
    # resources as CloudFormation would (PutLifecycleHook).
    for hook in ("TerminateHook", "LaunchHook"):
        aws.asg.put_lifecycle_hook(**{k: (int(v) if k == "HeartbeatTimeout" else v) for k, v in stack.properties(hook).items()})
    hooks = {h["LifecycleHookName"]: h for h in aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="legacy-jibri")["LifecycleHooks"]}
    assert hooks["jibri-autoscaler-terminate"]["DefaultResult"] == "ABANDON"
    assert hooks["jibri-autoscaler-terminate"]["HeartbeatTimeout"] == 900
    assert hooks["jibri-autoscaler-launch"]["DefaultResult"] == "CONTINUE"
    # Without the launch hook only the terminate hook is wanted.
    no_launch = Stack(template, {**base_parameters(w, "legacy-jibri"), "EnableLaunchHook": "false"},
                      account=aws.account_id, region="eu-central-1", stack_name="x")
    assert no_launch.exists("TerminateHook") and not no_launch.exists("LaunchHook")


# --- functions ---------------------------------------------------------------------------


def test_functions_are_arm64_al2023_in_the_private_subnets(aws: Aws, new_group_stack: Stack, template: dict[str, Any]) -> None:
    w = new_group_stack.world  # type: ignore[attr-defined]
    sg = new_group_stack.physical["FunctionSecurityGroup"][1]
    for logical, reserved in (("ControllerFunction", 1), ("GuardFunction", 5)):
        # moto reports x86_64 for every function: the architecture is the template's.
        assert template["Resources"][logical]["Properties"]["Architectures"] == ["arm64"]
        name = new_group_stack.physical[logical][1]
        fn = aws.lambda_.get_function(FunctionName=name)
        c = fn["Configuration"]
        assert (c["Runtime"], c["Handler"], c["MemorySize"], c["Timeout"]) == ("provided.al2023", "bootstrap", 256, 60)
        assert sorted(c["VpcConfig"]["SubnetIds"]) == sorted(w.subnets)
        assert c["VpcConfig"]["SecurityGroupIds"] == [sg]
        assert fn["Concurrency"]["ReservedConcurrentExecutions"] == reserved
    # moto's CloudFormation drops a function's DeadLetterConfig: asserted as evaluated.
    dlq = new_group_stack.properties("GuardFunction")["DeadLetterConfig"]["TargetArn"]
    assert dlq == new_group_stack.value({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})
    assert aws.sqs.get_queue_attributes(QueueUrl=new_group_stack.physical["DeadLetterQueue"][1],
                                        AttributeNames=["QueueArn"])["Attributes"]["QueueArn"] == dlq


def test_controller_timeout_exceeds_the_largest_tick_budget(template: dict[str, Any]) -> None:
    timeout_ms = template["Resources"]["ControllerFunction"]["Properties"]["Timeout"] * 1000
    budget = template["Parameters"]["TickBudgetMs"]
    assert int(budget["Default"]) == 45000
    assert int(budget["MaxValue"]) < timeout_ms


def test_function_environment_wires_every_variable(aws: Aws, new_group_stack: Stack) -> None:
    c = aws.lambda_.get_function(FunctionName="pool-a-pool-controller")["Configuration"]["Environment"]["Variables"]
    assert c["ASG_NAMES"] == "jibri-a"
    assert c["STATE_BUCKET"] == new_group_stack.physical["RecordingsBucket"][1]
    assert c["STATE_PREFIX"] == "jibri-autoscaler/state/"
    assert c["JICOFO_STATS_URLS"] == "http://10.40.1.10:8888/stats,http://10.40.2.10:8888/stats"
    assert c["METRICS_SINK"] == "cloudwatch"
    # (moto keeps a Number parameter's value as a number; AWS passes strings)
    assert str(c["TICK_BUDGET_MS"]) == "45000"
    assert c["LOG_FORMAT"] == "json"
    g = aws.lambda_.get_function(FunctionName="pool-a-termination-guard")["Configuration"]["Environment"]["Variables"]
    assert g["ASG_NAMES"] == "jibri-a"
    assert "STATE_BUCKET" not in g


# --- EventBridge ---------------------------------------------------------------------------


def test_schedule_ticks_the_controller_every_minute(aws: Aws, new_group_stack: Stack) -> None:
    rule = aws.events.describe_rule(Name="pool-a-tick")
    assert rule["ScheduleExpression"] == "rate(1 minute)" and rule["State"] == "ENABLED"
    [target] = aws.events.list_targets_by_rule(Rule="pool-a-tick")["Targets"]
    assert target["Arn"] == new_group_stack.outputs["ControllerFunctionArn"]  # type: ignore[attr-defined]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}


def test_lifecycle_rule_matches_only_this_groups_actions_and_has_a_dlq(aws: Aws, new_group_stack: Stack) -> None:
    rule = aws.events.describe_rule(Name="pool-a-lifecycle")
    pattern = json.loads(rule["EventPattern"])
    assert pattern == {
        "source": ["aws.autoscaling"],
        "detail-type": ["EC2 Instance-terminate Lifecycle Action", "EC2 Instance-launch Lifecycle Action"],
        "detail": {"AutoScalingGroupName": ["jibri-a"]},
    }
    [target] = aws.events.list_targets_by_rule(Rule="pool-a-lifecycle")["Targets"]
    assert target["Arn"] == new_group_stack.outputs["GuardFunctionArn"]  # type: ignore[attr-defined]
    assert target["RetryPolicy"] == {"MaximumRetryAttempts": 20, "MaximumEventAgeInSeconds": 3600}
    assert target["DeadLetterConfig"]["Arn"] == new_group_stack.value({"Fn::GetAtt": ["DeadLetterQueue", "Arn"]})


def test_each_function_may_be_invoked_only_by_its_rules(aws: Aws, new_group_stack: Stack) -> None:
    for fn, rules in (
        ("pool-a-pool-controller", ["pool-a-tick"]),
        ("pool-a-termination-guard", ["pool-a-lifecycle", "pool-a-spot-interruption"]),
    ):
        statements = json.loads(aws.lambda_.get_policy(FunctionName=fn)["Policy"])["Statement"]
        assert len(statements) == len(rules)
        for statement in statements:
            assert statement["Principal"] == {"Service": "events.amazonaws.com"}
            assert statement["Action"] == "lambda:InvokeFunction"
        sources = sorted(s["Condition"]["ArnLike"]["AWS:SourceArn"] for s in statements)
        assert sources == sorted(aws.events.describe_rule(Name=r)["Arn"] for r in rules)


def test_spot_interruption_warnings_reach_the_guard_while_they_are_worth_something(
    aws: Aws, new_group_stack: Stack
) -> None:
    rule = aws.events.describe_rule(Name="pool-a-spot-interruption")
    assert json.loads(rule["EventPattern"]) == {
        "source": ["aws.ec2"],
        "detail-type": ["EC2 Spot Instance Interruption Warning"],
    }
    [target] = aws.events.list_targets_by_rule(Rule="pool-a-spot-interruption")["Targets"]
    assert target["Arn"] == new_group_stack.outputs["GuardFunctionArn"]  # type: ignore[attr-defined]
    # EC2 interrupts two minutes after the warning: a later delivery is worth nothing.
    assert target["RetryPolicy"]["MaximumEventAgeInSeconds"] == 120


def test_async_invoke_configs(new_group_stack: Stack) -> None:
    # AWS::Lambda::EventInvokeConfig is skipped by moto's CloudFormation: evaluated only.
    assert new_group_stack.properties("ControllerInvokeConfig") == {
        "FunctionName": "pool-a-pool-controller", "Qualifier": "$LATEST", "MaximumRetryAttempts": 0, "MaximumEventAgeInSeconds": 60}
    assert new_group_stack.properties("GuardInvokeConfig")["MaximumRetryAttempts"] == 2


def test_dead_letter_queue_is_encrypted_and_only_the_lifecycle_rule_may_write(aws: Aws, new_group_stack: Stack) -> None:
    url = new_group_stack.physical["DeadLetterQueue"][1]
    attrs = aws.sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
    assert attrs["KmsMasterKeyId"] == new_group_stack.physical["OpsKey"][1]
    policy = statements(new_group_stack.properties("DeadLetterQueuePolicy")["PolicyDocument"])
    assert policy["LifecycleRuleDeadLetters"]["Condition"]["ArnEquals"]["aws:SourceArn"] == aws.events.describe_rule(Name="pool-a-lifecycle")["Arn"]
    assert policy["DenyInsecureTransport"]["Effect"] == "Deny"


# --- IAM -------------------------------------------------------------------------------------


def test_controller_role_is_least_privilege(aws: Aws, new_group_stack: Stack) -> None:
    p = role_policy(aws, new_group_stack, "ControllerRole")
    mutate = p["MutateOnlyThisGroup"]
    assert actions(mutate) == {
        "autoscaling:SetInstanceProtection", "autoscaling:SetDesiredCapacity", "autoscaling:CompleteLifecycleAction",
        "autoscaling:RecordLifecycleActionHeartbeat", "autoscaling:TerminateInstanceInAutoScalingGroup"}
    assert re.match(group_arn_re("jibri-a"), mutate["Resource"])
    assert actions(p["DescribeHasNoResourceScoping"]) == {
        "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeLifecycleHooks", "autoscaling:DescribeWarmPool",
        "ec2:DescribeInstances"}
    assert p["DescribeHasNoResourceScoping"]["Resource"] == "*"
    tag = p["DrainTagOnThisGroupsInstancesOnly"]
    assert tag["Condition"]["StringEquals"] == {"ec2:ResourceTag/aws:autoscaling:groupName": "jibri-a"}
    assert tag["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["jibri-autoscaler:drain-requested"]}
    bucket = new_group_stack.physical["RecordingsBucket"][1]
    assert p["StateObjectOnly"]["Resource"] == f"arn:aws:s3:::{bucket}/jibri-autoscaler/state/*"
    assert actions(p["StateObjectOnly"]) == {"s3:GetObject", "s3:PutObject"}
    # Listing (key names only) so that a missing state object is a 404, not a 403.
    assert (actions(p["MissingStateObjectIs404"]), p["MissingStateObjectIs404"]["Resource"]) == (
        {"s3:ListBucket"}, f"arn:aws:s3:::{bucket}")
    assert p["BucketKeyThroughS3Only"]["Resource"] == new_group_stack.outputs["DataKeyArn"]  # type: ignore[attr-defined]
    assert p["OwnMetricNamespaceOnly"]["Condition"] == {"StringEquals": {"cloudwatch:namespace": "JibriAutoscaler"}}
    assert p["OwnLogGroupOnly"]["Resource"].startswith("arn:aws:logs:eu-central-1:")
    assert "/aws/lambda/pool-a-pool-controller" in p["OwnLogGroupOnly"]["Resource"]
    # Nothing else can write anywhere.
    for sid, s in p.items():
        if s["Resource"] == "*":
            assert all(a.split(":")[1].startswith(("Describe", "PutMetricData")) for a in actions(s)), sid


def test_guard_role_has_no_s3_no_capacity_no_protection(aws: Aws, new_group_stack: Stack) -> None:
    p = role_policy(aws, new_group_stack, "GuardRole")
    granted = all_actions(p)
    assert not {a for a in granted if a.startswith(("s3:", "cloudwatch:"))}
    assert not granted & {"autoscaling:SetDesiredCapacity", "autoscaling:SetInstanceProtection",
                          "autoscaling:TerminateInstanceInAutoScalingGroup"}
    assert actions(p["LifecycleActionsOfThisGroupOnly"]) == {
        "autoscaling:CompleteLifecycleAction", "autoscaling:RecordLifecycleActionHeartbeat"}
    assert re.match(group_arn_re("jibri-a"), p["LifecycleActionsOfThisGroupOnly"]["Resource"])
    # The guard confirms an event's wait state (in the group or its warm pool) before it acts.
    assert {"autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeWarmPool"} <= granted


def test_both_functions_know_the_stacks_hook_names(aws: Aws, new_group_stack: Stack) -> None:
    hooks = {h["LifecycleHookName"] for h in aws.asg.describe_lifecycle_hooks(AutoScalingGroupName="jibri-a")["LifecycleHooks"]}
    env = controller_env(aws, "pool-a")
    assert env["TERMINATE_HOOK_NAME"] in hooks
    assert env["LAUNCH_HOOK_NAME"] == "jibri-autoscaler-launch"


def test_metrics_permission_only_with_the_cloudwatch_sink(aws: Aws, template: dict[str, Any]) -> None:
    w = make_world(aws)
    stack = deploy(aws, template, "pool-emf", base_parameters(w, "jibri-emf"))
    assert "cloudwatch:PutMetricData" not in all_actions(role_policy(aws, stack, "ControllerRole"))


def test_recorder_instance_role_may_upload_recordings_and_tag_only_itself(aws: Aws, new_group_stack: Stack) -> None:
    profile = new_group_stack.physical["RecorderInstanceProfile"][1]
    [role] = aws.iam.get_instance_profile(InstanceProfileName=profile)["InstanceProfile"]["Roles"]
    attached = {p["PolicyArn"] for p in aws.iam.list_attached_role_policies(RoleName=role["RoleName"])["AttachedPolicies"]}
    assert attached == {new_group_stack.physical["UploaderPolicy"][1], new_group_stack.physical["UploaderDataKeyPolicy"][1]}
    arn = new_group_stack.physical["UploaderPolicy"][1]
    version = aws.iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    p = statements(aws.iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"])
    bucket = new_group_stack.physical["RecordingsBucket"][1]
    assert p["RecordingsPrefixOnly"]["Resource"] == f"arn:aws:s3:::{bucket}/recordings/*"
    assert actions(p["RecordingsPrefixOnly"]) == {
        "s3:PutObject", "s3:AbortMultipartUpload", "s3:ListMultipartUploadParts", "s3:GetObject", "s3:GetObjectAttributes"}
    tag = p["UploadPendingTagOnItselfOnly"]
    assert actions(tag) == {"ec2:CreateTags", "ec2:DeleteTags"}
    assert tag["Condition"]["StringEquals"] == {"aws:ARN": "${ec2:SourceInstanceARN}"}
    assert tag["Condition"]["ForAllValues:StringEquals"] == {"aws:TagKeys": ["jibri-autoscaler:upload-pending"]}


# --- storage ----------------------------------------------------------------------------------


def test_bucket_is_encrypted_private_versioned_logged_and_expires_what_it_should(aws: Aws, new_group_stack: Stack) -> None:
    bucket = new_group_stack.physical["RecordingsBucket"][1]
    [rule] = aws.s3.get_bucket_encryption(Bucket=bucket)["ServerSideEncryptionConfiguration"]["Rules"]
    assert rule["ApplyServerSideEncryptionByDefault"] == {
        "SSEAlgorithm": "aws:kms", "KMSMasterKeyID": new_group_stack.outputs["DataKeyArn"]}  # type: ignore[attr-defined]
    # moto's CloudFormation drops BucketKeyEnabled: asserted as evaluated.
    [evaluated] = new_group_stack.properties("RecordingsBucket")["BucketEncryption"]["ServerSideEncryptionConfiguration"]
    assert evaluated["BucketKeyEnabled"] is True
    # moto's CloudFormation drops PublicAccessBlockConfiguration: asserted as evaluated.
    assert new_group_stack.properties("RecordingsBucket")["PublicAccessBlockConfiguration"] == {
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True, "RestrictPublicBuckets": True}
    assert new_group_stack.properties("RecordingsBucket")["OwnershipControls"] == {"Rules": [{"ObjectOwnership": "BucketOwnerEnforced"}]}
    # moto's CloudFormation creates a bucket with its encryption and tags only; the
    # rest is asserted as evaluated, and the lifecycle rules are put through the S3 API
    # (translated as CloudFormation does), which validates them, and read back.
    props = new_group_stack.properties("RecordingsBucket")
    assert props["VersioningConfiguration"] == {"Status": "Enabled"}
    assert props["LoggingConfiguration"] == {
        "DestinationBucketName": new_group_stack.physical["AccessLogBucket"][1], "LogFilePrefix": "s3-access/pool-a/"}
    aws.s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration=props["VersioningConfiguration"])
    aws.s3.put_bucket_lifecycle_configuration(
        Bucket=bucket, LifecycleConfiguration={"Rules": [lifecycle_rule_to_api(r) for r in props["LifecycleConfiguration"]["Rules"]]})
    rules = {r["ID"]: r for r in aws.s3.get_bucket_lifecycle_configuration(Bucket=bucket)["Rules"]}
    assert rules["abort-incomplete-multipart-uploads"]["AbortIncompleteMultipartUpload"] == {"DaysAfterInitiation": 2}
    recordings = rules["recordings"]
    assert recordings["Filter"] == {"Prefix": "recordings/"}
    assert recordings["Transitions"] == [{"Days": 30, "StorageClass": "STANDARD_IA"}]
    assert "Expiration" not in recordings  # RecordingsExpirationDays 0: kept
    assert recordings["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    state = rules["controller-state-history"]
    assert state["Filter"] == {"Prefix": "jibri-autoscaler/state/"}
    assert "Expiration" not in state  # the state object itself is kept
    assert state["NoncurrentVersionExpiration"]["NoncurrentDays"] == 1
    # (moto's S3 drops NewerNoncurrentVersions)
    [state_rule] = [r for r in props["LifecycleConfiguration"]["Rules"] if r["Id"] == "controller-state-history"]
    assert state_rule["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] == 10


def test_recordings_expire_when_asked(template: dict[str, Any]) -> None:
    stack = Stack(template, {"GroupName": "g", "VpcId": "vpc-1", "SubnetIds": "subnet-1", "RecorderSecurityGroupId": "sg-1",
                             "ArtifactBucket": "a", "ControllerCodeKey": "a.zip", "GuardCodeKey": "b.zip",
                             "RecordingsExpirationDays": "365", "RecordingsTransitionDays": "0"},
                  account="123456789012", region="eu-central-1", stack_name="s",
                  physical={"DataKey": ("AWS::KMS::Key", "k"), "AccessLogBucket": ("AWS::S3::Bucket", "logs")})
    rules = {r["Id"]: r for r in stack.properties("RecordingsBucket")["LifecycleConfiguration"]["Rules"]}
    assert rules["recordings"]["ExpirationInDays"] == "365"
    assert "Transitions" not in rules["recordings"]


def lifecycle_rule_to_api(r: dict[str, Any]) -> dict[str, Any]:
    """A CloudFormation lifecycle rule in S3 API form (the fields the template uses)."""
    out: dict[str, Any] = {"ID": r["Id"], "Status": r["Status"], "Filter": {"Prefix": r.get("Prefix", "")}}
    if "ExpirationInDays" in r:
        out["Expiration"] = {"Days": int(r["ExpirationInDays"])}
    if "Transitions" in r:
        out["Transitions"] = [{"Days": int(t["TransitionInDays"]), "StorageClass": t["StorageClass"]} for t in r["Transitions"]]
    if "NoncurrentVersionExpiration" in r:
        out["NoncurrentVersionExpiration"] = {k: int(v) for k, v in r["NoncurrentVersionExpiration"].items()}
    if "AbortIncompleteMultipartUpload" in r:
        out["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": int(r["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"])}
    return out


def test_bucket_policy_refuses_plain_http_and_old_tls(aws: Aws, new_group_stack: Stack) -> None:
    # AWS::S3::BucketPolicy is skipped by moto's CloudFormation: applied as evaluated.
    props = new_group_stack.properties("RecordingsBucketPolicy")
    bucket = new_group_stack.physical["RecordingsBucket"][1]
    assert props["Bucket"] == bucket
    aws.s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps(props["PolicyDocument"]))
    p = statements(aws.s3.get_bucket_policy(Bucket=bucket)["Policy"])
    assert p["DenyInsecureTransport"]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
    assert p["DenyTlsBelow12"]["Condition"] == {"NumericLessThan": {"s3:TlsVersion": "1.2"}}
    assert set(p["DenyInsecureTransport"]["Resource"]) == {f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"}


def test_logs_topic_and_keys(aws: Aws, new_group_stack: Stack) -> None:
    ops_key = new_group_stack.value({"Fn::GetAtt": ["OpsKey", "Arn"]})
    groups = {g["logGroupName"]: g for g in aws.logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/pool-a-")["logGroups"]}
    assert set(groups) == {"/aws/lambda/pool-a-pool-controller", "/aws/lambda/pool-a-termination-guard"}
    for logical, g in (("ControllerLogGroup", groups["/aws/lambda/pool-a-pool-controller"]),
                       ("GuardLogGroup", groups["/aws/lambda/pool-a-termination-guard"])):
        assert g["retentionInDays"] == 90
        # moto's CloudFormation drops a log group's KmsKeyId: asserted as evaluated.
        assert new_group_stack.properties(logical)["KmsKeyId"] == ops_key
    topic = new_group_stack.outputs["AlarmTopicArn"]  # type: ignore[attr-defined]
    assert aws.sns.get_topic_attributes(TopicArn=topic)["Attributes"]["KmsMasterKeyId"] == new_group_stack.physical["OpsKey"][1]
    [sub] = aws.sns.list_subscriptions_by_topic(TopicArn=topic)["Subscriptions"]
    assert (sub["Protocol"], sub["Endpoint"]) == ("email", "oncall@example.org")
    for key in ("DataKey", "OpsKey"):
        assert aws.kms.get_key_rotation_status(KeyId=new_group_stack.physical[key][1])["KeyRotationEnabled"] is True


# --- network ---------------------------------------------------------------------------------


def egress_rules(stack: Stack) -> list[dict[str, Any]]:
    return stack.properties("FunctionSecurityGroup")["SecurityGroupEgress"]


def test_function_egress_is_only_jibri_jicofo_and_https(aws: Aws, new_group_stack: Stack) -> None:
    w = new_group_stack.world  # type: ignore[attr-defined]
    rules = {(int(r["FromPort"]), r.get("DestinationSecurityGroupId") or r.get("CidrIp") or r.get("DestinationPrefixListId"))
             for r in egress_rules(new_group_stack)}
    assert rules == {(2222, w.recorder_sg), (3333, w.recorder_sg), (8888, w.jicofo_sg), (443, "0.0.0.0/0")}
    assert all(r["IpProtocol"] == "tcp" and str(r["FromPort"]) == str(r["ToPort"]) for r in egress_rules(new_group_stack))
    # moto ignores inline egress; apply it as CloudFormation does and read it back.
    sg = new_group_stack.physical["FunctionSecurityGroup"][1]
    aws.ec2.revoke_security_group_egress(GroupId=sg, IpPermissions=[{"IpProtocol": "-1", "IpRanges": [{"CidrIp": "0.0.0.0/0"}]}])
    for r in egress_rules(new_group_stack):
        perm: dict[str, Any] = {"IpProtocol": r["IpProtocol"], "FromPort": int(r["FromPort"]), "ToPort": int(r["ToPort"])}
        if "DestinationSecurityGroupId" in r:
            perm["UserIdGroupPairs"] = [{"GroupId": r["DestinationSecurityGroupId"], "Description": r["Description"]}]
        else:
            perm["IpRanges"] = [{"CidrIp": r["CidrIp"], "Description": r["Description"]}]
        aws.ec2.authorize_security_group_egress(GroupId=sg, IpPermissions=[perm])
    [group] = aws.ec2.describe_security_groups(GroupIds=[sg])["SecurityGroups"]
    assert sorted(p["FromPort"] for p in group["IpPermissionsEgress"]) == [443, 2222, 3333, 8888]
    assert group["IpPermissions"] == []  # nothing connects to the functions


def test_recorders_and_jicofo_admit_the_functions_on_their_ports_only(aws: Aws, new_group_stack: Stack) -> None:
    w = new_group_stack.world  # type: ignore[attr-defined]
    fn_sg = new_group_stack.physical["FunctionSecurityGroup"][1]
    groups = {g["GroupId"]: g for g in aws.ec2.describe_security_groups(GroupIds=[w.recorder_sg, w.jicofo_sg])["SecurityGroups"]}
    recorder_ports = sorted(p["FromPort"] for p in groups[w.recorder_sg]["IpPermissions"]
                            if any(u["GroupId"] == fn_sg for u in p["UserIdGroupPairs"]))
    assert recorder_ports == [2222, 3333]
    jicofo_ports = [p["FromPort"] for p in groups[w.jicofo_sg]["IpPermissions"]
                    if any(u["GroupId"] == fn_sg for u in p["UserIdGroupPairs"])]
    assert jicofo_ports == [8888]


def test_private_subnets_without_nat_get_endpoints_and_a_shared_bucket(aws: Aws, template: dict[str, Any]) -> None:
    """The second pool of infra/examples/pool-b.env: existing group, existing bucket and
    key, existing recorder role, VPC endpoints instead of NAT."""
    w = make_world(aws)
    aws.asg.create_auto_scaling_group(
        AutoScalingGroupName="jibri-b", MinSize=0, MaxSize=4,
        LaunchTemplate={"LaunchTemplateId": w.launch_template, "Version": "$Latest"}, VPCZoneIdentifier=",".join(w.subnets))
    shared = f"shared-recordings-{aws.account_id}"
    aws.s3.create_bucket(Bucket=shared, CreateBucketConfiguration={"LocationConstraint": "eu-central-1"})
    key_arn = aws.kms.create_key()["KeyMetadata"]["Arn"]
    aws.iam.create_role(RoleName="jibri-b-recorder", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": {"Service": "ec2.amazonaws.com"}, "Action": "sts:AssumeRole"}]}))
    params = {
        **base_parameters(w, "jibri-b"),
        "CreateVpcEndpoints": "true", "RouteTableIds": ",".join(w.route_tables), "S3PrefixListId": "pl-0123456789abcdef0",
        "ExistingBucketName": shared, "ExistingBucketKmsKeyArn": key_arn, "RecordingsPrefix": "recordings/pool-b/",
        "RecorderRoleName": "jibri-b-recorder", "JicofoStatsUrls": "http://10.40.1.10:8888/stats", "JicofoCidr": "10.40.1.10/32",
    }
    stack = deploy(aws, template, "pool-b", params)
    assert not {"RecordingsBucket", "AccessLogBucket", "DataKey", "RecorderRole", "RecorderInstanceProfile"} & set(stack.physical)
    env = aws.lambda_.get_function(FunctionName="pool-b-pool-controller")["Configuration"]["Environment"]["Variables"]
    assert env["STATE_BUCKET"] == shared
    endpoints = aws.ec2.describe_vpc_endpoints(Filters=[{"Name": "vpc-id", "Values": [w.vpc]}])["VpcEndpoints"]
    services = {e["ServiceName"].rsplit(".", 1)[-1]: e for e in endpoints}
    assert set(services) == {"autoscaling", "ec2", "monitoring", "logs", "s3"}
    assert services["s3"]["VpcEndpointType"] == "Gateway"
    assert sorted(services["s3"]["RouteTableIds"]) == sorted(w.route_tables)
    assert all(services[s]["PrivateDnsEnabled"] for s in ("autoscaling", "ec2", "monitoring", "logs"))
    rules = {(int(r["FromPort"]), r.get("DestinationSecurityGroupId") or r.get("CidrIp") or r.get("DestinationPrefixListId"))
             for r in egress_rules(stack)}
    assert rules == {(2222, w.recorder_sg), (3333, w.recorder_sg), (8888, "10.40.1.10/32"),
                     (443, stack.physical["EndpointSecurityGroup"][1]), (443, "pl-0123456789abcdef0")}
    attached = {p["PolicyName"] for p in aws.iam.list_attached_role_policies(RoleName="jibri-b-recorder")["AttachedPolicies"]}
    assert any("UploaderPolicy" in n for n in attached) and any("UploaderExistingKeyPolicy" in n for n in attached)
    p = role_policy(aws, stack, "ControllerRole")
    assert p["StateObjectOnly"]["Resource"] == f"arn:aws:s3:::{shared}/jibri-autoscaler/state/*"
    assert p["ExistingBucketKeyThroughS3Only"]["Resource"] == key_arn


# --- alarms and dashboard ---------------------------------------------------------------------


ALARMS = ("NoSpareRecorderAlarm", "RequestsRefusedAlarm", "HeldHooksAlarm", "RetainedAlarm", "AbandonedAlarm",
          "StatsUnavailableAlarm", "ControllerErrorsAlarm", "GuardErrorsAlarm", "ControllerNotRunningAlarm", "DeadLettersAlarm",
          "ConfigDriftAlarm", "DrainFailedAlarm")


def test_alarms_watch_the_metrics_the_code_emits(aws: Aws, new_group_stack: Stack) -> None:
    # AWS::CloudWatch::Alarm is not supported by moto's CloudFormation: each evaluated
    # alarm is created with PutMetricAlarm (which checks its shape) and read back.
    emitted = metric_names_in_code()
    topic = new_group_stack.outputs["AlarmTopicArn"]  # type: ignore[attr-defined]
    for logical in ALARMS:
        assert new_group_stack.exists(logical), logical
        props = new_group_stack.properties(logical)
        for k in ("EvaluationPeriods", "DatapointsToAlarm", "Period", "Threshold"):
            if k in props:
                props[k] = float(props[k]) if k == "Threshold" else int(props[k])
        for m in props.get("Metrics", []):
            if "MetricStat" in m:
                m["MetricStat"]["Period"] = int(m["MetricStat"]["Period"])
        aws.cw.put_metric_alarm(**props)
    alarms = {a["AlarmName"]: a for a in aws.cw.describe_alarms(AlarmNamePrefix="pool-a-")["MetricAlarms"]}
    assert len(alarms) == len(ALARMS)
    for a in alarms.values():
        assert a["AlarmActions"] == [topic] and a["OKActions"] == [topic]
        metrics = [a] if "MetricName" in a else [m["MetricStat"]["Metric"] for m in a["Metrics"] if "MetricStat" in m]
        for m in metrics:
            if m["Namespace"] == "JibriAutoscaler":
                assert m["MetricName"] in emitted, (a["AlarmName"], m["MetricName"])
                assert m["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": "jibri-a"}]
    not_running = alarms["pool-a-controller-not-running"]
    assert (not_running["MetricName"], not_running["TreatMissingData"]) == ("Invocations", "breaching")
    assert not_running["Dimensions"] == [{"Name": "FunctionName", "Value": "pool-a-pool-controller"}]
    no_spare = alarms["pool-a-no-spare-recorder"]
    [expression] = [m["Expression"] for m in no_spare["Metrics"] if "Expression" in m]
    assert "idle" in expression and "launching" in expression and "target > 0" in expression
    held = alarms["pool-a-hooks-held-long"]
    # 9 h of held hooks against the default 12 h MAX_HOOK_HOLD_S.
    assert held["Period"] * held["EvaluationPeriods"] == 9 * 3600 < 43200


def test_no_jicofo_no_stats_alarm(template: dict[str, Any]) -> None:
    stack = Stack(template, {"GroupName": "g", "VpcId": "vpc-1", "SubnetIds": "subnet-1", "RecorderSecurityGroupId": "sg-1",
                             "ArtifactBucket": "a", "ControllerCodeKey": "a.zip", "GuardCodeKey": "b.zip"},
                  account="123456789012", region="eu-central-1", stack_name="s")
    assert not stack.exists("StatsUnavailableAlarm")
    assert not stack.exists("JicofoIngress")
    # No Jicofo: no egress to a Jicofo port at all.
    rules = stack.properties("FunctionSecurityGroup")["SecurityGroupEgress"]
    assert [str(r["FromPort"]) for r in rules] == ["2222", "3333", "443"]


def dashboard_metrics(aws: Aws, name: str) -> tuple[dict[str, Any], set[str]]:
    """A deployed dashboard's body and the product's metrics it plots."""
    body = json.loads(aws.cw.get_dashboard(DashboardName=name)["DashboardBody"])
    shown = set()
    for widget in body["widgets"]:
        namespace = None
        for row in widget["properties"]["metrics"]:
            if row[0] != ".":
                namespace = row[0]
            if namespace == "JibriAutoscaler" and row[1] != ".":
                shown.add(row[1])
    return body, shown


def test_dashboard_shows_the_pool(aws: Aws, new_group_stack: Stack) -> None:
    _, shown = dashboard_metrics(aws, "pool-a-jibri-pool")
    assert shown <= metric_names_in_code()
    assert {"Idle", "Busy", "Launching", "HeldHooks", "Retained", "RequestsRefused", "SpareTarget"} <= shown
    assert not new_group_stack.exists("BridgeDashboard")


# --- warm pool ---------------------------------------------------------------------------------


def controller_env(aws: Aws, stack_name: str) -> dict[str, Any]:
    return aws.lambda_.get_function(FunctionName=f"{stack_name}-pool-controller")["Configuration"]["Environment"]["Variables"]


def apply_warm_pool(aws: Aws, stack: Stack) -> dict[str, Any]:
    """The group's warm pool as the service holds it. AWS::AutoScaling::WarmPool is
    skipped by moto 5.2.5's CloudFormation: unless the stack created it, the evaluated
    resource is applied as CloudFormation would (PutWarmPool) and read back."""
    props = stack.properties("RecorderWarmPool")
    if "RecorderWarmPool" not in stack.physical:
        aws.asg.put_warm_pool(
            AutoScalingGroupName=props["AutoScalingGroupName"], PoolState=props["PoolState"],
            MinSize=int(props["MinSize"]), MaxGroupPreparedCapacity=int(props["MaxGroupPreparedCapacity"]),
            InstanceReusePolicy=props["InstanceReusePolicy"])
    return aws.asg.describe_warm_pool(AutoScalingGroupName=props["AutoScalingGroupName"])["WarmPoolConfiguration"]


def test_managed_warm_pool_on_a_new_group(aws: Aws, template: dict[str, Any]) -> None:
    w = make_world(aws)
    params = {**base_parameters(w, "jibri-warm"), "LaunchTemplateId": w.launch_template, "GroupMinSize": "0",
              "WarmPool": "managed", "WarmPoolMin": "2", "WarmPoolMax": "7"}
    stack = deploy(aws, template, "pool-warm", params)
    assert stack.exists("RecorderWarmPool") and stack.exists("ControllerWarmPoolPolicy")
    props = stack.properties("RecorderWarmPool")
    # On the stack's own group (Ref RecorderGroup: created first, hooks included).
    assert props["AutoScalingGroupName"] == stack.physical["RecorderGroup"][1] == "jibri-warm"
    # Exactly WarmPoolMin until the controller's first tick resizes it; stopped
    # instances; scale-in returns recorders to the pool.
    assert props == {"AutoScalingGroupName": "jibri-warm", "PoolState": "Stopped", "MinSize": "2",
                     "MaxGroupPreparedCapacity": "2", "InstanceReusePolicy": {"ReuseOnScaleIn": True}}
    assert apply_warm_pool(aws, stack) == {
        "MinSize": 2, "MaxGroupPreparedCapacity": 2, "PoolState": "Stopped", "InstanceReusePolicy": {"ReuseOnScaleIn": True}}
    env = controller_env(aws, "pool-warm")
    # (moto keeps a Number parameter's value as a number; AWS passes strings)
    assert (env["WARM_POOL_MODE"], str(env["WARM_POOL_MIN"]), str(env["WARM_POOL_MAX"])) == ("managed", "2", "7")
    p = role_policy(aws, stack, "ControllerRole")
    size = p["SizeThisGroupsWarmPoolOnly"]
    assert actions(size) == {"autoscaling:PutWarmPool"}
    assert re.match(group_arn_re("jibri-warm"), size["Resource"])
    # Same scoping as the group's other mutations.
    assert size["Resource"] == p["MutateOnlyThisGroup"]["Resource"]
    assert "autoscaling:DescribeWarmPool" in actions(p["DescribeHasNoResourceScoping"])
    assert [sid for sid, s in p.items() if "autoscaling:PutWarmPool" in actions(s)] == ["SizeThisGroupsWarmPoolOnly"]
    # The guard reads instances through EC2 and completes hooks; of the pool it only reads
    # (to confirm a warm-pool action's wait state), never sizes it.
    guard = all_actions(role_policy(aws, stack, "GuardRole"))
    assert {a for a in guard if "WarmPool" in a} == {"autoscaling:DescribeWarmPool"}
    g = aws.lambda_.get_function(FunctionName="pool-warm-termination-guard")["Configuration"]["Environment"]["Variables"]
    assert g["WARM_POOL_MODE"] == "managed"  # the same configuration, validated the same way


def test_managed_warm_pool_on_an_existing_group_comes_after_its_hooks(aws: Aws, template: dict[str, Any]) -> None:
    w = make_world(aws)
    aws.asg.create_auto_scaling_group(
        AutoScalingGroupName="legacy-warm", MinSize=0, MaxSize=4, DesiredCapacity=0,
        LaunchTemplate={"LaunchTemplateId": w.launch_template, "Version": "$Latest"}, VPCZoneIdentifier=",".join(w.subnets))
    params = {**base_parameters(w, "legacy-warm"), "WarmPool": "managed"}
    stack = deploy(aws, template, "pool-legacy-warm", params)
    # Hooks first, as CloudFormation orders them (the warm pool's name refers to both);
    # a hook's Ref is its name.
    for hook in ("TerminateHook", "LaunchHook"):
        props = stack.properties(hook)
        aws.asg.put_lifecycle_hook(**{k: (int(v) if k == "HeartbeatTimeout" else v) for k, v in props.items()})
        stack.physical[hook] = ("AWS::AutoScaling::LifecycleHook", props["LifecycleHookName"])
    assert refs_in(template["Resources"]["RecorderWarmPool"]["Properties"]["AutoScalingGroupName"]) == {
        "RecorderGroup", "GroupName", "TerminateHook", "LaunchHook"}
    assert stack.properties("RecorderWarmPool")["AutoScalingGroupName"] == "legacy-warm"
    assert apply_warm_pool(aws, stack)["MinSize"] == 0  # WarmPoolMin's default
    env = controller_env(aws, "pool-legacy-warm")
    assert (env["WARM_POOL_MODE"], str(env["WARM_POOL_MIN"]), str(env["WARM_POOL_MAX"])) == ("managed", "0", "20")
    # Without the launch hook the pool waits for the terminate hook only.
    no_launch = Stack(template, {**params, "EnableLaunchHook": "false"}, account=aws.account_id, region="eu-central-1",
                      stack_name="x", physical={"TerminateHook": ("AWS::AutoScaling::LifecycleHook", "jibri-autoscaler-terminate")})
    assert not no_launch.exists("LaunchHook")
    assert no_launch.properties("RecorderWarmPool")["AutoScalingGroupName"] == "legacy-warm"


def refs_in(e: Any) -> set[str]:
    if isinstance(e, list):
        return set().union(*(refs_in(x) for x in e)) if e else set()
    if isinstance(e, dict):
        if set(e) == {"Ref"}:
            return {e["Ref"]}
        return set().union(*(refs_in(x) for x in e.values())) if e else set()
    return set()


def test_no_warm_pool_unless_managed(aws: Aws, new_group_stack: Stack) -> None:
    assert not new_group_stack.exists("RecorderWarmPool") and not new_group_stack.exists("ControllerWarmPoolPolicy")
    assert controller_env(aws, "pool-a")["WARM_POOL_MODE"] == "off"
    granted = all_actions(role_policy(aws, new_group_stack, "ControllerRole"))
    assert "autoscaling:PutWarmPool" not in granted
    # Reading stays allowed: with WARM_POOL_MODE=off the controller still counts the
    # instances of a warm pool someone else made.
    assert "autoscaling:DescribeWarmPool" in granted


# AWS's documented lifecycle events of a group with a warm pool (Amazon EC2 Auto Scaling
# User Guide, "Warm pool example events and patterns"), for this stack's group.
def lifecycle_event(group: str, kind: str, origin: str, destination: str) -> dict[str, Any]:
    transition = {"launch": "autoscaling:EC2_INSTANCE_LAUNCHING", "terminate": "autoscaling:EC2_INSTANCE_TERMINATING"}[kind]
    return {
        "version": "0", "id": "12345678-1234-1234-1234-123456789012",
        "detail-type": f"EC2 Instance-{kind} Lifecycle Action", "source": "aws.autoscaling",
        "account": "123456789012", "time": "2021-01-13T00:12:37Z", "region": "eu-central-1",
        "resources": [f"arn:aws:autoscaling:eu-central-1:123456789012:autoScalingGroup:042cba90:autoScalingGroupName/{group}"],
        "detail": {
            "LifecycleActionToken": "71514b9d-6a40-4b26-8523-05e7eEXAMPLE", "AutoScalingGroupName": group,
            "LifecycleHookName": f"jibri-autoscaler-{kind}", "EC2InstanceId": "i-1234567890abcdef0",
            "LifecycleTransition": transition, "NotificationMetadata": '{"stack":"pool-a"}',
            "Origin": origin, "Destination": destination,
        },
    }


WARM_POOL_TRANSITIONS = [
    ("launch", "EC2", "WarmPool"),                 # Warmed:Pending:Wait: a new instance enters the pool
    ("launch", "WarmPool", "AutoScalingGroup"),    # Pending:Wait: started from the pool on scale-out
    ("launch", "EC2", "AutoScalingGroup"),         # Pending:Wait: launched straight into the group (pool empty)
    ("terminate", "AutoScalingGroup", "WarmPool"),  # scale-in back into the pool (ReuseOnScaleIn)
    ("terminate", "AutoScalingGroup", "EC2"),      # Terminating:Wait: a plain termination
    ("terminate", "WarmPool", "EC2"),              # Warmed:Terminating:Wait: the pool shrinks
]


def test_lifecycle_rule_delivers_every_warm_pool_transition(aws: Aws, new_group_stack: Stack) -> None:
    from moto.events.models import EventPattern

    raw = aws.events.describe_rule(Name="pool-a-lifecycle")["EventPattern"]
    # Nothing filters on Origin/Destination: the guard sees every transition.
    assert set(json.loads(raw)["detail"]) == {"AutoScalingGroupName"}
    pattern = EventPattern.load(raw)
    for kind, origin, destination in WARM_POOL_TRANSITIONS:
        assert pattern.matches_event(lifecycle_event("jibri-a", kind, origin, destination)), (kind, origin, destination)
        assert not pattern.matches_event(lifecycle_event("other-group", kind, origin, destination))
    # Events of groups without a warm pool carry no Origin/Destination at all.
    plain = lifecycle_event("jibri-a", "terminate", "", "")
    del plain["detail"]["Origin"], plain["detail"]["Destination"]
    assert pattern.matches_event(plain)


# --- a videobridge pool (PoolKind jvb, issue 16) -------------------------------------------------


def test_a_jvb_stack_deploys_opens_only_the_bridge_rest_port_and_may_untag_a_drain(aws: Aws, template: dict[str, Any]) -> None:
    """PoolKind=jvb: the same stack for a group of Jitsi Videobridges. The functions get
    POOL_KIND=jvb and the bridge URL templates; the security groups open the bridges'
    private REST port (8080) and no Jibri port; the controller may also delete the
    drain-requested tag (an undrained bridge), on this group's instances only."""
    w = make_world(aws)
    params = base_parameters(w, "jvb-a")
    params.update(
        PoolKind="jvb",
        LaunchTemplateId=w.launch_template,
        LaunchTemplateVersion="1",
        GroupMinSize="1",
        GroupMaxSize="8",
        JicofoStatsUrls="http://10.40.1.10:8888/stats",
        JicofoSecurityGroupId=w.jicofo_sg,
        JvbStressHigh="0.6",
        JvbStressLow="0.3",
    )
    stack = deploy(aws, template, "jvb-pool", params)
    for fn in ("ControllerFunction", "GuardFunction"):
        env = stack.value(template["Resources"][fn]["Properties"]["Environment"]["Variables"])
        assert env["POOL_KIND"] == "jvb", fn
        assert env["JVB_STATS_URL"] == "http://{private_ip}:8080/colibri/stats", fn
        assert env["JVB_DRAIN_URL"] == "http://{private_ip}:8080/colibri/drain", fn
        assert (env["JVB_STRESS_LOW"], env["JVB_STRESS_HIGH"]) == ("0.3", "0.6"), fn
    rules = {(int(r["FromPort"]), r.get("DestinationSecurityGroupId") or r.get("CidrIp"))
             for r in egress_rules(stack)}
    assert rules == {(8080, w.recorder_sg), (8888, w.jicofo_sg), (443, "0.0.0.0/0")}
    assert stack.exists("BridgeRestIngress")
    assert not stack.exists("RecorderHealthIngress") and not stack.exists("RecorderInternalIngress")
    ingress = stack.properties("BridgeRestIngress")
    assert (int(ingress["FromPort"]), int(ingress["ToPort"]), ingress["GroupId"]) == (8080, 8080, w.recorder_sg)
    p = role_policy(aws, stack, "ControllerRole")
    drain = p["DrainTagOnThisGroupsInstancesOnly"]
    assert actions(drain) == {"ec2:CreateTags", "ec2:DeleteTags"}
    assert drain["Condition"]["StringEquals"]["ec2:ResourceTag/aws:autoscaling:groupName"] == "jvb-a"
    assert drain["Condition"]["ForAllValues:StringEquals"]["aws:TagKeys"] == ["jibri-autoscaler:drain-requested"]
    # The guard never undrains.
    assert "ec2:DeleteTags" not in all_actions(role_policy(aws, stack, "GuardRole"))
    # An overloaded pool is an alarm, on a metric the controller emits for a bridge pool.
    overloaded = stack.properties("BridgesOverloadedAlarm")
    assert overloaded["MetricName"] in metric_names_in_code() and overloaded["MetricName"] == "MeanStress"
    assert (float(overloaded["Threshold"]), int(overloaded["EvaluationPeriods"])) == (0.8, 10)
    assert overloaded["Dimensions"] == [{"Name": "AutoScalingGroupName", "Value": "jvb-a"}]
    # Its own dashboard: the stress against this stack's band and the alarm's mark, the
    # bridges by state and Jicofo's counters, all metrics the code emits.
    body, shown = dashboard_metrics(aws, "jvb-pool-bridges")
    assert shown <= metric_names_in_code()
    assert {"MeanStress", "Draining", "BridgesOperational", "BridgesLost", "DrainFailed"} <= shown
    [stress] = [w for w in body["widgets"] if w["properties"]["metrics"][0][1] == "MeanStress"]
    marks = sorted(a["value"] for a in stress["properties"]["annotations"]["horizontal"])
    assert marks == [0.3, 0.6, 0.8]
    assert "jvb-pool-bridges" in stack.outputs["BridgeDashboardUrl"]  # type: ignore[attr-defined]


def test_a_jibri_stack_has_no_bridge_rule_and_no_tag_deletion(template: dict[str, Any]) -> None:
    stack = Stack(template, dict(MINIMAL_JIBRI), account="123456789012", region="eu-central-1", stack_name="s")
    assert not stack.exists("BridgeRestIngress")
    assert not stack.exists("BridgesOverloadedAlarm")
    assert stack.exists("RecorderHealthIngress")
    assert "8080" not in [str(r["FromPort"]) for r in egress_rules(stack)]
    # The controller's drain-tag statement, evaluated: CreateTags only.
    role = template["Resources"]["ControllerRole"]["Properties"]["Policies"]
    [drain] = [st for pol in role for st in pol["PolicyDocument"]["Statement"]
               if st.get("Sid") == "DrainTagOnThisGroupsInstancesOnly"]
    assert stack.value(drain["Action"]) == "ec2:CreateTags"


MINIMAL_JIBRI = {"GroupName": "g", "VpcId": "vpc-1", "SubnetIds": "subnet-1", "RecorderSecurityGroupId": "sg-1",
                 "ArtifactBucket": "a", "ControllerCodeKey": "a.zip", "GuardCodeKey": "b.zip"}
