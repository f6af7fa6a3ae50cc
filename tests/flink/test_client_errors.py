"""The client's error contract, on httpx.MockTransport (our boundary) and a FakeClock: every failure
is typed by what the caller may do next (never sent, no answer, maybe applied, throttled, still
running, cancelled, refused), idempotent triggers, deadlines and cancel hooks on long polls,
refusing credentials over plain http, and a library that stays silent until the CLI enables logs."""

from __future__ import annotations

import random
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_gitops.clock import FakeClock
from flink_gitops.errors import ConfigError, FlinkGitOpsError, PermanentError, TemporaryError
from flink_gitops.execute.ports import FlinkPort
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import (
    CircuitOpen,
    DuplicateJobId,
    FlinkAuthError,
    FlinkBadAnswer,
    FlinkBadRequest,
    FlinkConflict,
    FlinkMaybeApplied,
    FlinkNoAnswer,
    FlinkNotFound,
    FlinkNotSent,
    FlinkPermanentError,
    FlinkProgramError,
    FlinkServerError,
    FlinkStillRunning,
    FlinkTemporaryError,
    FlinkThrottled,
    JobEnded,
    OperationFailed,
    PollCancelled,
    SavepointFailed,
    TriggerIdIgnored,
    UnknownTrigger,
)
from flink_gitops.flink.ids import FLINK_ID_RE, new_trigger_id
from flink_gitops.flink.models import TERMINAL_STATES, CheckpointStats, RunRequest
from flink_gitops.flink.retry import RetryPolicy
from flink_gitops.secrets import SecretRef
from flink_gitops.settings import ClusterAuth, ClusterConfig

JOB = "b" * 32
TRIGGER = "d" * 32
TOKEN = "t0ken-NEVER-in-errors"
Answer = httpx.Response | type[Exception] | Callable[[httpx.Request], httpx.Response]


class Fake:
    """A fake Flink for MockTransport: (method, path) → answers in turn (the last repeats); an
    exception class is raised as httpx would. /config answers 2.3.0. Records every request."""

    def __init__(self) -> None:
        self.routes: dict[tuple[str, str], list[Answer]] = {}
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: Answer) -> None:
        self.routes[(method, path)] = list(answers)

    def __call__(self, request: httpx.Request) -> httpx.Response:
        if request.url.path == "/config":
            return httpx.Response(200, json={"flink-version": "2.3.0"})
        self.requests.append(request)
        queue = self.routes.get((request.method, request.url.path))
        if queue is None:
            return httpx.Response(404, json={"errors": ["Not found: " + request.url.path]})
        answer = queue.pop(0) if len(queue) > 1 else queue[0]
        if isinstance(answer, type):
            raise answer("scripted", request=request)
        return answer(request) if callable(answer) else answer

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)


def client(fake: Fake, clock: FakeClock, *, attempts: int = 3, **kw: Any) -> FlinkClient:
    return FlinkClient(
        "http://flink:8081",
        name="prod",
        clock=clock,
        retry=RetryPolicy(max_attempts=attempts, initial_s=0.5, max_s=4.0, rng=random.Random(7)),
        transport=httpx.MockTransport(fake),
        **kw,
    )


def sp(status: str, **operation: Any) -> httpx.Response:
    body: dict[str, Any] = {"status": {"id": status}}
    if operation:
        body["operation"] = operation
    return httpx.Response(200, json=body)


def job(state: str) -> httpx.Response:
    vertices = [{"id": "v", "name": "op", "parallelism": 1, "status": state}]
    return httpx.Response(200, json={"jid": JOB, "name": "j", "state": state, "vertices": vertices})


# --- the contract, as types ----------------------------------------


