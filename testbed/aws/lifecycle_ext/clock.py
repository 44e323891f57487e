"""Test-bed time: the real monotonic clock plus a per-account offset that only grows.

Every timer of the extension (heartbeat timeout, global timeout, boot delay,
schedule) reads this clock, so a test can jump hours ahead deterministically while a
person using the server by hand still sees time pass at the normal rate.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime

# One fixed pairing of wall-clock and monotonic time, taken at import, turns any
# test-bed instant into a wall-clock timestamp for event payloads.
_WALL_AT_START = time.time()
_MONO_AT_START = time.monotonic()


def to_datetime(instant: float) -> datetime:
    """The wall-clock (UTC) time of a test-bed instant."""
    return datetime.fromtimestamp(_WALL_AT_START + (instant - _MONO_AT_START), tz=UTC)


def iso_seconds(instant: float) -> str:
    """ISO 8601 with whole seconds and a Z, as EventBridge writes `time`."""
    return to_datetime(instant).strftime("%Y-%m-%dT%H:%M:%SZ")


def iso_millis(instant: float) -> str:
    """ISO 8601 with milliseconds and a Z, for the test bed's own records."""
    moment = to_datetime(instant)
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


class AccountClock:
    """One account's view of time: monotonic time shifted by `offset_s`."""

    def __init__(self) -> None:
        self._offset_s = 0.0

    @property
    def offset_s(self) -> float:
        return self._offset_s

    def now(self) -> float:
        return time.monotonic() + self._offset_s

    def advance(self, seconds: float) -> None:
        """Move this account's time forward; time never runs backwards."""
        if not seconds >= 0:
            raise ValueError("seconds must be a non-negative number")
        self._offset_s += seconds
