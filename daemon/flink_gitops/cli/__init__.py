"""The ``flink-gitops`` command line (click).

One module per command group; each defines a click command and this module
registers them. Commands read settings through :func:`settings_from` so the
``--config`` option and environment overrides work the same everywhere.
"""

from __future__ import annotations

import sys
from pathlib import Path

import click
from loguru import logger

from flink_gitops import __version__
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


class _Group(click.Group):
    """Turns our own errors into a one-line message and exit status 2 instead of a traceback."""

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
@click.option("-v", "--verbose", is_flag=True, help="Log at DEBUG (same as --log-level DEBUG).")
@click.version_option(__version__, prog_name="flink-gitops")
@click.pass_context
def main(ctx: click.Context, config: Path | None, log_level: str, verbose: bool) -> None:
    """Keep Apache Flink jobs exactly as a Git repository describes them."""
    logger.remove()
    logger.add(sys.stderr, level="DEBUG" if verbose else log_level.upper())
    logger.enable("flink_gitops")  # library parts (flink/) stay silent unless a CLI asks
    ctx.obj = _Context(config)


def _register() -> None:
    from flink_gitops.cli import audit, demo, keys, plan, schema, sync, validate

    main.add_command(validate.validate)
    main.add_command(plan.plan)
    main.add_command(schema.schema)
    main.add_command(audit.audit)
    main.add_command(keys.keys)
    main.add_command(demo.demo)
    main.add_command(sync.sync)
    main.add_command(sync.status)
    main.add_command(sync.savepoint)
    main.add_command(sync.history)


_register()
