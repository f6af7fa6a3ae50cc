"""Checking the trail: the chain, the signatures and head file, and with the key every record and tag.

Why: evidence is only worth something if anyone can check it. The verifier
recomputes each record's hash (record.audit.chain), checks that seqs are dense
and each prev_hash is the hash before it, and compares the last record with
the store's ``audit_head`` row and with the head file. With trusted signing
keys (the master key's, or an exported public key file: record.audit.signing)
it also checks the records' signatures and the head file's, so a rehashed
forgery, a rewritten head file or a wiped trail (keys but no records and no
head file) fail. With the master key it also decrypts every record (its AAD
binds seq, key version and prev_hash) and checks the job/action/outcome tags
and the time column against the plaintext. A row with a mistyped column, a
key version that does not unwrap or is not trusted is reported at the seq of
its (first) record, and everything else is still checked. Every problem names
the seq where the chain breaks.

Limit: a copy of an older, genuinely signed head file put back after deleting
the records after it is indistinguishable from an older trail; compare the
head seq with the one an earlier verify or export printed.

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

from flink_gitops.record.audit.chain import ZERO_HASH, Head, HeadFile, record_signing_message, row_hash
from flink_gitops.record.audit.errors import AuditDecryptError, AuditIntegrityError
from flink_gitops.record.audit.sealing import unseal
from flink_gitops.record.audit.signing import TrustedKeys
from flink_gitops.record.keys import KeyRing
from flink_gitops.record.store.records import AuditKeyRow, AuditRow, UnreadableAuditKeyRow, UnreadableAuditRow

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
    ) -> Iterator[AuditRow | UnreadableAuditRow]: ...

    def audit_head(self) -> tuple[int, bytes]: ...

    def audit_keys(self) -> list[AuditKeyRow | UnreadableAuditKeyRow]: ...


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
    #: signatures were checked (under the master key's signing keys or a public key file).
    signed: bool = False
    signatures_checked: int = 0
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


class _Runs:
    """Signature checks over runs of records whose hashes and links are intact.

    Inside such a run each hash commits to every record before it, so a record is genuine iff
    its signature verifies, and genuineness holds for a prefix of the run: checking the last
    signature vouches for the whole run, and when it fails a binary search finds the first
    record that is not the one signed (O(log n) signature checks instead of one per record).
    """

    def __init__(self, trusted: TrustedKeys, report: VerifyReport) -> None:
        self.trusted = trusted
        self._report = report
        self._run: list[tuple[int, int, bytes, bytes]] = []
        self.checked = 0

    def add(self, row: AuditRow) -> None:
        self._run.append((row.seq, row.key_version, row.hash, row.signature))

    def _valid(self, i: int) -> bool:
        seq, version, digest, signature = self._run[i]
        self.checked += 1
        return self.trusted.verify(version, record_signing_message(seq, version, digest), signature)

    def close(self) -> None:
        """End the current run: check it, report its first record that is not the one signed."""
        run = self._run
        if not run or self._valid(len(run) - 1):
            self._run = []
            return
        lo, hi = 0, len(run) - 1  # run[hi] is known not to verify
        while lo < hi:
            mid = (lo + hi) // 2
            if self._valid(mid):
                lo = mid + 1
            else:
                hi = mid
        self._run = []
        self._report.add(
            run[lo][0],
            "signature does not verify: not the record flink-gitops signed here (rewritten, rehashed "
            "or forged)",
        )


def verify_trail(
    store: AuditReader,
    head_file: HeadFile | None,
    keys: KeyRing | None = None,
    *,
    trusted: TrustedKeys | None = None,
    key_rows: list[AuditKeyRow | UnreadableAuditKeyRow] | None = None,
) -> VerifyReport:
    """Walk the whole trail once; never raises for tampering (it is reported), only for I/O.

    ``keys``: also decrypt every record, and check signatures under the keys it unwraps.
    ``trusted``: check signatures under these public keys (instead of the ring's), following
    endorsements in ``key_rows`` (the store's audit keys). Neither: the hash chain only.
    """
    report = VerifyReport(keyed=keys is not None)
    version_problems: dict[int, str] = {}
    if keys is not None:
        version_problems = keys.broken()
        if trusted is None:
            trusted = TrustedKeys.from_ring(keys)
        else:  # an auditor with both: the file anchors the signatures (and an emptied key table)
            version_problems = trusted.extend(key_rows or []) | version_problems
        report.signed = True
        for problem in keys.problems():
            if not problem.startswith("v"):
                report.add(None, problem)
    elif trusted is not None:
        version_problems = trusted.extend(key_rows or [])
        report.signed = True
    runs = _Runs(trusted, report) if trusted is not None else None
    reported_versions: set[int] = set()
    expected, prev = 1, ZERO_HASH
    prev_known = True
    hashes = {0: ZERO_HASH}  # the last two records' hashes (seq 0: before the first), for the head-lag rule
    for row in store.audit_rows():
        report.records += 1
        if isinstance(row, UnreadableAuditRow):
            at = row.seq if row.seq is not None else expected
            report.add(at, f"the stored row is unreadable: {row.problem} (edited in the database)")
            if runs is not None:
                runs.close()
            expected, prev_known = at + 1, False
            continue
        broken = False
        if row.seq > expected:
            missing = (
                f"record {expected} is"
                if row.seq == expected + 1
                else f"records {expected}..{row.seq - 1} are"
            )
            report.add(expected, f"{missing} missing (deleted?)")
            broken = True
        elif row.seq < expected:
            report.add(row.seq, f"seq {row.seq} appears again after {expected - 1} (reordered or duplicated)")
            broken = True
        if prev_known and row.prev_hash != prev:
            report.add(
                row.seq, "prev_hash is not the hash of the record before it (deleted, swapped or replayed)"
            )
            broken = True
        intact = row_hash(row) == row.hash
        if not intact:
            report.add(row.seq, "hash does not match the record's contents (edited)")
        if runs is not None:
            if broken or not intact:
                runs.close()
            why = version_problems.get(row.key_version)
            if why is None and row.key_version not in runs.trusted:
                why = f"no trusted signing key v{row.key_version}"
            if why is not None:
                if row.key_version not in reported_versions:
                    reported_versions.add(row.key_version)
                    report.add(
                        row.seq,
                        f"records under key v{row.key_version} (the first here) cannot be checked: {why}",
                    )
            elif intact:
                runs.add(row)
        if keys is not None and row.key_version not in reported_versions:
            try:
                unseal(row, keys)
                report.decrypted += 1
            except AuditDecryptError as exc:
                report.add(row.seq, str(exc).removeprefix(f"record {row.seq}").lstrip(": "))
        prev, expected, prev_known = row.hash, row.seq + 1, True
        hashes[row.seq] = row.hash
        hashes.pop(row.seq - 2, None)
    if runs is not None:
        runs.close()
        report.signatures_checked = runs.checked
    for version, why in sorted(version_problems.items()):
        if version not in reported_versions:
            report.add(None, f"key v{version}: {why}")
    last_seq = expected - 1
    report.last = Head(last_seq, prev if prev_known else b"")

    db_seq, db_hash = store.audit_head()
    if (db_seq, db_hash) != (last_seq, report.last.hash):
        report.add(
            min(db_seq, last_seq) + 1 if db_seq != last_seq else last_seq,
            f"the store's audit_head says seq {db_seq} ({db_hash.hex()[:16]}…) but the records end at "
            f"{report.last}",
        )
    if head_file is not None:
        _check_head_file(report, head_file, hashes, trusted, anchored=bool(trusted) or bool(version_problems))
    return report


def _check_head_file(
    report: VerifyReport,
    head_file: HeadFile,
    hashes: dict[int, bytes],
    trusted: TrustedKeys | None,
    *,
    anchored: bool,
) -> None:
    """``anchored``: keys exist, so even an empty trail must have its signed head file."""
    last = report.last
    try:
        head = head_file.read()
    except AuditIntegrityError as exc:
        report.add(last.seq or 1, f"{exc}: removal of records after seq {last.seq} cannot be ruled out")
        return
    report.head_file = head
    if head is None:
        if last.seq > 0 or anchored:
            report.add(
                last.seq + 1,
                f"head file {head_file.path} is missing, so removal of records after seq {last.seq} "
                "cannot be ruled out"
                + (" (the trail is empty but its keys exist: wiped?)" if last.seq == 0 else ""),
            )
        return
    problem = head_problem(head, last, hashes.get(last.seq - 1))
    if problem is not None:
        report.add(*problem)
        return
    if trusted is not None and not trusted.verify(head.key_version, head.signing_message(), head.signature):
        what = "is not signed" if not head.signature else "has a signature that does not verify"
        at = min(head.seq, last.seq)
        report.add(
            at + 1,
            f"head file {head_file.path} {what} (rewritten head file): it cannot vouch for the "
            f"end of the trail, records after seq {at} may have been removed",
        )
        return
    if head.seq == last.seq - 1:
        report.notes.append(
            f"head file lags the store by one record (seq {head.seq} of {last.seq}): an append was "
            "interrupted before its head write; the next append rewrites it"
        )


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
