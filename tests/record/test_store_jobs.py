"""Jobs (identity, lives, generations, tombstones), savepoint history and cycles, on both backends."""

from __future__ import annotations

import re
import threading
import uuid
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from flink_gitops.clock import FakeClock
from flink_gitops.flink.ids import deterministic_job_id, job_id_for
from flink_gitops.record.store import (
    JobConflict,
    JobLifecycle,
    JobUpdate,
    NewSavepoint,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
    Store,
    UnknownJob,
    UnknownSavepoint,
)
from tests.fixtures.postgres import StoreTarget


@pytest.fixture
def epoch(store: Store) -> int:
    lease = store.leases.acquire("leader-a", ttl=3600)
    assert lease is not None
    return lease.epoch


SPEC = {"job": {"jarURI": "artifacts/a.jar", "parallelism": 4, "args": ["--x", "ü"]}, "state": "running"}
HEX32 = re.compile(r"[0-9a-f]{32}")


def _sp(name: str, path: str, **kw: object) -> NewSavepoint:
    return NewSavepoint(name, path, SnapshotKind.SAVEPOINT, SnapshotOrigin.STOP, **kw)  # type: ignore[arg-type]


def test_unknown_job_is_none_and_writes_to_it_are_refused(store: Store, epoch: int) -> None:
    assert store.jobs.get("nope") is None
    assert store.jobs.all() == []
    with pytest.raises(UnknownJob, match="'nope'"):
        store.jobs.update("nope", JobUpdate(state=JobLifecycle.STABLE), epoch=epoch)
    with pytest.raises(UnknownJob):
        store.jobs.next_generation("nope", epoch=epoch)
    with pytest.raises(UnknownJob):
        store.snapshots.record(_sp("nope", "file:///sp/1"), epoch=epoch)
    assert store.jobs.all() == []


def test_create_then_update_only_given_fields(store: Store, epoch: int, clock: FakeClock) -> None:
    created = store.jobs.create("orders", "east", epoch=epoch, file="jobs/orders.yaml")
    assert HEX32.fullmatch(created.uid)
    assert (created.cluster, created.state, created.generation, created.file) == (
        "east",
        JobLifecycle.CREATED,
        0,
        "jobs/orders.yaml",
    )
    assert created.created_at == created.updated_at == clock.now()
    with pytest.raises(JobConflict, match="already recorded"):
        store.jobs.create("orders", "west", epoch=epoch)

    spec = SpecRecord(SPEC, "sha256:aa", "c0ffee", jar_digest="sha256:jar1")
    clock.advance(5)
    updated = store.jobs.update(
        "orders",
        JobUpdate(state=JobLifecycle.DEPLOYED, last_reconciled=spec, flink_job_id="a" * 32),
        epoch=epoch,
    )
    assert updated.last_reconciled == spec
    assert updated.last_reconciled.jar_digest == "sha256:jar1"
    assert updated.last_stable is None
    assert updated.updated_at == clock.now()
    assert updated.created_at == created.created_at
    stable = store.jobs.update(
        "orders", JobUpdate(last_stable=spec, failed_hash="sha256:bad", savepoint="s3://sp/1"), epoch=epoch
    )
    assert stable.state is JobLifecycle.DEPLOYED  # kept
    assert (stable.last_stable, stable.failed_hash, stable.savepoint) == (spec, "sha256:bad", "s3://sp/1")
    assert store.jobs.get("orders") == stable
    cleared = store.jobs.update("orders", JobUpdate(flink_job_id=None, failed_hash=None), epoch=epoch)
    assert (cleared.flink_job_id, cleared.failed_hash, cleared.last_stable) == (None, None, spec)


