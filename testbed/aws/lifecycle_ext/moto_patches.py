"""Every change the extension makes to moto 5.2.5, in one place.

Why monkeypatching: moto's Auto Scaling model has no wait states, no lifecycle
actions and no instance lifecycle policy, answers CompleteLifecycleAction and
RecordLifecycleActionHeartbeat with HTTP 500, accepts a desired capacity outside
[MinSize, MaxSize] and answers an unknown group with 500. Those behaviours live
inside moto's classes (the group's capacity arithmetic, the backend's termination
path, the query handlers), so the extension replaces or wraps exactly those methods
and leaves every other moto behaviour alone. `requirements.txt` pins moto, so the
methods patched here are the ones read.

Warm pools: moto stores PutWarmPool's parameters but keeps no warm instances; the
extension answers Put/Describe/DeleteWarmPool itself and keeps the pool (with its
instances) as a `warm_pool.WarmPool` in the group's `warm_pool` attribute.

Patched:
  FakeAutoScalingGroup   set_desired_capacity, active_instances,
                         replace_autoscaling_group_instances,
                         create_from_cloudformation_json, warm_pool_configuration,
                         and the new launch_into_warm_pool, warm_pool_size
  AutoScalingBackend     terminate_instance, set_instance_health, detach_instances,
                         delete_auto_scaling_group, notify_terminate_instances,
                         delete_lifecycle_hook, describe_auto_scaling_instances
  FakeScalingPolicy      execute
  ec2 instances module   random_private_ip (instances launched without a subnet)
  VPCBackend             create_default_vpc (the default VPC's CIDR)
  s3 MultipartChecksumBuilder  addPart, build (a full-object CRC-32 kept as a running
                         value instead of a second copy of the object)
  AutoScalingResponse    call_action, create_auto_scaling_group,
                         update_auto_scaling_group, set_desired_capacity,
                         put_lifecycle_hook, put_warm_pool, describe_warm_pool,
                         delete_warm_pool, the group-scoped handlers listed in
                         GROUP_SCOPED_HANDLERS, and the new
                         complete_lifecycle_action, record_lifecycle_action_heartbeat
"""

from __future__ import annotations

import base64
import functools
import ipaddress
import os
import random
from collections.abc import Callable
from typing import Any

from moto.autoscaling import models as asg_models
from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.responses import AutoScalingResponse
from moto.core.responses import ActionResult, EmptyResult

from . import capacity
from .account import REGISTRY
from .engine import LifecycleEngine
from .states import (
    IN_CAPACITY_STATES,
    IN_SERVICE,
    POOL_STATES,
    RETAIN,
    TERMINATE,
    TERMINATING_RETAINED,
    TERMINATING_STATES,
    WARM_TERMINATING_STATES,
    WARMED_TERMINATING_RETAINED,
    global_timeout_s,
)
from .warm_pool import WarmPool, instance_json, pool_of

# DescribeWarmPool: "The maximum number of instances to return with this call. The
# maximum value is 50." (also the default here).
WARM_POOL_MAX_RECORDS = 50

_ENGINE: LifecycleEngine | None = None
_APPLIED = False


def engine() -> LifecycleEngine:
    if _ENGINE is None:
        raise RuntimeError("lifecycle_ext.install() has not been called")
    return _ENGINE


def apply(lifecycle_engine: LifecycleEngine) -> None:
    """Install the patches once per process; a later call only swaps the engine."""
    global _ENGINE, _APPLIED
    _ENGINE = lifecycle_engine
    if _APPLIED:
        return
    _APPLIED = True
    _patch_private_ips()
    _patch_full_object_crc32()
    _patch_group()
    _patch_backend()
    _patch_policy()
    _patch_responses()


