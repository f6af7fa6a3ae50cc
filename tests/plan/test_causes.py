"""Failure causes (observe.causes): read only for our FAILED jobs, once per job id (fakes at our boundary)."""

from __future__ import annotations

from flink_gitops.flink.errors import FlinkNotSent
from flink_gitops.flink.models import JobExceptions
from flink_gitops.observe.causes import with_causes
from flink_gitops.observe.view import ClusterView, ObservedJob

OURS, THEIRS, RUNNING = "a" * 32, "b" * 32, "c" * 32


class FakeExplainer:
    """A fake of the one call ``with_causes`` makes; counts calls per job id."""

    def __init__(self, error: Exception | None = None) -> None:
        self.calls: list[str] = []
        self.error = error

    def exceptions(self, job_id: str) -> JobExceptions:
        self.calls.append(job_id)
        if self.error is not None:
            raise self.error
        trace = "org.apache.flink.runtime.JobException: Recovery suppressed\n"
        trace += "Caused by: java.io.IOException: disk full"
        return JobExceptions.model_validate(
            {"exceptionHistory": {"entries": [{"exceptionName": "x", "stacktrace": trace, "timestamp": 1}]}}
        )


def views() -> dict[str, ClusterView]:
    jobs = {
        i: ObservedJob(i, "j", s) for i, s in ((OURS, "FAILED"), (THEIRS, "FAILED"), (RUNNING, "RUNNING"))
    }
    return {"default": ClusterView("default", True, jobs)}


def test_only_our_failed_jobs_are_asked_and_once_per_job_id() -> None:
    fake, cache = FakeExplainer(), dict[str, str]()
    ours = [("default", OURS), ("default", RUNNING)]
    out = with_causes(views(), {"default": fake}, ours, cache)
    assert out["default"].causes == {OURS: "java.io.IOException: disk full"}
    assert fake.calls == [OURS]
    again = with_causes(views(), {"default": fake}, ours, cache)
    assert again["default"].causes == out["default"].causes
    assert fake.calls == [OURS]  # a terminal job's cause never changes: not asked again


def test_a_cause_that_cannot_be_read_says_so_and_is_asked_again_next_time() -> None:
    down = FlinkNotSent("connection refused", cluster="default", method="GET", path="/jobs/x/exceptions")
    fake, cache = FakeExplainer(down), dict[str, str]()
    out = with_causes(views(), {"default": fake}, [("default", OURS)], cache)
    assert out["default"].reachable
    assert out["default"].causes[OURS] == "cause not readable now (FlinkNotSent)"
    assert cache == {}
    with_causes(views(), {"default": fake}, [("default", OURS)], cache)
    assert fake.calls == [OURS, OURS]


def test_unreachable_clusters_are_not_asked() -> None:
    fake = FakeExplainer()
    dark = {"default": ClusterView.unreachable("default", "FlinkNotSent: refused")}
    assert with_causes(dark, {"default": fake}, [("default", OURS)], {}) == dark
    assert fake.calls == []
