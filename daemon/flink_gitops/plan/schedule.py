"""Batch jobs (``spec.mode: batch``): when a run starts, and how a run's outcome is reported. Pure.

A batch job runs to FINISHED; a finished run is in sync, never drift and never
redeployed while the spec is unchanged. Without ``spec.schedule`` it runs once per
spec revision (a change that the running job would depend on runs it again). With a
schedule (5-field cron, UTC, :mod:`flink_gitops.cron`), a run starts when a fire time
has passed that is later than the job's anchor: the scheduled time of its last
started run (``RecordedJob.last_run_at``), or, before its first run, when the job was
recorded (``RecordedJob.since``), so a new job never "catches up" on fire times from
before it existed. The policy, evaluated each cycle with the injected ``now``:

- missed runs (the daemon was down, or a run was still going) coalesce into at most
  one run, for the latest missed fire time, and only while that time is at most
  ``grace`` ago (``sync.missed_run_grace_s``); later than that they are skipped and
  reported, and the job waits for its next fire time;
- never two runs at once: a fire time that comes while the previous run is still
  going waits (WAITING) until that run ends, under the same grace rule;
- a FAILED run is reported with its cause (when the observer read one) and retried
  at the next fire time; restarts within a budget are the recovery stage's.

Each run is a new Flink job (a new generation: the executor's ``RUN`` action).
:func:`scheduled` is the decision for a scheduled job (recovery may call it too),
:func:`plan_batch` / :func:`plan_scheduled` turn it into the planner's action or
report, and :func:`next_run` serves ``status``. Neighbours: ``flink_gitops.cron`` (fire times),
``plan.planner`` (calls this), ``execute`` (starts the run and writes
``last_run_at`` from the operation's intent).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import lru_cache
from typing import Protocol

from flink_gitops import cron
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan.model import (
    FRESH,
    Action,
    ActionKind,
    JobReport,
    RecordedJob,
    Restore,
    Status,
    StopHow,
)
from flink_gitops.specs.changes import ChangeSet
from flink_gitops.specs.loader import DesiredJob
from flink_gitops.specs.model import Change

#: missed fire times counted for a report at most (a per-minute schedule down for a month has 43,200).
COUNT_LIMIT = 100


@lru_cache(maxsize=4096)
def parsed(schedule: str) -> cron.Cron:
    """The parsed schedule (specs validated it already); cached, the same text comes every cycle."""
    return cron.parse(schedule)


def _at(t: datetime | None) -> str:
    return t.isoformat(timespec="minutes").replace("+00:00", "Z") if t is not None else "never"


@dataclass(frozen=True, slots=True)
class BatchDecision:
    """What to do about one scheduled batch job now."""

    #: PENDING (start a run now), IN_SYNC, WAITING or FAILED.
    status: Status
    reason: str
    #: the fire time a run is started for (PENDING only): goes into the operation's intent.
    run_for: datetime | None = None
    #: the next fire time after now (None: the schedule never fires again).
    next_at: datetime | None = None
    #: missed fire times not run (coalesced into this run, or skipped); at most COUNT_LIMIT.
    missed: int = 0

    @property
    def start(self) -> bool:
        return self.status is Status.PENDING


def anchor(last_run_at: datetime | None, since: datetime | None, now: datetime) -> datetime:
    """Fire times after this are ours to run: the last run's scheduled time, else the record's birth."""
    if last_run_at is not None:
        return last_run_at
    return since if since is not None else now


def run_outcome(seen: ObservedJob | None, cause: str | None = None) -> str:
    """One phrase on the last run's Flink job: running, finished, failed (with its cause), gone."""
    if seen is None:
        return "no longer listed by Flink"
    if seen.state == "FAILED":
        return f"FAILED: {cause}" if cause else "FAILED (cause not read)"
    return seen.state


def scheduled(
    schedule: str,
    *,
    last_run_at: datetime | None,
    since: datetime | None,
    last_job: str | None,
    seen: ObservedJob | None,
    now: datetime,
    grace_s: float,
    cause: str | None = None,
    failed_to_start: str | None = None,
) -> BatchDecision:
    """Whether a scheduled batch job starts a run now; see the module docstring for the policy.

    ``last_job`` is the Flink job id of the last run (None: never ran), ``seen`` that job as
    observed (None: not listed), ``cause`` its failure cause if the observer read one, and
    ``failed_to_start`` the error of a last run that Flink refused at submit.
    """
    c = parsed(schedule)
    base = anchor(last_run_at, since, now)
    latest = c.latest_at_or_before(now)
    nxt = c.next_after(now)
    live = seen is not None and not seen.terminal
    head = f"scheduled ({schedule}, UTC)"
    if latest is None or latest <= base:
        if last_job is None and failed_to_start is None:
            return BatchDecision(Status.IN_SYNC, f"{head}: first run {_at(nxt)}", next_at=nxt)
        last = f"last run {_at(last_run_at)}"
        if failed_to_start is not None and (last_job is None or not live):
            why = f"{head}: {last} could not start: {failed_to_start}; retried at the next run {_at(nxt)}"
            return BatchDecision(Status.FAILED, why, next_at=nxt)
        outcome = run_outcome(seen, cause)
        if seen is not None and seen.state in ("FAILED", "CANCELED"):
            why = f"{head}: {last} (job {last_job}) {outcome}; retried at the next run {_at(nxt)}"
            return BatchDecision(Status.FAILED, why, next_at=nxt)
        return BatchDecision(
            Status.IN_SYNC, f"{head}: {last} (job {last_job}) {outcome}; next run {_at(nxt)}", next_at=nxt
        )
    missed = len(c.fire_times(base, latest, COUNT_LIMIT))
    many = f"{missed}{'+' if missed >= COUNT_LIMIT else ''}"
    late = (now - latest).total_seconds()
    if late > grace_s:
        why = (
            f"{head}: skipped {many} missed run(s), the latest for {_at(latest)}, {late:.0f} s ago, "
            f"more than the grace of {grace_s:g} s (sync.missed_run_grace_s); next run {_at(nxt)}"
        )
        return BatchDecision(Status.IN_SYNC, why, next_at=nxt, missed=missed)
    if live:
        assert seen is not None
        why = (
            f"{head}: the run for {_at(latest)} waits: the run for {_at(last_run_at)} "
            f"(job {seen.job_id}) is still {seen.state}; never two runs at once"
        )
        return BatchDecision(Status.WAITING, why, next_at=nxt, missed=missed)
    why = f"{head}: run for {_at(latest)}"
    if missed > 1:
        why += f" ({many} missed fire times coalesced into one run)"
    return BatchDecision(Status.PENDING, why, run_for=latest, next_at=nxt, missed=missed)


