"""`flink-gitops savepoints JOB`: a job's savepoint and retained-checkpoint history, newest first.

Each entry with its kind, origin (nonce, periodic, manual, upgrade, stop, final, retained),
creation time, path and state: ``current`` (what a resume or recovery restores from),
``stable`` (what the current or the last stable deployment restored from, or that deployment's
newest savepoint: retention never disposes these), ``disposed`` (gone, forgotten by retention) or
``kept``. Reads the store only, so it works while Flink is down. Exit 0; 2 when the job is not
recorded or the store cannot be read. ``--output json`` for scripts. Neighbours:
``record.store`` (the history), ``execute.retention`` (what it protects), ``cli.sync`` (the
sibling commands ``status`` and ``history``).
"""

from __future__ import annotations

import json
from typing import Any

import click
from rich.table import Table

from flink_gitops.cli import settings_from
from flink_gitops.cli.sync import Refused, _console, _text
from flink_gitops.clock import SystemClock
from flink_gitops.execute.retention import deployment_paths
from flink_gitops.record.store import open_store
from flink_gitops.specs.errors import quote


@click.command("savepoints")
@click.argument("job")
@click.option("--limit", type=click.IntRange(1, 100_000), default=100, show_default=True)
@click.option("--output", type=click.Choice(["table", "json"]), default="table", show_default=True)
@click.pass_context
def savepoints(ctx: click.Context, job: str, limit: int, output: str) -> None:
    """A job's savepoints with origin and state (current / stable / disposed / kept), newest first."""
    settings = settings_from(ctx)
    with open_store(settings, clock=SystemClock()) as store:
        record = store.jobs.get(job)
        if record is None:
            raise Refused(f"no job named {quote(job)} is recorded")
        history = store.snapshots.history(job, include_disposed=True, limit=limit)
        live = [r for r in history if not r.disposed]
        stable = deployment_paths(store, record, live)
    rows: list[dict[str, Any]] = []
    for sp in history:
        if sp.disposed:
            state = "disposed"
        elif sp.path == record.savepoint:
            state = "current"
        elif sp.path in stable:
            state = "stable"
        else:
            state = "kept"
        rows.append(
            {
                "id": sp.id,
                "created": sp.created_at.isoformat(),
                "kind": sp.kind.value,
                "origin": sp.origin.value,
                "state": state,
                "path": sp.path,
                "cluster": sp.cluster,
                "flinkJobId": sp.flink_job_id,
                "uid": sp.uid,
                "disposedAt": sp.disposed_at.isoformat() if sp.disposed_at else None,
            }
        )
    if output == "json":
        click.echo(json.dumps({"job": record.name, "savepoints": rows}, indent=2))
        return
    console = _console()
    if not rows:
        console.print(f"job {_text(record.name)}: no savepoints recorded")
        return
    table = Table(show_edge=False, pad_edge=False)
    for column in ("created", "kind", "origin", "state", "path"):
        table.add_column(column, overflow="fold")
    for r in rows:
        created = r["created"][:19]
        table.add_row(*map(_text, (created, r["kind"], r["origin"], r["state"], r["path"])))
    console.print(table)
