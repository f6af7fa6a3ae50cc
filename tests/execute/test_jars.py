"""Jar reuse and cleanup: the registry over the real store (SQLite and PostgreSQL), the procedures'
upload step with it (reuse, write-ahead adoption after a crash, re-upload when Flink lost the jar),
and the collector deleting only unreferenced jars we uploaded, audited first.

The cluster side is a fake of our own port (``FakeJars``: the jar list and deletes), as
tests/execute/fakes.py fakes the rest; the real Flink runs in tests/e2e/test_artifacts.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.execute.jar_registry import StoreJarRegistry
from flink_gitops.execute.jars_gc import JarCollector, referenced
from flink_gitops.execute.procedures import Procedures
from flink_gitops.flink.errors import FlinkNotFound, FlinkServerError
from flink_gitops.flink.models import JarList
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import JobUpdate, SpecRecord, Store, cluster_lease
from tests.execute.fakes import Crash, DirJars, FakeFlink, MemoryJournal
from tests.execute.test_procedures import NEW, OLD, FakeJobRequest, run_spec, upgrade_op
from tests.record.audit_helpers import open_trail

D1, D2, D3, D4 = (f"sha256:{c * 64}" for c in "1234")


@dataclass
class FakeJars:
    """One cluster's jar list (id -> (name, uploaded ms)) and deletes, as Flink's REST API has them."""

    files: dict[str, tuple[str, int]] = field(default_factory=dict)
    listings: int = 0
    deleted: list[str] = field(default_factory=list)
    fail_delete: bool = False

    def jars(self) -> JarList:
        self.listings += 1
        return JarList.model_validate(
            {"files": [{"id": i, "name": n, "uploaded": t} for i, (n, t) in self.files.items()]}
        )

    def delete_jar(self, jar_id: str) -> None:
        if self.fail_delete:
            raise FlinkServerError("busy", cluster="default", method="DELETE", path="/jars/x", status=503)
        if jar_id not in self.files:
            raise FlinkNotFound("no such jar", cluster="default", method="DELETE", path="/jars/x", status=404)
        del self.files[jar_id]
        self.deleted.append(jar_id)


@pytest.fixture
def epoch(store: Store) -> int:
    lease = store.leases.acquire("me", ttl=3600, name=cluster_lease("default"))
    assert lease is not None
    return lease.epoch


def test_lookup_reuses_a_listed_jar_and_lists_once_per_cycle(store: Store, epoch: int) -> None:
    flink = FakeJars({"a_1.jar": ("1.jar", 0)})
    registry = StoreJarRegistry(store, {"default": flink}, lambda _c: epoch)
    assert registry.lookup("default", D1) is None
    assert flink.listings == 0  # nothing recorded: no need to ask Flink
    registry.uploaded("default", D1, "a_1.jar")
    registry.uploaded("default", D2, "gone_2.jar")
    assert registry.lookup("default", D1) == "a_1.jar"
    assert registry.lookup("default", D1) == "a_1.jar"
    assert flink.listings == 1
    fresh = StoreJarRegistry(store, {"default": flink}, lambda _c: epoch)  # the next cycle
    assert fresh.lookup("default", D2) is None  # recorded, but Flink no longer lists it
    assert flink.listings == 2


def test_adopt_takes_only_a_jar_of_our_name_uploaded_since_the_intent(store: Store, epoch: int) -> None:
    flink = FakeJars(
        {"old_x.jar": ("x.jar", 1_000), "new_x.jar": ("x.jar", 500_000), "y.jar": ("y.jar", 900_000)}
    )
    registry = StoreJarRegistry(store, {"default": flink}, lambda _c: epoch)
    assert registry.adopt("default", D1, "x.jar", since_ms=900_000) is None
    assert registry.adopt("default", D1, "x.jar", since_ms=450_000) == "new_x.jar"
    row = store.artifacts.get("default", D1)
    assert row is not None
    assert row.jar_id == "new_x.jar"


# --- the procedures' upload step with a registry ---------------------------------------------------


@dataclass
class MemoryRegistry:
    """``execute.ports.JarRegistry`` over a FakeFlink's jars (a fake of our own port)."""

    flink: FakeFlink
    rows: dict[tuple[str, str], str] = field(default_factory=dict)

    def lookup(self, cluster: str, digest: str) -> str | None:
        jar_id = self.rows.get((cluster, digest))
        return jar_id if jar_id in self.flink.jars else None

    def adopt(self, cluster: str, digest: str, file_name: str, since_ms: int) -> str | None:
        mine = set(self.rows.values())
        found = [j for j in self.flink.jars if j.endswith("_" + file_name) and j not in mine]
        if found:
            self.rows[(cluster, digest)] = found[-1]
        return found[-1] if found else None

    def uploaded(self, cluster: str, digest: str, jar_id: str) -> None:
        self.rows[(cluster, digest)] = jar_id

    def gone(self, cluster: str, digest: str, jar_id: str) -> None:
        self.rows.pop((cluster, digest), None)