# --- Private IPs on loopback ----------------------------------------------------------
# TEST-BED DEVIATION FROM AWS: AWS never hands out loopback private IPs. Here every
# instance gets one in 127.N.0.0/16 (instead of moto's random 10.x for an instance
# without a subnet, and the default VPC's 172.31.0.0/16), so that the Jitsi emulator
# can listen at each instance's private IP as its Jibri would, and close that port when
# the Jibri exits: the product then dials `http://{private_ip}:PORT/...` as in
# production and sees a real connect-time refusal (ECONNREFUSED) for an exited Jibri,
# never a reset. Linux routes all of 127.0.0.0/8 to lo, so nothing leaves the machine.
# N is drawn per server start (or TESTBED_PRIVATE_NET=N) so that concurrent test beds on
# one machine rarely share a range; the emulators also bind distinct ports.


def _private_net() -> ipaddress.IPv4Network:
    raw = os.environ.get("TESTBED_PRIVATE_NET")
    n = int(raw) if raw else random.randint(1, 254)
    if not 1 <= n <= 254:
        raise ValueError(f"TESTBED_PRIVATE_NET must be 1..254, not {raw!r}")
    return ipaddress.IPv4Network(f"127.{n}.0.0/16")


PRIVATE_NET: ipaddress.IPv4Network | None = None
_USED_PRIVATE_IPS: set[str] = set()


def _loopback_private_ip() -> str:
    """A private IP in PRIVATE_NET no instance of this server was given yet."""
    assert PRIVATE_NET is not None
    hosts = PRIVATE_NET.num_addresses - 2
    for _ in range(hosts):
        ip = str(PRIVATE_NET.network_address + random.randint(1, hosts))
        if ip not in _USED_PRIVATE_IPS:
            _USED_PRIVATE_IPS.add(ip)
            return ip
    raise RuntimeError(f"test bed: no free private IP left in {PRIVATE_NET}")


def _patch_private_ips() -> None:
    global PRIVATE_NET
    from moto.ec2.models import instances as ec2_instances
    from moto.ec2.models import vpcs as ec2_vpcs
    from moto.ec2.exceptions import DefaultVpcAlreadyExists

    PRIVATE_NET = _private_net()
    original = ec2_instances.random_private_ip

    def random_private_ip(cidr: str | None = None, ipv6: bool = False) -> str:
        if cidr is None and not ipv6:
            return _loopback_private_ip()
        return original(cidr, ipv6)

    ec2_instances.random_private_ip = random_private_ip

    def create_default_vpc(self: Any) -> Any:
        if self.describe_vpcs(filters={"is-default": ["true"]}):
            raise DefaultVpcAlreadyExists
        vpc = self.create_vpc(cidr_block=str(PRIVATE_NET), is_default=True)
        for zone in self.describe_availability_zones():
            self.create_default_subnet(zone.name)
        return vpc

    ec2_vpcs.VPCBackend.create_default_vpc = create_default_vpc


# --- S3 full-object CRC-32 of a multipart upload ------------------------------------
# AWS: for a multipart upload the object-level checksum "is a calculation based on the
# checksum values of each individual part" (S3 API reference, `Checksum`): for the
# FULL_OBJECT type S3 combines the parts' CRCs; it does not read the object again.
# moto 5.2.5 (`s3/models.py`, MultipartChecksumBuilder) appends every part to a bytearray
# and copies that once more to checksum it at CompleteMultipartUpload: two extra copies of
# the object in the server's memory and a Complete whose cost grows with the object, which
# only a FULL_OBJECT uploader pays (`aws s3 cp` uses COMPOSITE). For CRC-32 the running
# value (`binascii.crc32(part, crc)`) is the same number at the cost of reading each part
# once, in part order. Other algorithms and types keep moto's code. moto stores the value
# without comparing it with the client's (unchanged); jibri-finalize reads it back and
# compares. `tests/test_s3_checksums.py` proves the value equals the whole object's CRC-32
# and that the COMPOSITE value is moto's as before.


def _patch_full_object_crc32() -> None:
    import binascii

    from moto.s3.models import MultipartChecksumBuilder as Builder

    add_part, build = Builder.addPart, Builder.build

    def running(self: Any) -> bool:
        return self.checksum_type == "FULL_OBJECT" and self.checksum_algorithm == "CRC32"

    @functools.wraps(add_part)
    def add_part_running(self: Any, part: bytes) -> None:
        if not running(self):
            return add_part(self, part)
        self.crc32_running = binascii.crc32(part, getattr(self, "crc32_running", 0))
        self.part_count += 1
        return None

    @functools.wraps(build)
    def build_running(self: Any) -> Any:
        if not running(self):
            return build(self)
        crc = getattr(self, "crc32_running", 0).to_bytes(4, "big")
        return (self.checksum_type, base64.b64encode(crc).decode(), 1)

    Builder.addPart = add_part_running
    Builder.build = build_running


