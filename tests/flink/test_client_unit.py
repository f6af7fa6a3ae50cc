"""FlinkClient against httpx.MockTransport: error mapping, version-specific bodies, answer shapes,
savepoint outcomes, polling with a FakeClock, and secret hygiene. Bodies are real Flink answers."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from loguru import logger
from pydantic import ValidationError

from flink_gitops.clock import FakeClock
from flink_gitops.errors import ConfigError, PermanentError, TemporaryError
from flink_gitops.flink.client import FlinkClient, deterministic_job_id
from flink_gitops.flink.errors import (
    DuplicateJobId,
    FlinkAuthError,
    FlinkBadAnswer,
    FlinkBadRequest,
    FlinkConflict,
    FlinkMaybeApplied,
    FlinkNoAnswer,
    FlinkNotFound,
    FlinkPermanentError,
    FlinkProgramError,
    FlinkServerError,
    FlinkStillRunning,
    FlinkTemporaryError,
    JobEnded,
    OperationFailed,
    SavepointFailed,
)
from flink_gitops.flink.models import FailureCause, RunRequest
from flink_gitops.flink.retry import RetryPolicy
from flink_gitops.secrets import SecretRef
from flink_gitops.settings import ClusterAuth, ClusterConfig, ClusterTls

JOB = "a" * 32
TRIGGER = "7" * 32
Handler = Callable[[httpx.Request], httpx.Response]

MISSING_SAVEPOINT = {
    "errors": [
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.",
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.\n"
        "\tat org.apache.flink.runtime.webmonitor.handlers.JarRunHandler.lambda$handleRequest$1"
        "(JarRunHandler.java:123)\n"
        "Caused by: java.util.concurrent.CompletionException: org.apache.flink.util.FlinkRuntimeException:"
        " Could not execute application.\n"
        "\tat java.base/java.util.concurrent.CompletableFuture.encodeThrowable(CompletableFuture.java:315)\n"
        "Caused by: java.io.FileNotFoundException: Cannot find checkpoint or savepoint file/directory "
        "'/nope' on file system 'file'.\n"
        "\tat org.apache.flink.runtime.state.filesystem.AbstractFsCheckpointStorageAccess"
        ".resolveCheckpointPointer(AbstractFsCheckpointStorageAccess.java:275)\n"
        "\t... 12 more\n",
    ]
}
DUPLICATE = {
    "errors": [
        "org.apache.flink.runtime.rest.handler.RestHandlerException: Could not execute application.",
        "java.util.concurrent.CompletionException: ...\n"
        "Caused by: org.apache.flink.runtime.client.DuplicateApplicationSubmissionException: "
        f"Application has already been submitted. Application id {JOB}\n",
    ]
}
OVERVIEW = {
    "taskmanagers": 1,
    "slots-total": 2,
    "slots-available": 1,
    "jobs-running": 1,
    "jobs-finished": 0,
    "jobs-cancelled": 3,
    "jobs-failed": 0,
    "flink-version": "2.3.0",
    "flink-commit": "abc",
    "new-field-in-3.0": True,
}


def config_answer(version: str) -> dict[str, Any]:
    return {"refresh-interval": 3000, "timezone-name": "UTC", "flink-version": version, "features": {}}


class FakeFlink:
    """A fake Flink REST endpoint for MockTransport: routes (method, path) to canned handlers and
    records every request."""

    def __init__(self, version: str = "2.3.0") -> None:
        self.routes: dict[tuple[str, str], Handler] = {
            ("GET", "/config"): lambda r: httpx.Response(200, json=config_answer(version))
        }
        self.requests: list[httpx.Request] = []

    def on(self, method: str, path: str, *answers: httpx.Response | Handler) -> None:
        """Answer with ``answers`` in turn (the last one repeats)."""
        queue = list(answers)

        def handler(request: httpx.Request) -> httpx.Response:
            item = queue.pop(0) if len(queue) > 1 else queue[0]
            return item(request) if callable(item) else item

        self.routes[(method, path)] = handler

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        handler = self.routes.get((request.method, request.url.path))
        if handler is None:
            return httpx.Response(404, json={"errors": ["Not found: " + request.url.path]})
        return handler(request)

    def calls(self, method: str, path: str) -> int:
        return sum(1 for r in self.requests if r.method == method and r.url.path == path)

    def body(self, method: str, path: str) -> dict[str, Any]:
        match = [r for r in self.requests if r.method == method and r.url.path == path]
        return dict(json.loads(match[-1].content))


@pytest.fixture
def fake() -> FakeFlink:
    return FakeFlink()


def make_client(fake: FakeFlink, clock: FakeClock, **kw: Any) -> FlinkClient:
    kw.setdefault("retry", RetryPolicy(max_attempts=3, initial_s=0.5, max_s=4.0))
    return FlinkClient(
        "http://flink:8081", name="prod", clock=clock, transport=httpx.MockTransport(fake), **kw
    )


def test_overview_parses_and_keeps_unknown_fields(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", "/overview", httpx.Response(200, json=OVERVIEW))
    with make_client(fake, clock) as client:
        ov = client.overview()
    assert (ov.taskmanagers, ov.slots_total, ov.slots_available, ov.jobs_cancelled) == (1, 2, 1, 3)
    assert ov.flink_version == "2.3.0"
    assert ov.model_extra == {"new-field-in-3.0": True}


@pytest.mark.parametrize(
    ("status", "error_type", "temporary"),
    [
        (400, FlinkBadRequest, False),
        (401, FlinkAuthError, False),
        (403, FlinkAuthError, False),
        (404, FlinkNotFound, False),
        (409, FlinkConflict, False),
        (500, FlinkServerError, True),
        (503, FlinkServerError, True),
    ],
)
def test_status_maps_to_error_type_with_where(
    fake: FakeFlink, clock: FakeClock, status: int, error_type: type[Exception], temporary: bool
) -> None:
    fake.on("GET", f"/jobs/{JOB}", httpx.Response(status, json={"errors": ["boom"]}))
    with (
        make_client(fake, clock, retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(error_type) as info,
    ):
        client.job(JOB)
    err = info.value
    assert isinstance(err, TemporaryError if temporary else PermanentError)
    assert isinstance(err, FlinkTemporaryError | FlinkPermanentError)
    assert (err.cluster, err.method, err.path, err.status) == ("prod", "GET", f"/jobs/{JOB}", status)
    assert f"'prod': GET /jobs/{JOB} -> {status}: boom" in str(err)


def test_an_undecodable_answer_to_a_get_is_no_answer_retried_and_charged_to_the_breaker(
    clock: FakeClock,
) -> None:
    def broken_gzip(request: httpx.Request) -> httpx.Response:
        return httpx.Response(200, headers={"Content-Encoding": "gzip"}, content=b"not gzip")

    transport = httpx.MockTransport(broken_gzip)
    retry = RetryPolicy(max_attempts=2, initial_s=0.5, max_s=4.0)
    with (
        FlinkClient("http://x", clock=clock, retry=retry, breaker_threshold=2, transport=transport) as client,
        pytest.raises(FlinkNoAnswer, match="no readable answer") as caught,
    ):
        client.overview()
    assert isinstance(caught.value.__cause__, httpx.DecodingError)
    assert len(clock.sleeps) == 1  # a GET: retried once
    assert client.breaker.state == "open"  # both attempts counted as failures


def test_non_json_error_body_uses_first_line(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", "/overview", httpx.Response(502, text="<html>Bad Gateway</html>\n<body/>"))
    with (
        make_client(fake, clock, retry=RetryPolicy(max_attempts=1)) as client,
        pytest.raises(FlinkServerError) as e,
    ):
        client.overview()
    assert e.value.detail == "<html>Bad Gateway</html>"


def test_unexpected_answer_shape_is_a_clear_error(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", f"/jobs/{JOB}", httpx.Response(200, json={"jid": JOB}))
    with make_client(fake, clock) as client, pytest.raises(FlinkBadAnswer, match=r"JobDetails.*name"):
        client.job(JOB)


# --- run -----------------------------------------------------------------------------------------


def test_run_failure_carries_the_last_caused_by_line(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", "/jars/j.jar/run", httpx.Response(400, json=MISSING_SAVEPOINT))
    with make_client(fake, clock) as client, pytest.raises(FlinkBadRequest) as info:
        client.run("j.jar", RunRequest(entry_class="x.Y", savepoint_path="/nope"))
    message = str(info.value)
    assert "Cannot find checkpoint or savepoint file/directory '/nope'" in message
    assert message.endswith("on file system 'file'.")
    assert "Could not execute application. Caused by: java.io.FileNotFoundException" in message
    assert fake.calls("POST", "/jars/j.jar/run") == 1


def test_run_with_reused_job_id_raises_duplicate_job_id(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", "/jars/j.jar/run", httpx.Response(400, json=DUPLICATE))
    with make_client(fake, clock) as client, pytest.raises(DuplicateJobId) as info:
        client.run("j.jar", RunRequest(job_id=JOB))
    assert info.value.job_id == JOB
    assert isinstance(info.value, FlinkConflict)
    assert isinstance(info.value.__cause__, FlinkBadRequest)
    assert str(info.value).endswith("(DuplicateApplicationSubmissionException)")


def test_duplicate_job_id_names_the_exception_flink_1_x_raised(clock: FakeClock) -> None:
    fake = FakeFlink("1.20.5")
    old = json.loads(json.dumps(DUPLICATE).replace("DuplicateApplication", "DuplicateJob"))
    fake.on("POST", "/jars/j.jar/run", httpx.Response(500, json=old))
    with make_client(fake, clock) as client, pytest.raises(DuplicateJobId) as info:
        client.run("j.jar", RunRequest(job_id=JOB))
    assert str(info.value).endswith("(DuplicateJobSubmissionException)")
    assert "DuplicateApplication" not in str(info.value)


def test_run_500_is_a_program_error_not_retried_and_not_charged_to_the_breaker(
    fake: FakeFlink, clock: FakeClock
) -> None:
    bad_entry = {
        "errors": [
            "org.apache.flink.runtime.rest.handler.RestHandlerException: ...\n"
            "Caused by: java.lang.ClassNotFoundException: x.Y\n\tat a.b(C.java:1)\n"
        ]
    }
    fake.on("POST", "/jars/j.jar/run", httpx.Response(500, json=bad_entry))
    fake.on(
        "POST",
        "/jars/gone.jar/run",
        httpx.Response(
            500,
            json={
                "errors": [
                    "org.apache.flink.runtime.rest.handler.RestHandlerException: "
                    "Jar file /tmp/up/gone.jar does not exist"
                ]
            },
        ),
    )
    with make_client(fake, clock, breaker_threshold=1) as client:
        with pytest.raises(FlinkProgramError, match=r"ClassNotFoundException: x\.Y$"):
            client.run("j.jar", RunRequest(entry_class="x.Y"))
        with pytest.raises(FlinkNotFound, match="does not exist"):
            client.run("gone.jar", RunRequest(entry_class="x.Y"))
        assert client.breaker.state == "closed"
    assert fake.calls("POST", "/jars/j.jar/run") == 1
    assert clock.sleeps == []


def test_run_503_stays_temporary_and_opens_the_breaker(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", "/jars/j.jar/run", httpx.Response(503, json={"errors": ["leader election"]}))
    with make_client(fake, clock, breaker_threshold=1) as client:
        with pytest.raises(FlinkServerError):
            client.run("j.jar", RunRequest())
        assert client.breaker.state == "open"


@pytest.mark.parametrize(
    ("version", "mode_key", "absent_key"),
    [("2.3.0", "claimMode", "restoreMode"), ("1.20.5", "restoreMode", "claimMode")],
)
def test_run_body_is_version_specific(clock: FakeClock, version: str, mode_key: str, absent_key: str) -> None:
    fake = FakeFlink(version)
    answer = {"jobid": JOB, "applicationId": "b" * 32} if version.startswith("2") else {"jobid": JOB}
    fake.on("POST", "/jars/j.jar/run", httpx.Response(200, json=answer))
    request = RunRequest(
        entry_class="com.example.Job",
        args=["--out", "/tmp/o p"],
        parallelism=2,
        savepoint_path="file:/sp/savepoint-1",
        job_id=JOB,
        flink_configuration={"pipeline.name": "x"},
    )
    with make_client(fake, clock) as client:
        result = client.run("j.jar", request)
        client.run("j.jar", request)
    assert result.jobid == JOB
    assert result.application_id == ("b" * 32 if version.startswith("2") else None)
    body = fake.body("POST", "/jars/j.jar/run")
    assert body == {
        "programArgsList": ["--out", "/tmp/o p"],
        "entryClass": "com.example.Job",
        "parallelism": 2,
        "jobId": JOB,
        "flinkConfiguration": {"pipeline.name": "x"},
        "savepointPath": "file:/sp/savepoint-1",
        "allowNonRestoredState": False,
        mode_key: "NO_CLAIM",
    }
    assert absent_key not in body
    assert "programArgs" not in body
    assert fake.calls("GET", "/config") == 1  # version learnt once, cached


def test_run_request_rejects_a_malformed_job_id() -> None:
    with pytest.raises(ValueError, match="32 lowercase hex"):
        RunRequest(job_id="not-a-job-id")


def test_deterministic_job_id_is_stable_hex_and_separates_parts() -> None:
    a = deterministic_job_id("prod", "orders", "3")
    assert a == deterministic_job_id("prod", "orders", "3")
    assert len(a) == 32
    assert int(a, 16) >= 0
    assert a == a.lower()
    assert a != deterministic_job_id("prod", "orders", "4")
    assert deterministic_job_id("ab", "c") != deterministic_job_id("a", "bc")
    RunRequest(job_id=a)  # accepted by the run request


def test_upload_uses_jarfile_field_and_returns_basename(
    fake: FakeFlink, clock: FakeClock, tmp_path: Path
) -> None:
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK\x03\x04fake")
    fake.on(
        "POST",
        "/jars/upload",
        httpx.Response(
            200, json={"filename": "/tmp/flink-web/flink-web-upload/1234_job.jar", "status": "success"}
        ),
    )
    with make_client(fake, clock) as client:
        assert client.upload_jar(jar) == "1234_job.jar"
    request = fake.requests[-1]
    assert b'name="jarfile"; filename="job.jar"' in request.content
    assert b"PK\x03\x04fake" in request.content


def test_jar_list_plan_delete(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on(
        "GET",
        "/jars",
        httpx.Response(
            200,
            json={
                "address": "http://localhost:8081",
                "files": [
                    {
                        "id": "1_a.jar",
                        "name": "a.jar",
                        "uploaded": 1,
                        "entry": [{"name": "x.Y", "description": None}],
                    }
                ],
            },
        ),
    )
    fake.on("POST", "/jars/1_a.jar/plan", httpx.Response(200, json={"plan": {"jid": JOB, "nodes": []}}))
    fake.on("DELETE", "/jars/1_a.jar", httpx.Response(200, json={}))
    with make_client(fake, clock) as client:
        assert [f.entry[0].name for f in client.jars().files] == ["x.Y"]
        plan = client.plan(
            "1_a.jar", RunRequest(entry_class="x.Y", args=["a"], savepoint_path="/sp", job_id=JOB)
        )
        client.delete_jar("1_a.jar")
    assert plan.plan["jid"] == JOB
    assert fake.body("POST", "/jars/1_a.jar/plan") == {"programArgsList": ["a"], "entryClass": "x.Y"}
    assert fake.calls("DELETE", "/jars/1_a.jar") == 1


# --- savepoints and polling -------------------------------------------------------------------------


def sp_status(status: str, operation: dict[str, Any] | None = None) -> httpx.Response:
    body: dict[str, Any] = {"status": {"id": status}}
    if operation is not None:
        body["operation"] = operation
    return httpx.Response(200, json=body)


def test_stop_with_savepoint_then_wait_returns_location(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", f"/jobs/{JOB}/stop", httpx.Response(202, json={"request-id": TRIGGER}))
    fake.on(
        "GET",
        f"/jobs/{JOB}/savepoints/{TRIGGER}",
        sp_status("IN_PROGRESS"),
        sp_status("IN_PROGRESS"),
        sp_status("COMPLETED", {"location": "file:/sp/savepoint-aaaa"}),
    )
    with make_client(fake, clock) as client:
        trigger = client.stop_with_savepoint(JOB, trigger_id=TRIGGER, target_directory="/sp")
        location = client.wait_for_savepoint(JOB, trigger, timeout=10, poll_s=0.25)
    assert trigger == TRIGGER
    assert location == "file:/sp/savepoint-aaaa"
    assert fake.body("POST", f"/jobs/{JOB}/stop") == {
        "drain": False,
        "targetDirectory": "/sp",
        "triggerId": TRIGGER,
    }
    assert clock.sleeps == [0.25, 0.25]


def test_trigger_savepoint_body(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", f"/jobs/{JOB}/savepoints", httpx.Response(202, json={"request-id": TRIGGER}))
    with make_client(fake, clock) as client:
        assert client.trigger_savepoint(JOB, trigger_id=TRIGGER, target_directory="/sp") == TRIGGER
    assert fake.body("POST", f"/jobs/{JOB}/savepoints") == {
        "cancel-job": False,
        "target-directory": "/sp",
        "triggerId": TRIGGER,
    }


def test_completed_with_failure_cause_is_savepoint_failed(fake: FakeFlink, clock: FakeClock) -> None:
    cause = {
        "class": "java.util.concurrent.CompletionException",
        "stack-trace": "java.util.concurrent.CompletionException: x\n\tat a.b(C.java:1)\n"
        "Caused by: org.apache.flink.runtime.messages.FlinkJobNotFoundException: "
        "Could not find Flink job (aaaa)\n",
        "serialized-throwable": "rO0AB...",
    }
    fake.on("GET", f"/jobs/{JOB}/savepoints/t1", sp_status("COMPLETED", {"failure-cause": cause}))
    with make_client(fake, clock) as client, pytest.raises(SavepointFailed) as info:
        client.wait_for_savepoint(JOB, "t1", timeout=5)
    assert str(info.value).endswith(
        "savepoint failed: org.apache.flink.runtime.messages.FlinkJobNotFoundException: "
        "Could not find Flink job (aaaa)"
    )


def test_failure_cause_with_a_blank_stack_trace_names_the_class() -> None:
    blank = FailureCause.model_validate({"class": "java.io.IOException", "stack-trace": " \n"})
    assert blank.summary() == "java.io.IOException"
    assert FailureCause.model_validate({}).summary() == "unknown failure"


def test_completed_without_location_is_savepoint_failed(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", f"/jobs/{JOB}/savepoints/t1", sp_status("COMPLETED", {}))
    with make_client(fake, clock) as client, pytest.raises(SavepointFailed, match="without a location"):
        client.wait_for_savepoint(JOB, "t1", timeout=5)


def test_wait_for_savepoint_times_out_on_the_injected_clock(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", f"/jobs/{JOB}/savepoints/t1", sp_status("IN_PROGRESS"))
    start = clock.monotonic()
    with (
        make_client(fake, clock) as client,
        pytest.raises(FlinkStillRunning, match="still IN_PROGRESS after 3 s") as info,
    ):
        client.wait_for_savepoint(JOB, "t1", timeout=3, poll_s=1)
    assert (info.value.job_id, info.value.trigger_id, info.value.last_state) == (JOB, "t1", "IN_PROGRESS")
    assert info.value.retryable
    assert clock.monotonic() - start == 3
    assert fake.calls("GET", f"/jobs/{JOB}/savepoints/t1") == 4


def test_savepoint_disposal_trigger_and_poll(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("POST", "/savepoint-disposal", httpx.Response(200, json={"request-id": "d1"}))
    fake.on("GET", "/savepoint-disposal/d1", sp_status("IN_PROGRESS"), sp_status("COMPLETED", {}))
    fake.on(
        "GET",
        "/savepoint-disposal/d2",
        sp_status("COMPLETED", {"failure-cause": {"class": "java.io.IOException"}}),
    )
    with make_client(fake, clock) as client:
        client.wait_for_disposal(client.dispose_savepoint("file:/sp/savepoint-1"), timeout=5)
        with pytest.raises(OperationFailed, match=r"disposal failed: java\.io\.IOException"):
            client.wait_for_disposal("d2", timeout=5)
    assert fake.body("POST", "/savepoint-disposal") == {"savepoint-path": "file:/sp/savepoint-1"}


def job_answer(state: str, *vertex_states: str) -> httpx.Response:
    vertices = [
        {"id": f"v{i}", "name": "op", "parallelism": 1, "status": s} for i, s in enumerate(vertex_states)
    ]
    return httpx.Response(
        200, json={"jid": JOB, "name": "j", "state": state, "vertices": vertices, "isStoppable": False}
    )


def test_wait_for_job_state_waits_for_all_tasks(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on(
        "GET",
        f"/jobs/{JOB}",
        job_answer("CREATED", "CREATED"),
        job_answer("RUNNING", "RUNNING", "DEPLOYING"),
        job_answer("RUNNING", "RUNNING", "RUNNING"),
    )
    with make_client(fake, clock) as client:
        details = client.wait_for_job_state(JOB, {"RUNNING"}, timeout=10, poll_s=0.5, all_tasks_running=True)
    assert details.all_tasks_running
    assert clock.sleeps == [0.5, 0.5]


def test_wait_for_job_state_fails_fast_on_other_terminal_state(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", f"/jobs/{JOB}", job_answer("FAILED", "FAILED"))
    with make_client(fake, clock) as client, pytest.raises(JobEnded, match="ended FAILED") as info:
        client.wait_for_job_state(JOB, {"RUNNING"}, timeout=10)
    assert (info.value.job_id, info.value.state) == (JOB, "FAILED")
    assert isinstance(info.value, OperationFailed)
    assert clock.sleeps == []


def test_wait_for_job_state_times_out(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("GET", f"/jobs/{JOB}", job_answer("RUNNING", "RUNNING"))
    with (
        make_client(fake, clock) as client,
        pytest.raises(FlinkStillRunning, match="still RUNNING after 2 s"),
    ):
        client.wait_for_job_state(JOB, {"CANCELED"}, timeout=2, poll_s=1)


def test_cancel_sends_patch_mode_cancel(fake: FakeFlink, clock: FakeClock) -> None:
    fake.on("PATCH", f"/jobs/{JOB}", httpx.Response(202, json={}))
    with make_client(fake, clock) as client:
        client.cancel(JOB)
    assert fake.requests[-1].url.params["mode"] == "cancel"


# --- answer shapes ---------------------------------------------------------------------------------

EXCEPTIONS_120 = {
    "root-exception": "java.lang.RuntimeException: boom\n\tat X.y(X.java:1)\n",
    "timestamp": 1700000000000,
    "all-exceptions": [],
    "truncated": False,
    "exceptionHistory": {
        "entries": [
            {
                "exceptionName": "java.lang.RuntimeException",
                "stacktrace": "java.lang.RuntimeException: boom\n\tat X.y(X.java:1)\n",
                "timestamp": 1700000000000,
                "taskName": "Source (1/1)",
                "location": "localhost:1",
                "endpoint": "localhost:1",
                "taskManagerId": "tm",
                "failureLabels": {},
                "concurrentExceptions": [],
            }
        ],
        "truncated": False,
    },
}
EXCEPTIONS_2X = {
    "exceptionHistory": {
        "entries": [
            {
                "exceptionName": "java.lang.IllegalStateException",
                "stacktrace": "java.lang.IllegalStateException: old",
                "timestamp": 1,
                "failureLabels": {},
                "concurrentExceptions": [],
            },
            {
                "exceptionName": "java.lang.RuntimeException",
                "stacktrace": "java.lang.RuntimeException: new\n\tat Z\n"
                "Caused by: java.io.IOException: disk\n\tat Q\n",
                "timestamp": 2,
                "failureLabels": {},
                "concurrentExceptions": [],
            },
        ],
        "truncated": False,
    }
}


@pytest.mark.parametrize(
    ("answer", "cause"),
    [
        (EXCEPTIONS_120, "java.lang.RuntimeException: boom"),
        (EXCEPTIONS_2X, "java.io.IOException: disk"),
        (
            {"root-exception": "java.io.IOException: only root\n\tat A", "all-exceptions": []},
            "java.io.IOException: only root",
        ),
        ({"exceptionHistory": {"entries": [], "truncated": False}}, None),
    ],
    ids=["flink-1.20", "flink-2.x", "root-only", "never-failed"],
)
def test_both_exception_shapes(
    fake: FakeFlink, clock: FakeClock, answer: dict[str, Any], cause: str | None
) -> None:
    fake.on("GET", f"/jobs/{JOB}/exceptions", httpx.Response(200, json=answer))
    with make_client(fake, clock) as client:
        assert client.exceptions(JOB).root_cause() == cause


def test_checkpoints_config_taskmanagers_jobs_overview(fake: FakeFlink, clock: FakeClock) -> None:
    completed = {
        "id": 7,
        "status": "COMPLETED",
        "is_savepoint": False,
        "trigger_timestamp": 5,
        "latest_ack_timestamp": 6,
        "external_path": "file:/cp/a/chk-7",
        "checkpoint_type": "CHECKPOINT",
    }
    fake.on(
        "GET",
        f"/jobs/{JOB}/checkpoints",
        httpx.Response(
            200,
            json={
                "counts": {"restored": 1, "total": 7, "in_progress": 0, "completed": 7, "failed": 0},
                "summary": {},
                "latest": {
                    "completed": completed,
                    "savepoint": None,
                    "failed": None,
                    "restored": {
                        "id": 3,
                        "restore_timestamp": 1,
                        "is_savepoint": True,
                        "external_path": "file:/sp/s",
                    },
                },
                "history": [completed],
            },
        ),
    )
    fake.on(
        "GET",
        f"/jobs/{JOB}/config",
        httpx.Response(
            200,
            json={
                "jid": JOB,
                "name": "j",
                "execution-config": {"job-parallelism": 2, "user-config": {"out": "/o"}},
            },
        ),
    )
    fake.on(
        "GET",
        "/taskmanagers",
        httpx.Response(
            200,
            json={
                "taskmanagers": [
                    {
                        "id": "tm1",
                        "path": "pekko://x",
                        "dataPort": 1,
                        "slotsNumber": 2,
                        "freeSlots": 1,
                        "hardware": {},
                    }
                ]
            },
        ),
    )
    fake.on(
        "GET",
        "/jobs/overview",
        httpx.Response(
            200,
            json={
                "jobs": [
                    {
                        "jid": JOB,
                        "name": "j",
                        "state": "RUNNING",
                        "start-time": 1,
                        "end-time": -1,
                        "duration": 5,
                        "last-modification": 1,
                        "tasks": {"running": 1},
                    }
                ]
            },
        ),
    )
    with make_client(fake, clock) as client:
        cps = client.checkpoints(JOB)
        cfg = client.job_config(JOB)
        tms = client.taskmanagers()
        jobs = client.jobs_overview()
    assert cps.latest.completed is not None
    assert cps.latest.completed.external_path == "file:/cp/a/chk-7"
    assert cps.latest.restored is not None
    assert cps.latest.restored.is_savepoint
    assert cps.counts.completed == 7
    assert cfg.execution_config["job-parallelism"] == 2
    assert (tms.taskmanagers[0].slots_number, tms.taskmanagers[0].free_slots) == (2, 1)
    assert [(j.jid, j.state) for j in jobs.jobs] == [(JOB, "RUNNING")]


# --- auth and secret hygiene -----------------------------------------------------------------------

TOKEN = "s3cr3t-T0KEN-value"
PASSWORD = "pa55-W0RD-value"


@pytest.mark.usefixtures("flink_logs_enabled")
def test_bearer_and_basic_auth_headers_and_no_leaks(tmp_path: Path, clock: FakeClock) -> None:
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN + "\n")
    pw_file = tmp_path / "pw"
    pw_file.write_text(PASSWORD)
    bearer = ClusterConfig(
        url="https://flink:8443", auth=ClusterAuth(kind="bearer", token=SecretRef(file=token_file))
    )
    basic = ClusterConfig(
        url="http://flink:8081",  # explicitly allowed in clear, e.g. a loopback proxy
        auth=ClusterAuth(
            kind="basic", username="ops", password=SecretRef(file=pw_file), allow_plain_http=True
        ),
    )
    logs: list[str] = []
    sink = logger.add(logs.append, level="DEBUG", format="{message} {extra}")
    try:
        for cfg, expected in ((bearer, f"Bearer {TOKEN}"), (basic, "Basic b3BzOnBhNTUtVzBSRC12YWx1ZQ==")):
            seen: list[str] = []

            def deny(request: httpx.Request, seen: list[str] = seen) -> httpx.Response:
                seen.append(request.headers.get("authorization", ""))
                return httpx.Response(401, json={"errors": ["Unauthorized"]})

            client = FlinkClient.from_config("secure", cfg, clock=clock, transport=httpx.MockTransport(deny))
            with client, pytest.raises(FlinkAuthError) as info:
                client.overview()
            assert seen == [expected]
            texts = [repr(client), str(info.value), repr(info.value), repr(client._http.auth), *logs]
            for text in texts:
                assert TOKEN not in text
                assert PASSWORD not in text
                assert "b3BzOnBh" not in text
    finally:
        logger.remove(sink)
    assert any("GET /overview -> 401" in line for line in logs)


def test_config_refuses_credentials_in_the_url() -> None:
    with pytest.raises(ValidationError, match="must not hold credentials"):
        ClusterConfig(url="https://ops:hunter2@flink.example:8443")
    with pytest.raises(ValidationError, match="http:// or https://"):
        ClusterConfig(url="flink.example:8081")


def test_repr_redacts_userinfo_in_url(clock: FakeClock) -> None:
    client = FlinkClient("https://ops:hunter2@flink.example:8443", clock=clock)
    with client:
        assert "hunter2" not in repr(client)
        assert "flink.example:8443" in repr(client)


def test_auth_config_errors_name_the_file_not_the_value(tmp_path: Path, clock: FakeClock) -> None:
    missing = ClusterConfig(auth=ClusterAuth(kind="bearer", token=SecretRef(file=tmp_path / "absent")))
    with pytest.raises(ConfigError, match="absent"):
        FlinkClient.from_config("c", missing, clock=clock)
    with pytest.raises(ValidationError, match="bearer auth needs 'token'"):
        ClusterAuth(kind="bearer")
    with pytest.raises(ValidationError, match="basic auth needs 'username' and 'password'"):
        ClusterAuth(kind="basic", username="ops")
    with pytest.raises(ValidationError, match="needs both 'cert_file' and 'key'"):
        ClusterTls(cert_file=tmp_path / "c.pem")


def test_tls_key_errors_do_not_echo_key_material(tmp_path: Path, clock: FakeClock) -> None:
    cert = tmp_path / "c.pem"
    cert.write_text("-----BEGIN CERTIFICATE-----\nnotacert\n-----END CERTIFICATE-----\n")
    key = tmp_path / "k.pem"
    key.write_text("-----BEGIN PRIVATE KEY-----\nSUPERSECRETKEYBYTES\n-----END PRIVATE KEY-----\n")
    cfg = ClusterConfig(url="https://flink:8443", tls=ClusterTls(cert_file=cert, key=SecretRef(file=key)))
    with pytest.raises(ConfigError) as info:
        FlinkClient.from_config("tls", cfg, clock=clock)
    assert "SUPERSECRETKEYBYTES" not in str(info.value)
    assert str(key) in str(info.value)


def test_upload_answer_without_filename(fake: FakeFlink, clock: FakeClock, tmp_path: Path) -> None:
    jar = tmp_path / "job.jar"
    jar.write_bytes(b"PK")
    fake.on("POST", "/jars/upload", httpx.Response(200, json={"status": "success"}))
    with (
        make_client(fake, clock) as client,
        pytest.raises(
            FlinkMaybeApplied, match=r"accepted, answer unreadable.*JarUpload \(filename\)"
        ) as info,
    ):
        client.upload_jar(jar)
    assert not info.value.idempotent  # uploading again stores a second copy
