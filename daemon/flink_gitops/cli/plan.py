"""`flink-gitops plan` (placeholder until its issue lands)."""

from __future__ import annotations

import click


@click.command()
def plan() -> None:
    """Not built yet."""
    raise click.ClickException("'plan' is not built yet")
