"""The :class:`Store`: every read and write of the daemon's state, one short transaction each.

Writes that act on jobs (job state, generations, savepoints, the operations
log) are *fenced*: inside the write's transaction the lease row is read (FOR
SHARE on PostgreSQL, under the write lock on SQLite) and the caller's epoch must
be the current one and unexpired, else :class:`FencedOut` and nothing is
written. A leader taking over must lock that row FOR UPDATE, so it waits for
any fenced write in flight and every later write by the old leader fails.

Lease time comes from the injected Clock (the holder's own ``now``), not the
database's: tests drive it with a FakeClock, SQLite has no server clock, and the
holder must judge its own expiry anyway to stop acting in time. Replicas
therefore need clocks in step (NTP) to well under the TTL.

Audit appends are serialised against every other appender by the write lock
(SQLite ``BEGIN IMMEDIATE``) or ``SELECT ... FOR UPDATE`` on the single
``audit_head`` row (PostgreSQL). They are the hottest write (every action is
audited at least twice); its three Core statements are built once per store and
run in the store's ordinary write transaction (bench/bench_audit.py measures it).
Audit rows and keys are read without SQLAlchemy's result processing and
converted per row, so an edited column is reported at its seq, not raised.
Neighbours: :mod:`.engine` (opening, migrations), :mod:`.tables` (schema),
:mod:`.records` (what is returned).
"""

from __future__ import annotations

import contextlib
import enum
import json
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.types import NullType

from flink_gitops.clock import Clock, SystemClock
from flink_gitops.record.store import tables as t
from flink_gitops.record.store.engine import (
    SQLITE_BEGIN,
    create_engine,
    current_revision,
    describe_error,
    migrate,
    parse_url,
    schema_differences,
)
from flink_gitops.record.store.errors import (
    AuditRowRejected,
    DuplicateAuditKey,
    FencedOut,
    LeaseLost,
    OperationAlreadyFinished,
    StoreUnavailable,
    StoreWriteFailed,
    UnknownOperation,
    UnknownSavepoint,
)
from flink_gitops.record.store.records import (
    ZERO_HASH,
    AuditKeyRow,
    AuditRow,
    CycleRecord,
    JobLifecycle,
    JobRecord,
    Lease,
    OperationRecord,
    OperationState,
    SavepointRecord,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    UnreadableAuditKeyRow,
    UnreadableAuditRow,
)
from flink_gitops.secrets import Secret

_LEADER: Final = "leader"
_AUDIT_BATCH: Final = 500
_AUDIT_FIELDS: Final = tuple(c.name for c in t.audit_records.c)  # == AuditRow's fields (contract)


