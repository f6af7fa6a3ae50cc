"""Deleting the jars no job of ours references any more, once per cycle after the actions.

Only jars in ``Store.artifacts`` (the ones this daemon uploaded) are ever
deleted; a jar someone uploaded by hand is never looked at. A recorded jar is
*referenced* while its (cluster, digest) is the reconciled or the last stable
spec (a rollback needs it) of any job that is not deleted, or the spec or
stable spec of any open operation (on its cluster and the cluster it moves
from). Each delete is audited first (``jar.delete``, intent then outcome,
fail closed like every action), then sent, then forgotten (fenced by the
cluster's lease); a jar Flink no longer lists counts as deleted. A failed
delete is logged and tried again next cycle; it never fails the cycle.
Clusters that are unreachable or led by another instance are skipped. The
local content cache (``<state_dir>/jars``) is kept: a rollback or a recovery
may need those bytes again. Neighbours: ``execute.cycle`` (calls
:meth:`JarCollector.collect`), ``execute.jar_registry``, ``record.store``.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from typing import Any

from loguru import logger

from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.execute.jar_registry import JarCluster
from flink_gitops.flink.errors import FlinkNotFound
from flink_gitops.record.audit import AuditError, AuditEvent, AuditTrail
from flink_gitops.record.store import JobLifecycle, Store


def _digest(spec: Any) -> str | None:
    try:
        digest = spec["jar"]["digest"]
    except (KeyError, TypeError):
        return None
    return digest if isinstance(digest, str) else None


def referenced(store: Store) -> dict[str, set[str]]:
    """cluster -> the jar digests some job of ours or some open operation still needs there."""
    out: dict[str, set[str]] = {}
    for job in store.jobs.all(include_deleted=False, specs=False):
        if job.state is JobLifecycle.DELETED:
            continue
        for spec in (job.last_reconciled, job.last_stable):
            if spec is not None and spec.jar_digest:
                out.setdefault(job.cluster, set()).add(spec.jar_digest)
    for op in store.operations.open_by_job().values():
        ids = {**op.intent, **op.detail}
        clusters = {
            c for c in (ids.get("cluster"), ids.get("from_cluster"), op.cluster) if isinstance(c, str)
        }
        for spec in (ids.get("spec"), ids.get("stable")):
            digest = _digest(spec)
            if digest is not None:
                for cluster in clusters:
                    out.setdefault(cluster, set()).add(digest)
    return out


@dataclass
class Collected:
    """What one collection did: jar ids deleted and why others were not, per cluster."""

    deleted: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    #: the audit trail failed: no further deletes (fail closed).
    aborted: str | None = None


class JarCollector:
    """Deletes unreferenced jars we uploaded; ``lead(clusters)`` -> cluster: why we may not act there."""

    def __init__(
        self,
        store: Store,
        clusters: Mapping[str, JarCluster],
        audit: AuditTrail,
        *,
        actor: str,
        lead: Callable[[set[str]], dict[str, str]],
        epoch_of: Callable[[str], int],
    ) -> None:
        self.store = store
        self.clusters = clusters
        self.audit = audit
        self.actor = actor
        self.lead = lead
        self.epoch_of = epoch_of

    def collect(self, *, skip: Collection[str] = ()) -> Collected:
        result = Collected()
        rows = [r for r in self.store.artifacts.all() if r.cluster in self.clusters and r.cluster not in skip]
        if not rows:
            return result
        needed = referenced(self.store)
        stale = [r for r in rows if r.digest not in needed.get(r.cluster, set())]
        if not stale:
            return result
        refused = self.lead({r.cluster for r in stale})
        for row in stale:
            if row.cluster in refused:
                result.failed.append((row.cluster, row.jar_id, refused[row.cluster]))
                continue
            event = AuditEvent(
                action="jar.delete",
                actor=self.actor,
                cluster=row.cluster,
                details={"jar_id": row.jar_id, "digest": row.digest, "reason": "no job references it"},
            )
            try:
                with self.audit.guard(event):
                    # a jar Flink does not know is gone already (by hand, or a JobManager restarted
                    # without a fixed upload dir)
                    with contextlib.suppress(FlinkNotFound):
                        self.clusters[row.cluster].delete_jar(row.jar_id)
                    self.store.artifacts.forget(
                        row.cluster, row.digest, row.jar_id, epoch=self.epoch_of(row.cluster)
                    )
            except AuditError as exc:
                result.aborted = f"audit trail unavailable: {exc}"
                logger.error("jar cleanup: audit unavailable, no further deletes this cycle: {}", exc)
                break
            except FlinkGitOpsError as exc:
                result.failed.append((row.cluster, row.jar_id, str(exc)))
                logger.warning(
                    "cluster {}: jar {} not deleted (retried next cycle): {}", row.cluster, row.jar_id, exc
                )
                continue
            result.deleted.append((row.cluster, row.jar_id))
            logger.info("cluster {}: deleted jar {} (no job references it)", row.cluster, row.jar_id)
        return result
