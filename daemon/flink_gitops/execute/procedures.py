"""The procedures that move jobs: each action kind as a sequence of recorded, resumable steps.

A procedure runs an :class:`~.operation.Operation` to its end, or resumes one
that a crash left open: every step first looks at what the operation already
recorded and asks Flink about exactly those ids, never guessing (no "newest
savepoint file", no "first RUNNING job"):

- end the current job: ``stop-sent`` (stop-with-savepoint with our trigger id;
  re-sending it after a crash answers with the same operation) → ``stopped``
  with the savepoint location, verified; or ``cancel-sent`` → ``cancelled``
  with the job's latest completed retained checkpoint (last-state);
- start the new job: upload (the jar id recorded) → ``run-sent:<key>`` with the
  job id derived from the job's uid and a reserved generation; on resume a job
  with that id is adopted, and a DuplicateJobId is ours by construction;
- wait until every task runs, then until stable (a completed checkpoint after
  the start, or the stability window on the injected clock); the job's name and
  task count are recorded then, the fingerprint live drift is checked against;
- recover (RECOVER from a failed or vanished job): ``restore-chosen`` records the
  newest of the recorded history (handed in with the intent) and the old job's
  checkpoint stats, verified, before the start; none at all is refused unless
  Flink shows the old job never completed a checkpoint;
- give up (GIVE_UP): Flink's cause from ``/jobs/:id/exceptions``, recorded FAILED;
- finish: the outcome, the job's status and the new savepoint in one write.

A batch run (``mode: batch``, any start kind, usually ``RUN``) ends on its own: the
procedure waits only until Flink has taken the job (any state past CREATED /
INITIALIZING), records ``started:job_id`` and leaves it DEPLOYED; the planner reads
the run's outcome (FINISHED, FAILED) from later observations. A run that Flink
refuses is not rolled back to an older spec: it ends FAILED (an unscheduled job's
hash is marked failed; a scheduled one tries again at its next fire time).

In savepoint mode a job is never cancelled without a savepoint: a stop that
fails leaves the old job running (:class:`~.errors.StopFailed`, retried with
backoff). A new job that does not become stable is replaced by the last stable
spec from the same savepoint (ROLLED_BACK; the bad hash is not retried).
Neighbours: ``execute.ports`` (Flink and journal), ``execute.operation``,
``plan.model`` (action kinds), the reconciler (begins operations, picks ids).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, TypeVar
from urllib.parse import unquote, urlparse

from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError
from flink_gitops.execute.errors import (
    DeployFailed,
    LeaseLost,
    PeriodicSavepointFailed,
    RestoreRefused,
    StopFailed,
    Unsettled,
)
from flink_gitops.execute.failpoints import failpoint
from flink_gitops.execute.operation import Operation
from flink_gitops.execute.ports import FlinkPort, JarRegistry, JobOutcome, Journal
from flink_gitops.flink.errors import (
    DuplicateJobId,
    FlinkConflict,
    FlinkMaybeApplied,
    FlinkNotFound,
    FlinkStillRunning,
    OperationFailed,
    PollCancelled,
    UnknownTrigger,
)
from flink_gitops.flink.models import JobDetails, RunRequest
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.plan.model import ActionKind
from flink_gitops.specs.loader import DesiredJob
from flink_gitops.specs.model import FlinkJob

_ENDED = frozenset({"CANCELED", "FINISHED", "FAILED"})
#: a batch run has been taken by Flink once it is in one of these states (it may end at once).
_TAKEN = frozenset({"RUNNING", "FINISHED", "FAILED", "CANCELED", "RESTARTING", "FAILING"})
POLL_S = 0.2
_T = TypeVar("_T")
#: a savepoint or a start usually completes within a second: poll that first second this often.
FAST_POLL_S = 0.05
FAST_WAIT_S = 1.0


@dataclass(frozen=True, slots=True)
class RunSpec:
    """A spec as the executor runs it: the model, its jar and its hash (also the stored record)."""

    job: FlinkJob
    jar_location: str
    jar_sha256: str | None
    jar_digest: str
    hash: str
    commit: str | None = None
    #: repo (path in the revision), file (host path) or https (URL); see ``specs.loader.JarRef``.
    jar_kind: str = "repo"
    #: ``DesiredJob.full_digest`` (None in records written before it existed).
    full_digest: str | None = None

    @classmethod
    def of(cls, desired: DesiredJob, commit: str | None) -> RunSpec:
        jar = desired.jar
        return cls(
            desired.spec,
            jar.location,
            jar.sha256,
            desired.jar_digest,
            desired.spec_hash,
            commit,
            jar.kind,
            desired.full_digest,
        )

    def to_record(self) -> dict[str, Any]:
        jar = {"kind": self.jar_kind, "location": self.jar_location, "sha256": self.jar_sha256}
        return {
            "spec": self.job.model_dump(mode="json"),
            "jar": jar | {"digest": self.jar_digest},
            "hash": self.hash,
            "commit": self.commit,
            "full": self.full_digest,
        }

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> RunSpec:
        jar = record["jar"]
        return cls(
            FlinkJob.model_validate(record["spec"], strict=False),
            jar["location"],
            jar["sha256"],
            jar["digest"],
            record["hash"],
            record.get("commit"),
            jar.get("kind", "repo"),
            record.get("full"),
        )

    def run_request(self, job_id: str, restore: str | None) -> RunRequest:
        job = self.job.spec.job
        return RunRequest(
            entry_class=job.entryClass,
            args=list(job.args),
            parallelism=job.parallelism,
            savepoint_path=restore,
            allow_non_restored_state=job.allowNonRestoredState,
            claim_mode="NO_CLAIM",
            job_id=job_id,
            flink_configuration=dict(self.job.spec.flinkConfiguration),
        )


class JarSource(Protocol):
    """Gives a local file with a spec's jar bytes (checked against its digest) for upload."""

    def path_for(self, spec: RunSpec) -> Path: ...


