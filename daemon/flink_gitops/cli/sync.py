"""`flink-gitops sync --once | status | savepoint | history`: the reconciler from the command line.

``sync --once`` loads the revision (the configured Git repository, or
``--repo DIR`` for a working directory), observes every cluster, plans, and
without ``--dry-run`` carries the plan out, showing live progress on a terminal
while it waits on savepoints and starts (rich). Exit 0 when everything is in
sync afterwards, 1 with one line per job that is not, 2 when nothing could be
done (config, store, audit key, Git). ``status`` reads the store only (it works
while Flink is down; a scheduled batch job's next run comes from its recorded schedule and
last run, ``plan.schedule.next_run``; a job's hold, a pause or an open deny window, from the store
and ``sync.windows``, ``plan.windows``); ``savepoint JOB`` takes a savepoint of a running job now;
``history JOB`` lists its operations, savepoints and audit entries.
Neighbours: ``execute.cycle`` (the work), ``cli.__init__`` (settings, errors).
"""

from __future__ import annotations

import json
import os
import socket
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from flink_gitops.cli import settings_from
from flink_gitops.clock import SystemClock
from flink_gitops.execute.cycle import CycleResult, Reconciler, Revision
from flink_gitops.execute.pauses import as_pause
from flink_gitops.flink.client import FlinkClient
from flink_gitops.plan.model import Plan
from flink_gitops.plan.schedule import next_run
from flink_gitops.plan.windows import HoldCheck, Holds, SyncWindow
from flink_gitops.record.audit import AuditTrail, cli_actor
from flink_gitops.record.store import JobRecord, Store, open_store
from flink_gitops.settings import Settings
from flink_gitops.source.git import GitSource
from flink_gitops.source.tree import DirectoryTree, Tree
from flink_gitops.specs.errors import quote
from flink_gitops.specs.loader import SpecLoader

EXIT_OUT_OF_SYNC = 1


class Refused(click.ClickException):
    """Nothing could be done (no revision from Git, no such job): exit 2, as config and store errors."""

    exit_code = 2


#: tables written to a pipe or a file (no terminal to fit, COLUMNS unset) are this wide, not rich's 80.
PIPE_WIDTH = 160


def _console(*, stderr: bool = False) -> Console:
    """Recorded text (paths, Flink's errors) is shown as is: no rich markup, so '[/x]' is text."""
    console = Console(stderr=stderr, highlight=False, soft_wrap=True, markup=False)
    if not console.is_terminal and not os.environ.get("COLUMNS"):
        console.width = PIPE_WIDTH
    return console


def _text(value: object) -> str:
    """A table cell: control characters (an escape sequence in a recorded error) shown escaped."""
    text = str(value)
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


@dataclass
class Runtime:
    settings: Settings
    store: Store
    audit: AuditTrail
    reconciler: Reconciler


@contextmanager
def runtime(settings: Settings, *, daemon: bool = False) -> Iterator[Runtime]:
    """Store, audit trail, one client per cluster and the reconciler; all closed on exit. The audit
    actor is ``cli:<user>``, or for the daemon ``daemon:<instance>`` (which replica acted)."""
    clock = SystemClock()
    with ExitStack() as stack:
        store = open_store(settings, clock=clock)
        stack.callback(store.close)
        instance = settings.instance_name or socket.gethostname()
        actor = f"daemon:{instance}" if daemon else cli_actor()
        audit = AuditTrail.from_settings(settings, store, clock=clock, actor=actor)
        clients: dict[str, FlinkClient] = {}
        for name, cfg in settings.clusters.items():
            clients[name] = stack.enter_context(FlinkClient.from_config(name, cfg, clock))
        rec = Reconciler(settings, store, audit, clients, clock, actor=actor, instance=instance)
        stack.callback(rec.release)
        yield Runtime(settings, store, audit, rec)


