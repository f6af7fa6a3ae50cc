"""Nonces, redeploys, identity (moves, removal and re-adding) through `sync --once` on real Flink."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs, local_cluster
from tests.fixtures.gitserver import Remote


@pytest.fixture(scope="module")
def second_cluster(flink_home: Path) -> Iterator[LocalFlinkCluster]:
    """Another session cluster on this machine ("eu"): savepoints on the shared disk reach both."""
    with local_cluster(flink_home) as cluster:
        yield cluster


@pytest.fixture
def gitops(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    yield Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars, {"prune": True})
    cancel_all_jobs(flink_cluster)


def _job(g: Gitops, name: str, cluster: str = "default") -> str:
    status = g.status(name)
    assert status["lifecycle"] == "stable", status
    assert g.live_jobs(cluster) == [status["flinkJobId"]]
    return str(status["flinkJobId"])


def test_savepoint_nonce_takes_a_savepoint_without_redeploying(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    g.synced()
    job_id = _job(g, "orders")
    g.put_job("orders", savepointTriggerNonce=1)
    g.synced()
    assert _job(g, "orders") == job_id  # same job, not redeployed
    status = g.status("orders")
    assert status["savepoint"] is not None
    assert (Path(status["savepoint"].removeprefix("file:")) / "_metadata").is_file()
    history = g.cli("history", "orders", check=True).stdout
    assert "savepoint" in history


def test_restart_nonce_restarts_from_a_fresh_savepoint_and_redeploy_nonce_from_the_chosen_one(
    gitops: Gitops,
) -> None:
    g = gitops
    g.put_job("orders")
    g.synced()
    first = _job(g, "orders")
    g.wait_counts("orders", first, at_least=10)
    g.put_job("orders", restartNonce=1)
    g.synced()
    second = _job(g, "orders")
    assert second != first
    chosen = g.status("orders")["savepoint"]
    assert g.restored_from(second) == chosen
    g.wait_counts("orders", second, at_least=chosen_count(g, first) + 1)

    # later: redeploy from the savepoint chosen in Git (the one the restart took), not the newest
    g.put_job("orders", restartNonce=1, savepointTriggerNonce=1)
    g.synced()
    g.put_job(
        "orders",
        restartNonce=1,
        savepointTriggerNonce=1,
        initialSavepointPath=chosen,
        savepointRedeployNonce=1,
    )
    g.synced()
    third = _job(g, "orders")
    assert third != second
    assert g.restored_from(third) == chosen


def chosen_count(g: Gitops, job_id: str) -> int:
    counts = g.counts("orders", job_id)
    return min(counts.values()) if counts else 0


def test_a_job_moved_to_another_cluster_keeps_its_history_and_state(
    tmp_path: Path,
    remote: Remote,
    flink_cluster: LocalFlinkCluster,
    second_cluster: LocalFlinkCluster,
    test_jars: JobJars,
) -> None:
    cancel_all_jobs(flink_cluster)
    g = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster, "eu": second_cluster}, test_jars)
    try:
        g.put_job("orders")
        g.synced()
        first = _job(g, "orders")
        before = g.wait_counts("orders", first, at_least=20)
        uid = g.status("orders")["uid"]
        g.put_job("orders", cluster="eu")
        g.synced()
        moved = _job(g, "orders", "eu")
        assert g.live_jobs("default") == []
        status = g.status("orders")
        assert (status["cluster"], status["uid"]) == ("eu", uid)  # the same job, the same life
        after = g.wait_counts("orders", moved, at_least=1)
        assert all(after[k] >= before[k] for k in before)
        history = g.cli("history", "orders", check=True).stdout
        assert history.count("upgrade") >= 1
        assert "deploy" in history
    finally:
        cancel_all_jobs(flink_cluster)
        cancel_all_jobs(second_cluster)


def test_a_job_removed_and_added_again_gets_a_new_life_and_a_fresh_id(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    g.put_job("other")
    g.synced()
    first = g.status("orders")
    g.commit({"jobs/orders.yaml": None})
    g.synced()  # pruned: stopped with a final savepoint, the row kept as a tombstone
    gone = g.status("orders")
    assert gone["lifecycle"] == "deleted"
    assert gone["savepoint"] is not None
    assert first["flinkJobId"] not in g.live_jobs()
    g.put_job("orders")
    g.synced()
    again = g.status("orders")
    assert again["lifecycle"] == "stable"
    assert again["uid"] != first["uid"]
    assert again["flinkJobId"] != first["flinkJobId"]
    assert again["generation"] > first["generation"]
    assert again["flinkJobId"] in g.live_jobs()
    assert g.restored_from(again["flinkJobId"]) is None  # a new life starts empty
