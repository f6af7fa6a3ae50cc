"""`flink-gitops demo` (placeholder until its issue lands)."""

from __future__ import annotations

import click


@click.command()
def demo() -> None:
    """Not built yet."""
    raise click.ClickException("'demo' is not built yet")