def test_a_job_is_its_name_moving_cluster_keeps_row_stable_spec_and_history(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    spec = SpecRecord(SPEC, "sha256:aa", None, "sha256:jar")
    job = store.jobs.create("orders", "east", epoch=epoch)
    store.jobs.next_generation("orders", epoch=epoch)
    store.jobs.update("orders", JobUpdate(last_stable=spec, state=JobLifecycle.STABLE), epoch=epoch)
    first = store.snapshots.record(_sp("orders", "s3://east/sp-1"), epoch=epoch)
    assert (first.cluster, first.uid) == ("east", job.uid)

    clock.advance(60)
    moved = store.jobs.update("orders", JobUpdate(cluster="west"), epoch=epoch)
    assert (moved.uid, moved.generation, moved.last_stable, moved.savepoint) == (
        job.uid,
        1,
        spec,
        "s3://east/sp-1",
    )
    assert [j.name for j in store.jobs.all()] == ["orders"]  # one row, not one per cluster
    assert store.jobs.all("east") == []
    assert store.jobs.all("west") == [moved]
    second = store.snapshots.record(_sp("orders", "s3://west/sp-2"), epoch=epoch)
    assert second.cluster == "west"
    assert [s.path for s in store.snapshots.history("orders")] == ["s3://west/sp-2", "s3://east/sp-1"]


def test_tombstone_keeps_the_row_and_a_new_life_gets_a_new_uid_and_a_growing_generation(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    life1 = store.jobs.create("orders", "east", epoch=epoch)
    for _ in range(3):
        store.jobs.next_generation("orders", epoch=epoch)
    store.jobs.update(
        "orders",
        JobUpdate(
            state=JobLifecycle.STABLE,
            flink_job_id=job_id_for(life1.uid, 3),
            last_stable=SpecRecord(SPEC, "sha256:aa", None),
            failed_hash="sha256:bad",
        ),
        epoch=epoch,
    )
    store.snapshots.record(_sp("orders", "s3://sp/final"), epoch=epoch)
    old_id = job_id_for(life1.uid, 3)

    tomb = store.jobs.tombstone("orders", epoch=epoch)
    assert (tomb.state, tomb.flink_job_id, tomb.uid, tomb.generation) == (
        JobLifecycle.DELETED,
        None,
        life1.uid,
        3,
    )
    assert tomb.deleted
    assert tomb.last_stable is not None  # the row is a tombstone, not gone
    assert store.jobs.tombstone("orders", epoch=epoch) == tomb  # idempotent
    assert store.jobs.all(include_deleted=False) == []
    assert store.jobs.all() == [tomb]
    with pytest.raises(JobConflict, match="new_life"):
        store.jobs.update("orders", JobUpdate(state=JobLifecycle.DEPLOYED), epoch=epoch)
    with pytest.raises(JobConflict, match="new_life"):
        store.jobs.create("orders", "east", epoch=epoch)

    clock.advance(10)
    life2 = store.jobs.new_life("orders", "west", epoch=epoch, file="b.yaml")
    assert life2.uid != life1.uid
    assert HEX32.fullmatch(life2.uid)
    assert (life2.state, life2.cluster, life2.generation, life2.file) == (
        JobLifecycle.CREATED,
        "west",
        3,
        "b.yaml",
    )
    assert (life2.last_stable, life2.last_reconciled, life2.failed_hash, life2.savepoint) == (None,) * 4
    assert life2.created_at == clock.now()
    with pytest.raises(JobConflict, match="not deleted"):
        store.jobs.new_life("orders", "west", epoch=epoch)
    gen = store.jobs.next_generation("orders", epoch=epoch).generation
    assert gen == 4  # never reset
    assert job_id_for(life2.uid, gen) != old_id
    # The first life's savepoints stay findable, under its uid.
    assert [s.path for s in store.snapshots.history("orders", uid=life1.uid)] == ["s3://sp/final"]
    assert store.snapshots.history("orders", uid=life2.uid) == []


def test_job_id_for_is_the_deterministic_id_of_uid_and_generation() -> None:
    uid = "0" * 32
    assert job_id_for(uid, 7) == deterministic_job_id(uid, "7")
    assert HEX32.fullmatch(job_id_for(uid, 0))
    assert job_id_for(uid, 1) != job_id_for(uid, 2) != job_id_for("1" * 32, 2)
    with pytest.raises(ValueError, match="generation"):
        job_id_for(uid, -1)


def test_failures_count_up_and_reset(store: Store, epoch: int, clock: FakeClock) -> None:
    store.jobs.create("orders", "default", epoch=epoch)
    later = clock.now() + timedelta(seconds=30)
    store.jobs.record_failure("orders", error="stop failed", next_attempt_at=later, epoch=epoch)
    job = store.jobs.record_failure("orders", error="stop failed again", next_attempt_at=later, epoch=epoch)
    assert (job.attempts, job.last_error, job.next_attempt_at) == (2, "stop failed again", later)
    assert job.state is JobLifecycle.CREATED
    reset = store.jobs.update(
        "orders", JobUpdate(attempts=0, next_attempt_at=None, last_error=None), epoch=epoch
    )
    assert (reset.attempts, reset.next_attempt_at, reset.last_error) == (0, None, None)


def test_generation_only_grows(store: Store, epoch: int) -> None:
    store.jobs.create("orders", "default", epoch=epoch)
    store.jobs.create("other", "default", epoch=epoch)
    assert store.jobs.next_generation("orders", epoch=epoch).generation == 1
    assert store.jobs.next_generation("orders", epoch=epoch).generation == 2
    store.jobs.update("orders", JobUpdate(state=JobLifecycle.UPGRADING), epoch=epoch)
    assert store.jobs.next_generation("orders", epoch=epoch).generation == 3
    assert store.jobs.next_generation("other", epoch=epoch).generation == 1
    # Reserving two at once (the next job's and its rollback's): 4 and 5.
    assert store.jobs.next_generation("orders", epoch=epoch, by=2).generation == 5
    for by in (0, -1):
        with pytest.raises(ValueError, match="only grow"):
            store.jobs.next_generation("orders", epoch=epoch, by=by)
    assert store.jobs.get("orders").generation == 5  # type: ignore[union-attr]


def test_savepoint_history_newest_first_idempotent_current_and_disposable(
    store: Store, epoch: int, clock: FakeClock
) -> None:
    store.jobs.create("orders", "default", epoch=epoch)
    store.jobs.create("other", "default", epoch=epoch)
    first = store.snapshots.record(
        NewSavepoint(
            "orders", "s3://sp/savepoint-1", SnapshotKind.SAVEPOINT, SnapshotOrigin.UPGRADE, "a" * 32
        ),
        epoch=epoch,
    )
    assert store.jobs.get("orders").savepoint == first.path  # type: ignore[union-attr]
    clock.advance(60)
    chk = store.snapshots.record(
        NewSavepoint(
            "orders", "s3://chk/chk-7", SnapshotKind.CHECKPOINT, SnapshotOrigin.RETAINED, make_current=False
        ),
        epoch=epoch,
    )
    assert store.jobs.get("orders").savepoint == first.path  # type: ignore[union-attr]
    clock.advance(60)
    second = store.snapshots.record(
        NewSavepoint("orders", "s3://sp/savepoint-2", SnapshotKind.SAVEPOINT, SnapshotOrigin.MANUAL),
        epoch=epoch,
    )
    again = store.snapshots.record(
        NewSavepoint(
            "orders", "s3://sp/savepoint-1", SnapshotKind.SAVEPOINT, SnapshotOrigin.FINAL, make_current=False
        ),
        epoch=epoch,
    )
    assert again == first  # recording twice is harmless and changes nothing
    assert first.created_at == datetime(2026, 1, 1, tzinfo=UTC)
    assert first.flink_job_id == "a" * 32
    assert [s.path for s in store.snapshots.history("orders")] == [second.path, chk.path, first.path]
    assert store.snapshots.history("orders", kind=SnapshotKind.CHECKPOINT) == [chk]
    assert store.snapshots.latest("orders", kind=SnapshotKind.SAVEPOINT) == second
    assert store.snapshots.history("other") == []
    assert store.jobs.get("orders").savepoint == second.path  # type: ignore[union-attr]

    disposed = store.snapshots.mark_disposed(second.id, epoch=epoch)
    assert (disposed.disposed, disposed.disposed_at) == (True, clock.now())
    assert store.jobs.get("orders").savepoint is None  # type: ignore[union-attr]  # never restore a disposed one
    clock.advance(1)
    assert store.snapshots.mark_disposed(second.id, epoch=epoch) == disposed  # idempotent
    assert store.snapshots.latest("orders", kind=SnapshotKind.SAVEPOINT) == first
    assert second.id in {s.id for s in store.snapshots.history("orders", include_disposed=True)}
    with pytest.raises(UnknownSavepoint):
        store.snapshots.mark_disposed(10_000, epoch=epoch)


def test_cycles_newest_first(store: Store, clock: FakeClock) -> None:
    t0 = clock.now()
    for i in range(3):
        store.cycles.record(
            started_at=t0 + timedelta(seconds=30 * i),
            finished_at=t0 + timedelta(seconds=30 * i + 2),
            revision=f"rev{i}",
            counts={"jobs": 5, "changed": i},
            outcome="ok" if i != 1 else "partial",
            detail=None if i != 1 else "cluster b unreachable",
        )
    got = store.cycles.recent(limit=2)
    assert [c.revision for c in got] == ["rev2", "rev1"]
    assert got[1].counts == {"jobs": 5, "changed": 1}
    assert (got[1].outcome, got[1].detail) == ("partial", "cluster b unreachable")
    assert got[0].finished_at - got[0].started_at == timedelta(seconds=2)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**53), 2**53) | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


