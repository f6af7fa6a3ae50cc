"""Operations: each action as an intent, the steps recorded before each side effect, and one outcome.

``begin`` writes the intent; ``advance`` records a step's name and merges the
ids that step will use (trigger id, savepoint path, jar id, next job id...)
into ``detail`` *before* the side effect, keeping every step in ``steps``;
``finish`` writes the outcome once, together with the job's new state and any
new savepoint record, in one transaction. A job has at most one open
operation: a crash leaves it open, ``open`` lists it with its last step, and
the executor resumes it by asking Flink about exactly the recorded ids.
Every write is fenced. :class:`OperationWrites` runs on an open transaction
(see :mod:`.unit`); :class:`Operations` is ``Store.operations``.
Neighbours: :mod:`.jobs`, :mod:`.snapshots`.
"""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from typing import Any, Final

import sqlalchemy as sa
from sqlalchemy.engine import Row

from flink_gitops.record.store import tables as t
from flink_gitops.record.store.base import Database, Tx, no_nul
from flink_gitops.record.store.errors import (
    DuplicateOperation,
    JobConflict,
    OperationAlreadyFinished,
    UnknownJob,
    UnknownOperation,
)
from flink_gitops.record.store.jobs import JobWrites, locked_job
from flink_gitops.record.store.records import (
    DEFAULT_LEASE,
    JobUpdate,
    NewSavepoint,
    OperationRecord,
    OperationState,
    OperationStep,
)
from flink_gitops.record.store.snapshots import SnapshotWrites, check_new_savepoint

#: the first step of every operation; outcomes are steps named after their state.
BEGIN: Final = "begin"
_RESERVED: Final = frozenset({BEGIN, *(s.value for s in OperationState)})


def _json(what: str, value: dict[str, Any]) -> dict[str, Any]:
    """Refuse what JSON (as both backends store it) cannot hold, before any write."""
    if not isinstance(value, dict):
        raise ValueError(f"{what} must be a dict, not {type(value).__name__}")
    try:
        json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{what} is not plain JSON: {exc}") from None
    return value


def _at(value: str) -> datetime:
    at = datetime.fromisoformat(value)
    return at.replace(tzinfo=UTC) if at.tzinfo is None else at.astimezone(UTC)


def operation_record(r: Row[Any]) -> OperationRecord:
    return OperationRecord(
        op_id=r.op_id,
        name=r.name,
        uid=r.uid,
        cluster=r.cluster,
        kind=r.kind,
        intent=dict(r.intent),
        state=OperationState(r.state),
        step=r.step,
        detail=dict(r.detail or {}),
        steps=tuple(
            OperationStep(step=s["step"], detail=dict(s["detail"]), at=_at(s["at"]), epoch=int(s["epoch"]))
            for s in r.steps
        ),
        epoch=int(r.epoch),
        started_at=r.started_at,
        updated_at=r.updated_at,
        finished_at=r.finished_at,
    )


def _step(step: str, detail: dict[str, Any], at: datetime, epoch: int) -> dict[str, Any]:
    return {"step": step, "detail": detail, "at": at.isoformat(), "epoch": epoch}


