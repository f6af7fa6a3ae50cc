"""Jobs: one row per job name, with its lives, generations, specs and backoff.

A job is its name, not (cluster, name): moving it to another cluster is an
update of its ``cluster`` column, so its row, last stable spec and savepoint
history stay. Each life has a ``uid``; a removed job becomes a tombstone
(DELETED, Flink job id cleared, everything else kept), and adding it again
starts a new life on the same row with a new uid. ``generation`` only grows,
across lives too, so ``flink.ids.job_id_for(uid, generation)`` never repeats
an id Flink may still list for a terminal job. There is no hard delete.

:class:`JobWrites` is the write half on an open transaction (a unit of work
combines it with the others); :class:`Jobs` is what ``Store.jobs`` is: reads,
and each write as its own fenced transaction. Neighbours: :mod:`.base`,
:mod:`.unit`, :mod:`.snapshots` and :mod:`.operations` (read a job's uid).
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, Tx, aware, no_nul, storable, text
from flink_gitops.record.store.errors import JobConflict, UnknownJob
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    JobLifecycle,
    JobRecord,
    JobUpdate,
    Keep,
    SpecRecord,
)


def new_uid() -> str:
    """A fresh life id: 32 lowercase hex characters."""
    return uuid.uuid4().hex


def _spec(
    spec: Any, hash_: str | None, commit: str | None, jar_digest: str | None, full: str | None
) -> SpecRecord | None:
    if hash_ is None:
        return None
    return SpecRecord(
        spec=dict(spec or {}), hash=hash_, commit=commit, jar_digest=jar_digest, full_digest=full
    )


def job_record(r: Row[Any], *, specs: bool = True) -> JobRecord:
    """The record of a row; ``specs=False`` for rows selected without the spec bodies."""
    return JobRecord(
        name=r.name,
        uid=r.uid,
        cluster=r.cluster,
        flink_job_id=r.flink_job_id,
        state=JobLifecycle(r.state),
        last_reconciled=_spec(
            r.reconciled_spec if specs else None,
            r.reconciled_hash,
            r.reconciled_commit,
            r.reconciled_jar_digest,
            r.reconciled_full_digest,
        ),
        last_stable=_spec(
            r.stable_spec if specs else None,
            r.stable_hash,
            r.stable_commit,
            r.stable_jar_digest,
            r.stable_full_digest,
        ),
        failed_hash=r.failed_hash,
        savepoint=r.savepoint,
        file=r.file,
        generation=int(r.generation),
        attempts=int(r.attempts),
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        created_at=r.created_at,
        updated_at=r.updated_at,
        drift_kind=r.drift_kind,
        drift_since=r.drift_since,
        drift_detail=r.drift_detail,
        restarts=_times(r.restarts),
        fingerprint=dict(r.fingerprint) if isinstance(r.fingerprint, dict) else None,
        savepoint_at=r.savepoint_at,
        last_run_at=r.last_run_at,
    )


def _times(value: Any) -> tuple[datetime, ...]:
    """The ``restarts`` column: a JSON list of ISO times (anything else reads as none)."""
    if not isinstance(value, list):
        return ()
    out: list[datetime] = []
    for item in value:
        try:
            when = datetime.fromisoformat(item) if isinstance(item, str) else None
        except ValueError:
            when = None
        if when is not None and when.tzinfo is not None:
            out.append(when)
    return tuple(sorted(out))


def _update_values(change: JobUpdate) -> dict[str, Any]:
    """Column values for ``change``, checked before any write."""
    values: dict[str, Any] = {}
    for field in ("cluster", "flink_job_id", "failed_hash", "file"):
        value = getattr(change, field)
        if not isinstance(value, Keep):
            no_nul(**{field: value})
            if field == "cluster" and not value:
                raise ValueError("cluster must be a non-empty string")
            values[field] = value
    if not isinstance(change.state, Keep):
        values["state"] = JobLifecycle(change.state).value
    if not isinstance(change.savepoint, Keep):
        no_nul(savepoint=change.savepoint)
        values["savepoint"] = change.savepoint
    for prefix, spec in (("reconciled", change.last_reconciled), ("stable", change.last_stable)):
        if not isinstance(spec, Keep):
            if spec is not None:
                no_nul(spec_hash=spec.hash, commit=spec.commit, jar_digest=spec.jar_digest)
            values[f"{prefix}_spec"] = None if spec is None else spec.spec
            values[f"{prefix}_hash"] = None if spec is None else spec.hash
            values[f"{prefix}_commit"] = None if spec is None else spec.commit
            values[f"{prefix}_jar_digest"] = None if spec is None else spec.jar_digest
            values[f"{prefix}_full_digest"] = None if spec is None else spec.full_digest
    if not isinstance(change.attempts, Keep):
        if change.attempts < 0:
            raise ValueError("attempts must be >= 0")
        values["attempts"] = change.attempts
    if not isinstance(change.next_attempt_at, Keep):
        aware(next_attempt_at=change.next_attempt_at)
        values["next_attempt_at"] = change.next_attempt_at
    if not isinstance(change.last_error, Keep):
        values["last_error"] = text(change.last_error)
    for field in ("drift_since", "savepoint_at", "last_run_at"):
        value = getattr(change, field)
        if not isinstance(value, Keep):
            aware(**{field: value})
            values[field] = value
    if not isinstance(change.drift_kind, Keep):
        no_nul(drift_kind=change.drift_kind)
        values["drift_kind"] = change.drift_kind
    if not isinstance(change.drift_detail, Keep):
        values["drift_detail"] = text(change.drift_detail)
    if not isinstance(change.restarts, Keep):
        for when in change.restarts:
            aware(restarts=when)
        values["restarts"] = [w.isoformat() for w in sorted(change.restarts)]
    if not isinstance(change.fingerprint, Keep):
        values["fingerprint"] = None if change.fingerprint is None else dict(change.fingerprint)
    return values


def _select(name: str) -> sa.Select[Any]:
    return sa.select(t.jobs).where(t.jobs.c.name == name)


def locked_job(conn: Connection, name: str) -> Row[Any] | None:
    """The job's row locked for this transaction, or None."""
    return conn.execute(_select(name).with_for_update()).one_or_none()


