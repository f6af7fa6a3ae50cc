"""Cycles: one summary row per reconcile cycle (not fenced: it describes, it does not act).

``Store.cycles``. Neighbours: :mod:`.base`; the daemon's loop writes one per pass.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, aware, no_nul, text
from flink_gitops.record.store.records import CycleRecord


def cycle_record(r: Row[Any]) -> CycleRecord:
    return CycleRecord(
        id=int(r.id),
        started_at=r.started_at,
        finished_at=r.finished_at,
        revision=r.revision,
        counts={str(k): int(v) for k, v in dict(r.counts).items()},
        outcome=r.outcome,
        detail=r.detail,
    )


class Cycles:
    def __init__(self, db: Database) -> None:
        self._db = db

    def record(
        self,
        *,
        started_at: datetime,
        finished_at: datetime,
        revision: str | None,
        counts: dict[str, int],
        outcome: str,
        detail: str | None = None,
    ) -> CycleRecord:
        """Store one reconcile cycle's summary."""
        no_nul(revision=revision, outcome=outcome)
        aware(started_at=started_at, finished_at=finished_at)
        with self._db.write("cannot record the cycle summary") as conn:
            result = conn.execute(
                sa.insert(t.cycles)
                .values(
                    started_at=started_at,
                    finished_at=finished_at,
                    revision=revision,
                    counts=dict(counts),
                    outcome=outcome,
                    detail=text(detail),
                )
                .returning(t.cycles.c.id)
            )
            cycle_id = int(result.scalar_one())
            return cycle_record(conn.execute(sa.select(t.cycles).where(t.cycles.c.id == cycle_id)).one())

    def recent(self, limit: int = 20) -> list[CycleRecord]:
        """The newest cycle summaries, newest first."""
        query = sa.select(t.cycles).order_by(t.cycles.c.started_at.desc(), t.cycles.c.id.desc()).limit(limit)
        with self._db.read("cannot read cycle summaries") as conn:
            return [cycle_record(r) for r in conn.execute(query).all()]
