"""Helpers shared by the audit trail tests: a key file, a trail on a store, events, raw tampering."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from flink_gitops.clock import Clock
from flink_gitops.record.audit import AuditEvent, AuditTrail, HeadFile, VerifyReport, verify_trail
from flink_gitops.record.audit.trail import AuditStore
from flink_gitops.record.keys import KeyFileSource, generate_key_file
from flink_gitops.record.store import AuditRow, UnreadableAuditRow

ACTOR = "daemon:test-host"


def readable(rows: Iterable[AuditRow | UnreadableAuditRow]) -> list[AuditRow]:
    """The rows, asserting that none is unreadable (for tests that did not tamper with types)."""
    out = list(rows)
    assert all(isinstance(r, AuditRow) for r in out), out
    return [r for r in out if isinstance(r, AuditRow)]


def key_source(directory: Path, name: str = "audit.key") -> KeyFileSource:
    path = directory / name
    if not path.exists():
        generate_key_file(path)
    return KeyFileSource(path)


def open_trail(
    store: AuditStore,
    directory: Path,
    clock: Clock,
    *,
    key: str = "audit.key",
    max_key_age_days: float | None = None,
) -> AuditTrail:
    return AuditTrail.open(
        store,
        key_source(directory, key),
        head_file=directory / "audit.head",
        clock=clock,
        actor=ACTOR,
        max_key_age_days=max_key_age_days,
    )


def event(
    i: int, *, job: str | None = None, action: str = "job.deploy", outcome: str | None = "succeeded"
) -> AuditEvent:
    return AuditEvent(
        action=action,
        actor=ACTOR,
        job=job if job is not None else f"job-{i % 3}",
        cluster="default",
        git_commit=f"{i:040x}",
        spec_hash=f"{i * 7919:064x}",
        job_id_after=f"{i:032x}",
        outcome=outcome,
        details={"i": i},
    )


def verify_both(store: AuditStore, trail: AuditTrail) -> tuple[VerifyReport, VerifyReport]:
    """(without key, with key)."""
    head = HeadFile(trail.head_file.path)
    return verify_trail(store, head), verify_trail(store, head, trail.keys)


class SqliteTamper:
    """Edits the SQLite file directly, as an attacker with write access to the database would."""

    def __init__(self, db: Path) -> None:
        self.db = db

    def _conn(self) -> sqlite3.Connection:
        return sqlite3.connect(self.db, isolation_level=None, timeout=30)

    def get(self, seq: int, column: str) -> Any:
        with self._conn() as conn:
            return conn.execute(f"SELECT {column} FROM audit_records WHERE seq = ?", (seq,)).fetchone()[0]

    def set(self, seq: int, column: str, value: object) -> None:
        with self._conn() as conn:
            conn.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = ?", (value, seq))

    def flip(self, seq: int, column: str, index: int = 0) -> None:
        value = bytearray(self.get(seq, column))
        value[index % len(value)] ^= 0x01
        self.set(seq, column, bytes(value))

    def delete(self, *seqs: int) -> None:
        with self._conn() as conn:
            conn.executemany("DELETE FROM audit_records WHERE seq = ?", [(s,) for s in seqs])

    def row(self, seq: int) -> dict[str, Any]:
        with self._conn() as conn:
            conn.row_factory = sqlite3.Row
            r = conn.execute("SELECT * FROM audit_records WHERE seq = ?", (seq,)).fetchone()
            return dict(r)

    def swap(self, a: int, b: int) -> None:
        ra, rb = self.row(a), self.row(b)
        cols = [c for c in ra if c != "seq"]
        with self._conn() as conn:
            for target, source in ((a, rb), (b, ra)):
                conn.execute(
                    f"UPDATE audit_records SET {', '.join(f'{c} = ?' for c in cols)} WHERE seq = ?",
                    [*(source[c] for c in cols), target],
                )

    def insert(self, row: dict[str, Any]) -> None:
        cols = list(row)
        with self._conn() as conn:
            conn.execute(
                f"INSERT INTO audit_records ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
                [row[c] for c in cols],
            )

    def set_head(self, seq: int, digest: bytes) -> None:
        with self._conn() as conn:
            conn.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))
