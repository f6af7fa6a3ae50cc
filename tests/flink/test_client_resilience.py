"""Retries (which calls, how often, which delays) and the circuit breaker (open, half-open, close,
with times), on httpx.MockTransport and a FakeClock; hypothesis for the backoff bounds and the
breaker's single-trial invariant."""

from __future__ import annotations

import random
import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import example, given
from hypothesis import strategies as st
from loguru import logger

from flink_gitops.clock import FakeClock
from flink_gitops.flink.breaker import CircuitBreaker
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import (
    CircuitOpen,
    FlinkMaybeApplied,
    FlinkNotFound,
    FlinkNotSent,
    FlinkServerError,
)
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.retry import RetryPolicy, backoff_delay

JOB = "c" * 32
SEED = 1234


class Scripted:
    """A fake Flink for MockTransport: answers each request with the next scripted outcome
    (an int status, an exception class, or a dict JSON body for 200); the last one repeats."""

    def __init__(self, *outcomes: int | type[Exception] | dict[str, Any]) -> None:
        self.outcomes = list(outcomes)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        if request.url.path == "/config":
            return httpx.Response(200, json={"flink-version": "2.3.0"})
        outcome = self.outcomes.pop(0) if len(self.outcomes) > 1 else self.outcomes[0]
        if isinstance(outcome, type):
            raise outcome("scripted", request=request)  # type: ignore[call-arg]
        if isinstance(outcome, dict):
            return httpx.Response(200, json=outcome)
        return httpx.Response(outcome, json={"errors": [f"scripted {outcome}"]})

    @property
    def calls(self) -> int:
        return sum(1 for r in self.requests if r.url.path != "/config")


def client_for(script: Scripted, clock: FakeClock, *, attempts: int = 4, threshold: int = 100) -> FlinkClient:
    return FlinkClient(
        "http://flink:8081",
        name="prod",
        clock=clock,
        retry=RetryPolicy(max_attempts=attempts, initial_s=0.5, max_s=3.0, rng=random.Random(SEED)),
        breaker_threshold=threshold,
        breaker_reset_s=30.0,
        transport=httpx.MockTransport(script),
    )


def expected_delays(n: int, initial: float = 0.5, maximum: float = 3.0) -> list[float]:
    rng = random.Random(SEED)
    return [rng.uniform(0, min(maximum, initial * 2 ** (i - 1))) for i in range(1, n + 1)]


def state(client: FlinkClient) -> str:
    """The breaker state, read fresh (a function so mypy does not narrow it between reads)."""
    return client.breaker.state


OVERVIEW = {"taskmanagers": 1, "slots-total": 1, "slots-available": 1}


def test_get_retries_temporary_errors_with_full_jitter_schedule(clock: FakeClock) -> None:
    script = Scripted(503, httpx.ConnectError, httpx.ReadTimeout, OVERVIEW)
    with client_for(script, clock) as client:
        assert client.overview().taskmanagers == 1
    assert script.calls == 4
    assert clock.sleeps == expected_delays(3)
    assert all(0 <= d <= c for d, c in zip(clock.sleeps, [0.5, 1.0, 2.0], strict=True))


def test_get_gives_up_after_max_attempts_and_reraises_the_last_error(clock: FakeClock) -> None:
    script = Scripted(503, 503, httpx.ConnectError)
    with client_for(script, clock, attempts=3) as client, pytest.raises(FlinkNotSent):
        client.overview()
    assert script.calls == 3
    assert len(clock.sleeps) == 2


def test_permanent_errors_are_not_retried(clock: FakeClock) -> None:
    script = Scripted(404)
    with client_for(script, clock) as client, pytest.raises(FlinkNotFound):
        client.job(JOB)
    assert script.calls == 1
    assert clock.sleeps == []


def test_polls_are_retried(clock: FakeClock) -> None:
    script = Scripted(503, {"status": {"id": "COMPLETED"}, "operation": {"location": "file:/sp/s-1"}})
    with client_for(script, clock) as client:
        assert client.wait_for_savepoint(JOB, "t", timeout=10) == "file:/sp/s-1"
    assert script.calls == 2


def _side_effects(tmp_path: Path) -> Iterator[tuple[str, Callable[[FlinkClient], object]]]:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"PK")
    yield "run", lambda c: c.run("a.jar", RunRequest(job_id=JOB))
    yield "upload", lambda c: c.upload_jar(jar)
    yield "cancel", lambda c: c.cancel(JOB)
    yield "delete_jar", lambda c: c.delete_jar("a.jar")
    yield "dispose", lambda c: c.dispose_savepoint("file:/sp/s")


