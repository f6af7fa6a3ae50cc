"""`flink-gitops audit verify|show|export|public-key|accept-head`: check, read and export the audit trail.

``verify`` checks the hash chain, the signatures and the head file and, with
the configured master key (the default), decrypts every record and checks its
tags; ``--public-key FILE`` checks chain, signatures and head file with only
an exported public key (an auditor's check); ``--no-key`` only the unsigned
hash chain and head file. A configured key that cannot be used is an error,
never a quiet downgrade to a weaker check. ``show`` decrypts and filters in
the database (tags, time). ``export`` writes decrypted JSON lines for a SIEM,
or ``--raw`` the encrypted rows with base64 fields (no key needed).
``public-key`` prints the signing public keys; ``accept-head`` records why the
head file does not fit the store so appends may go on. Exit status of verify,
show and export: 0 intact, 1 tampering found (the first seq named), 2 cannot
check (config, key, database). Neighbours: record.audit, record.keys,
record.store (``open_store``), cli.keys.
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
from flink_gitops.clock import SystemClock, utc
from flink_gitops.record.audit import (
    AuditDecryptError,
    AuditRecord,
    AuditTrail,
    HeadFile,
    TrustedKeys,
    VerifyReport,
    cli_actor,
    format_time,
    head_file_path,
    public_key_file,
    query_records,
    verify_trail,
)
from flink_gitops.record.keys import KeyRing, UnknownKeyVersion, key_source_from_settings
from flink_gitops.record.store import AuditRow, Store, UnreadableAuditRow, open_store
from flink_gitops.settings import Settings

EXIT_OK = 0
EXIT_BROKEN = 1
EXIT_CANNOT_CHECK = 2

_EXIT_CODES = (
    "Exit status: 0 intact; 1 tampering found (the first seq where the chain breaks is named); "
    "2 cannot check (config, key or database unusable)."
)


@click.group(epilog=_EXIT_CODES)
def audit() -> None:
    """Check, read and export the encrypted, signed, hash-chained audit trail."""


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
    """The configured key ring; any key problem is raised (exit 2), never downgraded."""
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


def _tampered(ctx: click.Context, problems: list[tuple[int | None, str]]) -> None:
    """Report records that could not be read as tampering (stderr) and exit 1."""
    for _, what in problems:
        click.echo(f"tampering: {what}", err=True)
    seqs = [seq for seq, _ in problems if seq is not None]
    where = f" (first at seq {min(seqs)})" if seqs else ""
    click.echo(f"FAILED: {len(problems)} record(s) could not be read{where}; run `audit verify`", err=True)
    ctx.exit(EXIT_BROKEN)


def _print_report(report: VerifyReport, head: HeadFile, mode: str) -> None:
    click.echo(f"records: {report.records}, last {report.last}")
    if report.head_file is not None:
        click.echo(f"head file {head.path}: {report.head_file}")
    click.echo(f"checked: {mode}")
    if report.keyed:
        click.echo(f"decrypted and tag-checked: {report.decrypted} of {report.records}")
    for note in report.notes:
        click.echo(f"note: {note}")


@audit.command(epilog=_EXIT_CODES)
@click.option(
    "--key/--no-key",
    "use_key",
    default=True,
    show_default=True,
    help="With the configured master key: also decrypt every record and check its tags and signatures. "
    "--no-key checks only the unsigned hash chain and the head file (a rehashed forgery passes it).",
)
@click.option(
    "--public-key",
    "public_key",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Check the chain, every signature and the head file against this exported public key file "
    "(`audit public-key`); without the master key unless --key is given too.",
)
@click.pass_context
def verify(ctx: click.Context, use_key: bool, public_key: Path | None) -> None:
    """Check the chain, signatures, head file and (with the key) every record; exit 1 where it breaks."""
    settings = settings_from(ctx)
    head = HeadFile(head_file_path(settings))
    trusted = TrustedKeys.from_file(public_key) if public_key is not None else None
    use_key = use_key and (public_key is None or "use_key" in _explicit(ctx))
    with open_store(settings) as store:
        if use_key:
            keys = _open_keys(settings, store)
            report = verify_trail(store, head, keys, trusted=trusted, key_rows=store.audit_keys())
            signer = "the master key's" if trusted is None else trusted.origin
            mode = f"hash chain, signatures ({signer}) and head file; every record decrypted"
        elif trusted is not None:
            report = verify_trail(store, head, trusted=trusted, key_rows=store.audit_keys())
            mode = f"hash chain, signatures ({trusted.origin}) and head file; not decrypted"
        else:
            report = verify_trail(store, head)
            mode = "hash chain and head file only (--no-key: unsigned, not decrypted)"
    _print_report(report, head, mode)
    if report.ok:
        click.echo("OK: the chain is intact" + ("" if report.signed else " (unsigned check: --no-key)"))
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


def _explicit(ctx: click.Context) -> set[str]:
    return {
        name
        for name in ctx.params
        if ctx.get_parameter_source(name) is click.core.ParameterSource.COMMANDLINE
    }


@audit.command("public-key")
@click.option(
    "--out",
    type=click.Path(path_type=Path, dir_okay=False),
    default=None,
    help="Write to this new file (refuses to overwrite). Default: stdout.",
)
@click.pass_context
def public_key_cmd(ctx: click.Context, out: Path | None) -> None:
    """Print the trail's signing public keys (every key version), for `audit verify --public-key`."""
    settings = settings_from(ctx)
    with open_store(settings) as store:
        keys = _open_keys(settings, store)
        if not keys.versions():
            raise UnknownKeyVersion("the store holds no audit keys yet: nothing to export")
        text = public_key_file(keys)
    with _output(out) as fh:
        fh.write(text)
    broken = keys.problems()
    for problem in broken:
        click.echo(f"warning: key {problem}: not exported", err=True)


