"""Periodic savepoints and retention through the real Reconciler, store (SQLite) and audit trail, against
FakeFlink (our own port, with disposal added here): taken at their time on a FakeClock, disposed by
maxCount / maxAge, never the current, restored-from or last stable one, a failure kept and retried,
a crash mid-disposal resumed."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, cast

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.cycle import Cluster, Reconciler, Revision
from flink_gitops.execute.journal import spec_record
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.execute.retention import DISPOSE_KIND, local_savepoint
from flink_gitops.flink.errors import OperationFailed
from flink_gitops.flink.models import ClusterOverview, JobsOverview
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import (
    JobUpdate,
    NewSavepoint,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    cluster_lease,
)
from flink_gitops.settings import ClusterConfig, Settings
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.loader import DesiredJob, DesiredState, JarRef
from flink_gitops.specs.model import FlinkJob
from tests.execute.fakes import FakeFlink
from tests.record.audit_helpers import open_trail

JOB = "1" * 32
JAR = "sha256:" + "ab" * 32


@dataclass
class FakeCluster(FakeFlink):
    """FakeFlink plus the overview the observer reads and Flink's savepoint disposal."""

    disposals: list[str] = field(default_factory=list)
    fail_disposal: set[str] = field(default_factory=set)

    def overview(self) -> ClusterOverview:
        return ClusterOverview.model_validate({"slots-total": 8, "slots-available": 8})

    def default_parallelism(self) -> int:
        return 1

    def jobs_overview(self) -> JobsOverview:
        jobs = [{"jid": j.job_id, "name": "fake", "state": j.state} for j in self.jobs.values()]
        return JobsOverview.model_validate({"jobs": jobs})

    def dispose_savepoint(self, savepoint_path: str) -> str:
        self.disposals.append(savepoint_path)
        return f"dispose-{len(self.disposals)}"

    def wait_for_disposal(self, trigger_id: str, timeout: float | None = None) -> None:
        path = self.disposals[int(trigger_id.removeprefix("dispose-")) - 1]
        if path in self.fail_disposal:
            raise OperationFailed(
                "savepoint disposal failed: IOException: permission denied",
                cluster="fake",
                method="GET",
                path="/savepoint-disposal",
            )
        local = Path(path.removeprefix("file://").removeprefix("file:"))
        if path.startswith("file:") and not local.exists():
            raise OperationFailed(
                f"savepoint disposal failed: FileNotFoundException: {local}",
                cluster="fake",
                method="GET",
                path="/savepoint-disposal",
            )
        shutil.rmtree(local, ignore_errors=True)


def flink_job(periodic: int | None = 600, max_count: int = 3, max_age: str = "1d") -> FlinkJob:
    return FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "orders"},
            "spec": {
                "job": {"jarURI": "artifacts/a.jar", "entryClass": "com.example.Main"},
                "savepoints": {"periodic": periodic, "maxCount": max_count, "maxAge": max_age},
            },
        }
    )


def desired(job: FlinkJob) -> DesiredState:
    d = DesiredJob(
        "orders",
        "jobs/orders.yaml",
        1,
        "FlinkJob",
        job,
        JarRef("repo", "artifacts/a.jar", "ab" * 32),
        JAR,
        spec_hash(job, JAR),
    )
    return DesiredState("c" * 40, {"orders": d}, (), frozenset(), {d.file: ("orders",)}, ())


@dataclass
class World:
    store: Store
    audit: AuditTrail
    flink: FakeCluster
    clock: FakeClock
    rec: Reconciler
    revision: Revision

    def cycle(self) -> Any:
        result = self.rec.cycle(self.revision)
        assert result.in_sync or result.plan.actions, result.problems()
        return result

    def savepoints(self, **kw: Any) -> list[Any]:
        return self.store.snapshots.history("orders", include_disposed=True, **kw)

    def add_savepoint(
        self,
        origin: SnapshotOrigin = SnapshotOrigin.PERIODIC,
        *,
        current: bool = False,
        kind: str = "savepoint",
        job_id: str = JOB,
    ) -> str:
        path = self.flink._state_dir(kind)
        lease = self.rec.leases.get("default") or self.store.leases.acquire(
            self.rec.holder, 10**7, name=cluster_lease("default")
        )
        assert lease is not None
        self.rec.leases["default"] = lease
        k = SnapshotKind.CHECKPOINT if kind == "chk" else SnapshotKind.SAVEPOINT
        self.store.snapshots.record(
            NewSavepoint("orders", path, k, origin, flink_job_id=job_id, make_current=current),
            epoch=lease.epoch,
            lease=lease.name,
        )
        return path


