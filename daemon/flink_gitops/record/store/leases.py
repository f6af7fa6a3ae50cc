"""Leases: named, expiring leader leases whose epochs fence every write and Flink side effect.

One lease per cluster (``records.cluster_lease``) lets replicas split the
clusters; ``DEFAULT_LEASE`` ("leader") serves a single-leader daemon. A lease
row appears on its first acquisition. The epoch increments on every
acquisition of a free lease (never held, expired or released), by anyone,
its last holder included: a write fenced with an epoch from before the lease
lapsed is refused even when the same holder takes it again. Re-acquiring or
renewing a lease one still holds keeps its epoch. Fenced writes check the
epoch in :func:`.base.fence`. ``Store.leases``. Neighbours: :mod:`.base`.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.engine import Connection, Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, no_nul
from flink_gitops.record.store.errors import LeaseLost
from flink_gitops.record.store.records import DEFAULT_LEASE, Lease


def _check_name(name: str) -> None:
    no_nul(lease=name)
    if not name or len(name) > 253:
        raise ValueError("a lease name is 1 to 253 characters")


def _locked(conn: Connection, name: str) -> Row[Any] | None:
    return conn.execute(sa.select(t.lease).where(t.lease.c.name == name).with_for_update()).one_or_none()


def _ensure_row(conn: Connection, name: str) -> Row[Any]:
    """The lease's row, locked; inserted (never held, epoch 0) first if absent, race-free on both backends."""
    row = _locked(conn, name)
    if row is None:
        insert = (postgresql.insert if conn.dialect.name == "postgresql" else sqlite.insert)(t.lease)
        conn.execute(insert.values(name=name, holder=None, epoch=0).on_conflict_do_nothing())
        row = _locked(conn, name)
        assert row is not None
    return row


class Leases:
    def __init__(self, db: Database) -> None:
        self._db = db

    def _now(self) -> datetime:
        return self._db.clock.now()

    def acquire(self, holder: str, ttl: float, *, name: str = DEFAULT_LEASE) -> Lease | None:
        """Take lease ``name`` for ``ttl`` seconds if it is free or still ours; else None.

        ``holder`` must be unique per running process (e.g. ``f"{instance}:{pid}:{uuid4}"``): two
        processes using one name would both believe they hold the lease.
        """
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0 seconds")
        _check_name(name)
        no_nul(holder=holder)
        now = self._now()
        with self._db.write(f"cannot acquire lease {name}") as conn:
            row = _ensure_row(conn, name)
            free = row.holder is None or row.expires_at is None or row.expires_at <= now
            if free:
                epoch, acquired_at = int(row.epoch) + 1, now
            elif row.holder == holder:
                epoch, acquired_at = int(row.epoch), row.acquired_at
            else:
                return None
            expires_at = now + timedelta(seconds=ttl)
            conn.execute(
                sa.update(t.lease)
                .where(t.lease.c.name == name)
                .values(holder=holder, epoch=epoch, acquired_at=acquired_at, expires_at=expires_at)
            )
        return Lease(name, holder, epoch, acquired_at, expires_at, ttl)

    def take_over(self, holder: str, ttl: float, *, name: str, from_holder: str) -> Lease | None:
        """Take lease ``name`` from ``from_holder``, which the caller KNOWS is dead (e.g. a crashed
        process of this host), before it expires: only if that holder still has it, with a new epoch.
        None if someone else holds it now (then it was not a dead holder's to take)."""
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0 seconds")
        _check_name(name)
        no_nul(holder=holder, from_holder=from_holder)
        now = self._now()
        with self._db.write(f"cannot take over lease {name}") as conn:
            row = _ensure_row(conn, name)
            free = row.holder is None or row.expires_at is None or row.expires_at <= now
            if not free and row.holder != from_holder:
                return None
            epoch = int(row.epoch) + 1
            expires_at = now + timedelta(seconds=ttl)
            conn.execute(
                sa.update(t.lease)
                .where(t.lease.c.name == name)
                .values(holder=holder, epoch=epoch, acquired_at=now, expires_at=expires_at)
            )
        return Lease(name, holder, epoch, now, expires_at, ttl)

    def renew(self, lease: Lease, ttl: float | None = None) -> Lease:
        """Extend a held lease by ``ttl`` (default: its own ttl_s) seconds from now.

        Raises LeaseLost if it expired or changed hands (take it again with acquire: a new epoch).
        """
        ttl = lease.ttl_s if ttl is None else ttl
        if ttl <= 0:
            raise ValueError("lease ttl must be > 0 seconds")
        now = self._now()
        with self._db.write(f"cannot renew lease {lease.name}") as conn:
            row = _locked(conn, lease.name)
            if row is None or row.holder != lease.holder or int(row.epoch) != lease.epoch:
                now_epoch = None if row is None else row.epoch
                raise LeaseLost(
                    f"lease {lease.name!r} epoch {lease.epoch} of {lease.holder} was taken over "
                    f"(now {now_epoch})"
                )
            if row.expires_at is None or row.expires_at <= now:
                raise LeaseLost(f"lease {lease.name!r} epoch {lease.epoch} of {lease.holder} expired")
            expires_at = now + timedelta(seconds=ttl)
            conn.execute(sa.update(t.lease).where(t.lease.c.name == lease.name).values(expires_at=expires_at))
        return Lease(lease.name, lease.holder, lease.epoch, lease.acquired_at, expires_at, ttl)

    def release(self, lease: Lease) -> bool:
        """Give the lease up if still held by ``lease``; False if it was already lost."""
        with self._db.write(f"cannot release lease {lease.name}") as conn:
            row = _locked(conn, lease.name)
            if row is None or row.holder != lease.holder or int(row.epoch) != lease.epoch:
                return False
            conn.execute(
                sa.update(t.lease)
                .where(t.lease.c.name == lease.name)
                .values(holder=None, expires_at=self._now())
            )
        return True

    def current(self, name: str = DEFAULT_LEASE) -> Lease | None:
        """The lease as recorded, if someone holds it and it has not expired.

        Its ``ttl_s`` is expires_at - acquired_at (the ttl asked for is not stored), so after a renewal
        it is longer than the holder's ttl: pass the holder's own Lease to :meth:`renew`.
        """
        with self._db.read(f"cannot read lease {name}") as conn:
            row = conn.execute(sa.select(t.lease).where(t.lease.c.name == name)).one_or_none()
        return _held(row, self._now())

    def held(self) -> list[Lease]:
        """Every lease someone holds now, by name."""
        with self._db.read("cannot read leases") as conn:
            rows = conn.execute(sa.select(t.lease).order_by(t.lease.c.name)).all()
        now = self._now()
        return [lease for lease in (_held(r, now) for r in rows) if lease is not None]


def _held(row: Row[Any] | None, now: datetime) -> Lease | None:
    if row is None or row.holder is None or row.expires_at is None or row.expires_at <= now:
        return None
    ttl = (row.expires_at - row.acquired_at).total_seconds() if row.acquired_at else 0.0
    return Lease(row.name, row.holder, int(row.epoch), row.acquired_at, row.expires_at, ttl)
