"""Named leases and epoch fencing, on both backends: a deposed leader's late write leaves no trace."""

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
    DEFAULT_LEASE,
    FencedOut,
    JobLifecycle,
    JobUpdate,
    Lease,
    LeaseLost,
    NewSavepoint,
    OperationState,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    cluster_lease,
)
from tests.fixtures.postgres import StoreTarget


def test_acquire_renew_release(store: Store, clock: FakeClock) -> None:
    a = store.leases.acquire("a", ttl=30)
    assert a is not None
    assert (a.holder, a.epoch, a.expires_at) == ("a", 1, clock.now() + timedelta(seconds=30))
    assert store.leases.acquire("b", ttl=30) is None
    assert store.leases.current() == a

    clock.advance(20)
    renewed = store.leases.renew(a)
    assert renewed.epoch == 1
    assert renewed.expires_at == clock.now() + timedelta(seconds=30)
    assert renewed.acquired_at == a.acquired_at
    clock.advance(20)  # 40 s after acquiring, still inside the renewed term
    assert store.leases.acquire("b", ttl=30) is None
    again = store.leases.acquire("a", ttl=30)  # re-acquiring while held keeps the epoch
    assert again is not None
    assert again.epoch == 1

    assert store.leases.release(again) is True
    assert store.leases.current() is None
    b = store.leases.acquire("b", ttl=30)
    assert b is not None
    assert b.epoch == 2
    assert store.leases.release(again) is False  # a's lease is long gone


def test_takeover_after_expiry_bumps_epoch_and_old_holder_loses(store: Store, clock: FakeClock) -> None:
    a = store.leases.acquire("a", ttl=10)
    assert a is not None
    clock.advance(10)  # exactly at expiry: free
    b = store.leases.acquire("b", ttl=10)
    assert b is not None
    assert b.epoch == a.epoch + 1
    with pytest.raises(LeaseLost, match="taken over"):
        store.leases.renew(a)
    clock.advance(11)
    with pytest.raises(LeaseLost, match="expired"):
        store.leases.renew(b)


def test_deposed_leader_write_is_rejected_and_leaves_no_trace(store: Store, clock: FakeClock) -> None:
    a = store.leases.acquire("a", ttl=30)
    assert a is not None
    assert a.epoch == 1
    store.jobs.create("orders", "default", epoch=a.epoch)
    store.jobs.create("gone", "default", epoch=a.epoch)
    store.jobs.tombstone("gone", epoch=a.epoch)
    store.jobs.update("orders", JobUpdate(state=JobLifecycle.STABLE), epoch=a.epoch)
    op = store.operations.begin("orders", "upgrade", {"step": "stop"}, epoch=a.epoch)
    sp = store.snapshots.record(_sp("s3://sp/1"), epoch=a.epoch)
    clock.advance(31)
    b = store.leases.acquire("b", ttl=30)
    assert b is not None
    assert b.epoch == 2

    def state() -> tuple[object, ...]:
        return (
            store.jobs.all(),
            store.operations.history(),
            store.snapshots.history("orders", include_disposed=True),
        )

    before = state()
    late_writes: list[Callable[[], object]] = [
        lambda: store.jobs.update(
            "orders", JobUpdate(state=JobLifecycle.FAILED, flink_job_id="x" * 32), epoch=1
        ),
        lambda: store.jobs.create("new-job", "default", epoch=1),
        lambda: store.jobs.next_generation("orders", epoch=1),
        lambda: store.jobs.record_failure("orders", error="e", next_attempt_at=clock.now(), epoch=1),
        lambda: store.jobs.tombstone("orders", epoch=1),
        lambda: store.jobs.new_life("gone", "default", epoch=1),
        lambda: store.snapshots.record(_sp("s3://sp/2"), epoch=1),
        lambda: store.snapshots.mark_disposed(sp.id, epoch=1),
        lambda: store.operations.begin("payments", "deploy", {}, epoch=1),
        lambda: store.operations.advance(op.op_id, "stop-sent", {"trigger_id": "t"}, epoch=1),
        lambda: store.operations.finish(
            op.op_id,
            OperationState.SUCCEEDED,
            epoch=1,
            job=JobUpdate(state=JobLifecycle.STABLE),
            savepoint=_sp("s3://sp/3"),
        ),
    ]
    for write in late_writes:
        with pytest.raises(FencedOut, match="epoch 1"):
            write()
    with pytest.raises(FencedOut, match="epoch 1"), store.unit(epoch=1) as uow:
        uow.jobs.next_generation("orders")  # pragma: no cover - the fence refuses before this
    assert state() == before
    # The new leader writes fine.
    assert store.jobs.next_generation("orders", epoch=b.epoch).generation == 1


