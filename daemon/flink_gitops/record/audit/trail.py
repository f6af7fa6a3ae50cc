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

On open the head file is checked against the store: missing (while records
exist), ahead of the store, or on another chain → AuditIntegrityError, so the
daemon does not append over evidence of tampering; behind by more than one
record (another host appended: PostgreSQL replicas keep one head file each)
is only logged. On an empty store open writes the head file at seq 0, so a
crash inside the very first append is the usual lag of one record, not a
missing head file. A running trail re-reads the key versions every
KEY_REFRESH_S, so ``keys rotate`` from the CLI takes effect in the daemon.
Neighbours: record.audit.sealing (crypto),
record.audit.chain (hash, head file), record.audit.verify, record.keys,
record.store (the rows), cli.audit / cli.keys, the runtime scheduler (calls
:meth:`AuditTrail.rotate_if_due`).
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, Protocol

from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.record.audit.chain import ZERO_HASH, Head, HeadFile
from flink_gitops.record.audit.errors import AuditIntegrityError, AuditUnavailable
from flink_gitops.record.audit.event import FAILED, INTENT, SUCCEEDED, AuditEvent, AuditRecord, utc
from flink_gitops.record.audit.sealing import seal, unseal
from flink_gitops.record.audit.verify import AuditReader, head_problem
from flink_gitops.record.keys import KeyRing, KeySource, key_source_from_settings
from flink_gitops.record.store.errors import StoreError
from flink_gitops.record.store.records import AuditKeyRow, AuditRow
from flink_gitops.settings import Settings

ROTATE_ACTION = "keys.rotate"
#: how often a running trail re-reads the key versions (picks up rotations by other processes), seconds.
KEY_REFRESH_S = 60.0


class AuditStore(AuditReader, Protocol):
    """The store contract the trail needs (record.store.Store implements it)."""

    def append_audit(self, build: Callable[[int, bytes], AuditRow]) -> AuditRow: ...

    def audit_count(self) -> int: ...

    def put_audit_key(self, row: AuditKeyRow) -> None: ...

    def audit_keys(self) -> list[AuditKeyRow]: ...


def head_file_path(settings: Settings) -> Path:
    return settings.audit.head_file or settings.state_dir / "audit.head"


class ActionScope:
    """What the body of :meth:`AuditTrail.guard` may add to the outcome record."""

    def __init__(self, intent: AuditRecord) -> None:
        self.intent = intent
        self._updates: dict[str, Any] = {}
        self._outcome: str | None = None

    def set(self, **fields: Any) -> None:
        """Facts for the outcome record (job_id_after=..., savepoint=..., details=...)."""
        self._updates.update(fields)

    def outcome(self, value: str, **fields: Any) -> None:
        """Override the outcome written on normal exit (default ``succeeded``)."""
        self._outcome = value
        self._updates.update(fields)


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

    def _refresh_keys_if_stale(self) -> None:
        # A `keys rotate` by another process must take effect here too (the old key may be retired
        # because it leaked), so re-read the key versions now and then.
        if self._clock.monotonic() - self._keys_checked >= KEY_REFRESH_S:
            self._keys_checked = self._clock.monotonic()
            try:
                self._keys.refresh()
            except StoreError as exc:
                raise AuditUnavailable(f"cannot re-read the audit keys: {exc}") from exc

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

        Raises AuditIntegrityError when the head file shows truncation or a different chain, or is
        missing while the store holds records: appending then would paper over the evidence;
        AuditUnavailable when the head file of an empty store cannot be written.
        """
        keys = KeyRing.open(store, source, now=utc(clock.now()))
        head = HeadFile(head_file)
        check_head(store, head)
        if store.audit_head()[0] == 0:
            # Head file "seq 0" before the first append, so a crash inside that append leaves the
            # in-flight lag of one record, not a missing head file (which reads as tampering).
            try:
                head.advance(Head(0, ZERO_HASH))
            except OSError as exc:
                raise AuditUnavailable(
                    f"cannot write the audit head file {head.path}: {exc.strerror}"
                ) from exc
        head.remove_stale_temps()
        age = None if max_key_age_days is None else timedelta(days=max_key_age_days)
        return cls(store, keys, head, clock, actor=actor, max_key_age=age)

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
        now = utc(self._clock.now())
        self._refresh_keys_if_stale()
        key = self._keys.current()
        master = self._keys.master
        plaintext = event.to_plaintext(now)  # a non-JSON detail fails here, before the store is touched

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
            raise AuditUnavailable(f"audit record for {event.action!r} was not written: {exc}") from exc
        try:
            self._head_file.advance(Head(row.seq, row.hash))
        except OSError as exc:
            raise AuditUnavailable(
                f"audit record {row.seq} was written but the head file {self._head_file.path} could not be "
                f"updated: {exc.strerror}"
            ) from exc
        return AuditRecord(seq=row.seq, recorded_at=now, key_version=key.version, event=event)

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
            # Unlike every other AuditUnavailable, the action HAS been taken: say so, so no caller retries it.
            logger.error(
                "audit: {} was taken but its outcome was not recorded (intent seq {})",
                intent.action,
                opened.seq,
            )
            exc.add_note(
                f"the action itself was taken (intent seq {opened.seq}); only its outcome record is missing"
            )
            raise

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
        yield unseal(row, keys)


def check_head(store: AuditReader, head_file: HeadFile) -> None:
    """Raise AuditIntegrityError unless the head file fits the store (lagging is only logged)."""
    db_seq, db_hash = store.audit_head()
    head = head_file.read()
    if head is None:
        if db_seq > 0:
            raise AuditIntegrityError(
                f"audit head file {head_file.path} is missing but the store holds {db_seq} records; run "
                "`flink-gitops audit verify` and restore the head file before appending",
                seq=None,
            )
        return
    if head.seq < db_seq - 1:
        # Another host (PostgreSQL replicas) or several crashes; check that it is on our chain at least.
        if _stored_hash(store, head.seq) != head.hash:
            raise AuditIntegrityError(
                f"audit head file {head_file.path} (seq {head.seq}) is not on the stored chain", seq=head.seq
            )
        logger.warning("audit: head file is at seq {}, the store at {}", head.seq, db_seq)
        return
    before_last = _stored_hash(store, head.seq) if head.seq == db_seq - 1 else None
    problem = head_problem(head, Head(db_seq, db_hash), before_last)
    if problem is not None:
        raise AuditIntegrityError(f"audit head file {head_file.path}: {problem[1]}", seq=problem[0])


def _stored_hash(store: AuditReader, seq: int) -> bytes:
    """The hash of stored record ``seq`` (ZERO_HASH for 0, before the first record; b"" if absent)."""
    if seq == 0:
        return ZERO_HASH
    row = next(iter(store.audit_rows(after_seq=seq - 1, limit=1)), None)
    return row.hash if row is not None and row.seq == seq else b""


def _describe(exc: BaseException) -> str:
    text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= 500 else text[:497] + "..."
