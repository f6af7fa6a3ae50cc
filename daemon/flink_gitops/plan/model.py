"""The planner's inputs and outputs, as plain frozen data.

Inputs: the desired state (``specs.loader.DesiredState``), one
``observe.view.ClusterView`` per cluster, and :class:`RecordedJob` — the
planner's own view of what the store remembers, so that planning needs no
database (the reconciler builds these from store rows). Outputs: a
:class:`Plan` with at most one :class:`Action` per job and a
:class:`JobReport` for every job it heard of. Neighbours: ``plan.planner``
(the pure function), ``execute`` (carries out actions), ``cli.sync`` (prints
reports).
"""

from __future__ import annotations

import enum
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Literal

from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ObservedJob
from flink_gitops.specs.loader import DesiredJob
from flink_gitops.specs.model import Change, FlinkJob


class ReconciledSpec:
    """A spec as it was last deployed (or last stable): enough to classify the next change.

    ``spec`` may be given as a function that parses it: it is called on first use only, so a cycle
    over thousands of unchanged jobs (equal hashes) parses none of them. Equality is by hash, jar
    and commit.
    """

    __slots__ = ("_load", "_spec", "commit", "full_digest", "hash", "jar_digest")

    def __init__(
        self,
        spec: FlinkJob | Callable[[], FlinkJob],
        jar_digest: str,
        hash: str,
        commit: str | None = None,
        full_digest: str | None = None,
    ) -> None:
        self._spec = spec if isinstance(spec, FlinkJob) else None
        self._load = None if isinstance(spec, FlinkJob) else spec
        self.jar_digest = jar_digest
        self.hash = hash
        self.commit = commit
        #: the whole spec's digest (``DesiredJob.full_digest``); None: unknown, classify to be sure.
        self.full_digest = full_digest

    @property
    def spec(self) -> FlinkJob:
        if self._spec is None:
            assert self._load is not None
            self._spec = self._load()
        return self._spec

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, ReconciledSpec):
            return NotImplemented
        return (self.hash, self.jar_digest, self.commit) == (other.hash, other.jar_digest, other.commit)

    def __hash__(self) -> int:
        return hash((self.hash, self.jar_digest, self.commit))

    def __repr__(self) -> str:
        return f"ReconciledSpec(hash={self.hash[:12]!r}, jar_digest={self.jar_digest[:19]!r})"


@dataclass(frozen=True, slots=True)
class RecordedJob:
    """What the store remembers about one job (one life of it), as the planner needs it."""

    name: str
    #: this life's uid; the Flink job id is derived from (uid, generation).
    uid: str
    generation: int
    #: the cluster the job's current Flink job runs (or last ran) on.
    cluster: str
    lifecycle: JobLifecycle
    #: the current Flink job id (hex), None while suspended or never deployed.
    flink_job_id: str | None = None
    reconciled: ReconciledSpec | None = None
    #: a spec hash that failed (rolled back, or refused by Flink): not retried until the spec changes.
    failed_hash: str | None = None
    #: backoff after a temporary failure: no action before this time.
    next_attempt_at: datetime | None = None
    #: an operation a crash left open: it is resumed before anything else happens to this job.
    open_operation: str | None = None
    #: the Flink job id that open operation will run (so it is not taken for an unmanaged job).
    pending_job_id: str | None = None
    #: the newest savepoint (or retained checkpoint) of this job: a suspended job resumes from it.
    savepoint: str | None = None
    #: the spec file the job was last seen in (prune safety).
    file: str | None = None
    last_error: str | None = None
    #: failed attempts since the last success.
    attempts: int = 0
    #: live drift seen in an earlier cycle (a ``DriftKind`` value) and since when.
    drift_kind: str | None = None
    drift_since: datetime | None = None
    #: recoveries inside the restart window, oldest first (the restart budget counts them).
    restarts: tuple[datetime, ...] = ()
    #: what was deployed (``execute`` writes it at the end of a start): job id, jar digest, tasks...
    fingerprint: Mapping[str, object] | None = None
    #: when the current savepoint was taken.
    savepoint_at: datetime | None = None
    #: a scheduled batch job: the scheduled time of its last started run.
    last_run_at: datetime | None = None
    #: when this life of the job was recorded (a schedule's first fire time comes after it).
    since: datetime | None = None


