"""Savepoint retention, once per cycle after the actions: dispose what ``spec.savepoints`` no longer
keeps, and forget it (``snapshots.mark_disposed``) only once the disposal succeeded.

Which jobs: one aggregate query (count and oldest undisposed savepoint per job) picks the jobs of
this revision that may be over ``maxCount`` / ``maxAge``; only their history is read (a job whose
figures did not change since it was last found with nothing to dispose is skipped while this
process lives). Which savepoints: :func:`~.retention_policy.select_disposals`, with these
protected: every job's current savepoint (``jobs.savepoint``, of any job: one may have been
deployed from another's), the paths the operations that started the current Flink job and the last
stable one restored from, the newest savepoint of that stable deployment, and every path an open
operation names. A job with an open operation is left alone this cycle; removed jobs (tombstones)
keep their history. Only rows of our own ``savepoints`` table are ever disposed, and only kind
savepoint: retained checkpoints (chk-N) are Flink's to clean up (``execution.checkpointing.
num-retained``), never ours.

How: a ``file://`` savepoint whose directory this host sees, with its ``_metadata``, is deleted
here (no JobManager round trip, and no need for Flink to load the savepoint's metadata, which may
need the job's classes); any other (``s3://``, ``hdfs://``, a file:// path only the JobManager
sees) goes through Flink's ``POST /savepoint-disposal``. A disposal that finds the savepoint gone
already counts as done (a crash after the delete, before the record). A directory without
``_metadata`` is never deleted.

Order and crash safety: each disposal is audited first (``audit.guard``: no record, no disposal;
an audit failure stops retention for this cycle), then written ahead as an operation of kind
``dispose-savepoint`` on no job (so the planner never sees it) naming the savepoint id and path,
fenced by the cluster's lease; then the side effect; then the record marked disposed and the
operation finished in one unit of work. A crash leaves the operation open: the next cycle carries
it out again (harmless: the savepoint is either still there or gone) unless the path has become
protected meanwhile (then it is abandoned). A failed disposal is logged, its operation finished
FAILED, the savepoint kept and chosen again next cycle; it never fails the cycle.
Neighbours: ``execute.cycle`` (calls :meth:`Retention.run`), ``execute.retention_policy``,
``record.store`` (history, operations), ``flink.client`` (disposal).
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import unquote, urlparse

from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.errors import FlinkGitOpsError, TemporaryError
from flink_gitops.execute.retention_policy import may_need_disposal, select_disposals
from flink_gitops.flink.errors import OperationFailed
from flink_gitops.record.audit import AuditError, AuditEvent, AuditTrail
from flink_gitops.record.store import (
    JobRecord,
    OperationRecord,
    OperationState,
    SavepointRecord,
    SnapshotKind,
    Store,
    cluster_lease,
)
from flink_gitops.specs.loader import DesiredState

#: the operations log kind of one disposal (an operation on no job: the planner never resumes it).
DISPOSE_KIND = "dispose-savepoint"
#: operation kinds that start no Flink job (skipped when looking for what a deployment restored from).
_STARTS_NOTHING = ("savepoint", "checkpoint", "record", DISPOSE_KIND)
#: how many of a job's job-starting operations are read to find its current and last stable one.
_LOOK_BACK = 20
#: Flink's answer when the savepoint is not there (any more).
_GONE = ("FileNotFoundException", "does not exist", "No such file")


class DisposalFailed(TemporaryError):
    """The savepoint could not be disposed now; it is kept, recorded, and chosen again next cycle."""


class DisposalPort(Protocol):
    """What retention needs of a cluster's client (``FlinkClient`` has it)."""

    def dispose_savepoint(self, savepoint_path: str) -> str: ...

    def wait_for_disposal(self, trigger_id: str, timeout: float | None = None) -> None: ...


