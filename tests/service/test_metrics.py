"""The daemon's Prometheus metrics from cycle results (plain values, a registry of its own)."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from flink_gitops.execute.cycle import ActionResult, CycleResult
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind, DriftKind, JobReport, Plan, Status
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
    m.observe_cycle(cycle(reports, results, {"us": "down"}, "c1"), ["eu", "us"], 1_000.0)
    got = samples(m)
    assert got[("flink_gitops_jobs", (("status", "drift"),))] == 1
    assert got[("flink_gitops_jobs", (("status", "in-sync"),))] == 1
    assert got[("flink_gitops_job_drift", (("job", "b"), ("kind", "cancelled")))] == 1
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
