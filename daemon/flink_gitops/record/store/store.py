"""The :class:`Store`: the facade over one engine that the rest of the daemon uses.

Each aggregate is an attribute with its own module, reads and fenced writes:
``store.jobs`` (:mod:`.jobs`), ``store.snapshots`` (:mod:`.snapshots`),
``store.operations`` (:mod:`.operations`), ``store.cycles`` (:mod:`.cycles`),
``store.leases`` (:mod:`.leases`); writes that must land together go through
one unit of work, ``with store.unit(epoch=..., lease=...) as uow`` (:mod:`.unit`),
fenced once. Fencing and transactions are in :mod:`.base`. The audit rows and
keys are still flat methods here (``append_audit``, ``audit_rows`` ...).

Audit appends are serialised against every other appender by the write lock
(SQLite ``BEGIN IMMEDIATE``) or ``SELECT ... FOR UPDATE`` on the single
``audit_head`` row (PostgreSQL). They are the hottest write (every action is
audited at least twice), so :meth:`Store.append_audit` skips SQLAlchemy's
per-call machinery: its three statements are compiled once per engine (see
:class:`_DriverStatement`) and run on a pooled DBAPI connection in a
transaction it opens, commits or rolls back itself. Building and executing
them through Core cost ~0.6 ms of CPU per append; the driver calls ~0.1 ms.
Neighbours: :mod:`.engine` (opening, migrations), :mod:`.tables` (schema),
:mod:`.records` (what is returned), the aggregate modules.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import datetime
from typing import Any, Final, Literal, Self, TypeVar

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine, Row
from sqlalchemy.exc import IntegrityError, SQLAlchemyError
from sqlalchemy.sql.compiler import SQLCompiler

from flink_gitops.clock import Clock, SystemClock
from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database
from flink_gitops.record.store.cycles import Cycles
from flink_gitops.record.store.engine import (
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
    StoreWriteFailed,
)
from flink_gitops.record.store.jobs import Jobs
from flink_gitops.record.store.leases import Leases
from flink_gitops.record.store.operations import Operations
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    ZERO_HASH,
    AuditKeyRow,
    AuditRow,
)
from flink_gitops.record.store.snapshots import Snapshots
from flink_gitops.record.store.unit import UnitOfWork
from flink_gitops.secrets import Secret

_T = TypeVar("_T")
_AUDIT_BATCH: Final = 500
_AUDIT_FIELDS: Final = tuple(c.name for c in t.audit_records.c)  # == AuditRow's fields (contract)


def _b(value: Any) -> bytes:
    return bytes(value)


def _ob(value: Any) -> bytes | None:
    return None if value is None else bytes(value)


def _audit_row(r: Row[Any]) -> AuditRow:
    return AuditRow(
        seq=int(r.seq),
        recorded_at=r.recorded_at,
        key_version=int(r.key_version),
        job_tag=_ob(r.job_tag),
        action_tag=_b(r.action_tag),
        outcome_tag=_ob(r.outcome_tag),
        nonce=_b(r.nonce),
        ciphertext=_b(r.ciphertext),
        prev_hash=_b(r.prev_hash),
        hash=_b(r.hash),
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


class _DriverStatement:
    """A Core statement compiled once for a dialect, then run on a DBAPI cursor.

    The SQL still comes from :mod:`.tables` through SQLAlchemy's compiler (FOR
    UPDATE, paramstyle and casts per dialect) and every value goes through its
    column type's own bind processor (e.g. UtcDateTime's UTC text on SQLite), so
    the stored bytes are exactly what a Core insert would write; only the
    per-call statement building and execution-context machinery is skipped.
    """

    __slots__ = ("_binds", "_positional", "sql")

    def __init__(
        self, statement: sa.ClauseElement, dialect: Dialect, *, column_keys: list[str] | None = None
    ) -> None:
        compiled = statement.compile(dialect=dialect, column_keys=column_keys)
        assert isinstance(compiled, SQLCompiler)
        self.sql: str = compiled.string
        self._positional = compiled.positional
        names = compiled.positiontup if compiled.positional else list(compiled.binds)
        self._binds = tuple(
            (name, compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect))
            for name in names or ()
        )

    def params(self, values: dict[str, Any]) -> tuple[Any, ...] | dict[str, Any]:
        """The DBAPI parameters for ``values`` (every bind must be given)."""
        converted = [(n, values[n] if process is None else process(values[n])) for n, process in self._binds]
        return tuple(v for _, v in converted) if self._positional else dict(converted)


class _AuditStatements:
    """The append's statements for one dialect: lock-and-read the head, insert a row, move the head.

    ``begin`` opens the transaction on SQLite, with the write lock up front as
    every other write does (see :mod:`.engine`); psycopg opens it by itself at
    the first statement, and the head row's FOR UPDATE is the lock there.
    """

    __slots__ = ("begin", "head", "insert", "move_head")

    def __init__(self, dialect: Dialect) -> None:
        self.begin = "BEGIN IMMEDIATE" if dialect.name == "sqlite" else None
        one = t.audit_head.c.id == sa.literal_column("1")
        self.head = _DriverStatement(
            sa.select(t.audit_head.c.seq, t.audit_head.c.hash).where(one).with_for_update(), dialect
        )
        self.insert = _DriverStatement(
            sa.insert(t.audit_records), dialect, column_keys=[c.name for c in t.audit_records.c]
        )
        self.move_head = _DriverStatement(
            sa.update(t.audit_head)
            .where(one)
            .values(
                seq=sa.bindparam("head_seq", type_=t.audit_head.c.seq.type),
                hash=sa.bindparam("head_hash", type_=t.audit_head.c.hash.type),
            ),
            dialect,
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
        self._audit_sql = _AuditStatements(engine.dialect)
        self._dbapi_error: type[Exception] = engine.dialect.loaded_dbapi.Error

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
        what = "cannot append the audit record"
        sql = self._audit_sql
        raw = self._driver(what, self._engine.raw_connection)
        try:
            cursor = self._driver(what, raw.cursor)
            try:
                if sql.begin is not None:
                    self._driver(what, cursor.execute, sql.begin)
                self._driver(what, cursor.execute, sql.head.sql, sql.head.params({}))
                head = self._driver(what, cursor.fetchone)
                if head is None:
                    raise StoreWriteFailed(f"{what}: the audit_head row is missing")
                next_seq, prev_hash = int(head[0]) + 1, bytes(head[1])
                row = build(next_seq, prev_hash)
                _check_audit_row(row, next_seq, prev_hash)
                values = {field: getattr(row, field) for field in _AUDIT_FIELDS}
                self._driver(what, cursor.execute, sql.insert.sql, sql.insert.params(values))
                moved = sql.move_head.params({"head_seq": row.seq, "head_hash": row.hash})
                self._driver(what, cursor.execute, sql.move_head.sql, moved)
                self._driver(what, raw.commit)
            except BaseException:
                try:
                    raw.rollback()
                except Exception:  # noqa: BLE001 - the caller's exception matters more
                    raw.invalidate()  # a connection that cannot roll back must not go back to the pool
                raise
            finally:
                cursor.close()
        finally:
            raw.close()
        return row

    def _driver(self, what: str, call: Callable[..., _T], *args: Any) -> _T:
        """One DBAPI call of the append; a driver or pool error is a failed write (the caller rolls back)."""
        try:
            return call(*args)
        except (self._dbapi_error, SQLAlchemyError) as exc:
            raise StoreWriteFailed(f"{what}: {describe_error(exc)}") from exc

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
    ) -> Iterator[AuditRow]:
        """Rows with seq > after_seq matching every given filter, ascending seq, read in batches.

        ``since`` is inclusive, ``until`` exclusive (recorded_at). ``limit`` caps the rows yielded.
        Each batch of ``batch_size`` rows is its own short read transaction.
        """
        if limit is not None and limit < 0:
            raise ValueError("limit must be >= 0")
        if batch_size < 1:
            raise ValueError("batch_size must be >= 1")
        query = sa.select(t.audit_records)
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
        cursor, remaining = after_seq, limit
        while remaining is None or remaining > 0:
            size = batch_size if remaining is None else min(batch_size, remaining)
            batch_query = (
                query.where(t.audit_records.c.seq > cursor).order_by(t.audit_records.c.seq).limit(size)
            )
            with self._read("cannot read audit records") as conn:
                rows = conn.execute(batch_query).all()
            for r in rows:
                yield _audit_row(r)
            if len(rows) < size:
                return
            cursor = int(rows[-1].seq)
            if remaining is not None:
                remaining -= len(rows)

    def audit_head(self) -> tuple[int, bytes]:
        """(last seq, last hash) as recorded in the audit_head row; (0, 32 zero bytes) when empty."""
        with self._read("cannot read the audit head") as conn:
            row = conn.execute(
                sa.select(t.audit_head.c.seq, t.audit_head.c.hash).where(t.audit_head.c.id == 1)
            ).one()
        return int(row.seq), bytes(row.hash)

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

    def audit_keys(self) -> list[AuditKeyRow]:
        """Every audit key version, ascending."""
        with self._read("cannot read audit keys") as conn:
            rows = conn.execute(sa.select(t.audit_keys).order_by(t.audit_keys.c.version)).all()
        return [
            AuditKeyRow(
                version=int(r.version),
                created_at=r.created_at,
                wrapped_key=bytes(r.wrapped_key),
                params=dict(r.params),
            )
            for r in rows
        ]


__all__ = ["ZERO_HASH", "Store"]
