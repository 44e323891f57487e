"""Names EC2 Auto Scaling uses for instance lifecycle states and transitions.

Source: the `LifecycleState` enum of the Auto Scaling API and the user guide pages
"Amazon EC2 Auto Scaling instance lifecycle" and "Use lifecycle hooks with a warm pool".
"""

from __future__ import annotations

PENDING = "Pending"
PENDING_WAIT = "Pending:Wait"
PENDING_PROCEED = "Pending:Proceed"
IN_SERVICE = "InService"
TERMINATING = "Terminating"
TERMINATING_WAIT = "Terminating:Wait"
TERMINATING_PROCEED = "Terminating:Proceed"
TERMINATING_RETAINED = "Terminating:Retained"
STANDBY = "Standby"

# Instances in a warm pool have their own lifecycle, every state prefixed "Warmed:".
WARMED_PENDING = "Warmed:Pending"
WARMED_PENDING_WAIT = "Warmed:Pending:Wait"
WARMED_PENDING_PROCEED = "Warmed:Pending:Proceed"
WARMED_PENDING_RETAINED = "Warmed:Pending:Retained"
WARMED_TERMINATING = "Warmed:Terminating"
WARMED_TERMINATING_WAIT = "Warmed:Terminating:Wait"
WARMED_TERMINATING_PROCEED = "Warmed:Terminating:Proceed"
WARMED_TERMINATING_RETAINED = "Warmed:Terminating:Retained"
WARMED_TERMINATED = "Warmed:Terminated"
WARMED_STOPPED = "Warmed:Stopped"
WARMED_RUNNING = "Warmed:Running"
WARMED_HIBERNATED = "Warmed:Hibernated"

# States whose instances count toward desired capacity. Instances on their way out
# (Terminating:*, including Retained) and Standby instances do not: AWS launches a
# replacement when the remaining ones fall below the desired capacity.
IN_CAPACITY_STATES = frozenset({PENDING, PENDING_WAIT, PENDING_PROCEED, IN_SERVICE})
TERMINATING_STATES = frozenset({TERMINATING, TERMINATING_WAIT, TERMINATING_PROCEED, TERMINATING_RETAINED})

# PutWarmPool PoolState -> the state a warmed instance settles in. Only these ready
# states can be drawn into the group on scale-out.
POOL_STATES = {"Stopped": WARMED_STOPPED, "Running": WARMED_RUNNING, "Hibernated": WARMED_HIBERNATED}
WARMED_READY_STATES = frozenset(POOL_STATES.values())
# Warm instances that count toward the warm pool's size: being prepared or ready.
# Retained ones (either kind) and those on their way out do not, so the pool refills.
WARM_COUNTED_STATES = frozenset(
    {WARMED_PENDING, WARMED_PENDING_WAIT, WARMED_PENDING_PROCEED} | WARMED_READY_STATES
)
WARM_TERMINATING_STATES = frozenset(
    {WARMED_TERMINATING, WARMED_TERMINATING_WAIT, WARMED_TERMINATING_PROCEED, WARMED_TERMINATING_RETAINED}
)

# The Origin and Destination of lifecycle events ("Warm pool example events").
EC2 = "EC2"
GROUP = "AutoScalingGroup"
WARM_POOL = "WarmPool"

LAUNCHING = "autoscaling:EC2_INSTANCE_LAUNCHING"
TERMINATING_TRANSITION = "autoscaling:EC2_INSTANCE_TERMINATING"

CONTINUE = "CONTINUE"
ABANDON = "ABANDON"
RESULTS = (CONTINUE, ABANDON)

# PutLifecycleHook: "The maximum amount of time that you can keep an instance in a
# wait state is 48 hours or 100 times the heartbeat timeout, whichever is smaller."
GLOBAL_TIMEOUT_CAP_S = 48 * 3600
GLOBAL_TIMEOUT_FACTOR = 100

# InstanceLifecyclePolicy.RetentionTriggers.TerminateHookAbandon values.
RETAIN = "retain"
TERMINATE = "terminate"


def global_timeout_s(heartbeat_timeout_s: float) -> float:
    """The hard cap on how long one lifecycle action may hold an instance."""
    return min(GLOBAL_TIMEOUT_CAP_S, GLOBAL_TIMEOUT_FACTOR * heartbeat_timeout_s)
