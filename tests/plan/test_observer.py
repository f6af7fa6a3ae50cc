"""The observer: one jobs overview and one cluster overview per cluster, failures become unreachable
views (fakes at our boundary)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import pytest

from flink_gitops.flink.errors import CircuitOpen, FlinkAuthError, FlinkNotSent
from flink_gitops.flink.models import ClusterOverview, JobsOverview
from flink_gitops.observe.observer import observe


class FakeCluster:
    """A fake of the calls the observer makes; counts jobs-overview calls and the threads they came
    from. ``overview_error`` fails only ``GET /overview`` (the slots)."""

    def __init__(
        self,
        jobs: list[dict[str, object]] | None = None,
        error: Exception | None = None,
        *,
        slots: tuple[int, int] = (4, 4),
        default_parallelism: int = 1,
        overview_error: Exception | None = None,
    ) -> None:
        self.jobs = jobs or []
        self.error = error
        self.slots = slots
        self.parallelism = default_parallelism
        self.overview_error = overview_error
        self.calls = 0
        self.threads: set[int] = set()
        self.barrier: threading.Barrier | None = None

    def overview(self) -> ClusterOverview:
        if self.overview_error is not None:
            raise self.overview_error
        total, free = self.slots
        return ClusterOverview.model_validate({"slots-total": total, "slots-available": free})

    def default_parallelism(self) -> int:
        return self.parallelism

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


def test_slots_and_default_parallelism_are_in_the_view() -> None:
    views = observe({"a": FakeCluster(slots=(6, 2), default_parallelism=3)})
    assert (views["a"].slots_total, views["a"].slots_free, views["a"].default_parallelism) == (6, 2, 3)


def test_a_cluster_whose_overview_fails_is_unreachable() -> None:
    down = FlinkNotSent("connection refused", cluster="eu", method="GET", path="/overview")
    views = observe({"eu": FakeCluster(overview_error=down), "us": FakeCluster()})
    assert not views["eu"].reachable
    assert views["eu"].jobs == {}
    assert views["eu"].error is not None
    assert views["eu"].error.startswith("FlinkNotSent")
    assert views["us"].reachable