def next_run(
    schedule: str,
    *,
    last_run_at: datetime | None,
    since: datetime | None,
    now: datetime,
    grace_s: float,
) -> tuple[datetime | None, bool]:
    """For ``status``: (the next run's fire time, whether it is due now, i.e. missed but in grace)."""
    c = parsed(schedule)
    base = anchor(last_run_at, since, now)
    latest = c.latest_at_or_before(now)
    if latest is not None and latest > base and now - latest <= timedelta(seconds=grace_s):
        return latest, True
    return c.next_after(now), False


class Act(Protocol):
    """The planner's action builder for one job (``act`` in ``plan.planner._change``)."""

    def __call__(
        self, kind: ActionKind, reason: str, stop: StopHow = "none", restore: Restore = FRESH
    ) -> Action: ...


def _last_run(rec: RecordedJob, observed: Mapping[str, ClusterView]) -> tuple[ObservedJob | None, str | None]:
    """The last run's Flink job as observed (None: not listed, or never ran) and its failure cause."""
    if rec.flink_job_id is None:
        return None, None
    view = observed[rec.cluster]
    return view.jobs.get(rec.flink_job_id), view.causes.get(rec.flink_job_id)


def plan_scheduled(
    name: str,
    want: DesiredJob,
    rec: RecordedJob,
    observed: Mapping[str, ClusterView],
    now: datetime,
    grace_s: float,
    act: Act | None,
    changed: str | None = None,
) -> Action | JobReport:
    """A scheduled batch job: a RUN when a fire time is due (``plan.schedule.scheduled``)."""
    assert want.spec.spec.schedule is not None
    target = want.spec.spec.cluster
    seen, cause = _last_run(rec, observed)
    decision = scheduled(
        want.spec.spec.schedule,
        last_run_at=rec.last_run_at,
        since=rec.since,
        last_job=rec.flink_job_id,
        seen=seen,
        now=now,
        grace_s=grace_s,
        cause=cause,
        failed_to_start=rec.last_error if rec.lifecycle is JobLifecycle.FAILED else None,
    )
    if decision.start:
        if act is None:
            return Action(ActionKind.RUN, name, target, decision.reason, want, scheduled_at=decision.run_for)
        return dataclasses.replace(act(ActionKind.RUN, decision.reason), scheduled_at=decision.run_for)
    if changed is not None and act is not None:
        return act(ActionKind.RECORD, f"recorded {changed} for the next run; {decision.reason}")
    return JobReport(name, target, decision.status, decision.reason)


def plan_batch(
    name: str,
    want: DesiredJob,
    rec: RecordedJob,
    observed: Mapping[str, ClusterView],
    now: datetime,
    grace_s: float,
    diff: ChangeSet,
    act: Act,
    fields: str,
) -> Action | JobReport:
    """A batch job already recorded: run again on a change (or on its schedule), else report the run."""
    target = want.spec.spec.cluster
    job = want.spec.spec.job
    seen, cause = _last_run(rec, observed)
    live = seen is not None and not seen.terminal
    if job.state == "suspended":  # not suspended yet: a batch run cannot take a savepoint, cancel it
        if live:
            return act(ActionKind.SUSPEND, "suspend: cancel the batch run", "cancel")
        return act(ActionKind.SUSPEND, "suspend (no batch run is going)")
    resumed = rec.lifecycle is JobLifecycle.SUSPENDED
    rerun = resumed or (diff.change is not None and diff.change >= Change.SCALE)
    if want.spec.spec.schedule is not None:
        return plan_scheduled(name, want, rec, observed, now, grace_s, act, fields if diff.changed else None)
    if rerun:
        why = "resumed" if resumed and not diff.paths else f"spec changed ({fields})"
        if live:
            assert seen is not None
            return JobReport(
                name,
                target,
                Status.WAITING,
                f"{why}: the new run waits until the current run (job {seen.job_id}, {seen.state}) ends; "
                "never two runs at once",
            )
        return act(ActionKind.RUN, f"{why}: run the batch job again")
    if diff.changed:
        return act(ActionKind.RECORD, f"record only ({fields})")
    if rec.flink_job_id is None:
        return JobReport(name, target, Status.DRIFT, "batch job: no run of it is recorded")
    outcome = run_outcome(seen, cause)
    if seen is None:
        return JobReport(
            name,
            target,
            Status.IN_SYNC,
            f"batch run {rec.flink_job_id} {outcome} (Flink drops finished jobs from its history); "
            "not run again while the spec is unchanged",
        )
    if seen.state in ("FAILED", "CANCELED"):
        return JobReport(
            name,
            target,
            Status.FAILED,
            f"batch run {seen.job_id} {outcome}; runs again when the spec changes",
        )
    return JobReport(name, target, Status.IN_SYNC, f"batch run {seen.job_id} {outcome.lower()}")
