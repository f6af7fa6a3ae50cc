"""Injected time: every timeout, backoff, lease and cron decision asks a Clock.

Production code gets :class:`SystemClock`; tests get :class:`FakeClock`, whose
``sleep`` advances time instantly, so backoff and timeout tests never wait.
Neighbours: the Flink client (retries, breaker), the store (leases), the
runtime scheduler.
"""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime, timedelta
from typing import Protocol


def utc(value: datetime) -> datetime:
    """Timezone-aware UTC (a naive value is taken to be UTC already)."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Clock(Protocol):
    """What code may ask about time."""

    def now(self) -> datetime:
        """Wall-clock time, timezone-aware UTC."""
        ...

    def monotonic(self) -> float:
        """Seconds on a clock that never goes back; only differences mean anything."""
        ...

    def sleep(self, seconds: float) -> None:
        """Block for ``seconds`` (a FakeClock only advances)."""
        ...


class SystemClock:
    """The real clock."""

    def now(self) -> datetime:
        return datetime.now(UTC)

    def monotonic(self) -> float:
        return time.monotonic()

    def sleep(self, seconds: float) -> None:
        if seconds > 0:
            time.sleep(seconds)


class FakeClock:
    """A clock for tests: time moves only when ``sleep`` or ``advance`` is called.

    ``sleeps`` records every requested sleep so tests can assert backoff schedules.
    """

    def __init__(self, start: datetime | None = None) -> None:
        self._now = start or datetime(2026, 1, 1, tzinfo=UTC)
        self._mono = 1000.0
        self._lock = threading.Lock()
        self.sleeps: list[float] = []

    def now(self) -> datetime:
        with self._lock:
            return self._now

    def monotonic(self) -> float:
        with self._lock:
            return self._mono

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.advance(seconds)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._now += timedelta(seconds=max(seconds, 0.0))
            self._mono += max(seconds, 0.0)
