"""All extension state, kept per AWS account (moto's `x-moto-account-id`).

Tests isolate themselves by using distinct account ids on one server, so nothing
here is shared between accounts: clock, config, lifecycle actions, boot timers,
the schedule, and the logs of events and delivery attempts.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from moto.core import DEFAULT_ACCOUNT_ID

from .actions import LifecycleAction, PendingBoot
from .clock import AccountClock
from .config import TestbedConfig

# Logs are capped so a server left running for days does not grow without bound.
MAX_LOG_ENTRIES = 10_000


class AccountState:
    """The extension's state for one account.

    `lock` serialises every change to this account's Auto Scaling world: the
    moto API handlers, the timer thread and the control API all take it, so a
    timer never fires in the middle of a request. It is re-entrant because moto's
    handlers call into the extension, which calls back into moto.
    """

    def __init__(self, account_id: str) -> None:
        self.account_id = account_id
        self.lock = threading.RLock()
        self._log_lock = threading.Lock()
        self.generation = 0
        self._processing_at: float | None = None
        self._clear()

    def _clear(self) -> None:
        self.generation += 1
        self.clock = AccountClock()
        self.config = TestbedConfig()
        self.actions: dict[str, LifecycleAction] = {}
        self.boots: dict[str, PendingBoot] = {}
        self.schedule_next: float | None = None
        self.events: list[dict[str, Any]] = []
        self.deliveries: list[dict[str, Any]] = []

    def reset(self) -> None:
        """Forget everything the extension holds for this account."""
        with self.lock, self._log_lock:
            self._clear()

    def forget_resources(self) -> None:
        """Drop actions and boot timers after moto's own state was wiped; the
        config, clock and logs stay."""
        with self.lock:
            self.actions.clear()
            self.boots.clear()

    # --- time -----------------------------------------------------------------
    def now(self) -> float:
        """The current test-bed time, or while due timers are being processed, the
        instant the timer being processed fell due (so a chain of timers crossed by
        one big clock jump happens at the right logical times)."""
        if self._processing_at is not None:
            return self._processing_at
        return self.clock.now()

    @contextmanager
    def processing_at(self, instant: float) -> Iterator[None]:
        previous = self._processing_at
        self._processing_at = instant
        try:
            yield
        finally:
            self._processing_at = previous

    # --- actions --------------------------------------------------------------
    def actions_for(self, instance_id: str, transition: str | None = None) -> list[LifecycleAction]:
        return [
            action
            for action in self.actions.values()
            if action.instance_id == instance_id and (transition is None or action.transition == transition)
        ]

    def drop_instance(self, instance_id: str) -> None:
        """Cancel every action and boot timer of an instance that left the group."""
        for action in self.actions_for(instance_id):
            del self.actions[action.token]
        self.boots.pop(instance_id, None)

    def has_timers(self) -> bool:
        return bool(self.actions or self.boots or self.schedule_next is not None)

    # --- logs -----------------------------------------------------------------
    def log_event(self, entry: dict[str, Any]) -> None:
        with self._log_lock:
            _append_capped(self.events, entry)

    def log_delivery(self, generation: int, entry: dict[str, Any]) -> None:
        """Record a delivery attempt unless the account was reset since it began."""
        with self._log_lock:
            if generation == self.generation:
                _append_capped(self.deliveries, entry)

    def snapshot_events(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self.events)

    def snapshot_deliveries(self) -> list[dict[str, Any]]:
        with self._log_lock:
            return list(self.deliveries)


def _append_capped(log: list[dict[str, Any]], entry: dict[str, Any]) -> None:
    log.append(entry)
    if len(log) > MAX_LOG_ENTRIES:
        del log[: len(log) - MAX_LOG_ENTRIES]


class Registry:
    """The account states, created on first use."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._accounts: dict[str, AccountState] = {}

    def get(self, account_id: str) -> AccountState:
        with self._lock:
            state = self._accounts.get(account_id)
            if state is None:
                state = self._accounts[account_id] = AccountState(account_id)
            return state

    def all(self) -> list[AccountState]:
        with self._lock:
            return list(self._accounts.values())


REGISTRY = Registry()


def account_from_environ(environ: dict[str, Any]) -> str:
    """The account a request acts in, resolved as moto does: the MOTO_ACCOUNT_ID
    environment variable, else the `x-moto-account-id` header, else moto's default.
    (moto can also map IAM access keys it issued to accounts; the control API does
    not follow that mapping.)"""
    return os.environ.get("MOTO_ACCOUNT_ID") or environ.get("HTTP_X_MOTO_ACCOUNT_ID") or DEFAULT_ACCOUNT_ID