def make_world(tmp_path: Path, job: FlinkJob, cluster: type[FakeCluster] | None = None) -> World:
    clock = FakeClock()
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    audit = open_trail(store, tmp_path, clock)
    flink = (cluster or FakeCluster)(tmp_path / "flink")
    flink.add_running(JOB)
    settings = Settings(state_dir=tmp_path / "state", clusters={"default": ClusterConfig()})
    settings = settings.model_copy(update={"store": settings.store.model_copy(update={"lease_ttl_s": 10**7})})
    # FakeFlink keeps its uploads in `jars` (a dict), so it is no JarCluster: no jar is recorded here,
    # and the jar collector never asks it
    clients = cast(dict[str, Cluster], {"default": flink})
    rec = Reconciler(settings, store, audit, clients, clock, actor="test", instance="test")
    lease = store.leases.acquire(rec.holder, 10**7, name=cluster_lease("default"))
    assert lease is not None
    rec.leases["default"] = lease
    state = desired(job)
    record = spec_record(RunSpec.of(state.valid_jobs()["orders"], "c" * 40).to_record())
    with store.unit(epoch=lease.epoch, lease=lease.name) as uow:
        uow.jobs.create("orders", "default", file="jobs/orders.yaml")
        uow.jobs.update(
            "orders",
            JobUpdate(
                state=JobLifecycle.STABLE, flink_job_id=JOB, last_reconciled=record, last_stable=record
            ),
        )
    return World(store, audit, flink, clock, rec, Revision(state, "c" * 40))


@pytest.fixture
def world(tmp_path: Path) -> Iterator[World]:
    w = make_world(tmp_path, flink_job())
    try:
        yield w
    finally:
        w.rec.release()
        w.store.close()


def test_periodic_savepoints_are_taken_at_their_time_and_retention_keeps_max_count(world: World) -> None:
    w = world
    first = w.cycle()  # no savepoint time recorded: one now
    assert [(a.kind.value, a.origin) for a in first.plan.actions] == [("savepoint", "periodic")]
    taken = [w.clock.now()]
    for _ in range(5):
        w.clock.advance(599)
        assert w.cycle().plan.actions == ()  # not due a second early
        w.clock.advance(1)
        (a,) = w.cycle().plan.actions
        assert a.origin == "periodic"
        taken.append(w.clock.now())
    job = w.store.jobs.get("orders")
    assert job is not None
    assert job.savepoint_at == taken[-1]
    rows = w.savepoints()
    assert [r.created_at for r in rows] == taken[::-1]
    assert all(r.origin is SnapshotOrigin.PERIODIC for r in rows)
    kept = [r for r in rows if not r.disposed]
    gone = [r for r in rows if r.disposed]
    assert len(kept) == 3  # maxCount
    assert kept[0].path == job.savepoint  # the current one is the newest, kept
    for r in gone:
        local = local_savepoint(r.path)
        assert local is None  # the directory is gone
    for r in kept:
        assert local_savepoint(r.path) is not None
    # audited: intent and outcome of every disposal
    outcomes = [(e.event.outcome, e.event.savepoint) for e in w.audit.records(action="savepoint.dispose")]
    assert sorted(str(p) for o, p in outcomes if o == "succeeded") == sorted(r.path for r in gone)
    # every disposal's write-ahead operation finished
    assert not [op for op in w.store.operations.open() if op.kind == DISPOSE_KIND]


def test_max_age_disposes_old_ones_but_never_the_current_the_restored_from_or_the_last_stable(
    world: World,
) -> None:
    w = world
    restored_from = w.add_savepoint(SnapshotOrigin.UPGRADE)  # the current Flink job was started from it
    stable_sp = w.add_savepoint(SnapshotOrigin.MANUAL, job_id="2" * 32)  # newest of the last stable run
    other_old = w.add_savepoint(SnapshotOrigin.MANUAL, job_id="3" * 32)
    lease = w.rec.leases["default"]
    # the operation that started the current job (JOB) from `restored_from`; an older stable run of "2"*32
    for job_id, restore in (("2" * 32, None), (JOB, restored_from)):
        op = w.store.operations.begin(
            "orders",
            "upgrade",
            {"cluster": "default", "job_id": job_id, "restore": "path", "restore_path": restore},
            epoch=lease.epoch,
            lease=lease.name,
        )
        if job_id != JOB:
            w.store.operations.advance(op.op_id, "stable:job_id", epoch=lease.epoch, lease=lease.name)
        w.store.operations.finish(op.op_id, OperationState.SUCCEEDED, epoch=lease.epoch, lease=lease.name)
    ckpt = w.add_savepoint(SnapshotOrigin.RETAINED, kind="chk")
    w.clock.advance(2 * 86400)  # all of them past maxAge (1d)
    w.cycle()  # a periodic savepoint now (the current one), then retention
    by_path = {r.path: r for r in w.savepoints()}
    current = w.store.jobs.get("orders")
    assert current is not None
    assert current.savepoint is not None
    assert not by_path[current.savepoint].disposed
    assert not by_path[restored_from].disposed
    assert by_path[other_old].disposed
    assert local_savepoint(other_old) is None
    # the stable run "2"*32 was the last one that became stable: its newest savepoint is kept
    assert not by_path[stable_sp].disposed
    # a retained checkpoint is Flink's to clean: never disposed
    assert not by_path[ckpt].disposed
    assert local_savepoint(ckpt) is not None


