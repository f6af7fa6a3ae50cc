"""The state store: jobs, savepoint history, operations log, cycles, leases and audit rows.

SQLite by default (``<state_dir>/state.db``), PostgreSQL for several replicas.
Only this package imports SQLAlchemy and Alembic; everyone else gets frozen
dataclasses from :mod:`.records`. The schema is migrated to head on open.

Audit storage contract (with :mod:`flink_gitops.record.audit`): table
``audit_records`` has exactly the :class:`AuditRow` field names as columns
(the chain hash column is called ``hash``; ``recorded_at`` is plaintext: on
SQLite a UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, on PostgreSQL TIMESTAMPTZ);
``audit_head`` holds one row (``id`` = 1, ``seq``, ``hash``); ``audit_keys``
has the :class:`AuditKeyRow` field names (``params`` is JSON). There is no
update or delete API for audit rows or keys. A row whose columns do not hold
their types (edited behind the store's back) is read as an
:class:`UnreadableAuditRow` / :class:`UnreadableAuditKeyRow`, never an exception.

API: one :class:`Store` per process, with an attribute per aggregate
(``store.jobs``, ``store.snapshots``, ``store.operations``, ``store.cycles``,
``store.leases``, ``store.artifacts``, ``store.pauses``), ``store.unit(epoch=..., lease=...)``
for writes that land together, and the audit methods flat on the Store. Every write that acts on
jobs is fenced by a named lease's epoch (keyword ``epoch``, and ``lease``,
default ``"leader"``).

Modules: :mod:`.store` (the Store facade and the audit rows), :mod:`.base`
(transactions, fence), :mod:`.jobs`, :mod:`.snapshots`, :mod:`.operations`,
:mod:`.cycles`, :mod:`.leases`, :mod:`.artifacts`, :mod:`.pauses`, :mod:`.unit` (the
aggregates),
:mod:`.engine` (URLs, connections, migrations), :mod:`.tables` (schema),
:mod:`.records` (returned values), :mod:`.errors`. Neighbours: the audit
trail, the reconciler, the CLI.
"""

from __future__ import annotations

import os

from flink_gitops.clock import Clock
from flink_gitops.record.store.errors import (
    AuditRowRejected,
    DuplicateAuditKey,
    DuplicateOperation,
    FencedOut,
    InsecureStoreUrl,
    JobConflict,
    LeaseLost,
    MigrationRefused,
    OperationAlreadyFinished,
    SchemaTooNew,
    StoreError,
    StoreUnavailable,
    StoreWriteFailed,
    UnknownJob,
    UnknownOperation,
    UnknownSavepoint,
)
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    GLOBAL_PAUSE,
    KEEP,
    ZERO_HASH,
    ArtifactRecord,
    AuditKeyRow,
    AuditRow,
    CycleRecord,
    JobLifecycle,
    JobRecord,
    JobUpdate,
    Keep,
    Lease,
    NewSavepoint,
    OperationRecord,
    OperationState,
    OperationStep,
    PauseRecord,
    SavepointRecord,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    UnreadableAuditKeyRow,
    UnreadableAuditRow,
    cluster_lease,
)
from flink_gitops.record.store.store import Store
from flink_gitops.record.store.unit import UnitOfWork
from flink_gitops.secrets import read_secret
from flink_gitops.settings import Settings


def open_store(settings: Settings, *, clock: Clock | None = None) -> Store:
    """Open the configured store (default: SQLite ``<state_dir>/state.db``), migrated to head."""
    cfg = settings.store
    if cfg.url is None:
        state_dir = settings.state_dir.resolve()
        db = state_dir / "state.db"
        try:
            state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
            # Owner-only before SQLite first opens it: its -wal and -shm files copy the file's mode.
            os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
            os.chmod(db, 0o600)
        except OSError as exc:
            raise StoreUnavailable(f"cannot open the SQLite store {db}: {exc.strerror}") from exc
        url = f"sqlite:///{db}"
    else:
        url = cfg.url
    password = read_secret(cfg.password) if cfg.password is not None else None
    return Store.from_url(url, password=password, clock=clock, busy_timeout_s=cfg.busy_timeout_s)


__all__ = [
    "DEFAULT_LEASE",
    "GLOBAL_PAUSE",
    "KEEP",
    "ZERO_HASH",
    "ArtifactRecord",
    "AuditKeyRow",
    "AuditRow",
    "AuditRowRejected",
    "CycleRecord",
    "DuplicateAuditKey",
    "DuplicateOperation",
    "FencedOut",
    "InsecureStoreUrl",
    "JobConflict",
    "JobLifecycle",
    "JobRecord",
    "JobUpdate",
    "Keep",
    "Lease",
    "LeaseLost",
    "MigrationRefused",
    "NewSavepoint",
    "OperationAlreadyFinished",
    "OperationRecord",
    "OperationState",
    "OperationStep",
    "PauseRecord",
    "SavepointRecord",
    "SchemaTooNew",
    "SnapshotKind",
    "SnapshotOrigin",
    "SpecRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
    "UnitOfWork",
    "UnknownJob",
    "UnknownOperation",
    "UnknownSavepoint",
    "UnreadableAuditKeyRow",
    "UnreadableAuditRow",
    "cluster_lease",
    "open_store",
]
