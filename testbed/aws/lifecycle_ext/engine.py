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

Warm pools ("Use lifecycle hooks with a warm pool", PutWarmPool, DeleteWarmPool):

* The pool is kept at its size (`warm_pool.target_size`) whenever the group's
  capacity is reconciled, after every Auto Scaling call and after every timer pass:
  too few -> launch into the pool, too many -> remove from it.
* Launch into the pool: `Warmed:Pending` (boot delay), then `Warmed:Pending:Wait`
  with launch hooks (Origin EC2, Destination WarmPool), then the pool state
  (`Warmed:Stopped` stops the EC2 instance; `Warmed:Pending:Proceed` is
  instantaneous). ABANDON terminates it and the pool launches another.
* Scale-out takes ready warm instances first: `Pending` (EC2 started, for the warm
  start delay), `Pending:Wait` with launch hooks (Origin WarmPool, Destination
  AutoScalingGroup), `InService`. Cold launches cover the rest.
* Scale-in with ReuseOnScaleIn returns an InService victim to the pool while the
  pool has room: `Warmed:Pending`, then `Warmed:Pending:Wait` held by the
  *terminate* hooks (Origin AutoScalingGroup, Destination WarmPool), as the user
  guide says, then the pool state. CONTINUE and ABANDON both return it; with
  TerminateHookAbandon=retain, ABANDON leaves it in `Warmed:Pending:Retained`.
* A warm instance removed from the pool: `Warmed:Terminating:Wait` with terminate
  hooks (Origin WarmPool, Destination EC2), then `Warmed:Terminated` (gone at once);
  retention gives `Warmed:Terminating:Retained`.

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
    EC2,
    GROUP,
    IN_SERVICE,
    LAUNCHING,
    PENDING,
    PENDING_WAIT,
    POOL_STATES,
    RESULTS,
    RETAIN,
    TERMINATING_PROCEED,
    TERMINATING_RETAINED,
    TERMINATING_STATES,
    TERMINATING_TRANSITION,
    TERMINATING_WAIT,
    WARM_POOL,
    WARM_TERMINATING_STATES,
    WARMED_PENDING,
    WARMED_PENDING_PROCEED,
    WARMED_PENDING_RETAINED,
    WARMED_PENDING_WAIT,
    WARMED_READY_STATES,
    WARMED_RUNNING,
    WARMED_STOPPED,
    WARMED_TERMINATED,
    WARMED_TERMINATING,
    WARMED_TERMINATING_RETAINED,
    WARMED_TERMINATING_WAIT,
)
from .warm_pool import PENDING_DELETE, WarmPool, pool_of, shrink_victims, target_size

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


def _groups_with_warm_pools(account_id: str) -> list[Any]:
    """The account's groups that have a warm pool, in every region it has used.
    Plain dict access: looking an account or region up through moto's BackendDict
    would create its backends."""
    per_account = dict.get(autoscaling_backends, account_id)
    if not per_account:
        return []
    return [
        group
        for backend in list(dict.values(per_account))
        for group in list(backend.autoscaling_groups.values())
        if pool_of(group) is not None
    ]



