"""Typed shapes of the Flink REST API answers and requests we use.

Answers tolerate extra fields (Flink adds fields between versions) and type only
what flink-gitops reads; field names follow Flink's JSON through aliases.
Works for Flink 1.20 and 2.x: the version-specific run body is built by
:meth:`RunRequest.to_body`, both exception shapes parse into
:class:`JobExceptions`. Neighbours: :mod:`.client` parses into these;
observe and execute read them.
"""

from __future__ import annotations

import re
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, RootModel, field_validator

#: A Flink job id: 32 lowercase hex characters.
JOB_ID_RE = re.compile(r"^[0-9a-f]{32}$")

#: Job states after which Flink will not run the job again (Flink's "globally terminal").
#: SUSPENDED is not one: the job is only suspended on this JobManager, and an HA failover
#: recovers it.
TERMINAL_STATES = frozenset({"FINISHED", "FAILED", "CANCELED"})

ClaimMode = Literal["NO_CLAIM", "CLAIM", "LEGACY"]


class FlinkModel(BaseModel):
    """Base of every answer model: extra fields kept, aliases or names accepted, immutable."""

    model_config = ConfigDict(extra="allow", populate_by_name=True, frozen=True)


# --- cluster -----------------------------------------------------------------------------------


class DashboardConfig(FlinkModel):
    """``GET /config``: the web UI configuration, including the Flink version."""

    flink_version: str = Field(alias="flink-version")
    flink_revision: str | None = Field(None, alias="flink-revision")
    #: how long job views are cached, milliseconds.
    refresh_interval: int | None = Field(None, alias="refresh-interval")

    @property
    def major(self) -> int:
        """The major version (1 or 2); 0 when the version string is not numeric."""
        head = self.flink_version.split(".", 1)[0]
        return int(head) if head.isdigit() else 0


class ClusterOverview(FlinkModel):
    """``GET /overview``."""

    taskmanagers: int = 0
    slots_total: int = Field(0, alias="slots-total")
    slots_available: int = Field(0, alias="slots-available")
    jobs_running: int = Field(0, alias="jobs-running")
    jobs_finished: int = Field(0, alias="jobs-finished")
    jobs_cancelled: int = Field(0, alias="jobs-cancelled")
    jobs_failed: int = Field(0, alias="jobs-failed")
    flink_version: str | None = Field(None, alias="flink-version")
    flink_commit: str | None = Field(None, alias="flink-commit")


class TaskManager(FlinkModel):
    id: str
    slots_number: int = Field(0, alias="slotsNumber")
    free_slots: int = Field(0, alias="freeSlots")


class TaskManagers(FlinkModel):
    """``GET /taskmanagers``."""

    taskmanagers: list[TaskManager] = Field(default_factory=list)


# --- jobs --------------------------------------------------------------------------------------


class JobOverview(FlinkModel):
    """One entry of ``GET /jobs/overview``."""

    jid: str
    name: str
    state: str
    start_time: int = Field(-1, alias="start-time")
    end_time: int = Field(-1, alias="end-time")
    last_modification: int | None = Field(None, alias="last-modification")
    #: task counts by state, and "total".
    tasks: dict[str, int] = Field(default_factory=dict)

    @property
    def total_tasks(self) -> int | None:
        total = self.tasks.get("total")
        return total if isinstance(total, int) else None


class JobsOverview(FlinkModel):
    """``GET /jobs/overview``."""

    jobs: list[JobOverview] = Field(default_factory=list)


class JobVertex(FlinkModel):
    id: str
    name: str
    parallelism: int
    status: str


class JobDetails(FlinkModel):
    """``GET /jobs/:id``."""

    jid: str
    name: str
    state: str
    start_time: int = Field(-1, alias="start-time")
    end_time: int = Field(-1, alias="end-time")
    vertices: list[JobVertex] = Field(default_factory=list)

    @property
    def all_tasks_running(self) -> bool:
        """The job is RUNNING and every vertex is too (the job state alone turns RUNNING earlier)."""
        return (
            self.state == "RUNNING"
            and bool(self.vertices)
            and all(v.status in {"RUNNING", "FINISHED"} for v in self.vertices)
        )


class ConfigEntry(FlinkModel):
    key: str
    value: str | None = None


