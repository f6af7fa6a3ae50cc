"""The audit trail the daemon writes to: append (fail closed), guard an action, rotate keys, query.

Why: every action the daemon takes must leave evidence first. The pattern the
reconciler uses::

    with trail.guard(AuditEvent(action="job.upgrade", actor=..., job=..., ...)) as act:
        new_id = flink.run(...)            # runs only if the intent record was written
        act.set(job_id_after=new_id)       # extra facts for the outcome record

``guard`` writes an ``intent`` record and raises :class:`AuditUnavailable`
(without running the body) if it cannot; after the body it writes a
``succeeded`` or ``failed`` record that points back at the intent's seq (if
that outcome record cannot be written after a body that succeeded, the
AuditUnavailable carries a note that the action was taken).
``record`` appends one event and raises AuditUnavailable when the store (or
the head file) write fails. Appends go through ``Store.append_audit``, which
serialises all appenders and hands us (next seq, prev hash); the head file is
advanced after each commit.

Each record is signed by the key version's Ed25519 key (record.audit.sealing)
and so is the head file after every append (record.audit.chain).
On open the head file is checked against the store: missing (while records exist), corrupt, not
signed by our key, ahead of the store, on another chain, or behind by more than the one in-
flight record → :class:`HeadNotAccepted` (looked at again for up to HEAD_SETTLE_S first: a
replica starting beside another that appends, or that is creating the first key, sees such a
state for milliseconds), so the daemon does not append (fail closed) over evidence of tampering
or of a restored backup, until an operator runs ``flink-gitops audit accept-head --reason
TEXT`` (:meth:`AuditTrail.accept_head`), which writes an ``audit.accept_head`` record naming
the gap and moves the head file to it. Several hosts appending to one PostgreSQL store must
therefore share the head file (``audit.head_file`` on shared storage). On an empty store open
writes the head file at seq 0, so a crash inside the very first append is the usual lag of one
record, not a missing head file. A running trail re-reads the key versions every KEY_REFRESH_S,
so ``keys rotate`` from the CLI takes effect in the daemon.
Neighbours: record.audit.sealing (crypto),
record.audit.chain (hash, head file), record.audit.verify, record.keys,
record.store (the rows), cli.audit / cli.keys, the runtime scheduler (calls
:meth:`AuditTrail.rotate_if_due`).
"""

from __future__ import annotations

import dataclasses
import json
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from flink_gitops.clock import Clock, utc
from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.record.audit.chain import ZERO_HASH, Head, HeadFile, head_signing_message
from flink_gitops.record.audit.errors import (
    AuditDecryptError,
    AuditError,
    AuditIntegrityError,
    AuditOutcomeMissing,
    AuditRecordInvalid,
    AuditUnavailable,
)
from flink_gitops.record.audit.event import FAILED, INTENT, SUCCEEDED, AuditEvent, AuditRecord
from flink_gitops.record.audit.sealing import seal, unseal
from flink_gitops.record.audit.signing import TrustedKeys
from flink_gitops.record.audit.verify import AuditReader, head_problem
from flink_gitops.record.keys import DataKey, KeyRing, KeySource, key_source_from_settings
from flink_gitops.record.store.errors import StoreError
from flink_gitops.record.store.records import AuditKeyRow, AuditRow, UnreadableAuditRow
from flink_gitops.settings import Settings

ROTATE_ACTION = "keys.rotate"
ACCEPT_HEAD_ACTION = "audit.accept_head"
#: how often a running trail re-reads the key versions (picks up rotations by other processes), seconds.
KEY_REFRESH_S = 60.0
#: how long open looks again at a head file that does not fit before refusing, seconds: what
#: another appender leaves between its commit and its head file write lasts milliseconds.
HEAD_SETTLE_S = 2.0
HEAD_SETTLE_STEP_S = 0.1


class AuditStore(AuditReader, Protocol):
    """The store contract the trail needs (record.store.Store implements it)."""

    def append_audit(self, build: Callable[[int, bytes], AuditRow]) -> AuditRow: ...

    def audit_count(self) -> int: ...

    def put_audit_key(self, row: AuditKeyRow) -> None: ...


def head_file_path(settings: Settings) -> Path:
    return settings.audit.head_file or settings.state_dir / "audit.head"