# --- AWS error texts --------------------------------------------------------------
# Observed AWS messages (SetDesiredCapacity/UpdateAutoScalingGroup on an unknown group
# say "- null"; other group-scoped calls name the group).


def group_not_found_null() -> ValidationError:
    return ValidationError("AutoScalingGroup name not found - null")


def group_not_found(name: str | None) -> ValidationError:
    return ValidationError(f"AutoScalingGroup name not found - AutoScalingGroup {name} not found")


def instance_not_managed(instance_id: str | None) -> ValidationError:
    return ValidationError(
        f"Instance Id not found - No managed instance found for instance ID: {instance_id}"
    )


def _check_sizes(min_size: int | None, max_size: int | None, desired: int | None) -> None:
    """CreateAutoScalingGroup/UpdateAutoScalingGroup bounds, with AWS's messages."""
    if min_size is None or max_size is None:
        return
    if max_size < min_size:
        raise ValidationError(
            f"Max bound, {max_size}, must be greater than or equal to min bound, {min_size}"
        )
    if desired is not None and not min_size <= desired <= max_size:
        raise ValidationError(
            f"Desired capacity:{desired} must be between the specified min size:"
            f"{min_size} and max size:{max_size}"
        )


def _optional_int(value: Any) -> int | None:
    return None if value is None or value == "" else int(value)


# --- instance lifecycle policy and hook specifications -----------------------------


def _parse_lifecycle_policy(raw: Any) -> dict[str, Any] | None:
    """InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon = retain|terminate."""
    if not raw:
        return None
    triggers = (raw.get("RetentionTriggers") or {}) if isinstance(raw, dict) else {}
    value = triggers.get("TerminateHookAbandon")
    if value is None:
        return {"RetentionTriggers": {}}
    if value not in (RETAIN, TERMINATE):
        raise ValidationError(
            f"Value '{value}' at 'instanceLifecyclePolicy.retentionTriggers.terminateHookAbandon'"
            " failed to satisfy constraint: Member must satisfy enum value set: [retain, terminate]"
        )
    return {"RetentionTriggers": {"TerminateHookAbandon": value}}


def _finish_hook(hook: Any, settings: dict[str, Any]) -> None:
    """What moto's LifecycleHook lacks: the metadata sent in each event, the
    notification target and role as given (moto reports fixed placeholders; a hook
    that only feeds EventBridge has neither), and the global timeout AWS derives
    from the heartbeat timeout."""
    hook.notification_metadata = settings.get("NotificationMetadata") or None
    hook.notification_target_arn = settings.get("NotificationTargetARN") or None
    hook.role_arn = settings.get("RoleARN") or None
    hook.global_timeout = int(global_timeout_s(float(hook.heartbeat_timeout)))


def _register_hook(backend: Any, group_name: str, spec: dict[str, Any]) -> str:
    """A LifecycleHookSpecification of CreateAutoScalingGroup (or CloudFormation):
    registered before the group launches, so its first instances already wait."""
    name = spec["LifecycleHookName"]
    hook = backend.create_lifecycle_hook(
        name=name,
        as_name=group_name,
        transition=spec.get("LifecycleTransition"),
        timeout=_optional_int(spec.get("HeartbeatTimeout")),
        result=spec.get("DefaultResult"),
    )
    _finish_hook(hook, spec)
    return f"{group_name}_{name}"


def _managed_instance(backend: Any, instance_id: str | None) -> tuple[Any, Any]:
    """The group and InstanceState of an instance in a group or in its warm pool."""
    for group in backend.autoscaling_groups.values():
        pool = pool_of(group)
        for state in [*group.instance_states, *(pool.instances if pool else [])]:
            if state.instance.id == instance_id:
                return group, state
    raise instance_not_managed(instance_id)


