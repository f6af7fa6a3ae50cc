"""`flink-gitops validate` (placeholder until its issue lands)."""

from __future__ import annotations

import click


@click.command()
def validate() -> None:
    """Not built yet."""
    raise click.ClickException("'validate' is not built yet")
