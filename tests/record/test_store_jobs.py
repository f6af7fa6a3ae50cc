"""Job state, generations, savepoint history, the operations log and cycle summaries, on both backends."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import (
    JobLifecycle,
    OperationAlreadyFinished,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    Store,
    UnknownOperation,
    UnknownSavepoint,
)


@pytest.fixture
def epoch(store: Store) -> int:
    lease = store.acquire_lease("leader-a", ttl=3600)
    assert lease is not None
    return lease.epoch


SPEC = {"job": {"jarURI": "artifacts/a.jar", "parallelism": 4, "args": ["--x", "ü"]}, "state": "running"}


def test_unknown_job_is_none(store: Store) -> None:
    assert store.get_job("default", "nope") is None
    assert store.list_jobs() == []


def test_upsert_creates_then_updates_only_given_fields(store: Store, epoch: int, clock: FakeClock) -> None:
    spec = SpecRecord(SPEC, "sha256:aa", "c0ffee")
    created = store.upsert_job(
        "default", "orders", epoch=epoch, state=JobLifecycle.DEPLOYED, last_reconciled=spec
    )
    assert created.state is JobLifecycle.DEPLOYED
    assert created.last_reconciled == spec
    assert created.last_stable is None
    assert created.generation == 0
    assert created.attempts == 0
    assert created.updated_at == clock.now()

    clock.advance(5)
    updated = store.upsert_job("default", "orders", epoch=epoch, flink_job_id="a" * 32, last_stable=spec)
    assert updated.state is JobLifecycle.DEPLOYED  # kept
    assert updated.last_reconciled == spec  # kept
    assert updated.last_stable == spec
    assert updated.flink_job_id == "a" * 32
    assert updated.updated_at == clock.now()
    assert store.get_job("default", "orders") == updated

    cleared = store.upsert_job("default", "orders", epoch=epoch, flink_job_id=None, last_stable=None)
    assert cleared.flink_job_id is None
    assert cleared.last_stable is None
    assert cleared.last_reconciled == spec


def test_list_jobs_is_ordered_and_filters_by_cluster(store: Store, epoch: int) -> None:
    for cluster, name in [("b", "x"), ("a", "z"), ("a", "y")]:
        store.upsert_job(cluster, name, epoch=epoch, state=JobLifecycle.STABLE)
    assert [(j.cluster, j.name) for j in store.list_jobs()] == [("a", "y"), ("a", "z"), ("b", "x")]
    assert [j.name for j in store.list_jobs("a")] == ["y", "z"]


def test_failures_count_up_and_reset(store: Store, epoch: int, clock: FakeClock) -> None:
    later = clock.now() + timedelta(seconds=30)
    store.record_failure("default", "orders", error="stop failed", next_attempt_at=later, epoch=epoch)
    job = store.record_failure(
        "default", "orders", error="stop failed again", next_attempt_at=later, epoch=epoch
    )
    assert job.attempts == 2
    assert job.last_error == "stop failed again"
    assert job.next_attempt_at == later
    assert job.state is JobLifecycle.CREATED
    reset = store.upsert_job(
        "default", "orders", epoch=epoch, attempts=0, next_attempt_at=None, last_error=None
    )
    assert (reset.attempts, reset.next_attempt_at, reset.last_error) == (0, None, None)


def test_generation_increments_and_survives_other_updates(store: Store, epoch: int) -> None:
    assert store.next_generation("default", "orders", epoch=epoch) == 1
    assert store.next_generation("default", "orders", epoch=epoch) == 2
    store.upsert_job("default", "orders", epoch=epoch, state=JobLifecycle.UPGRADING)
    assert store.next_generation("default", "orders", epoch=epoch) == 3
    assert store.next_generation("default", "other", epoch=epoch) == 1
    assert store.get_job("default", "orders").generation == 3  # type: ignore[union-attr]


def test_delete_job_forgets_state_but_keeps_history(store: Store, epoch: int) -> None:
    store.next_generation("default", "orders", epoch=epoch)
    store.record_savepoint(
        "default",
        "orders",
        "file:///sp/1",
        kind=SnapshotKind.SAVEPOINT,
        origin=SnapshotOrigin.STOP,
        epoch=epoch,
    )
    assert store.delete_job("default", "orders", epoch=epoch) is True
    assert store.delete_job("default", "orders", epoch=epoch) is False
    assert store.get_job("default", "orders") is None
    assert len(store.savepoints("default", "orders")) == 1


def test_savepoint_history_newest_first_idempotent_and_disposable(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    first = store.record_savepoint(
        "default",
        "orders",
        "s3://sp/savepoint-1",
        kind=SnapshotKind.SAVEPOINT,
        origin=SnapshotOrigin.UPGRADE,
        flink_job_id="a" * 32,
        epoch=epoch,
    )
    clock.advance(60)
    chk = store.record_savepoint(
        "default",
        "orders",
        "s3://chk/chk-7",
        kind=SnapshotKind.CHECKPOINT,
        origin=SnapshotOrigin.RETAINED,
        epoch=epoch,
    )
    clock.advance(60)
    second = store.record_savepoint(
        "default",
        "orders",
        "s3://sp/savepoint-2",
        kind=SnapshotKind.SAVEPOINT,
        origin=SnapshotOrigin.MANUAL,
        epoch=epoch,
    )
    again = store.record_savepoint(
        "default",
        "orders",
        "s3://sp/savepoint-1",
        kind=SnapshotKind.SAVEPOINT,
        origin=SnapshotOrigin.FINAL,
        epoch=epoch,
    )
    assert again == first  # recording twice is harmless and changes nothing
    assert first.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert first.flink_job_id == "a" * 32
    assert [s.path for s in store.savepoints("default", "orders")] == [second.path, chk.path, first.path]
    assert store.savepoints("default", "orders", kind=SnapshotKind.CHECKPOINT) == [chk]
    assert store.latest_savepoint("default", "orders", kind=SnapshotKind.SAVEPOINT) == second
    assert store.savepoints("default", "other") == []

    disposed = store.mark_savepoint_disposed(second.id, epoch=epoch)
    assert disposed.disposed is True
    assert disposed.disposed_at == clock.now()
    clock.advance(1)
    assert store.mark_savepoint_disposed(second.id, epoch=epoch) == disposed  # idempotent
    assert store.latest_savepoint("default", "orders", kind=SnapshotKind.SAVEPOINT) == first
    assert second.id in {s.id for s in store.savepoints("default", "orders", include_disposed=True)}
    with pytest.raises(UnknownSavepoint):
        store.mark_savepoint_disposed(10_000, epoch=epoch)


def test_operations_log_intent_outcome_and_open_intents(store: Store, epoch: int, clock: FakeClock) -> None:
    intent = {"action": "stop-with-savepoint", "flink_job_id": "a" * 32, "target": "s3://sp"}
    op1 = store.begin_operation("default", "orders", "upgrade", intent, epoch=epoch)
    clock.advance(1)
    op2 = store.begin_operation("default", "payments", "deploy", {"generation": 3}, epoch=epoch)
    clock.advance(1)
    op3 = store.begin_operation(None, None, "prune-check", {}, epoch=epoch, op_id="fixed-id")
    assert op3 == "fixed-id"
    assert len({op1, op2, op3}) == 3
    assert [o.op_id for o in store.open_operations()] == [op1, op2, op3]
    assert [o.op_id for o in store.open_operations("default")] == [op1, op2]

    clock.advance(5)
    done = store.finish_operation(op1, OperationState.SUCCEEDED, {"savepoint": "s3://sp/1"}, epoch=epoch)
    assert done.state is OperationState.SUCCEEDED
    assert done.intent == intent
    assert done.detail == {"savepoint": "s3://sp/1"}
    assert done.finished_at == clock.now()
    assert done.epoch == epoch
    store.finish_operation(op2, OperationState.ABANDONED, epoch=epoch)
    assert [o.op_id for o in store.open_operations()] == [op3]
    assert store.get_operation(op2).state is OperationState.ABANDONED  # type: ignore[union-attr]

    with pytest.raises(OperationAlreadyFinished):
        store.finish_operation(op1, OperationState.FAILED, epoch=epoch)
    with pytest.raises(UnknownOperation):
        store.finish_operation("missing", OperationState.FAILED, epoch=epoch)
    with pytest.raises(ValueError, match="outcome"):
        store.finish_operation(op3, OperationState.STARTED, epoch=epoch)
    assert [o.op_id for o in store.operations("default", "orders")] == [op1]
    assert [o.op_id for o in store.operations(limit=2)] == [op3, op2]


def test_cycles_newest_first(store: Store, clock: FakeClock) -> None:
    t0 = clock.now()
    for i in range(3):
        store.record_cycle(
            started_at=t0 + timedelta(seconds=30 * i),
            finished_at=t0 + timedelta(seconds=30 * i + 2),
            revision=f"rev{i}",
            counts={"jobs": 5, "changed": i},
            outcome="ok" if i != 1 else "partial",
            detail=None if i != 1 else "cluster b unreachable",
        )
    got = store.cycles(limit=2)
    assert [c.revision for c in got] == ["rev2", "rev1"]
    assert got[1].counts == {"jobs": 5, "changed": 1}
    assert got[1].outcome == "partial"
    assert got[1].detail == "cluster b unreachable"
    assert got[0].finished_at - got[0].started_at == timedelta(seconds=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_bad_inputs_are_refused_before_writing(store: Store, epoch: int) -> None:
    with pytest.raises(ValueError, match="commit"):
        store.upsert_job("default", "orders", epoch=epoch, last_reconciled=SpecRecord({}, "h", "c\x00"))
    with pytest.raises(ValueError, match="path"):
        store.record_savepoint(
            "default",
            "orders",
            "s3://\x00",
            kind=SnapshotKind.SAVEPOINT,
            origin=SnapshotOrigin.MANUAL,
            epoch=epoch,
        )
    assert store.get_job("default", "orders") is None
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.record_failure("default", "orders", error="e", next_attempt_at=naive, epoch=epoch)
    job = store.upsert_job("default", "orders", epoch=epoch, last_error="flink said \x00 oops")
    assert job.last_error == "flink said \ufffd oops"


def test_specs_and_intents_round_trip_any_json(store: Store, epoch: int) -> None:
    @settings(max_examples=40)
    @given(
        spec=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
        commit=st.none() | st.text(st.characters(exclude_characters="\x00"), max_size=40),
    )
    def check(spec: dict[str, object], commit: str | None) -> None:
        record = SpecRecord(spec, "sha256:" + "0" * 64, commit)
        job = store.upsert_job("default", "prop", epoch=epoch, last_reconciled=record)
        assert job.last_reconciled == record
        assert store.get_job("default", "prop").last_reconciled == record  # type: ignore[union-attr]
        op = store.begin_operation("default", "prop", "deploy", spec, epoch=epoch)
        assert store.get_operation(op).intent == spec  # type: ignore[union-attr]

    check()