@dataclass
class RetentionResult:
    """What one retention pass did."""

    #: jobs whose history was read (the aggregate query ruled the others out).
    looked_at: int = 0
    disposed: list[tuple[str, str]] = field(default_factory=list)
    failed: list[tuple[str, str, str]] = field(default_factory=list)
    #: why the pass stopped early (audit or store unavailable), if it did.
    aborted: str | None = None
    duration_s: float = 0.0


def local_savepoint(path: str) -> Path | None:
    """The directory of a ``file:`` savepoint when this host sees it, else None."""
    url = urlparse(path)
    if url.scheme != "file":
        return None
    directory = Path(unquote(url.path))
    return directory if directory.is_dir() else None


def _strings(value: Any) -> Iterator[str]:
    if isinstance(value, str):
        yield value
    elif isinstance(value, Mapping):
        for v in value.values():
            yield from _strings(v)
    elif isinstance(value, list | tuple):
        for v in value:
            yield from _strings(v)


def deployment_paths(store: Store, job: JobRecord, history: list[SavepointRecord]) -> set[str]:
    """What the job's current Flink job and its last stable deployment restored from, and the newest
    savepoint taken of that stable deployment (``history``: the job's records, newest first)."""
    paths: set[str] = set()
    stable_seen = False
    ops = store.operations.history(job.name, limit=_LOOK_BACK, exclude_kinds=_STARTS_NOTHING)
    for op in ops:  # newest first
        ids = {**op.intent, **op.detail}
        steps = {s.step for s in op.steps}
        started = {ids.get("job_id"), ids.get("rollback_job_id")}
        current = job.flink_job_id is not None and job.flink_job_id in started
        stable_id = (
            ids.get("rollback_job_id")
            if "stable:rollback_job_id" in steps
            else ids.get("job_id")
            if "stable:job_id" in steps
            else None
        )
        last_stable = not stable_seen and isinstance(stable_id, str)
        if current or last_stable:
            paths.update(p for p in (ids.get("restore_path"), ids.get("state_path")) if isinstance(p, str))
        if last_stable:
            stable_seen = True
            newest = next(
                (r.path for r in history if r.flink_job_id == stable_id and r.kind is SnapshotKind.SAVEPOINT),
                None,
            )
            if newest is not None:
                paths.add(newest)
    return paths


