"""Pauses: which jobs (or all of them) the daemon must not act on, shared by every replica.

``Store.pauses``. One row per paused scope: a job's name, or ``*`` for every job. The reconciler
reads them every cycle (one small query) and the planner holds the paused jobs' non-urgent
actions. Writes are not fenced by a lease, unlike the job writes: a pause only ever narrows what
a leader does, and ``flink-gitops pause`` must work while a daemon holds every lease (the CLI
holds none); the HTTP API still refuses it on a replica that leads nothing. Pausing is
idempotent (an existing pause is kept as it was, reason and all); resuming removes the row.
The audit record is written by the caller first (``execute.pauses``). Neighbours: :mod:`.base`,
:mod:`.tables`, ``execute.pauses`` (audited pause/resume), ``plan.windows`` (what a pause holds).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row
from sqlalchemy.exc import IntegrityError

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, no_nul, storable, text
from flink_gitops.record.store.errors import StoreWriteFailed
from flink_gitops.record.store.records import PauseRecord

#: characters of a pause reason kept (longer ones are cut; ``execute.pauses`` says so).
MAX_REASON = 1000


def pause_record(r: Row[Any]) -> PauseRecord:
    return PauseRecord(scope=r.scope, reason=r.reason, paused_by=r.paused_by, paused_at=r.paused_at)


class Pauses:
    def __init__(self, db: Database) -> None:
        self._db = db

    def all(self) -> list[PauseRecord]:
        """Every pause, the global one (``*``) first, then by job name."""
        with self._db.read("cannot read the pauses") as conn:
            rows = conn.execute(sa.select(t.pauses).order_by(t.pauses.c.scope)).all()
        return [pause_record(r) for r in rows]

    def get(self, scope: str) -> PauseRecord | None:
        if not storable(scope):
            return None
        with self._db.read("cannot read the pauses") as conn:
            row = conn.execute(sa.select(t.pauses).where(t.pauses.c.scope == scope)).one_or_none()
        return None if row is None else pause_record(row)

    def pause(self, scope: str, *, reason: str, by: str) -> tuple[PauseRecord, bool]:
        """Pause ``scope`` unless it is paused already: (the pause in force, whether this call made it)."""
        no_nul(scope=scope, by=by)
        if not scope or len(scope) > 253 or len(by) > 253:
            raise ValueError("a pause needs a scope and an actor of at most 253 characters")
        kept = text(reason[:MAX_REASON]) or ""
        try:
            with self._db.write("cannot record the pause") as conn:
                found = conn.execute(sa.select(t.pauses).where(t.pauses.c.scope == scope)).one_or_none()
                if found is not None:
                    return pause_record(found), False
                now = self._db.clock.now()
                conn.execute(
                    sa.insert(t.pauses).values(scope=scope, reason=kept, paused_by=by, paused_at=now)
                )
                return PauseRecord(scope, kept, by, now), True
        except StoreWriteFailed as exc:
            if not isinstance(exc.__cause__, IntegrityError):
                raise
        # another writer paused it between our read and insert (PostgreSQL): theirs is in force
        existing = self.get(scope)
        if existing is None:
            raise StoreWriteFailed(f"cannot record the pause of {scope!r}: it was resumed meanwhile")
        return existing, False

    def resume(self, scope: str) -> PauseRecord | None:
        """Remove the pause of ``scope``: the pause that was in force, None when there was none."""
        no_nul(scope=scope)
        with self._db.write("cannot remove the pause") as conn:
            found = conn.execute(
                sa.select(t.pauses).where(t.pauses.c.scope == scope).with_for_update()
            ).one_or_none()
            if found is None:
                return None
            conn.execute(sa.delete(t.pauses).where(t.pauses.c.scope == scope))
            return pause_record(found)