def _sp(path: str) -> NewSavepoint:
    return NewSavepoint("orders", path, SnapshotKind.SAVEPOINT, SnapshotOrigin.STOP)


def test_expired_lease_fences_even_its_own_epoch(store: Store, clock: FakeClock) -> None:
    a = store.leases.acquire("a", ttl=5)
    assert a is not None
    clock.advance(5)
    with pytest.raises(FencedOut, match="expired"):
        store.jobs.create("orders", "default", epoch=a.epoch)
    assert store.jobs.get("orders") is None


def test_reacquiring_ones_own_expired_lease_bumps_the_epoch(store: Store, clock: FakeClock) -> None:
    """A write fenced with the epoch from before the lapse must stay refused after the same holder
    takes the lease again (another leader may have acted in between on a clock that ran ahead)."""
    a = store.leases.acquire("a", ttl=5)
    assert a is not None
    store.jobs.create("orders", "default", epoch=a.epoch)
    clock.advance(6)
    again = store.leases.acquire("a", ttl=5)
    assert again is not None
    assert again.epoch == a.epoch + 1
    assert again.acquired_at == clock.now()  # a new tenure
    with pytest.raises(FencedOut, match=f"epoch {a.epoch} refused: the current epoch is {again.epoch}"):
        store.jobs.next_generation("orders", epoch=a.epoch)
    with pytest.raises(LeaseLost):
        store.leases.renew(a)
    assert store.jobs.next_generation("orders", epoch=again.epoch).generation == 1
    # Re-acquiring while still held keeps the tenure and its epoch.
    clock.advance(1)
    held = store.leases.acquire("a", ttl=5)
    assert held is not None
    assert (held.epoch, held.acquired_at) == (again.epoch, again.acquired_at)


def test_named_leases_are_independent_and_fence_their_own_writes(store: Store, clock: FakeClock) -> None:
    east, west = cluster_lease("east"), cluster_lease("west")
    assert store.leases.current(east) is None
    a = store.leases.acquire("node-a", ttl=30, name=east)
    b = store.leases.acquire("node-b", ttl=30, name=west)
    assert a is not None
    assert b is not None
    assert (a.name, a.epoch, b.name, b.epoch) == (east, 1, west, 1)
    assert store.leases.acquire("node-b", ttl=30, name=east) is None
    assert store.leases.current(east) == a
    assert store.leases.current() is None  # the default lease is another one
    assert [lease.name for lease in store.leases.held()] == [east, west]

    store.jobs.create("orders", "east", epoch=a.epoch, lease=east)
    with pytest.raises(FencedOut, match="'leader'"):
        store.jobs.next_generation("orders", epoch=a.epoch)  # the default lease was never taken
    with pytest.raises(FencedOut, match="nobody ever held"):
        store.jobs.next_generation("orders", epoch=1, lease=cluster_lease("north"))
    assert store.leases.current(cluster_lease("north")) is None
    store.leases.release(b)
    with pytest.raises(FencedOut, match="released"):
        store.jobs.next_generation("orders", epoch=b.epoch, lease=west)
    clock.advance(31)
    c = store.leases.acquire("node-c", ttl=30, name=east)
    assert c is not None
    assert c.epoch == 2
    with pytest.raises(FencedOut, match=f"lease '{east}' epoch 1"):
        store.jobs.next_generation("orders", epoch=a.epoch, lease=east)
    assert store.jobs.next_generation("orders", epoch=c.epoch, lease=east).generation == 1
    with pytest.raises(ValueError, match="lease name"):
        store.leases.acquire("x", ttl=1, name="")


