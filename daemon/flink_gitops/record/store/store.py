"""The :class:`Store`: the facade over one engine that the rest of the daemon uses.

Each aggregate is an attribute with its own module, reads and fenced writes:
``store.jobs`` (:mod:`.jobs`), ``store.snapshots`` (:mod:`.snapshots`),
``store.operations`` (:mod:`.operations`), ``store.cycles`` (:mod:`.cycles`),
``store.leases`` (:mod:`.leases`), ``store.artifacts`` (:mod:`.artifacts`),
``store.pauses`` (:mod:`.pauses`);
writes that must land together go through
one unit of work, ``with store.unit(epoch=..., lease=...) as uow`` (:mod:`.unit`),
fenced once. Fencing and transactions are in :mod:`.base`. The audit rows and
keys are still flat methods here (``append_audit``, ``audit_rows`` ...).

Audit appends are serialised against every other appender by the write lock
(SQLite ``BEGIN IMMEDIATE``) or ``SELECT ... FOR UPDATE`` on the single
``audit_head`` row (PostgreSQL). They are the hottest write (every action is
audited at least twice); its three Core statements are built once per store and
run in the store's ordinary write transaction (bench/bench_audit.py measures it).
Audit rows and keys are read without SQLAlchemy's result processing and
converted per row, so an edited column is reported at its seq, not raised.
Neighbours: :mod:`.engine` (opening, migrations), :mod:`.tables` (schema),
:mod:`.records` (what is returned), the aggregate modules.
"""

from __future__ import annotations

import contextlib
import json
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any, Final, Literal, Self

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine, Row
from sqlalchemy.exc import IntegrityError
from sqlalchemy.types import NullType

from flink_gitops.clock import Clock, SystemClock
from flink_gitops.record.store import tables as t
from flink_gitops.record.store.artifacts import Artifacts
from flink_gitops.record.store.base import Database
from flink_gitops.record.store.cycles import Cycles
from flink_gitops.record.store.engine import (
    create_engine,
    current_revision,
    migrate,
    parse_url,
    schema_differences,
)
from flink_gitops.record.store.errors import (
    AuditRowRejected,
    DuplicateAuditKey,
    StoreWriteFailed,
)
from flink_gitops.record.store.jobs import Jobs
from flink_gitops.record.store.leases import Leases
from flink_gitops.record.store.operations import Operations
from flink_gitops.record.store.pauses import Pauses
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    ZERO_HASH,
    AuditKeyRow,
    AuditRow,
    UnreadableAuditKeyRow,
    UnreadableAuditRow,
)
from flink_gitops.record.store.snapshots import Snapshots
from flink_gitops.record.store.unit import UnitOfWork
from flink_gitops.secrets import Secret

_AUDIT_BATCH: Final = 500
_AUDIT_FIELDS: Final = tuple(c.name for c in t.audit_records.c)  # == AuditRow's fields (contract)


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
        self._db = Database(engine, self._clock)
        self.jobs = Jobs(self._db)
        self.snapshots = Snapshots(self._db)
        self.operations = Operations(self._db)
        self.cycles = Cycles(self._db)
        self.leases = Leases(self._db)
        self.artifacts = Artifacts(self._db)
        self.pauses = Pauses(self._db)
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
    def unit(
        self, *, epoch: int, lease: str = DEFAULT_LEASE, also: Mapping[str, int] | None = None
    ) -> Iterator[UnitOfWork]:
        """One write transaction for writes that must land together, fenced once by ``lease``'s
        ``epoch`` (and by each ``also`` lease name -> epoch: a move fences both clusters); commits on
        leaving the block, rolls everything back on an exception."""
        with self._db.fenced("cannot write the unit of work", epoch=epoch, lease=lease, also=also) as tx:
            yield UnitOfWork(tx, epoch)

    @contextmanager
    def _write(self, what: str) -> Iterator[Connection]:
        with self._db.write(what) as conn:
            yield conn

    @contextmanager
    def _read(self, what: str) -> Iterator[Connection]:
        with self._db.read(what) as conn:
            yield conn

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


__all__ = ["ZERO_HASH", "Store"]
