"""The state store: job state, savepoint history, operations log, cycles, leader lease and audit rows.

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

Modules: :mod:`.store` (the Store), :mod:`.engine` (URLs, connections,
migrations), :mod:`.tables` (schema), :mod:`.records` (returned values),
:mod:`.errors`. Neighbours: the audit trail, the reconciler, the CLI.
"""

from __future__ import annotations

import os

from flink_gitops.clock import Clock
from flink_gitops.record.store.errors import (
    AuditRowRejected,
    DuplicateAuditKey,
    FencedOut,
    InsecureStoreUrl,
    LeaseLost,
    OperationAlreadyFinished,
    SchemaTooNew,
    StoreError,
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
from flink_gitops.record.store.store import KEEP, Keep, Store
from flink_gitops.secrets import read_secret
from flink_gitops.settings import Settings


def open_store(settings: Settings, *, clock: Clock | None = None) -> Store:
    """Open the configured store (default: SQLite ``<state_dir>/state.db``), migrated to head."""
    cfg = settings.store
    if cfg.url is None:
        state_dir = settings.state_dir.resolve()
        state_dir.mkdir(mode=0o700, parents=True, exist_ok=True)
        db = state_dir / "state.db"
        # Owner-only before SQLite first opens it: its -wal and -shm files copy the file's mode.
        os.close(os.open(db, os.O_CREAT | os.O_WRONLY, 0o600))
        os.chmod(db, 0o600)
        url = f"sqlite:///{db}"
    else:
        url = cfg.url
    password = read_secret(cfg.password) if cfg.password is not None else None
    return Store.from_url(url, password=password, clock=clock, busy_timeout_s=cfg.busy_timeout_s)


__all__ = [
    "KEEP",
    "ZERO_HASH",
    "AuditKeyRow",
    "AuditRow",
    "AuditRowRejected",
    "CycleRecord",
    "DuplicateAuditKey",
    "FencedOut",
    "InsecureStoreUrl",
    "JobLifecycle",
    "JobRecord",
    "Keep",
    "Lease",
    "LeaseLost",
    "OperationAlreadyFinished",
    "OperationRecord",
    "OperationState",
    "SavepointRecord",
    "SchemaTooNew",
    "SnapshotKind",
    "SnapshotOrigin",
    "SpecRecord",
    "Store",
    "StoreError",
    "StoreUnavailable",
    "StoreWriteFailed",
    "UnknownOperation",
    "UnknownSavepoint",
    "UnreadableAuditKeyRow",
    "UnreadableAuditRow",
    "open_store",
]
