"""The cycle's one summary line (words first, then rev/took), and what a cycle hands the metrics
and the logs: durations in its results, the job, cluster and commit bound to its log lines."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from loguru import logger

from flink_gitops.execute import pauses
from flink_gitops.execute.cycle import AUDIT_ABORT, ActionResult, CycleResult, Reconciler
from flink_gitops.flink.models import CheckpointStats
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind, DriftKind, JobReport, Plan, Status
from tests.execute.test_retention import FakeCluster, World, flink_job, make_world


def report(name: str, status: Status = Status.IN_SYNC, drift: DriftKind | None = None) -> JobReport:
    return JobReport(name, "default", status, "running job" if status is Status.IN_SYNC else "x", drift=drift)


def result(reports: list[JobReport], results: list[ActionResult] = (), **kw: Any) -> CycleResult:  # type: ignore[assignment]
    r = CycleResult(
        "1a2b3c4d5e6f7a8b9c", Plan((), {x.job: x for x in reports}), {x.job: x for x in results}, **kw
    )
    r.duration_s = 0.25
    return r


def ok(job: str, kind: ActionKind, savepoint: str | None = None) -> ActionResult:
    return ActionResult(job, kind, True, JobLifecycle.STABLE, "stable", savepoint=savepoint)


def test_the_line_reads_like_the_issue_says() -> None:
    jobs = [report(f"j{i}") for i in range(12)]
    jobs += [report("orders", Status.PENDING), report("users", Status.DRIFT, DriftKind.CANCELLED)]
    upgraded = ok("orders", ActionKind.UPGRADE, "file:///sp/savepoint-1a2b3c-0123456789abcdef0123")
    line = result(jobs, [upgraded]).summary()
    assert line == (
        "12 in sync, 1 upgraded (orders: savepoint-1a2b3c-012345…), 0 failed, 1 drifted "
        "(cycle rev=1a2b3c4d5e6f jobs=14 took=0.250s)"
    )


def test_every_job_lands_in_exactly_one_bucket() -> None:
    jobs = [
        report("a"),
        report("b", Status.PENDING),
        report("c", Status.PENDING),
        report("d", Status.FAILED),
        report("e", Status.WAITING),
        report("f", Status.PENDING),
        report("g", Status.PENDING),
        report("h", Status.IN_SYNC, DriftKind.RESCALED),
        report("i", Status.PENDING),
    ]
    results = [
        ok("b", ActionKind.DEPLOY),
        ok("c", ActionKind.RECOVER, "file:///cp/chk-42"),
        ActionResult("f", ActionKind.UPGRADE, False, None, "boom", retry=True),
        ActionResult("g", ActionKind.UPGRADE, False, None, "cluster 'eu' is led by r2"),
        ok("i", ActionKind.UPGRADE, None),
    ]
    r = result(jobs, results, led_elsewhere={"g": "cluster 'eu' is led by r2"})
    buckets = r.outcomes()
    assert sorted(j for js in buckets.values() for j in js) == sorted(x.job for x in jobs)
    assert buckets == {
        "in sync": ["a"],
        "deployed": ["b"],
        "recovered": ["c"],
        "failed": ["d", "f"],
        "backing off": ["e"],
        "led elsewhere": ["g"],
        "drifted": ["h"],
        "upgraded": ["i"],
    }
    line = r.summary()
    assert line.startswith("1 in sync, 1 deployed, 1 upgraded (i: no state), 1 recovered, 1 backing off, ")
    assert "2 failed, 1 drifted, 1 led elsewhere (cycle rev=" in line


def test_unreachable_clusters_spec_errors_dry_runs_and_aborts_are_said() -> None:
    r = CycleResult(None, Plan((), {}, (), {"us": "down"}), spec_errors=2, dry_run=True)
    r.aborted = f"{AUDIT_ABORT}: disk full"
    line = r.summary()
    assert line.startswith("0 in sync, 0 failed, 0 drifted, cluster us unreachable, 2 spec errors, ")
    assert f"aborted: {AUDIT_ABORT}: disk full (cycle rev=worktree jobs=0 took=" in line


def test_many_upgrades_are_listed_up_to_three() -> None:
    names = ["a", "b", "c", "d"]
    r = result(
        [report(n, Status.PENDING) for n in names], [ok(n, ActionKind.UPGRADE, f"/sp/sp-{n}") for n in names]
    )
    assert "4 upgraded (a: savepoint sp-a, b: savepoint sp-b, c: savepoint sp-c, +1 more)" in r.summary()


class ChattyCluster(FakeCluster):
    """Logs from inside the action, as the Flink client's retries do."""

    def trigger_savepoint(self, job_id: str, *, trigger_id: str, target_directory: str | None = None) -> str:
        logger.info("fake flink: savepoint of {} triggered", job_id)
        return super().trigger_savepoint(job_id, trigger_id=trigger_id, target_directory=target_directory)


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, flink_job(), ChattyCluster)
    try:
        yield w
    finally:
        w.rec.release()
        w.store.close()


def test_a_cycle_binds_commit_job_and_cluster_and_times_its_actions(world: World) -> None:
    seen: list[dict[str, Any]] = []
    sink = logger.add(lambda m: seen.append({"msg": m.record["message"], **m.record["extra"]}), level="DEBUG")
    try:
        first = world.cycle()  # a periodic savepoint is due
    finally:
        logger.remove(sink)
    done = first.results["orders"]
    assert done.kind is ActionKind.SAVEPOINT
    assert done.ok
    assert done.duration_s is not None
    assert done.savepoint_s is not None
    assert seen, "the cycle logged"
    assert all(line.get("commit") == "c" * 40 for line in seen), seen
    summary = [line for line in seen if "cycle rev=" in line["msg"]]
    assert len(summary) == 1
    assert "job" not in summary[0]
    assert "1 savepoint taken" in summary[0]["msg"]
    assert world.audit.appended >= 2
    assert world.audit.writable
    assert first.lifecycles == {"orders": "stable"}, "the recorded lifecycle, for the metric"
    (inside,) = [line for line in seen if line["msg"].startswith("fake flink")]
    assert inside["job"] == "orders"
    assert inside["cluster"] == "default"


def test_the_checkpoint_duration_is_read_from_flinks_stats() -> None:
    stats = CheckpointStats.model_validate({"latest": {"completed": {"id": 7, "end_to_end_duration": 1500}}})
    assert stats.latest_completed_duration_s == 1.5
    assert CheckpointStats.model_validate({}).latest_completed_duration_s is None


class _PausedRightAfterThePlan(Reconciler):
    """A pause that comes in after the plan read the pauses, before the job's action (a long cycle)."""

    def holds(self, names: Any) -> Any:
        found = super().holds(names)
        pauses.pause(self.store, self.audit, "orders", "incident 42", actor="cli:bob")
        return found


def test_a_pause_during_the_cycle_stops_the_planned_action_and_is_said_as_paused(world: World) -> None:
    world.rec.__class__ = _PausedRightAfterThePlan
    before = len(world.savepoints())
    result = world.cycle()  # a periodic savepoint was planned
    assert [a.kind for a in result.plan.actions] == [ActionKind.SAVEPOINT]
    done = result.results["orders"]
    assert (done.ok, done.retry, done.held) == (False, True, True)
    assert "paused" in done.message
    assert "incident 42" in done.message
    assert len(world.savepoints()) == before, "no savepoint was taken"
    assert result.summary().startswith("0 in sync, 1 paused, 0 failed, 0 drifted")
