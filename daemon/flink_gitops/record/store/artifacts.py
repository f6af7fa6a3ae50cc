"""Artifacts: the jars this daemon uploaded, one row per (cluster, content digest).

A jar is uploaded once per content digest per cluster and reused by every job
and cycle that needs those bytes; only jars recorded here are ever deleted from
a cluster (a jar someone uploaded by hand never is). Recording an upload for a
digest that already has a row replaces its jar id (the old jar was gone from
Flink, so it was uploaded again). Writes are fenced by the cluster's lease
epoch, as every write that acts on a cluster. :class:`ArtifactWrites` runs on an
open transaction (see :mod:`.unit`); :class:`Artifacts` is ``Store.artifacts``.
Neighbours: ``execute.jar_registry`` (reuse), ``execute.jars_gc`` (deletes).
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, Tx, no_nul
from flink_gitops.record.store.records import ArtifactRecord, cluster_lease


def artifact_record(r: Row[Any]) -> ArtifactRecord:
    return ArtifactRecord(
        cluster=r.cluster,
        digest=r.digest,
        jar_id=r.jar_id,
        uploaded_at=r.uploaded_at,
        last_used_at=r.last_used_at,
    )


def _where(cluster: str, digest: str) -> tuple[Any, Any]:
    return (t.artifacts.c.cluster == cluster, t.artifacts.c.digest == digest)


def _check(cluster: str, digest: str, jar_id: str | None = None) -> None:
    no_nul(cluster=cluster, digest=digest, jar_id=jar_id)
    if not cluster or not digest or jar_id == "":
        raise ValueError("an artifact needs a cluster, a digest and a jar id")


class ArtifactWrites:
    """Artifact writes inside one open (already fenced) transaction."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def record_upload(self, cluster: str, digest: str, jar_id: str) -> ArtifactRecord:
        """Remember that ``jar_id`` on ``cluster`` holds the bytes of ``digest`` (replacing a stale id)."""
        _check(cluster, digest, jar_id)
        conn, now = self._tx.conn, self._tx.now
        where = _where(cluster, digest)
        existing = conn.execute(sa.select(t.artifacts).where(*where).with_for_update()).one_or_none()
        if existing is None:
            conn.execute(
                sa.insert(t.artifacts).values(
                    cluster=cluster, digest=digest, jar_id=jar_id, uploaded_at=now, last_used_at=now
                )
            )
        else:
            conn.execute(
                sa.update(t.artifacts).where(*where).values(jar_id=jar_id, uploaded_at=now, last_used_at=now)
            )
        return artifact_record(conn.execute(sa.select(t.artifacts).where(*where)).one())

    def mark_used(self, cluster: str, digest: str) -> None:
        """A job was started from it now (``last_used_at``); nothing when there is no row."""
        _check(cluster, digest)
        self._tx.conn.execute(
            sa.update(t.artifacts).where(*_where(cluster, digest)).values(last_used_at=self._tx.now)
        )

    def forget(self, cluster: str, digest: str, jar_id: str) -> bool:
        """Drop the row if it still names ``jar_id`` (a newer upload's row stays); whether it did."""
        _check(cluster, digest, jar_id)
        result = self._tx.conn.execute(
            sa.delete(t.artifacts).where(*_where(cluster, digest), t.artifacts.c.jar_id == jar_id)
        )
        return bool(result.rowcount)


class Artifacts:
    """``Store.artifacts``: reads, and each write as its own transaction fenced by the cluster's lease."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, cluster: str, digest: str) -> ArtifactRecord | None:
        with self._db.read("cannot read artifacts") as conn:
            row = conn.execute(sa.select(t.artifacts).where(*_where(cluster, digest))).one_or_none()
        return None if row is None else artifact_record(row)

    def all(self, cluster: str | None = None) -> list[ArtifactRecord]:
        """Every recorded jar (of one cluster, if given), by cluster and digest."""
        query = sa.select(t.artifacts).order_by(t.artifacts.c.cluster, t.artifacts.c.digest)
        if cluster is not None:
            query = query.where(t.artifacts.c.cluster == cluster)
        with self._db.read("cannot list artifacts") as conn:
            return [artifact_record(r) for r in conn.execute(query).all()]

    def _fenced(self, what: str, cluster: str, epoch: int, lease: str | None) -> Any:
        return self._db.fenced(what, epoch=epoch, lease=lease or cluster_lease(cluster))

    def record_upload(
        self, cluster: str, digest: str, jar_id: str, *, epoch: int, lease: str | None = None
    ) -> ArtifactRecord:
        _check(cluster, digest, jar_id)
        with self._fenced(f"cannot record jar {jar_id}", cluster, epoch, lease) as tx:
            return ArtifactWrites(tx).record_upload(cluster, digest, jar_id)

    def mark_used(self, cluster: str, digest: str, *, epoch: int, lease: str | None = None) -> None:
        with self._fenced("cannot mark a jar used", cluster, epoch, lease) as tx:
            ArtifactWrites(tx).mark_used(cluster, digest)

    def forget(self, cluster: str, digest: str, jar_id: str, *, epoch: int, lease: str | None = None) -> bool:
        with self._fenced(f"cannot forget jar {jar_id}", cluster, epoch, lease) as tx:
            return ArtifactWrites(tx).forget(cluster, digest, jar_id)