class ActionKind(enum.StrEnum):
    #: first run of a job (or of a new life): from initialSavepointPath, else empty.
    DEPLOY = "deploy"
    #: end the current job by upgradeMode and run the new spec from its state (also restartNonce).
    UPGRADE = "upgrade"
    #: stop the job with a savepoint (stateless: cancel); no new job.
    SUSPEND = "suspend"
    #: run the spec again from the savepoint the suspend took.
    RESUME = "resume"
    #: savepointTriggerNonce: take a savepoint, no redeploy.
    SAVEPOINT = "savepoint"
    #: checkpointTriggerNonce: take a checkpoint, no redeploy.
    CHECKPOINT = "checkpoint"
    #: savepointRedeployNonce: end the current job (keeping a savepoint) and run from initialSavepointPath.
    REDEPLOY = "redeploy"
    #: an IGNORE-class change (labels, retention, upgradeMode...): update the record only.
    RECORD = "record"
    #: gone from Git with pruning on: stop with a final savepoint; the row stays as a tombstone.
    PRUNE = "prune"
    #: finish an operation that a crash left open, from its last recorded step.
    RESUME_OPERATION = "resume-operation"
    #: a batch job's run: its spec, fresh, as a new Flink job that ends on its own (``plan.schedule``).
    RUN = "run"
    #: run the job again after it FAILED, vanished or was ended by hand (a heal): from its newest
    #: savepoint or retained checkpoint; or, when it still runs but drifted (rescaled, another
    #: program), end it by upgradeMode and run the spec from its state. Counts against the budget.
    RECOVER = "recover"
    #: the restart budget is spent: record the job FAILED with Flink's cause; no retry until the
    #: spec changes or ``flink-gitops restart JOB``. Reads Flink, changes nothing there.
    GIVE_UP = "give-up"


class DriftKind(enum.StrEnum):
    """How the live job differs from what was deployed (see ``plan.health``)."""

    #: ended by hand: CANCELED, or a streaming job FINISHED (stopped with a savepoint).
    CANCELLED = "cancelled"
    #: Flink gave up on it (FAILED).
    FAILED = "failed"
    #: gone from the cluster (a JobManager restarted without HA): 404, not in /jobs/overview.
    MISSING = "missing"
    #: running with another task count than deployed (rescaled by hand).
    RESCALED = "rescaled"
    #: running under our job id with another job name (another program or entry class).
    CHANGED = "changed"
    #: recorded suspended, yet a Flink job of ours runs.
    RUNNING_WHILE_SUSPENDED = "running-while-suspended"

    @property
    def failure(self) -> bool:
        """Failed or vanished: recovered within the restart budget, whatever the drift policy."""
        return self in (DriftKind.FAILED, DriftKind.MISSING)


#: what a job does about live drift: heal (redeploy, state kept), warn (report, alert), observe.
DriftPolicy = Literal["heal", "warn", "observe"]


@dataclass(frozen=True, slots=True)
class HealthPolicy:
    """The planner's knobs for live drift and recovery (from ``settings.SyncConfig``)."""

    #: the default drift policy; a job's ``spec.drift`` overrides it.
    drift: DriftPolicy = "warn"
    #: recoveries allowed inside ``restart_window_s``; 0 turns automatic recovery off.
    restart_budget: int = 3
    #: seconds.
    restart_window_s: float = 3600.0
    #: seconds before the 2nd recovery inside the window, doubling for each further one.
    backoff_initial_s: float = 10.0
    #: seconds, the longest wait between recoveries.
    backoff_max_s: float = 600.0


@dataclass(frozen=True, slots=True)
class DriftChange:
    """A job's live drift as this plan sees it, when it differs from the recorded one."""

    job: str
    cluster: str
    #: None: the drift ended (cleared).
    kind: DriftKind | None
    detail: str | None
    #: since when (the recorded time when the kind did not change).
    since: datetime | None


#: how the current Flink job ends before the new one runs.
StopHow = Literal["none", "savepoint", "cancel"]