def asg_terminate(ec2_backend: Any, instance_ids: list[str]) -> None:
    """A termination Auto Scaling starts. EC2 termination protection (DisableApiTermination)
    does not stop it: "Enabling termination protection does not prevent Amazon EC2 Auto
    Scaling from terminating an instance when the instance is unhealthy or during scale-in
    events" (EC2 User Guide, "Change instance termination protection"). moto's
    terminate_instances refuses a protected instance whoever asks, so the attribute is
    cleared first on the instances Auto Scaling is terminating anyway."""
    for instance in ec2_backend.get_multi_instances_by_id(instance_ids):
        instance.disable_api_termination = False
    ec2_backend.terminate_instances(instance_ids)

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

    def _after_boot(self, account: AccountState, group: Any, state: Any, at: float, origin: str = EC2) -> None:
        hooks = self.hooks(group, LAUNCHING)
        if hooks:
            state.lifecycle_state = PENDING_WAIT
            self._open_actions(account, group, state, hooks, LAUNCHING, at, origin=origin, destination=GROUP)
        else:
            state.lifecycle_state = IN_SERVICE
            self._refresh_load_balancers(group)

    # --- termination ----------------------------------------------------------
    def scale_in(self, group: Any, state: Any) -> None:
        """A scale-in victim: back to the warm pool when the pool's instance reuse
        policy allows it and the pool has room, else terminated (through hooks).

        Only InService victims are reused; an instance still launching is
        terminated as before."""
        pool = pool_of(group)
        if (
            pool is not None
            and pool.reuse_on_scale_in
            and not pool.pending_delete
            and state.lifecycle_state == IN_SERVICE
            and len(pool.counted()) < target_size(group, pool)
        ):
            self._return_to_pool(group, pool, state)
        else:
            self.begin_termination(group, state)

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
            asg_terminate(group.autoscaling_backend.ec2_backend, [state.instance.id])
        except Exception:
            LOG.exception("EC2 refused to terminate %s", state.instance.id)
        self._refresh_load_balancers(group)

    def forget_group(self, group: Any) -> None:
        """DeleteAutoScalingGroup: like ForceDelete, terminate every instance (warm
        pool included) at once and drop outstanding lifecycle actions; no hooks run."""
        account = self.account_of(group)
        pool = pool_of(group)
        warm = list(pool.instances) if pool is not None else []
        for state in [*group.instance_states, *warm]:
            account.drop_instance(state.instance.id)
        ids = [s.instance.id for s in [*group.instance_states, *warm]]
        group.instance_states = []
        group.warm_pool = None
        if ids:
            try:
                asg_terminate(group.autoscaling_backend.ec2_backend, ids)
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
        *,
        origin: str | None = None,
        destination: str | None = None,
    ) -> None:
        """One action per hook. Origin/Destination default to a plain launch (EC2 ->
        AutoScalingGroup) or termination (AutoScalingGroup -> EC2)."""
        launching = transition == LAUNCHING
        origin = origin or (EC2 if launching else GROUP)
        destination = destination or (GROUP if launching else EC2)
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
                origin=origin,
                destination=destination,
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
        current = state.lifecycle_state
        if action.transition == LAUNCHING:
            if current == PENDING_WAIT:
                self._end_launch_wait(account, group, state, result, others)
            elif current == WARMED_PENDING_WAIT:
                self._end_warm_launch_wait(account, group, state, result, others)
        elif current == TERMINATING_WAIT:
            self._end_terminate_wait(account, group, state, result, others)
        elif current == WARMED_PENDING_WAIT:
            self._end_return_wait(account, group, state, result, others)
        elif current == WARMED_TERMINATING_WAIT:
            self._end_warm_terminate_wait(account, group, state, result, others)

    def _end_launch_wait(
        self, account: AccountState, group: Any, state: Any, result: str, others: list[LifecycleAction]
    ) -> None:
        """Pending:Wait ends: ABANDON terminates and replaces, CONTINUE (all hooks)
        puts the instance in service."""
        if result == ABANDON:
            self._cancel(account, others)
            self.terminate_now(group, state)
            group.set_desired_capacity(group.desired_capacity)  # a replacement
        elif not others:
            state.lifecycle_state = IN_SERVICE
            self._refresh_load_balancers(group)

    def _end_terminate_wait(
        self, account: AccountState, group: Any, state: Any, result: str, others: list[LifecycleAction]
    ) -> None:
        """Terminating:Wait ends: terminated, or retained on ABANDON with retain."""
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

    # --- warm pools -------------------------------------------------------------
    def put_warm_pool(self, group: Any, pool: WarmPool) -> None:
        """PutWarmPool: the new configuration replaces the old one (omitted
        parameters take their defaults); the instances already in the pool stay, in
        the state they are in. A pool pending deletion is live again."""
        previous = pool_of(group)
        if previous is not None:
            pool.instances = previous.instances
        group.warm_pool = pool
        self.reconcile_warm_pool(group)

    def delete_warm_pool(self, group: Any, force: bool) -> None:
        """DeleteWarmPool. ForceDelete terminates the warm instances at once and drops
        their lifecycle actions; otherwise the pool is PendingDelete while its
        instances leave through the terminate hooks, and goes when the last has."""
        pool = pool_of(group)
        if pool is None:
            return
        if not force:
            pool.status = PENDING_DELETE
            self.reconcile_warm_pool(group)
            return
        account = self.account_of(group)
        ids = [state.instance.id for state in pool.instances]
        for state in pool.instances:
            account.drop_instance(state.instance.id)
            state.lifecycle_state = WARMED_TERMINATED
        pool.instances = []
        group.warm_pool = None
        if ids:
            self._ec2(group, "terminate_instances", ids)

    def reconcile_warm_pool(self, group: Any) -> None:
        """Bring the pool to its size: launch into it or remove from it. A pool
        pending deletion also sends its retained-on-return instances away, and is
        gone once empty."""
        pool = pool_of(group)
        if pool is None:
            return
        counted = len(pool.counted())
        target = target_size(group, pool)
        if counted < target:
            self._launch_into_pool(group, pool, target - counted)
        elif counted > target:
            for victim in shrink_victims(pool, counted - target):
                self.begin_warm_termination(group, victim)
        if pool.pending_delete:
            for state in [s for s in pool.instances if s.lifecycle_state == WARMED_PENDING_RETAINED]:
                self.begin_warm_termination(group, state)
            if not pool.instances and pool_of(group) is pool:
                group.warm_pool = None
                LOG.info("%s: warm pool deleted", group.name)

    def reconcile_warm_pools(self, account: AccountState) -> None:
        """Every warm pool of the account, in every region it has used."""
        for group in _groups_with_warm_pools(account.account_id):
            self.reconcile_warm_pool(group)

    def take_from_warm_pool(self, group: Any, count: int) -> int:
        """Scale-out: move up to `count` ready warm instances (the longest-waiting
        first) into the group. Returns how many were taken; the caller launches the
        rest cold. Each restarts (`Pending` for the warm start delay), then meets the
        launch hooks like a cold launch, with Origin WarmPool."""
        pool = pool_of(group)
        if pool is None or pool.pending_delete or count <= 0:
            return 0
        ready = [s for s in pool.instances if s.lifecycle_state in WARMED_READY_STATES][:count]
        account = self.account_of(group)
        at = account.now()
        delay = account.config.warm_start_delay_s
        for state in ready:
            pool.instances.remove(state)
            self._ec2(group, "start_instances", [state.instance.id])
            # EC2's LaunchTime is the instance's last start (moto keeps the first).
            state.instance.launch_time = clock.to_datetime(at).replace(tzinfo=None)
            state.lifecycle_state = PENDING
            state.protected_from_scale_in = group.new_instances_protected_from_scale_in
            group.instance_states.append(state)
            LOG.info("%s %s: leaves the warm pool", group.name, state.instance.id)
            if delay > 0:
                account.boots[state.instance.id] = PendingBoot(
                    region=group.region,
                    group_name=group.name,
                    instance_id=state.instance.id,
                    due=at + delay,
                    origin=WARM_POOL,
                    destination=GROUP,
                )
            else:
                self._after_boot(account, group, state, at, origin=WARM_POOL)
        return len(ready)

    def _launch_into_pool(self, group: Any, pool: WarmPool, count: int) -> None:
        """New EC2 instances for the pool: `Warmed:Pending` for the boot delay."""
        account = self.account_of(group)
        at = account.now()
        delay = account.config.boot_delay_s
        for state in group.launch_into_warm_pool(count):
            state.lifecycle_state = WARMED_PENDING
            pool.instances.append(state)
            if delay > 0:
                account.boots[state.instance.id] = PendingBoot(
                    region=group.region,
                    group_name=group.name,
                    instance_id=state.instance.id,
                    due=at + delay,
                    origin=EC2,
                    destination=WARM_POOL,
                )
            else:
                self._after_warm_launch(account, group, state, at)

    def _after_warm_launch(self, account: AccountState, group: Any, state: Any, at: float) -> None:
        pool = pool_of(group)
        if pool is None:
            return
        hooks = self.hooks(group, LAUNCHING)
        if hooks:
            state.lifecycle_state = WARMED_PENDING_WAIT
            self._open_actions(account, group, state, hooks, LAUNCHING, at, origin=EC2, destination=WARM_POOL)
        else:
            self._settle_in_pool(group, pool, state)

    def _settle_in_pool(self, group: Any, pool: WarmPool, state: Any) -> None:
        """Warmed:Pending:Proceed (instantaneous) -> the pool state. Hibernated is
        modelled as a plain stop: moto has no hibernation."""
        state.lifecycle_state = WARMED_PENDING_PROCEED
        settled = POOL_STATES.get(pool.pool_state, WARMED_STOPPED)
        if settled != WARMED_RUNNING:
            self._ec2(group, "stop_instances", [state.instance.id])
        state.lifecycle_state = settled
        LOG.info("%s %s: %s", group.name, state.instance.id, settled)

    def _return_to_pool(self, group: Any, pool: WarmPool, state: Any) -> None:
        """A scale-in victim leaves the group for the pool. The user guide: "an
        instance that is returning to the warm pool pauses ... at the
        Warmed:Pending:Wait state for the EC2_INSTANCE_TERMINATING lifecycle
        action"; the EC2 instance runs until it settles."""
        account = self.account_of(group)
        account.drop_instance(state.instance.id)
        group.instance_states = [s for s in group.instance_states if s is not state]
        state.lifecycle_state = WARMED_PENDING
        pool.instances.append(state)
        self._refresh_load_balancers(group)
        LOG.info("%s %s: returns to the warm pool", group.name, state.instance.id)
        hooks = self.hooks(group, TERMINATING_TRANSITION)
        if hooks:
            state.lifecycle_state = WARMED_PENDING_WAIT
            self._open_actions(
                account,
                group,
                state,
                hooks,
                TERMINATING_TRANSITION,
                account.now(),
                origin=GROUP,
                destination=WARM_POOL,
            )
        else:
            self._settle_in_pool(group, pool, state)

    def begin_warm_termination(self, group: Any, state: Any) -> None:
        """A warm instance leaves the pool for good: `Warmed:Terminating:Wait` with
        terminate hooks (Origin WarmPool, Destination EC2), else terminated now."""
        if state.lifecycle_state in WARM_TERMINATING_STATES:
            return
        account = self.account_of(group)
        account.drop_instance(state.instance.id)  # ends a warm launch in progress
        hooks = self.hooks(group, TERMINATING_TRANSITION)
        if not hooks:
            self.terminate_warm_now(group, state)
            return
        state.lifecycle_state = WARMED_TERMINATING
        state.lifecycle_state = WARMED_TERMINATING_WAIT  # Warmed:Terminating is instantaneous
        self._open_actions(
            account,
            group,
            state,
            hooks,
            TERMINATING_TRANSITION,
            account.now(),
            origin=WARM_POOL,
            destination=EC2,
        )

    def terminate_warm_now(self, group: Any, state: Any) -> None:
        """Warmed:Terminated: terminate the EC2 instance and drop it from the pool."""
        self.account_of(group).drop_instance(state.instance.id)
        state.lifecycle_state = WARMED_TERMINATED
        pool = pool_of(group)
        if pool is not None:
            pool.instances = [s for s in pool.instances if s is not state]
        self._ec2(group, "terminate_instances", [state.instance.id])

    def forget_warm_instances(self, backend: Any, instance_ids: list[str]) -> None:
        """EC2 TerminateInstances hit warm instances: they leave their pool (their
        actions were already dropped) and the pool refills."""
        for group in list(backend.autoscaling_groups.values()):
            pool = pool_of(group)
            if pool is None:
                continue
            gone = [s for s in pool.instances if s.instance.id in instance_ids]
            if gone:
                pool.instances = [s for s in pool.instances if s not in gone]
                self.reconcile_warm_pool(group)

    def _end_warm_launch_wait(
        self, account: AccountState, group: Any, state: Any, result: str, others: list[LifecycleAction]
    ) -> None:
        """Warmed:Pending:Wait of a launch into the pool ends: ABANDON terminates it
        (the pool launches another), CONTINUE (all hooks) settles it."""
        pool = pool_of(group)
        if result == ABANDON:
            self._cancel(account, others)
            self.terminate_warm_now(group, state)
            self.reconcile_warm_pool(group)
        elif not others and pool is not None:
            self._settle_in_pool(group, pool, state)
            self.reconcile_warm_pool(group)

    def _end_return_wait(
        self, account: AccountState, group: Any, state: Any, result: str, others: list[LifecycleAction]
    ) -> None:
        """Warmed:Pending:Wait of a scale-in return ends (terminate hooks): CONTINUE
        and ABANDON both finish the return; with TerminateHookAbandon=retain, ABANDON
        leaves the instance in Warmed:Pending:Retained instead."""
        pool = pool_of(group)
        if pool is None:
            return
        if result == ABANDON:
            self._cancel(account, others)
            if retains_on_abandon(group):
                state.lifecycle_state = WARMED_PENDING_RETAINED
                LOG.info("%s %s: retained on its way to the warm pool", group.name, state.instance.id)
            else:
                self._settle_in_pool(group, pool, state)
        elif not others:
            self._settle_in_pool(group, pool, state)
        self.reconcile_warm_pool(group)

    def _end_warm_terminate_wait(
        self, account: AccountState, group: Any, state: Any, result: str, others: list[LifecycleAction]
    ) -> None:
        """Warmed:Terminating:Wait ends: terminated, or Warmed:Terminating:Retained on
        ABANDON with retain."""
        if result == ABANDON:
            self._cancel(account, others)
            if retains_on_abandon(group):
                state.lifecycle_state = WARMED_TERMINATING_RETAINED
                LOG.info("%s %s: retained", group.name, state.instance.id)
            else:
                self.terminate_warm_now(group, state)
        elif not others:
            self.terminate_warm_now(group, state)
        self.reconcile_warm_pool(group)

    @staticmethod
    def _ec2(group: Any, operation: str, instance_ids: list[str]) -> None:
        """Start/stop/terminate through moto's EC2 backend; a refusal (e.g.
        DisableApiStop) is logged and the Auto Scaling side goes on."""
        try:
            backend = group.autoscaling_backend.ec2_backend
            if operation == "terminate_instances":
                asg_terminate(backend, instance_ids)
            else:
                getattr(backend, operation)(instance_ids)
        except Exception:
            LOG.exception("EC2 %s refused for %s", operation, instance_ids)

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
        self.reconcile_warm_pools(account)
        return processed + self._fire_schedule(account, now)

    def _finish_boot(self, account: AccountState, boot: PendingBoot) -> None:
        account.boots.pop(boot.instance_id, None)
        group, state = self._locate(account, boot.region, boot.group_name, boot.instance_id)
        if group is None or state is None:
            return
        if boot.destination == WARM_POOL:
            if state.lifecycle_state == WARMED_PENDING:
                self._after_warm_launch(account, group, state, boot.due)
        elif state.lifecycle_state == PENDING:
            self._after_boot(account, group, state, boot.due, origin=boot.origin)

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
        pool = pool_of(group)
        if state is None and pool is not None:
            state = pool.find(instance_id)
        return group, state

    @staticmethod
    def _refresh_load_balancers(group: Any) -> None:
        backend = group.autoscaling_backend
        if group.name in backend.autoscaling_groups:
            backend.update_attached_elbs(group.name)
