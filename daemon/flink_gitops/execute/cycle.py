"""One reconcile cycle: source → load → observe → plan → execute → record, one summary log line.

:class:`Reconciler` owns the order and the safety rules around the pure
planner and the procedures: it holds each acting cluster's lease (a cluster
led by another instance gets no action), writes the audit intent before every
action (no record, no action: the cycle stops at the first audit failure),
begins each operation with every id chosen up front (the next and rollback
job ids come from reserved generations of the job's uid), resumes operations
a crash left open before anything else, and turns errors into backoff by
type (temporary: retried later, the operation kept open where it can be
resumed; permanent: the spec hash is marked failed and not retried until it
changes). Pauses (read from the store every cycle) and ``sync.windows`` go to the planner, which
holds the non-urgent actions of paused and out-of-window jobs (``plan.windows``); a pause that
comes in while a cycle runs stops that job's planned action too. After the actions, one call
runs savepoint retention (``execute.retention``).
Neighbours: ``source`` / ``specs`` (desired state), ``observe``,
``plan.planner``, ``execute.procedures`` and ``execute.journal``,
``record.store`` and ``record.audit``, ``cli.sync``.
"""

from __future__ import annotations

import dataclasses
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from fnmatch import fnmatchcase
from typing import Any, Protocol, runtime_checkable

from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError
from flink_gitops.execute.artifacts import ArtifactCache
from flink_gitops.execute.errors import Busy, LeaseLost
from flink_gitops.execute.jar_registry import JarCluster, StoreJarRegistry
from flink_gitops.execute.jars_gc import JarCollector
from flink_gitops.execute.journal import StoreJournal, recorded_job, resumed
from flink_gitops.execute.operation import Operation
from flink_gitops.execute.pauses import as_pause
from flink_gitops.execute.ports import FlinkPort
from flink_gitops.execute.procedures import Procedures, RunSpec, Timeouts
from flink_gitops.execute.retention import DisposalPort, Retention, RetentionResult
from flink_gitops.flink.ids import job_id_for, new_trigger_id
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.causes import Explainable, with_causes
from flink_gitops.observe.observer import Observable, observe
from flink_gitops.observe.view import ClusterView
from flink_gitops.plan.health import window_restarts
from flink_gitops.plan.model import Action, ActionKind, HealthPolicy, Plan, RecordedJob, Status
from flink_gitops.plan.planner import plan
from flink_gitops.plan.windows import Holds, SyncWindow, urgent
from flink_gitops.record.audit import AuditError, AuditEvent, AuditOutcomeMissing, AuditTrail
from flink_gitops.record.store import (
    GLOBAL_PAUSE,
    KEEP,
    JobRecord,
    JobUpdate,
    Lease,
    NewSavepoint,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    cluster_lease,
)
from flink_gitops.settings import Settings
from flink_gitops.specs.errors import quote
from flink_gitops.specs.loader import DesiredState


class Cluster(FlinkPort, Observable, JarCluster, DisposalPort, Explainable, Protocol):
    """What a cluster's client must offer the cycle (``FlinkClient`` does)."""


#: how ``CycleResult.aborted`` begins when the audit trail could not be written (fail closed).
AUDIT_ABORT = "audit trail unavailable"


