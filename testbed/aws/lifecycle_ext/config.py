"""Per-account settings of the test bed, changed through `/_testbed/config`.

Every URL the test bed will ever POST to is checked here: only loopback targets
(127.0.0.0/8 or `localhost`) are accepted, so the server can never be turned into
a client of another host.
"""

from __future__ import annotations

import dataclasses
import ipaddress
import math
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit


class ConfigError(ValueError):
    """A configuration change the test bed refuses (answered with HTTP 400)."""


@dataclass(frozen=True)
class TestbedConfig:
    """What the extension does for one account beyond moto's own behaviour."""

    __test__ = False  # not a pytest test class despite the name

    # Where lifecycle events (EventBridge shape) are POSTed, e.g. a `cargo lambda
    # watch` invoke URL. None: events are generated and logged but not sent.
    lifecycle_event_url: str | None = None
    # Where the "Scheduled Event" is POSTed every `schedule_period_s` test-bed seconds.
    schedule_url: str | None = None
    schedule_period_s: float | None = None
    schedule_rule_name: str = "testbed-schedule"
    schedule_region: str = "us-east-1"
    # How long a launched instance stays `Pending` (test-bed seconds) before it
    # enters `Pending:Wait` (launch hook) or `InService`.
    boot_delay_s: float = 0.0
    # How long an instance taken from the warm pool on scale-out stays `Pending`
    # (restarting) before it enters `Pending:Wait` (launch hook) or `InService`.
    warm_start_delay_s: float = 0.0
    # Delivery: attempts on connection errors, first retry delay (doubling), and the
    # per-attempt HTTP timeout (a first `cargo lambda` invoke compiles for a while).
    delivery_attempts: int = 4
    delivery_retry_delay_s: float = 0.25
    delivery_timeout_s: float = 300.0

    def to_json(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    def with_changes(self, changes: dict[str, Any]) -> TestbedConfig:
        """A copy with `changes` applied; raises ConfigError on any bad key or value."""
        if not isinstance(changes, dict):
            raise ConfigError("config must be a JSON object")
        known = {f.name for f in dataclasses.fields(self)}
        unknown = sorted(set(changes) - known)
        if unknown:
            raise ConfigError(f"unknown config keys: {', '.join(unknown)}")
        parsed = {key: _PARSERS[key](key, value) for key, value in changes.items()}
        return dataclasses.replace(self, **parsed)


def require_loopback_url(url: str) -> str:
    """Accept only http(s) URLs whose host is in 127.0.0.0/8 or is `localhost`."""
    try:
        parts = urlsplit(url)
        port = parts.port  # raises ValueError on a malformed port
    except ValueError as err:
        raise ConfigError(f"not a valid URL: {url!r}") from err
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise ConfigError(f"URL must be http(s)://host[:port]/...: {url!r}")
    del port
    host = parts.hostname
    if host == "localhost":
        return url
    try:
        address = ipaddress.ip_address(host)
    except ValueError as err:
        raise ConfigError(f"URL host must be localhost or an address in 127.0.0.0/8: {url!r}") from err
    if address.version != 4 or address not in ipaddress.ip_network("127.0.0.0/8"):
        raise ConfigError(f"URL host must be in 127.0.0.0/8 or localhost: {url!r}")
    return url


def _optional_url(key: str, value: Any) -> str | None:
    if value is None or value == "":
        return None
    if not isinstance(value, str):
        raise ConfigError(f"{key} must be a string or null")
    return require_loopback_url(value)


def _number(key: str, value: Any, *, minimum: float, exclusive: bool) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{key} must be a number")
    number = float(value)
    too_small = number <= minimum if exclusive else number < minimum
    if math.isnan(number) or math.isinf(number) or too_small:
        bound = f"> {minimum:g}" if exclusive else f">= {minimum:g}"
        raise ConfigError(f"{key} must be a finite number {bound}")
    return number


def _optional_period(key: str, value: Any) -> float | None:
    if value is None:
        return None
    return _number(key, value, minimum=0.0, exclusive=True)


def _non_negative(key: str, value: Any) -> float:
    return _number(key, value, minimum=0.0, exclusive=False)


def _positive(key: str, value: Any) -> float:
    return _number(key, value, minimum=0.0, exclusive=True)


def _attempts(key: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 20:
        raise ConfigError(f"{key} must be an integer from 1 to 20")
    return value


def _name(key: str, value: Any) -> str:
    if not isinstance(value, str) or not value:
        raise ConfigError(f"{key} must be a non-empty string")
    return value


_PARSERS = {
    "lifecycle_event_url": _optional_url,
    "schedule_url": _optional_url,
    "schedule_period_s": _optional_period,
    "schedule_rule_name": _name,
    "schedule_region": _name,
    "boot_delay_s": _non_negative,
    "warm_start_delay_s": _non_negative,
    "delivery_attempts": _attempts,
    "delivery_retry_delay_s": _non_negative,
    "delivery_timeout_s": _positive,
}
