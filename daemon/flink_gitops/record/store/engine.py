"""Opening the database: URL checks, connection settings, and the Alembic migration to head.

SQLite (the default, one file under the state directory):
- ``journal_mode=WAL``: readers never block the writer, and a crash at any
  point leaves either the old or the new transaction, never half of one.
- ``synchronous=FULL``: in WAL mode NORMAL survives a process crash but may lose
  the last commits on power loss. The operations log writes an intent *before*
  each side effect and the audit trail fails closed, so a commit we acted on
  must survive power loss too: FULL costs one fsync per commit, which at a few
  writes per reconcile cycle is nothing.
- ``busy_timeout``: a writer waits for the lock instead of failing at once.
- every write transaction starts with ``BEGIN IMMEDIATE`` so it takes the write
  lock up front (a deferred transaction upgraded to a writer in WAL mode gets
  SQLITE_BUSY with no wait); reads use plain deferred ``BEGIN``.
- ``foreign_keys=ON`` for any future constraints.

PostgreSQL (several replicas): ``postgresql+psycopg://user@host:port/db`` with
the password given separately (a :class:`~flink_gitops.secrets.Secret` read from
a file or systemd credential). A URL that carries a password is refused, and
the error never prints it.

Migrations live in ``migrations/`` inside this package and run programmatically
on open, under the write lock (SQLite) or an advisory transaction lock
(PostgreSQL), so two daemons starting together migrate once. A database stamped
with a revision this code does not know raises :class:`SchemaTooNew`.
Neighbours: :mod:`.base` and :mod:`.store` (use the engine), :mod:`.tables` (queries).
"""

from __future__ import annotations

import fcntl
import os
import sqlite3
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import URL, Connection, Engine, make_url
from sqlalchemy.exc import ArgumentError, SQLAlchemyError

from flink_gitops.record.store.errors import InsecureStoreUrl, SchemaTooNew, StoreUnavailable
from flink_gitops.secrets import Secret

MIGRATIONS_DIR = Path(__file__).parent / "migrations"
#: execution option read by the SQLite ``begin`` hook: "IMMEDIATE" for writes, "DEFERRED" for reads.
SQLITE_BEGIN = "flink_gitops_sqlite_begin"
#: arbitrary constant key for pg_advisory_xact_lock while migrating.
_PG_MIGRATION_LOCK = 0x666C_696E_6B67
_SQLITE_DRIVERS = {"sqlite", "sqlite+pysqlite"}
_PG_DRIVERS = {"postgresql", "postgresql+psycopg"}


def parse_url(url: str, password: Secret | None) -> URL:
    """Check a store URL and return it with the password filled in (the URL itself must not carry one)."""
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError):
        # ArgumentError repeats the URL, which might hold a password: say less, chain nothing.
        raise InsecureStoreUrl(
            "store URL is not a valid database URL (sqlite:///path or postgresql+psycopg://user@host/db)"
        ) from None
    if parsed.password is not None or any(key.lower() == "password" for key in parsed.query):
        raise InsecureStoreUrl(
            f"store URL for {parsed.drivername} host {parsed.host or 'localhost'} contains a password; "
            "remove it and set store.password to a file or systemd credential"
        )
    if parsed.drivername in _SQLITE_DRIVERS:
        if password is not None:
            raise InsecureStoreUrl("store.password is set but the store is SQLite, which takes no password")
        return parsed.set(drivername="sqlite+pysqlite")
    if parsed.drivername in _PG_DRIVERS:
        parsed = parsed.set(drivername="postgresql+psycopg")
        if password is not None:
            parsed = parsed.set(password=password.reveal_text())
        return parsed
    raise InsecureStoreUrl(
        f"store URL driver {parsed.drivername!r} is not supported; use sqlite:///path or postgresql+psycopg://..."
    )


def _sqlite_hooks(engine: Engine, busy_timeout_s: float) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, connection_record: Any) -> None:
        # Our own BEGIN below; the driver must not open transactions by itself.
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(busy_timeout_s * 1000)}")
            # _ensure_wal made the file WAL already; this only repairs a file switched back by hand.
            if cursor.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                cursor.execute("PRAGMA journal_mode = WAL")
            cursor.execute("PRAGMA synchronous = FULL")
            cursor.execute("PRAGMA foreign_keys = ON")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        mode = conn.get_execution_options().get(SQLITE_BEGIN, "DEFERRED")
        conn.exec_driver_sql(f"BEGIN {'IMMEDIATE' if mode == 'IMMEDIATE' else 'DEFERRED'}")