def _world(tmp_path: Path, name: str) -> tuple[FakeFlink, MemoryJournal, MemoryRegistry, Procedures]:
    flink = FakeFlink(tmp_path / name)
    flink.add_running(OLD, FakeJobRequest())
    flink.jobs[OLD].checkpoint = flink._state_dir("chk")
    journal = MemoryJournal()
    registry = MemoryRegistry(flink)
    jars = DirJars(tmp_path / "jars")
    return (
        flink,
        journal,
        registry,
        Procedures({"default": flink}, journal, jars, FakeClock(), registry=registry),
    )


def _second(new: Any, stable: Any) -> Any:
    """The next upgrade of the same job, after the first one made NEW the running job."""
    op = upgrade_op(new, stable)
    op.op_id = "op-2"
    op.ids |= {"from_job_id": NEW, "job_id": "d" * 32, "rollback_job_id": "e" * 32, "trigger_id": "9" * 32}
    return op


def _uploads(flink: FakeFlink) -> list[str]:
    return [c for c in flink.calls if c.startswith("upload")]


def test_the_same_digest_is_uploaded_once_and_reused(tmp_path: Path) -> None:
    flink, journal, _registry, procs = _world(tmp_path, "reuse")
    new, old = run_spec(args=["v2"]), run_spec()
    procs.execute(journal.begin(upgrade_op(new, old)))
    assert len(_uploads(flink)) == 1
    procs.execute(journal.begin(_second(run_spec(args=["v3"]), new)))  # another spec, the same jar
    assert len(_uploads(flink)) == 1
    assert "jar-reused" in journal.ops["op-2"].op.steps


def test_killed_at_every_write_leaves_no_orphan_jar(tmp_path: Path) -> None:
    new, old = run_spec(args=["v2"]), run_spec()
    _, count, _, procs = _world(tmp_path, "count")
    procs.execute(count.begin(upgrade_op(new, old)))
    for n in range(1, count.writes + 1):
        for when in ("before", "after"):
            flink, journal, registry, procs = _world(tmp_path, f"w{n}-{when}")
            journal.die_at = (n, when)
            journal.begin(upgrade_op(new, old))
            with pytest.raises(Crash):
                procs.execute(journal.load("op-1"))
            journal.die_at = None
            if journal.ops["op-1"].finished is None:
                procs.execute(journal.load("op-1"))
            uploaded = [j for j in flink.jars if j != "jar-0"]
            assert len(uploaded) == 1, (n, when, flink.calls)
            assert set(registry.rows.values()) == set(uploaded), (n, when)
            assert [j.job_id for j in flink.live()] == [NEW]


def test_a_jar_flink_lost_is_uploaded_again_before_the_run(tmp_path: Path) -> None:
    flink, journal, registry, procs = _world(tmp_path, "lost")
    new, old = run_spec(args=["v2"]), run_spec()
    procs.execute(journal.begin(upgrade_op(new, old)))
    first = next(iter(registry.rows.values()))
    registry.rows[("default", new.jar_digest)] = first
    op = _second(run_spec(args=["v3"]), new)
    op.ids[f"jar_id:default:{new.jar_digest}"] = first  # recorded, then deleted behind our back
    del flink.jars[first]
    outcome = procs.execute(journal.begin(op))
    assert outcome.lifecycle is JobLifecycle.STABLE
    assert len(_uploads(flink)) == 2
    assert "jar-gone" in journal.ops["op-2"].op.steps
    assert registry.rows[("default", new.jar_digest)] != first


# --- cleanup -------------------------------------------------------------------------------------


def _spec_record(digest: str) -> SpecRecord:
    return SpecRecord({"spec": {}, "jar": {"digest": digest}}, "h" + digest[-8:], None, digest)