class Keep(enum.Enum):
    """Marker for "leave this field as it is" in :meth:`Store.upsert_job` (None means clear it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP


def _no_nul(**values: str | None) -> None:
    """Refuse NUL in identifiers on every backend alike (PostgreSQL text cannot hold it)."""
    for field, value in values.items():
        if value is not None and "\x00" in value:
            raise ValueError(f"{field} must not contain NUL characters")


def _aware(**values: datetime | None) -> None:
    """Refuse naive datetimes up front (a programming error, not a failed write)."""
    for field, value in values.items():
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{field} must be a timezone-aware datetime")


def _text(value: str | None) -> str | None:
    """Free text (error messages, details) keeps everything but NUL, which becomes U+FFFD."""
    return None if value is None else value.replace("\x00", "\ufffd")


class _Unreadable(Exception):
    """A column of an audit row that does not hold its type (internal to the readers below)."""


def _describe_type(value: object) -> str:
    return "NULL" if value is None else type(value).__name__


def _int_col(name: str, value: object) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise _Unreadable(f"{name} holds {_describe_type(value)}, not an integer")


def _bytes_col(name: str, value: object) -> bytes:
    if isinstance(value, bytes | memoryview | bytearray):
        return bytes(value)
    raise _Unreadable(f"{name} holds {_describe_type(value)}, not bytes")


def _opt_bytes_col(name: str, value: object) -> bytes | None:
    return None if value is None else _bytes_col(name, value)


def _time_col(name: str, value: object) -> datetime:
    """A UtcDateTime column read raw: TIMESTAMPTZ from psycopg, our fixed-width UTC text from SQLite."""
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC)
    if isinstance(value, str):
        try:
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S.%f").replace(tzinfo=UTC)
        except ValueError:
            pass
        with contextlib.suppress(ValueError):
            return datetime.strptime(value, "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)
        raise _Unreadable(f"{name} holds text that is not a stored time")
    raise _Unreadable(f"{name} holds {_describe_type(value)}, not a time")


def _json_col(name: str, value: object) -> dict[str, Any]:
    if isinstance(value, str | bytes):
        try:
            value = json.loads(value)
        except ValueError as exc:
            raise _Unreadable(f"{name} is not valid JSON") from exc
    if isinstance(value, dict):
        return value
    raise _Unreadable(f"{name} holds {_describe_type(value)}, not a JSON object")


# Audit columns are selected without SQLAlchemy's result processing and converted per row, so
# that one edited row is reported at its seq instead of failing the whole read.
_RAW_AUDIT = tuple(sa.type_coerce(c, NullType()).label(c.name) for c in t.audit_records.c)
_RAW_KEYS = tuple(sa.type_coerce(c, NullType()).label(c.name) for c in t.audit_keys.c)


def _audit_row(r: Row[Any, *tuple[Any, ...]]) -> AuditRow | UnreadableAuditRow:
    seq = r.seq if isinstance(r.seq, int) and not isinstance(r.seq, bool) else None
    try:
        return AuditRow(
            seq=_int_col("seq", r.seq),
            recorded_at=_time_col("recorded_at", r.recorded_at),
            key_version=_int_col("key_version", r.key_version),
            job_tag=_opt_bytes_col("job_tag", r.job_tag),
            action_tag=_bytes_col("action_tag", r.action_tag),
            outcome_tag=_opt_bytes_col("outcome_tag", r.outcome_tag),
            nonce=_bytes_col("nonce", r.nonce),
            ciphertext=_bytes_col("ciphertext", r.ciphertext),
            prev_hash=_bytes_col("prev_hash", r.prev_hash),
            hash=_bytes_col("hash", r.hash),
            signature=_opt_bytes_col("signature", r.signature) or b"",
        )
    except _Unreadable as exc:
        return UnreadableAuditRow(seq=seq, problem=str(exc))


def _audit_key_row(r: Row[Any, *tuple[Any, ...]]) -> AuditKeyRow | UnreadableAuditKeyRow:
    version = r.version if isinstance(r.version, int) and not isinstance(r.version, bool) else None
    try:
        return AuditKeyRow(
            version=_int_col("version", r.version),
            created_at=_time_col("created_at", r.created_at),
            wrapped_key=_bytes_col("wrapped_key", r.wrapped_key),
            params=_json_col("params", r.params),
        )
    except _Unreadable as exc:
        return UnreadableAuditKeyRow(version=version, problem=str(exc))


def _spec(spec: Any, hash_: str | None, commit: str | None) -> SpecRecord | None:
    if hash_ is None:
        return None
    return SpecRecord(spec=dict(spec or {}), hash=hash_, commit=commit)


def _job(r: Row[Any]) -> JobRecord:
    return JobRecord(
        cluster=r.cluster,
        name=r.name,
        flink_job_id=r.flink_job_id,
        state=JobLifecycle(r.state),
        last_reconciled=_spec(r.reconciled_spec, r.reconciled_hash, r.reconciled_commit),
        last_stable=_spec(r.stable_spec, r.stable_hash, r.stable_commit),
        generation=int(r.generation),
        attempts=int(r.attempts),
        next_attempt_at=r.next_attempt_at,
        last_error=r.last_error,
        updated_at=r.updated_at,
    )


def _savepoint(r: Row[Any]) -> SavepointRecord:
    return SavepointRecord(
        id=int(r.id),
        cluster=r.cluster,
        name=r.name,
        path=r.path,
        kind=SnapshotKind(r.kind),
        origin=SnapshotOrigin(r.origin),
        flink_job_id=r.flink_job_id,
        created_at=r.created_at,
        disposed=bool(r.disposed),
        disposed_at=r.disposed_at,
    )


def _operation(r: Row[Any]) -> OperationRecord:
    return OperationRecord(
        op_id=r.op_id,
        cluster=r.cluster,
        name=r.name,
        kind=r.kind,
        intent=dict(r.intent),
        state=OperationState(r.state),
        detail=None if r.detail is None else dict(r.detail),
        epoch=int(r.epoch),
        started_at=r.started_at,
        finished_at=r.finished_at,
    )


def _cycle(r: Row[Any]) -> CycleRecord:
    return CycleRecord(
        id=int(r.id),
        started_at=r.started_at,
        finished_at=r.finished_at,
        revision=r.revision,
        counts={str(k): int(v) for k, v in dict(r.counts).items()},
        outcome=r.outcome,
        detail=r.detail,
    )


def _check_audit_row(row: AuditRow, next_seq: int, prev_hash: bytes) -> None:
    if not isinstance(row, AuditRow):
        raise AuditRowRejected(f"audit build returned {type(row).__name__}, not an AuditRow")
    if row.seq != next_seq:
        raise AuditRowRejected(f"audit row has seq {row.seq}, the next seq is {next_seq}")
    if row.prev_hash != prev_hash:
        raise AuditRowRejected(f"audit row {row.seq} does not chain to the current head")
    if row.recorded_at.tzinfo is None:
        raise AuditRowRejected(f"audit row {row.seq} has a naive recorded_at; use tz-aware UTC")
    sizes = {
        "hash": row.hash,
        "action_tag": row.action_tag,
        "job_tag": row.job_tag,
        "outcome_tag": row.outcome_tag,
    }
    for field, value in sizes.items():
        if value is not None and len(value) != 32:
            raise AuditRowRejected(f"audit row {row.seq}: {field} must be 32 bytes, not {len(value)}")
    if len(row.nonce) != 12:
        raise AuditRowRejected(f"audit row {row.seq}: nonce must be 12 bytes, not {len(row.nonce)}")
    if len(row.signature) not in (0, 64):
        raise AuditRowRejected(f"audit row {row.seq}: signature must be 64 bytes, not {len(row.signature)}")


class _AuditStatements:
    """The append's three Core statements, built once per store (SQLAlchemy caches their compiled form).

    The transaction is the store's usual write (``BEGIN IMMEDIATE`` on SQLite, see
    :mod:`.engine`); on PostgreSQL the head row's FOR UPDATE is the appenders' lock.
    """

    __slots__ = ("head", "insert", "move_head")

    def __init__(self) -> None:
        one = t.audit_head.c.id == 1
        self.head = sa.select(t.audit_head.c.seq, t.audit_head.c.hash).where(one).with_for_update()
        self.insert = sa.insert(t.audit_records)
        self.move_head = (
            sa.update(t.audit_head)
            .where(one)
            .values(
                seq=sa.bindparam("head_seq", type_=t.audit_head.c.seq.type),
                hash=sa.bindparam("head_hash", type_=t.audit_head.c.hash.type),
            )
        )


class Store:
    """The state store. Thread-safe; one instance per process, shared by its threads."""

    def __init__(self, engine: Engine, *, clock: Clock | None = None) -> None:
        """Wrap an engine already migrated to head (use :meth:`from_url` or :func:`open_store`)."""
        self._engine = engine
        self._clock: Clock = clock or SystemClock()
        self._audit_sql = _AuditStatements()

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        password: Secret | None = None,
        clock: Clock | None = None,
        busy_timeout_s: float = 30.0,
    ) -> Self:
        """Open (and migrate to head) the database at ``url``; its password, if any, only via ``password``."""
        engine = create_engine(parse_url(url, password), busy_timeout_s=busy_timeout_s)
        try:
            migrate(engine)
        except BaseException:
            engine.dispose()
            raise
        return cls(engine, clock=clock)

    @property
    def backend(self) -> Literal["sqlite", "postgresql"]:
        return "sqlite" if self._engine.dialect.name == "sqlite" else "postgresql"

    def schema_revision(self) -> str | None:
        """The Alembic revision the database is at."""
        with self._read("cannot read the schema revision") as conn:
            return current_revision(conn)

    def schema_differences(self) -> list[str]:
        """Differences between the migrated schema and :mod:`.tables` (a self-check; empty when sound)."""
        with self._read("cannot inspect the schema") as conn:
            return schema_differences(conn, t.metadata)

    def close(self) -> None:
        """Close every pooled connection; the store cannot be used afterwards."""
        self._engine.dispose()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Store(backend={self.backend!r})"

    # -- transactions -------------------------------------------------------------------------

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn:
                conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreWriteFailed(f"{what}: {describe_error(exc)}") from exc

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        try:
            with self._engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"{what}: {describe_error(exc)}") from exc

    def _fence(self, conn: Connection, epoch: int) -> None:
        row = conn.execute(
            sa.select(t.lease.c.holder, t.lease.c.epoch, t.lease.c.expires_at)
            .where(t.lease.c.name == _LEADER)
            .with_for_update(read=True)
        ).one()
        if row.epoch != epoch:
            raise FencedOut(f"write with lease epoch {epoch} refused: the current epoch is {row.epoch}")
        if row.holder is None or row.expires_at is None or row.expires_at <= self._clock.now():
            raise FencedOut(f"write with lease epoch {epoch} refused: the lease has expired or was released")

    # -- audit rows (the contract with flink_gitops.record.audit) -----------------------------

    def append_audit(self, build: Callable[[int, bytes], AuditRow]) -> AuditRow:
        """Append one audit row, serialised against every other appender (threads and processes).

        Reads the head ((0, 32 zero bytes) when empty), calls ``build(next_seq, prev_hash)``,
        checks the row's seq and prev_hash, inserts it and moves the head, in one transaction.
        If ``build`` raises, nothing is written and its exception propagates unchanged.
        ``build`` runs under the write lock: keep it short and never write to the store from it.
        """
        sql = self._audit_sql
        with self._write("cannot append the audit record") as conn:
            head = conn.execute(sql.head).one_or_none()
            if head is None:
                raise StoreWriteFailed("cannot append the audit record: the audit_head row is missing")
            next_seq, prev_hash = int(head[0]) + 1, bytes(head[1])
            row = build(next_seq, prev_hash)
            _check_audit_row(row, next_seq, prev_hash)
            conn.execute(sql.insert, {field: getattr(row, field) for field in _AUDIT_FIELDS})
            conn.execute(sql.move_head, {"head_seq": row.seq, "head_hash": row.hash})
        return row

    def audit_rows(
        self,
        *,
        after_seq: int = 0,
        job_tag: bytes | None = None,
        action_tag: bytes | None = None,
        outcome_tag: bytes | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
        batch_size: int = _AUDIT_BATCH,
    ) -> Iterator[AuditRow | UnreadableAuditRow]:
        """Rows with seq > after_seq matching every given filter, ascending seq, read in batches.

        ``since`` is inclusive, ``until`` exclusive (recorded_at). ``limit`` caps the rows yielded.
        Each batch of ``batch_size`` rows is its own short read transaction. A row whose columns
        do not hold their types comes back as an :class:`UnreadableAuditRow` in its place.
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        query = sa.select(*_RAW_AUDIT)
        if job_tag is not None:
            query = query.where(t.audit_records.c.job_tag == job_tag)
        if action_tag is not None:
            query = query.where(t.audit_records.c.action_tag == action_tag)
        if outcome_tag is not None:
            query = query.where(t.audit_records.c.outcome_tag == outcome_tag)
        if since is not None:
            query = query.where(t.audit_records.c.recorded_at >= since)
        if until is not None:
            query = query.where(t.audit_records.c.recorded_at < until)
        # Keyset pagination on the raw seq value: on SQLite an edited row may hold text there,
        # which sorts after every integer, so the walk still ends.
        cursor: object = after_seq
        remaining = limit
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            after = sa.bindparam("after_seq", cursor, type_=NullType())
            seq = t.audit_records.c.seq
            batch_query = query.where(seq > after).order_by(seq).limit(size)
            with self._read("cannot read audit records") as conn:
                rows = conn.execute(batch_query).all()
            for r in rows:
                yield _audit_row(r)
            if len(rows) < size:
                return
            cursor = rows[-1].seq
            if remaining is not None:
                remaining -= len(rows)

    def audit_head(self) -> tuple[int, bytes]:
        """(last seq, last hash) as recorded in the audit_head row; (0, 32 zero bytes) when empty.

        A missing or edited row (not an integer and bytes) reads as (-1, b""), which fits no trail.
        """
        with self._read("cannot read the audit head") as conn:
            row = conn.execute(
                sa.select(*(sa.type_coerce(c, NullType()).label(c.name) for c in t.audit_head.c)).where(
                    t.audit_head.c.id == 1
                )
            ).one_or_none()
        try:
            if row is None:
                raise _Unreadable("missing")
            return _int_col("seq", row.seq), _bytes_col("hash", row.hash)
        except _Unreadable:
            return -1, b""

    def audit_count(self) -> int:
        with self._read("cannot count audit records") as conn:
            return int(conn.execute(sa.select(sa.func.count()).select_from(t.audit_records)).scalar_one())

    def put_audit_key(self, row: AuditKeyRow) -> None:
        """Insert a wrapped audit key version; an existing version raises DuplicateAuditKey."""
        try:
            with self._write(f"cannot store audit key version {row.version}") as conn:
                conn.execute(
                    sa.insert(t.audit_keys).values(
                        version=row.version,
                        created_at=row.created_at,
                        wrapped_key=row.wrapped_key,
                        params=row.params,
                    )
                )
        except StoreWriteFailed as exc:
            if isinstance(exc.__cause__, IntegrityError):
                raise DuplicateAuditKey(f"audit key version {row.version} already exists") from exc.__cause__
            raise

    def audit_keys(self) -> list[AuditKeyRow | UnreadableAuditKeyRow]:
        """Every audit key version, ascending (a row with a mistyped column: UnreadableAuditKeyRow)."""
        with self._read("cannot read audit keys") as conn:
            rows = conn.execute(sa.select(*_RAW_KEYS).order_by(t.audit_keys.c.version)).all()
        return [_audit_key_row(r) for r in rows]

    # -- jobs ---------------------------------------------------------------------------------

    def get_job(self, cluster: str, name: str) -> JobRecord | None:
        with self._read("cannot read job state") as conn:
            row = conn.execute(
                sa.select(t.jobs).where(t.jobs.c.cluster == cluster, t.jobs.c.name == name)
            ).one_or_none()
        return None if row is None else _job(row)

    def list_jobs(self, cluster: str | None = None) -> list[JobRecord]:
        """Every job (of one cluster, if given), ordered by cluster then name."""
        query = sa.select(t.jobs).order_by(t.jobs.c.cluster, t.jobs.c.name)
        if cluster is not None:
            query = query.where(t.jobs.c.cluster == cluster)
        with self._read("cannot list jobs") as conn:
            return [_job(r) for r in conn.execute(query).all()]

    def _locked_job(self, conn: Connection, cluster: str, name: str) -> Row[Any]:
        """The job's row, locked for this transaction; created (state CREATED) if absent."""
        where = (t.jobs.c.cluster == cluster, t.jobs.c.name == name)
        row = conn.execute(sa.select(t.jobs).where(*where).with_for_update()).one_or_none()
        if row is None:
            conn.execute(
                sa.insert(t.jobs).values(
                    cluster=cluster,
                    name=name,
                    state=JobLifecycle.CREATED.value,
                    generation=0,
                    attempts=0,
                    updated_at=self._clock.now(),
                )
            )
            row = conn.execute(sa.select(t.jobs).where(*where)).one()
        return row

    def upsert_job(
        self,
        cluster: str,
        name: str,
        *,
        epoch: int,
        state: JobLifecycle | Keep = KEEP,
        flink_job_id: str | Keep | None = KEEP,
        last_reconciled: SpecRecord | Keep | None = KEEP,
        last_stable: SpecRecord | Keep | None = KEEP,
        attempts: int | Keep = KEEP,
        next_attempt_at: datetime | Keep | None = KEEP,
        last_error: str | Keep | None = KEEP,
    ) -> JobRecord:
        """Create or update a job (fenced); fields left at KEEP are unchanged, None clears a field."""
        _no_nul(cluster=cluster, name=name)
        values: dict[str, Any] = {"updated_at": self._clock.now()}
        if not isinstance(state, Keep):
            values["state"] = JobLifecycle(state).value
        if not isinstance(flink_job_id, Keep):
            _no_nul(flink_job_id=flink_job_id)
            values["flink_job_id"] = flink_job_id
        for prefix, spec in (("reconciled", last_reconciled), ("stable", last_stable)):
            if not isinstance(spec, Keep):
                if spec is not None:
                    _no_nul(spec_hash=spec.hash, commit=spec.commit)
                values[f"{prefix}_spec"] = None if spec is None else spec.spec
                values[f"{prefix}_hash"] = None if spec is None else spec.hash
                values[f"{prefix}_commit"] = None if spec is None else spec.commit
        if not isinstance(attempts, Keep):
            if attempts < 0:
                raise ValueError("attempts must be >= 0")
            values["attempts"] = attempts
        if not isinstance(next_attempt_at, Keep):
            _aware(next_attempt_at=next_attempt_at)
            values["next_attempt_at"] = next_attempt_at
        if not isinstance(last_error, Keep):
            values["last_error"] = _text(last_error)
        with self._write(f"cannot write state of job {cluster}/{name}") as conn:
            self._fence(conn, epoch)
            self._locked_job(conn, cluster, name)
            where = (t.jobs.c.cluster == cluster, t.jobs.c.name == name)
            conn.execute(sa.update(t.jobs).where(*where).values(**values))
            return _job(conn.execute(sa.select(t.jobs).where(*where)).one())

    def record_failure(
        self, cluster: str, name: str, *, error: str, next_attempt_at: datetime, epoch: int
    ) -> JobRecord:
        """Count one more failed attempt (fenced): attempts += 1, remember the error and the backoff."""
        _no_nul(cluster=cluster, name=name)
        _aware(next_attempt_at=next_attempt_at)
        with self._write(f"cannot record failure of job {cluster}/{name}") as conn:
            self._fence(conn, epoch)
            row = self._locked_job(conn, cluster, name)
            where = (t.jobs.c.cluster == cluster, t.jobs.c.name == name)
            conn.execute(
                sa.update(t.jobs)
                .where(*where)
                .values(
                    attempts=int(row.attempts) + 1,
                    last_error=_text(error),
                    next_attempt_at=next_attempt_at,
                    updated_at=self._clock.now(),
                )
            )
            return _job(conn.execute(sa.select(t.jobs).where(*where)).one())

    def next_generation(self, cluster: str, name: str, *, epoch: int) -> int:
        """Increment and return the job's generation (fenced); 1 for a new job.

        Never repeats a value while the job's row exists; :meth:`delete_job` forgets it, so a job
        deleted and added again starts at 1 again (a job id derived from it must add something else).
        """
        _no_nul(cluster=cluster, name=name)
        with self._write(f"cannot bump generation of job {cluster}/{name}") as conn:
            self._fence(conn, epoch)
            row = self._locked_job(conn, cluster, name)
            generation = int(row.generation) + 1
            conn.execute(
                sa.update(t.jobs)
                .where(t.jobs.c.cluster == cluster, t.jobs.c.name == name)
                .values(generation=generation, updated_at=self._clock.now())
            )
        return generation

    def delete_job(self, cluster: str, name: str, *, epoch: int) -> bool:
        """Forget a job's state, generation included (fenced); its savepoint history and operations stay.

        True if it existed.
        """
        with self._write(f"cannot delete job {cluster}/{name}") as conn:
            self._fence(conn, epoch)
            result = conn.execute(sa.delete(t.jobs).where(t.jobs.c.cluster == cluster, t.jobs.c.name == name))
            return bool(result.rowcount)

    # -- savepoints and checkpoints -----------------------------------------------------------

    def record_savepoint(
        self,
        cluster: str,
        name: str,
        path: str,
        *,
        kind: SnapshotKind,
        origin: SnapshotOrigin,
        epoch: int,
        flink_job_id: str | None = None,
        created_at: datetime | None = None,
    ) -> SavepointRecord:
        """Remember a completed savepoint/checkpoint (fenced). Recording the same path again returns
        the existing record unchanged, so a retried step after a crash is harmless."""
        _no_nul(cluster=cluster, name=name, path=path, flink_job_id=flink_job_id)
        _aware(created_at=created_at)
        where = (t.savepoints.c.cluster == cluster, t.savepoints.c.name == name, t.savepoints.c.path == path)
        with self._write(f"cannot record savepoint of job {cluster}/{name}") as conn:
            self._fence(conn, epoch)
            existing = conn.execute(sa.select(t.savepoints).where(*where)).one_or_none()
            if existing is not None:
                return _savepoint(existing)
            conn.execute(
                sa.insert(t.savepoints).values(
                    cluster=cluster,
                    name=name,
                    path=path,
                    kind=SnapshotKind(kind).value,
                    origin=SnapshotOrigin(origin).value,
                    flink_job_id=flink_job_id,
                    created_at=created_at or self._clock.now(),
                    disposed=False,
                )
            )
            return _savepoint(conn.execute(sa.select(t.savepoints).where(*where)).one())

    def savepoints(
        self,
        cluster: str,
        name: str,
        *,
        kind: SnapshotKind | None = None,
        include_disposed: bool = False,
        limit: int | None = None,
    ) -> list[SavepointRecord]:
        """A job's savepoints/checkpoints, newest first (created_at, then id)."""
        query = sa.select(t.savepoints).where(t.savepoints.c.cluster == cluster, t.savepoints.c.name == name)
        if kind is not None:
            query = query.where(t.savepoints.c.kind == SnapshotKind(kind).value)
        if not include_disposed:
            query = query.where(t.savepoints.c.disposed == sa.false())
        query = query.order_by(t.savepoints.c.created_at.desc(), t.savepoints.c.id.desc()).limit(limit)
        with self._read("cannot read savepoints") as conn:
            return [_savepoint(r) for r in conn.execute(query).all()]

    def latest_savepoint(
        self, cluster: str, name: str, *, kind: SnapshotKind | None = None
    ) -> SavepointRecord | None:
        """The newest savepoint/checkpoint not disposed, or None."""
        found = self.savepoints(cluster, name, kind=kind, limit=1)
        return found[0] if found else None

    def mark_savepoint_disposed(self, savepoint_id: int, *, epoch: int) -> SavepointRecord:
        """Mark a savepoint/checkpoint as disposed (fenced); idempotent."""
        where = t.savepoints.c.id == savepoint_id
        with self._write(f"cannot mark savepoint {savepoint_id} disposed") as conn:
            self._fence(conn, epoch)
            row = conn.execute(sa.select(t.savepoints).where(where).with_for_update()).one_or_none()
            if row is None:
                raise UnknownSavepoint(f"no savepoint record with id {savepoint_id}")
            if not row.disposed:
                conn.execute(
                    sa.update(t.savepoints).where(where).values(disposed=True, disposed_at=self._clock.now())
                )
            return _savepoint(conn.execute(sa.select(t.savepoints).where(where)).one())

    # -- operations log -----------------------------------------------------------------------

    def begin_operation(
        self,
        cluster: str | None,
        name: str | None,
        kind: str,
        intent: dict[str, Any],
        *,
        epoch: int,
        op_id: str | None = None,
    ) -> str:
        """Write an intent BEFORE its side effect (fenced); returns the op id (a new UUID unless given)."""
        op_id = op_id or uuid.uuid4().hex
        _no_nul(cluster=cluster, name=name, kind=kind, op_id=op_id)
        with self._write(f"cannot record intent {kind}") as conn:
            self._fence(conn, epoch)
            conn.execute(
                sa.insert(t.operations).values(
                    op_id=op_id,
                    cluster=cluster,
                    name=name,
                    kind=kind,
                    intent=intent,
                    state=OperationState.STARTED.value,
                    epoch=epoch,
                    started_at=self._clock.now(),
                )
            )
        return op_id

    def finish_operation(
        self, op_id: str, outcome: OperationState, detail: dict[str, Any] | None = None, *, epoch: int
    ) -> OperationRecord:
        """Write an operation's outcome once (fenced): succeeded, failed or abandoned."""
        outcome = OperationState(outcome)
        if outcome is OperationState.STARTED:
            raise ValueError("an outcome is succeeded, failed or abandoned")
        where = t.operations.c.op_id == op_id
        with self._write(f"cannot record outcome of operation {op_id}") as conn:
            self._fence(conn, epoch)
            row = conn.execute(sa.select(t.operations).where(where).with_for_update()).one_or_none()
            if row is None:
                raise UnknownOperation(f"no operation with id {op_id}")
            if row.state != OperationState.STARTED.value:
                raise OperationAlreadyFinished(f"operation {op_id} already {row.state}")
            conn.execute(
                sa.update(t.operations)
                .where(where)
                .values(state=outcome.value, detail=detail, finished_at=self._clock.now())
            )
            return _operation(conn.execute(sa.select(t.operations).where(where)).one())

    def get_operation(self, op_id: str) -> OperationRecord | None:
        with self._read("cannot read operation") as conn:
            row = conn.execute(sa.select(t.operations).where(t.operations.c.op_id == op_id)).one_or_none()
        return None if row is None else _operation(row)

    def open_operations(self, cluster: str | None = None) -> list[OperationRecord]:
        """Intents without an outcome (crash recovery), oldest first."""
        query = sa.select(t.operations).where(t.operations.c.state == OperationState.STARTED.value)
        if cluster is not None:
            query = query.where(t.operations.c.cluster == cluster)
        query = query.order_by(t.operations.c.started_at, t.operations.c.op_id)
        with self._read("cannot read open operations") as conn:
            return [_operation(r) for r in conn.execute(query).all()]

    def operations(
        self, cluster: str | None = None, name: str | None = None, *, limit: int = 100
    ) -> list[OperationRecord]:
        """Operations (of a cluster / job, if given), newest first."""
        query = sa.select(t.operations)
        if cluster is not None:
            query = query.where(t.operations.c.cluster == cluster)
        if name is not None:
            query = query.where(t.operations.c.name == name)
        query = query.order_by(t.operations.c.started_at.desc(), t.operations.c.op_id.desc()).limit(limit)
        with self._read("cannot read operations") as conn:
            return [_operation(r) for r in conn.execute(query).all()]

    # -- reconcile cycles ---------------------------------------------------------------------

    def record_cycle(
        self,
        *,
        started_at: datetime,
        finished_at: datetime,
        revision: str | None,
        counts: dict[str, int],
        outcome: str,
        detail: str | None = None,
    ) -> CycleRecord:
        """Store one reconcile cycle's summary (not fenced: it describes, it does not act)."""
        _no_nul(revision=revision, outcome=outcome)
        _aware(started_at=started_at, finished_at=finished_at)
        with self._write("cannot record the cycle summary") as conn:
            result = conn.execute(
                sa.insert(t.cycles)
                .values(
                    started_at=started_at,
                    finished_at=finished_at,
                    revision=revision,
                    counts=dict(counts),
                    outcome=outcome,
                    detail=_text(detail),
                )
                .returning(t.cycles.c.id)
            )
            cycle_id = int(result.scalar_one())
            return _cycle(conn.execute(sa.select(t.cycles).where(t.cycles.c.id == cycle_id)).one())

    def cycles(self, limit: int = 20) -> list[CycleRecord]:
        """The newest cycle summaries, newest first."""
        query = sa.select(t.cycles).order_by(t.cycles.c.started_at.desc(), t.cycles.c.id.desc()).limit(limit)
        with self._read("cannot read cycle summaries") as conn:
            return [_cycle(r) for r in conn.execute(query).all()]

    # -- leader lease -------------------------------------------------------------------------

    def _lease_row(self, conn: Connection) -> Row[Any]:
        return conn.execute(sa.select(t.lease).where(t.lease.c.name == _LEADER).with_for_update()).one()

    def acquire_lease(self, holder: str, ttl: float) -> Lease | None:
        """Take the lease for ``ttl`` seconds if it is free, expired or already ours; else None.

        The epoch increments whenever the holder changes (including after a release). ``holder``
        must be unique per running process (e.g. ``f"{instance_name}:{pid}:{uuid4}"``): two
        processes using the same name would both believe they hold the lease.
        """
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0 seconds")
        _no_nul(holder=holder)
        now = self._clock.now()
        with self._write("cannot acquire the lease") as conn:
            row = self._lease_row(conn)
            free = row.holder is None or row.expires_at is None or row.expires_at <= now
            if row.holder == holder and not free:
                epoch, acquired_at = int(row.epoch), row.acquired_at
            elif free:
                same = row.holder == holder
                epoch = int(row.epoch) if same else int(row.epoch) + 1
                acquired_at = row.acquired_at if same else now
            else:
                return None
            expires_at = now + timedelta(seconds=ttl)
            conn.execute(
                sa.update(t.lease)
                .where(t.lease.c.name == _LEADER)
                .values(holder=holder, epoch=epoch, acquired_at=acquired_at, expires_at=expires_at)
            )
        return Lease(holder=holder, epoch=epoch, acquired_at=acquired_at, expires_at=expires_at, ttl_s=ttl)

    def renew_lease(self, lease: Lease, ttl: float | None = None) -> Lease:
        """Extend a held lease by ``ttl`` (default: its own ttl_s) seconds from now.

        Raises LeaseLost if it expired or changed hands.
        """
        ttl = lease.ttl_s if ttl is None else ttl
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0 seconds")
        now = self._clock.now()
        with self._write("cannot renew the lease") as conn:
            row = self._lease_row(conn)
            if row.holder != lease.holder or int(row.epoch) != lease.epoch:
                raise LeaseLost(
                    f"lease epoch {lease.epoch} of {lease.holder} was taken over (now {row.epoch})"
                )
            if row.expires_at is None or row.expires_at <= now:
                raise LeaseLost(f"lease epoch {lease.epoch} of {lease.holder} expired")
            expires_at = now + timedelta(seconds=ttl)
            conn.execute(sa.update(t.lease).where(t.lease.c.name == _LEADER).values(expires_at=expires_at))
        return Lease(
            holder=lease.holder,
            epoch=lease.epoch,
            acquired_at=lease.acquired_at,
            expires_at=expires_at,
            ttl_s=ttl,
        )

    def release_lease(self, lease: Lease) -> bool:
        """Give the lease up if still held by ``lease``; False if it was already lost."""
        with self._write("cannot release the lease") as conn:
            row = self._lease_row(conn)
            if row.holder != lease.holder or int(row.epoch) != lease.epoch:
                return False
            conn.execute(
                sa.update(t.lease)
                .where(t.lease.c.name == _LEADER)
                .values(holder=None, expires_at=self._clock.now())
            )
        return True

    def current_lease(self) -> Lease | None:
        """The lease as recorded, if someone holds it and it has not expired.

        Its ``ttl_s`` is expires_at - acquired_at (the ttl asked for is not stored), so after a renewal
        it is longer than the holder's ttl: pass the holder's own Lease to :meth:`renew_lease`.
        """
        with self._read("cannot read the lease") as conn:
            row = conn.execute(sa.select(t.lease).where(t.lease.c.name == _LEADER)).one()
        if row.holder is None or row.expires_at is None or row.expires_at <= self._clock.now():
            return None
        ttl = (row.expires_at - row.acquired_at).total_seconds() if row.acquired_at else 0.0
        return Lease(
            holder=row.holder,
            epoch=int(row.epoch),
            acquired_at=row.acquired_at,
            expires_at=row.expires_at,
            ttl_s=ttl,
        )


__all__ = ["KEEP", "ZERO_HASH", "Keep", "Store"]
