"""Savepoints the API queued (``Daemon.queue_savepoint``): taken at the start of the next tick;
one refused for a temporary reason (another operation of the job open: Busy) stays queued for the
tick after, never dropped after its 202; a permanent refusal (no such job) is dropped."""

from __future__ import annotations

from pathlib import Path

from flink_gitops.clock import FakeClock
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.store import JobUpdate, cluster_lease
from tests.service.test_loop_reload import _daemon, _settings


def test_a_busy_job_keeps_its_queued_savepoint_and_an_unknown_one_is_dropped(
    tmp_path: Path, clock: FakeClock
) -> None:
    daemon, store = _daemon(tmp_path, clock, _settings(tmp_path, "eu"), _settings(tmp_path, "eu"))
    lease = store.leases.acquire("seed", 30, name=cluster_lease("eu"))
    assert lease is not None
    store.jobs.create("orders", "eu", epoch=lease.epoch, lease=lease.name, file="jobs/orders.yaml")
    store.jobs.update(
        "orders",
        JobUpdate(state=JobLifecycle.STABLE, flink_job_id="0" * 31 + "1"),
        epoch=lease.epoch,
        lease=lease.name,
    )
    store.operations.begin("orders", "upgrade", {"parked": True}, epoch=lease.epoch, lease=lease.name)
    store.leases.release(lease)
    try:
        assert daemon.queue_savepoint("orders")
        assert daemon.queue_savepoint("nope")
        daemon.tick()
        assert not daemon.queue_savepoint("orders"), "still queued: Busy is temporary"
        assert daemon.queue_savepoint("nope"), "dropped: there is no such job"
        assert store.snapshots.history("orders") == []
    finally:
        daemon.stop()
        daemon._close()