class HeadNotAccepted(AuditIntegrityError):
    """The head file does not fit the store; appends are refused until ``audit accept-head``."""


def signed_head(key: DataKey, seq: int, digest: bytes) -> Head:
    return Head(seq, digest, key.version, key.sign(head_signing_message(seq, key.version, digest)))


class ActionScope:
    """What the body of :meth:`AuditTrail.guard` may add to the outcome record."""

    def __init__(self, intent: AuditRecord) -> None:
        self.intent = intent
        self._updates: dict[str, Any] = {}
        self._outcome: str | None = None

    def set(self, **fields: Any) -> None:
        """Facts for the outcome record (job_id_after=..., savepoint=..., details=...).

        Refuses at once (AuditRecordInvalid) a field an event does not have, one that names the
        record itself (action, actor, outcome, intent_seq, job, cluster), and a value that is not
        JSON: a bad outcome must not surface only after the action was taken."""
        _check_updates(fields)
        self._updates.update(fields)

    def outcome(self, value: str, **fields: Any) -> None:
        """Override the outcome written on normal exit (default ``succeeded``)."""
        _check_updates(fields)
        if not isinstance(value, str) or not value:
            raise AuditRecordInvalid("an outcome is a non-empty string")
        self._outcome = value
        self._updates.update(fields)


#: fields the body of a guard may not change: they say what the record is about.
_RESERVED = frozenset({"action", "actor", "outcome", "intent_seq", "job", "cluster"})
_EVENT_FIELDS = frozenset(f.name for f in dataclasses.fields(AuditEvent))