def test_a_unit_spanning_two_clusters_is_fenced_by_both_leases(store: Store, clock: FakeClock) -> None:
    east, west = cluster_lease("east"), cluster_lease("west")
    a = store.leases.acquire("n", ttl=30, name=east)
    b = store.leases.acquire("n", ttl=10, name=west)
    assert a is not None
    assert b is not None
    store.jobs.create("orders", "east", epoch=a.epoch, lease=east)
    with store.unit(epoch=a.epoch, lease=east, also={west: b.epoch}) as uow:
        uow.jobs.update("orders", JobUpdate(cluster="west"))
    assert store.jobs.get("orders").cluster == "west"  # type: ignore[union-attr]
    clock.advance(10)  # the west lease lapses: a move back must not land
    with (
        pytest.raises(FencedOut, match="'cluster:west'"),
        store.unit(epoch=a.epoch, lease=east, also={west: b.epoch}),
    ):
        pass  # pragma: no cover - refused on entry
    with pytest.raises(ValueError, match="twice"), store.unit(epoch=a.epoch, lease=east, also={east: 99}):
        pass  # pragma: no cover - refused on entry
    assert store.jobs.get("orders").cluster == "west"  # type: ignore[union-attr]


def test_released_lease_fences_its_epoch(store: Store) -> None:
    a = store.leases.acquire("a", ttl=30)
    assert a is not None
    store.jobs.create("orders", "default", epoch=a.epoch)
    store.leases.release(a)
    with pytest.raises(FencedOut):
        store.jobs.next_generation("orders", epoch=a.epoch)


def test_no_lease_ever_taken_fences_epoch_zero(store: Store) -> None:
    with pytest.raises(FencedOut):
        store.operations.begin(None, "x", {}, epoch=0)


@pytest.mark.parametrize("name", [DEFAULT_LEASE, cluster_lease("east")])  # an existing row, a new one
def test_racing_candidates_elect_exactly_one(store_target: StoreTarget, clock: FakeClock, name: str) -> None:
    stores = [store_target.open(clock) for _ in range(2)]
    winners: list[Lease] = []
    barrier = threading.Barrier(6)

    def candidate(i: int) -> None:
        barrier.wait()
        got = stores[i % 2].leases.acquire(f"node-{i}", ttl=30, name=name)
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
        assert stores[0].leases.current(name) == winners[0]
    finally:
        for s in stores:
            s.close()


class LeaseMachine(RuleBasedStateMachine):
    """Model check: epochs only grow, change exactly when a free lease is taken, and only the current
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
        got = self.store.leases.acquire(who, ttl=ttl)
        if self._free() or self.model_holder == who:
            assert got is not None
            if self._free():
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
            self.held[who] = self.store.leases.renew(lease)
            self.model_expiry = self.held[who].expires_at
        else:
            with pytest.raises(LeaseLost):
                self.store.leases.renew(lease)

    @precondition(lambda self: bool(self.held))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        who = data.draw(st.sampled_from(sorted(self.held)))
        lease = self.held.pop(who)
        released = self.store.leases.release(lease)
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
                self.store.operations.begin(None, "probe", {}, epoch=epoch)
                wrote = True
            except FencedOut:
                wrote = False
            assert wrote == allowed


def test_lease_model(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: LeaseMachine(tmp_path / f"{uuid.uuid4().hex}.db"),  # type: ignore[arg-type]
        settings=settings(max_examples=25, stateful_step_count=20),
    )


def test_a_dead_holders_lease_can_be_taken_over_with_a_new_epoch(store: Store) -> None:
    dead = store.leases.acquire("host:1@ns", ttl=3600, name="cluster:a")
    assert dead is not None
    assert store.leases.acquire("host:2@ns", ttl=3600, name="cluster:a") is None
    # only from the holder named: a live third party keeps it
    assert store.leases.take_over("host:2@ns", 3600, name="cluster:a", from_holder="host:9@ns") is None
    taken = store.leases.take_over("host:2@ns", 3600, name="cluster:a", from_holder="host:1@ns")
    assert taken is not None
    assert taken.epoch == dead.epoch + 1
    with pytest.raises(LeaseLost):
        store.leases.renew(dead)