def _is_warm(group: Any, state: Any) -> bool:
    pool = pool_of(group)
    return pool is not None and any(s is state for s in pool.instances)


# --- warm pool parameters -----------------------------------------------------------


def _enum_error(value: Any, member: str, allowed: list[str]) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must satisfy enum value set: [{', '.join(allowed)}]"
    )


def _minimum_error(value: Any, member: str, minimum: int) -> ValidationError:
    return ValidationError(
        f"1 validation error detected: Value '{value}' at '{member}' failed to satisfy "
        f"constraint: Member must have value greater than or equal to {minimum}"
    )


def _as_bool(value: Any) -> bool:
    return value is True or str(value).lower() == "true"


def _parse_warm_pool(params: Any) -> WarmPool:
    """PutWarmPool's parameters, with AWS's defaults (MinSize 0, PoolState Stopped,
    MaxGroupPreparedCapacity unset; -1 also means unset) and value constraints."""
    min_size = _optional_int(params.get("MinSize"))
    prepared = _optional_int(params.get("MaxGroupPreparedCapacity"))
    pool_state = params.get("PoolState") or "Stopped"
    if min_size is not None and min_size < 0:
        raise _minimum_error(min_size, "minSize", 0)
    if prepared is not None and prepared < -1:
        raise _minimum_error(prepared, "maxGroupPreparedCapacity", -1)
    if pool_state not in POOL_STATES:
        raise _enum_error(pool_state, "poolState", list(POOL_STATES))
    raw_policy = params.get("InstanceReusePolicy")
    policy = None
    if isinstance(raw_policy, dict):
        reuse = raw_policy.get("ReuseOnScaleIn")
        policy = {} if reuse is None else {"ReuseOnScaleIn": _as_bool(reuse)}
    return WarmPool(
        min_size=min_size or 0,
        max_group_prepared_capacity=None if prepared in (None, -1) else prepared,
        pool_state=pool_state,
        instance_reuse_policy=policy,
    )


def no_warm_pool(name: str | None) -> ValidationError:
    # AWS's DeleteWarmPool on a group without one: a ValidationError whose message
    # contains "No warm pool found" (Terraform's AWS provider matches on that text).
    return ValidationError(f"No warm pool found for Auto Scaling group {name}.")


# --- FakeAutoScalingGroup -----------------------------------------------------------


def _patch_group() -> None:
    group_cls = asg_models.FakeAutoScalingGroup

    def set_desired_capacity(self: Any, new_capacity: int | None) -> None:
        capacity.reconcile(self, new_capacity, engine())

    def active_instances(self: Any) -> list[Any]:
        # moto counts only InService; AWS counts every instance in capacity.
        return capacity.counted_instances(self)

    original_replace = group_cls.replace_autoscaling_group_instances

    def replace_autoscaling_group_instances(
        self: Any, count_needed: int, propagated_tags: dict[str, str]
    ) -> None:
        before = len(self.instance_states)
        original_replace(self, count_needed, propagated_tags)
        engine().on_launched(self, self.instance_states[before:])

    original_cfn_create = group_cls.create_from_cloudformation_json.__func__

    def create_from_cloudformation_json(
        cls: Any,
        resource_name: str,
        cloudformation_json: dict[str, Any],
        account_id: str,
        region_name: str,
        **kwargs: Any,
    ) -> Any:
        # moto ignores LifecycleHookSpecificationList and InstanceLifecyclePolicy.
        properties = cloudformation_json.get("Properties", {})
        policy = _parse_lifecycle_policy(properties.get("InstanceLifecyclePolicy"))
        backend = asg_models.autoscaling_backends[account_id][region_name]
        with REGISTRY.get(account_id).lock:
            for spec in properties.get("LifecycleHookSpecificationList") or []:
                _register_hook(backend, resource_name, spec)
            group = original_cfn_create(
                cls, resource_name, cloudformation_json, account_id, region_name, **kwargs
            )
            if policy is not None:
                group.instance_lifecycle_policy = policy
            return group

    def launch_into_warm_pool(self: Any, count: int) -> list[Any]:
        """moto's own launch (same template, tags, subnet and zones as a group
        launch), handed back instead of joining the group: the engine puts the new
        InstanceStates into the warm pool."""
        before = len(self.instance_states)
        original_replace(self, count, self.get_propagated_tags())
        launched = self.instance_states[before:]
        del self.instance_states[before:]
        return launched

    def warm_pool_configuration(self: Any) -> dict[str, Any] | None:
        pool = pool_of(self)
        return pool.configuration() if pool is not None else None

    def warm_pool_size(self: Any) -> int | None:
        # DescribeAutoScalingGroups' WarmPoolSize: the instances the pool holds now.
        pool = pool_of(self)
        return len(pool.instances) if pool is not None else None

    group_cls.launch_into_warm_pool = launch_into_warm_pool
    group_cls.warm_pool_configuration = property(warm_pool_configuration)
    group_cls.warm_pool_size = property(warm_pool_size)
    group_cls.set_desired_capacity = set_desired_capacity
    group_cls.active_instances = active_instances
    group_cls.replace_autoscaling_group_instances = replace_autoscaling_group_instances
    group_cls.create_from_cloudformation_json = classmethod(create_from_cloudformation_json)