class JobManagerConfig(RootModel[list[ConfigEntry]]):
    """``GET /jobmanager/config``: the JobManager's effective configuration, key by key."""

    def get(self, key: str) -> str | None:
        return next((e.value for e in self.root if e.key == key), None)


class JobConfig(FlinkModel):
    """``GET /jobs/:id/config``."""

    jid: str
    name: str | None = None
    execution_config: dict[str, Any] = Field(default_factory=dict, alias="execution-config")


class CheckpointCounts(FlinkModel):
    restored: int = 0
    total: int = 0
    in_progress: int = 0
    completed: int = 0
    failed: int = 0


class CheckpointInfo(FlinkModel):
    """A completed / savepoint / failed checkpoint entry."""

    id: int
    status: str | None = None
    is_savepoint: bool = False
    trigger_timestamp: int | None = None
    latest_ack_timestamp: int | None = None
    external_path: str | None = None
    checkpoint_type: str | None = None
    #: trigger to the last acknowledgement, milliseconds.
    end_to_end_duration: int | None = None


class RestoredCheckpoint(FlinkModel):
    id: int
    restore_timestamp: int | None = None
    is_savepoint: bool = False
    external_path: str | None = None


class LatestCheckpoints(FlinkModel):
    completed: CheckpointInfo | None = None
    savepoint: CheckpointInfo | None = None
    failed: CheckpointInfo | None = None
    restored: RestoredCheckpoint | None = None


class CheckpointStats(FlinkModel):
    """``GET /jobs/:id/checkpoints``: about this job id only (never "the newest file in the
    directory", which may be another job's)."""

    counts: CheckpointCounts = Field(default_factory=CheckpointCounts)
    latest: LatestCheckpoints = Field(default_factory=LatestCheckpoints)
    history: list[CheckpointInfo] = Field(default_factory=list)

    @property
    def latest_completed_path(self) -> str | None:
        """External path of the latest completed checkpoint (a retained one can be restored)."""
        return self.latest.completed.external_path if self.latest.completed else None

    @property
    def latest_completed_at_ms(self) -> int | None:
        """When the latest completed checkpoint completed (its last acknowledgement), epoch ms."""
        done = self.latest.completed
        if done is None:
            return None
        return done.latest_ack_timestamp or done.trigger_timestamp

    @property
    def latest_completed_duration_s(self) -> float | None:
        """End-to-end duration of the latest completed checkpoint, seconds."""
        done = self.latest.completed
        if done is None or done.end_to_end_duration is None:
            return None
        return done.end_to_end_duration / 1000

    @property
    def latest_savepoint_path(self) -> str | None:
        """External path of the job's latest savepoint (also one taken by stop-with-savepoint)."""
        return self.latest.savepoint.external_path if self.latest.savepoint else None


class ExceptionEntry(FlinkModel):
    """One entry of the exception history (both versions)."""

    exception_name: str = Field(alias="exceptionName")
    stacktrace: str = ""
    timestamp: int | None = None
    task_name: str | None = Field(None, alias="taskName")


class ExceptionHistory(FlinkModel):
    entries: list[ExceptionEntry] = Field(default_factory=list)
    truncated: bool = False


class JobExceptions(FlinkModel):
    """``GET /jobs/:id/exceptions``.

    Flink 1.20 sends ``root-exception`` / ``all-exceptions`` and ``exceptionHistory``;
    2.x only ``exceptionHistory``. :meth:`root_cause` reads either.
    """

    root_exception: str | None = Field(None, alias="root-exception")
    timestamp: int | None = None
    all_exceptions: list[dict[str, Any]] = Field(default_factory=list, alias="all-exceptions")
    exception_history: ExceptionHistory = Field(default_factory=ExceptionHistory, alias="exceptionHistory")

    def root_cause(self) -> str | None:
        """The newest failure's real cause (its last ``Caused by:`` line, else its first line),
        or None when the job never failed."""
        if self.exception_history.entries:
            newest = max(self.exception_history.entries, key=lambda e: e.timestamp or 0)
            text = newest.stacktrace or newest.exception_name
        elif self.root_exception:
            text = self.root_exception
        else:
            return None
        return last_cause(text) or None


# --- jars --------------------------------------------------------------------------------------


class JarEntry(FlinkModel):
    name: str
    description: str | None = None


