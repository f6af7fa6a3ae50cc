"""The executor's journal over the store: steps and outcomes as fenced, transactional writes.

:class:`StoreJournal` implements ``execute.ports.Journal``. Each step is one
fenced ``operations.advance``; the outcome, the job's new status and any new
savepoint are one unit of work, so a crash leaves either the open operation
(resumed next run) or all three. Writes are fenced by the job's cluster lease,
and on a move by the source cluster's too. It also turns store rows into the
planner's :class:`~flink_gitops.plan.model.RecordedJob` and resumed
:class:`~.operation.Operation` objects. Neighbours: ``record.store`` (the
rows), ``execute.procedures`` (calls the journal), ``execute.cycle``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from flink_gitops.execute.operation import Operation
from flink_gitops.execute.ports import JobOutcome
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.plan.model import ActionKind, ReconciledSpec, RecordedJob
from flink_gitops.record.store import (
    KEEP,
    JobRecord,
    JobUpdate,
    NewSavepoint,
    OperationRecord,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    Store,
    cluster_lease,
)
from flink_gitops.specs.model import FlinkJob


def spec_record(spec: Mapping[str, Any] | None) -> SpecRecord | None:
    """A RunSpec record (``RunSpec.to_record``) as the store keeps it."""
    if spec is None:
        return None
    return SpecRecord(dict(spec), spec["hash"], spec.get("commit"), spec["jar"]["digest"], spec.get("full"))


def reconciled(record: SpecRecord | None) -> ReconciledSpec | None:
    """The planner's view of a stored spec (parsed only if the planner needs it); None if absent.

    A record read without its body (``Jobs.all(specs=False)``) must only be compared, never parsed:
    the cycle re-reads in full every job whose hash or full digest differs from Git's.
    """
    if record is None:
        return None
    body = record.spec

    def load() -> FlinkJob:
        if "spec" not in body:
            raise LookupError("spec body not loaded: the cycle reads it for every job that changed")
        return RunSpec.from_record(body).job

    return ReconciledSpec(load, record.jar_digest or "", record.hash, record.commit, record.full_digest)


def recorded_job(job: JobRecord, open_op: OperationRecord | None) -> RecordedJob:
    ids = {**open_op.intent, **open_op.detail} if open_op is not None else {}
    return RecordedJob(
        name=job.name,
        uid=job.uid,
        generation=job.generation,
        cluster=job.cluster,
        lifecycle=job.state,
        flink_job_id=job.flink_job_id,
        reconciled=reconciled(job.last_reconciled),
        failed_hash=job.failed_hash,
        next_attempt_at=job.next_attempt_at,
        open_operation=open_op.op_id if open_op is not None else None,
        pending_job_id=ids.get("job_id"),
        savepoint=job.savepoint,
        file=job.file,
        last_error=job.last_error,
        attempts=job.attempts,
        drift_kind=job.drift_kind,
        drift_since=job.drift_since,
        restarts=job.restarts,
        fingerprint=job.fingerprint,
        savepoint_at=job.savepoint_at,
        last_run_at=job.last_run_at,
        since=job.created_at,
    )


def resumed(op: OperationRecord) -> Operation:
    """An open operation rebuilt from its rows: its ids and the steps after "begin"."""
    assert op.name is not None
    steps = [s.step for s in op.steps][1:]
    return Operation(op.op_id, ActionKind(op.kind), op.name, {**op.intent, **op.detail}, steps)


class StoreJournal:
    """``execute.ports.Journal`` over the store, fenced by the cluster leases the caller holds."""

    def __init__(self, store: Store, epochs: Mapping[str, int]) -> None:
        self.store = store
        #: cluster name -> epoch of the lease this process holds for it.
        self.epochs = epochs

    def _fence(self, op_id: str) -> tuple[OperationRecord, int, str, dict[str, int]]:
        """The operation, and the epoch, lease and further leases (a move) its writes are fenced by."""
        op = self.store.operations.get(op_id)
        if op is None:
            raise KeyError(f"no operation {op_id}")
        ids = {**op.intent, **op.detail}
        cluster = ids["cluster"]
        also = {}
        source = ids.get("from_cluster")
        if source and source != cluster:
            also[cluster_lease(source)] = self.epochs[source]
        return op, self.epochs[cluster], cluster_lease(cluster), also

    def advance(self, op_id: str, step: str, ids: dict[str, Any]) -> None:
        _op, epoch, lease, also = self._fence(op_id)
        with self.store.unit(epoch=epoch, lease=lease, also=also) as uow:
            uow.operations.advance(op_id, step, ids)

    def finish(
        self,
        op_id: str,
        *,
        succeeded: bool,
        job: JobOutcome,
        savepoint: tuple[str, str] | None,
        detail: dict[str, Any],
    ) -> None:
        op, epoch, lease, also = self._fence(op_id)
        assert op.name is not None
        scheduled = op.intent.get("scheduled_at")  # a scheduled batch run: the fire time it ran for
        update = JobUpdate(
            cluster=job.cluster,
            state=job.lifecycle,
            flink_job_id=job.flink_job_id,
            last_error=job.error,
            **_specs(job),
            **_outcome_fields(succeeded, job),
            last_run_at=datetime.fromisoformat(scheduled) if scheduled else KEEP,
        )
        new_savepoint = None
        if savepoint is not None:
            path, origin = savepoint
            kind = SnapshotKind.CHECKPOINT if "/chk-" in path else SnapshotKind.SAVEPOINT
            new_savepoint = NewSavepoint(
                op.name,
                path,
                kind,
                SnapshotOrigin(origin),
                flink_job_id=op.intent.get("from_job_id"),
            )
        state = OperationState.SUCCEEDED if succeeded else OperationState.FAILED
        with self.store.unit(epoch=epoch, lease=lease, also=also) as uow:
            if new_savepoint is not None and new_savepoint.make_current:
                # when the current savepoint was taken: the transaction's time, as its record's
                update = dataclasses.replace(update, savepoint_at=uow.now)
            uow.operations.finish(op_id, state, detail, job=update, savepoint=new_savepoint)


def _specs(job: JobOutcome) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if job.reconciled is not None:
        out["last_reconciled"] = spec_record(job.reconciled)
    if job.stable is not None:
        out["last_stable"] = spec_record(job.stable)
    if job.savepoint is not None:
        out["savepoint"] = job.savepoint
    if job.fingerprint is not None:
        out["fingerprint"] = job.fingerprint
        if job.lifecycle.runs_a_job:
            # a job was started as the spec says: whatever drift led here has ended
            out.update(drift_kind=None, drift_since=None, drift_detail=None)
    return out


def _outcome_fields(succeeded: bool, job: JobOutcome) -> dict[str, Any]:
    if succeeded:
        return {"failed_hash": None, "attempts": 0, "next_attempt_at": None}
    if job.failed_hash is not None:
        return {"failed_hash": job.failed_hash}
    return {}