def load_revision(settings: Settings, repo: Path | None, stack: ExitStack) -> tuple[Revision, Tree]:
    """The desired state from ``--repo DIR`` or, without it, the configured Git repository."""
    tree: Tree
    commit: str | None = None
    signer: str | None = None
    if repo is not None:
        tree = DirectoryTree(repo)
    elif settings.git.url:
        source = GitSource.from_settings(settings, clock=SystemClock())
        stack.callback(source.close)
        polled = source.poll()
        if polled.revision is None:
            raise Refused(f"no revision of {settings.git.url} could be loaded: {polled.error}")
        tree, commit = polled.revision.tree, polled.revision.commit
        if polled.revision.signer is not None:
            signer = f"{polled.revision.signer.identity} ({polled.revision.signer.key})"
    else:
        raise click.UsageError("no repository: set git.url in the config, or pass --repo DIR")
    desired = SpecLoader.from_settings(settings).load(tree)
    return Revision(desired, commit, signer), tree


def _plan_table(plan: Plan, result: CycleResult | None) -> Table:
    table = Table(show_edge=False, pad_edge=False)
    for column in ("job", "cluster", "status", "what"):
        table.add_column(column)
    for name, report in sorted(plan.reports.items()):
        status, what = report.status.value, report.reason
        done = result.results.get(name) if result is not None else None
        if done is not None:
            status = "done" if done.ok else ("retry" if done.retry else "failed")
            what = f"{report.reason} → {done.message}"
        table.add_row(*map(_text, (name, report.cluster or "-", status, what)))
    return table


def _report(console: Console, result: CycleResult, revision_errors: int = 0) -> int:
    console.print(_plan_table(result.plan, None if result.dry_run else result))
    for cluster, job in result.plan.unmanaged:
        console.print(
            f"unmanaged: job {job.job_id} ({job.name}, {job.state}) on cluster {cluster!r} is not ours"
        )
    if result.aborted:
        console.print(f"aborted: {result.aborted}")
    if result.in_sync and not revision_errors:
        console.print("in sync")
        return 0
    for name, why in result.problems().items():
        click.echo(f"{name}: {why}", err=True)
    if revision_errors:
        # Their jobs are left as is: the clusters do not match that revision.
        click.echo(f"revision: {revision_errors} error(s) in the spec files (above): not in sync", err=True)
    return EXIT_OUT_OF_SYNC


#: ``--repo DIR``: a working directory instead of the configured Git repository (sync, restart, run).
repo_option = click.option(
    "--repo",
    type=click.Path(path_type=Path, file_okay=False, exists=True),
    default=None,
    help="A working directory instead of the configured Git repository.",
)


def _check_selection(jobs: tuple[str, ...], revision: Revision, store: Store) -> None:
    """Every ``--job`` names a job of the revision or of the store; a typo is no quiet "in sync"."""
    known = set(revision.desired.jobs) | {j.name for j in store.jobs.all()}
    for name in jobs:
        if name not in known:
            maybe = " (a spec file with errors, above, may define it)" if revision.desired.errors else ""
            raise click.UsageError(
                f"--job {quote(name)}: no job of that name in the revision or the store{maybe}"
            )


@click.command("sync")
@click.option("--once", is_flag=True, help="One cycle, then exit (the loop is `flink-gitops run`).")
@click.option("--dry-run", is_flag=True, help="Plan against the live clusters; change nothing.")
@click.option("--job", "jobs", multiple=True, metavar="NAME", help="Only this job (repeatable).")
@repo_option
@click.pass_context
def sync(ctx: click.Context, once: bool, dry_run: bool, jobs: tuple[str, ...], repo: Path | None) -> None:
    """Make the clusters match Git: exit 0 in sync, 1 with a reason per job that is not, 2 on errors."""
    if not once:
        raise click.UsageError("sync needs --once (the long-running loop is `flink-gitops run`)")
    settings = settings_from(ctx)
    out = _console()
    live = Console(stderr=True, highlight=False, markup=False)
    with ExitStack() as stack:
        revision, tree = load_revision(settings, repo, stack)
        for problem in revision.desired.errors:
            live.print(f"{problem.where()}: error: {problem.message}", markup=False)
        rt = stack.enter_context(runtime(settings))
        _check_selection(jobs, revision, rt.store)
        status = stack.enter_context(live.status("observing the clusters…")) if live.is_terminal else None

        def progress(job: str, step: str) -> None:
            if status is not None:
                status.update(f"{job}: {step}")
            else:
                live.print(f"{job}: {step}", markup=False)

        only = list(jobs) or None
        result = rt.reconciler.cycle(revision, dry_run=dry_run, only=only, progress=progress, tree=tree)
        if status is not None:
            status.stop()
    sys.exit(_report(out, result, len(revision.desired.errors)))


