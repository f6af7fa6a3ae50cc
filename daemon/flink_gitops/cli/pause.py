"""`flink-gitops pause [JOB] [--reason TEXT]` and `flink-gitops resume [JOB]`.

A pause stops the daemon acting on a job (without JOB: on every job) while it keeps observing and
alerting: the job's drift and failures are still reported and alerted on, but a FAILED or
vanished job waits for ``resume`` too (whoever paused it is handling it); an operation a crash
left open is still finished, so no job is left half upgraded (``plan.windows``). The pause
lives in the store, so every replica sees it at its next cycle, and a cycle that is running
does not start that job's next action. Works while the daemon runs (no lease is needed: a pause
only narrows what the leader does). Each change is audited first (``job.pause`` / ``sync.pause``,
``job.resume`` / ``sync.resume``); pausing twice, or resuming what is not paused, changes nothing
and says so (exit 0). An unknown job is an error naming it (exit 2). ``resume`` without JOB lifts
the global pause only; per-job pauses stay, and are listed. Neighbours: ``execute.pauses`` (the
audited change), ``cli.sync`` (``status`` shows paused and held jobs).
"""

from __future__ import annotations

import click

from flink_gitops.cli import settings_from
from flink_gitops.cli.sync import _text
from flink_gitops.clock import SystemClock
from flink_gitops.execute import pauses
from flink_gitops.record.audit import AuditTrail, cli_actor
from flink_gitops.record.store import open_store


@click.command("pause")
@click.argument("job", required=False)
@click.option("--reason", default="", help="Why (shown by status and in the audit trail; 1000 characters).")
@click.pass_context
def pause(ctx: click.Context, job: str | None, reason: str) -> None:
    """Stop acting on JOB (or, without JOB, every job); observing and alerting go on."""
    settings = settings_from(ctx)
    clock = SystemClock()
    actor = cli_actor()
    with open_store(settings, clock=clock) as store:
        trail = AuditTrail.from_settings(settings, store, clock=clock, actor=actor)
        outcome = pauses.pause(store, trail, job, reason, actor=actor)
    click.echo(_text(outcome.describe("pause", job)))


@click.command("resume")
@click.argument("job", required=False)
@click.pass_context
def resume(ctx: click.Context, job: str | None) -> None:
    """Lift the pause of JOB (or, without JOB, the pause of every job)."""
    settings = settings_from(ctx)
    clock = SystemClock()
    actor = cli_actor()
    with open_store(settings, clock=clock) as store:
        trail = AuditTrail.from_settings(settings, store, clock=clock, actor=actor)
        outcome = pauses.resume(store, trail, job, actor=actor)
        still = [p.scope for p in store.pauses.all() if p.job is not None] if job is None else []
    click.echo(_text(outcome.describe("resume", job)))
    if still:
        shown = ", ".join(still[:20]) + (f" +{len(still) - 20}" if len(still) > 20 else "")
        click.echo(_text(f"still paused one by one: {shown} (resume JOB lifts each)"))
