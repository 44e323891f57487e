"""The WSGI application the launcher serves: moto plus the test bed's additions.

Routing, before anything reaches moto:
  /_testbed/...                                  the control API
  /service/GraniteServiceVersion20100801/...     CloudWatch over RPC v2 CBOR
  everything else                                moto, unchanged
`POST /moto-api/reset` (moto wiping all its state) also drops the lifecycle actions
and boot timers that pointed into that state.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from contextlib import ExitStack
from typing import Any

from .account import Registry
from .cbor_gateway import CborGateway, WsgiApp, is_rpc_v2_cbor
from .control_api import PREFIX, ControlApi


class TestbedApp:
    __test__ = False

    def __init__(self, moto_app: WsgiApp, control: ControlApi, registry: Registry) -> None:
        self._moto_app = moto_app
        self._control = control
        self._cbor = CborGateway(moto_app)
        self._registry = registry

    def __call__(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == PREFIX or path.startswith(PREFIX + "/"):
            return self._control(environ, start_response)
        if is_rpc_v2_cbor(environ):
            return self._cbor(environ, start_response)
        if path.rstrip("/") == "/moto-api/reset" and environ.get("REQUEST_METHOD") == "POST":
            return self._moto_reset(environ, start_response)
        return self._moto_app(environ, start_response)

    def _moto_reset(self, environ: dict[str, Any], start_response: Callable[..., Any]) -> Iterable[bytes]:
        accounts = sorted(self._registry.all(), key=lambda account: account.account_id)
        with ExitStack() as stack:
            for account in accounts:  # one fixed order: no deadlock between resets
                stack.enter_context(account.lock)
            result = list(self._moto_app(environ, start_response))
            for account in accounts:
                account.forget_resources()
        return result
