"""The daemon's Prometheus metrics from cycle results (plain values, a registry of its own)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from flink_gitops.execute.cycle import AUDIT_ABORT, ActionResult, CycleResult
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import Action, ActionKind, DriftKind, JobReport, Plan, Status
from flink_gitops.service.metrics import Metrics


def samples(m: Metrics) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    out = {}
    for family in text_string_to_metric_families(m.render().decode()):
        for s in family.samples:
            out[(s.name, tuple(sorted(s.labels.items())))] = s.value
    return out


def cycle(
    reports: dict[str, JobReport], results: dict[str, ActionResult], unreachable: dict[str, str], commit: str
) -> CycleResult:
    r = CycleResult(commit, Plan((), reports, (), unreachable), results)
    r.duration_s = 0.3
    return r


def test_a_cycle_sets_the_gauges_and_counts_actions() -> None:
    m = Metrics()
    reports = {
        "a": JobReport("a", "eu", Status.IN_SYNC, "running job 1 (running)"),
        "b": JobReport("b", "eu", Status.DRIFT, "cancelled", drift=DriftKind.CANCELLED),
        "c": JobReport("c", "us", Status.FAILED, "spec failed before"),
        "d": JobReport("d", "us", Status.PENDING, "upgrade"),
    }
    results = {"d": ActionResult("d", ActionKind.UPGRADE, True, JobLifecycle.STABLE, "stable")}
    done = cycle(reports, results, {"us": "down"}, "c1")
    done.lifecycles = {"a": "stable", "b": "stable", "c": "failed", "d": "stable"}
    m.observe_cycle(done, ["eu", "us"], 1_000.0)
    got = samples(m)
    assert got[("flink_gitops_jobs_lifecycle", (("lifecycle", "stable"),))] == 3
    assert got[("flink_gitops_jobs_lifecycle", (("lifecycle", "failed"),))] == 1
    assert got[("flink_gitops_jobs_lifecycle", (("lifecycle", "upgrading"),))] == 0
    assert got[("flink_gitops_jobs", (("status", "drift"),))] == 1
    assert got[("flink_gitops_jobs", (("status", "in-sync"),))] == 1
    assert got[("flink_gitops_job_drift", (("flink_job", "b"), ("kind", "cancelled")))] == 1
    assert got[("flink_gitops_actions_total", (("kind", "upgrade"), ("outcome", "ok")))] == 1
    assert got[("flink_gitops_cluster_up", (("cluster", "eu"),))] == 1
    assert got[("flink_gitops_cluster_up", (("cluster", "us"),))] == 0
    assert got[("flink_gitops_commit_info", (("commit", "c1"),))] == 1
    assert got[("flink_gitops_cycles_total", (("outcome", "out-of-sync"),))] == 1
    assert got[("flink_jobs_total", ())] == 4
    assert got[("flink_jobs_running", ())] == 1
    assert got[("flink_jobs_failed", ())] == 1
    assert got[("flink_gitops_cycle_duration_seconds_count", ())] == 1
    assert ("flink_gitops_last_successful_sync_timestamp_seconds", ()) in got


def test_ended_drift_and_an_old_commit_leave_the_series() -> None:
    m = Metrics()
    drifted = {"b": JobReport("b", "eu", Status.DRIFT, "x", drift=DriftKind.RESCALED)}
    m.observe_cycle(cycle(drifted, {}, {}, "c1"), ["eu"], 1.0)
    m.observe_cycle(
        cycle({"b": JobReport("b", "eu", Status.IN_SYNC, "running job 2")}, {}, {}, "c2"), ["eu"], 2.0
    )
    got = samples(m)
    assert not any(name == "flink_gitops_job_drift" for name, _ in got)
    assert ("flink_gitops_commit_info", (("commit", "c1"),)) not in got
    assert got[("flink_gitops_commit_info", (("commit", "c2"),))] == 1
    assert got[("flink_gitops_last_successful_sync_timestamp_seconds", ())] == 2.0


def test_upgrade_and_savepoint_durations_breakers_leaders_and_checkpoints() -> None:
    m = Metrics()
    reports = {
        "a": JobReport("a", "eu", Status.PENDING, "upgrade"),
        "b": JobReport("b", "us", Status.PENDING, "savepoint"),
        "c": JobReport("c", "us", Status.IN_SYNC, "running job 3"),
    }
    actions = (
        Action(ActionKind.UPGRADE, "a", "eu", "spec changed"),
        Action(ActionKind.SAVEPOINT, "b", "us", "periodic"),
    )
    results = {
        "a": ActionResult(
            "a", ActionKind.UPGRADE, True, JobLifecycle.STABLE, "ok", duration_s=42.0, savepoint_s=3.0
        ),
        "b": ActionResult("b", ActionKind.SAVEPOINT, True, JobLifecycle.STABLE, "ok", savepoint_s=0.4),
    }
    r = CycleResult("c1", Plan(actions, reports), results, checkpoint_s={"c": 1.5})
    m.observe_cycle(
        r,
        ["eu", "us"],
        1.0,
        leadership={"eu": True, "us": False},
        breakers={"eu": "closed", "us": "open"},
    )
    got = samples(m)
    assert got[("flink_gitops_upgrade_duration_seconds_count", (("cluster", "eu"),))] == 1
    assert got[("flink_gitops_upgrade_duration_seconds_sum", (("cluster", "eu"),))] == 42.0
    assert got[("flink_gitops_savepoint_duration_seconds_sum", (("cluster", "eu"),))] == 3.0
    assert got[("flink_gitops_savepoint_duration_seconds_sum", (("cluster", "us"),))] == 0.4
    assert ("flink_gitops_upgrade_duration_seconds_count", (("cluster", "us"),)) not in got
    assert got[("flink_gitops_leader", (("cluster", "eu"),))] == 1
    assert got[("flink_gitops_leader", (("cluster", "us"),))] == 0
    assert got[("flink_gitops_breaker_state", (("cluster", "eu"),))] == 0
    assert got[("flink_gitops_breaker_state", (("cluster", "us"),))] == 2
    assert got[("flink_checkpoint_duration_seconds", (("flink_job", "c"),))] == 1.5
    # the next cycle reads no checkpoint of c: its last value stays; a job gone from the plan leaves
    m.observe_cycle(cycle({"c": reports["c"]}, {}, {}, "c1"), ["eu"], 2.0, breakers={"eu": "half-open"})
    got = samples(m)
    assert got[("flink_checkpoint_duration_seconds", (("flink_job", "c"),))] == 1.5
    assert got[("flink_gitops_breaker_state", (("cluster", "eu"),))] == 1
    assert ("flink_gitops_breaker_state", (("cluster", "us"),)) not in got
    assert ("flink_gitops_leader", (("cluster", "us"),)) not in got
    m.observe_cycle(cycle({}, {}, {}, "c1"), ["eu"], 3.0)
    assert not any(name == "flink_checkpoint_duration_seconds" for name, _ in samples(m))


def test_audit_records_and_writability_follow_the_trail() -> None:
    m = Metrics()
    trail = object()
    assert samples(m)[("flink_gitops_audit_writable", ())] == 1
    m.observe_audit(trail, 4, True)
    assert samples(m)[("flink_gitops_audit_records_total", ())] == 4
    aborted = cycle({}, {}, {}, "c1")
    aborted.aborted = f"{AUDIT_ABORT}: disk full"
    m.observe_cycle(aborted, [], 1.0)
    m.observe_audit(trail, 5, False)
    got = samples(m)
    assert got[("flink_gitops_audit_writable", ())] == 0
    assert got[("flink_gitops_audit_records_total", ())] == 5
    m.observe_audit(trail, 5, True)  # a cycle without an append: still not shown writable
    assert samples(m)[("flink_gitops_audit_writable", ())] == 0
    m.observe_audit(trail, 6, True)
    assert samples(m)[("flink_gitops_audit_writable", ())] == 1
    m.observe_audit(object(), 2, True)  # a reload opened a new trail: it counts from zero
    assert samples(m)[("flink_gitops_audit_records_total", ())] == 8


def test_git_polls() -> None:
    m = Metrics()
    m.observe_poll(0.2, True, 100.0)
    m.observe_poll(5.0, False, 200.0)
    got = samples(m)
    assert got[("flink_gitops_git_fetch_duration_seconds_count", ())] == 2
    assert got[("flink_gitops_git_last_fetch_success_timestamp_seconds", ())] == 100.0