class Retention:
    """Runs retention passes for the reconciler (one per process; remembers settled jobs)."""

    def __init__(
        self,
        store: Store,
        audit: AuditTrail,
        clients: Mapping[str, DisposalPort],
        clock: Clock,
        *,
        actor: str,
        lead: Callable[[set[str]], Mapping[str, str]],
        epoch_of: Callable[[str], int],
        timeout_s: float = 600.0,
    ) -> None:
        self.store = store
        self.audit = audit
        self.clients = clients
        self.clock = clock
        self.actor = actor
        #: takes or renews the clusters' leases; cluster -> why not, for those it cannot.
        self.lead = lead
        self.epoch_of = epoch_of
        self.timeout_s = timeout_s
        #: job -> (count, oldest, current savepoint) when it was last found with nothing to dispose.
        self._settled: dict[str, tuple[int, datetime, str | None]] = {}

    def run(
        self, desired: DesiredState, *, commit: str | None = None, only: Iterable[str] | None = None
    ) -> RetentionResult:
        """One pass (see the module docstring); never raises for a disposal's failure."""
        t0 = time.perf_counter()
        result = RetentionResult()
        try:
            open_ops = self.store.operations.open()
            self._resume(open_ops, commit, result)
            for name, record, why in self._choose(desired, open_ops, only, result):
                self._dispose(name, record, why, commit, result)
        except AuditError as exc:
            result.aborted = f"audit trail unavailable: {exc}"
            logger.error("retention stopped: no disposal without its audit record: {}", exc)
        except FlinkGitOpsError as exc:
            result.aborted = str(exc)
            logger.error("retention stopped: {}", exc)
        result.duration_s = time.perf_counter() - t0
        if result.disposed or result.failed or result.aborted:
            logger.info(
                "retention: looked at {} jobs, disposed {}, failed {}{}",
                result.looked_at,
                len(result.disposed),
                len(result.failed),
                f", stopped: {result.aborted}" if result.aborted else "",
            )
        return result

    # --- choosing --------------------------------------------------------------------------

    def _protected_everywhere(self, open_ops: list[OperationRecord]) -> frozenset[str]:
        named = {
            s for op in open_ops if op.kind != DISPOSE_KIND for s in _strings({**op.intent, **op.detail})
        }
        return self.store.snapshots.current_paths() | named

    def _choose(
        self,
        desired: DesiredState,
        open_ops: list[OperationRecord],
        only: Iterable[str] | None,
        result: RetentionResult,
    ) -> Iterator[tuple[str, SavepointRecord, str]]:
        now = self.clock.now()
        wanted = desired.valid_jobs()
        selected = set(only) if only is not None else None
        policies = [j.spec.spec.savepoints for n, j in wanted.items() if selected is None or n in selected]
        if not policies:
            return
        # in SQL, the loosest limits of them all: only jobs that may be over their own come back
        stats = self.store.snapshots.retention_stats(
            more_than=min(p.maxCount for p in policies),
            older_than=now - timedelta(seconds=min(p.maxAge for p in policies)),
        )
        candidates: dict[str, tuple[int, datetime]] = {}
        for name, (count, oldest) in stats.items():
            want = wanted.get(name)
            if want is None or (selected is not None and name not in selected):
                continue
            policy = want.spec.spec.savepoints
            if may_need_disposal(count, oldest, max_count=policy.maxCount, max_age_s=policy.maxAge, now=now):
                candidates[name] = (count, oldest)
        if not candidates:
            return
        jobs = self.store.jobs.get_many(
            n for n, c in candidates.items() if self._settled.get(n, (0, now, None))[:2] != c
        )
        busy = {op.name for op in open_ops if op.name is not None}
        everywhere: frozenset[str] | None = None
        for name, job in sorted(jobs.items()):
            if job.deleted or name in busy:
                continue
            key = (*candidates[name], job.savepoint)
            if self._settled.get(name) == key:
                continue
            if everywhere is None:
                everywhere = self._protected_everywhere(open_ops)
            result.looked_at += 1
            history = self.store.snapshots.history(name)
            policy = wanted[name].spec.spec.savepoints
            protected = everywhere | deployment_paths(self.store, job, history)
            chosen = select_disposals(
                history, protected, max_count=policy.maxCount, max_age_s=policy.maxAge, now=now
            )
            if not chosen:
                self._settled[name] = key
                continue
            self._settled.pop(name, None)
            savepoints = [r for r in history if r.kind is SnapshotKind.SAVEPOINT]
            ranked = [r.id for r in sorted(savepoints, key=lambda r: (r.created_at, r.id), reverse=True)]
            for record in chosen:
                age = (now - record.created_at).total_seconds()
                why = (
                    f"beyond maxCount {policy.maxCount}"
                    if ranked.index(record.id) >= policy.maxCount
                    else f"older than maxAge {policy.maxAge} s ({age:.0f} s)"
                )
                yield name, record, why

    # --- disposing -------------------------------------------------------------------------

    def _resume(self, open_ops: list[OperationRecord], commit: str | None, result: RetentionResult) -> None:
        """Carry out the disposals a crash left open (or abandon those that became protected)."""
        mine = [op for op in open_ops if op.kind == DISPOSE_KIND]
        if not mine:
            return
        protected = self._protected_everywhere(open_ops)
        for op in mine:
            name, path, sp_id, cluster = (
                op.intent.get(k) for k in ("job", "path", "savepoint_id", "cluster")
            )
            if not (isinstance(name, str) and isinstance(path, str) and isinstance(sp_id, int)):
                continue
            found = [r for r in self.store.snapshots.history(name, include_disposed=True) if r.id == sp_id]
            if not found or found[0].disposed or path in protected:
                why = "no longer to dispose: protected meanwhile or already disposed"
                if isinstance(cluster, str) and not self.lead({cluster}):
                    lease = cluster_lease(cluster)
                    self.store.operations.finish(
                        op.op_id,
                        OperationState.ABANDONED,
                        {"why": why},
                        epoch=self.epoch_of(cluster),
                        lease=lease,
                    )
                continue
            logger.info("retention: resuming disposal of {} (operation {})", path, op.op_id)
            self._dispose(name, found[0], "resumed after a crash", commit, result, op.op_id)

    def _dispose(
        self,
        name: str,
        record: SavepointRecord,
        why: str,
        commit: str | None,
        result: RetentionResult,
        op_id: str | None = None,
    ) -> None:
        cluster, path = record.cluster, record.path
        client = self.clients.get(cluster)
        refused = self.lead({cluster}) if client is not None else {}
        if client is None or refused:
            error = refused.get(cluster) or f"cluster {cluster!r} is not in the daemon's config"
            result.failed.append((name, path, error))
            return
        epoch, lease = self.epoch_of(cluster), cluster_lease(cluster)
        local = local_savepoint(path)
        method = "delete" if local is not None else "flink"
        event = AuditEvent(
            action="savepoint.dispose",
            actor=self.actor,
            job=name,
            cluster=cluster,
            git_commit=commit,
            savepoint=path,
            details={
                "reason": why,
                "origin": record.origin.value,
                "created": record.created_at.isoformat(timespec="seconds"),
                "method": method,
                "savepoint_id": record.id,
            },
        )
        try:
            with self.audit.guard(event):
                if op_id is None:
                    intent = {"job": name, "savepoint_id": record.id, "path": path, "cluster": cluster}
                    op_id = self.store.operations.begin(
                        None,
                        DISPOSE_KIND,
                        intent | {"method": method},
                        epoch=epoch,
                        lease=lease,
                        cluster=cluster,
                    ).op_id
                gone = self._carry_out(client, path, local)
                with self.store.unit(epoch=epoch, lease=lease) as uow:
                    uow.snapshots.mark_disposed(record.id)
                    uow.operations.finish(op_id, OperationState.SUCCEEDED, {"method": method, "gone": gone})
        except AuditError:
            raise
        except FlinkGitOpsError as exc:
            logger.warning(
                "retention: could not dispose {} of job {} (kept, next cycle again): {}", path, name, exc
            )
            result.failed.append((name, path, str(exc)))
            if op_id is not None:
                self._close_failed(op_id, str(exc), epoch, lease)
            return
        result.disposed.append((name, path))

    def _close_failed(self, op_id: str, error: str, epoch: int, lease: str) -> None:
        try:
            self.store.operations.finish(
                op_id, OperationState.FAILED, {"error": error}, epoch=epoch, lease=lease
            )
        except FlinkGitOpsError as exc:  # left open: resumed (tried again) next cycle
            logger.warning("retention: operation {} left open: {}", op_id, exc)

    def _carry_out(self, client: DisposalPort, path: str, local: Path | None) -> bool:
        """Dispose the savepoint; True when it was found gone already."""
        if local is not None:
            if not (local / "_metadata").is_file():
                raise DisposalFailed(f"{path} has no _metadata: not a complete savepoint; left alone")
            try:
                shutil.rmtree(local)
            except OSError as exc:
                raise DisposalFailed(f"cannot delete {path}: {exc.strerror or exc}") from exc
            return False
        try:
            client.wait_for_disposal(client.dispose_savepoint(path), self.timeout_s)
        except OperationFailed as exc:
            if any(marker in str(exc) for marker in _GONE):
                return True
            raise DisposalFailed(f"Flink could not dispose {path}: {exc}") from exc
        return False