def _check_updates(fields: dict[str, Any]) -> None:
    unknown = sorted(set(fields) - _EVENT_FIELDS)
    if unknown:
        raise AuditRecordInvalid(f"an audit record has no field {', '.join(unknown)}")
    reserved = sorted(set(fields) & _RESERVED)
    if reserved:
        raise AuditRecordInvalid(f"{', '.join(reserved)} cannot be changed after the intent")
    try:
        json.dumps(fields, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise AuditRecordInvalid(f"audit fields {sorted(fields)} are not JSON: {exc}") from exc


class AuditTrail:
    """Appends sealed records, keeps the head file, rotates data keys. Thread-safe."""

    def __init__(
        self,
        store: AuditStore,
        keys: KeyRing,
        head_file: HeadFile,
        clock: Clock,
        *,
        actor: str,
        max_key_age: timedelta | None = None,
    ) -> None:
        self._store = store
        self._keys = keys
        self._head_file = head_file
        self._clock = clock
        self._actor = actor
        self._max_key_age = max_key_age
        self._rotate_lock = threading.Lock()
        self._keys_checked = clock.monotonic()
        #: records this object appended (the metrics count them).
        self.appended = 0
        self._count_lock = threading.Lock()
        #: False after an append failed because the store or head file was unavailable, True
        #: again after one succeeds.
        self.writable = True

    def _refresh_keys_if_stale(self) -> None:
        # A `keys rotate` by another process must take effect here too (the old key may be retired
        # because it leaked), so re-read the key versions now and then.
        if self._clock.monotonic() - self._keys_checked >= KEY_REFRESH_S:
            self._keys_checked = self._clock.monotonic()
            try:
                self._keys.refresh()
            except StoreError as exc:
                raise AuditUnavailable(f"cannot re-read the audit keys: {exc}") from exc
            broken = self._keys.broken()
            if broken and max(broken) > max(self._keys.versions(), default=0):
                newest = max(broken)
                raise AuditUnavailable(
                    f"the newest audit key v{newest} is unusable ({broken[newest]}); refusing to append "
                    "under an older key: run `flink-gitops audit verify`"
                )

    @classmethod
    def open(
        cls,
        store: AuditStore,
        source: KeySource,
        *,
        head_file: Path,
        clock: Clock,
        actor: str,
        max_key_age_days: float | None = None,
    ) -> AuditTrail:
        """Load (or on a new store create) the keys and check the head file against the store.

        Raises HeadNotAccepted (an AuditIntegrityError) when the head file does not fit the store
        (see the module doc): appending then would paper over the evidence; KeyVersionUnusable when
        the newest key version does not unwrap; AuditUnavailable when the head file of an empty
        store cannot be written.
        """
        existed = bool(store.audit_keys())
        trail = cls._load(store, source, head_file=head_file, clock=clock, actor=actor, age=max_key_age_days)
        trusted = TrustedKeys.from_ring(trail._keys)
        problem = head_mismatch(store, trail._head_file, trusted, anchored=existed)
        waited = 0.0
        while problem is not None and waited < HEAD_SETTLE_S:
            # Another replica (or a CLI) may be between its commit and its head file write, or
            # between creating the first key and the seq-0 head file: look again before refusing.
            clock.sleep(HEAD_SETTLE_STEP_S)
            waited += HEAD_SETTLE_STEP_S
            problem = head_mismatch(store, trail._head_file, trusted, anchored=existed)
        if problem is not None:
            raise HeadNotAccepted(
                f"audit head file {head_file}: {problem[1]}. Appending is refused until this is "
                "explained: run `flink-gitops audit verify`, then `flink-gitops audit accept-head "
                "--reason TEXT` to record the gap and go on",
                seq=problem[0],
            )
        trail._init_empty_head()
        return trail

    @classmethod
    def _load(
        cls,
        store: AuditStore,
        source: KeySource,
        *,
        head_file: Path,
        clock: Clock,
        actor: str,
        age: float | None,
    ) -> AuditTrail:
        keys = KeyRing.open(store, source, now=utc(clock.now()), require_current=True)
        head = HeadFile(head_file)
        head.remove_stale_temps()
        max_age = None if age is None else timedelta(days=age)
        return cls(store, keys, head, clock, actor=actor, max_key_age=max_age)

    def _init_empty_head(self) -> None:
        if self._store.audit_head()[0] == 0:
            # Head file "seq 0" before the first append, so a crash inside that append leaves the
            # in-flight lag of one record, not a missing head file (which reads as tampering).
            try:
                self._head_file.advance(signed_head(self._keys.current(), 0, ZERO_HASH))
            except OSError as exc:
                raise AuditUnavailable(
                    f"cannot write the audit head file {self._head_file.path}: {exc.strerror}"
                ) from exc

    @classmethod
    def accept_head(
        cls,
        store: AuditStore,
        source: KeySource,
        *,
        head_file: Path,
        clock: Clock,
        actor: str,
        reason: str,
    ) -> AuditRecord | None:
        """Record why the head file does not fit the store, and move it to that record.

        Returns the ``audit.accept_head`` record, or None when the head file fits (nothing to
        accept). The record names the head file's and the store's seq and hash and the problem.
        """
        if not reason.strip():
            raise ValueError("accept-head needs a reason")
        existed = bool(store.audit_keys())
        trail = cls._load(store, source, head_file=head_file, clock=clock, actor=actor, age=None)
        problem = head_mismatch(store, trail._head_file, TrustedKeys.from_ring(trail._keys), anchored=existed)
        if problem is None:
            return None
        try:
            on_disk: Head | None = trail._head_file.read()
            head_state: object = None if on_disk is None else {"seq": on_disk.seq, "hash": on_disk.hash.hex()}
        except AuditIntegrityError:
            head_state = "corrupt"
        db_seq, db_hash = store.audit_head()
        record, head = trail._append(
            AuditEvent(
                action=ACCEPT_HEAD_ACTION,
                actor=actor,
                outcome=SUCCEEDED,
                details={
                    "reason": reason,
                    "problem": problem[1],
                    "problem_seq": problem[0],
                    "head_file": head_state,
                    "store_head": {"seq": db_seq, "hash": db_hash.hex()},
                },
            ),
            advance=False,
        )
        try:
            trail._head_file.replace(head)
        except OSError as exc:
            raise AuditUnavailable(
                f"audit record {record.seq} was written but the head file {head_file} could not be "
                f"updated: {exc.strerror}"
            ) from exc
        logger.warning("audit: head file accepted at seq {} ({}): {}", record.seq, problem[1], reason)
        return record

    @classmethod
    def from_settings(cls, settings: Settings, store: AuditStore, *, clock: Clock, actor: str) -> AuditTrail:
        return cls.open(
            store,
            key_source_from_settings(settings),
            head_file=head_file_path(settings),
            clock=clock,
            actor=actor,
            max_key_age_days=settings.audit.max_key_age_days,
        )

    @property
    def actor(self) -> str:
        return self._actor

    @property
    def keys(self) -> KeyRing:
        return self._keys

    @property
    def head_file(self) -> HeadFile:
        return self._head_file

    # ------------------------------------------------------------------ writing

    def record(self, event: AuditEvent) -> AuditRecord:
        """Append ``event``; raises AuditUnavailable if it is not durably recorded (then do not act)."""
        return self._append(event)[0]

    def _append(self, event: AuditEvent, *, advance: bool = True) -> tuple[AuditRecord, Head]:
        now = utc(self._clock.now())
        try:
            self._refresh_keys_if_stale()
            key = self._keys.current()
            master = self._keys.master
        except AuditError:
            raise
        except FlinkGitOpsError as exc:  # the key ring (e.g. WrongMasterKey): ours to report as unavailable
            self.writable = False
            raise AuditUnavailable(f"audit record for {event.action!r} was not written: {exc}") from exc
        try:
            plaintext = event.to_plaintext(now)  # before the store is touched
        except (TypeError, ValueError) as exc:
            raise AuditRecordInvalid(f"audit record for {event.action!r} is not JSON: {exc}") from exc

        def build(seq: int, prev_hash: bytes) -> AuditRow:
            return seal(
                seq=seq,
                prev_hash=prev_hash,
                event=event,
                recorded_at=now,
                key=key,
                master=master,
                plaintext=plaintext,
            )

        try:
            row = self._store.append_audit(build)
        except StoreError as exc:
            self.writable = False
            raise AuditUnavailable(f"audit record for {event.action!r} was not written: {exc}") from exc
        with self._count_lock:
            self.appended += 1
        head = signed_head(key, row.seq, row.hash)
        if advance:
            try:
                self._head_file.advance(head)
            except OSError as exc:
                self.writable = False
                raise AuditUnavailable(
                    f"audit record {row.seq} was written but the head file {self._head_file.path} could not "
                    f"be updated: {exc.strerror}"
                ) from exc
        self.writable = True
        return AuditRecord(seq=row.seq, recorded_at=now, key_version=key.version, event=event), head

    @contextmanager
    def guard(self, intent: AuditEvent) -> Iterator[ActionScope]:
        """Record the intent, run the body only if that worked, then record the outcome (see module doc)."""
        opened = self.record(dataclasses.replace(intent, outcome=INTENT))
        scope = ActionScope(opened)
        try:
            yield scope
        except Exception as exc:
            failed = dataclasses.replace(
                intent, outcome=FAILED, error=_describe(exc), intent_seq=opened.seq, **scope._updates
            )
            try:
                self.record(failed)
            except AuditUnavailable as audit_exc:
                logger.error(
                    "audit: could not record the failure of {} (intent seq {})", intent.action, opened.seq
                )
                exc.add_note(f"and its failure was not audited: {audit_exc}")
            raise
        done = dataclasses.replace(
            intent, outcome=scope._outcome or SUCCEEDED, intent_seq=opened.seq, **scope._updates
        )
        try:
            self.record(done)
        except AuditUnavailable as exc:
            # The action HAS been taken: a permanent error of its own, so no caller retries it.
            logger.error(
                "audit: {} was taken but its outcome was not recorded (intent seq {})",
                intent.action,
                opened.seq,
            )
            raise AuditOutcomeMissing(
                f"{intent.action} was taken (intent seq {opened.seq}) but its outcome record could not be "
                f"written: {exc}",
                intent_seq=opened.seq,
            ) from exc

    # ------------------------------------------------------------------ keys

    def rotate(self, *, reason: str = "manual") -> int:
        """Add a data key version; new records use it. The rotation is recorded under the new key."""
        with self._rotate_lock:
            now = utc(self._clock.now())
            old = self._keys.current().version
            key = self._keys.add_version(now)
            self.record(
                AuditEvent(
                    action=ROTATE_ACTION,
                    actor=self._actor,
                    outcome=SUCCEEDED,
                    details={"from_version": old, "to_version": key.version, "reason": reason},
                )
            )
            logger.info("audit: data key rotated to version {} ({})", key.version, reason)
            return key.version

    def rotate_if_due(self, now: datetime) -> int | None:
        """Rotate when the current data key is older than ``max_key_age_days``; the new version, else None."""
        if self._max_key_age is None:
            return None
        self._keys.refresh()  # another process (``keys rotate``) may have rotated already
        if utc(now) - self._keys.current().created_at < self._max_key_age:
            return None
        return self.rotate(reason="max_key_age")

    # ------------------------------------------------------------------ reading

    def records(
        self,
        *,
        job: str | None = None,
        action: str | None = None,
        outcome: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        after_seq: int = 0,
        limit: int | None = None,
    ) -> Iterator[AuditRecord]:
        """Decrypted records, filtered in the store by tags and time; AuditDecryptError on a bad one."""
        return query_records(
            self._store,
            self._keys,
            job=job,
            action=action,
            outcome=outcome,
            since=since,
            until=until,
            after_seq=after_seq,
            limit=limit,
        )


def query_records(
    store: AuditReader,
    keys: KeyRing,
    *,
    job: str | None = None,
    action: str | None = None,
    outcome: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    after_seq: int = 0,
    limit: int | None = None,
) -> Iterator[AuditRecord]:
    """Decrypted records matching every filter (tags computed here, matched in the store), ascending seq."""
    master = keys.master
    rows = store.audit_rows(
        after_seq=after_seq,
        job_tag=None if job is None else master.tag("job", job),
        action_tag=None if action is None else master.tag("action", action),
        outcome_tag=None if outcome is None else master.tag("outcome", outcome),
        since=since,
        until=until,
        limit=limit,
    )
    for row in rows:
        if isinstance(row, UnreadableAuditRow):
            at = "" if row.seq is None else f" {row.seq}"
            raise AuditDecryptError(
                f"record{at} is unreadable: {row.problem} (edited in the database)", seq=row.seq or 0
            )
        yield unseal(row, keys)


def head_mismatch(
    store: AuditReader, head_file: HeadFile, trusted: TrustedKeys | None = None, *, anchored: bool = True
) -> tuple[int | None, str] | None:
    """Why the head file does not fit the store (seq, text), or None; only the in-flight lag is fine.

    ``anchored``: the trail's keys existed before (so an empty store needs its seq-0 head file).
    """
    # The head file first: appenders commit before they advance it, so read in this order a
    # concurrent append can make it look behind (the in-flight lag), never ahead (truncation).
    try:
        head = head_file.read()
    except AuditIntegrityError as exc:
        return store.audit_head()[0] + 1, str(exc)
    db_seq, db_hash = store.audit_head()
    if head is None:
        if db_seq > 0:
            return db_seq + 1, f"the head file is missing but the store holds {db_seq} records"
        if anchored:
            return 1, "the head file is missing and the store holds no records, but its keys exist (wiped?)"
        return None
    if head.seq < db_seq - 1:
        on_chain = _stored_hash(store, head.seq) == head.hash
        return head.seq + 1, (
            f"the head file is at seq {head.seq} but the store at {db_seq}: more than the one in-flight "
            "record behind (a restored backup of it, or records appended without it)"
            + ("" if on_chain else "; and its hash is not the stored record's (another chain)")
        )
    before_last = _stored_hash(store, head.seq) if head.seq == db_seq - 1 else None
    problem = head_problem(head, Head(db_seq, db_hash), before_last)
    signed = trusted is None or trusted.verify(head.key_version, head.signing_message(), head.signature)
    if problem is None and not signed:
        return head.seq + 1, "the head file is not signed by this trail's key (rewritten)"
    return problem


def check_head(store: AuditReader, head_file: HeadFile, trusted: TrustedKeys | None = None) -> None:
    """Raise HeadNotAccepted unless the head file fits the store."""
    problem = head_mismatch(store, head_file, trusted)
    if problem is not None:
        raise HeadNotAccepted(f"audit head file {head_file.path}: {problem[1]}", seq=problem[0])


def _stored_hash(store: AuditReader, seq: int) -> bytes:
    """The hash of stored record ``seq`` (ZERO_HASH for 0, before the first record; b"" if absent)."""
    if seq == 0:
        return ZERO_HASH
    row = next(iter(store.audit_rows(after_seq=seq - 1, limit=1)), None)
    return row.hash if isinstance(row, AuditRow) and row.seq == seq else b""


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."
