"""Prometheus metrics of the daemon: what each cycle saw and did, in a registry of its own.

:class:`Metrics` is updated by ``service.loop`` after every cycle and rendered
by the API at ``/metrics`` (viewer role). Gauges describe the last cycle (jobs
by plan status, live drift per job and kind, clusters up, the commit in force);
counters and the histogram accumulate (cycles by outcome, actions by kind and
outcome, cycle duration). ``flink_jobs_total``, ``flink_jobs_running`` and
``flink_jobs_failed`` are the names dashboards built for other Flink tooling
expect; here they count our jobs. Neighbours: ``service.loop``, ``service.api``,
``execute.cycle`` (the result).
"""

from __future__ import annotations

from prometheus_client import CONTENT_TYPE_LATEST as CONTENT_TYPE
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest

from flink_gitops.execute.cycle import CycleResult
from flink_gitops.plan.model import Status

__all__ = ["CONTENT_TYPE", "Metrics"]

#: seconds: a steady cycle over thousands of jobs is well under a second; an upgrade takes minutes.
_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300, 600)


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
        self.drift = Gauge(
            "flink_gitops_job_drift", "1 for each job with live drift, by kind.", ["job", "kind"], registry=r
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
        self._drifting: set[tuple[str, str]] = set()
        self._clusters: set[str] = set()
        self._commit: str | None = None

    def observe_cycle(self, result: CycleResult, clusters: list[str], finished_at: float) -> None:
        """One cycle's figures (``clusters``: every configured cluster; ``finished_at``: Unix time)."""
        self.cycle_seconds.observe(result.duration_s)
        outcome = "in-sync" if result.in_sync else ("aborted" if result.aborted else "out-of-sync")
        self.cycles.labels(outcome).inc()
        counts = {s.value: 0 for s in Status}
        for report in result.plan.reports.values():
            counts[report.status.value] += 1
        for status, n in counts.items():
            self.jobs.labels(status).set(n)
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

    def render(self) -> bytes:
        return generate_latest(self.registry)
