"""The audit trail on the real store: sealing, tags, guard, fail closed, rotation, head checks.

Tests taking the ``store`` fixture run on SQLite and PostgreSQL (tests/fixtures/postgres.py).
"""

from __future__ import annotations

import dataclasses
import shutil
import sqlite3
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from loguru import logger

from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import (
    FAILED,
    INTENT,
    ROTATE_ACTION,
    SUCCEEDED,
    AuditEvent,
    AuditIntegrityError,
    AuditOutcomeMissing,
    AuditRecordInvalid,
    AuditTrail,
    AuditUnavailable,
    Head,
    HeadFile,
    verify_trail,
)
from flink_gitops.record.audit.trail import KEY_REFRESH_S
from flink_gitops.record.store import Store, StoreWriteFailed
from tests.record.audit_helpers import ACTOR, event, key_source, open_trail, readable, verify_both
from tests.record.fakes import FakeAuditStore


@pytest.fixture
def sqlite_store(tmp_path: Path, clock: FakeClock) -> Iterator[Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    try:
        yield store
    finally:
        store.close()


def test_records_round_trip_and_are_encrypted(store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(store, tmp_path, clock)
    ev = dataclasses.replace(
        event(1, job="orders-enricher"), savepoint="s3://bucket/sp-1", git_signer="alice"
    )
    written = trail.record(ev)
    assert written.seq == 1
    [back] = trail.records()
    assert back.event == ev
    assert back.recorded_at == clock.now()
    assert back.key_version == 1
    [row] = readable(store.audit_rows())
    for plain in (b"orders-enricher", b"s3://bucket/sp-1", b"alice", ev.git_commit.encode()):  # type: ignore[union-attr]
        assert plain not in row.ciphertext
    assert row.job_tag is not None
    assert len(row.job_tag) == 32
    assert trail.head_file.read() == Head(1, row.hash)


def test_filters_by_tags_and_time_in_the_store(store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(store, tmp_path, clock)
    start = clock.now()
    for i in range(9):
        trail.record(event(i, outcome=FAILED if i % 4 == 0 else SUCCEEDED))
        clock.advance(60)
    assert [r.seq for r in trail.records(job="job-1")] == [2, 5, 8]
    assert [r.seq for r in trail.records(outcome=FAILED)] == [1, 5, 9]
    assert [r.seq for r in trail.records(job="job-0", outcome=FAILED)] == [1]
    assert [r.seq for r in trail.records(action="job.deploy", limit=2)] == [1, 2]
    assert list(trail.records(action="job.delete")) == []
    window = list(trail.records(since=start + timedelta(minutes=2), until=start + timedelta(minutes=4)))
    assert [r.seq for r in window] == [3, 4]


def test_tags_are_stable_across_rotation(store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(store, tmp_path, clock)
    trail.record(event(0, job="a"))
    assert trail.rotate() == 2
    trail.record(event(1, job="a"))
    assert trail.rotate(reason="test") == 3
    trail.record(event(2, job="a"))
    found = list(trail.records(job="a"))
    assert [(r.seq, r.key_version) for r in found] == [(1, 1), (3, 2), (5, 3)]
    rotations = list(trail.records(action=ROTATE_ACTION))
    assert [r.key_version for r in rotations] == [2, 3]
    assert rotations[1].event.details == {"from_version": 2, "to_version": 3, "reason": "test"}
    assert rotations[1].event.actor == ACTOR
    assert all(r.ok for r in verify_both(store, trail))


def test_guard_writes_intent_then_outcome(sqlite_store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(sqlite_store, tmp_path, clock)
    taken: list[str] = []
    with trail.guard(
        AuditEvent(action="job.upgrade", actor=ACTOR, job="orders", job_id_before="a" * 32)
    ) as act:
        assert [r.event.outcome for r in trail.records()] == [INTENT]
        taken.append("upgrade")
        act.set(job_id_after="b" * 32, savepoint="file:///sp/1")
    intent, outcome = trail.records()
    assert taken == ["upgrade"]
    assert (intent.event.outcome, outcome.event.outcome) == (INTENT, SUCCEEDED)
    assert outcome.event.intent_seq == intent.seq
    assert outcome.event.job_id_after == "b" * 32
    assert outcome.event.savepoint == "file:///sp/1"
    assert intent.event.job_id_after is None


def test_guard_records_failure_and_reraises(sqlite_store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(sqlite_store, tmp_path, clock)
    with (
        pytest.raises(RuntimeError, match="stop-with-savepoint timed out"),
        trail.guard(AuditEvent(action="job.stop", actor=ACTOR, job="orders")),
    ):
        raise RuntimeError("stop-with-savepoint timed out")
    _, failed = trail.records()
    assert failed.event.outcome == FAILED
    assert failed.event.error == "RuntimeError: stop-with-savepoint timed out"
    assert failed.event.intent_seq == 1


def test_guard_custom_outcome(sqlite_store: Store, tmp_path: Path, clock: FakeClock) -> None:
    trail = open_trail(sqlite_store, tmp_path, clock)
    with trail.guard(AuditEvent(action="job.savepoint", actor=ACTOR, job="j")) as act:
        act.outcome("skipped", details={"why": "already running"})
    assert [r.event.outcome for r in trail.records()] == [INTENT, "skipped"]


# ----------------------------------------------------------------------------- fail closed


def test_action_not_taken_when_the_store_write_fails(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    store.fail_appends = True
    side_effects: list[str] = []
    with (
        pytest.raises(AuditUnavailable, match=r"job\.upgrade") as info,
        trail.guard(AuditEvent(action="job.upgrade", actor=ACTOR, job="orders")),
    ):
        side_effects.append("cancelled the job")  # must never run
    assert side_effects == []
    assert isinstance(info.value.__cause__, StoreWriteFailed)
    assert info.value.retryable
    assert store.rows == []


def test_action_not_taken_when_the_commit_fails(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    trail.record(event(0))
    store.fail_commits = True
    ran = False
    with pytest.raises(AuditUnavailable), trail.guard(event(1)):
        ran = True
    assert not ran
    assert trail.head_file.read() == Head(1, store.rows[0].hash)
    store.fail_commits = False
    trail.record(event(2))
    assert all(r.ok for r in verify_both(store, trail))


def test_open_fails_closed_when_the_first_head_file_cannot_be_written(
    tmp_path: Path, clock: FakeClock
) -> None:
    (tmp_path / "audit.head.lock").mkdir()  # in the lock file's place: opening it fails, even as root
    with pytest.raises(AuditUnavailable, match="cannot write the audit head file") as info:
        open_trail(FakeAuditStore(), tmp_path, clock)
    assert isinstance(info.value.__cause__, OSError)


def test_an_unrecorded_outcome_is_a_permanent_error_carrying_the_intent(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    taken: list[str] = []
    with pytest.raises(AuditOutcomeMissing) as info, trail.guard(event(1)):  # noqa: PT012
        taken.append("upgraded")
        store.fail_appends = True  # the database goes away while the action runs
    assert taken == ["upgraded"]
    assert [r.seq for r in store.rows] == [1]
    # the action was taken: a reconciler that trusts .retryable must not take it again
    assert info.value.retryable is False
    assert info.value.intent_seq == 1
    assert isinstance(info.value.__cause__, AuditUnavailable)


@pytest.mark.parametrize(
    "fields",
    [
        {"bogus": 1},
        {"action": "job.other"},
        {"outcome": "x"},
        {"intent_seq": 9},
        {"job": "b"},
        {"details": {"x": {1, 2}}},
    ],
    ids=["unknown", "action", "outcome", "intent_seq", "job", "not-json"],
)
def test_scope_set_refuses_bad_fields_before_the_side_effect(
    tmp_path: Path, clock: FakeClock, fields: dict[str, object]
) -> None:
    trail = open_trail(FakeAuditStore(), tmp_path, clock)
    taken: list[str] = []
    with pytest.raises(AuditRecordInvalid), trail.guard(event(1)) as scope:  # noqa: PT012
        scope.set(**fields)
        taken.append("upgraded")  # never reached: the refusal comes first
    assert taken == []


def test_record_raises_only_audit_errors_when_the_key_ring_fails(tmp_path: Path, clock: FakeClock) -> None:
    from flink_gitops.record.keys import WrongMasterKey

    class BrokenKeys:
        """Our boundary: a key ring whose master key no longer unwraps the data key."""

        def current(self) -> object:
            raise WrongMasterKey("the master key cannot unwrap data key v1")

        def refresh(self) -> None:
            return None

    trail = open_trail(FakeAuditStore(), tmp_path, clock)
    trail._keys = BrokenKeys()  # type: ignore[assignment]
    trail._refresh_keys_if_stale = lambda: None  # type: ignore[method-assign]
    with pytest.raises(AuditUnavailable) as info:
        trail.record(event(1))
    assert isinstance(info.value.__cause__, WrongMasterKey)


def test_action_not_taken_when_the_head_file_cannot_be_written(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = AuditTrail.open(
        store, key_source(tmp_path), head_file=tmp_path / "heads" / "audit.head", clock=clock, actor=ACTOR
    )
    shutil.rmtree(tmp_path / "heads")  # open wrote the seq-0 head there
    (tmp_path / "heads").write_text("")  # the head file's directory is gone (disk trouble, operator error)
    ran = False
    with pytest.raises(AuditUnavailable, match="head file"), trail.guard(event(1)):
        ran = True
    assert not ran


def test_failure_of_the_outcome_record_is_noted_on_the_original_error(
    tmp_path: Path, clock: FakeClock
) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    with pytest.raises(ValueError, match="boom") as info, trail.guard(event(1)):  # noqa: PT012
        store.fail_appends = True
        raise ValueError("boom")
    assert any("not audited" in note for note in info.value.__notes__)


def test_success_whose_outcome_record_fails_raises_outcome_missing(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    with pytest.raises(AuditOutcomeMissing), trail.guard(event(1)):
        store.fail_appends = True
    assert [r.seq for r in store.rows] == [1]


# ----------------------------------------------------------------------------- rotation


def test_rotate_if_due_follows_max_key_age(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock, max_key_age_days=30)
    assert trail.rotate_if_due(clock.now() + timedelta(days=29)) is None
    clock.advance(timedelta(days=31).total_seconds())
    assert trail.rotate_if_due(clock.now()) == 2
    assert trail.rotate_if_due(clock.now() + timedelta(days=1)) is None
    [rotation] = trail.records(action=ROTATE_ACTION)
    assert rotation.event.details["reason"] == "max_key_age"
    never = open_trail(FakeAuditStore(), tmp_path / "other", clock)
    assert never.rotate_if_due(clock.now() + timedelta(days=10_000)) is None


def test_rotation_by_another_process_counts_for_rotate_if_due(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    daemon = open_trail(store, tmp_path, clock, max_key_age_days=30)
    clock.advance(timedelta(days=31).total_seconds())
    cli = open_trail(store, tmp_path, clock)
    assert cli.rotate() == 2
    assert daemon.rotate_if_due(clock.now()) is None
    daemon.record(event(1))
    assert store.rows[-1].key_version == 2


def test_rotation_logs_no_key_material(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    lines: list[str] = []
    sink = logger.add(lines.append, level="DEBUG")
    try:
        trail.rotate()
    finally:
        logger.remove(sink)
    key_text = (tmp_path / "audit.key").read_text().splitlines()[-1]
    assert lines
    assert all(key_text not in line for line in lines)
    assert all(k.wrapped_key.hex() not in "".join(lines) for k in store.keys)


# ----------------------------------------------------------------------------- head file on open


def test_open_refuses_a_missing_head_file_when_records_exist(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    open_trail(store, tmp_path, clock).record(event(1))
    (tmp_path / "audit.head").unlink()
    with pytest.raises(AuditIntegrityError, match="missing"):
        open_trail(store, tmp_path, clock)


def test_open_refuses_a_head_file_ahead_of_the_store(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    for i in range(3):
        trail.record(event(i))
    del store.rows[2]
    store.head = (2, store.rows[1].hash)
    with pytest.raises(AuditIntegrityError, match="truncated") as info:
        open_trail(store, tmp_path, clock)
    assert info.value.seq == 3


def test_head_file_only_moves_forward(tmp_path: Path) -> None:
    head = HeadFile(tmp_path / "audit.head")
    head.advance(Head(5, b"5" * 32))
    head.advance(Head(4, b"4" * 32))  # a slower appender finishing late
    assert head.read() == Head(5, b"5" * 32)
    head.advance(Head(6, b"6" * 32))
    assert head.read() == Head(6, b"6" * 32)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["audit.head", "audit.head.lock"]


def test_head_file_creates_its_missing_directory_owner_only(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit" / "audit.head"
    head = HeadFile(path)
    head.advance(Head(1, b"1" * 32))
    assert head.read() == Head(1, b"1" * 32)
    assert sorted(p.name for p in path.parent.iterdir()) == ["audit.head", "audit.head.lock"]
    assert {p.stat().st_mode & 0o777 for p in path.parent.iterdir()} == {0o600}
    HeadFile(tmp_path / "elsewhere" / "audit.head").write(Head(2, b"2" * 32))
    assert HeadFile(tmp_path / "elsewhere" / "audit.head").read() == Head(2, b"2" * 32)


def test_corrupt_head_file_is_reported(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    trail.record(event(1))
    (tmp_path / "audit.head").write_text("{not json")
    report = verify_trail(store, HeadFile(tmp_path / "audit.head"))
    assert not report.ok
    assert report.first_break == 1
    assert "corrupt" in str(report.problems[0])


def test_a_rotation_by_another_process_is_used_within_a_minute(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    daemon = open_trail(store, tmp_path, clock)
    daemon.record(event(1))
    assert open_trail(store, tmp_path, clock).rotate() == 2  # `keys rotate` from the CLI
    daemon.record(event(2))
    clock.advance(KEY_REFRESH_S)
    daemon.record(event(3))
    assert [r.key_version for r in store.rows] == [1, 2, 1, 2]


def test_non_json_details_fail_before_the_store_is_touched(tmp_path: Path, clock: FakeClock) -> None:
    store = FakeAuditStore()
    trail = open_trail(store, tmp_path, clock)
    with pytest.raises(AuditRecordInvalid):
        trail.record(dataclasses.replace(event(1), details={"when": object()}))
    assert store.appends_attempted == 0


def test_action_not_taken_when_the_real_database_is_locked(tmp_path: Path, clock: FakeClock) -> None:
    db = tmp_path / "state.db"
    with Store.from_url(f"sqlite:///{db}", clock=clock, busy_timeout_s=0.2) as store:
        trail = open_trail(store, tmp_path, clock)
        trail.record(event(0))
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")  # another writer holds the write lock
        ran = False
        try:
            with pytest.raises(AuditUnavailable) as info, trail.guard(event(1)):
                ran = True
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert not ran
        assert isinstance(info.value.__cause__, StoreWriteFailed)
        assert store.audit_count() == 1
        trail.record(event(2))  # the lock is gone: appends work again and the chain is intact
        assert all(r.ok for r in verify_both(store, trail))
