"""A lifecycle action: one hook holding one instance in a wait state.

Mirrors the AWS user guide ("How lifecycle hooks work", "Complete a lifecycle
action"): each hook of the matching transition opens one action with its own
LifecycleActionToken; it ends by CompleteLifecycleAction, by its heartbeat timeout
(restarted by RecordLifecycleActionHeartbeat) or by the global timeout counted from
its start, and the last two apply the hook's DefaultResult. Origin and Destination
say which move of the instance the action holds (EC2 -> AutoScalingGroup for a plain
launch, EC2 -> WarmPool for a launch into the warm pool, and so on); they go into
the event and decide what the action's end does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from . import clock
from .states import EC2, GROUP, global_timeout_s


@dataclass
class LifecycleAction:
    token: str
    region: str
    group_name: str
    hook_name: str
    instance_id: str
    transition: str
    default_result: str
    heartbeat_timeout_s: float
    started_at: float
    heartbeat_deadline: float
    global_deadline: float
    origin: str
    destination: str

    @classmethod
    def open(
        cls,
        *,
        token: str,
        region: str,
        group_name: str,
        hook_name: str,
        instance_id: str,
        transition: str,
        default_result: str,
        heartbeat_timeout_s: float,
        at: float,
        origin: str,
        destination: str,
    ) -> LifecycleAction:
        return cls(
            token=token,
            region=region,
            group_name=group_name,
            hook_name=hook_name,
            instance_id=instance_id,
            transition=transition,
            default_result=default_result,
            heartbeat_timeout_s=heartbeat_timeout_s,
            started_at=at,
            heartbeat_deadline=at + heartbeat_timeout_s,
            global_deadline=at + global_timeout_s(heartbeat_timeout_s),
            origin=origin,
            destination=destination,
        )

    @property
    def due(self) -> float:
        """When this action ends by itself unless completed first."""
        return min(self.heartbeat_deadline, self.global_deadline)

    @property
    def expiry_reason(self) -> str:
        if self.global_deadline <= self.heartbeat_deadline:
            return "global-timeout"
        return "heartbeat-timeout"

    def record_heartbeat(self, at: float) -> None:
        """RecordLifecycleActionHeartbeat restarts the heartbeat timer only; the
        global timeout still counts from the start of the action."""
        self.heartbeat_deadline = at + self.heartbeat_timeout_s

    def matches(self, group_name: str, hook_name: str) -> bool:
        return self.group_name == group_name and self.hook_name == hook_name

    def to_json(self) -> dict[str, Any]:
        return {
            "LifecycleActionToken": self.token,
            "AutoScalingGroupName": self.group_name,
            "LifecycleHookName": self.hook_name,
            "EC2InstanceId": self.instance_id,
            "LifecycleTransition": self.transition,
            "Region": self.region,
            "DefaultResult": self.default_result,
            "HeartbeatTimeout": self.heartbeat_timeout_s,
            "StartedAt": clock.iso_millis(self.started_at),
            "HeartbeatDeadline": clock.iso_millis(self.heartbeat_deadline),
            "GlobalDeadline": clock.iso_millis(self.global_deadline),
            "Origin": self.origin,
            "Destination": self.destination,
        }


@dataclass
class PendingBoot:
    """An instance still starting until `due` in test-bed time: `Pending` on its way
    into the group (from EC2 after `boot_delay_s`, from the warm pool after
    `warm_start_delay_s`), or `Warmed:Pending` on its way into the warm pool."""

    region: str
    group_name: str
    instance_id: str
    due: float
    origin: str = EC2
    destination: str = GROUP

    def to_json(self) -> dict[str, Any]:
        return {
            "EC2InstanceId": self.instance_id,
            "AutoScalingGroupName": self.group_name,
            "Region": self.region,
            "Due": clock.iso_millis(self.due),
            "Origin": self.origin,
            "Destination": self.destination,
        }
