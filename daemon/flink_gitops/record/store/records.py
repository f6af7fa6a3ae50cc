"""What the store hands out: frozen dataclasses and enums, never ORM objects.

Every datetime is timezone-aware UTC. JSON fields (specs, intents, details,
counts, key params) are plain ``dict`` values that round-trip through JSON.
Neighbours: :mod:`.store` (builds these from rows), the audit trail (builds
:class:`AuditRow` / :class:`AuditKeyRow`), the reconciler (reads the rest).
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: the first audit record's prev_hash, and audit_head's hash while the trail is empty.
ZERO_HASH = b"\0" * 32


@dataclass(frozen=True, slots=True)
class AuditRow:
    """One encrypted audit record as stored; the audit trail builds it, the store checks sizes and chain."""

    seq: int  # 1-based, dense, no gaps
    recorded_at: datetime  # tz-aware UTC (plaintext, for since/until filters)
    key_version: int
    job_tag: bytes | None  # HMAC-SHA256 tag (32 bytes) or None
    action_tag: bytes  # 32 bytes
    outcome_tag: bytes | None  # 32 bytes or None
    nonce: bytes  # 12 bytes
    ciphertext: bytes  # AES-GCM output (incl. auth tag)
    prev_hash: bytes  # 32 bytes; the first record's prev_hash is 32 zero bytes
    hash: bytes  # 32 bytes
    #: Ed25519 signature (64 bytes) of the record's seq, hash and key version; not covered by ``hash``.
    signature: bytes = b""


@dataclass(frozen=True, slots=True)
class UnreadableAuditRow:
    """A stored audit row whose columns do not have their types (edited behind the store's back).

    The store hands it out in place of an :class:`AuditRow` so that readers report it at its
    place in the chain instead of failing the whole read.
    """

    seq: int | None  # None when the seq column itself is not an integer
    problem: str  # which column, and what it holds instead (never the value itself)


@dataclass(frozen=True, slots=True)
class UnreadableAuditKeyRow:
    """A stored audit key row whose columns do not have their types (e.g. ``params`` not JSON)."""

    version: int | None
    problem: str


@dataclass(frozen=True, slots=True)
class AuditKeyRow:
    """One wrapped audit data key version; opaque to the store."""

    version: int  # 1, 2, 3 ...
    created_at: datetime
    wrapped_key: bytes  # the data key, encrypted under the master key
    params: dict[str, Any]  # opaque JSON (KDF salt/params, key ids...), no secrets


class JobLifecycle(enum.StrEnum):
    """Where a job is in its life (the Flink Kubernetes operator's ResourceLifecycleState)."""

    CREATED = "created"
    DEPLOYED = "deployed"
    STABLE = "stable"
    UPGRADING = "upgrading"
    ROLLING_BACK = "rolling-back"
    ROLLED_BACK = "rolled-back"
    SUSPENDED = "suspended"
    FAILED = "failed"
    DELETING = "deleting"
    DELETED = "deleted"


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """A spec as reconciled: its JSON, its hash and the Git commit it came from."""

    spec: dict[str, Any]
    hash: str
    commit: str | None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the store remembers about one job on one cluster."""

    cluster: str
    name: str
    flink_job_id: str | None  # the current Flink job id (hex), if any
    state: JobLifecycle
    last_reconciled: SpecRecord | None
    last_stable: SpecRecord | None
    generation: int  # bumped by next_generation(); feeds deterministic job ids
    attempts: int  # failed attempts since the last success
    next_attempt_at: datetime | None  # backoff: do not try before this
    last_error: str | None
    updated_at: datetime


class SnapshotKind(enum.StrEnum):
    SAVEPOINT = "savepoint"
    CHECKPOINT = "checkpoint"


class SnapshotOrigin(enum.StrEnum):
    """Why a savepoint/checkpoint was taken or recorded."""

    UPGRADE = "upgrade"
    PERIODIC = "periodic"
    MANUAL = "manual"
    STOP = "stop"
    FINAL = "final"
    RETAINED = "retained"  # a retained checkpoint read from the job's checkpoint stats


@dataclass(frozen=True, slots=True)
class SavepointRecord:
    """One savepoint or retained checkpoint of a job."""

    id: int
    cluster: str
    name: str
    path: str
    kind: SnapshotKind
    origin: SnapshotOrigin
    flink_job_id: str | None  # the job that wrote it
    created_at: datetime
    disposed: bool
    disposed_at: datetime | None


class OperationState(enum.StrEnum):
    STARTED = "started"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    ABANDONED = "abandoned"


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One entry of the operations log: an intent written before a side effect, then its outcome."""

    op_id: str
    cluster: str | None
    name: str | None
    kind: str
    intent: dict[str, Any]
    state: OperationState
    detail: dict[str, Any] | None
    epoch: int
    started_at: datetime
    finished_at: datetime | None


@dataclass(frozen=True, slots=True)
class CycleRecord:
    """The summary of one reconcile cycle."""

    id: int
    started_at: datetime
    finished_at: datetime
    revision: str | None
    counts: dict[str, int]
    outcome: str
    detail: str | None


@dataclass(frozen=True, slots=True)
class Lease:
    """The leader lease as held: epoch increments on every change of holder."""

    holder: str
    epoch: int
    acquired_at: datetime  # when this holder took it (kept across renewals)
    expires_at: datetime
    #: the length asked for, seconds; renew_lease() reuses it. Not stored: current_lease() gives
    #: expires_at - acquired_at, which each renewal stretches (renew a lease you acquired, not that).
    ttl_s: float
