"""What every aggregate of the store shares: one engine, short transactions, the fence, input checks.

A read is one short deferred transaction; a write one transaction that takes
the write lock up front (SQLite ``BEGIN IMMEDIATE``, see :mod:`.engine`). A
*fenced* write first reads the named lease's row (FOR SHARE on PostgreSQL,
under the write lock on SQLite): the caller's epoch must be that lease's
current one and unexpired, else :class:`FencedOut` and nothing is written. A
leader taking a lease over locks its row FOR UPDATE, so it waits for every
fenced write in flight, and every later write with the old epoch fails.

Lease time comes from the injected Clock (the holder's own ``now``), not the
database's: tests drive it with a FakeClock, SQLite has no server clock, and the
holder must judge its own expiry anyway to stop acting in time. Replicas
therefore need clocks in step (NTP) to well under the TTL.

:class:`Tx` is one open write transaction with its ``now``; the aggregates'
write halves (``JobWrites``, ``SnapshotWrites``, ``OperationWrites``) run on a
Tx, so a unit of work (:mod:`.unit`) can put several of them into one commit.
Neighbours: :mod:`.engine` (the engine), :mod:`.tables` (schema), the
aggregate modules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import SQLAlchemyError

from flink_gitops.clock import Clock
from flink_gitops.record.store import tables as t
from flink_gitops.record.store.engine import SQLITE_BEGIN, describe_error
from flink_gitops.record.store.errors import FencedOut, StoreUnavailable, StoreWriteFailed


def no_nul(**values: str | None) -> None:
    """Refuse NUL and lone surrogates in identifiers on every backend alike (PostgreSQL text cannot
    hold NUL, and neither driver can encode a surrogate), before anything is written."""
    for field, value in values.items():
        if value is None:
            continue
        if "\x00" in value:
            raise ValueError(f"{field} must not contain NUL characters")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError as exc:
            raise ValueError(f"{field} is not valid Unicode text (character {exc.start})") from exc


def storable(value: str) -> bool:
    """Whether ``value`` could be stored as an identifier (no NUL, no lone surrogate): a read by a
    name that could not be stored (a non-UTF-8 argv, a JSON escape) finds nothing, not an error."""
    return _UNSTORABLE.search(value) is None


def aware(**values: datetime | None) -> None:
    """Refuse naive datetimes up front (a programming error, not a failed write)."""
    for field, value in values.items():
        if value is not None and value.tzinfo is None:
            raise ValueError(f"{field} must be a timezone-aware datetime")


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def text(value: str | None) -> str | None:
    """Free text (error messages, details) keeps everything but NUL and lone surrogates (U+FFFD)."""
    if value is None:
        return None
    return _UNSTORABLE.sub("\ufffd", value)


@dataclass(frozen=True, slots=True)
class Tx:
    """One open write transaction: its connection and the time every write in it records."""

    conn: Connection
    now: datetime


class Database:
    """The engine and clock shared by every aggregate; thread-safe (the engine pools connections)."""

    def __init__(self, engine: Engine, clock: Clock) -> None:
        self.engine = engine
        self.clock = clock

    @contextmanager
    def read(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn, conn.begin():
                yield conn
        except SQLAlchemyError as exc:
            raise StoreUnavailable(f"{what}: {describe_error(exc)}") from exc

    @contextmanager
    def write(self, what: str) -> Iterator[Connection]:
        try:
            with self.engine.connect() as conn:
                conn.execution_options(**{SQLITE_BEGIN: "IMMEDIATE"})
                with conn.begin():
                    yield conn
        except SQLAlchemyError as exc:
            raise StoreWriteFailed(f"{what}: {describe_error(exc)}") from exc

    @contextmanager
    def fenced(
        self, what: str, *, epoch: int, lease: str, also: Mapping[str, int] | None = None
    ) -> Iterator[Tx]:
        """A write transaction, fenced once at its start by ``lease``'s ``epoch`` (and by every
        ``also`` lease name -> epoch, in name order, for an action that spans clusters)."""
        fences = {**(also or {}), lease: epoch}
        if (also or {}).get(lease, epoch) != epoch:
            raise ValueError(f"lease {lease!r} given twice with different epochs")
        with self.write(what) as conn:
            now = self.clock.now()
            for name in sorted(fences):
                fence(conn, epoch=fences[name], lease=name, now=now)
            yield Tx(conn, now)


def fence(conn: Connection, *, epoch: int, lease: str, now: datetime) -> None:
    """Raise FencedOut unless ``epoch`` is ``lease``'s current, unexpired epoch."""
    row: Any = conn.execute(
        sa.select(t.lease.c.holder, t.lease.c.epoch, t.lease.c.expires_at)
        .where(t.lease.c.name == lease)
        .with_for_update(read=True)
    ).one_or_none()
    if row is None:
        raise FencedOut(f"write with lease {lease!r} epoch {epoch} refused: nobody ever held that lease")
    if row.epoch != epoch:
        raise FencedOut(f"write with lease {lease!r} epoch {epoch} refused: the current epoch is {row.epoch}")
    if row.holder is None or row.expires_at is None or row.expires_at <= now:
        raise FencedOut(
            f"write with lease {lease!r} epoch {epoch} refused: the lease has expired or was released"
        )
