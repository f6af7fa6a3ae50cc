"""Pause and resume, audited: what ``flink-gitops pause|resume [JOB]`` and the HTTP API call.

A pause holds a job's (or, without a job, every job's) non-urgent actions while the daemon
keeps observing and alerting (``plan.windows`` says what is held). Each call that changes
something writes its audit record first (``job.pause`` / ``job.resume``, or ``sync.pause`` /
``sync.resume`` for every job) through ``AuditTrail.guard``: no record, no change. Pausing what
is paused, or resuming what is not, changes nothing, writes no record and says so. Pausing a
job the store does not know is an error naming it; a reason is cut to ``MAX_REASON`` characters,
its NUL and lone surrogates (a non-UTF-8 argv, a JSON escape) replaced by U+FFFD.
Neighbours: ``record.store.pauses`` (the rows), ``execute.cycle`` (reads them every cycle),
``cli.pause`` and ``service.api`` (the callers).
"""

from __future__ import annotations

from dataclasses import dataclass

from flink_gitops.errors import PermanentError
from flink_gitops.plan.windows import Pause
from flink_gitops.record.audit import AuditEvent, AuditTrail
from flink_gitops.record.store import GLOBAL_PAUSE, PauseRecord, Store
from flink_gitops.record.store.base import text
from flink_gitops.record.store.pauses import MAX_REASON
from flink_gitops.specs.errors import quote


class UnknownJobError(PermanentError):
    """A pause or resume named a job the store does not know."""


@dataclass(frozen=True, slots=True)
class PauseOutcome:
    """What a pause or resume did."""

    #: the pause in force after a pause, or the one removed by a resume (None: there was none).
    pause: PauseRecord | None
    #: False: nothing changed (paused already, or not paused).
    changed: bool
    #: the reason was longer than MAX_REASON characters and was cut.
    cut: bool = False

    def describe(self, verb: str, job: str | None) -> str:
        """One line for the CLI and the API."""
        what = f"job {job}" if job is not None else "every job"
        p = self.pause
        if verb == "pause":
            assert p is not None
            since = p.paused_at.isoformat(timespec="seconds").replace("+00:00", "Z")
            if not self.changed:
                return f"{what} is already paused (by {p.paused_by} at {since}): nothing changed"
            cut = f" (reason cut to {MAX_REASON} characters)" if self.cut else ""
            return f"{what} paused: non-urgent actions are held, it is still observed{cut}"
        if not self.changed:
            return f"{what} was not paused: nothing changed"
        return f"{what} resumed (paused by {p.paused_by if p else '?'})"


def as_pause(record: PauseRecord) -> Pause:
    """The planner's view of a stored pause."""
    return Pause(record.job, record.reason, record.paused_by, record.paused_at)


def _scope(store: Store, job: str | None, *, resuming: bool) -> str:
    if job is None:
        return GLOBAL_PAUSE
    known = store.jobs.get(job)
    if known is not None and not known.deleted:
        return job
    if resuming and store.pauses.get(job) is not None:
        return job  # a pause outliving its job (removed from Git and pruned) can still be lifted
    raise UnknownJobError(f"no job named {quote(job)} is recorded: nothing to pause or resume")


def pause(store: Store, audit: AuditTrail, job: str | None, reason: str, *, actor: str) -> PauseOutcome:
    """Pause ``job`` (None: every job); audited first; idempotent."""
    scope = _scope(store, job, resuming=False)
    existing = store.pauses.get(scope)
    if existing is not None:
        return PauseOutcome(existing, changed=False)
    kept = text(reason[:MAX_REASON]) or ""  # no NUL or lone surrogate (argv, JSON): the audit is JSON
    event = AuditEvent(
        action="job.pause" if job is not None else "sync.pause",
        actor=actor,
        job=job,
        details={"reason": kept},
    )
    with audit.guard(event) as scope_:
        record, created = store.pauses.pause(scope, reason=kept, by=actor)
        if not created:
            scope_.outcome("already-paused")
    return PauseOutcome(record, changed=created, cut=len(reason) > MAX_REASON)


def resume(store: Store, audit: AuditTrail, job: str | None, *, actor: str) -> PauseOutcome:
    """Lift the pause of ``job`` (None: the global pause; per-job pauses stay); audited first."""
    scope = _scope(store, job, resuming=True)
    existing = store.pauses.get(scope)
    if existing is None:
        return PauseOutcome(None, changed=False)
    event = AuditEvent(
        action="job.resume" if job is not None else "sync.resume",
        actor=actor,
        job=job,
        details={"paused_by": existing.paused_by, "reason": existing.reason},
    )
    with audit.guard(event) as scope_:
        removed = store.pauses.resume(scope)
        if removed is None:
            scope_.outcome("not-paused")
    return PauseOutcome(removed, changed=removed is not None)