def test_bad_inputs_are_refused_before_writing(store: Store, epoch: int) -> None:
    store.jobs.create("orders", "default", epoch=epoch)
    before = store.jobs.get("orders")
    with pytest.raises(ValueError, match="commit"):
        store.jobs.update("orders", JobUpdate(last_reconciled=SpecRecord({}, "h", "c\x00")), epoch=epoch)
    with pytest.raises(ValueError, match="jar_digest"):
        store.jobs.update("orders", JobUpdate(last_stable=SpecRecord({}, "h", None, "\x00")), epoch=epoch)
    with pytest.raises(ValueError, match="cluster"):
        store.jobs.update("orders", JobUpdate(cluster=""), epoch=epoch)
    with pytest.raises(ValueError, match="path"):
        store.snapshots.record(_sp("orders", "s3://\x00"), epoch=epoch)
    with pytest.raises(ValueError, match="name"):
        store.jobs.create("bad\x00name", "default", epoch=epoch)
    with pytest.raises(ValueError, match="commit is not valid Unicode"):
        store.jobs.update("orders", JobUpdate(last_reconciled=SpecRecord({}, "h", "\ud800")), epoch=epoch)
    naive = datetime(2026, 1, 1)
    with pytest.raises(ValueError, match="timezone-aware"):
        store.jobs.record_failure("orders", error="e", next_attempt_at=naive, epoch=epoch)
    assert store.jobs.get("orders") == before
    assert store.snapshots.history("orders") == []
    job = store.jobs.update("orders", JobUpdate(last_error="flink said \x00 oops \udc80"), epoch=epoch)
    assert job.last_error == "flink said \ufffd oops \ufffd"


