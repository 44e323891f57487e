"""The EventBridge payloads the test bed delivers, built as AWS sends them.

Shapes: "EC2 Instance-launch/terminate Lifecycle Action" from the user guide page
"Amazon EC2 Auto Scaling event reference" (current shape, with Origin and
Destination; their warm pool values from "Warm pool example events"), and the
"Scheduled Event" of an EventBridge scheduled rule.
"""

from __future__ import annotations

import uuid
from typing import Any

from . import clock
from .actions import LifecycleAction
from .states import LAUNCHING

LAUNCH_DETAIL_TYPE = "EC2 Instance-launch Lifecycle Action"
TERMINATE_DETAIL_TYPE = "EC2 Instance-terminate Lifecycle Action"


def lifecycle_event(
    *,
    account_id: str,
    group_arn: str,
    action: LifecycleAction,
    notification_metadata: str | None,
) -> dict[str, Any]:
    """The event for an instance entering a wait state.

    Origin/Destination come from the action ("Warm pool example events"): a plain
    launch goes from EC2 to the AutoScalingGroup (Pending:Wait), a launch into the
    warm pool from EC2 to the WarmPool (Warmed:Pending:Wait), a start from the warm
    pool from the WarmPool to the AutoScalingGroup (Pending:Wait); a termination goes
    from the AutoScalingGroup to EC2 (Terminating:Wait), a scale-in return from the
    AutoScalingGroup to the WarmPool (Warmed:Pending:Wait, terminate hook), and a
    warm instance's termination from the WarmPool to EC2 (Warmed:Terminating:Wait).
    """
    launching = action.transition == LAUNCHING
    detail: dict[str, Any] = {
        "LifecycleActionToken": action.token,
        "AutoScalingGroupName": action.group_name,
        "LifecycleHookName": action.hook_name,
        "EC2InstanceId": action.instance_id,
        "LifecycleTransition": action.transition,
    }
    if notification_metadata:
        detail["NotificationMetadata"] = notification_metadata
    detail["Origin"] = action.origin
    detail["Destination"] = action.destination
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": LAUNCH_DETAIL_TYPE if launching else TERMINATE_DETAIL_TYPE,
        "source": "aws.autoscaling",
        "account": account_id,
        "time": clock.iso_seconds(action.started_at),
        "region": action.region,
        "resources": [group_arn],
        "detail": detail,
    }


def scheduled_event(*, account_id: str, region: str, rule_name: str, at: float) -> dict[str, Any]:
    """What a scheduled EventBridge rule sends its target (not EventBridge
    Scheduler, which sends only the schedule's Input)."""
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": "aws.events",
        "account": account_id,
        "time": clock.iso_seconds(at),
        "region": region,
        "resources": [f"arn:aws:events:{region}:{account_id}:rule/{rule_name}"],
        "detail": {},
    }
