"""`flink-gitops run`: the daemon — reconcile on a schedule until SIGTERM (see ``service.loop``).

With ``git.url`` it polls that repository; ``--repo DIR`` reconciles a working
directory instead (local development). Under systemd (``Type=notify``) it
reports READY after its first cycle and feeds the watchdog while its loop
lives; the HTTP API (``service.api``) listens on ``http.host:http.port`` unless
``http.enabled`` is false (where it listens is read at start; SIGHUP re-reads its
tokens and webhook secret); SIGHUP reloads the config (``--config``), SIGTERM parks
the action in flight and exits 0. Neighbours: ``service.loop``, ``cli.sync`` (the runtime).
"""

from __future__ import annotations

import sys
from pathlib import Path

import click

from flink_gitops.cli import config_path, settings_from
from flink_gitops.cli.sync import repo_option, runtime
from flink_gitops.clock import SystemClock
from flink_gitops.service.alerts import Alerter, sinks_from
from flink_gitops.service.api import serve
from flink_gitops.service.loop import Daemon
from flink_gitops.service.notify import Notifier
from flink_gitops.settings import load_settings


@click.command("run")
@repo_option
@click.pass_context
def run(ctx: click.Context, repo: Path | None) -> None:
    """Run the daemon: a reconcile cycle every git.poll_interval_s until SIGTERM."""
    settings = settings_from(ctx)
    if repo is None and not settings.git.url:
        raise click.UsageError("no repository: set git.url in the config, or pass --repo DIR")
    path = config_path(ctx)
    clock = SystemClock()
    alerts = settings.alerts
    alerter = Alerter(sinks_from(alerts), clock, max_attempts=alerts.max_attempts, backoff_s=alerts.backoff_s)
    daemon = Daemon(
        settings,
        reload=lambda: load_settings(path),
        open_runtime=lambda s: runtime(s, daemon=True),
        clock=clock,
        notifier=Notifier.from_env(),
        repo=repo,
        alerter=alerter.start(),
        serve=serve if settings.http.enabled else None,
    )
    sys.exit(daemon.run())
