"""Names EC2 Auto Scaling uses for instance lifecycle states and transitions.

Source: the `LifecycleState` enum of the Auto Scaling API and the user guide page
"Amazon EC2 Auto Scaling instance lifecycle".
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

# States whose instances count toward desired capacity. Instances on their way out
# (Terminating:*, including Retained) and Standby instances do not: AWS launches a
# replacement when the remaining ones fall below the desired capacity.
IN_CAPACITY_STATES = frozenset({PENDING, PENDING_WAIT, PENDING_PROCEED, IN_SERVICE})
TERMINATING_STATES = frozenset({TERMINATING, TERMINATING_WAIT, TERMINATING_PROCEED, TERMINATING_RETAINED})

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