@dataclass(frozen=True, slots=True)
class Restore:
    """Where the new job's state comes from."""

    #: none (fresh), stop-savepoint (the one this action's stop takes), last-checkpoint (the current
    #: job's latest completed retained checkpoint), path (a known savepoint or checkpoint path).
    #: newest (the newest of the recorded history and the old job's checkpoint stats: recovery).
    source: Literal["none", "stop-savepoint", "last-checkpoint", "path", "newest"]
    path: str | None = None

    def __str__(self) -> str:
        return f"{self.source}:{self.path}" if self.path else self.source


FRESH = Restore("none")


@dataclass(frozen=True, slots=True)
class Action:
    """One thing to do to one job; the executor turns it into an operation of recorded steps."""

    kind: ActionKind
    job: str
    #: the cluster the job ends up on (where a new Flink job runs, or where the job is).
    cluster: str
    #: one line for logs and the CLI.
    reason: str
    #: the spec to run or record; None only for RESUME_OPERATION.
    desired: DesiredJob | None = None
    #: the cluster of the current Flink job when there is one (differs from ``cluster`` on a move).
    from_cluster: str | None = None
    current_job_id: str | None = None
    change: Change | None = None
    stop: StopHow = "none"
    restore: Restore = FRESH
    #: a new life (the job was removed and added again): the executor gives it a new uid.
    new_life: bool = False
    #: RESUME_OPERATION: the operation to resume.
    operation_id: str | None = None
    #: RECOVER / GIVE_UP: the live drift that led to it.
    drift: DriftKind | None = None
    #: SAVEPOINT: why it is taken (a ``SnapshotOrigin`` value: nonce, periodic, manual); the
    #: operation's intent carries it, so a resumed operation records it right.
    origin: str | None = None
    #: RUN of a scheduled batch job: the fire time it runs for (written as the job's last_run_at).
    scheduled_at: datetime | None = None

    @property
    def clusters(self) -> frozenset[str]:
        """Every cluster this action touches."""
        return frozenset(c for c in (self.cluster, self.from_cluster) if c is not None)

    @property
    def touches_flink(self) -> bool:
        return self.kind is not ActionKind.RECORD


class Status(enum.StrEnum):
    """One job's standing in a plan."""

    IN_SYNC = "in-sync"
    #: an action is planned for it.
    PENDING = "pending"
    #: backoff after a failure: the next try is later.
    WAITING = "waiting"
    #: its cluster could not be observed: nothing is known or done.
    UNKNOWN = "unknown"
    #: its spec is invalid in this revision: left as it is.
    INVALID = "invalid"
    #: gone from Git; kept running (pruning is a separate decision).
    REMOVED = "removed"
    #: this spec hash failed before (rolled back or refused): not retried until the spec changes.
    FAILED = "failed"
    #: the running job does not match the record (missing, failed, cancelled by hand).
    DRIFT = "drift"
    #: the change cannot be carried out as asked (e.g. a redeploy nonce without a savepoint path).
    REFUSED = "refused"
    #: paused (``flink-gitops pause``): its non-urgent action is held; still observed.
    PAUSED = "paused"
    #: outside its sync windows (a deny window is active, or no allow window is): its action waits.
    HELD = "held"


@dataclass(frozen=True, slots=True)
class JobReport:
    job: str
    cluster: str | None
    status: Status
    reason: str
    #: the live drift seen now, if any (also while it is healed or recovered).
    drift: DriftKind | None = None
    #: since when that drift is seen.
    drift_since: datetime | None = None
    #: why its non-urgent actions are held now (a pause or a sync window), whatever its status.
    hold: str | None = None


@dataclass(frozen=True)
class Plan:
    """What the planner decided: at most one action per job, a report for every job it heard of."""

    actions: tuple[Action, ...]
    reports: Mapping[str, JobReport]
    #: live jobs on reachable clusters that no record claims: reported, never touched.
    unmanaged: tuple[tuple[str, ObservedJob], ...] = ()
    #: clusters that could not be observed, with the reason.
    unreachable: Mapping[str, str] = field(default_factory=dict)
    #: jobs whose live drift started, changed or ended in this plan (the cycle records them).
    drift_changes: tuple[DriftChange, ...] = ()

    @property
    def in_sync(self) -> bool:
        return all(r.status is Status.IN_SYNC for r in self.reports.values())

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for report in self.reports.values():
            out[report.status.value] = out.get(report.status.value, 0) + 1
        return dict(sorted(out.items()))
