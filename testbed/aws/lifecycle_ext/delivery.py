"""Asynchronous delivery of events to the configured loopback URLs.

EventBridge invokes its targets asynchronously: the Auto Scaling API call that
started a lifecycle action never waits for the Lambda. So deliveries run on a few
background threads, are retried a few times on connection errors (a
`cargo lambda watch` that is still starting refuses connections), and every attempt
is recorded on the account for tests and people to inspect.
"""

from __future__ import annotations

import json
import logging
import queue
import threading
import time
import urllib.error
import urllib.request
import uuid
from typing import Any

from . import clock
from .account import AccountState
from .config import ConfigError, TestbedConfig, require_loopback_url

LOG = logging.getLogger("testbed.delivery")

# Keep what the target answered, but not without bound.
MAX_RESPONSE_CHARS = 4096


class Deliverer:
    """A queue drained by a few daemon worker threads.

    Daemon threads, not a ThreadPoolExecutor: a delivery stuck on a slow target
    (a first `cargo lambda` invoke compiles for tens of seconds) must never hold up
    the server's exit on SIGTERM.
    """

    def __init__(self, workers: int = 8) -> None:
        self._queue: queue.Queue[tuple[Any, ...]] = queue.Queue()
        self._stopping = threading.Event()
        # An empty ProxyHandler: never send through an HTTP(S)_PROXY from the
        # environment, only ever straight to the loopback target.
        self._opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        for index in range(workers):
            threading.Thread(target=self._work, name=f"testbed-delivery-{index}", daemon=True).start()

    def submit(self, account: AccountState, url: str, event_id: str, kind: str, body: dict[str, Any]) -> None:
        """Queue one event for delivery; returns at once."""
        if not self._stopping.is_set():
            self._queue.put((account, account.generation, account.config, url, event_id, kind, body))

    def shutdown(self) -> None:
        self._stopping.set()

    def _work(self) -> None:
        while not self._stopping.is_set():
            try:
                job = self._queue.get(timeout=0.5)
            except queue.Empty:
                continue
            try:
                self._deliver(*job)
            except Exception:  # a worker must survive anything one delivery does
                LOG.exception("delivery failed")

    def _deliver(
        self,
        account: AccountState,
        generation: int,
        config: TestbedConfig,
        url: str,
        event_id: str,
        kind: str,
        body: dict[str, Any],
    ) -> None:
        payload = json.dumps(body).encode("utf-8")
        for attempt in range(1, config.delivery_attempts + 1):
            record = self._attempt(account, url, payload, config.delivery_timeout_s)
            record.update(
                id=str(uuid.uuid4()),
                event_id=event_id,
                kind=kind,
                url=url,
                body=body,
                attempt=attempt,
            )
            retry = record.pop("_retry")
            account.log_delivery(generation, record)
            if not retry:
                return
            backoff_s = config.delivery_retry_delay_s * 2 ** (attempt - 1)
            if attempt < config.delivery_attempts and self._stopping.wait(backoff_s):
                return  # shutting down
        LOG.warning("gave up delivering %s event %s to %s", kind, event_id, url)

    def _attempt(self, account: AccountState, url: str, payload: bytes, timeout_s: float) -> dict[str, Any]:
        started = time.monotonic()
        record: dict[str, Any] = {
            "status": None,
            "error": None,
            "response": None,
            "at": clock.iso_millis(account.clock.now()),
            "_retry": False,
        }
        try:
            require_loopback_url(url)  # checked when configured; checked again here
            request = urllib.request.Request(
                url,
                data=payload,
                method="POST",
                headers={"Content-Type": "application/json"},
            )
            with self._opener.open(request, timeout=timeout_s) as response:
                record["status"] = response.status
                record["response"] = _text(response.read())
        except urllib.error.HTTPError as err:  # the target answered, with an error
            record["status"] = err.code
            record["response"] = _text(err.read())
            record["error"] = f"HTTP {err.code}"
        except ConfigError as err:
            record["error"] = str(err)
        except (urllib.error.URLError, ConnectionError) as err:
            reason = getattr(err, "reason", err)
            record["error"] = f"connection error: {reason}"
            # Retry only when the request never reached a handler: refused or reset.
            record["_retry"] = isinstance(reason, ConnectionError)
        except (TimeoutError, OSError) as err:
            record["error"] = f"{type(err).__name__}: {err}"
        record["duration_ms"] = round((time.monotonic() - started) * 1000, 1)
        LOG.info("delivery to %s: status=%s error=%s", url, record["status"], record["error"])
        return record


def _text(raw: bytes) -> str:
    return raw.decode("utf-8", errors="replace")[:MAX_RESPONSE_CHARS]
