"""The ``flink-gitops`` command line (click).

One module per command group; each defines a click command and this module
registers them by name (:data:`_COMMANDS`), imported only when that command runs
or help lists it: ``sync`` then never imports the demo's, audit's or plan's
modules. Commands read settings through :func:`settings_from` so the
``--config`` option and environment overrides work the same everywhere.
"""

from __future__ import annotations

import gc
import importlib
import sys
from pathlib import Path
from typing import cast

import click
from loguru import logger

from flink_gitops import __version__
from flink_gitops.cli.logs import LogFormat, configure
from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.settings import Settings, load_settings


class _Context:
    def __init__(self, config: Path | None) -> None:
        self.config = config
        self._settings: Settings | None = None

    @property
    def settings(self) -> Settings:
        if self._settings is None:
            self._settings = load_settings(self.config)
        return self._settings


def settings_from(ctx: click.Context) -> Settings:
    """The settings for this invocation (loaded once, on first use)."""
    obj = ctx.find_object(_Context)
    if obj is None:
        return load_settings(None)
    return obj.settings


def config_path(ctx: click.Context) -> Path | None:
    """The ``--config`` file of this invocation (None: embedded defaults and environment)."""
    obj = ctx.find_object(_Context)
    return obj.config if obj is not None else None


#: command name -> (module under flink_gitops.cli, attribute), imported on first use.
_COMMANDS: dict[str, tuple[str, str]] = {
    "validate": ("validate", "validate"),
    "plan": ("plan", "plan"),
    "schema": ("schema", "schema"),
    "audit": ("audit", "audit"),
    "keys": ("keys", "keys"),
    "demo": ("demo", "demo"),
    "sync": ("sync", "sync"),
    "status": ("sync", "status"),
    "savepoint": ("sync", "savepoint"),
    "history": ("sync", "history"),
    "restart": ("restart", "restart"),
    "pause": ("pause", "pause"),
    "resume": ("pause", "resume"),
    "savepoints": ("savepoints", "savepoints"),
    "run": ("run", "run"),
}


class _Group(click.Group):
    """Loads commands lazily; turns our own errors into a one-line message and exit status 2
    instead of a traceback."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), *_COMMANDS})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands and cmd_name in _COMMANDS:
            module, attr = _COMMANDS[cmd_name]
            command = getattr(importlib.import_module(f"flink_gitops.cli.{module}"), attr)
            if not isinstance(command, click.Command):
                raise TypeError(f"flink_gitops.cli.{module}.{attr} is not a click command")
            self.add_command(command, cmd_name)
        return super().get_command(ctx, cmd_name)

    def invoke(self, ctx: click.Context) -> object:
        try:
            return super().invoke(ctx)
        except FlinkGitOpsError as exc:
            click.echo(f"error: {exc}", err=True)
            sys.exit(2)


@click.group(cls=_Group)
@click.option(
    "--config",
    "config",
    type=click.Path(path_type=Path, dir_okay=False),
    envvar="FLINK_GITOPS_CONFIG",
    default=None,
    help="Config file (YAML). Default: embedded defaults plus FLINK_GITOPS_* variables.",
)
@click.option(
    "--log-level",
    type=click.Choice(["DEBUG", "INFO", "WARNING", "ERROR"], case_sensitive=False),
    default="INFO",
    show_default=True,
)
@click.option(
    "--log-format",
    type=click.Choice(["auto", "text", "json"], case_sensitive=False),
    envvar="FLINK_GITOPS_LOG_FORMAT",
    default="auto",
    show_default=True,
    help="auto: JSON lines under journald (JOURNAL_STREAM matches stderr), plain text otherwise.",
)
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG (same as --log-level DEBUG).")
@click.version_option(__version__, prog_name="flink-gitops")
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_level: str, log_format: str, verbose: bool) -> None:
    """Keep Apache Flink jobs exactly as a Git repository describes them."""
    fmt = cast("LogFormat", log_format.lower())
    configure("DEBUG" if verbose else log_level.upper(), fmt)
    logger.enable("flink_gitops")  # library parts (flink/) stay silent unless a CLI asks
    ctx.obj = _Context(config)
    if _OWN_PROCESS:
        # The command's modules are imported by now and live until exit: frozen, the collector
        # never scans them again, which saves ~0.3 s of shutdown (bench/bench_upgrade.py).
        gc.freeze()


#: True when :func:`entry` runs the CLI as its own process (never under a test's CliRunner).
_OWN_PROCESS = False


def entry() -> None:
    """The ``flink-gitops`` program and ``python -m flink_gitops``: :func:`main` owning the process."""
    global _OWN_PROCESS
    _OWN_PROCESS = True
    main()
