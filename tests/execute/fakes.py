"""Hand-written fakes of the executor's own ports (``execute.ports``): a Flink cluster and a journal.

FakeFlink keeps the facts the procedures depend on, as measured on Flink 2.3
(../shared/FLINK-NOTES.md): a stop or savepoint sent again with the same
trigger id answers with the same operation and starts nothing new; a job id
stays taken while Flink lists the job (DuplicateJobId); savepoints are real
directories with ``_metadata`` so the executor's check is real. The journal can
"die" at any write, before or after it lands, which is what SIGKILL does to a
process; the real kill -9 runs against real Flink live in tests/e2e.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable, Collection
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

from flink_gitops.execute.operation import Operation
from flink_gitops.execute.ports import JobOutcome
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.flink.errors import (
    DuplicateJobId,
    FlinkBadRequest,
    FlinkNotFound,
    OperationFailed,
    SavepointFailed,
)
from flink_gitops.flink.models import CheckpointStats, JobDetails, JobExceptions, RunRequest, RunResult

E = TypeVar("E", FlinkNotFound, FlinkBadRequest, OperationFailed, SavepointFailed)


def _err(cls: type[E], detail: str, status: int | None = None) -> E:
    return cls(detail, cluster="fake", method="POST", path="/fake", status=status)


@dataclass
class FakeJob:
    job_id: str
    jar_id: str
    request: RunRequest
    state: str = "RUNNING"
    #: epoch ms: FakeClock's default start, 2026-01-01T00:00Z.
    start_time: int = 1_767_225_600_000
    checkpoint: str | None = None


@dataclass
class FakeFlink:
    """One fake cluster. ``refuse_state`` makes runs of that entry class fail as a state mismatch."""

    root: Path
    jobs: dict[str, FakeJob] = field(default_factory=dict)
    jars: dict[str, str] = field(default_factory=dict)
    triggers: dict[str, tuple[str, str | None]] = field(default_factory=dict)
    refuse_state: set[str] = field(default_factory=set)
    crash_on_start: set[str] = field(default_factory=set)
    calls: list[str] = field(default_factory=list)
    _n: itertools.count[int] = field(default_factory=lambda: itertools.count(1))

    def add_running(self, job_id: str, request: RunRequest | None = None) -> None:
        self.jobs[job_id] = FakeJob(job_id, "jar-0", request or RunRequest(job_id=job_id))

    def live(self) -> list[FakeJob]:
        return [j for j in self.jobs.values() if j.state == "RUNNING"]

    def _state_dir(self, kind: str) -> str:
        path = self.root / f"{kind}-{next(self._n)}"
        path.mkdir(parents=True)
        (path / "_metadata").write_bytes(b"state")
        return f"file://{path}"

    def _get(self, job_id: str) -> FakeJob:
        if job_id not in self.jobs:
            raise _err(FlinkNotFound, f"job {job_id} not found", 404)
        return self.jobs[job_id]

    # --- the port ----------------------------------------------------------------------------

    def job(self, job_id: str) -> JobDetails:
        self.calls.append(f"job {job_id[:6]}")
        j = self._get(job_id)
        vertices = [{"id": "v", "name": "v", "parallelism": 1, "status": j.state}]
        return JobDetails.model_validate(
            {
                "jid": job_id,
                "name": "fake",
                "state": j.state,
                "start-time": j.start_time,
                "vertices": vertices,
            }
        )

    def find_job(self, job_id: str) -> JobDetails | None:
        return self.job(job_id) if job_id in self.jobs else None

    def checkpoints(self, job_id: str) -> CheckpointStats:
        j = self._get(job_id)
        completed = None
        if j.checkpoint is not None:
            completed = {"id": 1, "trigger_timestamp": j.start_time + 1, "external_path": j.checkpoint}
        return CheckpointStats.model_validate({"latest": {"completed": completed}})

    def exceptions(self, job_id: str) -> JobExceptions:
        j = self._get(job_id)
        if j.state != "FAILED":
            return JobExceptions.model_validate({})
        trace = "java.lang.RuntimeException: boom\nCaused by: java.lang.IllegalStateException: fake failure"
        entry = {"exceptionName": "java.lang.RuntimeException", "stacktrace": trace, "timestamp": 1}
        return JobExceptions.model_validate({"exceptionHistory": {"entries": [entry]}})

    def cancel(self, job_id: str) -> None:
        self.calls.append(f"cancel {job_id[:6]}")
        j = self._get(job_id)
        if j.state == "RUNNING":
            j.state = "CANCELED"

    def upload_jar(self, path: Path) -> str:
        self.calls.append(f"upload {path.name}")
        jar_id = f"jar-{next(self._n)}_{path.name}"
        self.jars[jar_id] = path.read_text()
        return jar_id

    def run(self, jar_id: str, request: RunRequest) -> RunResult:
        assert request.job_id is not None
        self.calls.append(f"run {request.job_id[:6]}")
        if request.job_id in self.jobs:
            raise DuplicateJobId(
                request.job_id,
                flink_error="Duplicate",
                cluster="fake",
                method="POST",
                path="/run",
                status=409,
            )
        if jar_id not in self.jars:
            raise _err(FlinkNotFound, f"Jar file {jar_id} does not exist", 500)  # as Flink 2.3 says it
        if request.savepoint_path is not None:
            assert (Path(request.savepoint_path.removeprefix("file://")) / "_metadata").is_file()
        job = FakeJob(request.job_id, jar_id, request)
        self.jobs[request.job_id] = job
        if request.entry_class in self.refuse_state and request.savepoint_path is not None:
            job.state = "FAILED"
            raise _err(FlinkBadRequest, "Cannot map checkpoint/savepoint state", 400)
        if request.entry_class in self.crash_on_start:
            job.state = "FAILED"
        else:
            job.checkpoint = self._state_dir("chk")
        return RunResult.model_validate({"jobid": request.job_id})

    def stop_with_savepoint(
        self, job_id: str, *, trigger_id: str, target_directory: str | None = None
    ) -> str:
        self.calls.append(f"stop {job_id[:6]}")
        if trigger_id not in self.triggers:
            j = self._get(job_id)
            if j.state == "RUNNING":
                j.state = "FINISHED"
                self.triggers[trigger_id] = (job_id, self._state_dir("savepoint"))
            else:
                self.triggers[trigger_id] = (job_id, None)
        return trigger_id

    def trigger_savepoint(self, job_id: str, *, trigger_id: str, target_directory: str | None = None) -> str:
        self.calls.append(f"savepoint {job_id[:6]}")
        if trigger_id not in self.triggers:
            ok = self._get(job_id).state == "RUNNING"
            self.triggers[trigger_id] = (job_id, self._state_dir("savepoint") if ok else None)
        return trigger_id

    def wait_for_savepoint(
        self,
        job_id: str,
        trigger_id: str,
        timeout: float | None = None,
        *,
        cancelled: Callable[[], bool] | None = None,
        poll_s: float = 0.2,
    ) -> str:
        owner, location = self.triggers[trigger_id]
        assert owner == job_id
        if location is None:
            raise _err(SavepointFailed, "savepoint failed: job not running")
        return location

    def wait_for_job_state(
        self,
        job_id: str,
        states: Collection[str],
        timeout: float,
        *,
        all_tasks_running: bool = False,
        cancelled: Callable[[], bool] | None = None,
        poll_s: float = 0.2,
    ) -> JobDetails:
        details = self.job(job_id)
        if details.state not in states:
            raise _err(OperationFailed, f"job {job_id} ended {details.state}")
        return details


class Crash(BaseException):
    """What SIGKILL does to the process: nothing after this point runs (not an Exception)."""


@dataclass
class StoredOp:
    op: Operation
    finished: dict[str, Any] | None = None


@dataclass
class MemoryJournal:
    """The journal in memory; ``die_at=(n, 'before'|'after')`` kills the run at its n-th write."""

    ops: dict[str, StoredOp] = field(default_factory=dict)
    writes: int = 0
    die_at: tuple[int, str] | None = None

    def begin(self, op: Operation) -> Operation:
        self.ops[op.op_id] = StoredOp(Operation(op.op_id, op.kind, op.job, dict(op.ids), list(op.steps)))
        return self.load(op.op_id)

    def load(self, op_id: str) -> Operation:
        """The operation as a restarted process reads it back."""
        s = self.ops[op_id].op
        return Operation(s.op_id, s.kind, s.job, dict(s.ids), list(s.steps))

    def _write(self, apply: Callable[[], None]) -> None:
        self.writes += 1
        if self.die_at == (self.writes, "before"):
            raise Crash()
        apply()
        if self.die_at == (self.writes, "after"):
            raise Crash()

    def advance(self, op_id: str, step: str, ids: dict[str, Any]) -> None:
        def apply() -> None:
            stored = self.ops[op_id].op
            stored.ids.update(ids)
            stored.steps.append(step)

        self._write(apply)

    def finish(
        self,
        op_id: str,
        *,
        succeeded: bool,
        job: JobOutcome,
        savepoint: tuple[str, str] | None,
        detail: dict[str, Any],
    ) -> None:
        def apply() -> None:
            self.ops[op_id].finished = {"ok": succeeded, "job": job, "savepoint": savepoint, "detail": detail}

        self._write(apply)


@dataclass
class DirJars:
    """Jar bytes from a directory, by the spec's jar location."""

    root: Path

    def path_for(self, spec: RunSpec) -> Path:
        path = self.root / spec.jar_location
        path.parent.mkdir(parents=True, exist_ok=True)
        if not path.exists():
            path.write_text(spec.jar_digest)
        return path
