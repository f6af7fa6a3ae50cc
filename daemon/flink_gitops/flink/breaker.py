"""A per-cluster circuit breaker: closed → open → half-open → closed.

After ``threshold`` consecutive failures (unreachable, timeout, 5xx) it opens
and refuses calls with :class:`~.errors.CircuitOpen` for ``reset_s`` seconds
of the injected clock, logging once that it opened and when it will try
again. Then one trial call goes through (half-open); its success closes the
breaker, its failure opens it again. Thread-safe. Neighbours: :mod:`.client`
asks :meth:`CircuitBreaker.acquire` before each request and reports the
outcome; observe uses :attr:`CircuitBreaker.state` for degradation.
"""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Literal

from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.flink.errors import CircuitOpen

State = Literal["closed", "open", "half-open"]


class CircuitBreaker:
    """Counts consecutive failures of one cluster and refuses calls while open."""

    def __init__(self, cluster: str, *, threshold: int, reset_s: float, clock: Clock) -> None:
        self.cluster = cluster
        self.threshold = max(threshold, 1)
        self.reset_s = reset_s
        self._clock = clock
        self._lock = threading.Lock()
        self._failures = 0
        self._opened_at: float | None = None
        self._trial_in_flight = False

    @property
    def state(self) -> State:
        with self._lock:
            return self._state_locked()

    def _state_locked(self) -> State:
        if self._opened_at is None:
            return "closed"
        if self._clock.monotonic() - self._opened_at >= self.reset_s:
            return "half-open"
        return "open"

    def acquire(self, method: str, path: str) -> None:
        """Let a call through or raise :class:`CircuitOpen`. While half-open only one trial passes."""
        with self._lock:
            state = self._state_locked()
            if state == "closed":
                return
            if state == "half-open" and not self._trial_in_flight:
                self._trial_in_flight = True
                logger.info("flink {}: circuit half-open, trial call {} {}", self.cluster, method, path)
                return
            assert self._opened_at is not None
            # clamped: float rounding of opened_at + reset_s - now can exceed reset_s
            retry_in = min(max(self._opened_at + self.reset_s - self._clock.monotonic(), 0.0), self.reset_s)
            until = self._clock.now() + timedelta(seconds=retry_in)
        raise CircuitOpen(cluster=self.cluster, method=method, path=path, until=until, retry_in=retry_in)

    def success(self) -> None:
        """The cluster answered (any HTTP answer below 500 counts)."""
        with self._lock:
            if self._opened_at is not None:
                logger.info("flink {}: circuit closed, cluster answers again", self.cluster)
            self._failures = 0
            self._opened_at = None
            self._trial_in_flight = False

    def failure(self) -> None:
        """The cluster did not answer usefully (unreachable, timeout, 5xx)."""
        with self._lock:
            self._failures += 1
            was_trial = self._trial_in_flight
            self._trial_in_flight = False
            if was_trial or (self._opened_at is None and self._failures >= self.threshold):
                self._opened_at = self._clock.monotonic()
                until = self._clock.now() + timedelta(seconds=self.reset_s)
                logger.warning(
                    "flink {}: circuit open after {} consecutive failures; next trial at {}",
                    self.cluster,
                    self._failures,
                    until.isoformat(),
                )

    def release(self) -> None:
        """A call ended without news about the cluster (a local error): free the trial slot."""
        with self._lock:
            self._trial_in_flight = False