@audit.command("accept-head")
@click.option("--reason", required=True, help="Why the gap is expected (written into the audit record).")
@click.pass_context
def accept_head(ctx: click.Context, reason: str) -> None:
    """Record that the head file does not fit the store (a restored backup, a replica's own head file),
    so appends may go on: writes an audit.accept_head record naming the gap and moves the head file."""
    settings = settings_from(ctx)
    if not reason.strip():
        raise click.BadParameter("give a reason", param_hint="--reason")
    with open_store(settings) as store:
        record = AuditTrail.accept_head(
            store,
            key_source_from_settings(settings),
            head_file=head_file_path(settings),
            clock=SystemClock(),
            actor=cli_actor(),
            reason=reason,
        )
    if record is None:
        click.echo("the head file fits the store: nothing to accept")
        return
    click.echo(f"accepted: {record.event.details['problem']}")
    click.echo(f"recorded as audit record {record.seq} ({record.event.action}); appends may go on")


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


@audit.command(epilog=_EXIT_CODES)
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
    bad: list[tuple[int | None, str]] = []
    with open_store(settings) as store:
        keys = _open_keys(settings, store)
        records = _readable(
            query_records,
            bad,
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
        else:
            rows = [_table_row(rec) for rec in records]
            widths = [max([len(c), *(len(r[i]) for r in rows)]) for i, c in enumerate(_COLUMNS)]
            click.echo("  ".join(c.upper().ljust(w) for c, w in zip(_COLUMNS, widths, strict=True)).rstrip())
            for r in rows:
                click.echo("  ".join(v.ljust(w) for v, w in zip(r, widths, strict=True)).rstrip())
    if bad:
        _tampered(ctx, bad)


def _readable(
    query: Any, bad: list[tuple[int | None, str]], store: Store, keys: KeyRing, **filters: Any
) -> Iterator[AuditRecord]:
    """The records ``query`` yields, skipping (and collecting in ``bad``) those that do not decrypt."""
    after = filters.pop("after_seq", 0)
    limit = filters.pop("limit", None)
    while True:
        try:
            for rec in query(store, keys, after_seq=after, limit=limit, **filters):
                after = rec.seq
                if limit is not None:
                    limit -= 1
                yield rec
            return
        except AuditDecryptError as exc:
            bad.append((exc.seq or None, str(exc)))
            if exc.seq is None or exc.seq <= after:
                return  # cannot step past a row without a seq
            after = exc.seq
            if limit is not None:
                limit -= 1
                if limit <= 0:
                    return


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
        "signature": b64(row.signature),
    }


@audit.command(epilog=_EXIT_CODES)
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
    bad: list[tuple[int | None, str]] = []
    with open_store(settings) as store:
        keys = None if raw else _open_keys(settings, store)
        with _output(out) as fh:
            if keys is None:
                for row in store.audit_rows(after_seq=after_seq, since=_when(since), until=_when(until)):
                    if isinstance(row, UnreadableAuditRow):
                        bad.append((row.seq, f"record {row.seq} is unreadable: {row.problem}"))
                        continue
                    fh.write(json.dumps(raw_json(row), sort_keys=True) + "\n")
            else:
                records = _readable(
                    query_records,
                    bad,
                    store,
                    keys,
                    after_seq=after_seq,
                    since=_when(since),
                    until=_when(until),
                )
                for rec in records:
                    fh.write(json.dumps(rec.to_json(), sort_keys=True, ensure_ascii=False) + "\n")
    if bad:
        _tampered(ctx, bad)
