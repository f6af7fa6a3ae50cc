"""Retries with exponential backoff and full jitter, for idempotent Flink calls only.

Built on tenacity; sleeping goes through the injected
:class:`~flink_gitops.clock.Clock` and the jitter draws from an injectable
``random.Random``, so tests see exact, instant schedules. Only temporary
errors are retried, and never :class:`~.errors.CircuitOpen` (the breaker
already says when to come back); a caller whose request is idempotent may add
:class:`~.errors.FlinkMaybeApplied` (a lost answer is then harmless). Neighbours: :mod:`.client` decides which
calls are idempotent (GETs, polls) and wraps only those.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt

from flink_gitops.clock import Clock
from flink_gitops.flink.errors import CircuitOpen, FlinkTemporaryError

T = TypeVar("T")


def backoff_delay(attempt: int, *, initial: float, maximum: float, rng: random.Random) -> float:
    """Full jitter: uniform in [0, min(maximum, initial * 2**(attempt-1))]; ``attempt`` >= 1."""
    ceiling = min(maximum, initial * (2.0 ** min(max(attempt - 1, 0), 62)))
    return rng.uniform(0.0, max(ceiling, 0.0))


def _retryable(exc: BaseException, also: tuple[type[BaseException], ...] = ()) -> bool:
    if isinstance(exc, CircuitOpen):
        return False
    return isinstance(exc, FlinkTemporaryError) or (bool(also) and isinstance(exc, also))


@dataclass
class RetryPolicy:
    """How many tries (including the first) and how long to back off between them."""

    max_attempts: int = 4
    #: first backoff ceiling, seconds; doubles each retry.
    initial_s: float = 0.5
    #: backoff ceiling, seconds.
    max_s: float = 10.0
    rng: random.Random = field(default_factory=random.Random)

    def _wait(self, state: RetryCallState) -> float:
        """Full-jitter backoff, but at least the delay the error suggests (429's Retry-After),
        capped at ``max_s``."""
        delay = backoff_delay(state.attempt_number, initial=self.initial_s, maximum=self.max_s, rng=self.rng)
        exc = state.outcome.exception() if state.outcome is not None else None
        suggested = getattr(exc, "delay", None)
        if isinstance(suggested, int | float) and suggested > delay:
            return min(float(suggested), self.max_s)
        return delay

    def call(self, clock: Clock, fn: Callable[[], T], *, also: tuple[type[BaseException], ...] = ()) -> T:
        """Call ``fn``; on a temporary error (or one of ``also``) sleep (on ``clock``) and try again,
        up to ``max_attempts``; then re-raise the last error."""
        retrying = Retrying(
            stop=stop_after_attempt(max(self.max_attempts, 1)),
            wait=self._wait,
            retry=retry_if_exception(lambda exc: _retryable(exc, also)),
            sleep=clock.sleep,
            reraise=True,
        )
        return retrying(fn)