@dataclass(frozen=True, slots=True)
class Timeouts:
    """Seconds. readiness: until every task runs; stability: RUNNING with no restart, unless a
    checkpoint completes sooner; savepoint: a stop or savepoint; checkpoint_max_age: last-state."""

    readiness_s: float = 120.0
    stability_s: float = 10.0
    savepoint_s: float = 600.0
    checkpoint_max_age_s: float = 3600.0
    #: where savepoints go (a Flink target directory); None: the cluster's default.
    savepoint_dir: str | None = None


def file_state_exists(location: str) -> bool | None:
    """Whether a file:// savepoint/checkpoint has its ``_metadata``; None when it cannot be checked here."""
    url = urlparse(location)
    if url.scheme not in ("file", ""):
        return None
    return (Path(unquote(url.path)) / "_metadata").is_file()


def _jar_missing(exc: FlinkNotFound) -> bool:
    """A run refused because the jar id is unknown (Flink 2.3: "Jar file ... does not exist")."""
    return "Jar file" in exc.detail and "does not exist" in exc.detail


class Procedures:
    """Runs or resumes operations against the clusters; one instance per cycle or per daemon."""

    def __init__(
        self,
        flink: Mapping[str, FlinkPort],
        journal: Journal,
        jars: JarSource,
        clock: Clock,
        timeouts: Timeouts | None = None,
        *,
        cancelled: Callable[[], bool] = lambda: False,
        on_step: Callable[[str, str], None] | None = None,
        registry: JarRegistry | None = None,
    ) -> None:
        self.flink = flink
        self.journal = journal
        self.jars = jars
        self.clock = clock
        self.timeouts = timeouts or Timeouts()
        self.cancelled = cancelled
        #: on_step(job, step) after each recorded step (live progress in the CLI).
        self.on_step = on_step
        #: jars uploaded before, reused per (cluster, digest); None: upload per operation.
        self.registry = registry
        #: seconds from the last savepoint's trigger (or stop) to its completion (the metrics).
        self.savepoint_s: float | None = None

    # --- entry point ---------------------------------------------------------------------------

    def execute(self, op: Operation) -> JobOutcome:
        """Carry ``op`` to its end (or on from its last recorded step) and write the outcome.

        Temporary errors propagate with the operation left open (resumed next cycle); permanent
        ones end it as FAILED or ROLLED_BACK, written with the job's status in one transaction.
        """
        try:
            return self._execute(op)
        except PollCancelled as exc:
            raise LeaseLost(f"job {op.job}: the cluster's lease was lost during a wait") from exc
        except FlinkMaybeApplied as exc:
            raise Unsettled(f"job {op.job}: {exc}; the next attempt looks before it acts") from exc

    def _execute(self, op: Operation) -> JobOutcome:
        spec = RunSpec.from_record(op.ids["spec"])
        op.on_step = self.on_step
        if op.kind is ActionKind.RECORD:
            return self._finish(op, True, self._same(op, spec), None)
        if op.kind is ActionKind.SAVEPOINT:
            return self._savepoint(op, spec)
        if op.kind is ActionKind.CHECKPOINT:
            raise PermanentError("checkpointTriggerNonce is not supported yet: use savepointTriggerNonce")
        if op.kind is ActionKind.GIVE_UP:
            return self._give_up(op, spec)
        if op.kind is ActionKind.PRUNE:
            location = self._end_current(op)
            outcome = JobOutcome(
                JobLifecycle.DELETED,
                None,
                op.ids["cluster"],
                savepoint=location or op.ids.get("savepoint_before"),
            )
            return self._finish(op, True, outcome, (location, "final") if location else None)
        if op.kind is ActionKind.SUSPEND:
            location = self._end_current(op)
            outcome = JobOutcome(
                JobLifecycle.SUSPENDED,
                None,
                op.ids["cluster"],
                reconciled=spec.to_record(),
                savepoint=location or op.ids.get("savepoint_before"),
            )
            return self._finish(op, True, outcome, (location, "stop") if location else None)
        return self._replace(op, spec)

    # --- the steps -----------------------------------------------------------------------------

    def _guard(self) -> None:
        if self.cancelled():
            raise LeaseLost("the cluster's lease was lost: not driving Flink any further")

    def _end_current(self, op: Operation) -> str | None:
        """Stop or cancel the current job as the operation says; the state location it leaves."""
        how = op.ids.get("stop", "none")
        if how == "none" or op.has("stopped") or op.has("cancelled"):
            return op.ids.get("state_path")
        src = self.flink[op.ids["from_cluster"]]
        job_id = op.str_id("from_job_id")
        if how == "savepoint":
            trigger = op.str_id("trigger_id")
            self._guard()
            if not op.has("stop-sent"):
                op.record(self.journal, "stop-sent")
            try:
                location = self._stop(src, job_id, trigger)
            except OperationFailed as exc:
                # Flink finished the stop with a failure: the job runs on. This trigger id would only
                # answer the same failure again, so the operation ends; the next attempt starts anew.
                error = f"stop-with-savepoint of job {job_id} failed; the job keeps running: {exc}"
                self._finish(op, False, self._unchanged(op, error), None)
                raise StopFailed(error) from exc
            except TemporaryError as exc:
                if isinstance(exc, LeaseLost):
                    raise
                # Still running or no answer: left open, resumed with the same trigger id.
                raise StopFailed(f"stop-with-savepoint of job {job_id} did not complete: {exc}") from exc
            self._verify(location)
            op.record(self.journal, "stopped", state_path=location)
            failpoint("stopped")
            return location
        # cancel: last-state restores from the job's latest retained checkpoint, read after the cancel
        last_state = op.ids.get("restore") == "last-checkpoint"
        if last_state and not op.has("cancel-sent"):
            self._checkpoint(src, job_id)  # refuse before cancelling when there is nothing to restore
        self._guard()
        if not op.has("cancel-sent"):
            op.record(self.journal, "cancel-sent")
        try:
            src.cancel(job_id)
            failpoint("cancel-sent")
        except FlinkConflict:
            pass  # already ended (Flink answers 409 for a job that just finished)
        except TemporaryError as exc:
            raise StopFailed(f"cancel of job {job_id} did not go through: {exc}") from exc
        try:
            src.wait_for_job_state(job_id, _ENDED, self.timeouts.readiness_s, cancelled=self.cancelled)
        except TemporaryError as exc:
            raise StopFailed(f"job {job_id} did not end after cancel: {exc}") from exc
        path = self._checkpoint(src, job_id) if last_state else None
        op.record(self.journal, "cancelled", state_path=path)
        failpoint("cancelled")
        return path

    def _stop(self, src: FlinkPort, job_id: str, trigger: str) -> str:
        """Send (or re-send: same trigger id, same operation) the stop and wait for its savepoint."""
        for _ in range(2):
            t0 = self.clock.monotonic()
            src.stop_with_savepoint(job_id, trigger_id=trigger, target_directory=self.timeouts.savepoint_dir)
            failpoint("stop-sent")
            try:
                location = self._wait_savepoint(src, job_id, trigger)
                self.savepoint_s = self.clock.monotonic() - t0
                return location
            except UnknownTrigger:
                # Flink forgot the trigger (JobManager restart, or its result is older than
                # rest.async.store-duration). Ask about exactly this job: stopped -> its savepoint;
                # still running -> the stop never arrived, send it again.
                found = src.find_job(job_id)
                if found is None:
                    raise
                if found.state == "FINISHED":
                    path = src.checkpoints(job_id).latest_savepoint_path
                    if path:
                        return path
                    raise
                if found.state != "RUNNING":
                    raise
        raise StopFailed(f"Flink keeps forgetting the stop of job {job_id}")

    def _fast_then_slow(self, limit: float, wait: Callable[[float, float], _T]) -> _T:
        """``wait(timeout, poll_s)``: polled every FAST_POLL_S for the first FAST_WAIT_S (most
        savepoints and starts are done by then), then every POLL_S until ``limit`` seconds."""
        try:
            return wait(min(FAST_WAIT_S, limit), FAST_POLL_S)
        except FlinkStillRunning:
            if limit <= FAST_WAIT_S:
                raise
        return wait(limit - FAST_WAIT_S, POLL_S)

    def _wait_savepoint(self, src: FlinkPort, job_id: str, trigger: str) -> str:
        return self._fast_then_slow(
            self.timeouts.savepoint_s,
            lambda timeout, poll: src.wait_for_savepoint(
                job_id, trigger, timeout, cancelled=self.cancelled, poll_s=poll
            ),
        )

    def _wait_running(self, target: FlinkPort, job_id: str) -> JobDetails:
        """All tasks RUNNING."""
        return self._fast_then_slow(
            self.timeouts.readiness_s,
            lambda timeout, poll: target.wait_for_job_state(
                job_id, {"RUNNING"}, timeout, all_tasks_running=True, cancelled=self.cancelled, poll_s=poll
            ),
        )

    def _checkpoint(self, src: FlinkPort, job_id: str) -> str:
        """The job's latest completed checkpoint path, refused when absent, unretained or too old."""
        stats = src.checkpoints(job_id)
        done = stats.latest.completed
        if done is None or not done.external_path:
            raise RestoreRefused(f"job {job_id} has no completed, retained checkpoint to restore from")
        taken = (done.latest_ack_timestamp or done.trigger_timestamp or 0) / 1000
        age = self.clock.now().timestamp() - taken
        limit = self.timeouts.checkpoint_max_age_s
        if age > limit:
            raise RestoreRefused(f"job {job_id}'s latest checkpoint is {age:.0f} s old (max {limit:g} s)")
        self._verify(done.external_path)
        return done.external_path

    def _verify(self, location: str) -> None:
        if file_state_exists(location) is False:
            raise RestoreRefused(f"{location} has no _metadata: the savepoint is not there")

    def _jar(self, op: Operation, target: FlinkPort, spec: RunSpec) -> str:
        """The jar id to run ``spec`` from: recorded in the operation, reused from the registry, the
        one an interrupted upload left (adopted), or uploaded now (the intent written first)."""
        cluster = op.ids["cluster"]
        key = f"jar_id:{cluster}:{spec.jar_digest}"
        known = op.ids.get(key)
        if isinstance(known, str):
            return known
        sent = f"upload_sent:{cluster}:{spec.jar_digest}"
        if self.registry is not None:
            reused = self.registry.lookup(cluster, spec.jar_digest)
            if reused is None and isinstance(op.ids.get(sent), int):
                path = self.jars.path_for(spec)
                reused = self.registry.adopt(cluster, spec.jar_digest, path.name, op.ids[sent])
            if reused is not None:
                op.record(self.journal, "jar-reused", **{key: reused})
                failpoint("uploaded")  # the jar id is recorded, as after an upload
                return reused
        path = self.jars.path_for(spec)
        self._guard()
        op.record(self.journal, "upload-sent", **{sent: int(self.clock.now().timestamp() * 1000)})
        jar_id = target.upload_jar(path)
        failpoint("upload-sent")
        if self.registry is not None:
            self.registry.uploaded(cluster, spec.jar_digest, jar_id)
        op.record(self.journal, "uploaded", **{key: jar_id})
        failpoint("uploaded")
        return jar_id

    def _jar_gone(self, op: Operation, spec: RunSpec, jar_id: str) -> None:
        """Flink does not know the jar (deleted meanwhile): forget it, so the next _jar uploads again."""
        cluster = op.ids["cluster"]
        if self.registry is not None:
            self.registry.gone(cluster, spec.jar_digest, jar_id)
        op.record(self.journal, "jar-gone", **{f"jar_id:{cluster}:{spec.jar_digest}": None})

    def _start(self, op: Operation, key: str, spec: RunSpec, restore: str | None) -> str:
        """Run ``spec`` as the job id ``op.ids[key]``; adopt it when a previous attempt got through."""
        job_id = op.str_id(key)
        target = self.flink[op.ids["cluster"]]
        step = f"run-sent:{key}"
        if op.has(step):
            try:
                target.job(job_id)
                logger.info("job {}: adopting Flink job {} that an earlier run started", op.job, job_id)
                return job_id
            except FlinkNotFound:
                pass
        jar_id = self._jar(op, target, spec)
        self._guard()
        if not op.has(step):
            op.record(self.journal, step)
        for attempt in range(2):
            try:
                target.run(jar_id, spec.run_request(job_id, restore))
                failpoint("run-sent", self.cancelled)
            except DuplicateJobId:
                logger.info("job {}: Flink job {} already submitted; adopting it", op.job, job_id)
            except FlinkNotFound as exc:
                if attempt == 0 and _jar_missing(exc):
                    logger.warning("job {}: jar {} is gone from Flink; uploading it again", op.job, jar_id)
                    self._jar_gone(op, spec, jar_id)
                    jar_id = self._jar(op, target, spec)
                    self._guard()
                    continue
                raise DeployFailed(f"Flink refused to start job {job_id}: {exc}") from exc
            except PermanentError as exc:
                raise DeployFailed(f"Flink refused to start job {job_id}: {exc}") from exc
            break
        return job_id

    def _await_stable(self, op: Operation, key: str) -> None:
        job_id = op.str_id(key)
        target = self.flink[op.ids["cluster"]]
        try:
            details = self._wait_running(target, job_id)
        except OperationFailed as exc:
            raise DeployFailed(
                f"job {job_id} did not start: {self._cause(target, job_id, exc)}", started=True
            ) from exc
        except FlinkStillRunning as exc:
            raise DeployFailed(
                f"job {job_id} not running within {self.timeouts.readiness_s:g} s: {exc}", started=True
            ) from exc
        started = details.start_time
        deadline = self.clock.monotonic() + self.timeouts.stability_s
        while True:
            self._guard()
            state = target.job(job_id).state
            if state != "RUNNING":
                why = self._cause(target, job_id, None)
                raise DeployFailed(f"job {job_id} became {state} before it was stable: {why}", started=True)
            completed = target.checkpoints(job_id).latest.completed
            if completed is not None and (completed.trigger_timestamp or 0) >= started > 0:
                break
            if self.clock.monotonic() >= deadline:
                break
            self.clock.sleep(POLL_S)
        tasks = sum(v.parallelism for v in details.vertices)
        op.record(
            self.journal, f"stable:{key}", **{f"deployed:{key}": {"name": details.name, "tasks": tasks}}
        )

    # --- procedures ----------------------------------------------------------------------------

    def _batch_run(self, op: Operation, spec: RunSpec) -> JobOutcome:
        """A batch run: end the current job if asked, start the run, return once Flink has it."""
        if not op.has("started:job_id"):
            self.jars.path_for(spec)
        self._end_current(op)
        scheduled = spec.job.spec.schedule is not None
        try:
            if not op.has("started:job_id"):
                self._start(op, "job_id", spec, op.ids.get("restore_path"))
                job_id = op.str_id("job_id")
                target = self.flink[op.ids["cluster"]]
                try:
                    self._fast_then_slow(
                        self.timeouts.readiness_s,
                        lambda timeout, poll: target.wait_for_job_state(
                            job_id, _TAKEN, timeout, cancelled=self.cancelled, poll_s=poll
                        ),
                    )
                except FlinkStillRunning as exc:
                    raise DeployFailed(
                        f"batch run {job_id} not started within {self.timeouts.readiness_s:g} s: {exc}"
                    ) from exc
                op.record(self.journal, "started:job_id")
        except DeployFailed as exc:
            logger.error("job {}: batch run refused: {}", op.job, exc)
            self._end_failed(op, "job_id")
            outcome = JobOutcome(
                JobLifecycle.FAILED,
                None,
                op.ids["cluster"],
                reconciled=spec.to_record(),
                failed_hash=None if scheduled else spec.hash,
                error=str(exc),
            )
            return self._finish(op, False, outcome, None)
        outcome = JobOutcome(
            JobLifecycle.DEPLOYED,
            op.str_id("job_id"),
            op.ids["cluster"],
            reconciled=spec.to_record(),
            savepoint=op.ids.get("savepoint_before"),
        )
        return self._finish(op, True, outcome, None)

    def _replace(self, op: Operation, spec: RunSpec) -> JobOutcome:
        """DEPLOY, UPGRADE, REDEPLOY, RESUME: end the current job (if any), start the new one."""
        if spec.job.spec.mode == "batch":
            return self._batch_run(op, spec)
        if not op.has("stable:job_id"):
            self.jars.path_for(spec)  # a missing or wrong jar is refused before the old job is touched
        location = self._end_current(op)
        restore = op.ids.get("restore", "none")
        if restore == "newest":
            state = self._newest(op)
        else:
            state = {
                "stop-savepoint": location,
                "last-checkpoint": location,
                "path": op.ids.get("restore_path"),
            }.get(restore)
        try:
            if not op.has("stable:job_id"):
                self._start(op, "job_id", spec, state)
                self._await_stable(op, "job_id")
        except DeployFailed as exc:
            return self._roll_back(op, spec, state, exc)
        outcome = JobOutcome(
            JobLifecycle.STABLE,
            op.str_id("job_id"),
            op.ids["cluster"],
            reconciled=spec.to_record(),
            stable=spec.to_record(),
            savepoint=state or op.ids.get("savepoint_before"),
            fingerprint=self._fingerprint(op, "job_id", spec),
        )
        # a last-state upgrade restores from the job's retained checkpoint: recorded as what it is
        origin = "retained" if restore == "last-checkpoint" else "upgrade"
        return self._finish(op, True, outcome, (location, origin) if location else None)

    def _roll_back(self, op: Operation, spec: RunSpec, state: str | None, cause: DeployFailed) -> JobOutcome:
        stable = op.ids.get("stable")
        if cause.started and (op.kind is ActionKind.RECOVER or stable is None):
            # A runtime failure of a job Flink accepted, with nothing else to roll back to: recorded
            # FAILED with that job (its exceptions and checkpoints stay readable), not the spec
            # marked failed: recovery retries it within the restart budget.
            logger.error("job {}: {}", op.job, cause)
            failed = op.str_id("job_id")
            outcome = JobOutcome(
                JobLifecycle.FAILED,
                failed,
                op.ids["cluster"],
                reconciled=spec.to_record(),
                savepoint=state or op.ids.get("savepoint_before"),
                error=str(cause),
                fingerprint={"job_id": failed},
            )
            return self._finish(op, False, outcome, None)
        logger.error("job {}: {}; rolling back", op.job, cause)
        self._end_failed(op, "job_id")
        if stable is None:
            return self._finish(
                op,
                False,
                JobOutcome(
                    JobLifecycle.FAILED, None, op.ids["cluster"], failed_hash=spec.hash, error=str(cause)
                ),
                None,
            )
        good = RunSpec.from_record(stable)
        try:
            if not op.has("stable:rollback_job_id"):
                self._start(op, "rollback_job_id", good, state)
                self._await_stable(op, "rollback_job_id")
        except DeployFailed as exc:
            logger.error("job {}: rollback failed too: {}", op.job, exc)
            self._end_failed(op, "rollback_job_id")
            outcome = JobOutcome(
                JobLifecycle.FAILED,
                None,
                op.ids["cluster"],
                savepoint=state,
                failed_hash=spec.hash,
                error=f"{cause}; rollback failed: {exc}",
            )
            return self._finish(op, False, outcome, None)
        outcome = JobOutcome(
            JobLifecycle.ROLLED_BACK,
            op.str_id("rollback_job_id"),
            op.ids["cluster"],
            reconciled=good.to_record(),
            stable=good.to_record(),
            savepoint=state,
            failed_hash=spec.hash,
            error=str(cause),
            fingerprint=self._fingerprint(op, "rollback_job_id", good),
        )
        return self._finish(op, False, outcome, None)

    def _fingerprint(self, op: Operation, key: str, spec: RunSpec) -> dict[str, Any]:
        """What was deployed as ``op.ids[key]``: compared each cycle with what runs (``plan.health``)."""
        job = spec.job.spec.job
        deployed = op.ids.get(f"deployed:{key}") or {}
        conf = json.dumps(dict(spec.job.spec.flinkConfiguration), sort_keys=True, separators=(",", ":"))
        return {
            "job_id": op.str_id(key),
            "name": deployed.get("name"),
            "tasks": deployed.get("tasks"),
            "jar_digest": spec.jar_digest,
            "entry_class": job.entryClass,
            "args": list(job.args),
            "parallelism": job.parallelism,
            "config_sha256": hashlib.sha256(conf.encode()).hexdigest(),
        }

    def _cause(self, target: FlinkPort, job_id: str, exc: Exception | None) -> str:
        """Flink's root cause of a job's failure (``/jobs/:id/exceptions``), else the error we have."""
        try:
            cause = target.exceptions(job_id).root_cause()
        except FlinkGitOpsError:
            cause = None
        return cause or (str(exc) if exc is not None else "no cause given by Flink")

    def _newest(self, op: Operation) -> str | None:
        """RECOVER: the newest state of the job, chosen once and recorded (``restore-chosen``)."""
        if op.has("restore-chosen"):
            chosen = op.ids.get("state_path")
            return chosen if isinstance(chosen, str) else None
        candidates: list[tuple[int, str]] = []
        for item in op.ids.get("candidates") or []:
            if isinstance(item, dict) and isinstance(item.get("path"), str):
                candidates.append((int(item.get("at_ms") or 0), item["path"]))
        job_id = op.ids.get("from_job_id")
        never_checkpointed = False
        if isinstance(job_id, str):
            src = self.flink[op.ids.get("from_cluster") or op.ids["cluster"]]
            try:
                stats = src.checkpoints(job_id)
            except FlinkNotFound:
                stats = None  # vanished: only the recorded history is left
            if stats is not None:
                for info in (stats.latest.completed, stats.latest.savepoint):
                    if info is not None and info.external_path:
                        at = info.latest_ack_timestamp or info.trigger_timestamp or 0
                        candidates.append((at, info.external_path))
                never_checkpointed = stats.counts.completed == 0 and stats.latest.savepoint is None
        chosen = None
        for _at, path in sorted(candidates, reverse=True):
            if file_state_exists(path) is not False:
                chosen = path
                break
        if chosen is None and not (never_checkpointed and not candidates):
            where = f"job {job_id}" if job_id else "the job"
            raise RestoreRefused(
                f"no savepoint or retained checkpoint of {where} can be found (recorded or in Flink): "
                "not started empty; set initialSavepointPath and bump savepointRedeployNonce"
            )
        op.record(self.journal, "restore-chosen", state_path=chosen)
        failpoint("restore-chosen")
        return chosen

    def _give_up(self, op: Operation, spec: RunSpec) -> JobOutcome:
        """GIVE_UP: the restart budget is spent; the job is recorded FAILED with Flink's cause."""
        job_id = op.ids.get("from_job_id")
        cause = "no Flink job is recorded"
        if isinstance(job_id, str):
            src = self.flink[op.ids.get("from_cluster") or op.ids["cluster"]]
            try:
                cause = src.exceptions(job_id).root_cause() or f"job {job_id} failed; Flink gives no cause"
            except FlinkNotFound:
                cause = f"job {job_id} vanished from the cluster"
        outcome = JobOutcome(
            JobLifecycle.FAILED,
            job_id if isinstance(job_id, str) else None,
            op.ids["cluster"],
            failed_hash=spec.hash,
            error=f"restart budget spent: {cause}",
        )
        return self._finish(op, False, outcome, None)

    def _end_failed(self, op: Operation, key: str) -> None:
        """Cancel a new job that failed to become stable, if it still runs (it never was stable)."""
        job_id = op.ids.get(key)
        if not isinstance(job_id, str):
            return
        target = self.flink[op.ids["cluster"]]
        try:
            if target.job(job_id).state in _ENDED:
                return
            self._guard()
            target.cancel(job_id)
            target.wait_for_job_state(job_id, _ENDED, self.timeouts.readiness_s, cancelled=self.cancelled)
        except (FlinkNotFound, FlinkConflict):
            return

    def _savepoint(self, op: Operation, spec: RunSpec) -> JobOutcome:
        src = self.flink[op.ids["cluster"]]
        job_id = op.str_id("from_job_id")
        trigger = op.str_id("trigger_id")
        origin = op.ids.get("origin") or "manual"
        self._guard()
        if not op.has("savepoint-sent"):
            op.record(self.journal, "savepoint-sent")
        try:
            t0 = self.clock.monotonic()
            src.trigger_savepoint(job_id, trigger_id=trigger, target_directory=self.timeouts.savepoint_dir)
            location = self._wait_savepoint(src, job_id, trigger)
            self.savepoint_s = self.clock.monotonic() - t0
            self._verify(location)
        except PermanentError as exc:
            if origin != "periodic":
                raise
            # nobody asked for this one: the job runs on, the next try is after backoff
            error = f"periodic savepoint of job {job_id} failed (tried again later): {exc}"
            self._finish(op, False, self._unchanged(op, error), None)
            raise PeriodicSavepointFailed(error) from exc
        outcome = self._same(op, spec)
        outcome = JobOutcome(
            outcome.lifecycle,
            outcome.flink_job_id,
            outcome.cluster,
            reconciled=spec.to_record(),
            savepoint=location,
        )
        # the origin the intent names (nonce, periodic, manual); operations begun before it was
        # recorded were the manual command's or a nonce's: "manual", as they were recorded then
        return self._finish(op, True, outcome, (location, origin))

    def _unchanged(self, op: Operation, error: str) -> JobOutcome:
        """The job as it was before the operation (nothing was changed on Flink)."""
        lifecycle = JobLifecycle(op.ids.get("lifecycle", JobLifecycle.STABLE.value))
        cluster = op.ids.get("from_cluster") or op.ids["cluster"]
        return JobOutcome(lifecycle, op.ids.get("from_job_id"), cluster, error=error)

    def _same(self, op: Operation, spec: RunSpec) -> JobOutcome:
        lifecycle = JobLifecycle(op.ids.get("lifecycle", JobLifecycle.STABLE.value))
        if lifecycle is JobLifecycle.CREATED and spec.job.spec.job.state == "suspended":
            lifecycle = JobLifecycle.SUSPENDED  # a new job that starts suspended: recorded, never run
        return JobOutcome(
            lifecycle, op.ids.get("from_job_id"), op.ids["cluster"], reconciled=spec.to_record()
        )

    def _finish(
        self, op: Operation, ok: bool, outcome: JobOutcome, savepoint: tuple[str, str] | None
    ) -> JobOutcome:
        failpoint("before-finish")
        detail: dict[str, Any] = {"steps": list(op.steps)}
        if outcome.error:
            detail["error"] = outcome.error
        self.journal.finish(op.op_id, succeeded=ok, job=outcome, savepoint=savepoint, detail=detail)
        return outcome