@pytest.mark.parametrize(
    ("outcome", "error"),
    [(503, FlinkServerError), (httpx.ConnectError, FlinkNotSent), (httpx.ReadTimeout, FlinkMaybeApplied)],
)
def test_calls_with_side_effects_are_never_retried(
    clock: FakeClock, tmp_path: Path, outcome: int | type[Exception], error: type[Exception]
) -> None:
    for name, call in _side_effects(tmp_path):
        script = Scripted(outcome)
        with client_for(script, clock) as client, pytest.raises(error):
            call(client)
        assert script.calls == 1, name
        assert clock.sleeps == [], name


TRIGGER = "e" * 32


@pytest.mark.parametrize("outcome", [503, httpx.ConnectError, httpx.ReadTimeout, httpx.RemoteProtocolError])
@pytest.mark.parametrize("kind", ["stop", "savepoint"])
def test_triggers_with_our_trigger_id_are_retried_with_the_same_body(
    clock: FakeClock, outcome: int | type[Exception], kind: str
) -> None:
    """They carry the caller's trigger id, so Flink answers a repeat with the same operation."""
    script = Scripted(outcome, outcome, {"request-id": TRIGGER})
    with client_for(script, clock) as client:
        if kind == "stop":
            assert client.stop_with_savepoint(JOB, trigger_id=TRIGGER) == TRIGGER
        else:
            assert client.trigger_savepoint(JOB, trigger_id=TRIGGER) == TRIGGER
    assert script.calls == 3
    assert clock.sleeps == expected_delays(2)
    bodies = {bytes(r.content) for r in script.requests if r.url.path != "/config"}
    assert len(bodies) == 1
    assert TRIGGER.encode() in bodies.pop()


def test_a_trigger_whose_answers_stay_lost_is_maybe_applied_and_idempotent(clock: FakeClock) -> None:
    script = Scripted(httpx.ReadTimeout)
    with client_for(script, clock, attempts=3) as client, pytest.raises(FlinkMaybeApplied) as info:
        client.stop_with_savepoint(JOB, trigger_id=TRIGGER)
    assert script.calls == 3
    assert info.value.idempotent
    assert not info.value.retryable


# --- circuit breaker ---------------------------------------------------------------------------------


@pytest.mark.usefixtures("flink_logs_enabled")
def test_breaker_opens_rejects_half_opens_and_closes_with_times(clock: FakeClock) -> None:
    script = Scripted(503, 503, 503, 503, OVERVIEW)
    logs: list[str] = []
    sink = logger.add(logs.append, level="INFO", format="{level} {message}")
    try:
        with client_for(script, clock, attempts=1, threshold=3) as client:
            for _ in range(3):
                with pytest.raises(FlinkServerError):
                    client.overview()
            assert state(client) == "open"
            opened = clock.now()
            for _ in range(3):  # rejected without a request
                with pytest.raises(CircuitOpen) as info:
                    client.overview()
            assert script.calls == 3
            assert info.value.until.timestamp() == pytest.approx(opened.timestamp() + 30)
            assert info.value.delay == pytest.approx(30)
            assert "'prod'" in str(info.value)
            assert "GET /overview" in str(info.value)

            clock.advance(29.9)
            with pytest.raises(CircuitOpen):
                client.overview()
            clock.advance(0.1)
            assert state(client) == "half-open"
            with pytest.raises(FlinkServerError):  # the trial fails: open again for 30 s
                client.overview()
            assert state(client) == "open"
            reopened = clock.now()
            with pytest.raises(CircuitOpen) as again:
                client.overview()
            assert again.value.until.timestamp() == pytest.approx(reopened.timestamp() + 30)

            clock.advance(30)
            assert client.overview().taskmanagers == 1  # trial succeeds: closed
            assert state(client) == "closed"
            assert client.overview().taskmanagers == 1
            assert script.calls == 6
    finally:
        logger.remove(sink)
    opened_lines = [line for line in logs if "circuit open" in line]
    assert len(opened_lines) == 2  # once per opening, not per rejected call
    assert opened_lines[0].startswith("WARNING")
    assert "next trial at" in opened_lines[0]
    assert any("circuit closed" in line for line in logs)


def test_answers_below_500_reset_the_failure_count(clock: FakeClock) -> None:
    script = Scripted(503, 503, 404, 503, 503, OVERVIEW)
    with client_for(script, clock, attempts=1, threshold=3) as client:
        for _ in range(5):
            with pytest.raises((FlinkServerError, FlinkNotFound)):
                client.overview()
        assert state(client) == "closed"
        assert client.overview().taskmanagers == 1


