"""The lifecycle engine: wait states, lifecycle actions, retention and timers.

What it mirrors (Amazon EC2 Auto Scaling user guide: "How lifecycle hooks work",
"Complete a lifecycle action", "Control instance retention with instance lifecycle
policies"; API reference: CompleteLifecycleAction, RecordLifecycleActionHeartbeat,
PutLifecycleHook, RetentionTriggers):

* A launched instance is `Pending` (for the configured boot delay), then enters
  `Pending:Wait` if the group has EC2_INSTANCE_LAUNCHING hooks, else `InService`.
  CONTINUE puts it in service (`Pending:Proceed` is instantaneous here); ABANDON
  terminates it and the group launches a replacement.
* An instance the group removes enters `Terminating:Wait` if the group has
  EC2_INSTANCE_TERMINATING hooks, and keeps running until the action ends. CONTINUE
  and ABANDON both terminate it (`Terminating:Proceed`, then gone) unless the group's
  instance lifecycle policy says TerminateHookAbandon=retain: then ABANDON moves it to
  `Terminating:Retained`, where it stays, running and outside desired capacity,
  until TerminateInstanceInAutoScalingGroup is called on it.
* With several hooks on one transition, each opens its own action (own token). The
  instance proceeds when all have ended; ABANDON on any ends the others at once
  ("ABANDON stops any remaining actions, such as other lifecycle hooks").
* An action ends by itself at its heartbeat timeout (restarted by
  RecordLifecycleActionHeartbeat) or at the global timeout, min(48 h, 100 x
  HeartbeatTimeout) after it started, whichever comes first, with the hook's
  DefaultResult.
* Entering a wait state emits the EventBridge lifecycle event, delivered
  asynchronously to the account's configured URL.

All methods run with the account's lock held (see `account.AccountState.lock`).
"""

from __future__ import annotations

import logging
import math
import uuid
from typing import Any

from moto.autoscaling.exceptions import ValidationError
from moto.autoscaling.models import autoscaling_backends

from . import clock, events
from .account import AccountState, Registry
from .actions import LifecycleAction, PendingBoot
from .delivery import Deliverer
from .states import (
    ABANDON,
    CONTINUE,
    IN_SERVICE,
    LAUNCHING,
    PENDING,
    PENDING_WAIT,
    RESULTS,
    RETAIN,
    TERMINATING_PROCEED,
    TERMINATING_RETAINED,
    TERMINATING_STATES,
    TERMINATING_TRANSITION,
    TERMINATING_WAIT,
)

LOG = logging.getLogger("testbed.lifecycle")

# A clock jump far past many short timers could chain launch-abandon-replace cycles
# without end; one pass stops after this many timers (the next pass goes on).
MAX_TIMERS_PER_PASS = 10_000


def no_active_action(token: str | None, instance_id: str | None) -> ValidationError:
    """AWS's answer to CompleteLifecycleAction/RecordLifecycleActionHeartbeat when
    nothing matches (including an action that already ended)."""
    if token:
        return ValidationError(f"No active Lifecycle Action found with token {token}")
    return ValidationError(f"No active Lifecycle Action found with instance ID {instance_id}")


def retains_on_abandon(group: Any) -> bool:
    """Whether the group's instance lifecycle policy retains abandoned terminations."""
    policy = getattr(group, "instance_lifecycle_policy", None) or {}
    triggers = policy.get("RetentionTriggers") or {}
    return triggers.get("TerminateHookAbandon") == RETAIN