@pytest.mark.parametrize(
    ("error", "retryable", "base"),
    [
        (FlinkNotSent, True, TemporaryError),
        (CircuitOpen, True, FlinkNotSent),
        (FlinkNoAnswer, True, TemporaryError),
        (FlinkServerError, True, TemporaryError),
        (FlinkThrottled, True, TemporaryError),
        (FlinkStillRunning, True, TemporaryError),
        (FlinkMaybeApplied, False, FlinkGitOpsError),
        (PollCancelled, False, FlinkGitOpsError),
        (FlinkBadRequest, False, PermanentError),
        (FlinkBadAnswer, False, PermanentError),
        (FlinkNotFound, False, PermanentError),
        (UnknownTrigger, False, FlinkNotFound),
        (FlinkConflict, False, PermanentError),
        (DuplicateJobId, False, FlinkConflict),
        (FlinkProgramError, False, PermanentError),
        (FlinkAuthError, False, PermanentError),
        (TriggerIdIgnored, False, PermanentError),
        (OperationFailed, False, PermanentError),
        (SavepointFailed, False, OperationFailed),
        (JobEnded, False, OperationFailed),
    ],
)
def test_each_error_type_says_whether_a_retry_can_help(
    error: type[FlinkGitOpsError], retryable: bool, base: type[Exception]
) -> None:
    assert error.retryable is retryable
    assert issubclass(error, base)
    assert error.__doc__, f"{error.__name__} must say what the caller may do next"


def test_maybe_applied_and_cancelled_are_neither_temporary_nor_permanent() -> None:
    """A reconciler that sorts by TemporaryError / PermanentError must look at these two itself."""
    for error in (FlinkMaybeApplied, PollCancelled):
        assert not issubclass(error, TemporaryError | PermanentError)


# --- transport failures: sent or not ----------------------------------------


NOT_SENT = [httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout, httpx.ProxyError]
SENT = [httpx.ReadTimeout, httpx.WriteTimeout, httpx.ReadError, httpx.RemoteProtocolError]


@pytest.mark.parametrize("exc", NOT_SENT)
def test_a_request_that_never_left_is_not_sent_for_reads_and_writes(
    clock: FakeClock, exc: type[Exception]
) -> None:
    fake = Fake()
    fake.on("GET", "/overview", exc)
    fake.on("POST", "/jars/j.jar/run", exc)
    with client(fake, clock) as c:
        with pytest.raises(FlinkNotSent) as read:
            c.overview()
        with pytest.raises(FlinkNotSent) as run:
            c.run("j.jar", RunRequest(job_id=JOB))
    assert isinstance(read.value.__cause__, exc)
    assert isinstance(run.value.__cause__, exc)
    assert fake.calls("GET", "/overview") == 3  # a GET is retried
    assert fake.calls("POST", "/jars/j.jar/run") == 1  # a run never is


@pytest.mark.parametrize("exc", SENT)
def test_a_lost_answer_to_a_get_is_no_answer_and_retried(clock: FakeClock, exc: type[Exception]) -> None:
    fake = Fake()
    fake.on("GET", "/overview", exc, httpx.Response(200, json={"taskmanagers": 1}))
    with client(fake, clock) as c:
        assert c.overview().taskmanagers == 1
    fake.on("GET", "/overview", exc)
    with client(fake, clock) as c, pytest.raises(FlinkNoAnswer):
        c.overview()


@pytest.mark.parametrize("exc", SENT)
def test_a_lost_answer_to_a_request_with_a_side_effect_is_maybe_applied(
    clock: FakeClock, tmp_path: Path, exc: type[Exception]
) -> None:
    jar = tmp_path / "a.jar"
    jar.write_bytes(b"PK")
    fake = Fake()
    for method, path in [
        ("POST", "/jars/j.jar/run"),
        ("POST", "/jars/upload"),
        ("PATCH", f"/jobs/{JOB}"),
        ("DELETE", "/jars/j.jar"),
        ("POST", "/savepoint-disposal"),
    ]:
        fake.on(method, path, exc)
    calls: list[tuple[str, Callable[[FlinkClient], object], bool]] = [
        ("run with a fixed job id", lambda c: c.run("j.jar", RunRequest(job_id=JOB)), True),
        ("run without a job id", lambda c: c.run("j.jar", RunRequest()), False),
        ("upload", lambda c: c.upload_jar(jar), False),
        ("cancel", lambda c: c.cancel(JOB), True),
        ("delete", lambda c: c.delete_jar("j.jar"), True),
        ("disposal", lambda c: c.dispose_savepoint("file:/sp/x"), False),
    ]
    for name, call, idempotent in calls:
        with client(fake, clock) as c, pytest.raises(FlinkMaybeApplied, match="sent, answer lost") as info:
            call(c)
        assert info.value.idempotent is idempotent, name
        assert not info.value.retryable
        assert isinstance(info.value.__cause__, exc)
    assert clock.sleeps == []  # none of them retried


