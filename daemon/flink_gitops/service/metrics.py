"""Prometheus metrics of the daemon: what each cycle saw and did, in a registry of its own.

:class:`Metrics` is updated by ``service.loop`` after every cycle and rendered
by the API at ``/metrics`` (viewer role). Gauges describe the last cycle (jobs
by plan status, live drift per job and kind, clusters up, the commit in force);
counters and the histogram accumulate (cycles by outcome, actions by kind and
outcome, cycle duration). ``flink_jobs_total``, ``flink_jobs_running`` and
``flink_jobs_failed`` are the names dashboards built for other Flink tooling
expect; here they count our jobs.

Durations are measured where they happen and handed up as data (the lower
layers never import this module): an upgrade's (start to the new job stable)
and a savepoint's (trigger to completed) in each ``ActionResult``, the Git
poll's in the source's ``PollResult``, the breaker state through
``Reconciler.breakers`` (``FlinkClient.breaker_state``), leadership through
``Reconciler.leadership``, audit records through the ``AuditTrail``'s counter
(records the API appends between cycles show at the next cycle).
``flink_checkpoint_duration_seconds{job}`` is the end-to-end duration of the
job's latest completed checkpoint as the cycle last read it: the cycle reads
checkpoint stats only for running, in-sync jobs every ``sync.checkpoint_track_s``
(at most ``sync.checkpoint_reads_per_cycle`` per cycle), never an extra REST call
per job per cycle, so a value can be that old and a job not read yet has none.
Neighbours: ``service.loop``, ``service.api``, ``execute.cycle`` (the result).
"""

from __future__ import annotations

import contextlib
from collections.abc import Mapping

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from flink_gitops.execute.cycle import AUDIT_ABORT, CycleResult
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind, Status

__all__ = ["CONTENT_TYPE", "Metrics"]

#: seconds: a steady cycle over thousands of jobs is well under a second; an upgrade takes minutes.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: seconds: an upgrade (stop with savepoint, start, stability wait) takes seconds to many minutes.
_UPGRADE_BUCKETS = (1, 2.5, 5, 10, 20, 30, 60, 120, 300, 600, 1200, 1800, 3600)
#: seconds: a savepoint of small state is sub-second; large state takes minutes.
_SAVEPOINT_BUCKETS = (0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)
#: seconds: an ls-remote is tens of milliseconds; a fetch of a big change, seconds.
_FETCH_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60)
#: the breaker gauge's values.
BREAKER_VALUES = {"closed": 0, "half-open": 1, "open": 2}


