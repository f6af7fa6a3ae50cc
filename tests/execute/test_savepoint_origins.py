"""Every savepoint is recorded with its true origin, also when its operation is resumed after a crash;
the journal stamps the current savepoint's time (periodic savepoints count from it)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.errors import PeriodicSavepointFailed
from flink_gitops.execute.journal import StoreJournal
from flink_gitops.execute.operation import Operation
from flink_gitops.execute.ports import JobOutcome
from flink_gitops.execute.procedures import Procedures
from flink_gitops.flink.errors import SavepointFailed
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind
from flink_gitops.record.store import JobUpdate, SnapshotKind, SnapshotOrigin, Store, cluster_lease
from tests.execute.fakes import Crash, DirJars, FakeFlink, MemoryJournal
from tests.execute.test_procedures import OLD, run_spec, upgrade_op

World = tuple[FakeFlink, MemoryJournal, Procedures]


@pytest.fixture
def world(tmp_path: Path) -> World:
    flink = FakeFlink(tmp_path / "state")
    flink.jars["jar-0"] = "old"
    flink.add_running(OLD)
    flink.jobs[OLD].checkpoint = flink._state_dir("chk")
    journal = MemoryJournal()
    procs = Procedures({"default": flink}, journal, DirJars(tmp_path / "jars"), FakeClock())
    return flink, journal, procs


def savepoint_op(origin: str | None, kind: ActionKind = ActionKind.SAVEPOINT, **ids: Any) -> Operation:
    base = {
        "cluster": "default",
        "from_cluster": "default",
        "from_job_id": OLD,
        "lifecycle": "stable",
        "stop": "none",
        "restore": "none",
        "trigger_id": "f" * 32,
        "spec": run_spec().to_record(),
        "origin": origin,
    }
    return Operation("op-1", kind, "orders", base | ids)


@pytest.mark.parametrize("origin", ["nonce", "periodic", "manual"])
def test_a_savepoint_is_recorded_with_the_origin_its_intent_names(world: World, origin: str) -> None:
    flink, journal, procs = world
    outcome = procs.execute(journal.begin(savepoint_op(origin)))
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["savepoint"] == (outcome.savepoint, origin)
    assert flink.jobs[OLD].state == "RUNNING"


def test_an_intent_from_before_origins_records_manual(world: World) -> None:
    _, journal, procs = world
    op = savepoint_op(None)
    del op.ids["origin"]
    procs.execute(journal.begin(op))
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["savepoint"][1] == "manual"


@pytest.mark.parametrize("origin", ["nonce", "periodic"])
def test_a_resumed_savepoint_keeps_its_origin(world: World, origin: str) -> None:
    flink, journal, procs = world
    journal.die_at = (1, "after")  # "savepoint-sent" recorded, then the process died
    with pytest.raises(Crash):
        procs.execute(journal.begin(savepoint_op(origin)))
    journal.die_at = None
    procs.execute(journal.load("op-1"))  # a new process reads the operation back
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["savepoint"][1] == origin
    assert len(flink.triggers) == 1  # the same trigger id: one savepoint, not two


def test_suspend_records_stop_and_prune_records_final(world: World) -> None:
    flink, journal, procs = world
    procs.execute(journal.begin(savepoint_op(None, ActionKind.SUSPEND, stop="savepoint")))
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["savepoint"][1] == "stop"

    flink.add_running("9" * 32)
    prune = savepoint_op(None, ActionKind.PRUNE, stop="savepoint", from_job_id="9" * 32, trigger_id="e" * 32)
    prune.op_id = "op-2"
    procs.execute(journal.begin(prune))
    finished = journal.ops["op-2"].finished
    assert finished is not None
    assert finished["savepoint"][1] == "final"


def test_upgrades_record_upgrade_and_last_state_records_the_retained_checkpoint(world: World) -> None:
    flink, journal, procs = world
    procs.execute(journal.begin(upgrade_op(run_spec(args=["2"]), run_spec())))
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["savepoint"][1] == "upgrade"

    current = next(j.job_id for j in flink.live())
    last_state = upgrade_op(run_spec(args=["3"]), run_spec(), stop="cancel", restore="last-checkpoint")
    last_state.op_id = "op-2"
    last_state.ids.update(from_job_id=current, job_id="d" * 32, rollback_job_id="e" * 32)
    procs.execute(journal.begin(last_state))
    finished = journal.ops["op-2"].finished
    assert finished is not None
    path, origin = finished["savepoint"]
    assert origin == "retained"
    assert "chk" in path


def test_a_failed_periodic_savepoint_is_temporary_and_leaves_the_job_as_it_was(world: World) -> None:
    flink, journal, procs = world
    flink.jobs[OLD].state = "RESTARTING"  # Flink answers the savepoint with a failure cause
    with pytest.raises(PeriodicSavepointFailed):
        procs.execute(journal.begin(savepoint_op("periodic")))
    finished = journal.ops["op-1"].finished
    assert finished is not None
    assert finished["ok"] is False
    assert finished["savepoint"] is None
    job: JobOutcome = finished["job"]
    assert (job.lifecycle, job.flink_job_id, job.failed_hash) == (JobLifecycle.STABLE, OLD, None)


def test_a_failed_nonce_savepoint_stays_a_permanent_error(world: World) -> None:
    flink, journal, procs = world
    flink.jobs[OLD].state = "RESTARTING"
    with pytest.raises(SavepointFailed):
        procs.execute(journal.begin(savepoint_op("nonce")))


def test_the_journal_stamps_the_current_savepoints_time_from_the_store_clock(tmp_path: Path) -> None:
    clock = FakeClock()
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        lease = store.leases.acquire("t", 10**6, name=cluster_lease("default"))
        assert lease is not None
        store.jobs.create("orders", "default", epoch=lease.epoch, lease=lease.name)
        store.jobs.update(
            "orders",
            JobUpdate(state=JobLifecycle.STABLE, flink_job_id=OLD),
            epoch=lease.epoch,
            lease=lease.name,
        )
        journal = StoreJournal(store, {"default": lease.epoch})
        ids = savepoint_op("periodic").ids
        clock.advance(3600)
        op = store.operations.begin(
            "orders", "savepoint", ids, epoch=lease.epoch, lease=lease.name, cluster="default"
        )
        outcome = JobOutcome(JobLifecycle.STABLE, OLD, "default", savepoint="file:///sp/1")
        journal.finish(
            op.op_id, succeeded=True, job=outcome, savepoint=("file:///sp/1", "periodic"), detail={}
        )
        job = store.jobs.get("orders")
        assert job is not None
        assert (job.savepoint, job.savepoint_at) == ("file:///sp/1", clock.now())
        (sp,) = store.snapshots.history("orders")
        assert (sp.origin, sp.kind, sp.created_at) == (
            SnapshotOrigin.PERIODIC,
            SnapshotKind.SAVEPOINT,
            clock.now(),
        )

        # an outcome without a new savepoint leaves the time alone
        clock.advance(60)
        op = store.operations.begin(
            "orders", "record", ids, epoch=lease.epoch, lease=lease.name, cluster="default"
        )
        journal.finish(op.op_id, succeeded=True, job=outcome, savepoint=None, detail={})
        job = store.jobs.get("orders")
        assert job is not None
        assert job.savepoint_at == clock.now() - timedelta(seconds=60)
    finally:
        store.close()
