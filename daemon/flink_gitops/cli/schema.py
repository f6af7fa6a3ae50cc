"""`flink-gitops schema`: print, write or check the JSON Schema files generated from the spec models.

``schema --write [DIR]`` (DIR defaults to ./schemas) is what ``make schemas`` runs;
``schema --check [DIR]`` exits 1 when the files are stale. Neighbour: ``specs.schema``.
"""

from __future__ import annotations

from pathlib import Path

import click

from flink_gitops.specs.schema import SCHEMAS, render, stale_schemas, write_schemas


@click.command()
@click.argument("directory", required=False, type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option(
    "--write", "write", is_flag=True, help="Write the schema files into DIRECTORY (default: ./schemas)."
)
@click.option("--check", "check", is_flag=True, help="Exit 1 if the files in DIRECTORY are missing or stale.")
@click.option(
    "--kind",
    type=click.Choice(sorted(SCHEMAS)),
    default="flinkjob-v1.json",
    show_default=True,
    help="Which schema to print (without --write/--check).",
)
def schema(directory: Path | None, write: bool, check: bool, kind: str) -> None:
    """Print the JSON Schema of job specs, or write/check the schema files."""
    target = directory or Path("schemas")
    if write and check:
        raise click.UsageError("use --write or --check, not both")
    if write:
        for path in write_schemas(target):
            click.echo(f"wrote {path}")
        return
    if check:
        stale = stale_schemas(target)
        for name in stale:
            click.echo(
                f"{target / name}: stale or missing; run 'flink-gitops schema --write {target}'", err=True
            )
        raise SystemExit(1 if stale else 0)
    if directory is not None:
        raise click.UsageError("DIRECTORY needs --write or --check")
    click.echo(render(kind), nl=False)
