"""The test bed's control API under `/_testbed/` (JSON in, JSON out).

The account is taken from the `x-moto-account-id` header, as moto does, so a test
that gives each case its own account id steers only its own world. See README.md
for the endpoint list.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Iterable
from typing import Any

import moto
from werkzeug.wrappers import Request, Response

from . import clock
from .account import AccountState, Registry, account_from_environ
from .config import ConfigError
from .engine import LifecycleEngine

LOG = logging.getLogger("testbed.control")

PREFIX = "/_testbed"
SCHEDULE_KEYS = {"schedule_url", "schedule_period_s"}


class ControlError(Exception):
    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


class ControlApi:
    def __init__(self, registry: Registry, engine: LifecycleEngine) -> None:
        self._registry = registry
        self._engine = engine
        self._routes: dict[tuple[str, str], Callable[[AccountState, Request], Any]] = {
            ("GET", "/health"): self._health,
            ("GET", "/config"): self._get_config,
            ("POST", "/config"): self._set_config,
            ("GET", "/clock"): self._get_clock,
            ("POST", "/clock/advance"): self._advance,
            ("POST", "/tick"): self._tick,
            ("GET", "/deliveries"): self._deliveries,
            ("GET", "/events"): self._events,
            ("GET", "/actions"): self._actions,
            ("POST", "/reset"): self._reset,
        }

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        request = Request(environ)
        path = request.path[len(PREFIX) :].rstrip("/") or "/"
        handler = self._routes.get((request.method, path))
        try:
            if handler is None:
                known = [method for method, route in self._routes if route == path]
                if known:
                    raise ControlError(
                        405, f"{request.method} not allowed on {request.path}; use {', '.join(known)}"
                    )
                raise ControlError(404, f"no such endpoint: {request.path}")
            account = self._registry.get(account_from_environ(environ))
            response = _json(200, handler(account, request))
        except ControlError as err:
            response = _json(err.status, {"error": str(err)})
        except ConfigError as err:
            response = _json(400, {"error": str(err)})
        return response(environ, start_response)

    # --- endpoints -------------------------------------------------------------
    def _health(self, account: AccountState, request: Request) -> Any:
        return {"status": "ok", "moto": moto.__version__, "account": account.account_id}

    def _get_config(self, account: AccountState, request: Request) -> Any:
        return account.config.to_json()

    def _set_config(self, account: AccountState, request: Request) -> Any:
        changes = _body(request)
        with account.lock:
            account.config = account.config.with_changes(changes)
            if SCHEDULE_KEYS & set(changes):
                self._engine.rearm_schedule(account)
            LOG.info("account %s config: %s", account.account_id, changes)
            return account.config.to_json()

    def _get_clock(self, account: AccountState, request: Request) -> Any:
        return _clock(account)

    def _advance(self, account: AccountState, request: Request) -> Any:
        body = _body(request)
        seconds = body.get("seconds")
        if isinstance(seconds, bool) or not isinstance(seconds, (int, float)) or not seconds >= 0:
            raise ControlError(400, '"seconds" must be a non-negative number')
        if seconds == float("inf"):
            raise ControlError(400, '"seconds" must be finite')
        with account.lock:
            account.clock.advance(float(seconds))
            processed = self._engine.process_due(account)
            return {**_clock(account), "processed": processed}

    def _tick(self, account: AccountState, request: Request) -> Any:
        with account.lock:
            processed = self._engine.process_due(account)
            return {**_clock(account), "processed": processed}

    def _deliveries(self, account: AccountState, request: Request) -> Any:
        return account.snapshot_deliveries()

    def _events(self, account: AccountState, request: Request) -> Any:
        return account.snapshot_events()

    def _actions(self, account: AccountState, request: Request) -> Any:
        with account.lock:
            return {
                "actions": [action.to_json() for action in account.actions.values()],
                # Cold launches, warm-pool launches and starts from the warm pool
                # alike; Origin/Destination tell them apart.
                "booting": [boot.to_json() for boot in account.boots.values()],
                "next_schedule": (
                    clock.iso_millis(account.schedule_next) if account.schedule_next is not None else None
                ),
            }

    def _reset(self, account: AccountState, request: Request) -> Any:
        account.reset()
        LOG.info("account %s: extension state reset", account.account_id)
        return {"reset": account.account_id}


def _clock(account: AccountState) -> dict[str, Any]:
    now = account.clock.now()
    return {
        "now": clock.iso_millis(now),
        "epoch_s": round(clock.to_datetime(now).timestamp(), 3),
        "offset_s": account.clock.offset_s,
    }


def _body(request: Request) -> dict[str, Any]:
    raw = request.get_data()
    if not raw.strip():
        return {}
    try:
        body = json.loads(raw)
    except ValueError as err:
        raise ControlError(400, f"body is not JSON: {err}") from err
    if not isinstance(body, dict):
        raise ControlError(400, "body must be a JSON object")
    return body


def _json(status: int, payload: Any) -> Response:
    return Response(json.dumps(payload), status=status, mimetype="application/json")