# --- AutoScalingBackend -------------------------------------------------------------


def _terminate_warm_instance(group: Any, state: Any) -> Any:
    """TerminateInstanceInAutoScalingGroup on a warm instance: it leaves the pool
    through the terminate hooks (Warmed:Terminating:Wait) and the pool refills; a
    Warmed:Terminating:Retained one is terminated now. Warm instances are not part
    of the desired capacity, so ShouldDecrementDesiredCapacity changes nothing."""
    activity = asg_models.TerminateInstanceActivity(state.instance, group.desired_capacity)
    if state.lifecycle_state == WARMED_TERMINATING_RETAINED:
        engine().terminate_warm_now(group, state)
    elif state.lifecycle_state not in WARM_TERMINATING_STATES:
        engine().begin_warm_termination(group, state)
    engine().reconcile_warm_pool(group)
    return activity



def _patch_backend() -> None:
    backend_cls = asg_models.AutoScalingBackend

    def terminate_instance(self: Any, instance_id: str, should_decrement: bool) -> Any:
        """TerminateInstanceInAutoScalingGroup through the terminate hooks.

        Without decrement the group launches a replacement at once; with it, the
        desired capacity drops by one, refused at MinSize as AWS does. A retained
        instance is terminated now (that call is what ends retention); an instance
        already terminating is left as it is.
        """
        group, state = _managed_instance(self, instance_id)
        if _is_warm(group, state):
            return _terminate_warm_instance(group, state)
        if state.lifecycle_state == TERMINATING_RETAINED:
            activity = asg_models.TerminateInstanceActivity(state.instance, group.desired_capacity)
            engine().terminate_now(group, state)
            return activity
        original_size = group.desired_capacity
        if state.lifecycle_state not in TERMINATING_STATES:
            if should_decrement and state.lifecycle_state in IN_CAPACITY_STATES:
                if group.desired_capacity <= group.min_size:
                    raise ValidationError(
                        f"Currently, desiredSize equals minSize ({group.min_size}). Terminating "
                        "instance without replacement will violate group's min size constraint. "
                        "Either set shouldDecrementDesiredCapacity flag to false or lower "
                        "group's min size."
                    )
                group.desired_capacity -= 1
            engine().begin_termination(group, state)
            group.set_desired_capacity(group.desired_capacity)
        return asg_models.TerminateInstanceActivity(state.instance, original_size)

    def set_instance_health(self: Any, instance_id: str, health_status: str) -> None:
        """An Unhealthy InService instance is replaced (its termination runs the
        terminate hooks) unless ReplaceUnhealthy is suspended. The health check grace
        period is not modelled: replacement starts at once. An Unhealthy warm
        instance leaves the pool (terminate hooks) and the pool refills."""
        group, state = _managed_instance(self, instance_id)
        state.health_status = health_status
        suspended = {p["ProcessName"] for p in group.suspended_processes}
        if _is_warm(group, state):
            if health_status == "Unhealthy" and "ReplaceUnhealthy" not in suspended:
                engine().begin_warm_termination(group, state)
                engine().reconcile_warm_pool(group)
            return
        if (
            health_status == "Unhealthy"
            and state.lifecycle_state == IN_SERVICE
            and "ReplaceUnhealthy" not in suspended
        ):
            engine().begin_termination(group, state)
            group.set_desired_capacity(group.desired_capacity)

    original_detach = backend_cls.detach_instances

    def detach_instances(self: Any, group_name: str, instance_ids: list[str], should_decrement: bool) -> Any:
        account = REGISTRY.get(self.account_id)
        for instance_id in instance_ids:
            account.drop_instance(instance_id)
        return original_detach(self, group_name, instance_ids, should_decrement)

    original_delete = backend_cls.delete_auto_scaling_group

    def delete_auto_scaling_group(self: Any, group_name: str) -> None:
        group = self.autoscaling_groups.get(group_name)
        if group is not None:
            engine().forget_group(group)
            # AWS deletes a group's hooks with it; moto would keep them for a
            # later group of the same name.
            for key in [
                key
                for key, hook in self.lifecycle_hooks.items()
                if hook.auto_scaling_group_name == group_name
            ]:
                del self.lifecycle_hooks[key]
        original_delete(self, group_name)

    original_notify = backend_cls.notify_terminate_instances

    def notify_terminate_instances(self: Any, instance_ids: list[str]) -> None:
        # EC2 TerminateInstances on a group's instance: its actions end with it.
        account = REGISTRY.get(self.account_id)
        with account.lock:
            for instance_id in instance_ids:
                account.drop_instance(instance_id)
            original_notify(self, instance_ids)
            engine().forget_warm_instances(self, instance_ids)

    original_delete_hook = backend_cls.delete_lifecycle_hook

    def delete_lifecycle_hook(self: Any, as_name: str, name: str) -> None:
        original_delete_hook(self, as_name, name)
        engine().on_hook_deleted(REGISTRY.get(self.account_id), self.region_name, as_name, name)

    original_describe_instances = backend_cls.describe_auto_scaling_instances

    def describe_auto_scaling_instances(self: Any, instance_ids: list[str]) -> list[Any]:
        # AWS lists warm pool instances here too (in their Warmed:* states).
        found = original_describe_instances(self, instance_ids)
        for group in self.autoscaling_groups.values():
            pool = pool_of(group)
            if pool is not None:
                found.extend(s for s in pool.instances if not instance_ids or s.instance.id in instance_ids)
        return found

    backend_cls.describe_auto_scaling_instances = describe_auto_scaling_instances
    backend_cls.terminate_instance = terminate_instance
    backend_cls.delete_lifecycle_hook = delete_lifecycle_hook
    backend_cls.set_instance_health = set_instance_health
    backend_cls.detach_instances = detach_instances
    backend_cls.delete_auto_scaling_group = delete_auto_scaling_group
    backend_cls.notify_terminate_instances = notify_terminate_instances


