"""Live drift and recovery in the planner (plan.health): pure, plain values, no fakes."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan.model import ActionKind, DriftKind, HealthPolicy, Restore, Status
from flink_gitops.plan.planner import plan
from flink_gitops.specs.model import FlinkJob
from tests.plan.test_planner import JOB_ID, NOW, desired_job, only_action, record, spec, state

DEPLOYED = {"job_id": JOB_ID, "name": "counter", "tasks": 4}


def job_spec(*, drift: str | None = None, mode: str | None = None, **job: Any) -> FlinkJob:
    """``spec(**job)`` with spec-level ``drift`` / ``mode`` set."""
    body = spec(**job).model_dump(mode="json")
    body["spec"].update({k: v for k, v in (("drift", drift), ("mode", mode)) if v is not None})
    return FlinkJob.model_validate(body)


def seen(
    state_: str = "RUNNING", *, name: str = "counter", tasks: int | None = 4, job_id: str = JOB_ID
) -> ObservedJob:
    return ObservedJob(job_id, name, state_, 1, tasks)


def cluster(*jobs: ObservedJob) -> dict[str, ClusterView]:
    return {"default": ClusterView("default", True, {j.job_id: j for j in jobs})}


def planned(
    observed: dict[str, ClusterView],
    *,
    drift: str | None = None,
    policy: HealthPolicy | None = None,
    **rec: Any,
) -> Any:
    job = job_spec(drift=drift)
    recorded = {"orders": record(job, fingerprint=DEPLOYED, **rec)}
    return plan(state(desired_job(job)), observed, recorded, NOW, health=policy or HealthPolicy())


def test_a_job_running_as_deployed_is_in_sync_with_no_drift() -> None:
    p = planned(cluster(seen()))
    assert p.reports["orders"].status is Status.IN_SYNC
    assert p.reports["orders"].drift is None
    assert p.drift_changes == ()


def test_a_job_cancelled_by_hand_is_reported_under_warn_and_observe_and_never_acted_on() -> None:
    for policy in ("warn", "observe"):
        p = planned(cluster(seen("CANCELED")), drift=policy)
        report = p.reports["orders"]
        assert (p.actions, report.status, report.drift) == ((), Status.DRIFT, DriftKind.CANCELLED)
        assert policy in report.reason
        (change,) = p.drift_changes
        assert (change.kind, change.since) == (DriftKind.CANCELLED, NOW)


def test_a_job_cancelled_by_hand_is_healed_from_its_newest_state_under_heal() -> None:
    a = only_action(planned(cluster(seen("CANCELED")), drift="heal"))
    assert (a.kind, a.stop, a.restore, a.drift) == (
        ActionKind.RECOVER,
        "none",
        Restore("newest"),
        DriftKind.CANCELLED,
    )
    assert a.current_job_id == JOB_ID


def test_the_default_drift_policy_comes_from_the_config_and_a_job_overrides_it() -> None:
    heal = HealthPolicy(drift="heal")
    assert only_action(planned(cluster(seen("CANCELED")), policy=heal)).kind is ActionKind.RECOVER
    assert planned(cluster(seen("CANCELED")), drift="warn", policy=heal).actions == ()


def test_a_streaming_job_stopped_by_hand_is_cancelled_drift_but_a_finished_batch_job_is_not() -> None:
    assert planned(cluster(seen("FINISHED"))).reports["orders"].drift is DriftKind.CANCELLED
    batch = job_spec(mode="batch")
    p = plan(
        state(desired_job(batch)),
        cluster(seen("FINISHED")),
        {"orders": record(batch, fingerprint=DEPLOYED)},
        NOW,
    )
    assert (p.reports["orders"].status, p.reports["orders"].drift) == (Status.IN_SYNC, None)


def test_a_rescaled_job_is_healed_through_a_savepoint_by_upgrade_mode() -> None:
    a = only_action(planned(cluster(seen(tasks=2)), drift="heal"))
    assert (a.kind, a.stop, a.restore, a.drift) == (
        ActionKind.RECOVER,
        "savepoint",
        Restore("stop-savepoint"),
        DriftKind.RESCALED,
    )
    assert "2 tasks" in a.reason
    assert "deployed with 4" in a.reason
    report = planned(cluster(seen(tasks=2))).reports["orders"]
    assert (report.status, report.drift) == (Status.DRIFT, DriftKind.RESCALED)


def test_another_program_under_our_job_id_is_changed_drift() -> None:
    report = planned(cluster(seen(name="someone else's job"))).reports["orders"]
    assert report.drift is DriftKind.CHANGED


def test_a_failed_or_vanished_job_is_recovered_whatever_the_drift_policy() -> None:
    for observed, kind in ((cluster(seen("FAILED")), DriftKind.FAILED), (cluster(), DriftKind.MISSING)):
        for policy in ("heal", "warn", "observe"):
            a = only_action(planned(observed, drift=policy))
            assert (a.kind, a.restore, a.drift) == (ActionKind.RECOVER, Restore("newest"), kind)
            assert "restart 1 of 3" in a.reason


def test_a_stateless_job_recovers_fresh() -> None:
    job = spec(upgradeMode="stateless")
    p = plan(state(desired_job(job)), cluster(), {"orders": record(job, fingerprint=DEPLOYED)}, NOW)
    assert only_action(p).restore == Restore("none")


def test_recoveries_back_off_exponentially_inside_the_window() -> None:
    policy = HealthPolicy(restart_budget=5, backoff_initial_s=10, backoff_max_s=600)
    one = (NOW - timedelta(seconds=5),)
    p = planned(cluster(seen("FAILED")), policy=policy, restarts=one)
    assert p.reports["orders"].status is Status.WAITING
    assert "recovery 2 of 5" in p.reports["orders"].reason
    assert only_action(
        planned(cluster(seen("FAILED")), policy=policy, restarts=(NOW - timedelta(seconds=10),))
    )
    two = (NOW - timedelta(seconds=40), NOW - timedelta(seconds=15))  # second wait is 20 s
    assert (
        planned(cluster(seen("FAILED")), policy=policy, restarts=two).reports["orders"].status
        is Status.WAITING
    )
    two = (NOW - timedelta(seconds=40), NOW - timedelta(seconds=20))
    assert (
        only_action(planned(cluster(seen("FAILED")), policy=policy, restarts=two)).kind is ActionKind.RECOVER
    )


def test_past_the_restart_budget_the_job_is_given_up_and_old_restarts_fall_out_of_the_window() -> None:
    policy = HealthPolicy(restart_budget=3, restart_window_s=3600)
    recent = tuple(NOW - timedelta(minutes=m) for m in (50, 30, 10))
    a = only_action(planned(cluster(seen("FAILED")), policy=policy, restarts=recent))
    assert a.kind is ActionKind.GIVE_UP
    assert "budget spent (3 in 3600 s)" in a.reason
    old = tuple(NOW - timedelta(minutes=m) for m in (200, 100, 61))
    assert (
        only_action(planned(cluster(seen("FAILED")), policy=policy, restarts=old)).kind is ActionKind.RECOVER
    )


def test_a_given_up_job_stays_failed_until_its_spec_changes() -> None:
    job = spec()
    rec = record(job, fingerprint=DEPLOYED, failed_hash=desired_job(job).spec_hash, last_error="boom")
    p = plan(state(desired_job(job)), cluster(seen("FAILED")), {"orders": rec}, NOW)
    assert (p.actions, p.reports["orders"].status) == ((), Status.FAILED)
    changed = spec(args=["fixed"])
    assert (
        only_action(plan(state(desired_job(changed)), cluster(seen("FAILED")), {"orders": rec}, NOW)).kind
        is ActionKind.UPGRADE
    )


def test_a_zero_restart_budget_turns_recovery_off() -> None:
    p = planned(cluster(seen("FAILED")), policy=HealthPolicy(restart_budget=0))
    assert (p.actions, p.reports["orders"].status) == ((), Status.DRIFT)
    assert "recovery is off" in p.reports["orders"].reason


def test_nothing_is_redeployed_while_an_unmanaged_job_with_the_same_name_runs() -> None:
    other = seen(job_id="f" * 32)
    p = planned(cluster(seen("CANCELED"), other), drift="heal")
    assert (p.actions, p.reports["orders"].status) == ((), Status.DRIFT)
    assert "run it twice" in p.reports["orders"].reason
    assert [j.job_id for _, j in p.unmanaged] == ["f" * 32]


def test_drift_since_is_kept_while_the_kind_stays_and_cleared_when_it_ends() -> None:
    earlier = NOW - timedelta(hours=2)
    p = planned(cluster(seen("CANCELED")), drift_kind="cancelled", drift_since=earlier)
    assert p.reports["orders"].drift_since == earlier
    assert p.drift_changes == ()
    p = planned(cluster(seen()), drift_kind="cancelled", drift_since=earlier)
    (change,) = p.drift_changes
    assert (change.kind, change.since) == (None, None)


def test_an_unreachable_cluster_never_clears_a_recorded_drift() -> None:
    observed = {"default": ClusterView.unreachable("default", "down")}
    p = planned(observed, drift_kind="missing", drift_since=NOW)
    assert p.reports["orders"].status is Status.UNKNOWN
    assert p.drift_changes == ()


@given(
    st.sampled_from(["RUNNING", "FAILED", "CANCELED", "FINISHED", "RESTARTING", None]),
    st.sampled_from(["heal", "warn", "observe"]),
    st.lists(st.integers(0, 7200), max_size=6),
    st.integers(0, 4),
    st.sampled_from([4, 2, None]),
)
def test_health_invariants(
    state_: str | None, drift: str, ages: list[int], budget: int, tasks: int | None
) -> None:
    restarts = tuple(sorted(NOW - timedelta(seconds=a) for a in ages))
    policy = HealthPolicy(restart_budget=budget)
    observed = cluster(seen(state_, tasks=tasks)) if state_ else cluster()
    p = planned(observed, drift=drift, policy=policy, restarts=restarts)
    report = p.reports["orders"]
    in_window = [t for t in restarts if t > NOW - timedelta(seconds=policy.restart_window_s)]
    for action in p.actions:
        # never two copies: a recovery never stops a job unless that job still runs
        assert action.kind in (ActionKind.RECOVER, ActionKind.GIVE_UP)
        if action.kind is ActionKind.RECOVER:
            assert len(in_window) < budget
            assert (action.stop != "none") == (state_ in ("RUNNING", "RESTARTING"))
            if action.drift is not None and not action.drift.failure:
                assert drift == "heal"
        else:
            assert budget > 0
            assert len(in_window) >= budget
    if report.drift is None:
        assert p.actions == ()
        assert report.status is Status.IN_SYNC


def test_a_recovery_waits_for_free_slots_like_any_start() -> None:
    job = job_spec(parallelism=4)
    view = ClusterView("default", True, {}, slots_total=4, slots_free=2)
    recorded = {"orders": record(job, fingerprint=DEPLOYED)}
    p = plan(state(desired_job(job)), {"default": view}, recorded, NOW)
    assert p.actions == ()
    report = p.reports["orders"]
    assert report.status is Status.WAITING
    assert "waiting for 4 slots, 2 free" in report.reason
