"""Test-bed deviation from AWS: instances get private IPs in one 127.N.0.0/16 per server
start, so the Jitsi emulator can listen at each instance's address as its Jibri would
(and refuse at connect once the Jibri exited). AWS never hands out loopback addresses."""

from __future__ import annotations

import ipaddress

from conftest import Aws


def private_ips(aws: Aws) -> dict[str, str]:
    out = {}
    for r in aws.ec2.describe_instances()["Reservations"]:
        for i in r["Instances"]:
            out[i["InstanceId"]] = i["PrivateIpAddress"]
    return out


def test_instances_get_distinct_loopback_private_ips_in_one_range(aws: Aws) -> None:
    aws.create_group()
    aws.asg.set_desired_capacity(AutoScalingGroupName="jibri", DesiredCapacity=6)
    ips = private_ips(aws)
    assert len(ips) == 6
    assert len(set(ips.values())) == 6
    nets = {ipaddress.IPv4Network(f"{ip}/16", strict=False) for ip in ips.values()}
    assert len(nets) == 1, nets
    [net] = nets
    assert net.subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))
    assert net != ipaddress.IPv4Network("127.0.0.0/16"), "never next to 127.0.0.1"


def test_the_default_vpc_is_in_the_same_loopback_range(aws: Aws) -> None:
    [vpc] = aws.ec2.describe_vpcs(Filters=[{"Name": "is-default", "Values": ["true"]}])["Vpcs"]
    assert ipaddress.IPv4Network(vpc["CidrBlock"]).subnet_of(ipaddress.IPv4Network("127.0.0.0/8"))