# --- FakeScalingPolicy --------------------------------------------------------------


def _patch_policy() -> None:
    def execute(self: Any) -> None:
        """ExecutePolicy for a simple/step policy: the new desired capacity is kept
        within [MinSize, MaxSize] as AWS does for scaling policies (moto would set
        it out of range). Percent changes round as documented: a change between 0
        and 1 (or 0 and -1) counts as 1 (or -1), others truncate toward zero."""
        backend = self.autoscaling_backend
        group = backend.autoscaling_groups.get(self.auto_scaling_group_name)
        if group is None:
            raise group_not_found(self.auto_scaling_group_name)
        current = group.desired_capacity or 0
        adjustment = self.scaling_adjustment or 0
        if self.adjustment_type == "ExactCapacity":
            new = adjustment
        elif self.adjustment_type == "ChangeInCapacity":
            new = current + adjustment
        elif self.adjustment_type == "PercentChangeInCapacity":
            change = current * adjustment / 100.0
            if 0 < change < 1:
                change = 1
            elif -1 < change < 0:
                change = -1
            new = current + int(change)
        else:
            return  # target tracking / predictive policies are not executed by hand
        new = max(group.min_size, min(group.max_size, new))
        backend.set_desired_capacity(group.name, new)

    asg_models.FakeScalingPolicy.execute = execute


