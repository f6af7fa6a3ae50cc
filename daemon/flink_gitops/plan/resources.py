"""Slots and parallelism caps: a start that does not fit its cluster waits, it does not fail. Pure.

The planner's last pass over its actions. Each action that starts a Flink job
(DEPLOY, RESUME, UPGRADE, REDEPLOY, RUN) needs as many slots as the job's
parallelism, or the cluster's default parallelism when the spec sets none (with
Flink's default slot sharing a job takes as many slots as its widest operator,
which is the job parallelism unless an operator sets its own). A per-cluster tally,
in the plan's (name) order, starts from the free slots the observer saw
(``GET /overview``); a job that an action stops gives its slots back to its cluster
before that action's own need is counted (an upgrade in place needs only the
difference), and so does a stop-only action (SUSPEND, PRUNE) for the actions after
it. An action that does not fit is dropped from the plan and reported WAITING
("waiting for 4 slots, 2 free"); it is planned again next cycle.

``max_total_parallelism`` (per cluster, from the config) caps the summed
parallelism of our live jobs on that cluster (jobs we do not manage are not
counted: their parallelism is not known): a start that would pass the cap waits,
one that alone needs more than the cap is REFUSED. A cluster whose slots are not
known (an observer that did not report them) is not gated. Resuming an operation
left open is never gated (it may hold its slots already).
Neighbours: ``plan.planner`` (calls :func:`fit`), ``observe.view`` (slots).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from flink_gitops.observe.view import ClusterView
from flink_gitops.plan.model import Action, ActionKind, JobReport, RecordedJob, Status
from flink_gitops.specs.loader import DesiredJob

#: action kinds that start a Flink job.
STARTS = frozenset(
    {
        ActionKind.DEPLOY,
        ActionKind.RESUME,
        ActionKind.UPGRADE,
        ActionKind.REDEPLOY,
        ActionKind.RUN,
        ActionKind.RECOVER,
    }
)


def _parallelism(spec_parallelism: int | None, view: ClusterView | None) -> int:
    if spec_parallelism is not None:
        return spec_parallelism
    if view is not None and view.default_parallelism is not None:
        return view.default_parallelism
    return 1  # Flink's own default for parallelism.default


def needed(action: Action, view: ClusterView | None) -> int:
    """Slots the job this action starts will take."""
    assert action.desired is not None
    return _parallelism(action.desired.spec.spec.job.parallelism, view)


def running_parallelism(rec: RecordedJob, want: DesiredJob | None, view: ClusterView | None) -> int:
    """Slots the job's current Flink job holds: its recorded spec's parallelism (Git's when equal)."""
    if want is not None and rec.reconciled is not None and want.spec_hash == rec.reconciled.hash:
        return _parallelism(want.spec.spec.job.parallelism, view)
    if rec.reconciled is not None:
        try:
            return _parallelism(rec.reconciled.spec.spec.job.parallelism, view)
        except LookupError:  # body not read (unchanged spec): Git's is the same
            pass
    if want is not None:
        return _parallelism(want.spec.spec.job.parallelism, view)
    return _parallelism(None, view)


@dataclass
class _Tally:
    free: int | None
    #: summed parallelism of our live jobs here, and the cap (None: no cap).
    used: int
    cap: int | None


def _live_here(rec: RecordedJob, cluster: str, observed: Mapping[str, ClusterView]) -> bool:
    view = observed.get(cluster)
    if view is None or rec.flink_job_id is None or rec.cluster != cluster:
        return False
    seen = view.jobs.get(rec.flink_job_id)
    return seen is not None and not seen.terminal


def fit(
    actions: list[Action],
    reports: dict[str, JobReport],
    observed: Mapping[str, ClusterView],
    recorded: Mapping[str, RecordedJob],
    desired: Mapping[str, DesiredJob],
    caps: Mapping[str, int],
) -> list[Action]:
    """The actions that fit, in order; the others get a WAITING or REFUSED report in ``reports``."""
    tallies: dict[str, _Tally] = {}

    def tally(cluster: str) -> _Tally:
        if cluster not in tallies:
            view = observed.get(cluster)
            cap = caps.get(cluster)
            used = 0
            if cap is not None:
                for rec in recorded.values():
                    if _live_here(rec, cluster, observed):
                        used += running_parallelism(rec, desired.get(rec.name), view)
            tallies[cluster] = _Tally(view.slots_free if view is not None else None, used, cap)
        return tallies[cluster]

    def frees(action: Action) -> int:
        """Slots the job this action stops gives back (0 when it stops none)."""
        rec = recorded.get(action.job)
        if action.stop == "none" or rec is None or action.from_cluster is None:
            return 0
        if not _live_here(rec, action.from_cluster, observed):
            return 0
        return running_parallelism(rec, desired.get(action.job), observed.get(action.from_cluster))

    out: list[Action] = []
    for action in actions:
        if action.kind not in STARTS or action.desired is None:
            if action.kind in (ActionKind.SUSPEND, ActionKind.PRUNE) and action.from_cluster is not None:
                give = frees(action)
                t = tally(action.from_cluster)
                t.used -= give
                if t.free is not None:
                    t.free += give
            out.append(action)
            continue
        view = observed.get(action.cluster)
        need = needed(action, view)
        give = frees(action)
        source = action.from_cluster or action.cluster
        here = tally(action.cluster)
        back_here = give if source == action.cluster else 0
        wait = _refusal(action, need, back_here, here, view)
        if wait is not None:
            reports[action.job] = wait
            continue
        if source != action.cluster:
            there = tally(source)
            there.used -= give
            if there.free is not None:
                there.free += give
        here.used += need - back_here
        if here.free is not None:
            here.free -= need - back_here
        out.append(action)
    return out


def _refusal(
    action: Action, need: int, back: int, here: _Tally, view: ClusterView | None
) -> JobReport | None:
    cluster = action.cluster
    if here.cap is not None:
        if need > here.cap:
            return JobReport(
                action.job,
                cluster,
                Status.REFUSED,
                f"{action.kind.value} refused: it needs parallelism {need}, more than cluster {cluster!r}'s "
                f"cap max_total_parallelism {here.cap}",
            )
        total = here.used - back + need
        if total > here.cap:
            return JobReport(
                action.job,
                cluster,
                Status.WAITING,
                f"{action.kind.value} waits: parallelism {need} would bring cluster {cluster!r} to "
                f"{total}, over its cap max_total_parallelism {here.cap} ({here.used - back} in use by "
                "our jobs)",
            )
    if here.free is not None and need > here.free + back:
        of = f" of {view.slots_total}" if view is not None and view.slots_total is not None else ""
        freed = f", {back} of them freed by its own stop" if back else ""
        return JobReport(
            action.job,
            cluster,
            Status.WAITING,
            f"{action.kind.value} waits: waiting for {need} slots, {here.free + back} free{of} on "
            f"cluster {cluster!r}{freed}",
        )
    return None