class LifecycleEngine:
    def __init__(self, registry: Registry, deliverer: Deliverer) -> None:
        self._registry = registry
        self._deliverer = deliverer

    def account_of(self, group: Any) -> AccountState:
        return self._registry.get(group.account_id)

    # --- hooks ----------------------------------------------------------------
    @staticmethod
    def hooks(group: Any, transition: str) -> list[Any]:
        hooks = [
            hook
            for hook in group.autoscaling_backend.lifecycle_hooks.values()
            if hook.auto_scaling_group_name == group.name and hook.lifecycle_transition == transition
        ]
        return sorted(hooks, key=lambda hook: hook.name)

    # --- launch ---------------------------------------------------------------
    def on_launched(self, group: Any, states: list[Any]) -> None:
        """New instances start `Pending`; after the boot delay they move on."""
        account = self.account_of(group)
        at = account.now()
        delay = account.config.boot_delay_s
        for state in states:
            state.lifecycle_state = PENDING
            if delay > 0:
                account.boots[state.instance.id] = PendingBoot(
                    region=group.region,
                    group_name=group.name,
                    instance_id=state.instance.id,
                    due=at + delay,
                )
            else:
                self._after_boot(account, group, state, at)

    def _after_boot(self, account: AccountState, group: Any, state: Any, at: float) -> None:
        hooks = self.hooks(group, LAUNCHING)
        if hooks:
            state.lifecycle_state = PENDING_WAIT
            self._open_actions(account, group, state, hooks, LAUNCHING, at)
        else:
            state.lifecycle_state = IN_SERVICE
            self._refresh_load_balancers(group)

    # --- termination ----------------------------------------------------------
    def begin_termination(self, group: Any, state: Any) -> None:
        """The group removes this instance: through the terminate hooks if any."""
        if state.lifecycle_state in TERMINATING_STATES:
            return
        account = self.account_of(group)
        account.drop_instance(state.instance.id)  # ends a launch still in progress
        hooks = self.hooks(group, TERMINATING_TRANSITION)
        if not hooks:
            self.terminate_now(group, state)
            return
        state.lifecycle_state = TERMINATING_WAIT
        self._refresh_load_balancers(group)
        self._open_actions(account, group, state, hooks, TERMINATING_TRANSITION, account.now())

    def terminate_now(self, group: Any, state: Any) -> None:
        """Terminating:Proceed: terminate the EC2 instance and drop it from the group."""
        self.account_of(group).drop_instance(state.instance.id)
        state.lifecycle_state = TERMINATING_PROCEED
        group.instance_states = [s for s in group.instance_states if s is not state]
        try:
            group.autoscaling_backend.ec2_backend.terminate_instances([state.instance.id])
        except Exception:  # e.g. DisableApiTermination; the group lets it go anyway
            LOG.exception("EC2 refused to terminate %s", state.instance.id)
        self._refresh_load_balancers(group)

    def forget_group(self, group: Any) -> None:
        """DeleteAutoScalingGroup: like ForceDelete, terminate every instance at once
        and drop outstanding lifecycle actions; no hooks run."""
        account = self.account_of(group)
        for state in list(group.instance_states):
            account.drop_instance(state.instance.id)
        ids = [s.instance.id for s in group.instance_states]
        group.instance_states = []
        if ids:
            try:
                group.autoscaling_backend.ec2_backend.terminate_instances(ids)
            except Exception:
                LOG.exception("EC2 refused to terminate %s", ids)

    # --- lifecycle actions ----------------------------------------------------
    def _open_actions(
        self,
        account: AccountState,
        group: Any,
        state: Any,
        hooks: list[Any],
        transition: str,
        at: float,
    ) -> None:
        for hook in hooks:
            action = LifecycleAction.open(
                token=str(uuid.uuid4()),
                region=group.region,
                group_name=group.name,
                hook_name=hook.name,
                instance_id=state.instance.id,
                transition=transition,
                default_result=hook.default_result,
                heartbeat_timeout_s=float(hook.heartbeat_timeout),
                at=at,
            )
            account.actions[action.token] = action
            event = events.lifecycle_event(
                account_id=account.account_id,
                group_arn=group.arn,
                action=action,
                notification_metadata=getattr(hook, "notification_metadata", None),
            )
            LOG.info(
                "%s %s: %s (hook %s, token %s)",
                group.name,
                state.instance.id,
                state.lifecycle_state,
                hook.name,
                action.token,
            )
            self._emit(account, "lifecycle", event, account.config.lifecycle_event_url)

    @staticmethod
    def find_action(
        account: AccountState,
        region: str,
        group_name: str,
        hook_name: str,
        token: str | None,
        instance_id: str | None,
    ) -> LifecycleAction:
        """The active action a Complete/Heartbeat call names: by token when given,
        else by instance id; it must belong to the named group and hook."""
        if token:
            action = account.actions.get(token)
            if (
                action is not None
                and action.region == region
                and action.matches(group_name, hook_name)
                and (not instance_id or action.instance_id == instance_id)
            ):
                return action
            raise no_active_action(token, None)
        if instance_id:
            for action in account.actions_for(instance_id):
                if action.region == region and action.matches(group_name, hook_name):
                    return action
        raise no_active_action(None, instance_id)

    def complete(
        self,
        account: AccountState,
        *,
        region: str,
        group_name: str,
        hook_name: str,
        token: str | None,
        instance_id: str | None,
        result: str,
    ) -> None:
        """CompleteLifecycleAction."""
        if result not in RESULTS:
            raise ValidationError(
                f"Invalid LifecycleActionResult {result!r}: valid values are CONTINUE and ABANDON."
            )
        self.process_due(account)  # an action past its timeout is no longer active
        action = self.find_action(account, region, group_name, hook_name, token, instance_id)
        LOG.info("%s %s: %s by CompleteLifecycleAction", group_name, action.instance_id, result)
        self._resolve(account, action, result)

    def heartbeat(
        self,
        account: AccountState,
        *,
        region: str,
        group_name: str,
        hook_name: str,
        token: str | None,
        instance_id: str | None,
    ) -> None:
        """RecordLifecycleActionHeartbeat."""
        self.process_due(account)
        action = self.find_action(account, region, group_name, hook_name, token, instance_id)
        action.record_heartbeat(account.now())

    def on_hook_deleted(self, account: AccountState, region: str, group_name: str, hook_name: str) -> None:
        """DeleteLifecycleHook: "If there are any outstanding lifecycle actions, they
        are completed first (ABANDON for launching instances, CONTINUE for
        terminating instances)." """
        for action in list(account.actions.values()):
            if action.region == region and action.matches(group_name, hook_name):
                result = ABANDON if action.transition == LAUNCHING else CONTINUE
                self._resolve(account, action, result)

    def _resolve(self, account: AccountState, action: LifecycleAction, result: str) -> None:
        account.actions.pop(action.token, None)
        group, state = self._locate(account, action.region, action.group_name, action.instance_id)
        if group is None or state is None:
            return  # the instance already left the group some other way
        others = account.actions_for(action.instance_id, action.transition)
        if action.transition == LAUNCHING:
            if state.lifecycle_state != PENDING_WAIT:
                return
            if result == ABANDON:
                self._cancel(account, others)
                self.terminate_now(group, state)
                group.set_desired_capacity(group.desired_capacity)  # a replacement
            elif not others:
                state.lifecycle_state = IN_SERVICE
                self._refresh_load_balancers(group)
            return

        if state.lifecycle_state != TERMINATING_WAIT:
            return
        if result == ABANDON:
            self._cancel(account, others)
            if retains_on_abandon(group):
                state.lifecycle_state = TERMINATING_RETAINED
                LOG.info("%s %s: retained", group.name, state.instance.id)
            else:
                self.terminate_now(group, state)
        elif not others:
            self.terminate_now(group, state)

    @staticmethod
    def _cancel(account: AccountState, actions: list[LifecycleAction]) -> None:
        for action in actions:
            account.actions.pop(action.token, None)

    # --- timers ---------------------------------------------------------------
    def process_due(self, account: AccountState) -> int:
        """Run every timer of this account that is due, in the order they fell due,
        each at the instant it fell due. Returns how many ran."""
        now = account.clock.now()
        processed = 0
        while processed < MAX_TIMERS_PER_PASS:
            action = min(account.actions.values(), key=lambda a: a.due, default=None)
            boot = min(account.boots.values(), key=lambda b: b.due, default=None)
            if action is not None and action.due <= now and (boot is None or action.due <= boot.due):
                with account.processing_at(action.due):
                    LOG.info(
                        "%s %s: %s, %s",
                        action.group_name,
                        action.instance_id,
                        action.expiry_reason,
                        action.default_result,
                    )
                    self._resolve(account, action, action.default_result)
            elif boot is not None and boot.due <= now:
                with account.processing_at(boot.due):
                    self._finish_boot(account, boot)
            else:
                break
            processed += 1
        else:
            LOG.warning("account %s: timer pass stopped after %d timers", account.account_id, processed)
        return processed + self._fire_schedule(account, now)

    def _finish_boot(self, account: AccountState, boot: PendingBoot) -> None:
        account.boots.pop(boot.instance_id, None)
        group, state = self._locate(account, boot.region, boot.group_name, boot.instance_id)
        if group is not None and state is not None and state.lifecycle_state == PENDING:
            self._after_boot(account, group, state, boot.due)

    # --- schedule -------------------------------------------------------------
    @staticmethod
    def rearm_schedule(account: AccountState) -> None:
        """(Re)start the schedule: the first event one period from now, like a new
        rate() rule."""
        config = account.config
        if config.schedule_url and config.schedule_period_s:
            account.schedule_next = account.clock.now() + config.schedule_period_s
        else:
            account.schedule_next = None

    def _fire_schedule(self, account: AccountState, now: float) -> int:
        """Fire the scheduled event if due. Periods missed because the clock jumped
        are coalesced into one event, stamped with the latest boundary passed: a jump
        of five periods fires once, not five times (EventBridge would have fired at
        each boundary in real time; the test bed keeps one clock jump = at most one
        tick of the function under test, which keeps tests deterministic)."""
        config = account.config
        next_at = account.schedule_next
        if next_at is None or now < next_at or not config.schedule_url or not config.schedule_period_s:
            return 0
        period = config.schedule_period_s
        fire_at = next_at + math.floor((now - next_at) / period) * period
        account.schedule_next = fire_at + period
        event = events.scheduled_event(
            account_id=account.account_id,
            region=config.schedule_region,
            rule_name=config.schedule_rule_name,
            at=fire_at,
        )
        self._emit(account, "scheduled", event, config.schedule_url)
        return 1

    # --- helpers --------------------------------------------------------------
    def _emit(self, account: AccountState, kind: str, event: dict[str, Any], url: str | None) -> None:
        account.log_event(
            {
                "id": event["id"],
                "kind": kind,
                "url": url,
                "emitted_at": clock.iso_millis(account.now()),
                "event": event,
            }
        )
        if url:
            self._deliverer.submit(account, url, event["id"], kind, event)

    @staticmethod
    def _locate(account: AccountState, region: str, group_name: str, instance_id: str) -> tuple[Any, Any]:
        backend = autoscaling_backends[account.account_id][region]
        group = backend.autoscaling_groups.get(group_name)
        if group is None:
            return None, None
        state = next((s for s in group.instance_states if s.instance.id == instance_id), None)
        return group, state

    @staticmethod
    def _refresh_load_balancers(group: Any) -> None:
        backend = group.autoscaling_backend
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
