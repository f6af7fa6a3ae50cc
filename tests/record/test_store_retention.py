"""The store's reads for savepoint retention, on both backends: the per-job aggregate, every job's
current savepoint, and a job's operations without the kinds that start nothing."""

from __future__ import annotations

from datetime import timedelta

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import NewSavepoint, OperationState, SnapshotKind, SnapshotOrigin, Store


def test_retention_reads(store: Store, clock: FakeClock) -> None:
    lease = store.leases.acquire("a", ttl=10**6)
    assert lease is not None
    e = lease.epoch
    for name in ("orders", "payments", "single"):
        store.jobs.create(name, "default", epoch=e)
    start = clock.now()

    def sp(name: str, path: str, kind: SnapshotKind = SnapshotKind.SAVEPOINT, current: bool = False) -> int:
        clock.advance(10)
        return store.snapshots.record(
            NewSavepoint(name, path, kind, SnapshotOrigin.PERIODIC, make_current=current), epoch=e
        ).id

    first = sp("orders", "s3://b/o1")
    sp("orders", "s3://b/o2")
    sp("orders", "s3://b/o3", current=True)
    sp("orders", "s3://b/chk-1", SnapshotKind.CHECKPOINT)  # checkpoints do not count
    sp("payments", "s3://b/p1")
    sp("payments", "s3://b/p2", current=True)
    sp("single", "s3://b/s1", current=True)  # one only: never a candidate
    store.snapshots.mark_disposed(first, epoch=e)

    stats = store.snapshots.retention_stats()
    assert stats == {
        "orders": (2, start + timedelta(seconds=20)),
        "payments": (2, start + timedelta(seconds=50)),
    }
    assert store.snapshots.retention_stats(more_than=2) == {}
    # more than 2, or an oldest one before the cutoff: only orders (its oldest at +20 s)
    cutoff = start + timedelta(seconds=30)
    assert store.snapshots.retention_stats(more_than=2, older_than=cutoff) == {"orders": stats["orders"]}
    assert store.snapshots.retention_stats(more_than=2, older_than=start) == {}
    assert store.snapshots.current_paths() == {"s3://b/o3", "s3://b/p2", "s3://b/s1"}

    for kind in ("savepoint", "upgrade", "record", "deploy"):
        clock.advance(1)
        op = store.operations.begin("orders", kind, {}, epoch=e)
        store.operations.finish(op.op_id, OperationState.SUCCEEDED, epoch=e)
    kinds = [op.kind for op in store.operations.history("orders", exclude_kinds=("savepoint", "record"))]
    assert kinds == ["deploy", "upgrade"]
