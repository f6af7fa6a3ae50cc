"""Errors of the state store (``flink_gitops.record.store``).

Each says whether a retry can help, through the house tree in
:mod:`flink_gitops.errors`. Messages name tables, revisions and holders, never
URLs with credentials or row contents. Neighbours: the store (raises these), the
audit trail and the reconciler (catch them; an audit write that fails means the
action is not taken).
"""

from __future__ import annotations

from flink_gitops.errors import ConfigError, FlinkGitOpsError, PermanentError, TemporaryError


class StoreError(FlinkGitOpsError):
    """Base of every store error."""


class StoreUnavailable(StoreError, TemporaryError):
    """The database cannot be reached or read right now."""


class StoreWriteFailed(StoreError, TemporaryError):
    """A write did not commit (database error, lock timeout, connection lost); nothing was written."""


class AuditRowRejected(StoreError, PermanentError):
    """An audit row built by the caller does not fit the chain (wrong seq, prev_hash or field size)."""


class DuplicateAuditKey(StoreError, PermanentError):
    """An audit key with this version already exists (keys are insert-only)."""


class SchemaTooNew(StoreError, PermanentError):
    """The database was migrated by a newer flink-gitops than this one."""


class InsecureStoreUrl(StoreError, ConfigError):
    """The store URL is unusable: it carries a password, or names an unsupported database."""


class FencedOut(StoreError, PermanentError):
    """A write carried a lease epoch that is no longer current: this instance is not the leader."""


class LeaseLost(StoreError, PermanentError):
    """The lease expired or another holder took it over; stop acting as leader."""


class UnknownOperation(StoreError, PermanentError):
    """No operation with this op id exists."""


class OperationAlreadyFinished(StoreError, PermanentError):
    """The operation already has an outcome; outcomes are written once."""


class UnknownSavepoint(StoreError, PermanentError):
    """No savepoint/checkpoint record with this id exists."""


class MigrationRefused(StoreError, PermanentError):
    """A schema migration found data it cannot carry over as is; nothing was changed."""


class UnknownJob(StoreError, PermanentError):
    """No job with this name is recorded (create it first)."""


class JobConflict(StoreError, PermanentError):
    """The job's recorded state does not allow this change (e.g. a new life for a job still alive)."""


class DuplicateOperation(StoreError, PermanentError):
    """An operation with this op id already exists with a different job, kind or intent."""
