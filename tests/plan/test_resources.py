"""Slot-aware planning (plan.resources): starts that do not fit wait, caps refuse. Pure, no fakes."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan.model import ActionKind, Plan, RecordedJob, Status
from flink_gitops.plan.planner import plan
from flink_gitops.plan.resources import STARTS
from tests.plan.test_planner import NOW, desired_job, record, spec, state


def slots(free: int, total: int = 8, *jobs: tuple[str, str], default: int = 1) -> ClusterView:
    observed = {i: ObservedJob(i, "job", s) for i, s in jobs}
    return ClusterView(
        "default", True, observed, slots_total=total, slots_free=free, default_parallelism=default
    )


def jid(n: int) -> str:
    return f"{n:032x}"


def test_a_deploy_that_needs_more_slots_than_are_free_waits_with_a_clear_status() -> None:
    p = plan(state(desired_job(spec(parallelism=4))), {"default": slots(2, 2)}, {}, NOW)
    assert p.actions == ()
    report = p.reports["orders"]
    assert report.status is Status.WAITING
    assert "waiting for 4 slots, 2 free of 2 on cluster 'default'" in report.reason


def test_the_tally_runs_across_the_plan_in_name_order() -> None:
    jobs = [desired_job(spec(n, parallelism=2)) for n in ("a", "b", "c")]
    p = plan(state(*jobs), {"default": slots(4)}, {}, NOW)
    assert [a.job for a in p.actions] == ["a", "b"]
    assert p.reports["c"].status is Status.WAITING
    assert "waiting for 2 slots, 0 free" in p.reports["c"].reason


def test_no_parallelism_in_the_spec_takes_the_clusters_default() -> None:
    p = plan(state(desired_job(spec())), {"default": slots(2, default=3)}, {}, NOW)
    assert "waiting for 3 slots, 2 free" in p.reports["orders"].reason


def test_an_upgrade_in_place_gets_its_own_slots_back() -> None:
    old, new = spec(parallelism=2), spec(parallelism=3)
    rec = record(old, flink_job_id=jid(1))
    p = plan(state(desired_job(new)), {"default": slots(1, 3, (jid(1), "RUNNING"))}, {"orders": rec}, NOW)
    assert [a.kind for a in p.actions] == [ActionKind.UPGRADE]
    p = plan(state(desired_job(new)), {"default": slots(0, 2, (jid(1), "RUNNING"))}, {"orders": rec}, NOW)
    assert p.actions == ()
    assert "waiting for 3 slots, 2 free of 2 on cluster 'default', 2 of them freed by its own stop" in (
        p.reports["orders"].reason
    )


def test_a_suspend_earlier_in_the_plan_frees_slots_for_a_later_deploy() -> None:
    a_run, a_off = spec("a", parallelism=2), spec("a", parallelism=2, state="suspended")
    rec = record(a_run, flink_job_id=jid(1))
    p = plan(
        state(desired_job(a_off), desired_job(spec("b", parallelism=2))),
        {"default": slots(0, 2, (jid(1), "RUNNING"))},
        {"a": rec},
        NOW,
    )
    assert [(a.job, a.kind) for a in p.actions] == [("a", ActionKind.SUSPEND), ("b", ActionKind.DEPLOY)]


def test_a_cap_on_total_parallelism_waits_or_refuses() -> None:
    running = record(spec("a", parallelism=3), flink_job_id=jid(1))
    observed = {"default": slots(10, 16, (jid(1), "RUNNING"))}
    desired = state(desired_job(spec("a", parallelism=3)), desired_job(spec("b", parallelism=2)))
    p = plan(desired, observed, {"a": running}, NOW, caps={"default": 4})
    assert p.reports["b"].status is Status.WAITING
    assert "would bring cluster 'default' to 5, over its cap max_total_parallelism 4 (3 in use" in (
        p.reports["b"].reason
    )
    assert plan(desired, observed, {"a": running}, NOW, caps={"default": 5}).actions[0].job == "b"
    p = plan(state(desired_job(spec("big", parallelism=6))), observed, {}, NOW, caps={"default": 4})
    assert p.reports["big"].status is Status.REFUSED
    assert "needs parallelism 6, more than cluster 'default''s cap max_total_parallelism 4" in (
        p.reports["big"].reason
    )


def test_clusters_without_slot_figures_are_not_gated() -> None:
    p = plan(state(desired_job(spec(parallelism=64))), {"default": ClusterView("default", True)}, {}, NOW)
    assert [a.kind for a in p.actions] == [ActionKind.DEPLOY]


def test_resuming_an_open_operation_is_never_gated() -> None:
    rec = record(spec(parallelism=4), open_operation="op-1")
    p = plan(state(desired_job(spec(parallelism=4))), {"default": slots(0, 2)}, {"orders": rec}, NOW)
    assert [a.kind for a in p.actions] == [ActionKind.RESUME_OPERATION]


# --- the invariant ---------------------------------------------------------------------------------


def held(rec: RecordedJob) -> int:
    """Slots the recorded job's running Flink job holds (the test specs all set a parallelism)."""
    assert rec.reconciled is not None
    return rec.reconciled.spec.spec.job.parallelism or 1


@st.composite
def worlds(draw: st.DrawFn) -> tuple[Any, dict[str, ClusterView], dict[str, RecordedJob], int | None]:
    n = draw(st.integers(1, 8))
    desired, recorded, seen = [], {}, []
    for i in range(n):
        name = f"job{i}"
        p_new = draw(st.integers(1, 5))
        kind = draw(st.sampled_from(["new", "same", "scale", "suspend"]))
        if kind == "new":
            desired.append(desired_job(spec(name, parallelism=p_new)))
            continue
        p_old = draw(st.integers(1, 5))
        old = spec(name, parallelism=p_old, upgradeMode="stateless")
        recorded[name] = record(old, flink_job_id=jid(i + 1), lifecycle=JobLifecycle.STABLE)
        seen.append((jid(i + 1), "RUNNING"))
        if kind == "same":
            desired.append(desired_job(old))
        elif kind == "scale":
            desired.append(desired_job(spec(name, parallelism=p_new, upgradeMode="stateless")))
        else:
            desired.append(
                desired_job(spec(name, parallelism=p_old, upgradeMode="stateless", state="suspended"))
            )
    free = draw(st.integers(0, 12))
    cap = draw(st.none() | st.integers(1, 20))
    view = slots(free, free + sum(held(r) for r in recorded.values()), *seen)
    return state(*desired), {"default": view}, recorded, cap


@given(worlds())
def test_slots_granted_in_one_plan_never_exceed_the_free_ones_plus_the_freed_ones(world: Any) -> None:
    desired, observed, recorded, cap = world
    p: Plan = plan(desired, observed, recorded, NOW, caps={"default": cap} if cap is not None else {})
    free = observed["default"].slots_free
    in_use = sum(held(r) for r in recorded.values())
    granted, freed = 0, 0
    for a in p.actions:
        rec = recorded.get(a.job)
        gives = held(rec) if rec is not None and a.stop != "none" else 0
        freed += gives
        if a.kind in STARTS:
            assert a.desired is not None
            granted += a.desired.spec.spec.job.parallelism or 1
        assert granted <= free + freed, (p.actions, p.reports)
        if cap is not None and a.kind in STARTS:
            assert in_use - freed + granted <= cap
    for name, report in p.reports.items():
        if report.status is Status.WAITING:
            assert "slots" in report.reason or "max_total_parallelism" in report.reason, name