# --- AutoScalingResponse ------------------------------------------------------------

# Handlers that act on one group and would otherwise answer an unknown name with 500.
GROUP_SCOPED_HANDLERS = (
    "set_instance_protection",
    "attach_instances",
    "detach_instances",
    "enter_standby",
    "exit_standby",
    "put_scaling_policy",
    "suspend_processes",
    "resume_processes",
    "put_warm_pool",
    "describe_warm_pool",
    "delete_warm_pool",
    "put_lifecycle_hook",
)


def _requires_group(handler: Callable[[Any], Any]) -> Callable[[Any], Any]:
    @functools.wraps(handler)
    def wrapper(self: Any) -> Any:
        name = self._get_param("AutoScalingGroupName")
        if name not in self.autoscaling_backend.autoscaling_groups:
            raise group_not_found(name)
        return handler(self)

    return wrapper


def _patch_responses() -> None:
    cls = AutoScalingResponse

    original_call_action = cls.call_action

    def call_action(self: Any) -> Any:
        # One Auto Scaling call at a time per account, and never during a timer;
        # timers already due run first so every answer reflects the current time.
        # Afterwards every warm pool is brought to its size, whatever the call was.
        account = REGISTRY.get(self.current_account)
        with account.lock:
            engine().process_due(account)
            response = original_call_action(self)
            engine().reconcile_warm_pools(account)
            return response

    original_create = cls.create_auto_scaling_group

    def create_auto_scaling_group(self: Any) -> Any:
        params = self._get_params()
        name = params.get("AutoScalingGroupName")
        _check_sizes(
            _optional_int(params.get("MinSize")),
            _optional_int(params.get("MaxSize")),
            _optional_int(params.get("DesiredCapacity")),
        )
        policy = _parse_lifecycle_policy(params.get("InstanceLifecyclePolicy"))
        backend = self.autoscaling_backend
        registered = [
            _register_hook(backend, name, spec) for spec in params.get("LifecycleHookSpecificationList") or []
        ]
        try:
            result = original_create(self)
        except Exception:
            for key in registered:
                backend.lifecycle_hooks.pop(key, None)
            raise
        if policy is not None:
            backend.autoscaling_groups[name].instance_lifecycle_policy = policy
        return result

    original_update = cls.update_auto_scaling_group

    def update_auto_scaling_group(self: Any) -> Any:
        """Validates sizes as AWS does, and always hands moto an explicit desired
        capacity: moto's own fallback compares MinSize/MaxSize with the number of
        instances (retained and terminating ones included), AWS with the desired
        capacity ("... sets the group's DesiredCapacity to the new MinSize value")."""
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is None:
            raise group_not_found_null()
        new_min = self._get_int_param("MinSize", group.min_size)
        new_max = self._get_int_param("MaxSize", group.max_size)
        desired = self._get_int_param("DesiredCapacity")
        _check_sizes(new_min, new_max, desired)
        if desired is None:
            desired = max(new_min, min(new_max, group.desired_capacity or 0))
            self.params["DesiredCapacity"] = desired
        policy = _parse_lifecycle_policy(self._get_param("InstanceLifecyclePolicy"))
        result = original_update(self)
        if policy is not None:
            group.instance_lifecycle_policy = policy
        return result

    original_set_desired = cls.set_desired_capacity

    def set_desired_capacity(self: Any) -> Any:
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups.get(name)
        if group is None:
            raise group_not_found_null()
        desired = self._get_int_param("DesiredCapacity")
        if desired is not None and desired > group.max_size:
            raise ValidationError(
                f"New SetDesiredCapacity value {desired} is above max value "
                f"{group.max_size} for the AutoScalingGroup."
            )
        if desired is not None and desired < group.min_size:
            raise ValidationError(
                f"New SetDesiredCapacity value {desired} is below min value "
                f"{group.min_size} for the AutoScalingGroup."
            )
        return original_set_desired(self)

    original_put_hook = cls.put_lifecycle_hook

    def put_lifecycle_hook(self: Any) -> Any:
        result = original_put_hook(self)
        key = f"{self._get_param('AutoScalingGroupName')}_{self._get_param('LifecycleHookName')}"
        hook = self.autoscaling_backend.lifecycle_hooks.get(key)
        if hook is not None:
            _finish_hook(
                hook,
                {
                    name: self._get_param(name)
                    for name in ("NotificationMetadata", "NotificationTargetARN", "RoleARN")
                },
            )
        return result

    def complete_lifecycle_action(self: Any) -> ActionResult:
        engine().complete(
            REGISTRY.get(self.current_account),
            region=self.region,
            group_name=self._get_param("AutoScalingGroupName"),
            hook_name=self._get_param("LifecycleHookName"),
            token=self._get_param("LifecycleActionToken"),
            instance_id=self._get_param("InstanceId"),
            result=self._get_param("LifecycleActionResult"),
        )
        return EmptyResult()

    def record_lifecycle_action_heartbeat(self: Any) -> ActionResult:
        engine().heartbeat(
            REGISTRY.get(self.current_account),
            region=self.region,
            group_name=self._get_param("AutoScalingGroupName"),
            hook_name=self._get_param("LifecycleHookName"),
            token=self._get_param("LifecycleActionToken"),
            instance_id=self._get_param("InstanceId"),
        )
        return EmptyResult()

    def put_warm_pool(self: Any) -> ActionResult:
        group = self.autoscaling_backend.autoscaling_groups[self._get_param("AutoScalingGroupName")]
        engine().put_warm_pool(group, _parse_warm_pool(self._get_params()))
        return EmptyResult()

    def describe_warm_pool(self: Any) -> ActionResult:
        """WarmPoolConfiguration (absent without a pool) and the pool's instances,
        MaxRecords (1..50, default 50) at a time; NextToken is the offset of the
        next page."""
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups[name]
        max_records = self._get_int_param("MaxRecords", WARM_POOL_MAX_RECORDS)
        if max_records < 1:
            raise _minimum_error(max_records, "maxRecords", 1)
        if max_records > WARM_POOL_MAX_RECORDS:
            raise ValidationError(
                f"1 validation error detected: Value '{max_records}' at 'maxRecords' failed to "
                f"satisfy constraint: Member must have value less than or equal to {WARM_POOL_MAX_RECORDS}"
            )
        token = self._get_param("NextToken")
        if token and not str(token).isdigit():
            raise ValidationError(f"The token '{token}' is invalid.")
        start = int(token) if token else 0
        pool = pool_of(group)
        instances = pool.instances if pool is not None else []
        page = instances[start : start + max_records]
        result: dict[str, Any] = {"Instances": [instance_json(state) for state in page]}
        if pool is not None:
            result["WarmPoolConfiguration"] = pool.configuration()
        if start + max_records < len(instances):
            result["NextToken"] = str(start + max_records)
        return ActionResult(result)

    def delete_warm_pool(self: Any) -> ActionResult:
        name = self._get_param("AutoScalingGroupName")
        group = self.autoscaling_backend.autoscaling_groups[name]
        if pool_of(group) is None:
            raise no_warm_pool(name)
        engine().delete_warm_pool(group, force=_as_bool(self._get_param("ForceDelete", False)))
        return EmptyResult()

    cls.put_warm_pool = put_warm_pool
    cls.describe_warm_pool = describe_warm_pool
    cls.delete_warm_pool = delete_warm_pool
    cls.call_action = call_action
    cls.create_auto_scaling_group = create_auto_scaling_group
    cls.update_auto_scaling_group = update_auto_scaling_group
    cls.set_desired_capacity = set_desired_capacity
    cls.put_lifecycle_hook = put_lifecycle_hook
    cls.complete_lifecycle_action = complete_lifecycle_action
    cls.record_lifecycle_action_heartbeat = record_lifecycle_action_heartbeat
    for handler_name in GROUP_SCOPED_HANDLERS:
        setattr(cls, handler_name, _requires_group(getattr(cls, handler_name)))