class OperationWrites:
    """Operation writes inside one open transaction fenced by ``epoch``."""

    def __init__(self, tx: Tx, epoch: int) -> None:
        self._tx = tx
        self._epoch = epoch

    def _open_row(self, op_id: str) -> Row[Any]:
        where = t.operations.c.op_id == op_id
        row = self._tx.conn.execute(sa.select(t.operations).where(where).with_for_update()).one_or_none()
        if row is None:
            raise UnknownOperation(f"no operation with id {op_id}")
        if row.state != OperationState.STARTED.value:
            raise OperationAlreadyFinished(f"operation {op_id} already {row.state}")
        return row

    def _get(self, op_id: str) -> OperationRecord:
        where = t.operations.c.op_id == op_id
        return operation_record(self._tx.conn.execute(sa.select(t.operations).where(where)).one())

    def begin(
        self,
        name: str | None,
        kind: str,
        intent: dict[str, Any],
        *,
        cluster: str | None = None,
        op_id: str | None = None,
    ) -> OperationRecord:
        """Write an intent BEFORE its side effect. ``name`` (None for an operation on no job) must be a
        recorded job (UnknownJob): it gives the uid (this life) and the default cluster. A job with an
        operation still open gets no second one (JobConflict). A repeat with the same op id, job, kind
        and intent returns the existing operation (a retried begin after a crash)."""
        op_id = op_id or uuid.uuid4().hex
        no_nul(name=name, kind=kind, cluster=cluster, op_id=op_id)
        _json("intent", intent)
        conn = self._tx.conn
        existing = conn.execute(sa.select(t.operations).where(t.operations.c.op_id == op_id)).one_or_none()
        if existing is not None:
            if (existing.name, existing.kind, dict(existing.intent)) == (name, kind, intent):
                return operation_record(existing)
            raise DuplicateOperation(f"operation {op_id} already exists for another job, kind or intent")
        uid = None
        if name is not None:
            # The job's row lock serialises every begin for this job (the one-open-operation rule).
            job = locked_job(conn, name)
            if job is None:
                raise UnknownJob(f"no job named {name!r} is recorded; create it (in the same unit) first")
            uid, cluster = job.uid, cluster or job.cluster
            busy = conn.execute(
                sa.select(t.operations.c.op_id, t.operations.c.kind).where(
                    t.operations.c.name == name, t.operations.c.state == OperationState.STARTED.value
                )
            ).first()
            if busy is not None:
                raise JobConflict(
                    f"job {name!r} already has open operation {busy.op_id} ({busy.kind}): "
                    "resume or finish it first"
                )
        now = self._tx.now
        conn.execute(
            sa.insert(t.operations).values(
                op_id=op_id,
                name=name,
                uid=uid,
                cluster=cluster,
                kind=kind,
                intent=intent,
                state=OperationState.STARTED.value,
                step=BEGIN,
                detail={},
                steps=[_step(BEGIN, {}, now, self._epoch)],
                epoch=self._epoch,
                started_at=now,
                updated_at=now,
            )
        )
        return self._get(op_id)

    def advance(self, op_id: str, step: str, detail: dict[str, Any] | None = None) -> OperationRecord:
        """Record the next step and merge its ids into ``detail`` (later values win), before its
        side effect."""
        detail = _json("step detail", detail or {})
        _check_step(step)
        row = self._open_row(op_id)
        return self._move(row, step, detail, {})

    def finish(
        self,
        op_id: str,
        state: OperationState,
        detail: dict[str, Any] | None = None,
        *,
        job: JobUpdate | None = None,
        savepoint: NewSavepoint | None = None,
    ) -> OperationRecord:
        """Write the outcome once; with it, in this transaction, the savepoint record and the job's update."""
        state = _outcome(state)
        detail = _json("outcome detail", detail or {})
        row = self._open_row(op_id)
        if job is not None and row.name is None:
            raise ValueError(f"operation {op_id} acts on no job; it cannot update one")
        if job is not None:
            current = locked_job(self._tx.conn, row.name)
            if current is not None and row.uid is not None and current.uid != row.uid:
                raise JobConflict(
                    f"operation {op_id} belongs to an earlier life of job {row.name!r}; "
                    "it cannot update this one"
                )
        if savepoint is not None:
            SnapshotWrites(self._tx).record(savepoint)
        if job is not None:
            JobWrites(self._tx).update(row.name, job)
        return self._move(row, state.value, detail, {"state": state.value, "finished_at": self._tx.now})

    def _move(
        self, row: Row[Any], step: str, detail: dict[str, Any], extra: dict[str, Any]
    ) -> OperationRecord:
        now = self._tx.now
        steps = [*row.steps, _step(step, detail, now, self._epoch)]
        self._tx.conn.execute(
            sa.update(t.operations)
            .where(t.operations.c.op_id == row.op_id)
            .values(step=step, detail={**(row.detail or {}), **detail}, steps=steps, updated_at=now, **extra)
        )
        return self._get(row.op_id)