def _collector(store: Store, flink: FakeJars, audit: AuditTrail, epoch: int) -> JarCollector:
    return JarCollector(
        store, {"default": flink}, audit, actor="test", lead=lambda _c: {}, epoch_of=lambda _c: epoch
    )


@pytest.fixture
def audit(store: Store, tmp_path: Path, clock: FakeClock) -> AuditTrail:
    return open_trail(store, tmp_path, clock)


def _seed(store: Store, epoch: int) -> None:
    """a: reconciled D1, stable D2; b: deleted (was D4); an open operation needs D3."""
    lease = cluster_lease("default")
    with store.unit(epoch=epoch, lease=lease) as uow:
        uow.jobs.create("a", "default")
        uow.jobs.update("a", JobUpdate(last_reconciled=_spec_record(D1), last_stable=_spec_record(D2)))
        uow.jobs.create("b", "default")
        uow.jobs.update("b", JobUpdate(last_reconciled=_spec_record(D4), state=JobLifecycle.DELETED))
        uow.jobs.create("c", "default")
        ids: dict[str, Any] = {"cluster": "default", "spec": _spec_record(D3).spec, "stable": None}
        uow.operations.begin("c", "deploy", ids, cluster="default")
    for digest, jar_id in ((D1, "j1.jar"), (D2, "j2.jar"), (D3, "j3.jar"), (D4, "j4.jar")):
        store.artifacts.record_upload("default", digest, jar_id, epoch=epoch)


def test_referenced_is_reconciled_stable_and_open_operations_of_live_jobs(store: Store, epoch: int) -> None:
    _seed(store, epoch)
    assert referenced(store) == {"default": {D1, D2, D3}}


def test_only_unreferenced_jars_we_uploaded_are_deleted_audited_first(
    store: Store, epoch: int, audit: AuditTrail
) -> None:
    _seed(store, epoch)
    flink = FakeJars({f"j{i}.jar": (f"{i}.jar", 0) for i in range(1, 5)} | {"by-hand.jar": ("h.jar", 0)})
    done = _collector(store, flink, audit, epoch).collect()
    assert done.deleted == [("default", "j4.jar")]
    assert flink.deleted == ["j4.jar"]
    assert "by-hand.jar" in flink.files
    assert sorted(a.jar_id for a in store.artifacts.all()) == ["j1.jar", "j2.jar", "j3.jar"]
    events = [(r.event.action, r.event.outcome, r.event.details.get("jar_id")) for r in audit.records()]
    assert events[-2:] == [("jar.delete", "intent", "j4.jar"), ("jar.delete", "succeeded", "j4.jar")]
    assert _collector(store, flink, audit, epoch).collect().deleted == []  # nothing left to do


def test_a_failed_delete_keeps_the_row_for_the_next_cycle(
    store: Store, epoch: int, audit: AuditTrail
) -> None:
    _seed(store, epoch)
    flink = FakeJars({"j4.jar": ("4.jar", 0)}, fail_delete=True)
    done = _collector(store, flink, audit, epoch).collect()
    assert done.deleted == []
    assert [(c, j) for c, j, _why in done.failed] == [("default", "j4.jar")]
    assert store.artifacts.get("default", D4) is not None
    flink.fail_delete = False
    assert _collector(store, flink, audit, epoch).collect().deleted == [("default", "j4.jar")]


def test_a_jar_flink_no_longer_lists_is_forgotten(store: Store, epoch: int, audit: AuditTrail) -> None:
    _seed(store, epoch)
    done = _collector(store, FakeJars(), audit, epoch).collect()
    assert done.deleted == [("default", "j4.jar")]
    assert store.artifacts.get("default", D4) is None


def test_clusters_we_may_not_lead_or_reach_are_left_alone(
    store: Store, epoch: int, audit: AuditTrail
) -> None:
    _seed(store, epoch)
    flink = FakeJars({"j4.jar": ("4.jar", 0)})
    led_elsewhere = JarCollector(
        store, {"default": flink}, audit, actor="t", lead=lambda cs: dict.fromkeys(cs, "led by b"),
        epoch_of=lambda _c: epoch,
    )  # fmt: skip
    assert led_elsewhere.collect().deleted == []
    assert _collector(store, flink, audit, epoch).collect(skip={"default"}).deleted == []
    assert flink.deleted == []
