"""The unit of work: several writes that must land together, fenced once, committed once.

``with store.unit(epoch=lease.epoch, lease=lease.name) as uow:`` opens one
write transaction, checks the lease epoch once, and gives the write halves of
the acting aggregates: ``uow.jobs`` (:class:`.jobs.JobWrites`),
``uow.snapshots`` (:class:`.snapshots.SnapshotWrites`) and ``uow.operations``
(:class:`.operations.OperationWrites`), ``uow.artifacts``
(:class:`.artifacts.ArtifactWrites`). Leaving the block commits all of
them; an exception rolls all of them back. Keep a unit short and never call
Flink inside one: it holds the write lock. Neighbours: :mod:`.base`, the
aggregate modules, the executor.
"""

from __future__ import annotations

from datetime import datetime

from flink_gitops.record.store.artifacts import ArtifactWrites
from flink_gitops.record.store.base import Tx
from flink_gitops.record.store.jobs import JobWrites
from flink_gitops.record.store.operations import OperationWrites
from flink_gitops.record.store.snapshots import SnapshotWrites


class UnitOfWork:
    __slots__ = ("artifacts", "epoch", "jobs", "now", "operations", "snapshots")

    def __init__(self, tx: Tx, epoch: int) -> None:
        self.artifacts = ArtifactWrites(tx)
        self.jobs = JobWrites(tx)
        self.snapshots = SnapshotWrites(tx)
        self.operations = OperationWrites(tx, epoch)
        self.epoch = epoch
        #: the time every write in this unit records.
        self.now: datetime = tx.now