def _check_step(step: str) -> None:
    no_nul(step=step)
    if not step or len(step) > 64:
        raise ValueError("a step name is 1 to 64 characters")
    if step in _RESERVED:
        raise ValueError(f"step name {step!r} is reserved (begin and the outcomes)")


def _outcome(state: OperationState) -> OperationState:
    state = OperationState(state)
    if state is OperationState.STARTED:
        raise ValueError("an outcome is succeeded, failed or abandoned")
    return state


class Operations:
    """``Store.operations``: the log's reads, and each write as its own fenced transaction."""

    def __init__(self, db: Database) -> None:
        self._db = db

    def begin(
        self,
        name: str | None,
        kind: str,
        intent: dict[str, Any],
        *,
        epoch: int,
        lease: str = DEFAULT_LEASE,
        cluster: str | None = None,
        op_id: str | None = None,
    ) -> OperationRecord:
        _json("intent", intent)
        with self._db.fenced(f"cannot record intent {kind}", epoch=epoch, lease=lease) as tx:
            return OperationWrites(tx, epoch).begin(name, kind, intent, cluster=cluster, op_id=op_id)

    def advance(
        self,
        op_id: str,
        step: str,
        detail: dict[str, Any] | None = None,
        *,
        epoch: int,
        lease: str = DEFAULT_LEASE,
    ) -> OperationRecord:
        _check_step(step)
        _json("step detail", detail or {})
        with self._db.fenced(
            f"cannot record step {step} of operation {op_id}", epoch=epoch, lease=lease
        ) as tx:
            return OperationWrites(tx, epoch).advance(op_id, step, detail)

    def finish(
        self,
        op_id: str,
        state: OperationState,
        detail: dict[str, Any] | None = None,
        *,
        epoch: int,
        lease: str = DEFAULT_LEASE,
        job: JobUpdate | None = None,
        savepoint: NewSavepoint | None = None,
    ) -> OperationRecord:
        _outcome(state)
        _json("outcome detail", detail or {})
        if savepoint is not None:
            check_new_savepoint(savepoint)
        with self._db.fenced(f"cannot record outcome of operation {op_id}", epoch=epoch, lease=lease) as tx:
            return OperationWrites(tx, epoch).finish(op_id, state, detail, job=job, savepoint=savepoint)

    def get(self, op_id: str) -> OperationRecord | None:
        with self._db.read("cannot read operation") as conn:
            row = conn.execute(sa.select(t.operations).where(t.operations.c.op_id == op_id)).one_or_none()
        return None if row is None else operation_record(row)

    def open(self, cluster: str | None = None) -> list[OperationRecord]:
        """Operations a crash (or a run still going) left without an outcome, oldest first, each with
        its last step (``step``, ``detail``, ``steps``)."""
        query = sa.select(t.operations).where(t.operations.c.state == OperationState.STARTED.value)
        if cluster is not None:
            query = query.where(t.operations.c.cluster == cluster)
        query = query.order_by(t.operations.c.started_at, t.operations.c.op_id)
        with self._db.read("cannot read open operations") as conn:
            return [operation_record(r) for r in conn.execute(query).all()]

    def open_by_job(self) -> dict[str, OperationRecord]:
        """The open operation of each job that has one (RecordedJob.open_operation), by job name."""
        return {op.name: op for op in self.open() if op.name is not None}

    def history(
        self,
        name: str | None = None,
        *,
        cluster: str | None = None,
        limit: int = 100,
        exclude_kinds: tuple[str, ...] = (),
    ) -> list[OperationRecord]:
        """Operations (of a job / cluster, if given; not of ``exclude_kinds``), newest first."""
        query = sa.select(t.operations)
        if name is not None:
            query = query.where(t.operations.c.name == name)
        if exclude_kinds:
            query = query.where(t.operations.c.kind.not_in(exclude_kinds))
        if cluster is not None:
            query = query.where(t.operations.c.cluster == cluster)
        query = query.order_by(t.operations.c.started_at.desc(), t.operations.c.op_id.desc()).limit(limit)
        with self._db.read("cannot read operations") as conn:
            return [operation_record(r) for r in conn.execute(query).all()]