def test_a_failed_disposal_is_kept_retried_next_cycle_and_never_fails_the_cycle(world: World) -> None:
    w = world
    remote = w.add_savepoint()
    shutil.rmtree(Path(remote.removeprefix("file://")))  # only "the JobManager" sees it: Flink's disposal
    w.add_savepoint(current=True)
    w.store.jobs.update(
        "orders",
        JobUpdate(savepoint_at=w.clock.now()),
        epoch=w.rec.leases["default"].epoch,
        lease="cluster:default",
    )
    w.flink.fail_disposal.add(remote)
    w.clock.advance(86400 + 1)
    w.revision = Revision(desired(flink_job(periodic=None)), "c" * 40)
    result = w.cycle()
    assert result.in_sync
    assert result.retention is not None
    assert [(j, p) for j, p, _ in result.retention.failed] == [("orders", remote)]
    assert not {r.path: r for r in w.savepoints()}[remote].disposed
    ops = [op for op in w.store.operations.history(limit=10) if op.kind == DISPOSE_KIND]
    assert [op.state for op in ops] == [OperationState.FAILED]
    assert [e.event.outcome for e in w.audit.records(action="savepoint.dispose")] == ["intent", "failed"]

    w.flink.fail_disposal.clear()  # Flink answers FileNotFound now: the savepoint is gone, forgotten
    result = w.cycle()
    assert result.retention is not None
    assert result.retention.disposed == [("orders", remote)]
    assert {r.path: r for r in w.savepoints()}[remote].disposed


def test_a_crash_mid_disposal_is_resumed_next_cycle(world: World) -> None:
    w = world
    old = w.add_savepoint()
    w.add_savepoint(current=True)
    (record,) = [r for r in w.savepoints() if r.path == old]
    lease = w.rec.leases["default"]
    # what a process killed right after the delete leaves: the operation open, the row not disposed
    w.store.operations.begin(
        None,
        DISPOSE_KIND,
        {"job": "orders", "savepoint_id": record.id, "path": old, "cluster": "default", "method": "delete"},
        epoch=lease.epoch,
        lease=lease.name,
        cluster="default",
    )
    shutil.rmtree(Path(old.removeprefix("file://")))
    w.revision = Revision(desired(flink_job(periodic=None, max_count=10, max_age="30d")), "c" * 40)
    result = w.cycle()  # within limits: only the resumed disposal
    assert result.retention is not None
    assert result.retention.disposed == [("orders", old)]
    assert {r.path: r for r in w.savepoints()}[old].disposed
    assert w.store.operations.open() == []


def test_a_job_within_its_limits_reads_no_history(world: World) -> None:
    w = world
    w.add_savepoint()
    w.add_savepoint(current=True)
    w.revision = Revision(desired(flink_job(periodic=None, max_count=10, max_age="30d")), "c" * 40)
    result = w.cycle()
    assert result.retention is not None
    assert (result.retention.looked_at, result.retention.disposed) == (0, [])


def test_a_dry_run_disposes_nothing(world: World) -> None:
    w = world
    for _ in range(5):
        w.add_savepoint()
    result = w.rec.cycle(w.revision, dry_run=True)
    assert result.retention is None
    assert not any(r.disposed for r in w.savepoints())


def test_paths_another_job_or_an_open_operation_names_are_kept_and_a_busy_job_is_left_alone(
    world: World,
) -> None:
    w = world
    w.revision = Revision(desired(flink_job(periodic=None, max_count=1, max_age="30d")), "c" * 40)
    w.cycle()  # records the retention change (an IGNORE-class change) first
    used_by_other = w.add_savepoint()
    named_by_op = w.add_savepoint()
    plain = w.add_savepoint()
    w.add_savepoint(current=True)
    lease = w.rec.leases["default"]
    kw: dict[str, Any] = {"epoch": lease.epoch, "lease": lease.name}
    # another job was deployed from one of orders' savepoints; a third has an operation open on another
    w.store.jobs.create("other", "default", **kw)
    w.store.jobs.update("other", JobUpdate(savepoint=used_by_other), **kw)
    w.store.jobs.create("third", "default", **kw)
    w.store.operations.begin("third", "redeploy", {"cluster": "default", "restore_path": named_by_op}, **kw)
    result = w.rec.retention.run(w.revision.desired)  # the pass alone: the cycle would resume that op
    assert result.disposed == [("orders", plain)]
    rows = {r.path: r for r in w.savepoints()}
    assert not rows[used_by_other].disposed
    assert not rows[named_by_op].disposed

    # while orders itself has an operation open, retention does not touch it at all
    extra = w.add_savepoint()
    w.store.operations.begin("orders", "upgrade", {"cluster": "default"}, **kw)
    result = w.rec.retention.run(w.revision.desired)
    assert (result.looked_at, result.disposed) == (0, [])
    assert not {r.path: r for r in w.savepoints()}[extra].disposed