def _batch_fields(job: JobRecord, settings: Settings, now: datetime) -> dict[str, Any]:
    """mode, schedule, last and next run of a job (the next run only for a scheduled batch job)."""
    body = job.last_reconciled.spec.get("spec", {}).get("spec", {}) if job.last_reconciled else {}
    mode, cron = body.get("mode"), body.get("schedule")
    out: dict[str, Any] = {
        "mode": mode,
        "schedule": cron,
        "lastRunAt": job.last_run_at.isoformat() if job.last_run_at else None,
        "nextRunAt": None,
        "nextRunDue": False,
    }
    wanted = body.get("job", {}).get("state", "running")  # the recorded spec's, not the lifecycle
    if mode == "batch" and isinstance(cron, str) and not job.deleted and wanted != "suspended":
        when, due = next_run(
            cron,
            last_run_at=job.last_run_at,
            since=job.created_at,
            now=now,
            grace_s=settings.sync.missed_run_grace_s,
        )
        out["nextRunAt"] = when.isoformat() if when is not None else None
        out["nextRunDue"] = due
    return out


def _holds(settings: Settings, store: Store, now: datetime) -> HoldCheck:
    """The pauses in the store and the sync windows of the config, as the planner sees them now."""
    windows = tuple(
        SyncWindow(w.kind, w.schedule, w.duration_s, tuple(w.jobs), tuple(sorted(w.labels.items())))
        for w in settings.sync.windows
    )
    return Holds(windows, tuple(as_pause(p) for p in store.pauses.all())).at(now)


def _hold_fields(job: JobRecord, holds: HoldCheck) -> dict[str, Any]:
    """Whether a pause or a sync window holds the job's non-urgent actions now (``plan.windows``)."""
    if job.deleted:
        return {"hold": None}
    spec = job.last_reconciled.spec.get("spec", {}) if job.last_reconciled else {}
    meta = spec.get("metadata", {}) if isinstance(spec, dict) else {}
    labels = meta.get("labels", {}) if isinstance(meta, dict) else {}
    found = holds.of(job.name, lambda: labels if isinstance(labels, dict) else {})
    return {"hold": {"status": found[0].value, "reason": found[1]} if found else None}


def _next_run_cell(d: dict[str, Any]) -> str:
    if d["nextRunAt"] is None:
        return "-" if d["mode"] != "batch" or d["schedule"] is None else "never"
    when = str(d["nextRunAt"]).replace("+00:00", "Z")
    return f"due now (missed {when})" if d["nextRunDue"] else when


@click.command("status")
@click.argument("job", required=False)
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def status(ctx: click.Context, job: str | None, output: str) -> None:
    """What the store records about every job (or one): lifecycle, Flink job, drift, restarts, errors."""
    settings = settings_from(ctx)
    clock = SystemClock()
    window_start = clock.now() - timedelta(seconds=settings.sync.restart_window_s)
    with open_store(settings, clock=clock) as store:
        now = clock.now()
        open_ops = store.operations.open_by_job()
        rows = [j for j in store.jobs.all() if job is None or j.name == job]
        if job is not None and not rows:
            raise Refused(f"no job named {quote(job)} is recorded")
        holds = _holds(settings, store, now)
        data: list[dict[str, Any]] = [
            {
                "job": j.name,
                "cluster": j.cluster,
                "lifecycle": j.state.value,
                "flinkJobId": j.flink_job_id,
                "specHash": j.last_reconciled.hash if j.last_reconciled else None,
                "stableHash": j.last_stable.hash if j.last_stable else None,
                "commit": j.last_reconciled.commit if j.last_reconciled else None,
                "savepoint": j.savepoint,
                "failedHash": j.failed_hash,
                "attempts": j.attempts,
                "nextAttemptAt": j.next_attempt_at.isoformat() if j.next_attempt_at else None,
                "lastError": j.last_error,
                "openOperation": open_ops[j.name].op_id if j.name in open_ops else None,
                "generation": j.generation,
                "uid": j.uid,
                "drift": (
                    {
                        "kind": j.drift_kind,
                        "since": j.drift_since.isoformat() if j.drift_since else None,
                        "detail": j.drift_detail,
                    }
                    if j.drift_kind
                    else None
                ),
                "restarts": {
                    "inWindow": sum(1 for t in j.restarts if t > window_start),
                    "budget": settings.sync.restart_budget,
                    "windowS": settings.sync.restart_window_s,
                },
            }
            | _batch_fields(j, settings, now)
            | _hold_fields(j, holds)
            for j in rows
        ]
    if output == "json":
        click.echo(json.dumps(data, indent=2))
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in (
        "job",
        "cluster",
        "lifecycle",
        "hold",
        "flink job",
        "health",
        "savepoint",
        "next run",
        "last error",
    ):
        table.add_column(column)
    for d in data:
        drift = d["drift"]
        since = (drift["since"] or "")[:19].replace("T", " ") if drift else ""
        restarts = d["restarts"]
        table.add_row(
            *map(
                _text,
                (
                    d["job"],
                    d["cluster"],
                    d["lifecycle"] + (" (op open)" if d["openOperation"] else ""),
                    (d["hold"]["reason"][:160] if d["hold"] else "-"),
                    d["flinkJobId"] or "-",
                    _health_cell(drift, since, restarts),
                    d["savepoint"] or "-",
                    _next_run_cell(d),
                    (d["lastError"] or "")[:120],
                ),
            )
        )
    _console().print(table)


