"""Which savepoints retention disposes: a pure function of one job's history, its protected paths,
its limits (``spec.savepoints.maxCount`` / ``maxAge``) and the time.

The rule, exactly. Only records of kind *savepoint* that are not disposed take part (retained
checkpoints, kind *checkpoint*, are Flink's to clean up: they neither count nor are ever chosen).
Rank them newest first by (created_at, id); the newest has rank 0. A record is chosen when

- its path is not protected (the caller protects the job's current savepoint, the one its current
  Flink job was started from, the last stable deployment's, and every path an open operation or
  another job names), and
- it is not the newest (rank 0: a job is never left without its latest savepoint), and
- its rank is ``max_count`` or more (beyond the ``max_count`` newest), or it was created more
  than ``max_age_s`` seconds before ``now``.

So afterwards at most ``max_count`` unprotected savepoints are left, each among the
``max_count`` newest and none older than ``max_age_s`` except the newest (protected ones are
kept whatever their rank or age, and count in the ranking). :func:`may_need_disposal` is the
same rule on a job's aggregate (count, oldest), to skip jobs that cannot be over their limits.
Neighbours: ``execute.retention`` (carries it out), ``record.store.records`` (the records).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime, timedelta

from flink_gitops.record.store import SavepointRecord, SnapshotKind


def select_disposals(
    history: Sequence[SavepointRecord],
    protected: Collection[str],
    *,
    max_count: int,
    max_age_s: float,
    now: datetime,
) -> list[SavepointRecord]:
    """The records to dispose, oldest first (see the module docstring for the rule)."""
    live = [r for r in history if r.kind is SnapshotKind.SAVEPOINT and not r.disposed]
    live.sort(key=lambda r: (r.created_at, r.id), reverse=True)
    cutoff = now - timedelta(seconds=max_age_s)
    chosen = [
        r
        for rank, r in enumerate(live)
        if rank > 0 and r.path not in protected and (rank >= max_count or r.created_at < cutoff)
    ]
    return chosen[::-1]


def may_need_disposal(
    count: int, oldest: datetime, *, max_count: int, max_age_s: float, now: datetime
) -> bool:
    """Whether a job with ``count`` undisposed savepoints, the oldest created at ``oldest``, can
    have any to dispose: more than one, and more than max_count or the oldest past max age."""
    return count > 1 and (count > max_count or oldest < now - timedelta(seconds=max_age_s))
