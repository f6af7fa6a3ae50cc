"""Two replicas on one real PostgreSQL: per-cluster leadership of the daemon (``Reconciler.lead_all``),
the ``store.max_clusters_per_instance`` split, and a deposed leader that wakes up late and cannot act
(its fenced writes refused, its cycle sends Flink nothing). The clusters are FakeCluster (our port);
the kill -9 takeover against real Flink is tests/e2e/test_ha.py."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import cast

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.cycle import Cluster, Reconciler, Revision
from flink_gitops.execute.journal import StoreJournal, spec_record
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.store import JobUpdate, Store, cluster_lease
from flink_gitops.record.store.errors import FencedOut
from flink_gitops.settings import ClusterConfig, Settings
from flink_gitops.specs.model import FlinkJob
from tests.execute.test_retention import JOB, FakeCluster, desired, flink_job
from tests.fixtures.postgres import StoreTarget
from tests.record.audit_helpers import open_trail

pytestmark = pytest.mark.postgres

TTL = 30.0


@dataclass
class Replica:
    store: Store
    rec: Reconciler
    flink: dict[str, FakeCluster]


@dataclass
class Pair:
    clock: FakeClock
    a: Replica
    b: Replica
    root: Path

    def replicas(self) -> tuple[Replica, Replica]:
        return self.a, self.b


def _replica(target: StoreTarget, root: Path, clock: FakeClock, instance: str, cap: int | None) -> Replica:
    store = target.open(clock)
    audit = open_trail(store, root, clock)
    flink = {name: FakeCluster(root / instance / name) for name in ("eu", "us")}
    settings = Settings(state_dir=root / instance, clusters={"eu": ClusterConfig(), "us": ClusterConfig()})
    store_cfg = settings.store.model_copy(update={"lease_ttl_s": TTL, "max_clusters_per_instance": cap})
    settings = settings.model_copy(update={"store": store_cfg})
    clients = cast(dict[str, Cluster], flink)
    rec = Reconciler(settings, store, audit, clients, clock, actor=instance, instance=instance)
    return Replica(store, rec, flink)


MakePair = Callable[..., Pair]


@pytest.fixture
def make_pair(postgres_database: StoreTarget, tmp_path: Path, clock: FakeClock) -> Iterator[MakePair]:
    made: list[Pair] = []

    def make(cap: int | None = None) -> Pair:
        pair = Pair(
            clock,
            _replica(postgres_database, tmp_path, clock, "r1", cap),
            _replica(postgres_database, tmp_path, clock, "r2", cap),
            tmp_path,
        )
        made.append(pair)
        return pair

    yield make
    for pair in made:
        for r in pair.replicas():
            r.rec.release()
            r.store.close()


def holders(store: Store) -> dict[str, str]:
    return {lease.name: lease.holder.partition(":")[0] for lease in store.leases.held()}


def test_by_default_one_replica_leads_every_cluster_and_the_other_only_observes(make_pair: MakePair) -> None:
    pair = make_pair()
    a, b = pair.replicas()
    assert a.rec.lead_all() == {}
    refused = b.rec.lead_all()
    assert sorted(refused) == ["eu", "us"]
    assert all("led by r1:" in why for why in refused.values())
    assert b.rec.leases == {}
    assert a.rec.leadership() == {"eu": True, "us": True}
    assert b.rec.leadership() == {"eu": False, "us": False}
    # a leader keeps its clusters with each pass, also long after the first (no actions needed)
    for _ in range(5):
        pair.clock.advance(TTL / 2)
        assert a.rec.lead_all() == {}
        assert sorted(b.rec.lead_all()) == ["eu", "us"]
    assert holders(a.store) == {cluster_lease("eu"): "r1", cluster_lease("us"): "r1"}
    # a clean stop releases them: the other replica takes both at once, no TTL to wait out
    a.rec.release()
    assert b.rec.lead_all() == {}
    assert holders(a.store) == {cluster_lease("eu"): "r2", cluster_lease("us"): "r2"}


def test_with_a_cap_of_one_two_replicas_split_two_clusters_and_a_survivor_takes_both(
    make_pair: MakePair,
) -> None:
    pair = make_pair(cap=1)
    a, b = pair.replicas()
    assert sorted(a.rec.lead_all()) == ["us"]  # within its cap: eu (sorted first) only
    assert sorted(b.rec.lead_all()) == ["eu"]  # eu is r1's; us is free and b has room
    assert holders(a.store) == {cluster_lease("eu"): "r1", cluster_lease("us"): "r2"}
    for _ in range(4):  # steady state: nobody takes the other's cluster
        pair.clock.advance(TTL / 3)
        assert sorted(a.rec.lead_all()) == ["us"]
        assert sorted(b.rec.lead_all()) == ["eu"]
    # r2 dies (stops renewing): once its lease lapses, r1 waits one more TTL for a replica with room,
    # then takes us beyond its cap (a cluster never stays unled)
    pair.clock.advance(TTL + 1)
    refused = a.rec.lead_all()
    assert "waits for a replica with room" in refused["us"]
    pair.clock.advance(TTL / 2)
    assert sorted(a.rec.lead_all()) == ["us"]
    pair.clock.advance(TTL / 2)
    assert a.rec.lead_all() == {}
    assert holders(a.store) == {cluster_lease("eu"): "r1", cluster_lease("us"): "r1"}


def _changed(job: FlinkJob) -> FlinkJob:
    body = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    body["spec"]["job"]["entryClass"] = "com.example.Other"
    body["spec"]["cluster"] = "eu"
    return FlinkJob.model_validate(body)


def test_a_deposed_leader_that_wakes_up_late_cannot_act(make_pair: MakePair) -> None:
    pair = make_pair()
    a, b = pair.replicas()
    assert a.rec.lead_all() == {}
    old = a.rec.leases["eu"]
    job = flink_job()
    base = job.model_dump(mode="json", by_alias=True, exclude_none=True)
    base["spec"]["cluster"] = "eu"
    running = FlinkJob.model_validate(base)
    record = spec_record(RunSpec.of(desired(running).valid_jobs()["orders"], "c" * 40).to_record())
    a.flink["eu"].add_running(JOB)
    with a.store.unit(epoch=old.epoch, lease=old.name) as uow:
        uow.jobs.create("orders", "eu", file="jobs/orders.yaml")
        uow.jobs.update(
            "orders",
            JobUpdate(
                state=JobLifecycle.STABLE, flink_job_id=JOB, last_reconciled=record, last_stable=record
            ),
        )
        op = uow.operations.begin("orders", "upgrade", {"cluster": "eu"}, cluster="eu")
    before = a.store.jobs.get("orders")
    # r1 is paused (a GC pause, a frozen VM) past its lease; r2 takes the cluster with a new epoch
    pair.clock.advance(TTL + 1)
    assert b.rec.lead_all() == {}
    assert b.rec.leases["eu"].epoch > old.epoch
    # r1 wakes up and carries on as if it still led: every fenced write is refused
    with pytest.raises(FencedOut), a.store.unit(epoch=old.epoch, lease=old.name) as uow:
        uow.jobs.update("orders", JobUpdate(last_error="written by a deposed leader"))
    with pytest.raises(FencedOut):
        StoreJournal(a.store, {"eu": old.epoch}).advance(op.op_id, "stopping", {"trigger_id": "f" * 32})
    # its wait hook (asked before every Flink call of an operation) says stop
    a.rec._last_renew["eu"] = float("-inf")  # due for renewal
    assert a.rec._lost(("eu",))() is True
    assert "eu" not in a.rec.leases
    # its next cycle plans the upgrade but sends Flink nothing: the cluster is led by r2
    a.rec.leases["eu"] = old
    result = a.rec.cycle(Revision(desired(_changed(job)), "d" * 40))
    assert [x.kind.value for x in result.plan.actions], "an action was planned"
    (res,) = result.results.values()
    assert not res.ok
    assert "led by r2:" in res.message
    assert list(result.led_elsewhere) == ["orders"]
    assert "1 led elsewhere" in result.summary()
    assert "0 failed" in result.summary()
    assert a.flink["eu"].calls == []
    assert [j.job_id for j in a.flink["eu"].live()] == [JOB]
    after = a.store.jobs.get("orders")
    assert after == before
    current = a.store.operations.get(op.op_id)
    assert current is not None
    assert current.step == op.step
