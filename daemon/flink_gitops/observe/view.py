"""What one observation of the clusters saw, as plain data (no I/O here).

The observer (:mod:`.observer`) builds a :class:`ClusterView` per cluster from
one ``GET /jobs/overview``; the planner reads them. A cluster that could not be
observed is a view with ``reachable=False``: its jobs are unknown, never
missing, and the planner gives it no action at all. Neighbours: ``observe.observer``
(builds views), ``plan.planner`` (reads them).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

#: Flink job states after which the job never runs again (SUSPENDED is not one: HA recovers it).
TERMINAL_STATES = frozenset({"FINISHED", "CANCELED", "FAILED"})


@dataclass(frozen=True, slots=True)
class ObservedJob:
    """One job as ``/jobs/overview`` lists it."""

    job_id: str
    name: str
    state: str
    #: epoch milliseconds, -1 when Flink gives none.
    start_time: int = -1
    #: the job's total task count (the sum of its vertices' parallelism); None when not given.
    tasks: int | None = None

    @property
    def terminal(self) -> bool:
        return self.state in TERMINAL_STATES


@dataclass(frozen=True, slots=True)
class ClusterView:
    """One cluster as observed in this cycle."""

    cluster: str
    reachable: bool
    #: job id → job; empty when not reachable.
    jobs: Mapping[str, ObservedJob] = field(default_factory=dict)
    #: why the cluster could not be observed (no secrets: built from error types and names).
    error: str | None = None
    #: slots in all and free (``GET /overview``); None: not observed.
    slots_total: int | None = None
    slots_free: int | None = None
    #: the cluster's ``parallelism.default`` (for specs without a parallelism); None: not known.
    default_parallelism: int | None = None
    #: job id → the cause of its failure (``GET /jobs/:id/exceptions``), for failed jobs of ours.
    causes: Mapping[str, str] = field(default_factory=dict)

    @classmethod
    def unreachable(cls, cluster: str, error: str) -> ClusterView:
        return cls(cluster, False, {}, error)

    def live_jobs(self) -> list[ObservedJob]:
        """Jobs that are not terminal, by id."""
        return [j for _, j in sorted(self.jobs.items()) if not j.terminal]
