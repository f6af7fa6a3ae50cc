"""Live drift and recovery: what to do when the running job no longer matches what was deployed.

Pure functions the planner calls for a job whose spec did not change. The
live job is compared with the deployed fingerprint (``RecordedJob.fingerprint``,
written when a start became stable): its job id (ours by construction), its
state, its Flink job name and its task count — what ``/jobs/overview`` shows,
so drift costs no REST call per job. Two families, two rules:

- failures (FAILED, or vanished: a JobManager restarted without HA) are
  recovered from the newest savepoint or retained checkpoint with exponential
  backoff, within the restart budget (N recoveries in a window, as the Flink
  operator's restarts.threshold / restarts.window); past it the job is given up
  (recorded FAILED with Flink's cause) until the spec changes or
  ``flink-gitops restart JOB``; ``restart_budget: 0`` turns recovery off;
- changes made by hand (cancelled or stopped, rescaled, another program under
  our id) follow the job's drift policy: heal (redeploy, state kept; counted
  against the same budget so a flapping job stops), warn (report and alert,
  never act), observe (record only).

Neither ever runs a second copy: when an unmanaged job with the same Flink job
name runs on the cluster (someone restarted it by hand), nothing is redeployed.
Neighbours: ``plan.planner`` (calls :func:`assess`), ``plan.model`` (the data),
``execute`` (RECOVER / GIVE_UP procedures).
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime, timedelta

from flink_gitops.observe.view import ObservedJob
from flink_gitops.plan.model import (
    Action,
    ActionKind,
    DriftKind,
    DriftPolicy,
    HealthPolicy,
    JobReport,
    RecordedJob,
    Restore,
    Status,
    StopHow,
)
from flink_gitops.specs.loader import DesiredJob


def drift_of(rec: RecordedJob, seen: ObservedJob | None, *, batch: bool) -> tuple[DriftKind, str] | None:
    """The live drift of a job recorded as running, with a one-line detail; None when it matches."""
    job_id = rec.flink_job_id
    if seen is None:
        return DriftKind.MISSING, f"job {job_id} is missing from the cluster"
    if seen.state == "FAILED":
        return DriftKind.FAILED, f"job {job_id} FAILED"
    if seen.state == "CANCELED":
        return DriftKind.CANCELLED, f"job {job_id} was cancelled outside flink-gitops"
    if seen.state == "FINISHED":
        if batch:
            return None
        return DriftKind.CANCELLED, f"job {job_id} was stopped outside flink-gitops (FINISHED)"
    deployed = rec.fingerprint or {}
    name, tasks = deployed.get("name"), deployed.get("tasks")
    if isinstance(name, str) and seen.name and seen.name != name:
        return DriftKind.CHANGED, f"job {job_id} runs as {seen.name!r}, deployed as {name!r}"
    if isinstance(tasks, int) and seen.tasks is not None and seen.tasks != tasks:
        return DriftKind.RESCALED, f"job {job_id} runs {seen.tasks} tasks, deployed with {tasks}"
    return None


def policy_of(want: DesiredJob, default: DriftPolicy) -> DriftPolicy:
    return want.spec.spec.drift or default


def window_restarts(restarts: Iterable[datetime], now: datetime, policy: HealthPolicy) -> list[datetime]:
    """The recoveries (of ``RecordedJob.restarts``) inside the restart window, oldest first."""
    start = now - timedelta(seconds=policy.restart_window_s)
    return [t for t in restarts if t > start]


def next_recovery_at(restarts: list[datetime], policy: HealthPolicy) -> datetime | None:
    """No recovery before this: backoff_initial_s after the first one in the window, doubling."""
    if not restarts:
        return None
    delay = min(policy.backoff_max_s, policy.backoff_initial_s * 2 ** (len(restarts) - 1))
    return restarts[-1] + timedelta(seconds=delay)


def assess(
    name: str,
    want: DesiredJob,
    rec: RecordedJob,
    seen: ObservedJob | None,
    drift: tuple[DriftKind, str],
    now: datetime,
    policy: HealthPolicy,
    unmanaged_names: Collection[str],
) -> Action | JobReport:
    """What to do about ``drift`` (see the module docstring); ``seen`` is the live job, if any."""
    kind, detail = drift
    target = want.spec.spec.cluster
    since = rec.drift_since if rec.drift_kind == kind.value and rec.drift_since is not None else now

    def report(status: Status, why: str) -> JobReport:
        return JobReport(name, target, status, why, drift=kind, drift_since=since)

    job_policy = policy_of(want, policy.drift)
    if not kind.failure and job_policy != "heal":
        verb = "reported" if job_policy == "warn" else "observed"
        return report(Status.DRIFT, f"{detail} (drift: {job_policy}: {verb}, not acted on)")
    if kind is DriftKind.RUNNING_WHILE_SUSPENDED:
        return report(Status.DRIFT, f"{detail}: suspend it again by hand or resume it in Git")
    if policy.restart_budget == 0:
        return report(Status.DRIFT, f"{detail} (recovery is off: sync.restart_budget is 0)")
    live_name = (rec.fingerprint or {}).get("name") or (seen.name if seen is not None else None)
    if (seen is None or seen.terminal) and isinstance(live_name, str) and live_name in unmanaged_names:
        return report(
            Status.DRIFT,
            f"{detail}; an unmanaged job named {live_name!r} runs on the cluster: not redeployed "
            "(that would run it twice)",
        )
    restarts = window_restarts(rec.restarts, now, policy)
    if len(restarts) >= policy.restart_budget:
        window = f"{policy.restart_window_s:g} s"
        return Action(
            ActionKind.GIVE_UP,
            name,
            target,
            f"{detail}; restart budget spent ({len(restarts)} in {window}): recorded FAILED",
            want,
            from_cluster=rec.cluster,
            current_job_id=rec.flink_job_id,
            drift=kind,
        )
    wait = next_recovery_at(restarts, policy)
    if wait is not None and now < wait:
        return report(
            Status.WAITING,
            f"{detail}; recovery {len(restarts) + 1} of {policy.restart_budget} after "
            f"{wait.isoformat(timespec='seconds')}",
        )
    mode = want.spec.spec.job.upgradeMode
    what = "heal" if not kind.failure else "recover"
    budget = f"restart {len(restarts) + 1} of {policy.restart_budget}"
    stop: StopHow = "none"
    if seen is not None and not seen.terminal:
        # still running, but not as deployed: end it by upgradeMode, run the spec from its state
        if mode == "stateless":
            stop, restore = "cancel", Restore("none")
        elif mode == "savepoint":
            stop, restore = "savepoint", Restore("stop-savepoint")
        else:
            stop, restore = "cancel", Restore("last-checkpoint")
        why = f"{what}: {detail} ({budget})"
    else:
        restore = Restore("none") if mode == "stateless" else Restore("newest")
        why = f"{what}: {detail}; from its newest state ({budget})"
    return Action(
        ActionKind.RECOVER,
        name,
        target,
        why,
        want,
        from_cluster=rec.cluster,
        current_job_id=rec.flink_job_id,
        stop=stop,
        restore=restore,
        drift=kind,
    )
