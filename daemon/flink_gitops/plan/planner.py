"""The planner: a pure function (desired, observed, recorded, now) → :class:`~.model.Plan`.

No I/O, no clock, no randomness: the same inputs give the same plan, so it is
tested with plain values and hypothesis properties, no fakes. The rules, in
the order they are checked for each job (first match wins):

1. its cluster (and, on a move, the cluster it runs on now) could not be
   observed → UNKNOWN, no action: we never act blind;
2. a crash left an operation open → resume that operation, nothing else;
3. the spec is invalid in this revision → INVALID, left as it is;
4. gone from Git → REMOVED, reported; with pruning on, PRUNE (stop with a final savepoint,
   tombstone) unless its last file is invalid now or the revision would prune more than
   ``max_prune_fraction`` of the live jobs (then every prune is REFUSED; so all of them
   only when it is 1);
5. backoff after a failure → WAITING;
6. never deployed, or a removed job added again → DEPLOY (new life);
7. the spec hash failed before (rolled back / refused) → FAILED until it changes;
8. the change class (``specs.changes``) of last reconciled → desired picks the
   action: STATE suspend/resume, REDEPLOY nonces, UPGRADE/SCALE by upgradeMode,
   SAVEPOINT nonces, IGNORE → record only; no change → in sync unless the live
   job disagrees with what was deployed: ``plan.health`` decides (recover a
   failed or vanished job within the restart budget; heal, warn or observe a
   change made by hand). A batch job (``mode: batch``) is decided by
   ``plan.schedule`` instead: a RUN per spec revision, or on its cron schedule;
   a finished run is in sync;
9. in sync, and a periodic savepoint is due (``plan.savepoints``) → SAVEPOINT, origin periodic.

Then ``plan.windows`` holds the non-urgent action of a paused job or of one outside its sync
windows (PAUSED / HELD, no action; give-up and the resume of an open operation go ahead, and a
window, not a pause, lets the recovery of a failure through); its drift is still reported and
recorded.

Last, ``plan.resources`` holds back the starts that do not fit their cluster's free
slots or parallelism cap (WAITING, or REFUSED above the cap).

Neighbours: ``plan.model`` (the data), ``observe.view`` (observations),
``specs.changes`` (change classes), ``execute`` (carries the actions out).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Mapping
from datetime import datetime
from typing import Protocol

from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.observe.view import ClusterView, ObservedJob
from flink_gitops.plan import health as live_health
from flink_gitops.plan import schedule as batch
from flink_gitops.plan.model import (
    FRESH,
    Action,
    ActionKind,
    DriftChange,
    DriftKind,
    HealthPolicy,
    JobReport,
    Plan,
    RecordedJob,
    Restore,
    Status,
    StopHow,
)
from flink_gitops.plan.resources import fit
from flink_gitops.plan.savepoints import periodic_savepoint
from flink_gitops.plan.windows import HoldCheck, Holds, urgent
from flink_gitops.specs.changes import ChangeSet, classify
from flink_gitops.specs.loader import DesiredJob, DesiredState, InvalidJob
from flink_gitops.specs.model import Change

_DEFAULT_HEALTH = HealthPolicy()
_REDEPLOY_NONCE = "spec.job.savepointRedeployNonce"
_RESTART_NONCE = "spec.job.restartNonce"
_CHECKPOINT_NONCE = "spec.job.checkpointTriggerNonce"
_SAVEPOINT_NONCE = "spec.job.savepointTriggerNonce"


def plan(
    desired: DesiredState,
    observed: Mapping[str, ClusterView],
    recorded: Mapping[str, RecordedJob],
    now: datetime,
    *,
    only: Iterable[str] | None = None,
    prune: bool = False,
    max_prune_fraction: float = 1.0,
    health: HealthPolicy = _DEFAULT_HEALTH,
    caps: Mapping[str, int] | None = None,
    missed_run_grace_s: float = 600.0,
    holds: Holds | None = None,
) -> Plan:
    """Decide what to do for every job (or only the named ones); see the module docstring.

    ``caps``: cluster → max_total_parallelism; ``missed_run_grace_s``: see ``plan.schedule``;
    ``holds``: the pauses and sync windows (``plan.windows``).
    """
    names = set(desired.jobs) | set(recorded)
    if only is not None:
        names &= set(only)
    pruning = _prune_policy(desired, recorded, prune, max_prune_fraction)
    unmanaged = _unmanaged(observed, recorded.values())
    ctx = _Live(now, health, _names_by_cluster(unmanaged), missed_run_grace_s)
    check = holds.at(now) if holds is not None else None
    if check is not None and check.idle:
        check = None
    actions: list[Action] = []
    reports: dict[str, JobReport] = {}
    for name in sorted(names):
        rec = recorded.get(name)
        may_prune = rec is not None and desired.may_prune(name, rec.file)
        want = desired.jobs.get(name)
        result = _plan_job(name, want, rec, observed, now, pruning if may_prune else "kept", ctx)
        hold = _hold_of(check, name, want, rec)
        if isinstance(result, Action):
            if hold is not None and not urgent(result, hold[0]):
                status, why = hold
                reports[name] = JobReport(
                    name,
                    result.cluster,
                    status,
                    f"{why}; waiting: {result.kind.value} ({result.reason})",
                    drift=result.drift,
                    drift_since=_since(rec, result.drift, now),
                    hold=why,
                )
                continue
            actions.append(result)
            reports[name] = JobReport(
                name,
                result.cluster,
                Status.PENDING,
                result.reason,
                drift=result.drift,
                drift_since=_since(rec, result.drift, now),
                hold=hold[1] if hold is not None else None,
            )
        elif hold is not None:
            reports[name] = dataclasses.replace(result, reason=f"{result.reason} ({hold[1]})", hold=hold[1])
        else:
            reports[name] = result
    actions = fit(actions, reports, observed, recorded, desired.valid_jobs(), caps or {})
    unreachable = {c: v.error or "unreachable" for c, v in sorted(observed.items()) if not v.reachable}
    return Plan(tuple(actions), reports, unmanaged, unreachable, _drift_changes(reports, recorded, actions))


def _hold_of(
    check: HoldCheck | None, name: str, want: DesiredJob | InvalidJob | None, rec: RecordedJob | None
) -> tuple[Status, str] | None:
    """Whether a pause or sync window holds ``name`` now; its labels are read only if a window asks."""
    if check is None:
        return None

    def labels() -> Mapping[str, str]:
        if isinstance(want, DesiredJob):
            return want.spec.metadata.labels
        if rec is not None and rec.reconciled is not None:
            return rec.reconciled.spec.metadata.labels  # gone from Git: as last deployed
        return {}

    return check.of(name, labels)


class _Live:
    """What the live-drift rules need beyond one job: the time, the policy, unmanaged job names."""

    __slots__ = ("grace_s", "health", "now", "unmanaged")

    def __init__(
        self,
        now: datetime,
        health: HealthPolicy,
        unmanaged: Mapping[str, frozenset[str]],
        grace_s: float = 600.0,
    ) -> None:
        self.now = now
        self.health = health
        #: ``missed_run_grace_s`` (``plan.schedule``).
        self.grace_s = grace_s
        self.unmanaged = unmanaged


def _names_by_cluster(unmanaged: tuple[tuple[str, ObservedJob], ...]) -> dict[str, frozenset[str]]:
    out: dict[str, set[str]] = {}
    for cluster, job in unmanaged:
        out.setdefault(cluster, set()).add(job.name)
    return {c: frozenset(n) for c, n in out.items()}


def _since(rec: RecordedJob | None, kind: object, now: datetime) -> datetime | None:
    if kind is None:
        return None
    if rec is not None and rec.drift_kind == getattr(kind, "value", None) and rec.drift_since is not None:
        return rec.drift_since
    return now


#: statuses for which the live job was compared with the record (so "no drift" is known).
_COMPARED = frozenset({Status.IN_SYNC, Status.DRIFT})


def _drift_changes(
    reports: Mapping[str, JobReport], recorded: Mapping[str, RecordedJob], actions: list[Action]
) -> tuple[DriftChange, ...]:
    """Jobs whose live drift differs from the recorded one (started, changed kind, or ended)."""
    acted = {a.job: a for a in actions}
    out: list[DriftChange] = []
    for name, report in sorted(reports.items()):
        rec = recorded.get(name)
        if rec is None:
            continue
        action = acted.get(name)
        compared = report.status in _COMPARED or report.drift is not None
        if action is not None and action.drift is None:
            compared = False  # another action (spec change, resume): the drift is settled by it
        if not compared:
            continue
        kind = report.drift.value if report.drift is not None else None
        if kind == rec.drift_kind:
            continue
        out.append(
            DriftChange(name, report.cluster or rec.cluster, report.drift, report.reason, report.drift_since)
        )
    return tuple(out)


def _prune_policy(
    desired: DesiredState, recorded: Mapping[str, RecordedJob], prune: bool, max_fraction: float
) -> str | None:
    """None when the jobs gone from this revision may be pruned, else why not (a refusal or "off")."""
    if not prune:
        return "prune is off"
    live = [r for r in recorded.values() if r.lifecycle is not JobLifecycle.DELETED]
    gone = [r for r in live if r.name not in desired.jobs and desired.may_prune(r.name, r.file)]
    if live and len(gone) / len(live) > max_fraction:
        return (
            f"refused: this revision would prune {len(gone)} of {len(live)} jobs, more than "
            f"max_prune_fraction {max_fraction:g}"
        )
    return None


def _unmanaged(
    observed: Mapping[str, ClusterView], recorded: Iterable[RecordedJob]
) -> tuple[tuple[str, ObservedJob], ...]:
    ours: set[str] = set()
    for job in recorded:
        ours.update(i for i in (job.flink_job_id, job.pending_job_id) if i is not None)
    out: list[tuple[str, ObservedJob]] = []
    for cluster, view in sorted(observed.items()):
        out.extend((cluster, j) for j in view.live_jobs() if j.job_id not in ours)
    return tuple(out)


def _blind(observed: Mapping[str, ClusterView], *clusters: str | None) -> str | None:
    """The first named cluster that cannot be acted on, with why; None when all can."""
    for cluster in clusters:
        if cluster is None:
            continue
        view = observed.get(cluster)
        if view is None:
            return f"cluster {cluster!r} is not in the daemon's config"
        if not view.reachable:
            return f"cluster {cluster!r} could not be observed ({view.error or 'unreachable'})"
    return None


def _plan_job(
    name: str,
    want: DesiredJob | InvalidJob | None,
    rec: RecordedJob | None,
    observed: Mapping[str, ClusterView],
    now: datetime,
    pruning: str | None = "prune is off",
    ctx: _Live | None = None,
) -> Action | JobReport:
    ctx = ctx or _Live(now, _DEFAULT_HEALTH, {})
    live = rec is not None and rec.lifecycle is not JobLifecycle.DELETED
    target = want.spec.spec.cluster if isinstance(want, DesiredJob) else None
    current = rec.cluster if rec is not None and (live or rec.open_operation is not None) else None
    blind = _blind(observed, current, target)
    if blind is not None:
        return JobReport(name, target or current, Status.UNKNOWN, f"no action: {blind}")
    if rec is not None and rec.open_operation is not None:
        return Action(
            ActionKind.RESUME_OPERATION,
            name,
            rec.cluster,
            f"resume operation {rec.open_operation} left open by an earlier run",
            desired=want if isinstance(want, DesiredJob) else None,
            from_cluster=rec.cluster,
            current_job_id=rec.flink_job_id,
            operation_id=rec.open_operation,
        )
    if isinstance(want, InvalidJob):
        where = f"{want.file}:{want.line}" if want.line is not None else want.file
        first = want.problems[0].message if want.problems else "invalid"
        return JobReport(
            name, current, Status.INVALID, f"left as it is: its spec is invalid ({where}: {first})"
        )
    if want is None:
        assert rec is not None
        if not live:
            return JobReport(name, rec.cluster, Status.IN_SYNC, "removed; its history is kept")
        return _removed(name, rec, pruning, observed)
    if rec is not None and live and rec.next_attempt_at is not None and now < rec.next_attempt_at:
        when = rec.next_attempt_at.isoformat(timespec="seconds")
        return JobReport(
            name, target, Status.WAITING, f"backing off after: {rec.last_error}; next try {when}"
        )
    if rec is None or not live or rec.reconciled is None:
        return _first_deploy(name, want, rec, live, observed, now, ctx.grace_s)
    if want.spec_hash == rec.failed_hash:
        return JobReport(
            name, target, Status.FAILED, f"spec {want.spec_hash[:12]} failed before: {rec.last_error}"
        )
    result = _change(name, want, rec, observed, ctx)
    if isinstance(result, JobReport) and result.status is Status.IN_SYNC:
        return periodic_savepoint(want, rec, observed, now) or result  # never preempts a change
    return result


def _removed(
    name: str, rec: RecordedJob, pruning: str | None, observed: Mapping[str, ClusterView]
) -> Action | JobReport:
    if pruning == "kept":
        return JobReport(
            name,
            rec.cluster,
            Status.REMOVED,
            f"missing from Git, but its file {rec.file or '(unknown)'} or a directory above it is broken "
            "in this revision: kept running, never pruned on a guess",
        )
    if pruning is not None:
        status = Status.REFUSED if pruning.startswith("refused") else Status.REMOVED
        return JobReport(name, rec.cluster, status, f"removed from Git; still running ({pruning})")
    running = _alive(rec, observed)
    mode = rec.reconciled.spec.spec.job.upgradeMode if rec.reconciled is not None else "savepoint"
    stop: StopHow = "none" if running is None else ("cancel" if mode == "stateless" else "savepoint")
    why = (
        "removed from Git: prune with a final savepoint" if stop == "savepoint" else "removed from Git: prune"
    )
    return Action(
        ActionKind.PRUNE,
        name,
        rec.cluster,
        why,
        from_cluster=rec.cluster,
        current_job_id=rec.flink_job_id,
        stop=stop,
    )


def _first_deploy(
    name: str,
    want: DesiredJob,
    rec: RecordedJob | None,
    live: bool,
    observed: Mapping[str, ClusterView],
    now: datetime,
    grace_s: float,
) -> Action | JobReport:
    cluster = want.spec.spec.cluster
    job = want.spec.spec.job
    if job.state == "suspended":
        return Action(ActionKind.RECORD, name, cluster, "new job, suspended: recorded, not started", want)
    cron = want.spec.spec.schedule
    if cron is not None:
        if rec is not None and live:  # recorded, never reconciled: the schedule counts from its record
            return batch.plan_scheduled(name, want, rec, observed, now, grace_s, None)
        first = batch.parsed(cron).next_after(now)
        when = first.isoformat(timespec="minutes") if first is not None else "never"
        why = f"new scheduled batch job ({cron}, UTC): recorded; first run {when}"
        return Action(ActionKind.RECORD, name, cluster, why, want)
    restore = Restore("path", job.initialSavepointPath) if job.initialSavepointPath else FRESH
    why = "new job" if rec is None else ("added again: a new life" if not live else "not deployed yet")
    kind = ActionKind.DEPLOY
    if want.spec.spec.mode == "batch":
        kind, why = ActionKind.RUN, f"{why}: run the batch job"
    return Action(kind, name, cluster, why, want, restore=restore, new_life=not live)


def _alive(rec: RecordedJob, observed: Mapping[str, ClusterView]) -> ObservedJob | None:
    """The recorded Flink job as observed, if it is there and not terminal."""
    if rec.flink_job_id is None:
        return None
    seen = observed[rec.cluster].jobs.get(rec.flink_job_id)
    return seen if seen is not None and not seen.terminal else None


def _change(
    name: str, want: DesiredJob, rec: RecordedJob, observed: Mapping[str, ClusterView], ctx: _Live
) -> Action | JobReport:
    assert rec.reconciled is not None
    if want.spec_hash == rec.reconciled.hash and want.full_digest == rec.reconciled.full_digest:
        diff = ChangeSet(None, ())  # not one field changed: nothing to classify (or parse)
    else:
        diff = classify(rec.reconciled.spec, rec.reconciled.jar_digest, want.spec, want.jar_digest)
    target = want.spec.spec.cluster
    job = want.spec.spec.job
    suspended = rec.lifecycle is JobLifecycle.SUSPENDED
    running = _alive(rec, observed)

    def act(kind: ActionKind, reason: str, stop: StopHow = "none", restore: Restore = FRESH) -> Action:
        origin = "nonce" if kind is ActionKind.SAVEPOINT else None
        return Action(
            kind,
            name,
            target,
            reason,
            want,
            from_cluster=rec.cluster,
            current_job_id=rec.flink_job_id,
            change=diff.change,
            stop=stop,
            restore=restore,
            origin=origin,
        )

    if want.spec.spec.mode == "batch" and (job.state == "running" or not suspended):
        decided = batch.plan_batch(name, want, rec, observed, ctx.now, ctx.grace_s, diff, act, _fields(diff))
        if isinstance(decided, JobReport) and decided.status is Status.FAILED and not diff.changed:
            return _retry_batch(decided, want, rec, observed, ctx, act)
        return decided

    if suspended:
        if job.state == "suspended":
            if diff.changed:
                return act(ActionKind.RECORD, f"suspended; recorded {_fields(diff)} for the resume")
            return _in_sync(name, want, rec, observed, ctx)
        if job.upgradeMode == "stateless" or rec.savepoint is None:
            if job.upgradeMode != "stateless":
                return JobReport(
                    name, target, Status.REFUSED, "cannot resume: no savepoint is recorded for this job"
                )
            return act(ActionKind.RESUME, "resume (stateless: fresh)")
        return act(ActionKind.RESUME, f"resume from {rec.savepoint}", restore=Restore("path", rec.savepoint))

    if not diff.changed:
        return _in_sync(name, want, rec, observed, ctx)

    if job.state == "suspended":
        stop: StopHow = "cancel" if job.upgradeMode == "stateless" else "savepoint"
        if running is None:
            return act(ActionKind.SUSPEND, "suspend (no live job to stop)")
        return act(ActionKind.SUSPEND, "suspend with a savepoint" if stop == "savepoint" else "suspend", stop)

    paths = set(diff.paths)
    if diff.change is Change.REDEPLOY and _REDEPLOY_NONCE in paths:
        if job.initialSavepointPath is None:
            return JobReport(
                name,
                target,
                Status.REFUSED,
                "savepointRedeployNonce changed but initialSavepointPath is empty: set the savepoint to "
                "redeploy from",
            )
        stop = _stop_for(job.upgradeMode, running)
        return act(
            ActionKind.REDEPLOY,
            f"redeploy from {job.initialSavepointPath}",
            stop,
            Restore("path", job.initialSavepointPath),
        )

    if diff.change is not None and diff.change >= Change.SCALE:
        why = "restart" if paths == {_RESTART_NONCE} else f"upgrade ({_fields(diff)})"
        return _upgrade(act, why, job.upgradeMode, running, rec, name, target)

    if diff.change is Change.SAVEPOINT:
        if running is None:
            return JobReport(
                name, target, Status.DRIFT, "a savepoint was asked for but the job is not running"
            )
        if _SAVEPOINT_NONCE in paths:
            return act(ActionKind.SAVEPOINT, "savepointTriggerNonce changed: take a savepoint")
        assert _CHECKPOINT_NONCE in paths
        return act(ActionKind.CHECKPOINT, "checkpointTriggerNonce changed: take a checkpoint")

    return act(ActionKind.RECORD, f"record only ({_fields(diff)})")


def _retry_batch(
    failed: JobReport,
    want: DesiredJob,
    rec: RecordedJob,
    observed: Mapping[str, ClusterView],
    ctx: _Live,
    act: _Act,
) -> Action | JobReport:
    """An unscheduled batch run that FAILED runs again within the restart budget (with its backoff);
    past it, it is given up (recorded FAILED with Flink's cause). A scheduled one waits for its next
    fire time instead (``plan.schedule``)."""
    seen = observed[rec.cluster].jobs.get(rec.flink_job_id) if rec.flink_job_id else None
    policy = ctx.health
    if want.spec.spec.schedule is not None or seen is None or seen.state != "FAILED":
        return failed
    if policy.restart_budget == 0:
        return failed
    restarts = live_health.window_restarts(rec.restarts, ctx.now, policy)
    if len(restarts) >= policy.restart_budget:
        return Action(
            ActionKind.GIVE_UP,
            failed.job,
            failed.cluster or rec.cluster,
            f"{failed.reason}; restart budget spent ({len(restarts)} in {policy.restart_window_s:g} s)",
            want,
            from_cluster=rec.cluster,
            current_job_id=rec.flink_job_id,
            drift=DriftKind.FAILED,
        )
    wait = live_health.next_recovery_at(restarts, policy)
    budget = f"restart {len(restarts) + 1} of {policy.restart_budget}"
    if wait is not None and ctx.now < wait:
        return JobReport(
            failed.job,
            failed.cluster,
            Status.WAITING,
            f"{failed.reason}; {budget} after {wait.isoformat(timespec='seconds')}",
            drift=DriftKind.FAILED,
        )
    retry = act(ActionKind.RUN, f"retry the failed batch run ({budget}): {failed.reason}")
    return dataclasses.replace(retry, drift=DriftKind.FAILED)


class _Act(Protocol):
    """The shape of ``act`` in :func:`_change` (for typing ``_upgrade``)."""

    def __call__(
        self, kind: ActionKind, reason: str, stop: StopHow = "none", restore: Restore = FRESH
    ) -> Action: ...


def _stop_for(mode: str, running: ObservedJob | None) -> StopHow:
    if running is None:
        return "none"
    return "savepoint" if mode == "savepoint" else "cancel"


def _upgrade(
    act: _Act,
    why: str,
    mode: str,
    running: ObservedJob | None,
    rec: RecordedJob,
    name: str,
    target: str,
) -> Action | JobReport:
    if mode == "stateless":
        return act(ActionKind.UPGRADE, f"{why}, stateless", _stop_for(mode, running))
    if running is not None:
        if mode == "savepoint":
            return act(ActionKind.UPGRADE, f"{why} via savepoint", "savepoint", Restore("stop-savepoint"))
        return act(
            ActionKind.UPGRADE, f"{why} from the last checkpoint", "cancel", Restore("last-checkpoint")
        )
    # No live job to take state from: the newest of its recorded savepoints and retained checkpoints
    # and the old job's checkpoint stats (the executor looks, and refuses when there is none).
    return act(
        ActionKind.UPGRADE, f"{why} from its newest state (job not running)", restore=Restore("newest")
    )


def _fields(diff: ChangeSet) -> str:
    shown = [p.removeprefix("spec.") for p in diff.paths[:3]]
    more = f" +{len(diff.paths) - 3}" if len(diff.paths) > 3 else ""
    return ", ".join(shown) + more


def _in_sync(
    name: str, want: DesiredJob, rec: RecordedJob, observed: Mapping[str, ClusterView], ctx: _Live
) -> Action | JobReport:
    """No spec change: in sync, unless the live job drifted (then ``plan.health`` decides)."""
    target = want.spec.spec.cluster
    batch, scheduled = want.spec.spec.mode == "batch", want.spec.spec.schedule
    if rec.lifecycle is JobLifecycle.SUSPENDED:
        live = _alive(rec, observed)
        if live is not None:
            kind = DriftKind.RUNNING_WHILE_SUSPENDED
            why = f"suspended, but job {live.job_id} is {live.state}"
            return live_health.assess(
                name, want, rec, live, (kind, why), ctx.now, ctx.health, ctx.unmanaged.get(rec.cluster, ())
            )
        return JobReport(name, target, Status.IN_SYNC, "suspended")
    if rec.flink_job_id is None:
        if scheduled is not None:
            return JobReport(name, target, Status.IN_SYNC, f"scheduled ({scheduled}, UTC); not running now")
        return JobReport(name, target, Status.DRIFT, "no Flink job is recorded for it")
    seen = observed[rec.cluster].jobs.get(rec.flink_job_id)
    drift = live_health.drift_of(rec, seen, batch=batch)
    if drift is not None:
        unmanaged = ctx.unmanaged.get(rec.cluster, frozenset())
        return live_health.assess(name, want, rec, seen, drift, ctx.now, ctx.health, unmanaged)
    assert seen is not None
    if seen.state == "FINISHED" and batch:
        return JobReport(name, target, Status.IN_SYNC, "batch job finished")
    if rec.lifecycle is JobLifecycle.ROLLED_BACK:
        return JobReport(name, target, Status.IN_SYNC, f"rolled back; running job {seen.job_id}")
    return JobReport(name, target, Status.IN_SYNC, f"running job {seen.job_id} ({seen.state.lower()})")
