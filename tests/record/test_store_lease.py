"""The leader lease and epoch fencing, on both backends: a deposed leader's late write leaves no trace."""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import (
    FencedOut,
    JobLifecycle,
    Lease,
    LeaseLost,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
)
from tests.fixtures.postgres import StoreTarget


def test_acquire_renew_release(store: Store, clock: FakeClock) -> None:
    a = store.acquire_lease("a", ttl=30)
    assert a is not None
    assert (a.holder, a.epoch, a.expires_at) == ("a", 1, clock.now() + timedelta(seconds=30))
    assert store.acquire_lease("b", ttl=30) is None
    assert store.current_lease() == a

    clock.advance(20)
    renewed = store.renew_lease(a)
    assert renewed.epoch == 1
    assert renewed.expires_at == clock.now() + timedelta(seconds=30)
    assert renewed.acquired_at == a.acquired_at
    clock.advance(20)  # 40 s after acquiring, still inside the renewed term
    assert store.acquire_lease("b", ttl=30) is None
    again = store.acquire_lease("a", ttl=30)  # re-acquiring while held keeps the epoch
    assert again is not None
    assert again.epoch == 1

    assert store.release_lease(again) is True
    assert store.current_lease() is None
    b = store.acquire_lease("b", ttl=30)
    assert b is not None
    assert b.epoch == 2
    assert store.release_lease(again) is False  # a's lease is long gone


def test_takeover_after_expiry_bumps_epoch_and_old_holder_loses(store: Store, clock: FakeClock) -> None:
    a = store.acquire_lease("a", ttl=10)
    assert a is not None
    clock.advance(10)  # exactly at expiry: free
    b = store.acquire_lease("b", ttl=10)
    assert b is not None
    assert b.epoch == a.epoch + 1
    with pytest.raises(LeaseLost, match="taken over"):
        store.renew_lease(a)
    clock.advance(11)
    with pytest.raises(LeaseLost, match="expired"):
        store.renew_lease(b)


def test_deposed_leader_write_is_rejected_and_leaves_no_trace(store: Store, clock: FakeClock) -> None:
    a = store.acquire_lease("a", ttl=30)
    assert a is not None
    assert a.epoch == 1
    store.upsert_job("default", "orders", epoch=a.epoch, state=JobLifecycle.STABLE)
    op = store.begin_operation("default", "orders", "upgrade", {"step": "stop"}, epoch=a.epoch)
    sp = store.record_savepoint(
        "default",
        "orders",
        "s3://sp/1",
        kind=SnapshotKind.SAVEPOINT,
        origin=SnapshotOrigin.STOP,
        epoch=a.epoch,
    )
    clock.advance(31)
    b = store.acquire_lease("b", ttl=30)
    assert b is not None
    assert b.epoch == 2
    before = (
        store.list_jobs(),
        store.open_operations(),
        store.savepoints("default", "orders", include_disposed=True),
    )

    late_writes: list[Callable[[], object]] = [
        lambda: store.upsert_job(
            "default", "orders", epoch=1, state=JobLifecycle.FAILED, flink_job_id="x" * 32
        ),
        lambda: store.upsert_job("default", "new-job", epoch=1, state=JobLifecycle.DEPLOYED),
        lambda: store.next_generation("default", "orders", epoch=1),
        lambda: store.record_failure("default", "orders", error="e", next_attempt_at=clock.now(), epoch=1),
        lambda: store.record_savepoint(
            "default",
            "orders",
            "s3://sp/2",
            kind=SnapshotKind.SAVEPOINT,
            origin=SnapshotOrigin.MANUAL,
            epoch=1,
        ),
        lambda: store.mark_savepoint_disposed(sp.id, epoch=1),
        lambda: store.begin_operation("default", "orders", "deploy", {}, epoch=1),
        lambda: store.finish_operation(op, OperationState.SUCCEEDED, epoch=1),
        lambda: store.delete_job("default", "orders", epoch=1),
    ]
    for write in late_writes:
        with pytest.raises(FencedOut, match="epoch 1"):
            write()
    after = (
        store.list_jobs(),
        store.open_operations(),
        store.savepoints("default", "orders", include_disposed=True),
    )
    assert after == before
    # The new leader writes fine.
    assert store.next_generation("default", "orders", epoch=b.epoch) == 1


