"""Observe every cluster once per cycle: ``GET /jobs/overview`` and ``GET /overview`` each, all
clusters at once (``/overview`` gives the slots a deploy needs; the cluster's default parallelism
is read once per client from ``/jobmanager/config``).

Never one call per job: details, checkpoints and exceptions are asked later,
by the executor, only for jobs that need an action. A cluster whose call fails
(any of them) with one of our errors (unreachable, timed out, refused, breaker open) becomes
an unreachable :class:`~.view.ClusterView`, so the planner gives it no action
and its jobs are unknown rather than missing (graceful degradation); the
client's breaker counts the failure. Anything else is a bug and propagates.
Neighbours: ``flink.client`` (the calls), ``observe.view`` (the result),
``plan.planner`` (reads it).
"""

from __future__ import annotations

import contextvars
from collections.abc import Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Protocol

from loguru import logger

from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.flink.models import ClusterOverview, JobsOverview
from flink_gitops.observe.view import ClusterView, ObservedJob

#: at most this many clusters are asked at the same time.
MAX_PARALLEL = 16


class Observable(Protocol):
    """What the observer needs of a cluster's client (``FlinkClient`` has it)."""

    def jobs_overview(self) -> JobsOverview: ...

    def overview(self) -> ClusterOverview: ...

    def default_parallelism(self) -> int: ...


def observe_cluster(name: str, client: Observable) -> ClusterView:
    """One overview call → the cluster's view; a failure is an unreachable view naming the error type.
    The cluster is bound to every line logged meanwhile (the client's retries)."""
    with logger.contextualize(cluster=name):
        return _observe_cluster(name, client)


def _observe_cluster(name: str, client: Observable) -> ClusterView:
    try:
        overview = client.jobs_overview()
        slots = client.overview()
        default = client.default_parallelism()
    except FlinkGitOpsError as exc:
        return ClusterView.unreachable(name, f"{type(exc).__name__}: {exc}")
    jobs = {j.jid: ObservedJob(j.jid, j.name, j.state, j.start_time, j.total_tasks) for j in overview.jobs}
    return ClusterView(
        name,
        True,
        jobs,
        slots_total=slots.slots_total,
        slots_free=slots.slots_available,
        default_parallelism=default,
    )


def observe(clients: Mapping[str, Observable]) -> dict[str, ClusterView]:
    """Every cluster's view, asked concurrently; keyed by cluster name."""
    if len(clients) <= 1:
        return {name: observe_cluster(name, c) for name, c in clients.items()}
    with ThreadPoolExecutor(
        max_workers=min(MAX_PARALLEL, len(clients)), thread_name_prefix="observe"
    ) as pool:
        # each in a copy of this context: lines logged there carry the cycle's bound commit
        futures = {
            name: pool.submit(contextvars.copy_context().run, observe_cluster, name, c)
            for name, c in clients.items()
        }
        return {name: f.result() for name, f in sorted(futures.items())}