class JarFile(FlinkModel):
    id: str
    name: str
    uploaded: int | None = None
    entry: list[JarEntry] = Field(default_factory=list)


class JarUpload(FlinkModel):
    """``POST /jars/upload``: the stored file's path; the jar id is its base name."""

    filename: str
    status: str | None = None

    @property
    def jar_id(self) -> str:
        return self.filename.replace("\\", "/").rsplit("/", 1)[-1]


class JarList(FlinkModel):
    """``GET /jars``."""

    address: str | None = None
    files: list[JarFile] = Field(default_factory=list)


class JobPlan(FlinkModel):
    """``POST /jars/:id/plan``: the job graph Flink would build (``plan`` is kept as sent)."""

    plan: dict[str, Any]


class RunResult(FlinkModel):
    """``POST /jars/:id/run``: 2.x adds ``applicationId``."""

    jobid: str
    application_id: str | None = Field(None, alias="applicationId")


class RunRequest(BaseModel):
    """What to run from an uploaded jar. Built by callers, turned into the version-specific body."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    entry_class: str | None = None
    args: list[str] = Field(default_factory=list)
    parallelism: int | None = None
    savepoint_path: str | None = None
    allow_non_restored_state: bool = False
    #: NO_CLAIM (default) leaves the savepoint to us, so it survives for rollback.
    claim_mode: ClaimMode = "NO_CLAIM"
    #: deterministic job id (32 hex), see :func:`flink_gitops.flink.ids.deterministic_job_id`.
    job_id: str | None = None
    flink_configuration: dict[str, str] = Field(default_factory=dict)

    @field_validator("job_id")
    @classmethod
    def _job_id_hex(cls, value: str | None) -> str | None:
        if value is not None and not JOB_ID_RE.match(value):
            raise ValueError("a Flink job id is 32 lowercase hex characters")
        return value

    def to_body(self, flink_major: int) -> dict[str, Any]:
        """The JSON body for ``/jars/:id/run`` on this Flink major version.

        Always ``programArgsList`` (2.x silently ignores ``programArgs``); the restore mode is
        ``claimMode`` on 2.x and ``restoreMode`` on 1.x.
        """
        body: dict[str, Any] = {"programArgsList": list(self.args)}
        if self.entry_class is not None:
            body["entryClass"] = self.entry_class
        if self.parallelism is not None:
            body["parallelism"] = self.parallelism
        if self.job_id is not None:
            body["jobId"] = self.job_id
        if self.flink_configuration:
            body["flinkConfiguration"] = dict(self.flink_configuration)
        if self.savepoint_path is not None:
            body["savepointPath"] = self.savepoint_path
            body["allowNonRestoredState"] = self.allow_non_restored_state
            body["claimMode" if flink_major >= 2 else "restoreMode"] = self.claim_mode
        return body


# --- asynchronous operations -------------------------------------------------------------------


class TriggerResponse(FlinkModel):
    """The answer to a trigger (savepoint, stop, disposal)."""

    request_id: str = Field(alias="request-id")


class QueueStatus(FlinkModel):
    id: Literal["IN_PROGRESS", "COMPLETED"] | str


class FailureCause(FlinkModel):
    class_name: str | None = Field(None, alias="class")
    stack_trace: str | None = Field(None, alias="stack-trace")

    def summary(self) -> str:
        """The last ``Caused by:`` line of the stack trace, or its first line, or the class."""
        return last_cause(self.stack_trace or "") or self.class_name or "unknown failure"


class OperationResult(FlinkModel):
    location: str | None = None
    failure_cause: FailureCause | None = Field(None, alias="failure-cause")


class AsyncOperation(FlinkModel):
    """Status of a savepoint / stop / disposal: ``{"status": {"id"}, "operation": {...}}``."""

    status: QueueStatus
    operation: OperationResult | None = None

    @property
    def completed(self) -> bool:
        return self.status.id == "COMPLETED"


def last_cause(text: str) -> str:
    """The real cause in a Java stack trace: its last ``Caused by:`` line, else its first line."""
    causes = [line.strip() for line in text.splitlines() if line.strip().startswith("Caused by:")]
    if causes:
        return causes[-1].removeprefix("Caused by:").strip()
    stripped = text.strip()
    return stripped.splitlines()[0] if stripped else ""
