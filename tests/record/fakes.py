"""FakeAuditStore: an in-memory stand-in for the store's audit contract (a fake, named as one).

Used where the real store cannot do what a test needs: failing writes on
demand (fail-closed tests) and thousands of hypothesis examples. It keeps the
contract's rules: one lock serialises appenders, ``build`` exceptions leave
nothing written, seq/prev_hash are checked, keys are insert-only. ``rows`` is
a plain list so tests can tamper with it like an attacker with DB access.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import datetime

from flink_gitops.record.store import (
    ZERO_HASH,
    AuditKeyRow,
    AuditRow,
    AuditRowRejected,
    DuplicateAuditKey,
    StoreWriteFailed,
    UnreadableAuditKeyRow,
    UnreadableAuditRow,
)


class FakeAuditStore:
    def __init__(self) -> None:
        self.rows: list[AuditRow] = []
        self.head: tuple[int, bytes] = (0, ZERO_HASH)
        self.keys: list[AuditKeyRow] = []
        #: when set, append_audit raises StoreWriteFailed before calling build.
        self.fail_appends = False
        #: when set, append_audit calls build, then raises StoreWriteFailed (the commit failed).
        self.fail_commits = False
        self.appends_attempted = 0
        self._lock = threading.Lock()

    def append_audit(self, build: Callable[[int, bytes], AuditRow]) -> AuditRow:
        with self._lock:
            self.appends_attempted += 1
            if self.fail_appends:
                raise StoreWriteFailed("cannot append the audit record: database is locked (fake)")
            seq, prev = self.head[0] + 1, self.head[1]
            row = build(seq, prev)
            if row.seq != seq or row.prev_hash != prev:
                raise AuditRowRejected(f"audit row {row.seq} does not continue the chain at {seq}")
            if self.fail_commits:
                raise StoreWriteFailed("cannot append the audit record: disk I/O error (fake)")
            self.rows.append(row)
            self.head = (row.seq, row.hash)
            return row

    def audit_rows(
        self,
        *,
        after_seq: int = 0,
        job_tag: bytes | None = None,
        action_tag: bytes | None = None,
        outcome_tag: bytes | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int | None = None,
    ) -> Iterator[AuditRow | UnreadableAuditRow]:
        with self._lock:
            rows = sorted(self.rows, key=lambda r: r.seq)
        n = 0
        for r in rows:
            if limit is not None and n >= limit:
                return
            if r.seq <= after_seq:
                continue
            if job_tag is not None and r.job_tag != job_tag:
                continue
            if action_tag is not None and r.action_tag != action_tag:
                continue
            if outcome_tag is not None and r.outcome_tag != outcome_tag:
                continue
            if since is not None and r.recorded_at < since:
                continue
            if until is not None and r.recorded_at >= until:
                continue
            n += 1
            yield r

    def audit_head(self) -> tuple[int, bytes]:
        with self._lock:
            return self.head

    def audit_count(self) -> int:
        with self._lock:
            return len(self.rows)

    def put_audit_key(self, row: AuditKeyRow) -> None:
        with self._lock:
            if any(k.version == row.version for k in self.keys):
                raise DuplicateAuditKey(f"audit key version {row.version} exists")
            self.keys.append(row)

    def audit_keys(self) -> list[AuditKeyRow | UnreadableAuditKeyRow]:
        with self._lock:
            return [*sorted(self.keys, key=lambda k: k.version)]