class JobWrites:
    """Job writes inside one open (already fenced) transaction."""

    def __init__(self, tx: Tx) -> None:
        self._tx = tx

    def _row(self, name: str) -> Row[Any]:
        row = locked_job(self._tx.conn, name)
        if row is None:
            raise UnknownJob(f"no job named {name!r} is recorded")
        return row

    def _set(self, name: str, **values: Any) -> JobRecord:
        conn = self._tx.conn
        conn.execute(sa.update(t.jobs).where(t.jobs.c.name == name).values(updated_at=self._tx.now, **values))
        return job_record(conn.execute(_select(name)).one())

    def create(self, name: str, cluster: str, *, file: str | None = None) -> JobRecord:
        """Record a new job (first life: new uid, CREATED, generation 0); JobConflict if the name is taken."""
        no_nul(name=name, cluster=cluster, file=file)
        if not name or not cluster:
            raise ValueError("a job needs a non-empty name and cluster")
        conn = self._tx.conn
        existing = locked_job(conn, name)
        if existing is not None:
            hint = "; start a new life with new_life" if existing.state == JobLifecycle.DELETED else ""
            raise JobConflict(f"job {name!r} is already recorded (state {existing.state}){hint}")
        now = self._tx.now
        # ON CONFLICT: a create racing this one on PostgreSQL loses cleanly instead of failing the write.
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t.jobs)
        inserted = conn.execute(
            insert.values(
                name=name,
                uid=new_uid(),
                cluster=cluster,
                state=JobLifecycle.CREATED.value,
                file=file,
                generation=0,
                attempts=0,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(t.jobs.c.name)
        )
        if inserted.first() is None:
            raise JobConflict(f"job {name!r} was recorded by a concurrent writer")
        return job_record(conn.execute(_select(name)).one())

    def update(self, name: str, change: JobUpdate) -> JobRecord:
        """Apply ``change`` to a recorded job (UnknownJob if absent)."""
        values = _update_values(change)
        row = self._row(name)
        if row.state == JobLifecycle.DELETED and values.get("state", row.state) != JobLifecycle.DELETED:
            raise JobConflict(f"job {name!r} is deleted; only new_life brings it back")
        return self._set(name, **values)

    def record_failure(self, name: str, *, error: str, next_attempt_at: datetime) -> JobRecord:
        """One more failed attempt: attempts += 1, the error and the backoff remembered."""
        aware(next_attempt_at=next_attempt_at)
        row = self._row(name)
        return self._set(
            name, attempts=int(row.attempts) + 1, last_error=text(error), next_attempt_at=next_attempt_at
        )

    def next_generation(self, name: str, *, by: int = 1) -> JobRecord:
        """Bump the job's generation by ``by`` (it only grows, across lives too); returns the job.

        ``by`` > 1 reserves several at once (e.g. the next job's and its rollback's): the reserved
        generations are ``generation - by + 1`` .. ``generation`` of the returned record.
        """
        if by < 1:
            raise ValueError("generations only grow: by must be >= 1")
        row = self._row(name)
        return self._set(name, generation=int(row.generation) + by)

    def tombstone(self, name: str) -> JobRecord:
        """Mark the job DELETED and clear its Flink job id; its row, specs and history stay. Idempotent."""
        row = self._row(name)
        if row.state == JobLifecycle.DELETED and row.flink_job_id is None:
            return job_record(row)
        return self._set(name, state=JobLifecycle.DELETED.value, flink_job_id=None)

    def new_life(self, name: str, cluster: str, *, file: str | None = None) -> JobRecord:
        """Start a new life of a tombstoned job: new uid, CREATED, on ``cluster``; generation kept.

        The previous life's specs, failed hash, current savepoint and backoff are cleared (a new life
        deploys afresh); its savepoints and operations stay in the history under the old uid.
        """
        no_nul(cluster=cluster, file=file)
        if not cluster:
            raise ValueError("cluster must be a non-empty string")
        row = self._row(name)
        if row.state != JobLifecycle.DELETED:
            raise JobConflict(f"job {name!r} is {row.state}, not deleted: it has no new life to start")
        return self._set(
            name,
            uid=new_uid(),
            cluster=cluster,
            file=file,
            state=JobLifecycle.CREATED.value,
            flink_job_id=None,
            reconciled_spec=None,
            reconciled_hash=None,
            reconciled_commit=None,
            reconciled_jar_digest=None,
            reconciled_full_digest=None,
            stable_spec=None,
            stable_hash=None,
            stable_commit=None,
            stable_jar_digest=None,
            stable_full_digest=None,
            failed_hash=None,
            savepoint=None,
            attempts=0,
            next_attempt_at=None,
            last_error=None,
            drift_kind=None,
            drift_since=None,
            drift_detail=None,
            restarts=None,
            fingerprint=None,
            savepoint_at=None,
            last_run_at=None,
            created_at=self._tx.now,
        )


class Jobs:
    """``Store.jobs``: reads, and each write as its own fenced transaction (``epoch`` of ``lease``)."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def get(self, name: str) -> JobRecord | None:
        if not storable(name):
            return None
        with self._db.read("cannot read job state") as conn:
            row = conn.execute(_select(name)).one_or_none()
        return None if row is None else job_record(row)

    def all(
        self, cluster: str | None = None, *, include_deleted: bool = True, specs: bool = True
    ) -> list[JobRecord]:
        """Every job (on one cluster, if given), by name; tombstones too unless ``include_deleted=False``.

        ``specs=False`` leaves the spec bodies out (``SpecRecord.spec`` is ``{}``; hashes, commits and
        digests are there): for a cycle that only compares them, at a fraction of the memory.
        """
        columns = [c for c in t.jobs.c if specs or c.name not in ("reconciled_spec", "stable_spec")]
        query = sa.select(*columns).order_by(t.jobs.c.name)
        if cluster is not None:
            query = query.where(t.jobs.c.cluster == cluster)
        if not include_deleted:
            query = query.where(t.jobs.c.state != JobLifecycle.DELETED.value)
        with self._db.read("cannot list jobs") as conn:
            return [job_record(r, specs=specs) for r in conn.execute(query).all()]

    def get_many(self, names: Iterable[str]) -> dict[str, JobRecord]:
        """The named jobs that are recorded, whole (specs included), by name."""
        wanted = sorted(set(names))
        out: dict[str, JobRecord] = {}
        with self._db.read("cannot read job state") as conn:
            for start in range(0, len(wanted), 500):
                chunk = wanted[start : start + 500]
                for row in conn.execute(sa.select(t.jobs).where(t.jobs.c.name.in_(chunk))).all():
                    out[row.name] = job_record(row)
        return out

    def create(
        self, name: str, cluster: str, *, epoch: int, lease: str = DEFAULT_LEASE, file: str | None = None
    ) -> JobRecord:
        with self._db.fenced(f"cannot record job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).create(name, cluster, file=file)

    def update(self, name: str, change: JobUpdate, *, epoch: int, lease: str = DEFAULT_LEASE) -> JobRecord:
        _update_values(change)  # bad input is refused before the transaction opens
        with self._db.fenced(f"cannot write state of job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).update(name, change)

    def record_failure(
        self, name: str, *, error: str, next_attempt_at: datetime, epoch: int, lease: str = DEFAULT_LEASE
    ) -> JobRecord:
        aware(next_attempt_at=next_attempt_at)
        with self._db.fenced(f"cannot record failure of job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).record_failure(name, error=error, next_attempt_at=next_attempt_at)

    def next_generation(self, name: str, *, epoch: int, lease: str = DEFAULT_LEASE, by: int = 1) -> JobRecord:
        if by < 1:
            raise ValueError("generations only grow: by must be >= 1")
        with self._db.fenced(f"cannot bump generation of job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).next_generation(name, by=by)

    def tombstone(self, name: str, *, epoch: int, lease: str = DEFAULT_LEASE) -> JobRecord:
        with self._db.fenced(f"cannot tombstone job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).tombstone(name)

    def new_life(
        self, name: str, cluster: str, *, epoch: int, lease: str = DEFAULT_LEASE, file: str | None = None
    ) -> JobRecord:
        with self._db.fenced(f"cannot start a new life of job {name}", epoch=epoch, lease=lease) as tx:
            return JobWrites(tx).new_life(name, cluster, file=file)
