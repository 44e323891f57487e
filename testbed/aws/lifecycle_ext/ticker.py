"""The background timer thread.

Advancing the clock through the control API runs due timers synchronously; this
thread makes them fire on their own as real time passes (every ~100 ms), so a
person using the test bed by hand sees heartbeat timeouts, boot delays and the
schedule happen without calling anything.
"""

from __future__ import annotations

import logging
import threading

from .account import Registry
from .engine import LifecycleEngine

LOG = logging.getLogger("testbed.ticker")


class Ticker:
    def __init__(self, registry: Registry, engine: LifecycleEngine, interval_s: float = 0.1) -> None:
        self._registry = registry
        self._engine = engine
        self._interval_s = interval_s
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="testbed-ticker", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        while not self._stop.wait(self._interval_s):
            for account in self._registry.all():
                if not account.has_timers():  # unlocked peek: cheap, at worst one tick late
                    continue
                try:
                    with account.lock:
                        self._engine.process_due(account)
                except Exception:  # keep ticking for every other account
                    LOG.exception("timer processing failed for account %s", account.account_id)
