"""What the store hands out: frozen dataclasses and enums, never ORM objects.

Every datetime is timezone-aware UTC. JSON fields (specs, intents, details,
counts, key params) are plain ``dict`` values that round-trip through JSON.
Neighbours: the aggregate modules (:mod:`.jobs`, :mod:`.snapshots`,
:mod:`.operations`, :mod:`.cycles`, :mod:`.leases`) build these from rows; the
audit trail builds :class:`AuditRow` / :class:`AuditKeyRow`; the reconciler
reads the rest and builds :class:`JobUpdate` / :class:`NewSavepoint`.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from flink_gitops.lifecycle import JobLifecycle as JobLifecycle  # re-exported: the store speaks it

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


class Keep(enum.Enum):
    """Marker for "leave this field as it is" in :class:`JobUpdate` (None means clear it)."""

    KEEP = "keep"


KEEP: Final = Keep.KEEP

#: the lease fenced writes check unless they name another (the one of a single-leader daemon).
DEFAULT_LEASE: Final = "leader"


def cluster_lease(cluster: str) -> str:
    """The name of the lease that fences the writes and Flink side effects on ``cluster``."""
    return f"cluster:{cluster}"


@dataclass(frozen=True, slots=True)
class SpecRecord:
    """A spec as reconciled: its JSON, its hash, the Git commit it came from and its jar's digest.

    ``jar_digest`` is a column beside the spec (``reconciled_jar_digest`` / ``stable_jar_digest``),
    not a key inside the spec JSON; None for rows written before schema 0002.
    """

    spec: dict[str, Any]
    hash: str
    commit: str | None
    jar_digest: str | None = None
    #: sha256 of the whole spec, IGNORE-class fields too (``specs.loader.DesiredJob.full_digest``).
    full_digest: str | None = None


@dataclass(frozen=True, slots=True)
class JobRecord:
    """What the store remembers about one job: one row per name, whatever cluster it runs on.

    A removed job keeps its row as a tombstone (state DELETED); adding it again starts a new life
    (a new ``uid``) on the same row, and ``generation`` keeps growing across lives. The planner's
    ``RecordedJob`` is this plus ``Operations.open_by_job()`` (its open operation and the job id
    that operation's recorded steps will run).
    """

    name: str
    #: this life's id (32 hex); the Flink job id is ``flink.ids.job_id_for(uid, generation)``.
    uid: str
    #: the cluster the job's current Flink job runs (or last ran) on.
    cluster: str
    flink_job_id: str | None  # the current Flink job id (hex), if any
    state: JobLifecycle
    last_reconciled: SpecRecord | None
    last_stable: SpecRecord | None
    #: a spec hash that failed or was rolled back: not retried until the spec changes.
    failed_hash: str | None
    #: the current savepoint (or retained checkpoint) path: what a resume or recovery restores from.
    savepoint: str | None
    #: the spec file the job was last seen in.
    file: str | None
    generation: int  # bumped by next_generation(); only grows, across lives too
    attempts: int  # failed attempts since the last success
    next_attempt_at: datetime | None  # backoff: do not try before this
    last_error: str | None
    created_at: datetime  # when this life began
    updated_at: datetime
    #: live drift seen now (``plan.model.DriftKind`` value), since when, and a one-line detail.
    drift_kind: str | None = None
    drift_since: datetime | None = None
    drift_detail: str | None = None
    #: recoveries (redeploys of a failed or vanished job) inside the restart window, oldest first.
    restarts: tuple[datetime, ...] = ()
    #: what was deployed, compared each cycle with what runs (job id, jar digest, tasks...).
    fingerprint: dict[str, Any] | None = None
    #: when the current savepoint was taken (periodic savepoints count from it).
    savepoint_at: datetime | None = None
    #: a scheduled batch job: the scheduled time of the last run started.
    last_run_at: datetime | None = None

    @property
    def deleted(self) -> bool:
        return self.state is JobLifecycle.DELETED


@dataclass(frozen=True, slots=True)
class JobUpdate:
    """A change to a job's row: fields left at KEEP stay as they are, None clears a field.

    ``cluster`` moves the job (its row, specs and history stay). ``state`` cannot leave DELETED:
    a tombstoned job comes back only through ``new_life``.
    """

    cluster: str | Keep = KEEP
    state: JobLifecycle | Keep = KEEP
    flink_job_id: str | Keep | None = KEEP
    last_reconciled: SpecRecord | Keep | None = KEEP
    last_stable: SpecRecord | Keep | None = KEEP
    failed_hash: str | Keep | None = KEEP
    savepoint: str | Keep | None = KEEP
    file: str | Keep | None = KEEP
    attempts: int | Keep = KEEP
    next_attempt_at: datetime | Keep | None = KEEP
    last_error: str | Keep | None = KEEP
    drift_kind: str | Keep | None = KEEP
    drift_since: datetime | Keep | None = KEEP
    drift_detail: str | Keep | None = KEEP
    restarts: tuple[datetime, ...] | Keep = KEEP
    fingerprint: dict[str, Any] | Keep | None = KEEP
    savepoint_at: datetime | Keep | None = KEEP
    last_run_at: datetime | Keep | None = KEEP


class SnapshotKind(enum.StrEnum):
    SAVEPOINT = "savepoint"
    CHECKPOINT = "checkpoint"


class SnapshotOrigin(enum.StrEnum):
    """Why a savepoint/checkpoint was taken or recorded (stored as at most 16 characters)."""

    #: a bump of spec.job.savepointTriggerNonce.
    NONCE = "nonce"
    #: spec.savepoints.periodic was due.
    PERIODIC = "periodic"
    #: ``flink-gitops savepoint JOB``.
    MANUAL = "manual"
    #: the stop-with-savepoint of an upgrade or redeploy.
    UPGRADE = "upgrade"
    #: the stop-with-savepoint of a suspend.
    STOP = "stop"
    #: the final savepoint of a prune.
    FINAL = "final"
    #: a retained checkpoint (chk-N) read from the job's checkpoint stats (a last-state upgrade, a
    #: recovery); Flink cleans those up, retention never disposes them.
    RETAINED = "retained"


@dataclass(frozen=True, slots=True)
class NewSavepoint:
    """A completed savepoint/checkpoint to record (see ``Snapshots.record``)."""

    name: str
    path: str
    kind: SnapshotKind
    origin: SnapshotOrigin
    flink_job_id: str | None = None
    created_at: datetime | None = None  # default: now
    #: also make it the job's current savepoint (``JobRecord.savepoint``), in the same transaction.
    make_current: bool = True


@dataclass(frozen=True, slots=True)
class ArtifactRecord:
    """A jar this daemon uploaded to a cluster: its content digest and Flink's jar id for it."""

    cluster: str
    #: the jar's content digest as the spec essence has it (``sha256:<hex>``).
    digest: str
    jar_id: str
    uploaded_at: datetime
    last_used_at: datetime


@dataclass(frozen=True, slots=True)
class SavepointRecord:
    """One savepoint or retained checkpoint of a job (of one life of it)."""

    id: int
    name: str
    #: the life that took it; None for history recorded before schema 0002 whose job row was gone.
    uid: str | None
    cluster: str  # where it was taken
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
class OperationStep:
    """One recorded step of an operation: its name, the ids it merged in, when, under which epoch."""

    step: str
    detail: dict[str, Any]
    at: datetime
    epoch: int


@dataclass(frozen=True, slots=True)
class OperationRecord:
    """One entry of the operations log: an intent, the steps recorded before each side effect, an outcome.

    ``detail`` is every step's ids merged (later steps win: trigger id, savepoint path, jar id, next
    job id...); ``steps`` is the history in order, ``step`` the last one ("begin" until advanced, the
    outcome's name once finished).
    """

    op_id: str
    name: str | None  # the job, if the operation acts on one
    uid: str | None  # the life of that job when the operation began
    cluster: str | None
    kind: str
    intent: dict[str, Any]
    state: OperationState
    step: str
    detail: dict[str, Any]
    steps: tuple[OperationStep, ...]
    epoch: int  # the epoch that began it
    started_at: datetime
    updated_at: datetime
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


#: the scope of a global pause (every job); a job's pause has the job's name as its scope.
GLOBAL_PAUSE: Final = "*"


@dataclass(frozen=True, slots=True)
class PauseRecord:
    """One pause: of one job (``scope`` is its name) or of every job (``scope`` is ``*``)."""

    scope: str
    reason: str
    #: the audit actor who paused it (``cli:<user>``, ``api:<role>@<instance>``).
    paused_by: str
    paused_at: datetime

    @property
    def job(self) -> str | None:
        """The paused job; None for a global pause."""
        return None if self.scope == GLOBAL_PAUSE else self.scope


@dataclass(frozen=True, slots=True)
class Lease:
    """A named lease as held: its epoch increments on every acquisition of a free (expired or
    released) lease, so each tenure has its own epoch."""

    name: str
    holder: str
    epoch: int
    acquired_at: datetime  # when this tenure began (kept across renewals)
    expires_at: datetime
    #: the length asked for, seconds; renew() reuses it. Not stored: current() gives
    #: expires_at - acquired_at, which each renewal stretches (renew a lease you acquired, not that).
    ttl_s: float
