"""A config reload (SIGHUP) reopens the runtime without letting go of the clusters it still leads:
their leases pass to the new reconciler with the same epoch (never released in between, so no
other replica can take them for that moment); a cluster dropped from the config is released, and
a reload onto another store carries nothing. FakeCluster at our own boundary, a real SQLite store."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import cast

from flink_gitops.clock import FakeClock
from flink_gitops.execute.cycle import Cluster, Reconciler
from flink_gitops.record.store import Store, cluster_lease
from flink_gitops.service.loop import Daemon
from flink_gitops.settings import ClusterConfig, Settings, StoreConfig
from tests.execute.test_retention import FakeCluster
from tests.record.audit_helpers import open_trail


@dataclass
class _Runtime:
    reconciler: Reconciler


def _daemon(tmp_path: Path, clock: FakeClock, first: Settings, then: Settings) -> tuple[Daemon, Store]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    audit = open_trail(store, tmp_path, clock)
    flink = {name: FakeCluster(tmp_path / name) for name in ("eu", "us")}

    @contextmanager
    def open_runtime(settings: Settings) -> Iterator[_Runtime]:
        clients = cast(dict[str, Cluster], {c: flink[c] for c in settings.clusters})
        rec = Reconciler(settings, store, audit, clients, clock, actor="daemon:r1", instance="r1")
        try:
            yield _Runtime(rec)
        finally:
            rec.release()  # as cli.sync.runtime does

    (tmp_path / "repo").mkdir()
    daemon = Daemon(
        first, reload=lambda: then, open_runtime=open_runtime, clock=clock, repo=tmp_path / "repo"
    )
    return daemon, store


def _held(store: Store) -> dict[str, int]:
    return {lease.name: lease.epoch for lease in store.leases.held()}


def _settings(tmp_path: Path, *clusters: str, store: StoreConfig | None = None) -> Settings:
    return Settings(
        state_dir=tmp_path / "state",
        clusters={c: ClusterConfig() for c in clusters},
        store=store or StoreConfig(),
    )


def test_a_reload_keeps_the_leases_it_still_needs_and_releases_the_rest(
    tmp_path: Path, clock: FakeClock
) -> None:
    daemon, store = _daemon(tmp_path, clock, _settings(tmp_path, "eu", "us"), _settings(tmp_path, "eu"))
    try:
        assert daemon.tick() is not None
        before = _held(store)
        assert set(before) == {cluster_lease("eu"), cluster_lease("us")}
        daemon.ask_reload()
        daemon._apply_reload()  # what the main loop does on SIGHUP
        assert daemon.tick() is not None
        assert _held(store) == {cluster_lease("eu"): before[cluster_lease("eu")]}, "same epoch: never let go"
        assert daemon.reconciler is not None
        assert set(daemon.reconciler.leases) == {"eu"}
    finally:
        daemon.stop()
        daemon._close()
    assert _held(store) == {}, "a clean stop releases the rest"


def test_a_reload_that_only_tunes_the_store_keeps_the_leases(tmp_path: Path, clock: FakeClock) -> None:
    tuned = _settings(tmp_path, "eu", store=StoreConfig(lease_ttl_s=45, max_clusters_per_instance=3))
    daemon, store = _daemon(tmp_path, clock, _settings(tmp_path, "eu"), tuned)
    try:
        assert daemon.tick() is not None
        before = _held(store)
        daemon.ask_reload()
        daemon._apply_reload()
        assert daemon.tick() is not None
        assert _held(store) == before, "the same database: the lease is carried, epoch and all"
    finally:
        daemon.stop()
        daemon._close()


def test_a_reload_onto_another_store_carries_no_lease(tmp_path: Path, clock: FakeClock) -> None:
    first = _settings(tmp_path, "eu")
    moved = _settings(tmp_path, "eu", store=StoreConfig(url=f"sqlite:///{tmp_path / 'other.db'}"))
    daemon, store = _daemon(tmp_path, clock, first, moved)
    try:
        assert daemon.tick() is not None
        assert set(_held(store)) == {cluster_lease("eu")}
        daemon.ask_reload()
        daemon._apply_reload()
        assert daemon.tick() is not None
        # this fake runtime keeps the first store: the lease was released and taken anew
        assert _held(store) == {cluster_lease("eu"): 2}
    finally:
        daemon.stop()
        daemon._close()