def test_expired_lease_fences_even_its_own_epoch(store: Store, clock: FakeClock) -> None:
    a = store.acquire_lease("a", ttl=5)
    assert a is not None
    clock.advance(5)
    with pytest.raises(FencedOut, match="expired"):
        store.upsert_job("default", "orders", epoch=a.epoch, state=JobLifecycle.STABLE)
    assert store.get_job("default", "orders") is None


def test_released_lease_fences_its_epoch(store: Store) -> None:
    a = store.acquire_lease("a", ttl=30)
    assert a is not None
    store.release_lease(a)
    with pytest.raises(FencedOut):
        store.next_generation("default", "orders", epoch=a.epoch)


def test_no_lease_ever_taken_fences_epoch_zero(store: Store) -> None:
    with pytest.raises(FencedOut):
        store.begin_operation(None, None, "x", {}, epoch=0)


def test_racing_candidates_elect_exactly_one(store_target: StoreTarget, clock: FakeClock) -> None:
    stores = [store_target.open(clock) for _ in range(2)]
    winners: list[Lease] = []
    barrier = threading.Barrier(6)

    def candidate(i: int) -> None:
        barrier.wait()
        got = stores[i % 2].acquire_lease(f"node-{i}", ttl=30)
        if got is not None:
            winners.append(got)

    threads = [threading.Thread(target=candidate, args=(i,)) for i in range(6)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert len(winners) == 1
        assert winners[0].epoch == 1
        assert stores[0].current_lease() == winners[0]
    finally:
        for s in stores:
            s.close()


class LeaseMachine(RuleBasedStateMachine):
    """Model check: epochs only grow, change exactly when the holder changes, and only the current
    unexpired epoch can write. Each example gets a fresh SQLite store and FakeClock."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.store = Store.from_url(f"sqlite:///{path}", clock=self.clock)
        self.held: dict[str, Lease] = {}
        self.model_holder: str | None = None
        self.model_expiry = self.clock.now()
        self.model_epoch = 0

    def teardown(self) -> None:
        self.store.close()

    def _free(self) -> bool:
        return self.model_holder is None or self.model_expiry <= self.clock.now()

    @rule(who=st.sampled_from(["a", "b", "c"]), ttl=st.integers(1, 20))
    def acquire(self, who: str, ttl: int) -> None:
        got = self.store.acquire_lease(who, ttl=ttl)
        if self._free() or self.model_holder == who:
            assert got is not None
            if self.model_holder != who:
                self.model_epoch += 1
            self.model_holder, self.model_expiry = who, self.clock.now() + timedelta(seconds=ttl)
            assert got.epoch == self.model_epoch
            self.held[who] = got
        else:
            assert got is None

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def renew(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.held)))
        lease = self.held[who]
        valid = self.model_holder == who and lease.epoch == self.model_epoch and not self._free()
        if valid:
            self.held[who] = self.store.renew_lease(lease)
            self.model_expiry = self.held[who].expires_at
        else:
            with pytest.raises(LeaseLost):
                self.store.renew_lease(lease)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.held)))
        lease = self.held.pop(who)
        released = self.store.release_lease(lease)
        assert released == (self.model_holder == who and lease.epoch == self.model_epoch)
        if released:
            self.model_holder = None

    @rule(seconds=st.integers(0, 15))
    def tick(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @invariant()
    def only_the_current_epoch_writes(self) -> None:
        for epoch in {self.model_epoch - 1, self.model_epoch}:
            if epoch < 0:
                continue
            allowed = epoch == self.model_epoch and not self._free()
            try:
                self.store.begin_operation(None, None, "probe", {}, epoch=epoch)
                wrote = True
            except FencedOut:
                wrote = False
            assert wrote == allowed


def test_lease_model(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: LeaseMachine(tmp_path / f"{uuid.uuid4().hex}.db"),  # type: ignore[arg-type]
        settings=settings(max_examples=25, stateful_step_count=20),
    )
