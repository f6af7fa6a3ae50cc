"""Batch jobs in the planner (plan.schedule): run once per spec revision, or on a cron schedule with the
stated missed-run policy. Pure: plain values and the injected ``now``, no fakes."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops import cron
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan import schedule
from flink_gitops.plan.model import ActionKind, DriftKind, HealthPolicy, RecordedJob, Status
from flink_gitops.plan.planner import plan
from flink_gitops.specs.model import FlinkJob
from tests.plan.test_planner import JOB_ID, desired_job, only_action, record, state

NOW = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
NIGHTLY = "0 3 * * *"


def bspec(name: str = "report", *, schedule: str | None = None, **job: Any) -> FlinkJob:
    body = {"jarURI": "artifacts/a.jar", "entryClass": "com.example.Batch", **job}
    return FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": name},
            "spec": {"cluster": "default", "job": body, "mode": "batch", "schedule": schedule},
        }
    )


def cluster(*jobs: tuple[str, str], causes: dict[str, str] | None = None) -> dict[str, ClusterView]:
    view = ClusterView("default", True, {i: ObservedJob(i, "batch", s) for i, s in jobs}, causes=causes or {})
    return {"default": view}


def run_plan(job: FlinkJob, rec: RecordedJob | None, observed: dict[str, ClusterView], now: datetime) -> Any:
    recorded = {rec.name: rec} if rec is not None else {}
    return plan(state(desired_job(job)), observed, recorded, now, missed_run_grace_s=600)


# --- once per spec revision ---------------------------------------------------------------------


def test_a_new_batch_job_runs_once() -> None:
    a = only_action(run_plan(bspec(), None, cluster(), NOW))
    assert a.kind is ActionKind.RUN
    assert a.new_life
    assert a.scheduled_at is None


def test_a_finished_run_is_in_sync_and_never_redeployed() -> None:
    job = bspec()
    rec = record(job, lifecycle=JobLifecycle.DEPLOYED)
    for state_ in ("FINISHED", "RUNNING"):
        p = run_plan(job, rec, cluster((JOB_ID, state_)), NOW)
        assert p.actions == ()
        assert p.reports["report"].status is Status.IN_SYNC, p.reports
    # Flink drops finished jobs from its history after a while: still not run again
    p = run_plan(job, rec, cluster(), NOW + timedelta(days=2))
    assert p.actions == ()
    assert p.reports["report"].status is Status.IN_SYNC
    assert "no longer listed" in p.reports["report"].reason


def test_a_failed_run_is_retried_within_the_restart_budget_then_given_up_with_its_cause() -> None:
    job = bspec()
    failed = cluster((JOB_ID, "FAILED"), causes={JOB_ID: "java.io.IOException: disk full"})
    health = HealthPolicy(restart_budget=2, backoff_initial_s=10)

    def planned(restarts: tuple[datetime, ...]) -> Any:
        rec = record(job, lifecycle=JobLifecycle.DEPLOYED, restarts=restarts)
        recorded = {rec.name: rec}
        return plan(state(desired_job(job)), failed, recorded, NOW, missed_run_grace_s=600, health=health)

    retry = only_action(planned(()))
    assert (retry.kind, retry.drift) == (ActionKind.RUN, DriftKind.FAILED)
    assert "disk full" in retry.reason
    assert "restart 1 of 2" in retry.reason
    waiting = planned((NOW - timedelta(seconds=5),)).reports["report"]
    assert waiting.status is Status.WAITING
    assert "restart 2 of 2" in waiting.reason
    assert only_action(planned((NOW - timedelta(seconds=11),))).kind is ActionKind.RUN
    spent = only_action(planned((NOW - timedelta(seconds=60), NOW - timedelta(seconds=30))))
    assert spent.kind is ActionKind.GIVE_UP
    assert "disk full" in spent.reason
    # given up: the spec hash is failed, and nothing more runs until the spec changes
    given_up = record(job, lifecycle=JobLifecycle.FAILED, failed_hash=desired_job(job).spec_hash)
    p = plan(state(desired_job(job)), failed, {"report": given_up}, NOW, health=health)
    assert p.actions == ()
    assert p.reports["report"].status is Status.FAILED
    off = plan(
        state(desired_job(job)),
        failed,
        {"report": record(job, lifecycle=JobLifecycle.DEPLOYED)},
        NOW,
        health=HealthPolicy(restart_budget=0),
    )
    assert off.actions == ()
    assert off.reports["report"].status is Status.FAILED


def test_a_spec_change_runs_it_again_but_never_beside_a_run_still_going() -> None:
    old, new = bspec(args=["--records", "10"]), bspec(args=["--records", "20"])
    rec = record(old, lifecycle=JobLifecycle.DEPLOYED)
    a = only_action(run_plan(new, rec, cluster((JOB_ID, "FINISHED")), NOW))
    assert a.kind is ActionKind.RUN
    assert a.stop == "none"
    assert a.current_job_id == JOB_ID
    p = run_plan(new, rec, cluster((JOB_ID, "RUNNING")), NOW)
    assert p.actions == ()
    assert p.reports["report"].status is Status.WAITING
    assert "never two runs at once" in p.reports["report"].reason


def test_an_ignore_class_change_is_only_recorded() -> None:
    old = bspec()
    new = FlinkJob.model_validate(
        old.model_dump(mode="json") | {"metadata": {"name": "report", "labels": {"a": "b"}}}
    )
    rec = record(old, lifecycle=JobLifecycle.DEPLOYED)
    assert only_action(run_plan(new, rec, cluster((JOB_ID, "FINISHED")), NOW)).kind is ActionKind.RECORD


def test_suspending_a_batch_job_cancels_its_run_no_savepoint() -> None:
    job, off = bspec(), bspec(state="suspended")
    rec = record(job, lifecycle=JobLifecycle.DEPLOYED)
    a = only_action(run_plan(off, rec, cluster((JOB_ID, "RUNNING")), NOW))
    assert (a.kind, a.stop) == (ActionKind.SUSPEND, "cancel")


# --- on a schedule ------------------------------------------------------------------------------


def scheduled_rec(job: FlinkJob, **extra: Any) -> RecordedJob:
    extra.setdefault("since", datetime(2026, 11, 1, tzinfo=UTC))
    extra.setdefault("lifecycle", JobLifecycle.DEPLOYED)
    return record(job, **extra)


def test_a_new_scheduled_job_is_recorded_with_its_first_run() -> None:
    a = only_action(run_plan(bspec(schedule=NIGHTLY), None, cluster(), NOW))
    assert a.kind is ActionKind.RECORD
    assert "first run 2026-12-02T03:00" in a.reason


def test_a_scheduled_job_runs_at_its_time_and_not_before() -> None:
    job = bspec(schedule=NIGHTLY)
    last = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    rec = scheduled_rec(job, last_run_at=last)
    before = datetime(2026, 12, 2, 2, 59, 59, tzinfo=UTC)
    p = run_plan(job, rec, cluster((JOB_ID, "FINISHED")), before)
    assert p.actions == ()
    assert p.reports["report"].status is Status.IN_SYNC
    assert "next run 2026-12-02T03:00Z" in p.reports["report"].reason
    at = datetime(2026, 12, 2, 3, 0, 20, tzinfo=UTC)
    a = only_action(run_plan(job, rec, cluster((JOB_ID, "FINISHED")), at))
    assert a.kind is ActionKind.RUN
    assert a.scheduled_at == datetime(2026, 12, 2, 3, 0, tzinfo=UTC)
    assert a.stop == "none"


def test_the_first_run_comes_after_the_job_was_recorded_never_before() -> None:
    job = bspec(schedule=NIGHTLY)
    rec = scheduled_rec(job, flink_job_id=None, lifecycle=JobLifecycle.CREATED, since=NOW)
    p = run_plan(job, rec, cluster(), NOW + timedelta(hours=1))
    assert p.actions == ()
    assert "first run 2026-12-02T03:00Z" in p.reports["report"].reason
    a = only_action(run_plan(job, rec, cluster(), datetime(2026, 12, 2, 3, 1, tzinfo=UTC)))
    assert a.scheduled_at == datetime(2026, 12, 2, 3, 0, tzinfo=UTC)


def test_missed_runs_coalesce_into_one_within_the_grace_else_are_skipped() -> None:
    job = bspec(schedule="*/10 * * * *")
    rec = scheduled_rec(job, last_run_at=datetime(2026, 12, 1, 9, 0, tzinfo=UTC))
    # down from 09:05 to 12:04: 18 fire times missed, the latest (12:00) 4 minutes ago
    a = only_action(
        run_plan(job, rec, cluster((JOB_ID, "FINISHED")), datetime(2026, 12, 1, 12, 4, tzinfo=UTC))
    )
    assert a.scheduled_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
    assert "18 missed fire times coalesced into one run" in a.reason
    # the latest missed one is 9 minutes 59 s ago with a grace of 5 minutes: skipped, reported
    late = datetime(2026, 12, 1, 12, 9, 59, tzinfo=UTC)
    p = plan(
        state(desired_job(job)), cluster((JOB_ID, "FINISHED")), {"report": rec}, late, missed_run_grace_s=300
    )
    assert p.actions == ()
    report = p.reports["report"]
    assert report.status is Status.IN_SYNC
    assert "skipped 18 missed run(s), the latest for 2026-12-01T12:00Z" in report.reason
    assert "next run 2026-12-01T12:10Z" in report.reason


def test_a_run_still_going_at_the_next_fire_time_is_not_doubled() -> None:
    job = bspec(schedule="*/10 * * * *")
    rec = scheduled_rec(job, last_run_at=datetime(2026, 12, 1, 11, 50, tzinfo=UTC))
    p = run_plan(job, rec, cluster((JOB_ID, "RUNNING")), datetime(2026, 12, 1, 12, 1, tzinfo=UTC))
    assert p.actions == ()
    assert p.reports["report"].status is Status.WAITING
    assert "the run for 2026-12-01T12:00Z waits" in p.reports["report"].reason
    # the run ends within the grace: the waiting run starts, for its own fire time
    a = only_action(
        run_plan(job, rec, cluster((JOB_ID, "FINISHED")), datetime(2026, 12, 1, 12, 3, tzinfo=UTC))
    )
    assert a.scheduled_at == datetime(2026, 12, 1, 12, 0, tzinfo=UTC)


def test_a_failed_scheduled_run_is_reported_with_its_cause_and_retried_at_the_next_fire_time() -> None:
    job = bspec(schedule=NIGHTLY)
    rec = scheduled_rec(job, last_run_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    failed = cluster((JOB_ID, "FAILED"), causes={JOB_ID: "java.lang.IllegalStateException: no input"})
    p = run_plan(job, rec, failed, NOW)
    assert p.actions == ()
    assert p.reports["report"].status is Status.FAILED
    assert "no input" in p.reports["report"].reason
    assert "retried at the next run 2026-12-02T03:00Z" in p.reports["report"].reason
    a = only_action(run_plan(job, rec, failed, datetime(2026, 12, 2, 3, 0, tzinfo=UTC)))
    assert a.kind is ActionKind.RUN


def test_a_run_flink_refused_is_reported_and_retried_at_the_next_fire_time() -> None:
    job = bspec(schedule=NIGHTLY)
    rec = scheduled_rec(
        job,
        flink_job_id=None,
        lifecycle=JobLifecycle.FAILED,
        last_run_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC),
        last_error="Flink refused to start job x: ClassNotFoundException",
    )
    p = run_plan(job, rec, cluster(), NOW)
    assert p.reports["report"].status is Status.FAILED
    assert "ClassNotFoundException" in p.reports["report"].reason
    assert (
        only_action(run_plan(job, rec, cluster(), datetime(2026, 12, 2, 3, 0, tzinfo=UTC))).kind
        is ActionKind.RUN
    )


def test_a_schedule_change_is_recorded_for_the_next_run() -> None:
    old, new = bspec(schedule=NIGHTLY), bspec(schedule="0 4 * * *")
    rec = scheduled_rec(old, last_run_at=datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    a = only_action(run_plan(new, rec, cluster((JOB_ID, "FINISHED")), NOW))
    assert a.kind is ActionKind.RECORD
    assert "next run 2026-12-02T04:00Z" in a.reason


def test_next_run_for_status() -> None:
    last = datetime(2026, 12, 1, 3, 0, tzinfo=UTC)
    assert schedule.next_run(NIGHTLY, last_run_at=last, since=None, now=NOW, grace_s=600) == (
        datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        False,
    )
    due = datetime(2026, 12, 2, 3, 2, tzinfo=UTC)
    assert schedule.next_run(NIGHTLY, last_run_at=last, since=None, now=due, grace_s=600) == (
        datetime(2026, 12, 2, 3, 0, tzinfo=UTC),
        True,
    )


# --- the invariant: one run per fire time, never before it -----------------------------------------

SCHEDULES = ["*/7 * * * *", "0 * * * *", "15,45 9-17 * * 1-5", "0 0 * * 0", "*/3 */2 * * *"]


@given(
    st.sampled_from(SCHEDULES),
    st.lists(st.tuples(st.integers(1, 400), st.integers(0, 3)), min_size=1, max_size=60),
    st.sampled_from([0, 60, 600, 3600]),
)
def test_a_cron_job_never_gets_two_runs_for_one_fire_time_nor_one_before_its_time(
    text: str, steps: list[tuple[int, int]], grace: int
) -> None:
    job = bspec(schedule=text)
    c = cron.parse(text)
    since = datetime(2026, 12, 1, tzinfo=UTC)
    now = since
    last_run_at: datetime | None = None
    job_id: str | None = None
    state_: str | None = None
    runs: list[datetime] = []
    for n, (minutes, outcome) in enumerate(steps):
        now += timedelta(minutes=minutes, seconds=n % 60)
        if state_ == "RUNNING" and outcome:  # the run ends (0: still running)
            state_ = "FINISHED" if outcome != 3 else "FAILED"
        rec = scheduled_rec(job, since=since, last_run_at=last_run_at, flink_job_id=job_id)
        seen = cluster((job_id, state_)) if job_id is not None and state_ is not None else cluster()
        p = plan(state(desired_job(job)), seen, {"report": rec}, now, missed_run_grace_s=grace)
        if not p.actions:
            continue
        a = only_action(p)
        assert a.kind is ActionKind.RUN
        assert a.scheduled_at is not None
        assert a.scheduled_at <= now
        assert now - a.scheduled_at <= timedelta(seconds=grace)
        assert c.next_after(a.scheduled_at - timedelta(minutes=1)) == a.scheduled_at  # a fire time
        assert a.scheduled_at > since
        assert not runs or a.scheduled_at > runs[-1]  # one run per fire time, in order
        assert state_ != "RUNNING"  # never beside a run still going
        runs.append(a.scheduled_at)
        last_run_at, job_id, state_ = a.scheduled_at, f"{len(runs):032x}", "RUNNING"
