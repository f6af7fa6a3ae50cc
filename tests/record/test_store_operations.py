"""The operations log as recorded steps; units of work land together or not at all (both backends)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import (
    DuplicateOperation,
    JobConflict,
    JobLifecycle,
    JobUpdate,
    NewSavepoint,
    OperationAlreadyFinished,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    UnknownJob,
    UnknownOperation,
)
from tests.fixtures.postgres import StoreTarget


@pytest.fixture
def epoch(store: Store) -> int:
    lease = store.leases.acquire("leader-a", ttl=3600)
    assert lease is not None
    store.jobs.create("orders", "east", epoch=lease.epoch)
    store.jobs.create("payments", "west", epoch=lease.epoch)
    return lease.epoch


def test_steps_merge_ids_keep_history_and_open_shows_the_last_step(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    job = store.jobs.get("orders")
    assert job is not None
    intent = {"action": "upgrade", "mode": "savepoint", "from": "a" * 32}
    op = store.operations.begin("orders", "upgrade", intent, epoch=epoch)
    assert (op.name, op.uid, op.cluster, op.step, op.detail) == ("orders", job.uid, "east", "begin", {})
    assert [s.step for s in op.steps] == ["begin"]
    clock.advance(1)
    store.operations.advance(op.op_id, "stop-sent", {"trigger_id": "t-1"}, epoch=epoch)
    clock.advance(1)
    store.operations.advance(op.op_id, "stopped", {"savepoint": "s3://sp/1"}, epoch=epoch)
    clock.advance(1)
    last = store.operations.advance(
        op.op_id, "run-sent", {"jar_id": "j.jar", "job_id": "b" * 32}, epoch=epoch
    )
    assert last.step == "run-sent"
    assert last.detail == {
        "trigger_id": "t-1",
        "savepoint": "s3://sp/1",
        "jar_id": "j.jar",
        "job_id": "b" * 32,
    }
    assert [(s.step, s.detail) for s in last.steps] == [
        ("begin", {}),
        ("stop-sent", {"trigger_id": "t-1"}),
        ("stopped", {"savepoint": "s3://sp/1"}),
        ("run-sent", {"jar_id": "j.jar", "job_id": "b" * 32}),
    ]
    assert [s.at for s in last.steps] == [op.started_at + timedelta(seconds=i) for i in range(4)]
    assert all(s.epoch == epoch for s in last.steps)
    assert last.updated_at == clock.now()
    assert last.intent == intent  # the intent is never rewritten

    # What a crash left open: the operation with its last step and every id recorded so far.
    (crashed,) = store.operations.open()
    assert crashed == last
    assert store.operations.open("east") == [last]
    assert store.operations.open("west") == []
    assert store.operations.open_by_job() == {"orders": last}


def test_finish_writes_outcome_job_state_and_savepoint_in_one_transaction(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    op = store.operations.begin("orders", "upgrade", {}, epoch=epoch)
    store.operations.advance(op.op_id, "stopped", {"savepoint": "s3://sp/9"}, epoch=epoch)
    clock.advance(5)
    done = store.operations.finish(
        op.op_id,
        OperationState.SUCCEEDED,
        {"running": "b" * 32},
        epoch=epoch,
        job=JobUpdate(state=JobLifecycle.STABLE, flink_job_id="b" * 32),
        savepoint=NewSavepoint(
            "orders", "s3://sp/9", SnapshotKind.SAVEPOINT, SnapshotOrigin.UPGRADE, "a" * 32
        ),
    )
    assert (done.state, done.step, done.finished_at) == (OperationState.SUCCEEDED, "succeeded", clock.now())
    assert done.detail == {"savepoint": "s3://sp/9", "running": "b" * 32}
    assert [s.step for s in done.steps] == ["begin", "stopped", "succeeded"]
    job = store.jobs.get("orders")
    assert job is not None
    assert (job.state, job.flink_job_id, job.savepoint, job.updated_at) == (
        JobLifecycle.STABLE,
        "b" * 32,
        "s3://sp/9",
        clock.now(),
    )
    (sp,) = store.snapshots.history("orders")
    assert (sp.path, sp.uid, sp.origin) == ("s3://sp/9", job.uid, SnapshotOrigin.UPGRADE)
    assert store.operations.open() == []
    with pytest.raises(OperationAlreadyFinished):
        store.operations.finish(op.op_id, OperationState.FAILED, epoch=epoch)
    with pytest.raises(OperationAlreadyFinished):
        store.operations.advance(op.op_id, "late", epoch=epoch)


def test_a_failing_part_rolls_the_whole_finish_back(store: Store, epoch: int) -> None:
    op = store.operations.begin("orders", "upgrade", {}, epoch=epoch)
    before = (store.jobs.all(), store.operations.get(op.op_id), store.snapshots.history("orders"))
    # The savepoint belongs to a job nobody recorded: the outcome and the job update must not land either.
    with pytest.raises(UnknownJob):
        store.operations.finish(
            op.op_id,
            OperationState.SUCCEEDED,
            epoch=epoch,
            job=JobUpdate(state=JobLifecycle.STABLE),
            savepoint=NewSavepoint("ghost", "s3://sp/x", SnapshotKind.SAVEPOINT, SnapshotOrigin.STOP),
        )
    # A tombstoned job refuses a state out of DELETED: again nothing of the finish lands.
    with store.unit(epoch=epoch) as uow:
        uow.jobs.create("gone", "east")
        uow.jobs.tombstone("gone")
    gone = store.operations.begin("gone", "deploy", {}, epoch=epoch)
    with pytest.raises(JobConflict):
        store.operations.finish(
            gone.op_id, OperationState.SUCCEEDED, epoch=epoch, job=JobUpdate(state=JobLifecycle.DEPLOYED)
        )
    assert store.operations.get(gone.op_id).state is OperationState.STARTED  # type: ignore[union-attr]
    assert (store.jobs.all()[1:], store.operations.get(op.op_id), store.snapshots.history("orders")) == (
        before[0],
        before[1],
        before[2],
    )


def test_an_operation_of_an_earlier_life_cannot_update_the_new_one(store: Store, epoch: int) -> None:
    op = store.operations.begin("orders", "upgrade", {}, epoch=epoch)
    with store.unit(epoch=epoch) as uow:
        uow.jobs.tombstone("orders")
        uow.jobs.new_life("orders", "east")
    with pytest.raises(JobConflict, match="earlier life"):
        store.operations.finish(
            op.op_id, OperationState.SUCCEEDED, epoch=epoch, job=JobUpdate(state=JobLifecycle.STABLE)
        )
    assert store.operations.finish(op.op_id, OperationState.ABANDONED, epoch=epoch).uid != (
        store.jobs.get("orders").uid  # type: ignore[union-attr]
    )


def test_unit_of_work_commits_together_or_not_at_all(store: Store, epoch: int, clock: FakeClock) -> None:
    class Boom(Exception):
        pass

    def crash_midway() -> None:
        with store.unit(epoch=epoch) as uow:
            job = uow.jobs.next_generation("orders")
            uow.operations.begin("orders", "deploy", {"generation": job.generation})
            uow.snapshots.record(
                NewSavepoint("orders", "s3://sp/1", SnapshotKind.SAVEPOINT, SnapshotOrigin.MANUAL)
            )
            raise Boom

    with pytest.raises(Boom):
        crash_midway()
    assert store.jobs.get("orders").generation == 0  # type: ignore[union-attr]
    assert store.operations.open() == []
    assert store.snapshots.history("orders") == []

    clock.advance(3)
    with store.unit(epoch=epoch) as uow:
        job = uow.jobs.next_generation("orders")
        op = uow.operations.begin("orders", "deploy", {"generation": job.generation})
        uow.operations.advance(op.op_id, "run-sent", {"job_id": "c" * 32})
        assert uow.now == clock.now()
    assert store.jobs.get("orders").generation == 1  # type: ignore[union-attr]
    assert store.operations.open_by_job()["orders"].detail == {"job_id": "c" * 32}


def test_one_open_operation_per_job_and_idempotent_begin(store: Store, epoch: int) -> None:
    op = store.operations.begin("orders", "upgrade", {"x": 1}, epoch=epoch, op_id="op-1")
    assert op.op_id == "op-1"
    assert store.operations.begin("orders", "upgrade", {"x": 1}, epoch=epoch, op_id="op-1") == op  # a retry
    with pytest.raises(DuplicateOperation):
        store.operations.begin("orders", "upgrade", {"x": 2}, epoch=epoch, op_id="op-1")
    with pytest.raises(JobConflict, match="op-1"):
        store.operations.begin("orders", "suspend", {}, epoch=epoch)
    other = store.operations.begin("payments", "deploy", {}, epoch=epoch)  # another job is free
    none = store.operations.begin(None, "prune-check", {}, epoch=epoch)
    assert (none.name, none.uid, none.cluster) == (None, None, None)
    with pytest.raises(UnknownJob, match="not-yet"):
        store.operations.begin("not-yet", "deploy", {}, epoch=epoch, cluster="east")
    with store.unit(epoch=epoch) as uow:  # a new job and its deploy's intent land together
        new = uow.jobs.create("not-yet", "east")
        first = uow.operations.begin("not-yet", "deploy", {}, cluster="west")
    assert (first.uid, first.cluster) == (new.uid, "west")
    store.operations.finish(op.op_id, OperationState.ABANDONED, epoch=epoch)
    store.operations.begin("orders", "suspend", {}, epoch=epoch)  # free again
    assert [o.op_id for o in store.operations.history("payments")] == [other.op_id]
    assert len(store.operations.history(limit=2)) == 2


def test_bad_steps_and_outcomes_are_refused_before_writing(store: Store, epoch: int) -> None:
    op = store.operations.begin("orders", "upgrade", {}, epoch=epoch)
    for step in ("", "begin", "succeeded", "x" * 65, "a\x00b"):
        with pytest.raises(ValueError, match="step"):
            store.operations.advance(op.op_id, step, epoch=epoch)
    with pytest.raises(ValueError, match="plain JSON"):
        store.operations.advance(op.op_id, "s", {"x": object()}, epoch=epoch)
    with pytest.raises(ValueError, match="plain JSON"):
        store.operations.advance(op.op_id, "s", {"x": float("nan")}, epoch=epoch)
    with pytest.raises(ValueError, match="plain JSON"):
        store.operations.begin("payments", "deploy", {"at": clock_like()}, epoch=epoch)
    with pytest.raises(ValueError, match="outcome"):
        store.operations.finish(op.op_id, OperationState.STARTED, epoch=epoch)
    with pytest.raises(UnknownOperation):
        store.operations.advance("missing", "s", epoch=epoch)
    with pytest.raises(UnknownOperation):
        store.operations.finish("missing", OperationState.FAILED, epoch=epoch)
    (still,) = store.operations.open()
    assert still == store.operations.get(op.op_id)
    assert [s.step for s in still.steps] == ["begin"]
    assert [o.name for o in store.operations.history()] == ["orders"]


def clock_like() -> object:
    return FakeClock().now()  # a datetime: not JSON


def test_a_new_leader_resumes_and_finishes_what_the_old_one_left(
    store_target: StoreTarget, clock: FakeClock
) -> None:
    with store_target.open(clock) as old:
        a = old.leases.acquire("a", ttl=10)
        assert a is not None
        old.jobs.create("orders", "east", epoch=a.epoch)
        op = old.operations.begin("orders", "upgrade", {}, epoch=a.epoch)
        old.operations.advance(op.op_id, "stop-sent", {"trigger_id": "t-7"}, epoch=a.epoch)
    clock.advance(11)
    with store_target.open(clock) as new:
        b = new.leases.acquire("b", ttl=10)
        assert b is not None
        (left,) = new.operations.open()
        assert (left.step, left.detail) == ("stop-sent", {"trigger_id": "t-7"})
        done = new.operations.finish(left.op_id, OperationState.SUCCEEDED, epoch=b.epoch)
        assert [(s.step, s.epoch) for s in done.steps] == [
            ("begin", a.epoch),
            ("stop-sent", a.epoch),
            ("succeeded", b.epoch),
        ]
        assert done.epoch == a.epoch  # the epoch that began it
