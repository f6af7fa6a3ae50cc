"""`flink-gitops audit verify|show|export`: check, read and export the encrypted audit trail.

``verify`` checks the hash chain and the head file without any key, and with
the key (when one is configured and readable, or ``--key``) also decrypts every
record and checks its tags; it exits 1 and names the seq where the chain
breaks. ``show`` decrypts and filters in the database (tags, time).
``export`` writes decrypted JSON lines for a SIEM, or ``--raw`` the encrypted
rows with base64 fields (no key needed). Neighbours: record.audit,
record.keys, record.store (``open_store``), cli.keys.
"""

from __future__ import annotations

import base64
import json
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, Any

import click

from flink_gitops.cli import settings_from
from flink_gitops.clock import utc
from flink_gitops.record.audit import (
    AuditRecord,
    HeadFile,
    format_time,
    head_file_path,
    query_records,
    verify_trail,
)
from flink_gitops.record.keys import KeyCommandUnavailable, KeyRing, KeySourceError, key_source_from_settings
from flink_gitops.record.store import AuditRow, Store, open_store
from flink_gitops.settings import Settings

EXIT_BROKEN = 1


@click.group()
def audit() -> None:
    """Check, read and export the encrypted, hash-chained audit trail."""


def _when(value: str | None) -> datetime | None:
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError as exc:
        raise click.BadParameter(
            f"{value!r} is not an ISO 8601 time (2026-01-31 or 2026-01-31T12:00:00Z)"
        ) from exc
    return utc(parsed)


def _open_keys(settings: Settings, store: Store) -> KeyRing:
    return KeyRing.open(store, key_source_from_settings(settings), now=datetime.now(UTC), create=False)


@contextmanager
def _output(path: Path | None) -> Iterator[IO[str]]:
    if path is None:
        yield sys.stdout
        return
    try:  # never overwrite an earlier export; owner-only, as it may hold decrypted records
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise click.ClickException(f"cannot create {path}: {exc.strerror}") from exc
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        yield fh


@audit.command()
@click.option(
    "--key/--no-key",
    "use_key",
    default=None,
    help="Also decrypt every record and check its tags (default: when a key is available).",
)
@click.pass_context
def verify(ctx: click.Context, use_key: bool | None) -> None:
    """Check the chain, the head file and (with the key) every record; exit 1 where it breaks."""
    settings = settings_from(ctx)
    head = HeadFile(head_file_path(settings))
    with open_store(settings) as store:
        keys: KeyRing | None = None
        if use_key is not False:
            try:
                keys = _open_keys(settings, store)
            except (KeySourceError, KeyCommandUnavailable) as exc:
                if use_key:
                    raise
                click.echo(f"note: no key ({exc}); checking the chain and head file only", err=True)
        report = verify_trail(store, head, keys)
    click.echo(f"records: {report.records}, last {report.last}")
    if report.head_file is not None:
        click.echo(f"head file {head.path}: {report.head_file}")
    if keys is not None:
        click.echo(f"decrypted and tag-checked: {report.decrypted} of {report.records}")
    for note in report.notes:
        click.echo(f"note: {note}")
    if report.ok:
        click.echo("OK: the chain is intact" + ("" if keys is not None else " (not decrypted: no key)"))
        return
    for problem in report.problems:
        click.echo(f"problem: {problem}")
    if report.more_problems:
        click.echo(f"... and {report.more_problems} more problems")
    where = report.first_break
    click.echo(
        "FAILED: " + (f"the chain breaks at seq {where}" if where is not None else "see the problems above")
    )
    ctx.exit(EXIT_BROKEN)


_COLUMNS = ("seq", "time", "actor", "action", "job", "cluster", "outcome", "key")


def _table_row(rec: AuditRecord) -> tuple[str, ...]:
    e = rec.event
    return (
        str(rec.seq),
        format_time(rec.recorded_at)[:23] + "Z",
        e.actor,
        e.action,
        e.job or "-",
        e.cluster or "-",
        (e.outcome or "-") + (f" ({e.error})" if e.error else ""),
        f"v{rec.key_version}",
    )


@audit.command()
@click.option("--since", help="Only records at or after this time (ISO 8601, UTC if no zone).")
@click.option("--until", help="Only records before this time (ISO 8601, UTC if no zone).")
@click.option("--job", help="Only records about this job.")
@click.option("--action", help="Only this action (e.g. job.upgrade, keys.rotate).")
@click.option("--outcome", help="Only this outcome (intent, succeeded, failed).")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many records.")
@click.option("--output", type=click.Choice(["table", "jsonl"]), default="table", show_default=True)
@click.pass_context
def show(
    ctx: click.Context,
    since: str | None,
    until: str | None,
    job: str | None,
    action: str | None,
    outcome: str | None,
    limit: int | None,
    output: str,
) -> None:
    """Decrypt and print records, filtered in the database by time, job, action and outcome."""
    settings = settings_from(ctx)
    with open_store(settings) as store:
        keys = _open_keys(settings, store)
        records = query_records(
            store,
            keys,
            job=job,
            action=action,
            outcome=outcome,
            since=_when(since),
            until=_when(until),
            limit=limit,
        )
        if output == "jsonl":
            for rec in records:
                click.echo(json.dumps(rec.to_json(), sort_keys=True, ensure_ascii=False))
            return
        rows = [_table_row(rec) for rec in records]
    widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
    click.echo("  ".join(c.upper().ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip())
    for r in rows:
        click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())


def raw_json(row: AuditRow) -> dict[str, Any]:
    """An encrypted row as JSON (bytes as base64); enough to re-verify the chain elsewhere."""

    def b64(value: bytes | None) -> str | None:
        return None if value is None else base64.b64encode(value).decode()

    return {
        "seq": row.seq,
        "recorded_at": format_time(row.recorded_at),
        "key_version": row.key_version,
        "job_tag": b64(row.job_tag),
        "action_tag": b64(row.action_tag),
        "outcome_tag": b64(row.outcome_tag),
        "nonce": b64(row.nonce),
        "ciphertext": b64(row.ciphertext),
        "prev_hash": b64(row.prev_hash),
        "hash": b64(row.hash),
    }


@audit.command()
@click.option("--raw", is_flag=True, help="The encrypted rows (base64 fields) instead of decrypted records.")
@click.option("--since", help="Only records at or after this time (ISO 8601).")
@click.option("--until", help="Only records before this time (ISO 8601).")
@click.option("--after-seq", type=click.IntRange(min=0), default=0, help="Only records after this seq.")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this new file (refuses to overwrite). Default: stdout.",
)
@click.pass_context
def export(
    ctx: click.Context, raw: bool, since: str | None, until: str | None, after_seq: int, out: Path | None
) -> None:
    """JSON lines for a SIEM: decrypted records, or --raw the encrypted rows."""
    settings = settings_from(ctx)
    with open_store(settings) as store, _output(out) as fh:
        if raw:
            for row in store.audit_rows(after_seq=after_seq, since=_when(since), until=_when(until)):
                fh.write(json.dumps(raw_json(row), sort_keys=True) + "\n")
            return
        keys = _open_keys(settings, store)
        for rec in query_records(store, keys, after_seq=after_seq, since=_when(since), until=_when(until)):
            fh.write(json.dumps(rec.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
