"""`flink-gitops keys` (placeholder until its issue lands)."""

from __future__ import annotations

import click


@click.group()
def keys() -> None:
    """Not built yet."""
