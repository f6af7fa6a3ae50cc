"""What the executor needs of its neighbours, as Protocols: one cluster's Flink, and the journal.

The executor never imports the store or httpx; it is handed a :class:`FlinkPort`
per cluster (``flink.client.FlinkClient`` has these methods) and a
:class:`Journal` (the reconciler's adapter over ``record.store``). Tests give
hand-written fakes of exactly these, which is mocking at our own boundary.
The journal is the write-ahead record: :meth:`Journal.advance` is called
*before* each side effect with the ids that side effect will use, so a run
that dies at any point can be resumed from the last step by asking Flink about
exactly those ids. Neighbours: ``execute.operation`` (the in-memory operation),
``execute.upgrade`` (the procedures).
"""

from __future__ import annotations

from collections.abc import Callable, Collection
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from flink_gitops.flink.models import CheckpointStats, JobDetails, JobExceptions, RunRequest, RunResult
from flink_gitops.lifecycle import JobLifecycle


class FlinkPort(Protocol):
    """One cluster, as the executor uses it."""

    def job(self, job_id: str) -> JobDetails: ...

    def find_job(self, job_id: str) -> JobDetails | None: ...

    def checkpoints(self, job_id: str) -> CheckpointStats: ...

    def exceptions(self, job_id: str) -> JobExceptions: ...

    def cancel(self, job_id: str) -> None: ...

    def upload_jar(self, path: Path) -> str: ...

    def run(self, jar_id: str, request: RunRequest) -> RunResult: ...

    def stop_with_savepoint(
        self, job_id: str, *, trigger_id: str, target_directory: str | None = None
    ) -> str: ...

    def trigger_savepoint(
        self, job_id: str, *, trigger_id: str, target_directory: str | None = None
    ) -> str: ...

    def wait_for_savepoint(
        self,
        job_id: str,
        trigger_id: str,
        timeout: float | None = None,
        *,
        cancelled: Callable[[], bool] | None = None,
        poll_s: float = 0.2,
    ) -> str: ...

    def wait_for_job_state(
        self,
        job_id: str,
        states: Collection[str],
        timeout: float,
        *,
        all_tasks_running: bool = False,
        cancelled: Callable[[], bool] | None = None,
        poll_s: float = 0.2,
    ) -> JobDetails: ...


class JarRegistry(Protocol):
    """The jars we uploaded per (cluster, content digest), so each is uploaded once and reused
    (``execute.jar_registry.StoreJarRegistry``)."""

    def lookup(self, cluster: str, digest: str) -> str | None:
        """A recorded jar id for ``digest`` that Flink still lists, or None."""
        ...

    def adopt(self, cluster: str, digest: str, file_name: str, since_ms: int) -> str | None:
        """The jar an interrupted upload of ``file_name`` (sent after ``since_ms``) left, recorded now."""
        ...

    def uploaded(self, cluster: str, digest: str, jar_id: str) -> None:
        """Record a new upload."""
        ...

    def gone(self, cluster: str, digest: str, jar_id: str) -> None:
        """Flink does not know ``jar_id`` (any more): forget it."""
        ...


@dataclass(frozen=True, slots=True)
class JobOutcome:
    """The job's status as an operation leaves it (written with the outcome, in one transaction)."""

    lifecycle: JobLifecycle
    flink_job_id: str | None
    cluster: str
    #: spec JSON + jar digest + hash of what now runs (None: unchanged).
    reconciled: dict[str, Any] | None = None
    stable: dict[str, Any] | None = None
    savepoint: str | None = None
    failed_hash: str | None = None
    error: str | None = None
    #: what was deployed, when this operation started a job (the live-drift fingerprint).
    fingerprint: dict[str, Any] | None = None


class Journal(Protocol):
    """The write-ahead operations log, fenced by the cluster's lease epoch."""

    def advance(self, op_id: str, step: str, ids: dict[str, Any]) -> None:
        """Record ``step`` and the ids it uses (merged into the operation's ids) before doing it."""
        ...

    def finish(
        self,
        op_id: str,
        *,
        succeeded: bool,
        job: JobOutcome,
        savepoint: tuple[str, str] | None,
        detail: dict[str, Any],
    ) -> None:
        """The outcome, the job's new status and the new savepoint (path, origin): one transaction."""
        ...
