"""Periodic savepoints in the planner, with plain values (no cluster, no store, no fakes)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView
from flink_gitops.plan.model import ActionKind, Status
from flink_gitops.plan.planner import plan
from flink_gitops.plan.savepoints import periodic_due
from flink_gitops.specs.model import FlinkJob
from tests.plan.test_planner import JOB_ID, NOW, desired_job, record, running, state, view


def spec(periodic: int | str | None = 600, mode: str = "streaming", **job: Any) -> FlinkJob:
    return FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "orders"},
            "spec": {
                "mode": mode,
                "job": {"jarURI": "artifacts/a.jar", "entryClass": "com.example.Main", **job},
                "savepoints": {"periodic": periodic},
            },
        }
    )


def plan_for(want: FlinkJob, rec_spec: FlinkJob | None = None, observed: Any = None, **rec: Any) -> Any:
    return plan(
        state(desired_job(want)),
        running() if observed is None else observed,
        {"orders": record(rec_spec or want, **rec)},
        NOW,
    )


def test_due_when_the_current_savepoint_is_as_old_as_periodic() -> None:
    p = plan_for(spec("10m"), savepoint="file:///sp/1", savepoint_at=NOW - timedelta(seconds=600))
    (a,) = p.actions
    assert (a.kind, a.origin, a.stop, a.current_job_id) == (ActionKind.SAVEPOINT, "periodic", "none", JOB_ID)
    assert a.desired is not None
    assert "600 s old" in a.reason
    assert p.reports["orders"].status is Status.PENDING


def test_not_due_one_second_before() -> None:
    p = plan_for(spec(600), savepoint="file:///sp/1", savepoint_at=NOW - timedelta(seconds=599))
    assert p.actions == ()
    assert p.reports["orders"].status is Status.IN_SYNC


def test_due_now_when_no_savepoint_time_is_recorded() -> None:
    (a,) = plan_for(spec(600)).actions
    assert a.origin == "periodic"
    assert "no savepoint time" in a.reason


def test_no_periodic_setting_means_none() -> None:
    assert plan_for(spec(None), savepoint_at=NOW - timedelta(days=30)).actions == ()


@pytest.mark.parametrize("state_", ["RESTARTING", "FAILED", "CANCELED", "INITIALIZING"])
def test_only_for_a_job_running_on_the_cluster(state_: str) -> None:
    p = plan_for(spec(60), observed={"default": view("default", (JOB_ID, state_))})
    assert all(a.origin != "periodic" for a in p.actions)


@pytest.mark.parametrize("lifecycle", [JobLifecycle.SUSPENDED, JobLifecycle.FAILED, JobLifecycle.CREATED])
def test_only_for_a_lifecycle_that_runs_a_job(lifecycle: JobLifecycle) -> None:
    p = plan_for(
        spec(60, state="suspended" if lifecycle is JobLifecycle.SUSPENDED else "running"), lifecycle=lifecycle
    )
    assert all(a.origin != "periodic" for a in p.actions)


def test_a_rolled_back_job_that_runs_gets_them_too() -> None:
    (a,) = plan_for(spec(60), lifecycle=JobLifecycle.ROLLED_BACK).actions
    assert a.origin == "periodic"


def test_never_for_batch_jobs() -> None:
    assert plan_for(spec(60, mode="batch")).actions == ()


def test_a_spec_change_wins_over_a_due_periodic_savepoint() -> None:
    """One action per job per cycle: the upgrade; its stop savepoint resets the clock anyway."""
    old, new = spec(60, args=["1"]), spec(60, args=["2"])
    p = plan_for(new, old, savepoint_at=NOW - timedelta(days=1))
    (a,) = p.actions
    assert (a.kind, a.origin) == (ActionKind.UPGRADE, None)


def test_a_savepoint_nonce_is_taken_as_a_nonce_not_periodic() -> None:
    p = plan_for(spec(60, savepointTriggerNonce=1), spec(60), savepoint_at=NOW - timedelta(days=1))
    (a,) = p.actions
    assert (a.kind, a.origin) == (ActionKind.SAVEPOINT, "nonce")


def test_an_unreachable_cluster_gets_none() -> None:
    p = plan_for(spec(60), observed={"default": ClusterView.unreachable("default", "down")})
    assert p.actions == ()
    assert p.reports["orders"].status is Status.UNKNOWN


def test_backoff_after_a_failed_periodic_savepoint_waits() -> None:
    p = plan_for(spec(60), next_attempt_at=NOW + timedelta(seconds=5), last_error="savepoint failed")
    assert p.actions == ()
    assert p.reports["orders"].status is Status.WAITING


@given(
    every=st.integers(min_value=0, max_value=10**7),
    age=st.integers(min_value=-(10**7), max_value=10**8),
)
def test_due_exactly_when_the_age_reaches_periodic(every: int, age: int) -> None:
    want = desired_job(spec(every))
    rec = record(spec(every), savepoint_at=NOW - timedelta(seconds=age))
    assert (periodic_due(want, rec, running(), NOW) is not None) == (age >= every)
