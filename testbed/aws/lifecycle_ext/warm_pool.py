"""A group's warm pool: its configuration, its instances and its size rule.

moto 5.2.5 stores PutWarmPool's parameters but keeps no warm instances. Here the
pool holds moto `InstanceState`s of its own, outside the group's `instance_states`,
so nothing of moto's that walks a group's instances (capacity, load balancers,
DescribeAutoScalingGroups' `Instances`) ever sees them: AWS lists warm instances
only in DescribeWarmPool.

Sources: the API reference of PutWarmPool, DescribeWarmPool, DeleteWarmPool and
WarmPoolConfiguration, and the user guide pages on warm pools.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from .states import (
    WARM_COUNTED_STATES,
    WARMED_HIBERNATED,
    WARMED_RUNNING,
    WARMED_STOPPED,
)

PENDING_DELETE = "PendingDelete"

# Pool shrink takes ready instances before ones still being prepared, in this order
# (cheapest to lose first: a stopped instance costs nothing while it waits).
_SHRINK_ORDER = {WARMED_STOPPED: 0, WARMED_HIBERNATED: 1, WARMED_RUNNING: 2}


@dataclass
class WarmPool:
    """PutWarmPool's configuration plus the instances in the pool, in the order they
    entered it (the longest-waiting first)."""

    min_size: int = 0
    # None when unset or -1: the group's MaxSize is used instead.
    max_group_prepared_capacity: int | None = None
    pool_state: str = "Stopped"
    # InstanceReusePolicy as given (None when PutWarmPool had none, which AWS omits).
    instance_reuse_policy: dict[str, bool] | None = None
    status: str | None = None
    instances: list[Any] = field(default_factory=list)

    @property
    def reuse_on_scale_in(self) -> bool:
        return bool((self.instance_reuse_policy or {}).get("ReuseOnScaleIn"))

    @property
    def pending_delete(self) -> bool:
        return self.status == PENDING_DELETE

    def configuration(self) -> dict[str, Any]:
        """The WarmPoolConfiguration shape. AWS leaves out MaxGroupPreparedCapacity
        when unset (or -1), Status unless the pool is being deleted, and
        InstanceReusePolicy when none was given."""
        config: dict[str, Any] = {"MinSize": self.min_size, "PoolState": self.pool_state}
        if self.max_group_prepared_capacity is not None:
            config["MaxGroupPreparedCapacity"] = self.max_group_prepared_capacity
        if self.status:
            config["Status"] = self.status
        if self.instance_reuse_policy is not None:
            config["InstanceReusePolicy"] = dict(self.instance_reuse_policy)
        return config

    def find(self, instance_id: str) -> Any:
        return next((s for s in self.instances if s.instance.id == instance_id), None)

    def counted(self) -> list[Any]:
        """Instances that make up the pool's size: being prepared or ready."""
        return [s for s in self.instances if s.lifecycle_state in WARM_COUNTED_STATES]


def pool_of(group: Any) -> WarmPool | None:
    """The group's warm pool, if it has one (moto's own FakeWarmPool never gets here:
    the extension answers PutWarmPool itself)."""
    pool = getattr(group, "warm_pool", None)
    return pool if isinstance(pool, WarmPool) else None


def target_size(group: Any, pool: WarmPool) -> int:
    """How many instances the pool should hold.

    PutWarmPool: the pool keeps the difference between MaxGroupPreparedCapacity (the
    group's MaxSize when unset) and the desired capacity, but never less than MinSize
    (and never negative). A pool being deleted keeps none.
    """
    if pool.pending_delete:
        return 0
    prepared = pool.max_group_prepared_capacity
    if prepared is None:
        prepared = group.max_size or 0
    return max(pool.min_size, prepared - (group.desired_capacity or 0), 0)


def shrink_victims(pool: WarmPool, count: int) -> list[Any]:
    """Up to `count` counted instances to remove: ready ones first (Stopped, then
    Hibernated, then Running), then those still being prepared; within each, the
    one that entered the pool first."""
    counted = pool.counted()
    ranked = sorted(
        enumerate(counted), key=lambda item: (_SHRINK_ORDER.get(item[1].lifecycle_state, 3), item[0])
    )
    return [state for _, state in ranked[:count]]


def instance_json(state: Any) -> dict[str, Any]:
    """One entry of DescribeWarmPool's `Instances`, like DescribeAutoScalingGroups'
    instances but without ProtectedFromScaleIn (scale-in protection does not apply
    in the pool, and AWS leaves it out there)."""
    entry: dict[str, Any] = {
        "InstanceId": state.instance.id,
        "InstanceType": state.instance_type,
        "AvailabilityZone": state.availability_zone,
        "LifecycleState": state.lifecycle_state,
        "HealthStatus": state.health_status,
    }
    launch_template = state.launch_template
    if launch_template is not None:
        entry["LaunchTemplate"] = launch_template
    else:
        # moto's InstanceState.launch_configuration_name raises for a group that
        # never had a launch configuration: ask the group directly.
        name = getattr(state.auto_scaling_group, "launch_configuration_name", None)
        if name:
            entry["LaunchConfigurationName"] = name
    return entry