class Metrics:
    """The daemon's metrics (one instance per daemon, its own registry)."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.cycle_seconds = Histogram(
            "flink_gitops_cycle_duration_seconds", "Reconcile cycle duration.", buckets=_BUCKETS, registry=r
        )
        self.cycles = Counter("flink_gitops_cycles", "Reconcile cycles by outcome.", ["outcome"], registry=r)
        self.jobs = Gauge(
            "flink_gitops_jobs", "Jobs by plan status in the last cycle.", ["status"], registry=r
        )
        self.lifecycle = Gauge(
            "flink_gitops_jobs_lifecycle",
            "Managed jobs by recorded lifecycle state (stable, upgrading, failed, ...) after the last cycle.",
            ["lifecycle"],
            registry=r,
        )
        self.drift = Gauge(
            "flink_gitops_job_drift",
            "1 for each job with live drift, by kind.",
            ["flink_job", "kind"],
            registry=r,
        )
        self.actions = Counter(
            "flink_gitops_actions", "Actions by kind and outcome.", ["kind", "outcome"], registry=r
        )
        self.last_success = Gauge(
            "flink_gitops_last_successful_sync_timestamp_seconds",
            "When a cycle last ended with everything in sync (Unix time).",
            registry=r,
        )
        self.cluster_up = Gauge(
            "flink_gitops_cluster_up", "1 when the cluster could be observed.", ["cluster"], registry=r
        )
        self.commit = Gauge("flink_gitops_commit_info", "The Git commit in force.", ["commit"], registry=r)
        self.flink_jobs_total = Gauge("flink_jobs_total", "Jobs flink-gitops manages.", registry=r)
        self.flink_jobs_running = Gauge("flink_jobs_running", "Managed jobs running as deployed.", registry=r)
        self.flink_jobs_failed = Gauge("flink_jobs_failed", "Managed jobs that are FAILED.", registry=r)
        self.upgrade_seconds = Histogram(
            "flink_gitops_upgrade_duration_seconds",
            "Upgrades that succeeded, from their start to the new job stable.",
            ["cluster"],
            buckets=_UPGRADE_BUCKETS,
            registry=r,
        )
        self.savepoint_seconds = Histogram(
            "flink_gitops_savepoint_duration_seconds",
            "Savepoints (also stop-with-savepoint), from the trigger to completed.",
            ["cluster"],
            buckets=_SAVEPOINT_BUCKETS,
            registry=r,
        )
        self.git_fetch_seconds = Histogram(
            "flink_gitops_git_fetch_duration_seconds",
            "Git polls (ls-remote, and the fetch when the ref moved).",
            buckets=_FETCH_BUCKETS,
            registry=r,
        )
        self.git_last_success = Gauge(
            "flink_gitops_git_last_fetch_success_timestamp_seconds",
            "When a Git poll last succeeded (Unix time).",
            registry=r,
        )
        self.breaker = Gauge(
            "flink_gitops_breaker_state",
            "The cluster's circuit breaker: 0 closed, 1 half-open, 2 open.",
            ["cluster"],
            registry=r,
        )
        self.audit_records = Counter(
            "flink_gitops_audit_records", "Audit records appended by this process.", registry=r
        )
        self.audit_writable = Gauge(
            "flink_gitops_audit_writable",
            "0 after a cycle aborted because the audit trail was unavailable, 1 after a successful append.",
            registry=r,
        )
        self.audit_writable.set(1)
        self.leader = Gauge(
            "flink_gitops_leader", "1 when this instance leads the cluster.", ["cluster"], registry=r
        )
        self.checkpoint_seconds = Gauge(
            "flink_checkpoint_duration_seconds",
            "End-to-end duration of the job's latest completed checkpoint, as last read.",
            ["flink_job"],
            registry=r,
        )
        self._checkpointed: set[str] = set()
        self._audit_source: object = None
        self._audit_seen = 0
        self._drifting: set[tuple[str, str]] = set()
        self._clusters: set[str] = set()
        self._commit: str | None = None

    def observe_cycle(
        self,
        result: CycleResult,
        clusters: list[str],
        finished_at: float,
        *,
        leadership: Mapping[str, bool] | None = None,
        breakers: Mapping[str, str] | None = None,
    ) -> None:
        """One cycle's figures (``clusters``: every configured cluster; ``finished_at``: Unix time;
        ``leadership`` and ``breakers``: cluster → led by us, breaker state, after the cycle)."""
        self.cycle_seconds.observe(result.duration_s)
        self._durations(result)
        if result.aborted and result.aborted.startswith(AUDIT_ABORT):
            self.audit_writable.set(0)
        for cluster, led in (leadership or {}).items():
            self.leader.labels(cluster).set(1 if led else 0)
        for cluster, state in (breakers or {}).items():
            self.breaker.labels(cluster).set(BREAKER_VALUES.get(state, 2))
        for stale in self._checkpointed - set(result.plan.reports):
            self.checkpoint_seconds.remove(stale)
        self._checkpointed &= set(result.plan.reports)
        for job, seconds in result.checkpoint_s.items():
            self.checkpoint_seconds.labels(job).set(seconds)
            self._checkpointed.add(job)
        outcome = "in-sync" if result.in_sync else ("aborted" if result.aborted else "out-of-sync")
        self.cycles.labels(outcome).inc()
        counts = {s.value: 0 for s in Status}
        for report in result.plan.reports.values():
            counts[report.status.value] += 1
        for status, n in counts.items():
            self.jobs.labels(status).set(n)
        states = {s.value: 0 for s in JobLifecycle}
        for lifecycle in result.lifecycles.values():
            states[lifecycle] = states.get(lifecycle, 0) + 1
        for lifecycle, n in states.items():
            self.lifecycle.labels(lifecycle).set(n)
        drifting = {(n, r.drift.value) for n, r in result.plan.reports.items() if r.drift is not None}
        for gone in self._drifting - drifting:
            self.drift.remove(*gone)
        for job, kind in drifting:
            self.drift.labels(job, kind).set(1)
        self._drifting = drifting
        for done in result.results.values():
            self.actions.labels(
                done.kind.value, "ok" if done.ok else ("retry" if done.retry else "failed")
            ).inc()
        if result.in_sync:
            self.last_success.set(finished_at)
        for cluster in sorted(self._clusters - set(clusters)):
            self.cluster_up.remove(cluster)
            for gauge in (self.leader, self.breaker):
                with contextlib.suppress(KeyError):
                    gauge.remove(cluster)
        self._clusters = set(clusters)
        for cluster in clusters:
            self.cluster_up.labels(cluster).set(0 if cluster in result.plan.unreachable else 1)
        commit = result.commit or "worktree"
        if commit != self._commit:
            if self._commit is not None:
                self.commit.remove(self._commit)
            self.commit.labels(commit).set(1)
            self._commit = commit
        ours = [r for r in result.plan.reports.values() if "removed; its history is kept" not in r.reason]
        self.flink_jobs_total.set(len(ours))
        self.flink_jobs_running.set(
            sum(1 for r in ours if r.status is Status.IN_SYNC and r.reason.startswith("running job"))
        )
        self.flink_jobs_failed.set(sum(1 for r in ours if r.status is Status.FAILED))

    def _durations(self, result: CycleResult) -> None:
        where = {a.job: a.cluster for a in result.plan.actions}
        for done in result.results.values():
            cluster = where.get(done.job) or "unknown"
            if done.kind is ActionKind.UPGRADE and done.ok and done.duration_s is not None:
                self.upgrade_seconds.labels(cluster).observe(done.duration_s)
            if done.savepoint_s is not None:
                self.savepoint_seconds.labels(cluster).observe(done.savepoint_s)

    def observe_audit(self, source: object, appended: int, writable: bool) -> None:
        """After a cycle: the audit trail ``source`` has appended ``appended`` records so far and its
        last append worked (``writable``); a new trail (a reload) counts from zero."""
        if source is not self._audit_source:
            self._audit_source, self._audit_seen = source, 0
        new = max(appended - self._audit_seen, 0)
        self._audit_seen = appended
        if new:
            self.audit_records.inc(new)
        if not writable:
            self.audit_writable.set(0)
        elif new:
            self.audit_writable.set(1)

    def observe_poll(self, duration_s: float, ok: bool, at: float) -> None:
        """One Git poll: how long it took, and whether it succeeded (``at``: Unix time)."""
        self.git_fetch_seconds.observe(duration_s)
        if ok:
            self.git_last_success.set(at)

    def render(self) -> bytes:
        return generate_latest(self.registry)