def test_retry_stops_when_the_breaker_opens(clock: FakeClock) -> None:
    script = Scripted(503)
    with client_for(script, clock, attempts=10, threshold=2) as client, pytest.raises(CircuitOpen):
        client.overview()
    assert script.calls == 2
    assert len(clock.sleeps) == 2  # slept after each failure, then the breaker refused: no more retries


# --- properties ---------------------------------------------------------------------------------------


@given(
    attempt=st.integers(min_value=1, max_value=200),
    initial=st.floats(min_value=0, max_value=100, allow_nan=False),
    maximum=st.floats(min_value=0, max_value=1000, allow_nan=False),
    seed=st.integers(min_value=0, max_value=2**32),
)
def test_backoff_delay_is_within_zero_and_the_capped_ceiling(
    attempt: int, initial: float, maximum: float, seed: int
) -> None:
    delay = backoff_delay(attempt, initial=initial, maximum=maximum, rng=random.Random(seed))
    assert 0 <= delay <= min(maximum, initial * 2.0 ** (attempt - 1))


Op = tuple[str, float]
ops = st.lists(
    st.one_of(
        st.tuples(st.just("acquire"), st.just(0.0)),
        st.tuples(st.just("success"), st.just(0.0)),
        st.tuples(st.just("failure"), st.just(0.0)),
        st.tuples(st.just("advance"), st.floats(min_value=0, max_value=40)),
    ),
    max_size=60,
)


@example(
    threshold=1,
    script=[("acquire", 0.0), ("advance", 14.643972862968337), ("failure", 0.0), ("acquire", 0.0)],
)
@given(threshold=st.integers(min_value=1, max_value=4), script=ops)
def test_breaker_lets_one_trial_through_while_half_open(threshold: int, script: list[Op]) -> None:
    clock = FakeClock()
    breaker = CircuitBreaker("c", threshold=threshold, reset_s=10, clock=clock)
    in_flight = 0  # calls let through and not yet reported
    trials = 0  # calls let through while not closed, not yet reported
    for op, arg in script:
        if op == "advance":
            clock.advance(arg)
        elif op == "acquire":
            before = breaker.state
            try:
                breaker.acquire("GET", "/x")
            except CircuitOpen as exc:
                rejected: CircuitOpen | None = exc
            else:
                rejected = None
            if rejected is not None:
                assert before != "closed"
                assert rejected.delay is not None
                assert 0 <= rejected.delay <= 10
                continue
            in_flight += 1
            if before != "closed":
                assert before == "half-open"
                trials += 1
                assert trials == 1
        elif in_flight:
            in_flight -= 1
            trials = 0
            (breaker.success if op == "success" else breaker.failure)()
        if breaker.state == "closed":
            trials = 0


def test_half_open_lets_one_trial_through_across_threads(clock: FakeClock) -> None:
    """Two threads call while half-open: the first is the trial (held inside the transport),
    the second is refused at once; the trial's success closes the breaker."""
    entered, release = threading.Event(), threading.Event()
    failing = [True]

    def handler(request: httpx.Request) -> httpx.Response:
        if failing[0]:
            return httpx.Response(503, json={"errors": ["down"]})
        entered.set()
        release.wait(10)
        return httpx.Response(200, json=OVERVIEW)

    client = FlinkClient(
        "http://flink:8081",
        clock=clock,
        retry=RetryPolicy(max_attempts=1),
        breaker_threshold=1,
        breaker_reset_s=5,
        transport=httpx.MockTransport(handler),
    )
    with client:
        with pytest.raises(FlinkServerError):
            client.overview()
        failing[0] = False
        clock.advance(5)
        results: list[object] = []
        trial = threading.Thread(target=lambda: results.append(client.overview()))
        trial.start()
        assert entered.wait(10)
        with pytest.raises(CircuitOpen):
            client.overview()
        release.set()
        trial.join(10)
        assert len(results) == 1
        assert state(client) == "closed"
        assert client.overview().taskmanagers == 1


def test_real_refused_connection_is_retried_then_opens_the_breaker(clock: FakeClock) -> None:
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
        client = FlinkClient(
            f"http://127.0.0.1:{port}",
            name="gone",
            clock=clock,
            retry=RetryPolicy(max_attempts=3, initial_s=1, max_s=1, rng=random.Random(SEED)),
            breaker_threshold=3,
            breaker_reset_s=60,
        )
        with client:
            with pytest.raises(FlinkNotSent, match="'gone': GET /overview: request not sent"):
                client.overview()
            assert len(clock.sleeps) == 2
            assert state(client) == "open"
            with pytest.raises(CircuitOpen, match="next trial call at"):
                client.jobs_overview()
