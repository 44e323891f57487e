#!/usr/bin/env python3
"""Seeds the local test bed with what an operator has on AWS: a Jibri Auto Scaling group
`jibri-pool` (2 instances, protected on launch, terminate hook with DefaultResult ABANDON,
instance lifecycle policy TerminateHookAbandon=retain), the state bucket, and the Jitsi
emulator following the group (a recorder per InService instance). Loopback only."""

import json
import os
import sys
import time
import urllib.request

import boto3
from botocore.config import Config

GROUP = "jibri-pool"
BUCKET = "jibri-autoscaler-state"


def main():
    aws, jitsi = os.environ["AWS_ENDPOINT_URL"], os.environ["JITSI_EMULATOR_URL"]
    for url in (aws, jitsi):
        if not url.startswith("http://127."):
            sys.exit(f"seed: refusing non-loopback endpoint {url}")
    kw = dict(
        endpoint_url=aws,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
        config=Config(retries={"max_attempts": 1}, region_name="us-east-1"),
    )
    asg, ec2, s3 = (boto3.client(n, **kw) for n in ("autoscaling", "ec2", "s3"))
    s3.create_bucket(Bucket=BUCKET)
    ec2.create_launch_template(
        LaunchTemplateName="jibri", LaunchTemplateData={"ImageId": "ami-12c6146b", "InstanceType": "c6i.xlarge"}
    )
    asg.create_auto_scaling_group(
        AutoScalingGroupName=GROUP,
        MinSize=1,
        MaxSize=30,
        DesiredCapacity=2,
        AvailabilityZones=["us-east-1a"],
        LaunchTemplate={"LaunchTemplateName": "jibri", "Version": "$Latest"},
        NewInstancesProtectedFromScaleIn=True,
        LifecycleHookSpecificationList=[
            {
                "LifecycleHookName": "jibri-autoscaler-terminate",
                "LifecycleTransition": "autoscaling:EC2_INSTANCE_TERMINATING",
                "HeartbeatTimeout": 900,
                "DefaultResult": "ABANDON",
            }
        ],
        InstanceLifecyclePolicy={"RetentionTriggers": {"TerminateHookAbandon": "retain"}},
    )
    req = urllib.request.Request(
        f"{jitsi}/control/follow",
        data=json.dumps({"aws_endpoint": aws, "group": GROUP}).encode(),
        method="POST",
        headers={"content-type": "application/json"},
    )
    urllib.request.urlopen(req, timeout=10).read()
    # Wait until the emulator has a recorder for each instance.
    ids = [i["InstanceId"] for i in asg.describe_auto_scaling_groups(AutoScalingGroupNames=[GROUP])["AutoScalingGroups"][0]["Instances"]]
    for _ in range(50):
        with urllib.request.urlopen(f"{jitsi}/control/state", timeout=10) as r:
            have = {x["id"] for x in json.loads(r.read()).get("recorders", [])}
        if set(ids) <= have:
            break
        time.sleep(0.1)
    print(f"seed: group {GROUP} with {', '.join(ids)}; state bucket {BUCKET}; emulator follows the group")


if __name__ == "__main__":
    main()