def test_specs_and_intents_round_trip_any_json(store: Store, epoch: int) -> None:
    store.jobs.create("prop", "default", epoch=epoch)

    @settings(max_examples=40)
    @given(
        spec=st.dictionaries(st.text(max_size=8), json_values, max_size=5),
        commit=st.none()
        | st.text(st.characters(exclude_characters="\x00", exclude_categories=["Cs"]), max_size=40),
    )
    def check(spec: dict[str, object], commit: str | None) -> None:
        record = SpecRecord(spec, "sha256:" + "0" * 64, commit, "sha256:" + "1" * 64)
        job = store.jobs.update("prop", JobUpdate(last_reconciled=record), epoch=epoch)
        assert job.last_reconciled == record
        assert store.jobs.get("prop").last_reconciled == record  # type: ignore[union-attr]
        op = store.operations.begin(None, "deploy", spec, epoch=epoch)
        assert store.operations.get(op.op_id).intent == spec  # type: ignore[union-attr]

    check()


def test_racing_creates_of_one_name_record_one_job(store_target: StoreTarget, clock: FakeClock) -> None:
    stores = [store_target.open(clock) for _ in range(2)]
    try:
        lease = stores[0].leases.acquire("a", ttl=3600)
        assert lease is not None
        barrier = threading.Barrier(6)
        results: list[object] = []

        def create(i: int) -> None:
            barrier.wait()
            try:
                results.append(stores[i % 2].jobs.create("orders", f"c{i}", epoch=lease.epoch))
            except JobConflict as exc:
                results.append(exc)

        threads = [threading.Thread(target=create, args=(i,)) for i in range(6)]
        for th in threads:
            th.start()
        for th in threads:
            th.join()
        created = [r for r in results if not isinstance(r, JobConflict)]
        assert len(results) == 6
        assert len(created) == 1
        assert stores[1].jobs.all() == created
    finally:
        for s in stores:
            s.close()


