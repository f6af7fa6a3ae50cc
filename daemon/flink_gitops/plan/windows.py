"""Sync windows and pauses: when a job's non-urgent actions are held. Pure, like the planner.

Two sources of a hold, checked for every job after the planner decided its action:

- a pause (``flink-gitops pause [JOB]``, kept in the store): of that job, or of every job;
- sync windows (``sync.windows``), as Argo CD's: each is ``allow`` or ``deny``, opens at every
  fire time of its cron ``schedule`` (5 fields, UTC, :mod:`flink_gitops.cron`) and stays open
  ``duration_s``. A window applies to a job whose name matches one of its ``jobs`` (names or
  ``fnmatch`` globs) or that carries all of its ``labels`` (either suffices, as Argo CD's
  applications/namespaces/clusters lists); one with neither applies to every job. A job is held
  while a deny window that applies to it is open, and, when any allow window applies to it,
  while none of those is open; deny wins over allow.

A held job gets no action and a report (PAUSED or HELD) saying why, who paused it and when, or
until when the window holds it. It is still observed: its drift and failures are reported (so
alerts fire) and recorded. Never held (:func:`urgent`): resuming an operation a crash left open
(crash safety: a half-done upgrade is finished, not left with no job running), and giving up on a
failed job (that records the failure, changes nothing in Flink); nor, by a window, recovering a
FAILED or vanished job (also a failed batch run's retry) — a pause holds that too: whoever
paused a job is handling it, and the failure is still reported and alerted. Everything else waits:
deploy, upgrade, suspend and resume, nonces, record-only changes, prune, heal of a change made
by hand, periodic savepoints and scheduled batch runs. A scheduled run whose fire time passes
while held is started when the hold ends if that is within ``sync.missed_run_grace_s`` of the
fire time (``plan.schedule``), else skipped and reported as missed like any missed run.
Neighbours: ``plan.planner`` (applies :class:`HoldCheck`), ``settings.SyncWindowConfig`` (the
config), ``execute.cycle`` (builds :class:`Holds` from the store's pauses and the settings).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from fnmatch import fnmatchcase
from typing import Literal

from flink_gitops.plan.model import Action, ActionKind, Status
from flink_gitops.plan.schedule import parsed

#: fire times of one window chained into one stretch at most (a window that fires again before
#: it closes stays open; ``until`` says "at least" past this).
CHAIN_LIMIT = 500


def _at(t: datetime) -> str:
    return t.isoformat(timespec="seconds").replace("+00:00", "Z")


@dataclass(frozen=True, slots=True)
class SyncWindow:
    """One sync window (``settings.SyncWindowConfig``, validated there)."""

    kind: Literal["allow", "deny"]
    schedule: str
    #: seconds the window stays open after each fire time (> 0).
    duration_s: float
    #: job names or fnmatch globs; with ``labels`` empty too, every job.
    jobs: tuple[str, ...] = ()
    #: (key, value) pairs a job must all carry.
    labels: tuple[tuple[str, str], ...] = ()

    @property
    def everyone(self) -> bool:
        return not self.jobs and not self.labels

    def applies(self, name: str, labels: Callable[[], Mapping[str, str]]) -> bool:
        """Whether this window applies to job ``name`` (``labels`` is called only when needed)."""
        if self.everyone or any(fnmatchcase(name, p) for p in self.jobs):
            return True
        if not self.labels:
            return False
        have = labels()
        return all(have.get(k) == v for k, v in self.labels)

    def open_until(self, now: datetime) -> datetime | None:
        """When the stretch of this window that is open at ``now`` closes; None when it is closed."""
        cron = parsed(self.schedule)
        start = cron.latest_at_or_before(now)
        span = timedelta(seconds=self.duration_s)
        if start is None or now >= start + span:
            return None
        end = start + span
        for _ in range(CHAIN_LIMIT):  # a fire time before the end keeps it open longer
            nxt = cron.next_after(start)
            if nxt is None or nxt >= end:
                break
            start, end = nxt, max(end, nxt + span)
        return end

    def describe(self) -> str:
        return f"{self.kind} '{self.schedule}'"


@dataclass(frozen=True, slots=True)
class Pause:
    """A pause as the planner needs it (from the store's ``PauseRecord``)."""

    #: None: every job (a global pause).
    job: str | None
    reason: str
    by: str
    at: datetime

    def describe(self) -> str:
        what = "paused" if self.job is not None else "paused (every job)"
        why = f": {self.reason}" if self.reason else ""
        return f"{what} by {self.by} at {_at(self.at)}{why}"


def urgent(action: Action, hold: Status = Status.HELD) -> bool:
    """Actions a hold of kind ``hold`` never holds (see the module docstring): a window never holds
    the recovery of a failure; a pause (someone said "stop acting") holds that too."""
    if action.kind in (ActionKind.RESUME_OPERATION, ActionKind.GIVE_UP):
        return True
    if hold is Status.PAUSED:
        return False
    failed = action.drift is not None and action.drift.failure
    return failed and action.kind in (ActionKind.RECOVER, ActionKind.RUN)


@dataclass(frozen=True)
class Holds:
    """The windows in force and the pauses recorded: the planner's input."""

    windows: tuple[SyncWindow, ...] = ()
    pauses: tuple[Pause, ...] = ()

    def at(self, now: datetime) -> HoldCheck:
        """Each window's state at ``now``, evaluated once for every job of a plan."""
        states = []
        for w in self.windows:
            until = w.open_until(now)
            opens = None if until is not None or w.kind == "deny" else parsed(w.schedule).next_after(now)
            states.append(_WindowState(w, until, opens))
        by_job = {p.job: p for p in self.pauses}
        return HoldCheck(tuple(states), by_job.get(None), by_job)


@dataclass(frozen=True, slots=True)
class _WindowState:
    window: SyncWindow
    #: when the open stretch closes; None: closed now.
    until: datetime | None
    #: an allow window closed now: its next fire time (None: never again, or open now).
    opens: datetime | None


@dataclass(frozen=True)
class HoldCheck:
    """:meth:`Holds.at`'s answer for one ``now``: why a job is held, if it is."""

    states: tuple[_WindowState, ...]
    everything: Pause | None
    by_job: Mapping[str | None, Pause] = field(default_factory=dict)

    @property
    def idle(self) -> bool:
        """Nothing can hold any job (no pause, no window): the planner skips the check."""
        return not self.states and self.everything is None and not self.by_job

    def of(self, name: str, labels: Callable[[], Mapping[str, str]]) -> tuple[Status, str] | None:
        """(PAUSED or HELD, why) when job ``name``'s non-urgent actions are held now, else None."""
        pause = self.by_job.get(name) or self.everything
        if pause is not None:
            return Status.PAUSED, pause.describe()
        deny: list[_WindowState] = []
        allow: list[_WindowState] = []
        for s in self.states:
            if s.window.applies(name, labels):
                (deny if s.window.kind == "deny" else allow).append(s)
        ends = [(s.until, s.window) for s in deny if s.until is not None]
        if ends:
            until, window = max(ends, key=lambda e: e[0])
            return Status.HELD, f"held by sync window {window.describe()} until {_at(until)}"
        if allow and all(s.until is None for s in allow):
            opens = [(s.opens, s.window) for s in allow if s.opens is not None]
            if not opens:
                never = allow[0].window.describe()
                return Status.HELD, f"held: outside sync window {never}, which never opens"
            when, window = min(opens, key=lambda e: e[0])
            return Status.HELD, f"held: outside sync window {window.describe()} until it opens at {_at(when)}"
        return None