def _ensure_wal(database: str, busy_timeout_s: float) -> None:
    """Switch the database file to WAL once, serialised by a lock on its directory.

    Converting the journal mode takes an exclusive lock, and SQLite answers a
    second opener racing the conversion with SQLITE_BUSY at once (its busy
    handler would deadlock), so concurrent first opens must not race it.
    """
    directory = os.open(Path(database).parent, os.O_RDONLY)
    try:
        fcntl.flock(directory, fcntl.LOCK_EX)
        conn = sqlite3.connect(database, timeout=busy_timeout_s, isolation_level=None)
        try:
            if conn.execute("PRAGMA journal_mode").fetchone()[0] != "wal":
                conn.execute("PRAGMA journal_mode = WAL")
        finally:
            conn.close()
    finally:
        os.close(directory)  # releases the lock


def create_engine(url: URL, *, busy_timeout_s: float = 30.0) -> Engine:
    """An engine with the settings described in the module docstring."""
    if url.get_backend_name() == "sqlite":
        database = url.database or ""
        if database in {"", ":memory:"}:
            raise InsecureStoreUrl("an in-memory SQLite store would lose all state; give a file path")
        try:
            Path(database).parent.mkdir(parents=True, exist_ok=True)
            _ensure_wal(database, busy_timeout_s)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open the SQLite store {database}: {exc.strerror}") from exc
        except sqlite3.Error as exc:
            raise StoreUnavailable(f"cannot open the SQLite store {database}: {exc}") from exc
        engine = sa.create_engine(
            url,
            connect_args={"timeout": busy_timeout_s, "check_same_thread": False},
            hide_parameters=True,
        )
        _sqlite_hooks(engine, busy_timeout_s)
        return engine
    return sa.create_engine(
        url,
        pool_pre_ping=True,
        connect_args={"connect_timeout": max(1, int(busy_timeout_s))},
        hide_parameters=True,
    )


#: the newest migration's revision: a store already there opens without loading Alembic (~0.2 s of
#: every CLI start). A test checks it against the migrations directory.
HEAD_REVISION = "0006"


def _alembic_config() -> Any:
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    return cfg


def head_revision() -> str:
    """The newest schema revision the migrations directory holds."""
    from alembic.script import ScriptDirectory

    head = ScriptDirectory.from_config(_alembic_config()).get_current_head()
    assert head is not None
    return str(head)


def current_revision(conn: Connection) -> str | None:
    from alembic.runtime.migration import MigrationContext

    rev = MigrationContext.configure(conn).get_current_revision()
    return None if rev is None else str(rev)


def schema_differences(conn: Connection, metadata: sa.MetaData) -> list[str]:
    """How the live schema differs from ``metadata`` (empty when the migrations and tables.py agree)."""
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    context = MigrationContext.configure(conn, opts={"compare_type": True})
    return [repr(diff) for diff in compare_metadata(context, metadata)]


def _at_head(engine: Engine) -> bool:
    """True when the database records exactly HEAD_REVISION (one plain read, no Alembic)."""
    try:
        with engine.connect() as conn:
            rows = conn.execute(sa.text("SELECT version_num FROM alembic_version")).all()
            conn.rollback()
    except SQLAlchemyError:
        return False  # no version table yet (a new database), or unreadable: let migrate() decide
    return [tuple(r) for r in rows] == [(HEAD_REVISION,)]


def migrate(engine: Engine, target: str = "head") -> None:
    """Bring the schema to head (or ``target``, for tests of a migration), or raise SchemaTooNew if
    the database is ahead of this code. A migration that refuses (MigrationRefused) changes nothing."""
    if target == "head" and _at_head(engine):
        return
    from alembic import command
    from alembic.runtime.migration import MigrationContext
    from alembic.script import ScriptDirectory
    from alembic.script.revision import RevisionError
    from alembic.util.exc import CommandError

    cfg = _alembic_config()
    script = ScriptDirectory.from_config(cfg)
    try:
        with engine.connect() as conn:
            conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
            with conn.begin():
                if conn.dialect.name == "postgresql":
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})
                for rev in MigrationContext.configure(conn).get_current_heads():
                    try:
                        script.get_revision(rev)
                    except (RevisionError, CommandError) as exc:
                        raise SchemaTooNew(
                            f"database schema revision {rev} is newer than this flink-gitops knows "
                            f"({script.get_current_head()}); upgrade flink-gitops"
                        ) from exc
                cfg.attributes["connection"] = conn
                command.upgrade(cfg, target)
    except SQLAlchemyError as exc:
        raise StoreUnavailable(f"cannot open the state store: {describe_error(exc)}") from exc


def describe_error(exc: Exception) -> str:
    """A short, secret-free description of a database error (the driver's message, no SQL or parameters).

    ``exc`` is a SQLAlchemy error or a DBAPI error raised by a direct driver call.
    """
    orig = getattr(exc, "orig", None) if isinstance(exc, SQLAlchemyError) else exc
    if orig is not None:
        return f"{type(orig).__name__}: {str(orig).strip().splitlines()[0] if str(orig).strip() else ''}"
    return type(exc).__name__