class LivesMachine(RuleBasedStateMachine):
    """Model check over any sequence of lives, moves and deploys of one job: generations only grow,
    a uid changes exactly at a new life, and no derived Flink job id is ever handed out twice."""

    def __init__(self, path: Path) -> None:
        super().__init__()
        self.store = Store.from_url(f"sqlite:///{path}", clock=FakeClock())
        lease = self.store.leases.acquire("a", ttl=3600)
        assert lease is not None
        self.epoch = lease.epoch
        self.job = self.store.jobs.create("orders", "east", epoch=self.epoch)
        self.ids: set[str] = set()
        self.uids = {self.job.uid}

    def teardown(self) -> None:
        self.store.close()

    @precondition(lambda self: not self.job.deleted)
    @rule()
    def deploy(self) -> None:
        job = self.store.jobs.next_generation("orders", epoch=self.epoch)
        assert (job.uid, job.generation) == (self.job.uid, self.job.generation + 1)
        job_id = job_id_for(job.uid, job.generation)
        assert job_id not in self.ids
        self.ids.add(job_id)
        self.job = self.store.jobs.update("orders", JobUpdate(flink_job_id=job_id), epoch=self.epoch)

    @precondition(lambda self: not self.job.deleted)
    @rule(cluster=st.sampled_from(["east", "west", "north"]))
    def move(self, cluster: str) -> None:
        job = self.store.jobs.update("orders", JobUpdate(cluster=cluster), epoch=self.epoch)
        assert (job.uid, job.generation, job.cluster) == (self.job.uid, self.job.generation, cluster)
        self.job = job

    @rule()
    def tombstone(self) -> None:
        job = self.store.jobs.tombstone("orders", epoch=self.epoch)
        assert (job.uid, job.generation, job.flink_job_id) == (self.job.uid, self.job.generation, None)
        self.job = job

    @precondition(lambda self: self.job.deleted)
    @rule(cluster=st.sampled_from(["east", "west"]))
    def new_life(self, cluster: str) -> None:
        job = self.store.jobs.new_life("orders", cluster, epoch=self.epoch)
        assert job.uid not in self.uids
        assert job.generation == self.job.generation
        self.uids.add(job.uid)
        self.job = job

    @invariant()
    def one_row_as_recorded(self) -> None:
        assert self.store.jobs.all() == [self.job]


def test_lives_model(tmp_path: Path) -> None:
    run_state_machine_as_test(
        lambda: LivesMachine(tmp_path / f"{uuid.uuid4().hex}.db"),  # type: ignore[arg-type]
        settings=settings(max_examples=12, stateful_step_count=20),
    )