def test_after_a_lost_run_answer_find_job_looks_the_fixed_job_id_up(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("POST", "/jars/j.jar/run", httpx.ReadTimeout)
    fake.on("GET", f"/jobs/{JOB}", httpx.Response(404, json={"errors": ["Job not found"]}), job("RUNNING"))
    with client(fake, clock) as c:
        with pytest.raises(FlinkMaybeApplied):
            c.run("j.jar", RunRequest(job_id=JOB))
        assert c.find_job(JOB) is None  # not (yet) listed
        found = c.find_job(JOB)
    assert found is not None
    assert found.state == "RUNNING"


def test_an_undecodable_answer_to_a_run_is_maybe_applied(clock: FakeClock) -> None:
    fake = Fake()
    fake.on(
        "POST",
        "/jars/j.jar/run",
        lambda r: httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip"),
    )
    with client(fake, clock) as c, pytest.raises(FlinkMaybeApplied) as info:
        c.run("j.jar", RunRequest(job_id=JOB))
    assert isinstance(info.value.__cause__, httpx.DecodingError)


# --- 2xx with an unreadable body ----------------------------------------


@pytest.mark.parametrize(
    "answer",
    [
        httpx.Response(200, json={"status": "ok"}),
        httpx.Response(200, text="<html>login</html>"),
        httpx.Response(200, json=["not", "an", "object"]),
    ],
    ids=["wrong-shape", "not-json", "a-list"],
)
def test_a_run_flink_accepted_but_whose_answer_is_unreadable_is_submitted_not_bad_request(
    clock: FakeClock, answer: httpx.Response
) -> None:
    fake = Fake()
    fake.on("POST", "/jars/j.jar/run", answer)
    with (
        client(fake, clock) as c,
        pytest.raises(FlinkMaybeApplied, match="accepted, answer unreadable") as info,
    ):
        c.run("j.jar", RunRequest(job_id=JOB))
    assert not isinstance(info.value, FlinkBadRequest)
    assert info.value.idempotent  # a fixed job id: look it up, or re-send and get DuplicateJobId
    assert info.value.status in (None, 200)


def test_a_get_answered_with_an_unreadable_body_is_a_bad_answer(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", "/jobs/overview", httpx.Response(200, text="<html>proxy</html>"))
    with client(fake, clock) as c, pytest.raises(FlinkBadAnswer, match="not JSON"):
        c.jobs_overview()
    assert fake.calls("GET", "/jobs/overview") == 1


def test_a_redirect_is_refused_not_followed(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("POST", "/jars/j.jar/run", httpx.Response(302, headers={"Location": "https://sso/login?x=1"}))
    with client(fake, clock) as c, pytest.raises(FlinkPermanentError, match="redirect") as info:
        c.run("j.jar", RunRequest(job_id=JOB))
    assert "sso" not in str(info.value)
    assert fake.calls("POST", "/jars/j.jar/run") == 1


# --- status codes ----------------------------------------


@pytest.mark.parametrize("status", [408, 429])
def test_408_and_429_are_throttled_retried_for_reads_and_honour_retry_after(
    clock: FakeClock, status: int
) -> None:
    fake = Fake()
    busy = httpx.Response(status, headers={"Retry-After": "3"}, json={"errors": ["slow down"]})
    fake.on("GET", "/overview", busy, httpx.Response(200, json={"taskmanagers": 1}))
    with client(fake, clock, breaker_threshold=1) as c:
        assert c.overview().taskmanagers == 1
        assert c.breaker.state == "closed"  # the cluster answered: not charged
    assert clock.sleeps == [3.0]
    fake.on("POST", "/jars/j.jar/run", busy)
    with client(fake, clock) as c, pytest.raises(FlinkThrottled) as info:
        c.run("j.jar", RunRequest(job_id=JOB))
    assert info.value.delay == 3.0
    assert info.value.retryable
    assert fake.calls("POST", "/jars/j.jar/run") == 1


def test_retry_after_is_capped_by_the_backoff_ceiling(clock: FakeClock) -> None:
    fake = Fake()
    fake.on(
        "GET",
        "/overview",
        httpx.Response(429, headers={"Retry-After": "3600"}),
        httpx.Response(200, json={"taskmanagers": 1}),
    )
    with client(fake, clock) as c:
        c.overview()
    assert clock.sleeps == [4.0]


@pytest.mark.parametrize("status", [502, 504])
def test_a_proxy_502_or_504_to_a_run_is_maybe_applied_but_stays_server_error_for_reads(
    clock: FakeClock, status: int
) -> None:
    fake = Fake()
    fake.on("POST", "/jars/j.jar/run", httpx.Response(status, text="Bad Gateway"))
    fake.on("GET", "/overview", httpx.Response(status, text="Bad Gateway"))
    with client(fake, clock, attempts=1) as c:
        with pytest.raises(FlinkMaybeApplied, match=f"a proxy answered {status}"):
            c.run("j.jar", RunRequest(job_id=JOB))
        with pytest.raises(FlinkServerError):
            c.overview()


def _outcome(call: Callable[[], object]) -> FlinkGitOpsError | None:
    try:
        call()
    except FlinkGitOpsError as exc:
        return exc
    return None


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.integers(min_value=100, max_value=599))
def test_any_status_to_a_get_is_an_answer_or_an_error_typed_by_whether_retrying_helps(status: int) -> None:
    clock = FakeClock()
    fake = Fake()
    fake.on("GET", "/overview", httpx.Response(status, json={"taskmanagers": 1}))
    with client(fake, clock) as c:
        error = _outcome(c.overview)
    if 200 <= status < 300:
        assert error is None
        assert fake.calls("GET", "/overview") == 1
        return
    assert error is not None
    expected = status < 200 or status >= 500 or status in (408, 429)
    assert error.retryable is expected, (status, type(error).__name__)
    assert isinstance(error, FlinkTemporaryError if expected else FlinkPermanentError)
    assert fake.calls("GET", "/overview") == (3 if expected else 1)


@settings(max_examples=60, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(status=st.integers(min_value=100, max_value=599))
def test_a_run_is_sent_once_whatever_the_status(status: int) -> None:
    clock = FakeClock()
    fake = Fake()
    fake.on("POST", "/jars/j.jar/run", httpx.Response(status, json={"jobid": JOB}))
    with client(fake, clock) as c:
        error = _outcome(lambda: c.run("j.jar", RunRequest(job_id=JOB)))
    assert (error is None) is (200 <= status < 300), status
    if status in (502, 504) or status < 200:
        assert isinstance(error, FlinkMaybeApplied)
    assert fake.calls("POST", "/jars/j.jar/run") == 1
    assert clock.sleeps == []


# --- idempotent triggers ----------------------------------------


def test_new_trigger_ids_are_flink_ids_and_fresh() -> None:
    ids = {new_trigger_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(FLINK_ID_RE.match(i) for i in ids)


@pytest.mark.parametrize("bad", ["", "t1", "D" * 32, "d" * 31, "d" * 33, "../" + "d" * 29])
def test_a_malformed_trigger_id_is_refused_before_anything_is_sent(clock: FakeClock, bad: str) -> None:
    fake = Fake()
    with client(fake, clock) as c:
        with pytest.raises(ValueError, match="trigger_id must be 32 lowercase hex"):
            c.stop_with_savepoint(JOB, trigger_id=bad)
        with pytest.raises(ValueError, match="trigger_id must be 32 lowercase hex"):
            c.trigger_savepoint(JOB, trigger_id=bad)
    assert fake.requests == []


def test_a_cluster_that_ignores_our_trigger_id_is_refused_with_its_own_id(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("POST", f"/jobs/{JOB}/stop", httpx.Response(202, json={"request-id": "f" * 32}))
    with client(fake, clock) as c, pytest.raises(TriggerIdIgnored) as info:
        c.stop_with_savepoint(JOB, trigger_id=TRIGGER)
    assert (info.value.sent, info.value.request_id) == (TRIGGER, "f" * 32)
    assert fake.calls("POST", f"/jobs/{JOB}/stop") == 1


def test_an_unknown_trigger_is_its_own_not_found(clock: FakeClock) -> None:
    fake = Fake()
    fake.on(
        "GET",
        f"/jobs/{JOB}/savepoints/{TRIGGER}",
        httpx.Response(404, json={"errors": [f"There is no savepoint operation with triggerId={TRIGGER}"]}),
    )
    with client(fake, clock) as c:
        with pytest.raises(UnknownTrigger, match="no savepoint operation") as info:
            c.savepoint_status(JOB, TRIGGER)
        assert isinstance(info.value, FlinkNotFound)
        with pytest.raises(UnknownTrigger):
            c.wait_for_savepoint(JOB, TRIGGER, timeout=5)


# --- long polls: timeout, deadline, cancel hook ----------------------------------------


def test_a_deadline_before_the_timeout_ends_the_wait_exactly_there(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", sp("IN_PROGRESS"))
    deadline = clock.monotonic() + 2.5
    with client(fake, clock) as c, pytest.raises(FlinkStillRunning, match="at the caller's deadline") as info:
        c.wait_for_savepoint(JOB, TRIGGER, timeout=600, deadline=deadline, poll_s=1)
    assert clock.monotonic() == deadline
    assert clock.sleeps == [1, 1, 0.5]
    assert (info.value.trigger_id, info.value.last_state) == (TRIGGER, "IN_PROGRESS")


def test_the_default_savepoint_wait_is_the_clusters_savepoint_timeout(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", sp("IN_PROGRESS"))
    start = clock.monotonic()
    with client(fake, clock, savepoint_timeout_s=600) as c, pytest.raises(FlinkStillRunning, match="600 s"):
        c.wait_for_savepoint(JOB, TRIGGER, poll_s=30)
    assert clock.monotonic() - start == 600


def test_a_cancel_hook_stops_a_wait_before_the_next_poll(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}", sp("IN_PROGRESS"))
    answers = iter([False, False, True])
    with client(fake, clock) as c, pytest.raises(PollCancelled) as info:
        c.wait_for_savepoint(JOB, TRIGGER, timeout=600, cancelled=lambda: next(answers), poll_s=1)
    assert fake.calls("GET", f"/jobs/{JOB}/savepoints/{TRIGGER}") == 2
    assert (info.value.job_id, info.value.trigger_id) == (JOB, TRIGGER)
    assert not info.value.retryable


def test_a_lost_lease_means_no_call_at_all(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}", job("RUNNING"))
    fake.on("GET", "/savepoint-disposal/x", sp("IN_PROGRESS"))
    with client(fake, clock) as c:
        with pytest.raises(PollCancelled):
            c.wait_for_job_state(JOB, {"RUNNING"}, 60, cancelled=lambda: True)
        with pytest.raises(PollCancelled):
            c.wait_for_disposal("x", cancelled=lambda: True)
    assert fake.requests == []


def test_suspended_is_not_terminal_a_wait_goes_on_until_ha_recovers_the_job(clock: FakeClock) -> None:
    assert "SUSPENDED" not in TERMINAL_STATES
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}", job("SUSPENDED"), job("SUSPENDED"), job("RUNNING"))
    with client(fake, clock) as c:
        assert c.wait_for_job_state(JOB, {"RUNNING"}, 60, poll_s=1).state == "RUNNING"
    assert clock.sleeps == [1, 1]


def test_job_state_wait_deadline_is_still_running(clock: FakeClock) -> None:
    fake = Fake()
    fake.on("GET", f"/jobs/{JOB}", job("INITIALIZING"))
    with client(fake, clock) as c, pytest.raises(FlinkStillRunning) as info:
        c.wait_for_job_state(JOB, {"RUNNING"}, 60, deadline=clock.monotonic() + 1, poll_s=1)
    assert (info.value.job_id, info.value.trigger_id, info.value.last_state) == (JOB, None, "INITIALIZING")


# --- checkpoints for last-state upgrades -------------------------------------------------------------------


def test_checkpoint_stats_name_the_latest_completed_checkpoint_and_savepoint() -> None:
    stats = CheckpointStats.model_validate(
        {
            "latest": {
                "completed": {
                    "id": 9,
                    "trigger_timestamp": 100,
                    "latest_ack_timestamp": 140,
                    "external_path": "file:/cp/b/chk-9",
                },
                "savepoint": {"id": 8, "is_savepoint": True, "external_path": "file:/sp/savepoint-b-1"},
            }
        }
    )
    assert stats.latest_completed_path == "file:/cp/b/chk-9"
    assert stats.latest_completed_at_ms == 140
    assert stats.latest_savepoint_path == "file:/sp/savepoint-b-1"
    empty = CheckpointStats.model_validate({"latest": {"completed": None, "savepoint": None}})
    assert (empty.latest_completed_path, empty.latest_completed_at_ms, empty.latest_savepoint_path) == (
        None,
        None,
        None,
    )


# --- credentials over plain http ----------------------------------------


def test_credentials_over_plain_http_are_refused_unless_allowed(tmp_path: Path, clock: FakeClock) -> None:
    token = tmp_path / "token"
    token.write_text(TOKEN)
    auth = ClusterAuth(kind="bearer", token=SecretRef(file=token))
    plain = ClusterConfig(url="http://flink.example:8081", auth=auth)
    with pytest.raises(ConfigError, match="refusing to send credentials over plain http") as info:
        FlinkClient.from_config("prod", plain, clock=clock)
    assert TOKEN not in str(info.value)
    assert "allow_plain_http" in str(info.value)
    allowed = plain.model_copy(update={"auth": auth.model_copy(update={"allow_plain_http": True})})
    FlinkClient.from_config("prod", allowed, clock=clock).close()
    FlinkClient.from_config(
        "prod", plain.model_copy(update={"url": "https://flink.example"}), clock=clock
    ).close()
    FlinkClient.from_config("prod", ClusterConfig(url="http://flink.example:8081"), clock=clock).close()
    with pytest.raises(ConfigError):
        FlinkClient("HTTP://flink:8081", auth=httpx.BasicAuth("u", "p"), clock=clock)
    assert ClusterAuth().allow_plain_http is False


@pytest.mark.parametrize("scheme", ["Bearer", "Basic", "bearer"])
def test_a_proxy_page_echoing_our_authorization_header_does_not_put_it_in_the_error(
    clock: FakeClock, scheme: str
) -> None:
    """A misconfigured proxy that quotes the request's headers in its error page."""
    fake = Fake()
    page = f"Authorization: {scheme} {TOKEN} is not accepted here\n<html>..."
    fake.on("GET", f"/jobs/{JOB}", httpx.Response(403, text=page), httpx.Response(502, text=page))
    with client(fake, clock, attempts=1) as c:
        for _ in range(2):
            with pytest.raises(FlinkGitOpsError) as info:
                c.job(JOB)
            assert TOKEN not in str(info.value)
            assert f"{scheme} [redacted] is not accepted here" in str(info.value)


# --- logging: silent as a library ----------------------------------------

_LIBRARY_USE = """
import httpx, sys
from flink_gitops.execute.ports import FlinkPort
from flink_gitops.flink.client import FlinkClient
{setup}
def answer(request):
    return httpx.Response(200, json={{"taskmanagers": 1, "flink-version": "2.3.0"}})
with FlinkClient("http://flink:8081", name="lib", transport=httpx.MockTransport(answer)) as c:
    c.overview()
print("done")
"""


@pytest.mark.parametrize(
    ("setup", "logged"),
    [
        ("", False),
        (
            "from flink_gitops.cli import main\n"
            "main(['--log-level', 'DEBUG', 'schema', '--kind', 'flinkjob-v1.json'], standalone_mode=False)",
            True,
        ),
    ],
    ids=["library", "after-the-cli-configured-logging"],
)
def test_the_client_logs_nothing_as_a_library_and_debug_lines_once_the_cli_enables_logging(
    setup: str, logged: bool
) -> None:
    script = textwrap.dedent(_LIBRARY_USE.format(setup=setup))
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.rstrip().endswith("done")
    assert ("flink lib GET /overview -> 200" in result.stderr) is logged, result.stderr
    if not logged:
        assert result.stderr == ""


# --- the executor's port ---------------------------------------------------------------------------


def test_the_client_is_the_executors_flink_port(clock: FakeClock) -> None:
    """mypy checks the assignment (the client has the port's methods, signatures compatible)."""
    with FlinkClient("http://flink:8081", clock=clock) as flink:
        port: FlinkPort = flink
        assert port.wait_for_savepoint == flink.wait_for_savepoint
