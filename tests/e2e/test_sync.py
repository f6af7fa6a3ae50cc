"""`flink-gitops sync --once` on the real Flink 2.3 cluster: deploys, upgrades, suspend/resume, nonces,
rollback, identity — asserting what Flink runs and the job's own keyed counts, not our records."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs, wait_until
from tests.fixtures.gitserver import Remote


@pytest.fixture
def gitops(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    yield Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    cancel_all_jobs(flink_cluster)


def _deployed(g: Gitops, name: str) -> str:
    status = g.status(name)
    assert status["lifecycle"] == "stable", status
    job_id = status["flinkJobId"]
    assert isinstance(job_id, str)
    assert g.live_jobs() == [job_id]
    return job_id


def test_deploy_then_savepoint_upgrade_continues_the_keyed_counts(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    out = g.synced()
    assert "in sync" in out.stdout
    first = _deployed(g, "orders")
    assert g.running(first)
    before = g.wait_counts("orders", first, at_least=20)

    # a change the running job depends on: upgrade through a savepoint
    g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])
    g.synced()
    second = _deployed(g, "orders")
    assert second != first
    savepoint = g.status("orders")["savepoint"]
    assert savepoint is not None
    assert g.restored_from(second) == savepoint
    after = g.wait_counts("orders", second, at_least=1)
    # keyed state came along: every key counts on from at least where the old job was
    assert all(after[k] >= before[k] for k in before), (before, after)

    # nothing changed: a no-op cycle, exit 0, nothing touched
    again = g.synced()
    assert "in sync" in again.stdout
    assert g.live_jobs() == [second]


def test_a_broken_spec_changes_nothing_that_runs(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    g.synced()
    job_id = _deployed(g, "orders")
    g.commit({"jobs/orders.yaml": g.job_yaml("orders", parallelism="four")})
    proc = g.sync()
    assert proc.returncode == 1
    assert "orders: invalid" in proc.stderr
    assert "jobs/orders.yaml" in proc.stderr
    assert g.live_jobs() == [job_id]
    assert g.status("orders")["flinkJobId"] == job_id


def test_incompatible_upgrade_is_rolled_back_to_the_last_stable_spec_with_state(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    g.synced()
    first = _deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    g.put_job("orders", jar="artifacts/counter-uid-changed.jar")
    proc = g.sync()
    assert proc.returncode == 1
    assert "orders" in proc.stderr
    status = g.status("orders")
    assert status["lifecycle"] == "rolled-back", status
    rolled = status["flinkJobId"]
    assert g.live_jobs() == [rolled]
    assert g.running(rolled)
    after = g.wait_counts("orders", rolled, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    # the bad spec is not retried until it changes
    proc = g.sync()
    assert proc.returncode == 1
    assert "failed before" in proc.stderr
    assert g.live_jobs() == [rolled]


def test_suspend_and_resume_keep_state(gitops: Gitops) -> None:
    g = gitops
    g.put_job("orders")
    g.synced()
    first = _deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    g.put_job("orders", state="suspended")
    g.synced()
    assert g.status("orders")["lifecycle"] == "suspended"
    assert g.live_jobs() == []
    g.put_job("orders", state="running")
    g.synced()
    resumed = _deployed(g, "orders")
    after = g.wait_counts("orders", resumed, at_least=1)
    assert all(after[k] >= before[k] for k in before)


@pytest.mark.parametrize("mode", ["last-state", "stateless"])
def test_last_state_and_stateless_upgrades(gitops: Gitops, mode: str) -> None:
    g = gitops
    g.put_job("orders", upgradeMode=mode)
    g.synced()
    first = _deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    if mode == "last-state":  # a retained checkpoint must exist (the test cluster checkpoints every 2 s)
        with g.client() as c:
            wait_until("a completed checkpoint", lambda: c.checkpoints(first).latest_completed_path, 30)
    g.put_job(
        "orders", upgradeMode=mode, args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"]
    )
    g.synced()
    second = _deployed(g, "orders")
    restored = g.restored_from(second)
    after = g.wait_counts("orders", second, at_least=1)
    if mode == "last-state":
        assert restored is not None
        assert "/chk-" in restored
        assert min(after.values()) > 0
        assert sum(after.values()) >= sum(before.values()) * 0.5  # from a checkpoint: at most ~2 s lost
    else:  # fresh: Flink restored nothing (counting from zero again is then a matter of timing)
        assert restored is None
        with g.client() as c:
            assert c.checkpoints(second).counts.restored == 0
