"""The observer: one overview call per cluster, failures become unreachable views (fakes at our boundary)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from flink_gitops.flink.errors import CircuitOpen, FlinkAuthError, FlinkNotSent
from flink_gitops.flink.models import JobsOverview
from flink_gitops.observe.observer import observe


class FakeCluster:
    """A fake of the one call the observer makes; counts calls and the threads they came from."""

    def __init__(self, jobs: list[dict[str, object]] | None = None, error: Exception | None = None) -> None:
        self.jobs = jobs or []
        self.error = error
        self.calls = 0
        self.threads: set[int] = set()
        self.barrier: threading.Barrier | None = None

    def jobs_overview(self) -> JobsOverview:
        self.calls += 1
        self.threads.add(threading.get_ident())
        if self.barrier is not None:
            self.barrier.wait(timeout=5)
        if self.error is not None:
            raise self.error
        return JobsOverview.model_validate({"jobs": self.jobs})


def test_one_call_per_cluster_and_jobs_by_id() -> None:
    a = FakeCluster(
        [
            {"jid": "a" * 32, "name": "x", "state": "RUNNING"},
            {"jid": "b" * 32, "name": "y", "state": "CANCELED"},
        ]
    )
    views = observe({"a": a})
    assert a.calls == 1
    assert views["a"].reachable
    assert [j.job_id for j in views["a"].live_jobs()] == ["a" * 32]
    assert views["a"].jobs["b" * 32].terminal


def test_clusters_are_observed_concurrently() -> None:
    fakes = {f"c{i}": FakeCluster() for i in range(3)}
    barrier = threading.Barrier(3)
    for f in fakes.values():
        f.barrier = barrier  # each call waits for the others: sequential calls would break the barrier
    views = observe(fakes)
    assert all(v.reachable for v in views.values())
    assert len(set().union(*(f.threads for f in fakes.values()))) == 3


@pytest.mark.parametrize(
    "error",
    [
        FlinkNotSent("connection refused", cluster="eu", method="GET", path="/jobs/overview"),
        FlinkAuthError("401", cluster="eu", method="GET", path="/jobs/overview", status=401),
        CircuitOpen(
            cluster="eu",
            method="GET",
            path="/jobs/overview",
            until=datetime(2026, 1, 1, tzinfo=UTC),
            retry_in=30,
        ),
    ],
    ids=["unreachable", "auth", "breaker-open"],
)
def test_a_failing_cluster_is_unreachable_and_the_others_still_observed(error: Exception) -> None:
    views = observe({"eu": FakeCluster(error=error), "us": FakeCluster()})
    assert not views["eu"].reachable
    assert views["eu"].jobs == {}
    assert views["eu"].error is not None
    assert views["eu"].error.startswith(type(error).__name__)
    assert views["us"].reachable


def test_a_bug_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        observe({"a": FakeCluster(error=ZeroDivisionError())})
