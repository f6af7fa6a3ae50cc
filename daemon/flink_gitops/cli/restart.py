"""`flink-gitops restart JOB`: retry a job that was given up (restart budget spent, or a spec that failed).

It forgets the job's failure — the failed spec hash, the restarts counted in
the window, the backoff — in one audited, lease-fenced write, then runs one
reconcile cycle for that job alone: a FAILED or vanished job is recovered from
its newest savepoint or retained checkpoint, a rolled-back spec is tried again.
A job that runs as deployed is left alone (restartNonce restarts a healthy job
through Git). Exit codes as ``sync``: 0 in sync, 1 not, 2 nothing could be done.
Neighbours: ``cli.sync`` (runtime, revision, report), ``execute.cycle``.
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from pathlib import Path

import click

from flink_gitops.cli import settings_from
from flink_gitops.cli.sync import Refused, _console, _report, _text, load_revision, repo_option, runtime
from flink_gitops.specs.errors import quote


@click.command("restart")
@click.argument("job")
@repo_option
@click.pass_context
def restart(ctx: click.Context, job: str, repo: Path | None) -> None:
    """Forget JOB's failure (restart budget, failed spec) and reconcile it now."""
    settings = settings_from(ctx)
    with ExitStack() as stack:
        revision, tree = load_revision(settings, repo, stack)
        rt = stack.enter_context(runtime(settings))
        record = rt.store.jobs.get(job)
        if record is None or record.deleted:
            raise Refused(f"no job named {quote(job)} is recorded")
        if job not in revision.desired.valid_jobs():
            raise Refused(f"job {quote(job)} has no valid spec in this revision: nothing to restart it as")
        before = (record.failed_hash, len(record.restarts), record.last_error)
        rt.reconciler.restart(job)
        click.echo(
            _text(
                f"{job}: failure forgotten (failed spec {before[0] or '-'}, {before[1]} restart(s) in "
                f"the window; last error: {(before[2] or '-')[:200]})"
            ),
            err=True,
        )
        result = rt.reconciler.cycle(revision, only=[job], tree=tree)
    sys.exit(_report(_console(), result, len(revision.desired.errors)))
