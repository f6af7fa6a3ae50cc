"""`flink-gitops audit` (placeholder until its issue lands)."""

from __future__ import annotations

import click


@click.group()
def audit() -> None:
    """Not built yet."""
