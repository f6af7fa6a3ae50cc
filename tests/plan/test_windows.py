"""Pauses and sync windows in the planner (plan.windows): pure, plain values, no fakes.

What is held (no action, PAUSED / HELD with the reason), what never is (give-up, the resume of an
open operation, and by a window the recovery of a failure), that held jobs are still observed
(drift reported and recorded), and hypothesis properties over random windows, pauses and job situations.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.plan.model import ActionKind, DriftKind, HealthPolicy, Plan, RecordedJob, Status
from flink_gitops.plan.planner import plan
from flink_gitops.plan.windows import Holds, Pause, SyncWindow, urgent
from flink_gitops.specs.model import FlinkJob
from tests.plan.test_batch import NIGHTLY, bspec, cluster, scheduled_rec
from tests.plan.test_health import DEPLOYED, job_spec, seen
from tests.plan.test_health import cluster as hcluster
from tests.plan.test_planner import JOB_ID, NOW, desired_job, only_action, record, running, spec, state

#: NOW is 2026-12-01 12:00 UTC (a Tuesday).
DENY_NOON = SyncWindow("deny", "0 12 * * *", 3600)  # 12:00-13:00 every day: open at NOW
DENY_NIGHT = SyncWindow("deny", "0 22 * * *", 3600)  # closed at NOW
ALLOW_NIGHT = SyncWindow("allow", "0 22 * * *", 7200)
ALLOW_NOON = SyncWindow("allow", "30 11 * * *", 3600)
PAUSED_BY = datetime(2026, 12, 1, 11, 0, tzinfo=UTC)


def upgrade_case(name: str = "orders", labels: dict[str, str] | None = None) -> tuple[Any, ...]:
    old = spec(name, args=["--v", "1"], labels=labels or {})
    new = spec(name, args=["--v", "2"], labels=labels or {})
    return state(desired_job(new)), running(), {name: record(old)}


def planned(*windows: SyncWindow, pauses: tuple[Pause, ...] = (), **kw: Any) -> Plan:
    desired, observed, recorded = kw.pop("case", None) or upgrade_case()
    return plan(desired, observed, recorded, kw.pop("now", NOW), holds=Holds(windows, pauses), **kw)


def test_an_open_deny_window_holds_an_upgrade_and_says_until_when() -> None:
    p = planned(DENY_NOON)
    report = p.reports["orders"]
    assert p.actions == ()
    assert report.status is Status.HELD
    assert report.reason.startswith("held by sync window deny '0 12 * * *' until 2026-12-01T13:00:00Z")
    assert "upgrade" in report.reason  # what waits
    assert report.hold == "held by sync window deny '0 12 * * *' until 2026-12-01T13:00:00Z"
    assert not p.in_sync


def test_a_closed_deny_window_holds_nothing() -> None:
    assert only_action(planned(DENY_NIGHT)).kind is ActionKind.UPGRADE
    # and the window closes at start + duration exactly
    assert only_action(planned(DENY_NOON, now=NOW + timedelta(hours=1))).kind is ActionKind.UPGRADE
    assert planned(DENY_NOON, now=NOW + timedelta(minutes=59, seconds=59)).actions == ()


def test_an_allow_window_allows_only_while_open_and_says_when_it_opens() -> None:
    p = planned(ALLOW_NIGHT)
    assert p.actions == ()
    assert p.reports["orders"].reason.startswith(
        "held: outside sync window allow '0 22 * * *' until it opens at 2026-12-01T22:00:00Z"
    )
    assert only_action(planned(ALLOW_NIGHT, now=NOW + timedelta(hours=10, minutes=5))).kind is (
        ActionKind.UPGRADE
    )
    # one of several allow windows open is enough
    assert only_action(planned(ALLOW_NIGHT, ALLOW_NOON)).kind is ActionKind.UPGRADE


def test_deny_wins_over_allow() -> None:
    p = planned(ALLOW_NOON, DENY_NOON)
    assert p.actions == ()
    assert p.reports["orders"].status is Status.HELD
    assert "deny" in p.reports["orders"].reason


def test_windows_apply_by_name_glob_or_labels_and_others_are_untouched() -> None:
    other = SyncWindow("deny", "0 12 * * *", 3600, jobs=("payments-*",))
    assert only_action(planned(other)).kind is ActionKind.UPGRADE
    by_glob = SyncWindow("deny", "0 12 * * *", 3600, jobs=("ord*",))
    assert planned(by_glob).actions == ()
    by_label = SyncWindow("deny", "0 12 * * *", 3600, labels=(("team", "payments"),))
    labelled = upgrade_case(labels={"team": "payments", "tier": "1"})
    assert planned(by_label, case=labelled).actions == ()
    assert only_action(planned(by_label)).kind is ActionKind.UPGRADE  # no such label
    # an allow window for other jobs does not restrict this one
    allow_other = SyncWindow("allow", "0 22 * * *", 60, jobs=("payments",))
    assert only_action(planned(allow_other)).kind is ActionKind.UPGRADE


def test_a_window_that_fires_again_before_it_closes_stays_open_until_the_last_one_closes() -> None:
    always = SyncWindow("deny", "*/10 * * * *", 900)
    p = planned(always)
    # chained as far as CHAIN_LIMIT fire times: it never closes, so "until" is far ahead
    until = p.reports["orders"].hold
    assert until is not None
    assert until.startswith("held by sync window deny '*/10 * * * *' until ")
    assert datetime.fromisoformat(until.rsplit(" ", 1)[1]) > NOW + timedelta(hours=24)


def test_a_paused_job_gets_no_action_and_says_who_paused_it_when_and_why() -> None:
    pause = Pause("orders", "incident 42", "cli:alice", PAUSED_BY)
    p = planned(pauses=(pause,))
    report = p.reports["orders"]
    assert p.actions == ()
    assert report.status is Status.PAUSED
    assert report.reason.startswith("paused by cli:alice at 2026-12-01T11:00:00Z: incident 42")
    # a pause of another job, and none: acted on
    assert only_action(planned(pauses=(Pause("payments", "", "x", PAUSED_BY),))).kind is ActionKind.UPGRADE
    everyone = planned(pauses=(Pause(None, "freeze", "api:operator@a", PAUSED_BY),))
    assert everyone.actions == ()
    assert everyone.reports["orders"].reason.startswith("paused (every job) by api:operator@a")


def test_a_paused_in_sync_job_stays_in_sync_and_carries_the_hold() -> None:
    job = spec()
    pause = Pause(None, "", "cli:bob", PAUSED_BY)
    p = plan(state(desired_job(job)), running(), {"orders": record(job)}, NOW, holds=Holds((), (pause,)))
    report = p.reports["orders"]
    assert report.status is Status.IN_SYNC
    assert report.reason.startswith("running job")  # metrics count running jobs by this prefix
    assert report.hold is not None
    assert report.hold.startswith("paused (every job) by cli:bob")
    assert p.in_sync


def health_plan(observed: Any, holds: Holds, *, drift: str = "warn", **rec: Any) -> Plan:
    job = job_spec(drift=drift)
    recorded = {"orders": record(job, fingerprint=DEPLOYED, **rec)}
    return plan(state(desired_job(job)), observed, recorded, NOW, holds=holds)


ALL_HOLDS = [
    Holds((DENY_NOON,)),
    Holds((ALLOW_NIGHT,)),
    Holds((), (Pause("orders", "", "x", PAUSED_BY),)),
    Holds((), (Pause(None, "", "x", PAUSED_BY),)),
]


WINDOWS = [h for h in ALL_HOLDS if not h.pauses]
PAUSES = [h for h in ALL_HOLDS if h.pauses]


def test_a_failed_or_vanished_job_is_recovered_whatever_window_holds_it() -> None:
    for holds in WINDOWS:
        for observed in (hcluster(seen("FAILED")), hcluster()):
            p = health_plan(observed, holds)
            a = only_action(p)
            assert a.kind is ActionKind.RECOVER
            assert a.drift is not None
            assert a.drift.failure
            assert p.reports["orders"].status is Status.PENDING
            assert p.reports["orders"].hold is not None  # it is held, but this goes ahead


def test_a_paused_failed_job_waits_for_resume_and_its_failure_is_still_reported() -> None:
    # "stop acting": whoever paused the job is handling it; the failure alert still fires
    for holds in PAUSES:
        for observed, kind in ((hcluster(seen("FAILED")), DriftKind.FAILED), (hcluster(), DriftKind.MISSING)):
            p = health_plan(observed, holds)
            report = p.reports["orders"]
            assert p.actions == ()
            assert report.status is Status.PAUSED
            assert "waiting: recover" in report.reason
            assert report.drift is kind


def test_give_up_and_an_open_operation_go_ahead_whatever_holds_them() -> None:
    spent = (NOW - timedelta(minutes=5),) * 3
    for holds in ALL_HOLDS:
        p = health_plan(hcluster(seen("FAILED")), holds, restarts=spent)
        assert only_action(p).kind is ActionKind.GIVE_UP
        p = health_plan(hcluster(seen()), holds, open_operation="op-1")
        assert only_action(p).kind is ActionKind.RESUME_OPERATION


def test_a_heal_of_a_change_made_by_hand_is_held_but_the_drift_is_reported_and_recorded() -> None:
    for holds in ALL_HOLDS:
        p = health_plan(hcluster(seen("CANCELED")), holds, drift="heal")
        report = p.reports["orders"]
        assert p.actions == ()
        assert report.status in (Status.HELD, Status.PAUSED)
        assert report.drift is DriftKind.CANCELLED  # the drift alert still fires
        assert [c.kind for c in p.drift_changes] == [DriftKind.CANCELLED]  # and it is recorded
    unheld = health_plan(hcluster(seen("CANCELED")), Holds(), drift="heal")
    assert only_action(unheld).kind is ActionKind.RECOVER


def test_a_scheduled_run_is_held_and_started_late_within_the_grace_when_the_window_closes() -> None:
    job = bspec(schedule=NIGHTLY)  # 03:00
    rec = scheduled_rec(job, last_run_at=datetime(2026, 11, 30, 3, 0, tzinfo=UTC))
    window = SyncWindow("deny", "55 2 * * *", 600)  # 02:55-03:05
    holds = Holds((window,))
    observed = cluster((JOB_ID, "FINISHED"))

    def at(hh: int, mm: int) -> Plan:
        now = datetime(2026, 12, 1, hh, mm, tzinfo=UTC)
        return plan(
            state(desired_job(job)), observed, {rec.name: rec}, now, holds=holds, missed_run_grace_s=600
        )

    assert at(3, 1).actions == ()
    assert at(3, 1).reports["report"].status is Status.HELD
    late = only_action(at(3, 6))  # the window closed inside the grace: the 03:00 run starts late
    assert (late.kind, late.scheduled_at) == (ActionKind.RUN, datetime(2026, 12, 1, 3, 0, tzinfo=UTC))
    long_window = Holds((SyncWindow("deny", "55 2 * * *", 3600),))
    now = datetime(2026, 12, 1, 3, 56, tzinfo=UTC)
    p = plan(
        state(desired_job(job)), observed, {rec.name: rec}, now, holds=long_window, missed_run_grace_s=600
    )
    assert p.actions == ()  # past the grace: skipped and reported, as any missed run
    assert "missed" in p.reports["report"].reason or "skipped" in p.reports["report"].reason


def test_a_pruned_job_is_held_by_the_labels_it_was_deployed_with() -> None:
    old = spec(labels={"team": "core"})
    window = SyncWindow("deny", "0 12 * * *", 3600, labels=(("team", "core"),))
    p = plan(state(), running(), {"orders": record(old)}, NOW, prune=True, holds=Holds((window,)))
    assert p.actions == ()
    assert p.reports["orders"].status is Status.HELD
    assert "prune" in p.reports["orders"].reason


# --- properties -------------------------------------------------------------------------------

windows_st = st.builds(
    SyncWindow,
    st.sampled_from(["allow", "deny"]),
    st.sampled_from(["0 12 * * *", "*/15 * * * *", "0 22 * * 1-5", "30 11 1 * *", "0 0 29 2 *"]),
    st.sampled_from([60.0, 3600.0, 86400.0 * 3]),
    st.sampled_from([(), ("orders",), ("o*",), ("payments",)]),
    st.sampled_from([(), (("team", "core"),)]),
)
pauses_st = st.lists(
    st.builds(Pause, st.sampled_from([None, "orders", "payments"]), st.just("r"), st.just("x"), st.just(NOW)),
    max_size=2,
    unique_by=lambda p: p.job,
)


def situation(kind: str, live: str | None, drift: str, restarts: int, open_op: bool) -> tuple[Any, ...]:
    labels = {"team": "core"}
    base = job_spec(drift=drift).model_dump(mode="json")
    base["metadata"]["labels"] = labels
    job = FlinkJob.model_validate(base)
    if kind == "upgrade":
        changed = job.model_dump(mode="json")
        changed["spec"]["job"]["args"] = ["--v", "9"]
        want = FlinkJob.model_validate(changed)
    else:
        want = job
    rec: RecordedJob = record(
        job,
        fingerprint=DEPLOYED,
        restarts=(NOW - timedelta(minutes=1),) * restarts,
        open_operation="op-1" if open_op else None,
    )
    observed = hcluster(seen(live)) if live else hcluster()
    desired = state(desired_job(want)) if kind != "removed" else state()
    return desired, observed, {"orders": rec}


@given(
    st.sampled_from(["same", "upgrade", "removed"]),
    st.sampled_from(["RUNNING", "FAILED", "CANCELED", "FINISHED", None]),
    st.sampled_from(["heal", "warn", "observe"]),
    st.integers(0, 4),
    st.booleans(),
    st.lists(windows_st, max_size=3),
    pauses_st,
    st.integers(0, 60 * 24 * 7),
)
def test_holds_never_change_urgent_actions_and_never_let_a_non_urgent_one_through(
    kind: str,
    live: str | None,
    drift: str,
    restarts: int,
    open_op: bool,
    windows: list[SyncWindow],
    pauses: list[Pause],
    minutes: int,
) -> None:
    now = NOW + timedelta(minutes=minutes)
    desired, observed, recorded = situation(kind, live, drift, restarts, open_op)
    kw: dict[str, Any] = {"prune": True, "health": HealthPolicy(restart_budget=3)}
    free = plan(desired, observed, recorded, now, **kw)
    holds = Holds(tuple(windows), tuple(pauses))
    held = plan(desired, observed, recorded, now, holds=holds, **kw)
    # GIVE_UP and RESUME_OPERATION (and, unless paused, RECOVER of a failure) are identical with
    # and without holds
    check = holds.at(now)

    def hold(name: str) -> Status | None:
        found = check.of(name, lambda: {"team": "core"})
        return found[0] if found is not None else None

    def kept(actions: tuple[Any, ...]) -> list[Any]:
        return [a for a in actions if urgent(a, hold(a.job) or Status.HELD)]

    assert kept(held.actions) == kept(free.actions)
    # a held plan only ever drops actions, and drops exactly the non-urgent ones of held jobs
    assert all(a in free.actions for a in held.actions)
    for action in free.actions:
        status = hold(action.job)
        assert (action in held.actions) == (status is None or urgent(action, status))
        if action not in held.actions:
            assert held.reports[action.job].status in (Status.PAUSED, Status.HELD)
    # held jobs are still observed: the same drift is reported and recorded
    for name, report in free.reports.items():
        assert held.reports[name].drift == report.drift
    assert [c.kind for c in held.drift_changes] == [c.kind for c in free.drift_changes]
