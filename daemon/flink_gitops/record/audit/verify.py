"""Checking the trail: the chain (no key needed), the head file, and with the key every record and tag.

Why: evidence is only worth something if anyone can check it. Without the key
the verifier recomputes each record's hash (record.audit.chain), checks that
seqs are dense and each prev_hash is the hash before it, and compares the last
record with the store's ``audit_head`` row and with the head file. With the
key it also decrypts every record (its AAD binds seq, key version and
prev_hash) and checks the job/action/outcome tags and the time column against
the plaintext. Every problem names the seq where the chain breaks.

Head rule: the head file may lag the database by at most the one record whose
append was in flight when a process died: head seq ∈ {db seq, db seq - 1} with
the hash of that record is consistent; anything else is a problem.
Neighbours: cli.audit (``audit verify``), record.audit.trail (checks the head on open).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from typing import Protocol

from flink_gitops.record.audit.chain import ZERO_HASH, Head, HeadFile, row_hash
from flink_gitops.record.audit.errors import AuditDecryptError, AuditIntegrityError
from flink_gitops.record.audit.sealing import unseal
from flink_gitops.record.keys import KeyRing
from flink_gitops.record.store.records import AuditRow

_MAX_PROBLEMS = 1000


class AuditReader(Protocol):
    """The read side of the store contract."""

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
    ) -> Iterator[AuditRow]: ...

    def audit_head(self) -> tuple[int, bytes]: ...


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong; ``seq`` is where the chain breaks (None: no record to point at)."""

    seq: int | None
    what: str

    def __str__(self) -> str:
        return f"seq {self.seq}: {self.what}" if self.seq is not None else self.what


@dataclass(slots=True)
class VerifyReport:
    """The outcome of :func:`verify_trail`."""

    records: int = 0
    last: Head = field(default_factory=lambda: Head(0, ZERO_HASH))
    decrypted: int = 0
    keyed: bool = False
    head_file: Head | None = None
    #: a consistent-but-notable head state, e.g. "head file lags by one record".
    notes: list[str] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    more_problems: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems

    @property
    def first_break(self) -> int | None:
        """The lowest seq any problem points at."""
        seqs = [p.seq for p in self.problems if p.seq is not None]
        return min(seqs) if seqs else None

    def add(self, seq: int | None, what: str) -> None:
        if len(self.problems) < _MAX_PROBLEMS:
            self.problems.append(Problem(seq, what))
        else:
            self.more_problems += 1


def verify_trail(store: AuditReader, head_file: HeadFile | None, keys: KeyRing | None = None) -> VerifyReport:
    """Walk the whole trail once; never raises for tampering (it is reported), only for I/O."""
    report = VerifyReport(keyed=keys is not None)
    expected, prev = 1, ZERO_HASH
    hashes = {0: ZERO_HASH}  # the last two records' hashes (seq 0: before the first), for the head-lag rule
    for row in store.audit_rows():
        report.records += 1
        if row.seq > expected:
            missing = (
                f"record {expected} is"
                if row.seq == expected + 1
                else f"records {expected}..{row.seq - 1} are"
            )
            report.add(expected, f"{missing} missing (deleted?)")
        elif row.seq < expected:
            report.add(row.seq, f"seq {row.seq} appears again after {expected - 1} (reordered or duplicated)")
        if row.prev_hash != prev:
            report.add(
                row.seq, "prev_hash is not the hash of the record before it (deleted, swapped or replayed)"
            )
        if row_hash(row) != row.hash:
            report.add(row.seq, "hash does not match the record's contents (edited)")
        if keys is not None:
            try:
                unseal(row, keys)
                report.decrypted += 1
            except AuditDecryptError as exc:
                report.add(row.seq, str(exc).removeprefix(f"record {row.seq}").lstrip(": "))
        prev, expected = row.hash, row.seq + 1
        hashes[row.seq] = row.hash
        hashes.pop(row.seq - 2, None)
    last_seq = expected - 1
    report.last = Head(last_seq, prev)

    db_seq, db_hash = store.audit_head()
    if (db_seq, db_hash) != (last_seq, prev):
        report.add(
            min(db_seq, last_seq) + 1 if db_seq != last_seq else last_seq,
            f"the store's audit_head says seq {db_seq} ({db_hash.hex()[:16]}…) but the records end at "
            f"{report.last}",
        )
    if head_file is not None:
        _check_head_file(report, head_file, hashes)
    return report


def _check_head_file(report: VerifyReport, head_file: HeadFile, hashes: dict[int, bytes]) -> None:
    last = report.last
    try:
        head = head_file.read()
    except AuditIntegrityError as exc:
        report.add(last.seq or None, str(exc))
        return
    report.head_file = head
    if head is None:
        if last.seq > 0:
            report.add(None, f"head file {head_file.path} is missing, so truncation cannot be ruled out")
        return
    problem = head_problem(head, last, hashes.get(last.seq - 1))
    if problem is None and head.seq == last.seq - 1:
        report.notes.append(
            f"head file lags the store by one record (seq {head.seq} of {last.seq}): an append was "
            "interrupted before its head write; the next append rewrites it"
        )
    elif problem is not None:
        report.add(*problem)


def head_problem(head: Head, last: Head, before_last_hash: bytes | None) -> tuple[int, str] | None:
    """Why the head file ``head`` does not fit a trail ending at ``last``; None when consistent."""
    if head.seq > last.seq:
        return last.seq + 1, (
            f"head file says the trail ends at seq {head.seq}, the store ends at {last.seq}: "
            f"records {last.seq + 1}..{head.seq} were removed (truncated)"
        )
    if head.seq == last.seq:
        if head.hash != last.hash:
            return (
                head.seq,
                "head file hash differs from the last record's hash (edited head file or rewritten chain)",
            )
        return None
    if head.seq == last.seq - 1:
        if before_last_hash is not None and head.hash != before_last_hash:
            return (
                head.seq,
                "head file hash differs from that record's hash (edited head file or rewritten chain)",
            )
        return None
    return head.seq + 1, (
        f"head file is at seq {head.seq} but the store is at {last.seq}: more than the one in-flight record "
        "behind (edited head file, or records appended without it)"
    )
