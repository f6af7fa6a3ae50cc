"""`flink-gitops keys generate|rotate`: the audit trail's master key file and data key rotation.

``generate`` writes a random 32-byte master key (base64) with mode 0600 and
never overwrites; ``rotate`` adds a key version, a new data key and a new
signing key endorsed by the old one (new records use them, old ones stay
readable and verifiable with an older ``audit public-key`` export), and
records the rotation in the trail. Neighbours:
record.keys (the key handling), record.audit (the trail), cli.audit.
"""

from __future__ import annotations

from pathlib import Path

import click

from flink_gitops.cli import settings_from
from flink_gitops.clock import SystemClock
from flink_gitops.record.audit import AuditTrail, cli_actor
from flink_gitops.record.keys import default_key_file, generate_key_file
from flink_gitops.record.store import open_store


@click.group()
def keys() -> None:
    """Audit trail keys: make a master key file, rotate the data key."""


@keys.command()
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Where to write the key. Default: audit.key_file, else <state_dir>/audit.key.",
)
@click.pass_context
def generate(ctx: click.Context, out: Path | None) -> None:
    """Write a new random master key file (mode 0600); refuses to overwrite one."""
    path = out or default_key_file(settings_from(ctx))
    generate_key_file(path)
    click.echo(f"wrote a new audit master key to {path} (mode 0600)")
    click.echo("back it up somewhere safe: without it the audit trail cannot be decrypted")


@keys.command()
@click.option("--reason", default="manual", show_default=True, help="Why, written into the rotation record.")
@click.pass_context
def rotate(ctx: click.Context, reason: str) -> None:
    """Add a key version (data and signing key): new records use it, old ones stay readable."""
    settings = settings_from(ctx)
    with open_store(settings) as store:
        trail = AuditTrail.from_settings(settings, store, clock=SystemClock(), actor=cli_actor())
        version = trail.rotate(reason=reason)
    click.echo(f"audit data key rotated: new records use key version {version}")
