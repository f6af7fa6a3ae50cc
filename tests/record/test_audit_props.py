"""Property tests: any appended sequence verifies; any single changed byte is caught at its seq.

Runs on FakeAuditStore (in memory) so hypothesis can try many trails; the
real-store corpus is in test_audit_tamper.py.
"""

from __future__ import annotations

import dataclasses
import tempfile
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import (
    AuditDecryptError,
    AuditEvent,
    AuditTrail,
    Head,
    HeadFile,
    TrustedKeys,
    row_hash,
    verify_trail,
)
from flink_gitops.record.audit.sealing import unseal
from flink_gitops.record.keys import KeyRing
from flink_gitops.record.store import ZERO_HASH
from tests.record.audit_helpers import key_source
from tests.record.fakes import FakeAuditStore

_text = st.text(st.characters(codec="utf-8", exclude_categories=["Cs"]), max_size=40)
_opt = st.none() | _text

events = st.builds(
    AuditEvent,
    action=st.sampled_from(["job.deploy", "job.upgrade", "job.stop", "job.savepoint", "ünïcode.äction"])
    | _text,
    actor=st.sampled_from(["daemon:host-1", "api:alice", "cli:root"]),
    job=_opt,
    cluster=_opt,
    git_commit=_opt,
    spec_hash=_opt,
    savepoint=_opt,
    outcome=st.none() | st.sampled_from(["intent", "succeeded", "failed"]),
    error=_opt,
    intent_seq=st.none() | st.integers(min_value=1, max_value=2**40),
    details=st.dictionaries(_text, st.integers() | _text | st.booleans() | st.none(), max_size=3),
)

# (events, rotate before event i?, seconds between events)
trails = st.lists(
    st.tuples(events, st.booleans(), st.integers(min_value=0, max_value=10**6)), min_size=1, max_size=8
)

ROTATOR = "test:rotator"  # the trail's own actor (rotation records); generated events never use it
BYTE_FIELDS = ["job_tag", "action_tag", "outcome_tag", "nonce", "ciphertext", "prev_hash", "hash"]


def _build(directory: Path, steps: list[tuple[AuditEvent, bool, int]]) -> tuple[FakeAuditStore, AuditTrail]:
    store, clock = FakeAuditStore(), FakeClock()
    trail = AuditTrail.open(
        store, key_source(directory), head_file=directory / "audit.head", clock=clock, actor=ROTATOR
    )
    for ev, rotate, gap in steps:
        if rotate:
            trail.rotate()
        clock.advance(gap)
        trail.record(ev)
    return store, trail


@settings(max_examples=40)
@given(steps=trails)
def test_any_appended_sequence_verifies_and_decrypts_back(steps: list[tuple[AuditEvent, bool, int]]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, trail = _build(Path(tmp), steps)
        for keys in (None, trail.keys):
            report = verify_trail(store, HeadFile(Path(tmp) / "audit.head"), keys)
            assert report.ok, report.problems
            assert report.records == len(store.rows)
        assert [r.event for r in trail.records() if r.event.actor != ROTATOR] == [ev for ev, _, _ in steps]
        assert len(list(trail.records(action="keys.rotate"))) == sum(rotate for _, rotate, _ in steps)


@settings(max_examples=60)
@given(steps=trails, data=st.data())
def test_any_single_changed_byte_is_caught_at_its_seq(
    steps: list[tuple[AuditEvent, bool, int]], data: st.DataObject
) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, trail = _build(Path(tmp), steps)
        index = data.draw(st.integers(min_value=0, max_value=len(store.rows) - 1), label="row")
        row = store.rows[index]
        candidates = [f for f in BYTE_FIELDS if getattr(row, f) is not None] + ["recorded_at", "key_version"]
        field = data.draw(st.sampled_from(candidates), label="field")
        if field == "recorded_at":
            tampered = dataclasses.replace(row, recorded_at=row.recorded_at + timedelta(microseconds=1))
        elif field == "key_version":
            tampered = dataclasses.replace(row, key_version=row.key_version ^ 1)
        else:
            value = bytearray(getattr(row, field))
            pos = data.draw(st.integers(min_value=0, max_value=len(value) - 1), label="byte")
            value[pos] ^= data.draw(st.integers(min_value=1, max_value=255), label="xor")
            tampered = dataclasses.replace(row, **{field: bytes(value)})  # type: ignore[arg-type]
        store.rows[index] = tampered
        head = HeadFile(Path(tmp) / "audit.head")
        for keys in (None, trail.keys):
            report = verify_trail(store, head, keys)
            assert not report.ok
            assert report.first_break == row.seq, report.problems


@settings(max_examples=20)
@given(ev=events)
def test_a_sealed_record_opens_only_at_its_own_place(ev: AuditEvent) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        store, trail = _build(Path(tmp), [(ev, False, 0), (ev, False, 0)])
        first, second = store.rows
        ring: KeyRing = trail.keys
        assert unseal(first, ring).event == ev
        moved = dataclasses.replace(second, nonce=first.nonce, ciphertext=first.ciphertext)
        with pytest.raises(AuditDecryptError, match=f"record {second.seq} does not decrypt"):
            unseal(moved, ring)


@settings(max_examples=60)
@given(steps=trails, data=st.data())
def test_any_change_rehashed_by_the_attacker_is_caught_at_its_seq_with_only_the_public_key(
    steps: list[tuple[AuditEvent, bool, int]], data: st.DataObject
) -> None:
    # The attacker edits one record, recomputes every hash after it, moves the store's head row
    # and rewrites the head file: the unsigned chain then adds up; the signatures do not.
    with tempfile.TemporaryDirectory() as tmp:
        store, trail = _build(Path(tmp), steps)
        index = data.draw(st.integers(min_value=0, max_value=len(store.rows) - 1), label="row")
        row = store.rows[index]
        value = bytearray(row.ciphertext)
        value[data.draw(st.integers(min_value=0, max_value=len(value) - 1), label="byte")] ^= 1
        store.rows[index] = dataclasses.replace(row, ciphertext=bytes(value))
        prev = store.rows[index - 1].hash if index else ZERO_HASH
        for i in range(index, len(store.rows)):
            linked = dataclasses.replace(store.rows[i], prev_hash=prev)
            store.rows[i] = dataclasses.replace(linked, hash=row_hash(linked))
            prev = store.rows[i].hash
        store.head = (store.rows[-1].seq, prev)
        head = HeadFile(Path(tmp) / "audit.head")
        head.write(Head(store.rows[-1].seq, prev, trail.keys.current().version, b"\0" * 64))
        assert verify_trail(store, head).ok  # the unsigned check cannot see it ...
        trusted = TrustedKeys(trail.keys.public_keys(), origin="test")
        for report in (
            verify_trail(store, head, trusted=trusted, key_rows=store.audit_keys()),
            verify_trail(store, head, trail.keys),
        ):
            assert not report.ok
            assert report.first_break == row.seq, report.problems
            assert report.signatures_checked <= 2 * len(store.rows).bit_length() + 2  # a binary search
