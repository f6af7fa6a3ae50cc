"""Periodic savepoints (``spec.savepoints.periodic``): when one is due, as a pure rule.

A job gets a periodic savepoint when all of these hold:

- its spec sets ``savepoints.periodic`` (seconds) and it is a streaming job (Flink takes no
  savepoints of batch jobs);
- the planner found it in sync: nothing else is planned for it this cycle, so a periodic
  savepoint never preempts a spec change, a suspend or a recovery (one action per job per cycle);
- its lifecycle runs a job (deployed, stable, rolled back) and that Flink job is RUNNING on its
  cluster as observed this cycle;
- its current savepoint was taken ``periodic`` seconds ago or longer (``RecordedJob.savepoint_at``,
  written by the journal with every new current savepoint, whatever its origin), or no time is
  recorded for it (never a savepoint, or one from before the time was kept): then it is due now.

Neighbours: ``plan.planner`` (calls :func:`periodic_savepoint` for jobs in sync),
``plan.model`` (the action), ``execute.procedures`` (takes it, origin periodic).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta

from flink_gitops.observe.view import ClusterView
from flink_gitops.plan.model import Action, ActionKind, RecordedJob
from flink_gitops.specs.loader import DesiredJob


def periodic_due(
    want: DesiredJob, rec: RecordedJob, observed: Mapping[str, ClusterView], now: datetime
) -> str | None:
    """Why a periodic savepoint is due now (one line), or None when it is not."""
    every = want.spec.spec.savepoints.periodic
    if every is None or want.spec.spec.mode == "batch":
        return None
    if not rec.lifecycle.runs_a_job or rec.flink_job_id is None:
        return None
    view = observed.get(rec.cluster)
    seen = view.jobs.get(rec.flink_job_id) if view is not None and view.reachable else None
    if seen is None or seen.state != "RUNNING":
        return None
    if rec.savepoint_at is None:
        return f"periodic savepoint (every {every} s): no savepoint time is recorded yet"
    age = (now - rec.savepoint_at).total_seconds()
    if now - rec.savepoint_at < timedelta(seconds=every):
        return None
    return f"periodic savepoint (every {every} s): the newest is {age:.0f} s old"


def periodic_savepoint(
    want: DesiredJob, rec: RecordedJob, observed: Mapping[str, ClusterView], now: datetime
) -> Action | None:
    """A SAVEPOINT action with origin periodic when one is due (see the module docstring)."""
    why = periodic_due(want, rec, observed, now)
    if why is None:
        return None
    return Action(
        ActionKind.SAVEPOINT,
        rec.name,
        rec.cluster,
        why,
        want,
        from_cluster=rec.cluster,
        current_job_id=rec.flink_job_id,
        origin="periodic",
    )
