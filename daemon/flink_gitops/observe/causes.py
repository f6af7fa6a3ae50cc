"""Why our failed jobs failed: ``GET /jobs/:id/exceptions`` for each job of ours Flink lists as FAILED.

The overview says only FAILED; a report (a batch run that failed, a job past its
restart budget) should say why. Asked only for our own recorded Flink job ids that
the overview shows FAILED, once per job id: a terminal job's exceptions never change,
so the caller keeps the answers in a cache across cycles. A cause that cannot be
read (the cluster stopped answering) is said so in the cause, never cached, and
never makes the cluster unreachable (the overview already answered).
Neighbours: ``observe.observer`` (the views), ``flink.client`` (the call),
``plan.schedule`` and ``plan.planner`` (read ``ClusterView.causes``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping, MutableMapping
from typing import Protocol

from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.flink.models import JobExceptions
from flink_gitops.observe.view import ClusterView

#: the longest cause kept, characters (a stack trace's last "Caused by:" line is usually short).
MAX_CAUSE = 400


class Explainable(Protocol):
    """The one call this needs of a cluster's client (``FlinkClient`` has it)."""

    def exceptions(self, job_id: str) -> JobExceptions: ...


def with_causes(
    views: Mapping[str, ClusterView],
    clients: Mapping[str, Explainable],
    ours: Iterable[tuple[str, str]],
    cache: MutableMapping[str, str],
) -> dict[str, ClusterView]:
    """``views`` with ``causes`` filled for the (cluster, job id) pairs in ``ours`` listed FAILED."""
    wanted: dict[str, dict[str, str]] = {}
    for cluster, job_id in ours:
        view = views.get(cluster)
        client = clients.get(cluster)
        if view is None or client is None or not view.reachable:
            continue
        seen = view.jobs.get(job_id)
        if seen is None or seen.state != "FAILED":
            continue
        cause = cache.get(job_id)
        if cause is None:
            try:
                found = client.exceptions(job_id).root_cause()
            except FlinkGitOpsError as exc:
                cause = f"cause not readable now ({type(exc).__name__})"
            else:
                cause = (found or "Flink recorded no exception")[:MAX_CAUSE]
                cache[job_id] = cause
        wanted.setdefault(cluster, {})[job_id] = cause
    out = dict(views)
    for cluster, causes in wanted.items():
        out[cluster] = dataclasses.replace(views[cluster], causes=causes)
    return out