@runtime_checkable
class HasBreaker(Protocol):
    """A cluster client with a circuit breaker (``FlinkClient``)."""

    def breaker_state(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Revision:
    """The desired state of one revision, as the cycle needs it."""

    desired: DesiredState
    commit: str | None
    signer: str | None = None


@dataclass(frozen=True, slots=True)
class ActionResult:
    job: str
    kind: ActionKind
    ok: bool
    #: the job's lifecycle after the action (None: unknown, e.g. the action never started).
    lifecycle: JobLifecycle | None
    message: str
    #: a temporary failure: the job is tried again after its backoff.
    retry: bool = False
    #: the state the new job started from (an upgrade's savepoint), if any.
    savepoint: str | None = None
    #: seconds from the action's start to its end (an upgrade: until the new job is stable).
    duration_s: float | None = None
    #: seconds from a savepoint's trigger to its completion, when the action took one.
    savepoint_s: float | None = None
    #: not taken: a pause came in while the cycle ran (nothing failed; it waits for resume).
    held: bool = False


@dataclass
class CycleResult:
    """What one cycle saw and did."""

    commit: str | None
    plan: Plan
    results: dict[str, ActionResult] = field(default_factory=dict)
    dry_run: bool = False
    duration_s: float = 0.0
    #: why the cycle stopped early (audit unavailable), if it did.
    aborted: str | None = None
    #: errors in the revision's spec files (their jobs are left as they are): never "in sync".
    spec_errors: int = 0
    #: what savepoint retention did after the actions (None: it did not run, e.g. a dry run).
    retention: RetentionResult | None = None
    #: job → why its action was not taken: its cluster is led by another instance (observed only).
    led_elsewhere: dict[str, str] = field(default_factory=dict)
    #: job → end-to-end seconds of its latest completed checkpoint, for the jobs whose checkpoint
    #: stats this cycle read (``sync.checkpoint_track_s``, at most ``checkpoint_reads_per_cycle``).
    checkpoint_s: dict[str, float] = field(default_factory=dict)
    #: job → its recorded lifecycle state after the cycle (as recorded before it, or as its action left it).
    lifecycles: dict[str, str] = field(default_factory=dict)

    @property
    def in_sync(self) -> bool:
        """Everything matches Git: no job left pending, failed, unknown or drifting."""
        if self.aborted or self.spec_errors or (self.dry_run and self.plan.actions):
            return False
        for name, report in self.plan.reports.items():
            result = self.results.get(name)
            if result is not None:
                if not result.ok:
                    return False
            elif report.status is not Status.IN_SYNC:
                return False
        return True

    def problems(self) -> dict[str, str]:
        """job → one-line reason, for every job that is not in sync."""
        out: dict[str, str] = {}
        for name, report in sorted(self.plan.reports.items()):
            result = self.results.get(name)
            if result is not None and not result.ok:
                out[name] = f"{result.kind.value} failed: {result.message}"
            elif result is None and report.status is not Status.IN_SYNC:
                out[name] = f"{report.status.value}: {report.reason}"
        return out

    def outcomes(self) -> dict[str, list[str]]:
        """What happened to each job, one bucket per job (every job in exactly one): "in sync",
        an action's past tense ("upgraded"), "failed", "drifted", "led elsewhere", or its status."""
        out: dict[str, list[str]] = {}
        for name, report in sorted(self.plan.reports.items()):
            result = self.results.get(name)
            if name in self.led_elsewhere:
                bucket = "led elsewhere"
            elif result is not None and result.held:
                bucket = "paused"
            elif result is not None:
                bucket = _DONE.get(result.kind, result.kind.value) if result.ok else "failed"
            elif report.status is Status.IN_SYNC:
                bucket = "drifted" if report.drift is not None else "in sync"
            else:
                bucket = _STATUS_WORD.get(report.status.value, report.status.value)
            out.setdefault(bucket, []).append(name)
        return out

    def summary(self) -> str:
        """The cycle's one log line: what happened in words, then the machine fields, e.g.
        ``12 in sync, 1 upgraded (orders: savepoint-1a2b…), 0 failed, 1 drifted (cycle rev=… took=…)``."""
        buckets = self.outcomes()
        words: list[str] = [f"{len(buckets.pop('in sync', []))} in sync"]
        failed, drifted = buckets.pop("failed", []), buckets.pop("drifted", [])
        elsewhere = buckets.pop("led elsewhere", [])
        for bucket, jobs in sorted(buckets.items(), key=lambda kv: _ORDER.get(kv[0], len(_ORDER))):
            detail = ""
            if bucket == "upgraded":
                shown = [f"{job}: {_state(self.results[job].savepoint)}" for job in jobs[:3]]
                more = f", +{len(jobs) - 3} more" if len(jobs) > 3 else ""
                detail = f" ({', '.join(shown)}{more})"
            words.append(f"{len(jobs)} {bucket}{detail}")
        words += [f"{len(failed)} failed", f"{len(drifted)} drifted"]
        if elsewhere:
            words.append(f"{len(elsewhere)} led elsewhere")
        for cluster in self.plan.unreachable:
            words.append(f"cluster {cluster} unreachable")
        if self.plan.unmanaged:
            words.append(f"{len(self.plan.unmanaged)} unmanaged")
        if self.spec_errors:
            words.append(f"{self.spec_errors} spec error{'s' if self.spec_errors > 1 else ''}")
        if self.dry_run:
            words.append(f"dry run: {len(self.plan.actions)} action(s) planned")
        if self.aborted:
            words.append(f"aborted: {self.aborted}")
        rev = (self.commit or "worktree")[:12]
        machine = f"cycle rev={rev} jobs={len(self.plan.reports)} took={self.duration_s:.3f}s"
        return f"{', '.join(words)} ({machine})"


#: an action's outcome in the summary, by kind (a kind not listed shows its own name).
_DONE = {
    ActionKind.DEPLOY: "deployed",
    ActionKind.UPGRADE: "upgraded",
    ActionKind.RECOVER: "recovered",
    ActionKind.SUSPEND: "suspended",
    ActionKind.RESUME: "resumed",
    ActionKind.REDEPLOY: "redeployed",
    ActionKind.RUN: "started",
    ActionKind.SAVEPOINT: "savepoint taken",
    ActionKind.CHECKPOINT: "checkpoint taken",
    ActionKind.RECORD: "recorded",
    ActionKind.PRUNE: "pruned",
    ActionKind.RESUME_OPERATION: "resumed operation",
    ActionKind.GIVE_UP: "given up",
}
#: a job's status without an action, in the summary (a status not listed shows its own name).
_STATUS_WORD = {"drift": "drifted", "waiting": "backing off"}
#: where a bucket comes in the summary (unlisted ones after these).
_ORDER = {w: i for i, w in enumerate([*_DONE.values(), "pending", "backing off", "refused", "invalid"])}


def _state(path: str | None) -> str:
    """The state an upgraded job started from, short: ``savepoint-1a2b3c-…`` or ``chk-42``."""
    if not path:
        return "no state"
    name = path.rstrip("/").rsplit("/", 1)[-1] or path
    if len(name) > 24:
        name = name[:23] + "…"
    return name if name.startswith(("savepoint", "chk-")) else f"savepoint {name}"


def _pid_namespace() -> str:
    try:
        return str(os.stat("/proc/self/ns/pid").st_ino)
    except OSError:
        return "?"


def process_holder(instance: str) -> str:
    """A lease holder name unique to this process: ``<instance>:<pid>@<pid namespace>``."""
    return f"{instance}:{os.getpid()}@{_pid_namespace()}"


def holder_is_dead(holder: str, instance: str) -> bool:
    """True only when ``holder`` is a process of this instance, in this pid namespace, that no longer
    exists (a crashed run of ours): its lease may be taken over before it expires."""
    ours, sep, rest = holder.rpartition(":")
    pid_text, at, namespace = rest.partition("@")
    if not sep or not at or ours != instance or namespace != _pid_namespace() or namespace == "?":
        return False
    try:
        pid = int(pid_text)
    except ValueError:
        return False
    if pid == os.getpid() or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    except PermissionError:
        return False  # alive, another user's
    return False


#: progress(job, what): a line about an action in flight (the CLI shows it live).
Progress = Callable[[str, str], None]


class Reconciler:
    """Runs cycles against the configured clusters; one per process (it holds the cluster leases)."""

    def __init__(
        self,
        settings: Settings,
        store: Store,
        audit: AuditTrail,
        clients: Mapping[str, Cluster],
        clock: Clock,
        *,
        actor: str,
        instance: str,
        jars: ArtifactCache | None = None,
        heartbeat: Callable[[], None] | None = None,
    ) -> None:
        self.settings = settings
        self.store = store
        self.audit = audit
        self.clients = clients
        self.clock = clock
        self.actor = actor
        #: this daemon's instance name; the lease holder adds the process to it.
        self.instance = instance
        self.holder = process_holder(instance)
        self.jars = jars or ArtifactCache(
            settings.state_dir / "jars",
            allow_unpinned=settings.allow_unpinned_artifacts,
            download=settings.artifact_download,
        )
        self.leases: dict[str, Lease] = {}
        #: set to stop: the action in flight parks at its last recorded step (resumed on the next
        #: start) and no further action begins.
        self.stopping = threading.Event()
        #: called from every wait (a live loop for systemd's watchdog, not a timer).
        self.heartbeat = heartbeat
        sync = settings.sync
        self.timeouts = Timeouts(
            readiness_s=sync.readiness_timeout_s,
            stability_s=sync.stability_s,
            savepoint_s=max((c.savepoint_timeout_s for c in settings.clusters.values()), default=600.0),
            checkpoint_max_age_s=sync.max_checkpoint_age_s,
            savepoint_dir=sync.savepoint_dir,
        )
        self._last_renew: dict[str, float] = {}
        #: cluster → when this instance first saw it unled while at its cap (monotonic seconds).
        self._free_since: dict[str, float] = {}
        #: cluster → why this instance only observes it (the last leadership pass).
        self.observing: dict[str, str] = {}
        #: Flink job id -> (monotonic time its checkpoint stats were last read, the path seen then).
        self._tracked: dict[str, tuple[float, str | None]] = {}
        #: jars uploaded before, per (cluster, digest); renewed every cycle (one GET /jars each).
        self.registry = self._new_registry()
        #: jar cleanup runs in the first cycle, after a cycle that acted, and after a failed delete.
        self._collect_jars = True
        self.retention = Retention(
            store,
            audit,
            clients,
            clock,
            actor=actor,
            lead=self._lead,
            epoch_of=self._epoch,
            timeout_s=self.timeouts.savepoint_s,
        )
        #: Flink job id → why it failed (``observe.causes``; a terminal job's cause never changes).
        self._causes: dict[str, str] = {}
        #: sync.windows as the planner takes them; job globs that matched nothing (warned once).
        self.windows = tuple(
            SyncWindow(w.kind, w.schedule, w.duration_s, tuple(w.jobs), tuple(sorted(w.labels.items())))
            for w in settings.sync.windows
        )
        self._unmatched: set[str] = set()
        #: cluster → max_total_parallelism, for the clusters that have a cap.
        self.caps = {
            n: c.max_total_parallelism
            for n, c in settings.clusters.items()
            if c.max_total_parallelism is not None
        }

    # --- leases ------------------------------------------------------------------------------

    def _lead(self, clusters: set[str]) -> dict[str, str]:
        """Take or renew the lease of each cluster; cluster → why not, for those we cannot lead."""
        ttl = self.settings.store.lease_ttl_s
        refused: dict[str, str] = {}
        for cluster in sorted(clusters):
            held = self.leases.get(cluster)
            lease = None
            if held is not None:
                try:
                    lease = self.store.leases.renew(held, ttl)
                except FlinkGitOpsError:
                    lease = None
            if lease is None:
                self.leases.pop(cluster, None)
                over = self._over_cap(cluster)
                if over is not None:
                    refused[cluster] = over
                    continue
                lease = self.store.leases.acquire(self.holder, ttl, name=cluster_lease(cluster))
            if lease is None:
                current = self.store.leases.current(cluster_lease(cluster))
                if current is not None and holder_is_dead(current.holder, self.instance):
                    logger.warning(
                        "cluster {}: taking over the lease of {}, which is dead", cluster, current.holder
                    )
                    lease = self.store.leases.take_over(
                        self.holder, ttl, name=cluster_lease(cluster), from_holder=current.holder
                    )
            if lease is None:
                current = self.store.leases.current(cluster_lease(cluster))
                who = current.holder if current is not None else "another instance"
                refused[cluster] = f"cluster {cluster!r} is led by {who}"
                self.leases.pop(cluster, None)
                continue
            if held is None or held.epoch != lease.epoch:
                logger.info("cluster {}: leading (lease epoch {})", cluster, lease.epoch)
            self.leases[cluster] = lease
            self._free_since.pop(cluster, None)
            self._last_renew[cluster] = self.clock.monotonic()
        return refused

    def _over_cap(self, cluster: str) -> str | None:
        """Why a free ``cluster`` is not taken now (``store.max_clusters_per_instance``), or None.

        Within the cap it is taken at once. Beyond it, only once this instance has seen it unled
        for one lease TTL: a replica with room takes it first, and none stays unled for long."""
        cap = self.settings.store.max_clusters_per_instance
        if cap is None or len(self.leases) < cap:
            return None
        if self.store.leases.current(cluster_lease(cluster)) is not None:
            self._free_since.pop(cluster, None)
            return None  # held by someone: acquire refuses it, or it is a dead holder's
        now = self.clock.monotonic()
        since = self._free_since.setdefault(cluster, now)
        if now - since >= self.settings.store.lease_ttl_s:
            return None
        return f"cluster {cluster!r} waits for a replica with room (this one leads {cap}, its cap)"

    def lead_all(self) -> dict[str, str]:
        """The daemon's leadership pass: keep or take every configured cluster's lease (within the
        cap); cluster → why not. A cluster led elsewhere is observed only; a change is logged."""
        refused = self._lead(set(self.clients))
        for cluster, why in refused.items():
            if self.observing.get(cluster) != why:
                logger.info("{}: observing only", why)
        self.observing = dict(refused)
        return refused

    def leadership(self) -> dict[str, bool]:
        """cluster → whether this instance leads it now (for /readyz and the leadership metric)."""
        return {cluster: cluster in self.leases for cluster in sorted(self.clients)}

    def breakers(self) -> dict[str, str]:
        """cluster → its circuit breaker's state (closed, half-open, open), for the clients that
        have one (``FlinkClient.breaker_state``; the metrics)."""
        return {n: c.breaker_state() for n, c in sorted(self.clients.items()) if isinstance(c, HasBreaker)}

    def _lost(self, clusters: tuple[str, ...]) -> Callable[[], bool]:
        """A cancel hook for long waits: renews the leases now and then; True once one is lost."""
        ttl = self.settings.store.lease_ttl_s

        def lost() -> bool:
            if self.heartbeat is not None:
                self.heartbeat()
            if self.stopping.is_set():
                return True
            for cluster in clusters:
                if self.clock.monotonic() - self._last_renew.get(cluster, 0.0) < ttl / 3:
                    continue
                held = self.leases.get(cluster)
                if held is None:
                    return True
                try:
                    self.leases[cluster] = self.store.leases.renew(held, ttl)
                except FlinkGitOpsError:
                    logger.error("lease for cluster {} lost: stopping the operation", cluster)
                    self.leases.pop(cluster, None)
                    return True
                self._last_renew[cluster] = self.clock.monotonic()
            return False

        return lost

    def release(self) -> None:
        for lease in self.leases.values():
            try:
                self.store.leases.release(lease)
            except FlinkGitOpsError as exc:
                logger.warning("could not release lease {}: {}", lease.name, exc)
        self.leases.clear()

    # --- the cycle ---------------------------------------------------------------------------

    def recorded(self, desired: DesiredState) -> dict[str, RecordedJob]:
        """Every job as recorded. Spec bodies are read only for jobs whose spec may have changed
        (hash or full digest differs from Git's, or gone from Git): a steady-state cycle over
        10,000 jobs decodes none of them."""
        open_ops = self.store.operations.open_by_job()
        rows = {j.name: j for j in self.store.jobs.all(specs=False)}
        wanted = desired.valid_jobs()
        stale = [
            name
            for name, job in rows.items()
            if job.last_reconciled is not None
            and (
                name not in wanted
                or wanted[name].spec_hash != job.last_reconciled.hash
                or wanted[name].full_digest != job.last_reconciled.full_digest
            )
        ]
        rows.update(self.store.jobs.get_many(stale))
        return {name: recorded_job(j, open_ops.get(name)) for name, j in rows.items()}

    def health(self) -> HealthPolicy:
        sync = self.settings.sync
        return HealthPolicy(
            drift=sync.drift,
            restart_budget=sync.restart_budget,
            restart_window_s=sync.restart_window_s,
            backoff_initial_s=sync.backoff_initial_s,
            backoff_max_s=sync.backoff_max_s,
        )

    def holds(self, names: set[str]) -> Holds:
        """The pauses (read from the store every cycle: replicas share them) and sync windows.
        A window's job glob that matches none of ``names`` is warned about once (a typo holds
        nothing)."""
        for w in self.windows:
            for pattern in w.jobs:
                if pattern not in self._unmatched and not any(fnmatchcase(n, pattern) for n in names):
                    self._unmatched.add(pattern)
                    logger.warning("sync window {}: jobs entry {!r} matches no job", w.describe(), pattern)
        return Holds(self.windows, tuple(as_pause(p) for p in self.store.pauses.all()))

    def plan(self, revision: Revision, *, only: list[str] | None = None) -> Plan:
        return self._plan(revision, only)[0]

    def _plan(
        self, revision: Revision, only: list[str] | None
    ) -> tuple[Plan, dict[str, ClusterView], dict[str, RecordedJob]]:
        desired = self.jars.pin_unpinned(revision.desired)  # unpinned jars hashed by their bytes
        observed = observe(self.clients)
        recorded = self.recorded(desired)
        ours = ((r.cluster, r.flink_job_id) for r in recorded.values() if r.flink_job_id is not None)
        observed = with_causes(observed, self.clients, ours, self._causes)
        the_plan = plan(
            desired,
            observed,
            recorded,
            self.clock.now(),
            only=only,
            prune=self.settings.sync.prune,
            max_prune_fraction=self.settings.sync.max_prune_fraction,
            health=self.health(),
            caps=self.caps,
            missed_run_grace_s=self.settings.sync.missed_run_grace_s,
            holds=self.holds(set(desired.jobs) | set(recorded)),
        )
        return the_plan, observed, recorded

    def cycle(
        self,
        revision: Revision,
        *,
        dry_run: bool = False,
        only: list[str] | None = None,
        progress: Progress | None = None,
        tree: Any = None,
    ) -> CycleResult:
        """One pass; never raises for a job's failure (each is in the result), only for the store.
        Every line logged meanwhile carries the commit (``logger.contextualize``)."""
        bound = {"commit": revision.commit} if revision.commit else {}
        with logger.contextualize(**bound):
            return self._cycle(revision, dry_run=dry_run, only=only, progress=progress, tree=tree)

    def _cycle(
        self,
        revision: Revision,
        *,
        dry_run: bool,
        only: list[str] | None,
        progress: Progress | None,
        tree: Any,
    ) -> CycleResult:
        started_at = self.clock.now()
        t0 = time.perf_counter()
        the_plan, observed, recorded = self._plan(revision, only)
        result = CycleResult(
            revision.commit, the_plan, dry_run=dry_run, spec_errors=len(revision.desired.errors)
        )
        if tree is not None:
            self.jars.use_tree(tree)
        self.registry = self._new_registry()
        track = [] if dry_run else self._due_for_tracking(the_plan, observed, recorded)
        leading = {c for a in the_plan.actions for c in a.clusters}
        leading |= {d.cluster for d in the_plan.drift_changes} | {rec.cluster for rec in track}
        if not dry_run and leading:
            refused = self._lead(leading)
            try:
                self._record_drift(the_plan, revision, refused)
            except AuditError as exc:
                result.aborted = f"{AUDIT_ABORT}: {exc}"
                logger.error("audit unavailable: no actions this cycle: {}", exc)
            for action in () if result.aborted else the_plan.actions:
                if self.stopping.is_set():
                    result.aborted = "stopping: the remaining actions wait for the next start"
                    break
                blocked = [refused[c] for c in sorted(action.clusters) if c in refused]
                if blocked:
                    result.results[action.job] = ActionResult(
                        action.job, action.kind, False, None, blocked[0]
                    )
                    result.led_elsewhere[action.job] = blocked[0]
                    continue
                paused = None if urgent(action, Status.PAUSED) else self._paused_since_plan(action.job)
                if paused is not None:  # paused while this cycle ran: the action waits
                    result.results[action.job] = ActionResult(
                        action.job, action.kind, False, None, paused, retry=True, held=True
                    )
                    continue
                try:
                    result.results[action.job] = self._act(action, revision, progress)
                except AuditError as exc:
                    # fail closed: no record, no action; nothing more this cycle
                    taken = isinstance(exc, AuditOutcomeMissing)
                    result.aborted = f"{AUDIT_ABORT}: {exc}"
                    what = "taken, but its outcome is not in the audit trail" if taken else "not taken"
                    result.results[action.job] = ActionResult(
                        action.job, action.kind, False, None, f"{what}: {exc}"
                    )
                    logger.error("audit unavailable: no further actions this cycle: {}", exc)
                    break
            if not result.aborted:
                result.checkpoint_s = self._track_checkpoints([r for r in track if r.cluster not in refused])
        if not dry_run and not result.aborted:
            self._clean_jars(the_plan, acted=bool(result.results))
            result.retention = self.retention.run(revision.desired, commit=revision.commit, only=only)
        result.lifecycles = {name: rec.lifecycle.value for name, rec in recorded.items()} | {
            name: done.lifecycle.value for name, done in result.results.items() if done.lifecycle is not None
        }
        result.duration_s = time.perf_counter() - t0
        logger.info(result.summary())
        if dry_run:
            return result  # a plan, not a reconcile: nothing is recorded
        self.store.cycles.record(
            started_at=started_at,
            finished_at=self.clock.now(),
            revision=revision.commit,
            counts=the_plan.counts() | {"acted": sum(1 for r in result.results.values() if r.ok)},
            outcome="in-sync" if result.in_sync else ("aborted" if result.aborted else "out-of-sync"),
            detail=result.aborted,
        )
        return result

    def _paused_since_plan(self, job: str) -> str | None:
        """Why ``job`` is paused now, when a pause came in after the plan (a long cycle)."""
        found = {p.scope: p for p in self.store.pauses.all()}
        pause = found.get(job) or found.get(GLOBAL_PAUSE)
        return f"not taken: {as_pause(pause).describe()}" if pause is not None else None

    # --- one action ----------------------------------------------------------------------------

    def _procedures(self, action_clusters: tuple[str, ...], progress: Progress | None) -> Procedures:
        epochs = {c: lease.epoch for c, lease in self.leases.items()}
        return Procedures(
            self.clients,
            StoreJournal(self.store, epochs),
            self.jars,
            self.clock,
            self.timeouts,
            cancelled=self._lost(action_clusters),
            on_step=(lambda job, step: progress(job, step)) if progress is not None else None,
            registry=self.registry,
        )

    # --- jars ----------------------------------------------------------------------------------

    def _epoch(self, cluster: str) -> int:
        """The epoch of the lease this instance holds for ``cluster`` (it fences that cluster's writes)."""
        return self.leases[cluster].epoch

    def _new_registry(self) -> StoreJarRegistry:
        return StoreJarRegistry(self.store, self.clients, self._epoch)

    def _clean_jars(self, the_plan: Plan, *, acted: bool) -> None:
        """Delete the jars we uploaded that nothing references (``execute.jars_gc``); never fails."""
        if not (acted or self._collect_jars):
            return
        collector = JarCollector(
            self.store,
            self.clients,
            self.audit,
            actor=self.actor,
            lead=self._lead,
            epoch_of=self._epoch,
        )
        try:
            done = collector.collect(skip=the_plan.unreachable)
        except FlinkGitOpsError as exc:
            logger.warning("jar cleanup skipped this cycle: {}", exc)
            self._collect_jars = True
            return
        self._collect_jars = bool(done.failed or done.aborted)

    def _act(self, action: Action, revision: Revision, progress: Progress | None) -> ActionResult:
        """One action, its job and cluster bound to every line logged meanwhile, timed."""
        t0 = self.clock.monotonic()
        with logger.contextualize(job=action.job, cluster=action.cluster):
            result = self._act_once(action, revision, progress)
        return dataclasses.replace(result, duration_s=self.clock.monotonic() - t0)

    def _act_once(self, action: Action, revision: Revision, progress: Progress | None) -> ActionResult:
        clusters = tuple(sorted(action.clusters))
        event = AuditEvent(
            action=f"job.{action.kind.value}",
            actor=self.actor,
            job=action.job,
            cluster=action.cluster,
            git_commit=revision.commit,
            git_signer=revision.signer,
            spec_hash=action.desired.spec_hash if action.desired is not None else None,
            job_id_before=action.current_job_id,
            details={"reason": action.reason, "restore": str(action.restore), "stop": action.stop},
        )
        procs = self._procedures(clusters, progress)
        op: Operation | None = None
        try:
            with self.audit.guard(event) as scope:
                if progress is not None:
                    progress(action.job, action.reason)
                op = self._begin(action, revision)
                outcome = procs.execute(op)
                scope.set(job_id_after=outcome.flink_job_id, savepoint=outcome.savepoint)
                if outcome.lifecycle in (JobLifecycle.FAILED, JobLifecycle.ROLLED_BACK):
                    scope.outcome(outcome.lifecycle.value)
        except AuditError:
            raise
        except LeaseLost as exc:
            if self.stopping.is_set():
                logger.info("job {}: parked at its last recorded step: stopping", action.job)
                return ActionResult(action.job, action.kind, False, None, "parked: stopping", retry=True)
            self._back_off(action, exc)
            return ActionResult(action.job, action.kind, False, None, str(exc), retry=True)
        except TemporaryError as exc:
            self._back_off(action, exc)
            return ActionResult(action.job, action.kind, False, None, str(exc), retry=True)
        except PermanentError as exc:
            self._fail(action, op, exc)
            return ActionResult(action.job, action.kind, False, JobLifecycle.FAILED, str(exc))
        ok = outcome.lifecycle not in (JobLifecycle.FAILED, JobLifecycle.ROLLED_BACK)
        message = outcome.error or f"{outcome.lifecycle.value}, job {outcome.flink_job_id or '-'}"
        return ActionResult(
            action.job,
            action.kind,
            ok,
            outcome.lifecycle,
            message,
            savepoint=outcome.savepoint,
            savepoint_s=procs.savepoint_s,
        )

    def _begin(self, action: Action, revision: Revision) -> Operation:
        """Write the operation's intent with every id it will use, before any side effect (one unit)."""
        if action.kind is ActionKind.RESUME_OPERATION:
            assert action.operation_id is not None
            record = self.store.operations.get(action.operation_id)
            assert record is not None
            logger.info("job {}: resuming operation {} from step {}", action.job, record.op_id, record.step)
            return resumed(record)
        job = self.store.jobs.get(action.job)
        if action.desired is not None:
            spec = RunSpec.of(action.desired, revision.commit).to_record()
        elif job is not None and job.last_reconciled is not None:
            spec = job.last_reconciled.spec  # a manual savepoint: the spec that runs
        else:
            raise PermanentError(f"job {action.job!r} has no spec to act on")
        epoch = self.leases[action.cluster].epoch
        also = {}
        if action.from_cluster and action.from_cluster != action.cluster:
            also[cluster_lease(action.from_cluster)] = self.leases[action.from_cluster].epoch
        file = action.desired.file if action.desired is not None else None
        with self.store.unit(epoch=epoch, lease=cluster_lease(action.cluster), also=also) as uow:
            if job is None:
                uow.jobs.create(action.job, action.cluster, file=file)
            elif job.deleted:
                uow.jobs.new_life(action.job, action.cluster, file=file)
            job = uow.jobs.next_generation(action.job, by=2)
            extra: dict[str, Any] = {}
            if action.kind is ActionKind.RECOVER or (action.kind is ActionKind.RUN and action.drift):
                window = window_restarts(job.restarts, self.clock.now(), self.health())
                job = uow.jobs.update(action.job, JobUpdate(restarts=(*window, self.clock.now())))
                if action.restore.source == "newest":
                    extra["candidates"] = self._candidates(job)
            ids: dict[str, Any] = {
                "cluster": action.cluster,
                "from_cluster": action.from_cluster or action.cluster,
                "from_job_id": action.current_job_id,
                "lifecycle": job.state.value,
                "stop": action.stop,
                "restore": action.restore.source,
                "restore_path": action.restore.path,
                "trigger_id": new_trigger_id(),
                "job_id": job_id_for(job.uid, job.generation - 1),
                "rollback_job_id": job_id_for(job.uid, job.generation),
                "spec": spec,
                "stable": job.last_stable.spec if job.last_stable is not None else None,
                "savepoint_before": job.savepoint,
                "origin": action.origin,
                **extra,
                "scheduled_at": action.scheduled_at.isoformat() if action.scheduled_at else None,
            }
            record = uow.operations.begin(action.job, action.kind.value, ids, cluster=action.cluster)
        return Operation(record.op_id, action.kind, action.job, dict(ids))

    def restart(self, name: str) -> JobRecord:
        """``flink-gitops restart JOB``: forget a given-up job's failure (its failed spec hash, the
        restarts in the window, the backoff) so the next cycle recovers or retries it; audited."""
        job = self.store.jobs.get(name)
        if job is None or job.deleted:
            raise PermanentError(f"no job named {quote(name)} is recorded")
        refused = self._lead({job.cluster})
        if refused:
            raise PermanentError(refused[job.cluster])
        event = AuditEvent(
            action="job.restart",
            actor=self.actor,
            job=name,
            cluster=job.cluster,
            job_id_before=job.flink_job_id,
            details={
                "failed_hash": job.failed_hash or "",
                "restarts_in_window": len(job.restarts),
                "last_error": (job.last_error or "")[:500],
            },
        )
        lease = self.leases[job.cluster]
        with (
            self.audit.guard(event),
            self.store.unit(epoch=lease.epoch, lease=cluster_lease(job.cluster)) as uow,
        ):
            return uow.jobs.update(
                name, JobUpdate(failed_hash=None, restarts=(), next_attempt_at=None, attempts=0)
            )

    def _candidates(self, job: JobRecord) -> list[dict[str, Any]]:
        """RECOVER: the job's recorded states (current savepoint, retained checkpoints of this life)."""
        out: list[dict[str, Any]] = []
        if job.savepoint:
            at = job.savepoint_at or job.updated_at
            out.append({"path": job.savepoint, "at_ms": int(at.timestamp() * 1000)})
        for sp in self.store.snapshots.history(job.name, uid=job.uid, limit=20):
            out.append({"path": sp.path, "at_ms": int(sp.created_at.timestamp() * 1000)})
        return out

    # --- live drift and checkpoint tracking ----------------------------------------------------

    def _record_drift(self, the_plan: Plan, revision: Revision, refused: Mapping[str, str]) -> None:
        """Write each job's drift as this plan sees it (started, changed or ended), audited first."""
        for change in the_plan.drift_changes:
            if change.cluster in refused or change.cluster not in self.leases:
                continue
            kind = change.kind.value if change.kind is not None else None
            if kind is not None:
                logger.warning("job {}: live drift {}: {}", change.job, kind, change.detail)
            else:
                logger.info("job {}: live drift ended", change.job)
            event = AuditEvent(
                action="job.drift" if kind is not None else "job.drift-ended",
                actor=self.actor,
                job=change.job,
                cluster=change.cluster,
                git_commit=revision.commit,
                details={"kind": kind or "", "detail": (change.detail or "")[:500]},
            )
            lease = self.leases[change.cluster]
            with (
                self.audit.guard(event),
                self.store.unit(epoch=lease.epoch, lease=cluster_lease(change.cluster)) as uow,
            ):
                uow.jobs.update(
                    change.job,
                    JobUpdate(drift_kind=kind, drift_since=change.since, drift_detail=change.detail),
                )

    def _due_for_tracking(
        self, the_plan: Plan, observed: Mapping[str, ClusterView], recorded: Mapping[str, RecordedJob]
    ) -> list[RecordedJob]:
        """Running, in-sync jobs whose retained checkpoint was not read for ``checkpoint_track_s``
        (at most ``checkpoint_reads_per_cycle``, the longest unread first)."""
        sync = self.settings.sync
        if sync.checkpoint_reads_per_cycle == 0:
            return []
        now = self.clock.monotonic()
        due: list[tuple[float, RecordedJob]] = []
        for name, report in the_plan.reports.items():
            rec = recorded.get(name)
            if report.status is not Status.IN_SYNC or rec is None or rec.flink_job_id is None:
                continue
            view = observed.get(rec.cluster)
            seen = view.jobs.get(rec.flink_job_id) if view is not None else None
            if seen is None or seen.state != "RUNNING":
                continue
            last = self._tracked.get(rec.flink_job_id)
            if last is None or now - last[0] >= sync.checkpoint_track_s:
                due.append((last[0] if last is not None else float("-inf"), rec))
        due.sort(key=lambda item: (item[0], item[1].name))
        return [rec for _, rec in due[: sync.checkpoint_reads_per_cycle]]

    def _track_checkpoints(self, jobs: list[RecordedJob]) -> dict[str, float]:
        """Record each job's latest completed checkpoint (what a recovery restores after its
        JobManager lost it): read from Flink's checkpoint stats for that job id, never from disk.
        Job → the end-to-end seconds of that checkpoint, for the jobs read."""
        durations: dict[str, float] = {}
        for rec in jobs:
            with logger.contextualize(job=rec.name, cluster=rec.cluster):
                took = self._track_one(rec)
            if took is not None:
                durations[rec.name] = took
        return durations

    def _track_one(self, rec: RecordedJob) -> float | None:
        assert rec.flink_job_id is not None
        job_id = rec.flink_job_id
        previous = self._tracked.get(job_id)
        try:
            stats = self.clients[rec.cluster].checkpoints(job_id)
        except FlinkGitOpsError as exc:
            logger.debug("job {}: checkpoint stats not read: {}", rec.name, exc)
            return None
        path, at_ms = stats.latest_completed_path, stats.latest_completed_at_ms
        took = stats.latest_completed_duration_s
        self._tracked[job_id] = (self.clock.monotonic(), path)
        if not path or (previous is not None and previous[1] == path) or rec.cluster not in self.leases:
            return took
        when = datetime.fromtimestamp(at_ms / 1000, UTC) if at_ms else self.clock.now()
        lease = self.leases[rec.cluster]
        try:
            self.store.snapshots.record(
                NewSavepoint(
                    rec.name,
                    path,
                    SnapshotKind.CHECKPOINT,
                    SnapshotOrigin.RETAINED,
                    flink_job_id=job_id,
                    created_at=when,
                    make_current=False,
                ),
                epoch=lease.epoch,
                lease=cluster_lease(rec.cluster),
            )
        except FlinkGitOpsError as exc:
            logger.warning("job {}: checkpoint {} not recorded: {}", rec.name, path, exc)
        return took

    def manual_savepoint(self, name: str) -> str:
        """``flink-gitops savepoint JOB``: a savepoint of the running job now; its location. Busy
        (temporary, nothing done) while another operation of the job is open."""
        job = self.store.jobs.get(name)
        if job is None or job.deleted:
            raise PermanentError(f"no job named {quote(name)} is recorded")
        if not job.state.runs_a_job or job.flink_job_id is None:
            raise PermanentError(
                f"job {name!r} is {job.state.value}: no running Flink job to take a savepoint of"
            )
        busy = self.store.operations.open_by_job().get(name)
        if busy is not None:
            raise Busy(
                f"job {name!r} has an open {busy.kind} operation (at step {busy.step}): nothing was done; "
                "take the savepoint once it has finished"
            )
        refused = self._lead({job.cluster})
        if refused:
            raise PermanentError(refused[job.cluster])
        action = Action(
            ActionKind.SAVEPOINT,
            name,
            job.cluster,
            "manual savepoint",
            from_cluster=job.cluster,
            current_job_id=job.flink_job_id,
            origin="manual",
        )
        commit = job.last_reconciled.commit if job.last_reconciled is not None else None
        result = self._act(action, Revision(DesiredState(commit, {}, (), frozenset(), {}, ()), commit), None)
        if not result.ok:
            failed = TemporaryError if result.retry else PermanentError  # may the caller ask again
            raise failed(f"savepoint of job {name!r} failed: {result.message}")
        latest = self.store.jobs.get(name)
        assert latest is not None
        assert latest.savepoint is not None
        return latest.savepoint

    def _back_off(self, action: Action, exc: TemporaryError) -> None:
        job = self.store.jobs.get(action.job)
        if job is None or action.cluster not in self.leases:
            return
        delay = exc.delay or min(
            self.settings.sync.backoff_max_s,
            self.settings.sync.backoff_initial_s * 2 ** min(job.attempts, 16),
        )
        when: datetime = self.clock.now() + timedelta(seconds=delay)
        logger.warning("job {}: {} (retrying after {:.0f} s)", action.job, exc, delay)
        with self.store.unit(
            epoch=self.leases[action.cluster].epoch, lease=cluster_lease(action.cluster)
        ) as uow:
            uow.jobs.record_failure(action.job, error=str(exc), next_attempt_at=when)

    def _fail(self, action: Action, op: Operation | None, exc: PermanentError) -> None:
        """A permanent failure: finish the open operation (if any) and mark the spec hash failed."""
        logger.error("job {}: {} failed: {}", action.job, action.kind.value, exc)
        if action.cluster not in self.leases:
            return
        epoch, lease = self.leases[action.cluster].epoch, cluster_lease(action.cluster)
        spec_hash = action.desired.spec_hash if action.desired is not None else None
        current = self.store.operations.get(op.op_id) if op is not None else None
        known = self.store.jobs.get(action.job) is not None
        with self.store.unit(epoch=epoch, lease=lease) as uow:
            if current is not None and current.state is OperationState.STARTED and op is not None:
                # Stopped or cancelled already: the job is down, its state is at state_path.
                touched = op.has("stopped") or op.has("cancelled")
                update = JobUpdate(
                    state=JobLifecycle.FAILED if touched else KEEP,
                    flink_job_id=None if touched else KEEP,
                    savepoint=op.ids.get("state_path") or KEEP,
                    failed_hash=spec_hash,
                    last_error=str(exc),
                )
                uow.operations.finish(op.op_id, OperationState.FAILED, {"error": str(exc)}, job=update)
            elif known:
                uow.jobs.update(action.job, JobUpdate(failed_hash=spec_hash, last_error=str(exc)))
