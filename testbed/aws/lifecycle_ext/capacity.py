"""Desired-capacity reconciliation for an Auto Scaling group.

Takes the place of moto's `FakeAutoScalingGroup.set_desired_capacity`, which counts
only InService instances and removes the first unprotected instance outright. Here:

* Instances count toward desired capacity while Pending, Pending:Wait,
  Pending:Proceed or InService. Instances in any Terminating state (Wait, Proceed,
  Retained) or in Standby do not, so a group below its desired capacity launches
  replacements at once, even while the instances it replaces are still held by a
  terminate hook. This is AWS's default "terminate and launch" replacement
  behaviour (no instance maintenance policy), and the documented rule for retained
  instances ("Retained instances don't count toward desired capacity").
* Scale-in never picks an instance protected from scale in, and sends each victim
  through the terminate lifecycle hooks (Terminating:Wait) when the group has any.
* Victims follow the first step of AWS's default termination policy (the
  Availability Zone with the most instances that has an unprotected one); among
  those the oldest instance goes first. AWS would next prefer the oldest launch
  template/configuration, then the instance closest to the next billing hour, then
  a random one: the test bed is deterministic instead.
* With a warm pool, scale-out draws ready warm instances first and launches the
  rest cold; scale-in victims may return to the pool (instance reuse policy); and
  the pool is brought to its size afterwards, since its size depends on the
  desired capacity (see `warm_pool.target_size`).
"""

from __future__ import annotations

import math
from collections import Counter
from typing import TYPE_CHECKING, Any

from .states import IN_CAPACITY_STATES

if TYPE_CHECKING:
    from .engine import LifecycleEngine


def counted_instances(group: Any) -> list[Any]:
    """The group's instances that count toward its desired capacity, oldest first."""
    return [s for s in group.instance_states if s.lifecycle_state in IN_CAPACITY_STATES]


def target_instance_count(group: Any) -> int:
    """How many instances the desired capacity asks for.

    For a mixed instances policy this is moto 5.2.5's arithmetic, unchanged
    (the "prioritized" strategy: every instance has the first override's weight).
    """
    target_capacity = group.desired_capacity or 0
    policy = group.mixed_instances_policy or {}
    overrides = policy.get("LaunchTemplate", {}).get("Overrides", []) if policy else []
    if not overrides:
        return target_capacity

    distribution = policy.get("InstancesDistribution", {})
    on_demand_base = int(distribution.get("OnDemandBaseCapacity", 0))
    percent_above_base = int(distribution.get("OnDemandPercentageAboveBaseCapacity", 100))
    weight_text = overrides[0].get("WeightedCapacity", "1")
    weight = int(weight_text) if weight_text.isdigit() else 1
    weight = weight or 1

    if on_demand_base >= target_capacity:
        on_demand_capacity, spot_capacity = target_capacity, 0
    else:
        above_base = target_capacity - on_demand_base
        on_demand_above_base = int(above_base * percent_above_base) / 100.0
        spot_capacity = int(above_base - on_demand_above_base)
        on_demand_capacity = int(on_demand_base + on_demand_above_base)
    return math.ceil(on_demand_capacity / weight) + math.ceil(spot_capacity / weight)


def choose_scale_in_victims(counted: list[Any], count: int) -> list[Any]:
    """Up to `count` unprotected instances to remove, AZ-balanced, oldest first."""
    remaining = list(counted)
    victims: list[Any] = []
    while len(victims) < count:
        candidates = [s for s in remaining if not s.protected_from_scale_in]
        if not candidates:
            break  # everything left is protected: the group stays above desired
        per_zone = Counter(s.availability_zone for s in remaining)
        eligible_zones = {s.availability_zone for s in candidates}
        busiest = max(eligible_zones, key=lambda zone: (per_zone[zone], zone))
        victim = next(s for s in candidates if s.availability_zone == busiest)
        victims.append(victim)
        remaining.remove(victim)
    return victims


def reconcile(group: Any, new_capacity: int | None, engine: LifecycleEngine) -> None:
    """Set the desired capacity and launch or retire instances to meet it."""
    group.desired_capacity = group.min_size if new_capacity is None else new_capacity
    counted = counted_instances(group)
    delta = target_instance_count(group) - len(counted)
    if delta > 0:
        # Launches go through the patched replace_autoscaling_group_instances,
        # which hands the new instances to the engine (Pending, launch hooks).
        cold = delta - engine.take_from_warm_pool(group, delta)
        if cold > 0:
            group.replace_autoscaling_group_instances(cold, group.get_propagated_tags())
    elif delta < 0:
        for victim in choose_scale_in_victims(counted, -delta):
            engine.scale_in(group, victim)
    engine.reconcile_warm_pool(group)

    backend = group.autoscaling_backend
    if group.name in backend.autoscaling_groups:
        backend.update_attached_elbs(group.name)
        backend.update_attached_target_groups(group.name)
