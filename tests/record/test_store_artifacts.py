"""Artifacts (the jars we uploaded, per cluster and digest), on both backends: fenced by the
cluster's lease, an upload again replaces the jar id, forget only drops the id it names."""

from __future__ import annotations

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.record.store import FencedOut, Store, cluster_lease

DIGEST = "sha256:" + "ab" * 32


@pytest.fixture
def epoch(store: Store) -> int:
    lease = store.leases.acquire("me", ttl=3600, name=cluster_lease("default"))
    assert lease is not None
    return lease.epoch


def test_an_upload_is_recorded_reused_and_replaced(store: Store, epoch: int, clock: FakeClock) -> None:
    assert store.artifacts.get("default", DIGEST) is None
    first = store.artifacts.record_upload("default", DIGEST, "aaa_x.jar", epoch=epoch)
    assert (first.jar_id, first.uploaded_at, first.last_used_at) == ("aaa_x.jar", clock.now(), clock.now())
    clock.advance(300)
    store.artifacts.mark_used("default", DIGEST, epoch=epoch)
    used = store.artifacts.get("default", DIGEST)
    assert used is not None
    assert used.last_used_at == clock.now()
    assert used.uploaded_at == first.uploaded_at
    again = store.artifacts.record_upload("default", DIGEST, "bbb_x.jar", epoch=epoch)
    assert again.jar_id == "bbb_x.jar"
    assert [a.jar_id for a in store.artifacts.all()] == ["bbb_x.jar"]


def test_forget_drops_only_the_jar_id_it_names(store: Store, epoch: int) -> None:
    store.artifacts.record_upload("default", DIGEST, "new.jar", epoch=epoch)
    assert store.artifacts.forget("default", DIGEST, "old.jar", epoch=epoch) is False
    assert store.artifacts.get("default", DIGEST) is not None
    assert store.artifacts.forget("default", DIGEST, "new.jar", epoch=epoch) is True
    assert store.artifacts.all("default") == []


def test_per_cluster_rows_and_listing(store: Store, epoch: int) -> None:
    eu = store.leases.acquire("me", ttl=3600, name=cluster_lease("eu"))
    assert eu is not None
    store.artifacts.record_upload("default", DIGEST, "d.jar", epoch=epoch)
    store.artifacts.record_upload("eu", DIGEST, "e.jar", epoch=eu.epoch)
    assert [(a.cluster, a.jar_id) for a in store.artifacts.all()] == [("default", "d.jar"), ("eu", "e.jar")]
    assert [a.jar_id for a in store.artifacts.all("eu")] == ["e.jar"]


def test_writes_are_fenced_by_the_cluster_lease(store: Store, epoch: int, clock: FakeClock) -> None:
    with pytest.raises(FencedOut):
        store.artifacts.record_upload("default", DIGEST, "x.jar", epoch=epoch + 1)
    with pytest.raises(FencedOut, match="nobody ever held"):
        store.artifacts.record_upload("other", DIGEST, "x.jar", epoch=epoch)
    clock.advance(7200)
    with pytest.raises(FencedOut, match="expired"):
        store.artifacts.forget("default", DIGEST, "x.jar", epoch=epoch)
    assert store.artifacts.all() == []


def test_bad_input_is_refused_before_writing(store: Store, epoch: int) -> None:
    with pytest.raises(ValueError, match="NUL"):
        store.artifacts.record_upload("default", DIGEST, "a\0b", epoch=epoch)
    with pytest.raises(ValueError, match="needs a cluster"):
        store.artifacts.record_upload("default", "", "a.jar", epoch=epoch)


def test_a_unit_of_work_carries_artifact_writes(store: Store, epoch: int) -> None:
    def failing_unit() -> None:
        with store.unit(epoch=epoch, lease=cluster_lease("default")) as uow:
            uow.artifacts.record_upload("default", DIGEST, "a.jar")
            raise RuntimeError("rolled back")

    with pytest.raises(RuntimeError):
        failing_unit()
    assert store.artifacts.all() == []
