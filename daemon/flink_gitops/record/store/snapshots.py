"""Snapshots: a job's savepoint and retained-checkpoint history, by job name and life (uid).

Recording a path again returns the existing record unchanged, so a step
retried after a crash is harmless. A record may also become the job's current
savepoint (``JobRecord.savepoint``, what a resume or recovery restores from)
in the same transaction. Records are never deleted, only marked disposed.
:class:`SnapshotWrites` runs on an open transaction (see :mod:`.unit`);
:class:`Snapshots` is ``Store.snapshots``. Neighbours: :mod:`.jobs`,
:mod:`.operations` (records one with an operation's outcome).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, Tx, aware, no_nul
from flink_gitops.record.store.errors import UnknownJob, UnknownSavepoint
from flink_gitops.record.store.jobs import locked_job
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    NewSavepoint,
    SavepointRecord,
    SnapshotKind,
    SnapshotOrigin,
)


def savepoint_record(r: Row[Any]) -> SavepointRecord:
    return SavepointRecord(
        id=int(r.id),
        name=r.name,
        uid=r.uid,
        cluster=r.cluster,
        path=r.path,
        kind=SnapshotKind(r.kind),
        origin=SnapshotOrigin(r.origin),
        flink_job_id=r.flink_job_id,
        created_at=r.created_at,
        disposed=bool(r.disposed),
        disposed_at=r.disposed_at,
    )


def check_new_savepoint(new: NewSavepoint) -> None:
    no_nul(name=new.name, path=new.path, flink_job_id=new.flink_job_id)
    aware(created_at=new.created_at)
    if not new.path:
        raise ValueError("a savepoint path must not be empty")
    SnapshotKind(new.kind)
    SnapshotOrigin(new.origin)


class SnapshotWrites:
    """Snapshot writes inside one open (already fenced) transaction."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def record(self, new: NewSavepoint) -> SavepointRecord:
        """Remember a completed savepoint/checkpoint of a recorded job, under its current life and cluster."""
        check_new_savepoint(new)
        conn = self._tx.conn
        job = locked_job(conn, new.name)
        if job is None:
            raise UnknownJob(f"no job named {new.name!r} is recorded; its savepoint cannot be")
        where = (t.savepoints.c.name == new.name, t.savepoints.c.path == new.path)
        existing = conn.execute(sa.select(t.savepoints).where(*where)).one_or_none()
        if existing is None:
            conn.execute(
                sa.insert(t.savepoints).values(
                    name=new.name,
                    uid=job.uid,
                    cluster=job.cluster,
                    path=new.path,
                    kind=SnapshotKind(new.kind).value,
                    origin=SnapshotOrigin(new.origin).value,
                    flink_job_id=new.flink_job_id,
                    created_at=new.created_at or self._tx.now,
                    disposed=False,
                )
            )
        if new.make_current and job.savepoint != new.path:
            conn.execute(
                sa.update(t.jobs)
                .where(t.jobs.c.name == new.name)
                .values(savepoint=new.path, updated_at=self._tx.now)
            )
        return savepoint_record(conn.execute(sa.select(t.savepoints).where(*where)).one())

    def mark_disposed(self, savepoint_id: int) -> SavepointRecord:
        """Mark a record disposed (idempotent); a job whose current savepoint it was loses it."""
        conn = self._tx.conn
        where = t.savepoints.c.id == savepoint_id
        row = conn.execute(sa.select(t.savepoints).where(where).with_for_update()).one_or_none()
        if row is None:
            raise UnknownSavepoint(f"no savepoint record with id {savepoint_id}")
        if not row.disposed:
            conn.execute(sa.update(t.savepoints).where(where).values(disposed=True, disposed_at=self._tx.now))
            conn.execute(
                sa.update(t.jobs)
                .where(t.jobs.c.name == row.name, t.jobs.c.savepoint == row.path)
                .values(savepoint=None, updated_at=self._tx.now)
            )
        return savepoint_record(conn.execute(sa.select(t.savepoints).where(where)).one())


class Snapshots:
    """``Store.snapshots``: history reads, and each write as its own fenced transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def record(self, new: NewSavepoint, *, epoch: int, lease: str = DEFAULT_LEASE) -> SavepointRecord:
        check_new_savepoint(new)
        with self._db.fenced(f"cannot record savepoint of job {new.name}", epoch=epoch, lease=lease) as tx:
            return SnapshotWrites(tx).record(new)

    def mark_disposed(self, savepoint_id: int, *, epoch: int, lease: str = DEFAULT_LEASE) -> SavepointRecord:
        with self._db.fenced(
            f"cannot mark savepoint {savepoint_id} disposed", epoch=epoch, lease=lease
        ) as tx:
            return SnapshotWrites(tx).mark_disposed(savepoint_id)

    def history(
        self,
        name: str,
        *,
        uid: str | None = None,
        kind: SnapshotKind | None = None,
        include_disposed: bool = False,
        limit: int | None = None,
    ) -> list[SavepointRecord]:
        """A job's savepoints/checkpoints (of one life, if ``uid``), newest first (created_at, then id)."""
        query = sa.select(t.savepoints).where(t.savepoints.c.name == name)
        if uid is not None:
            query = query.where(t.savepoints.c.uid == uid)
        if kind is not None:
            query = query.where(t.savepoints.c.kind == SnapshotKind(kind).value)
        if not include_disposed:
            query = query.where(t.savepoints.c.disposed == sa.false())
        query = query.order_by(t.savepoints.c.created_at.desc(), t.savepoints.c.id.desc()).limit(limit)
        with self._db.read("cannot read savepoints") as conn:
            return [savepoint_record(r) for r in conn.execute(query).all()]

    def latest(
        self, name: str, *, uid: str | None = None, kind: SnapshotKind | None = None
    ) -> SavepointRecord | None:
        """The newest record not disposed, or None."""
        found = self.history(name, uid=uid, kind=kind, limit=1)
        return found[0] if found else None

    def retention_stats(
        self, *, more_than: int = 1, older_than: datetime | None = None
    ) -> dict[str, tuple[int, datetime]]:
        """Per job name, the count and the oldest creation time of its savepoints (kind savepoint)
        not yet disposed: one aggregate query, so that retention reads the history only of jobs
        that may be over their limits. Only jobs with more than one, and more than ``more_than``
        or (when given) an oldest one created before ``older_than``."""
        c = t.savepoints.c
        n, oldest = sa.func.count(), sa.func.min(c.created_at)
        over = n > more_than if older_than is None else sa.or_(n > more_than, oldest < older_than)
        query = (
            sa.select(c.name, n.label("n"), oldest.label("oldest"))
            .where(c.disposed == sa.false(), c.kind == SnapshotKind.SAVEPOINT.value)
            .group_by(c.name)
            .having(n > 1, over)
        )
        with self._db.read("cannot read savepoint counts") as conn:
            return {r.name: (int(r.n), r.oldest) for r in conn.execute(query).all()}

    def current_paths(self) -> frozenset[str]:
        """Every job's current savepoint path (``jobs.savepoint``), whatever its job: a job deployed
        from another job's savepoint keeps that one from being disposed."""
        query = sa.select(t.jobs.c.savepoint).where(t.jobs.c.savepoint.is_not(None)).distinct()
        with self._db.read("cannot read current savepoints") as conn:
            return frozenset(r.savepoint for r in conn.execute(query).all())
