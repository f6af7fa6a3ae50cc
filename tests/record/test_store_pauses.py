"""Pauses in the store (migration 0006), on both backends: idempotent pause, resume, the global
scope, hostile values, and two writers racing for one pause."""

from __future__ import annotations

import threading
from datetime import timedelta

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import GLOBAL_PAUSE, Store
from flink_gitops.record.store.pauses import MAX_REASON
from tests.fixtures.postgres import StoreTarget


def test_pause_is_idempotent_and_resume_removes_it(store: Store, clock: FakeClock) -> None:
    assert store.pauses.all() == []
    first, created = store.pauses.pause("orders", reason="incident 42", by="cli:alice")
    assert created
    assert (first.scope, first.job, first.reason, first.paused_by, first.paused_at) == (
        "orders",
        "orders",
        "incident 42",
        "cli:alice",
        clock.now(),
    )
    clock.advance(60)
    again, created = store.pauses.pause("orders", reason="other", by="cli:bob")
    assert not created
    assert again == first  # the pause in force is kept as it was
    assert store.pauses.get("orders") == first
    assert store.pauses.resume("orders") == first
    assert store.pauses.resume("orders") is None
    assert store.pauses.get("orders") is None


def test_the_global_pause_comes_first_and_has_no_job(store: Store) -> None:
    store.pauses.pause("payments", reason="", by="x")
    store.pauses.pause(GLOBAL_PAUSE, reason="freeze", by="api:operator@a")
    store.pauses.pause("orders", reason="", by="x")
    found = store.pauses.all()
    assert [p.scope for p in found] == ["*", "orders", "payments"]
    assert found[0].job is None
    store.pauses.resume(GLOBAL_PAUSE)
    assert [p.scope for p in store.pauses.all()] == ["orders", "payments"]


def test_hostile_values_are_cut_or_refused_before_anything_is_written(store: Store) -> None:
    record, _ = store.pauses.pause("orders", reason="é\x00" * 100_000, by="cli:x")
    assert len(record.reason) == MAX_REASON
    assert "\x00" not in record.reason
    assert store.pauses.get("orders") == record
    with pytest.raises(ValueError, match="NUL"):
        store.pauses.pause("a\x00b", reason="", by="x")
    with pytest.raises(ValueError, match="253"):
        store.pauses.pause("x" * 254, reason="", by="x")
    with pytest.raises(ValueError, match="needs a scope"):
        store.pauses.pause("", reason="", by="x")
    assert [p.scope for p in store.pauses.all()] == ["orders"]


def test_two_writers_pausing_at_once_make_one_pause(store_target: StoreTarget, clock: FakeClock) -> None:
    stores = [store_target.open(clock) for _ in range(4)]
    results: list[bool] = []
    barrier = threading.Barrier(len(stores))

    def pause(s: Store, i: int) -> None:
        barrier.wait()
        results.append(s.pauses.pause("orders", reason=f"r{i}", by=f"w{i}")[1])

    try:
        threads = [threading.Thread(target=pause, args=(s, i)) for i, s in enumerate(stores)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(timeout=30)
        assert sorted(results) == [False, False, False, True]
        (only,) = stores[0].pauses.all()
        assert only.paused_by == f"w{only.reason[1:]}"
    finally:
        for s in stores:
            s.close()


def test_pauses_survive_a_reopen(store_target: StoreTarget, clock: FakeClock) -> None:
    first = store_target.open(clock)
    try:
        first.pauses.pause("orders", reason="kept", by="x")
    finally:
        first.close()
    clock.advance(timedelta(days=1).total_seconds())
    second = store_target.open(clock)
    try:
        assert [(p.scope, p.reason) for p in second.pauses.all()] == [("orders", "kept")]
    finally:
        second.close()


@pytest.mark.parametrize("name", ["bad\udcffname", "a\x00b", "\ud800"])
def test_reading_by_a_name_no_row_could_hold_finds_nothing(store: Store, name: str) -> None:
    """A non-UTF-8 argv (surrogateescape) or a JSON escape is no job: None, not a driver error."""
    assert store.jobs.get(name) is None
    assert store.pauses.get(name) is None