def _health_cell(drift: dict[str, Any] | None, since: str, restarts: dict[str, Any]) -> str:
    """Drift (kind, since when) and the recoveries counted against the restart budget, if any."""
    parts = [f"{drift['kind']} since {since}"] if drift else []
    if restarts["inWindow"]:
        parts.append(f"restarts {restarts['inWindow']}/{restarts['budget']}")
    return ", ".join(parts) or "-"


@click.command("savepoint")
@click.argument("job")
@click.pass_context
def savepoint(ctx: click.Context, job: str) -> None:
    """Take a savepoint of a running job now (audited, recorded in its savepoint history)."""
    settings = settings_from(ctx)
    with runtime(settings) as rt:
        path = rt.reconciler.manual_savepoint(job)
    click.echo(path)


@click.command("history")
@click.argument("job")
@click.option("--limit", type=click.IntRange(1, 10_000), default=50, show_default=True)
@click.pass_context
def history(ctx: click.Context, job: str, limit: int) -> None:
    """A job's operations, savepoints and audit entries, newest first."""
    settings = settings_from(ctx)
    with runtime(settings) as rt:
        if rt.store.jobs.get(job) is None:
            raise Refused(f"no job named {quote(job)} is recorded")
        console = _console()
        ops = Table(title="operations", show_edge=False, pad_edge=False)
        for column in ("started", "kind", "state", "steps", "error"):
            ops.add_column(column)
        for op in rt.store.operations.history(job, limit=limit):
            steps = " → ".join(s.step for s in op.steps)
            ops.add_row(
                *map(
                    _text,
                    (
                        op.started_at.isoformat(timespec="seconds"),
                        op.kind,
                        op.state.value,
                        steps,
                        op.detail.get("error", ""),
                    ),
                )
            )
        console.print(ops)
        sps = Table(title="savepoints", show_edge=False, pad_edge=False)
        for column in ("created", "kind", "origin", "path", "disposed"):
            sps.add_column(column)
        for sp in rt.store.snapshots.history(job, include_disposed=True, limit=limit):
            sps.add_row(
                *map(
                    _text,
                    (
                        sp.created_at.isoformat(timespec="seconds"),
                        sp.kind.value,
                        sp.origin.value,
                        sp.path,
                        sp.disposed,
                    ),
                )
            )
        console.print(sps)
        audit = Table(title="audit", show_edge=False, pad_edge=False)
        for column in ("seq", "time", "action", "outcome", "flink job", "error"):
            audit.add_column(column)
        for rec in list(rt.audit.records(job=job))[-limit:]:
            e = rec.event
            audit.add_row(
                *map(
                    _text,
                    (
                        rec.seq,
                        rec.recorded_at.isoformat(timespec="seconds"),
                        e.action,
                        e.outcome or "",
                        e.job_id_after or e.job_id_before or "",
                        (e.error or "")[:80],
                    ),
                )
            )
        console.print(audit)
