"""Live drift and recovery end to end on real Flink 2.3 (issue 9): `flink-gitops sync --once` as a
subprocess; asserted from what Flink runs and from the job's own keyed counts, not our records."""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.testjobs import STATEFUL_ENTRY, JobJars
from tests.e2e.harness import Gitops
from tests.fixtures import secretscan
from tests.fixtures.flink import cancel_all_jobs, local_cluster, wait_until
from tests.fixtures.gitserver import Remote


@pytest.fixture
def shared(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[tuple[Path, Remote, LocalFlinkCluster, JobJars]]:
    cancel_all_jobs(flink_cluster)
    yield tmp_path, remote, flink_cluster, test_jars
    cancel_all_jobs(flink_cluster)


def make(world: tuple[Path, Remote, LocalFlinkCluster, JobJars], **sync: Any) -> Gitops:
    tmp_path, remote, cluster, jars = world
    return Gitops(tmp_path / "gitops", remote, {"default": cluster}, jars, sync_settings=sync)


def deployed(g: Gitops, name: str) -> str:
    status = g.status(name)
    assert status["lifecycle"] == "stable", status
    job_id = status["flinkJobId"]
    assert isinstance(job_id, str)
    return job_id


def checkpointed_after(g: Gitops, job_id: str, since_ms: float) -> None:
    with g.client() as c:
        wait_until(
            f"a checkpoint of {job_id} after {since_ms:.0f}",
            lambda: (c.checkpoints(job_id).latest_completed_at_ms or 0) > since_ms,
            30,
        )


def cancel_by_hand(g: Gitops, job_id: str) -> None:
    with g.client() as c:
        c.cancel(job_id)
        c.wait_for_job_state(job_id, {"CANCELED"}, 30)


def test_a_job_cancelled_by_hand_is_only_reported_under_warn(shared: Any) -> None:
    g = make(shared, drift="warn")
    g.put_job("orders")
    g.synced()
    first = deployed(g, "orders")
    cancel_by_hand(g, first)
    for _ in range(2):  # reported every cycle, acted on never
        proc = g.sync()
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert "orders: drift: job" in proc.stderr
        assert "cancelled outside flink-gitops" in proc.stderr
        assert g.live_jobs() == []
    status = g.status("orders")
    assert status["drift"]["kind"] == "cancelled"
    assert status["drift"]["since"] is not None
    assert status["flinkJobId"] == first


def test_a_job_cancelled_by_hand_is_healed_with_its_keyed_state(shared: Any) -> None:
    g = make(shared, drift="heal")
    g.put_job("orders")
    g.synced()
    first = deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    checkpointed_after(g, first, time.time() * 1000)
    cancel_by_hand(g, first)
    with g.client() as c:
        retained = c.checkpoints(first).latest_completed_path
    assert retained is not None

    out = g.synced()
    assert "heal: job" in out.stdout
    second = deployed(g, "orders")
    assert second != first
    assert g.live_jobs() == [second], "exactly one job"
    assert g.restored_from(second) == retained, "restored from the cancelled job's retained checkpoint"
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    status = g.status("orders")
    assert status["drift"] is None
    assert status["restarts"]["inWindow"] == 1
    assert "in sync" in g.synced().stdout
    assert g.cli("audit", "verify").returncode == 0


def test_an_unmanaged_job_is_left_alone_and_reported(shared: Any) -> None:
    g = make(shared, drift="heal")
    g.put_job("orders")
    g.synced()
    ours = deployed(g, "orders")
    with g.client() as c:
        jar = c.upload_jar(g.jars.stateful)
        theirs = c.run(
            jar, RunRequest(entry_class=STATEFUL_ENTRY, args=["--out", str(g.out / "theirs")], parallelism=1)
        ).jobid
        c.wait_for_job_state(theirs, {"RUNNING"}, 60)
    proc = g.synced()  # ours is in sync; theirs is reported, never a reason to fail or act
    assert f"unmanaged: job {theirs}" in proc.stdout
    assert sorted(g.live_jobs()) == sorted([ours, theirs])


def test_a_job_failing_on_start_spends_its_restart_budget_then_stays_failed_with_its_cause(
    shared: Any,
) -> None:
    g = make(shared, restart_budget=2, backoff_initial_s=0.2, backoff_max_s=1)
    args = ["--out", str(g.out / "orders"), "--fail-on-start", "true"]
    conf = {"restart-strategy.type": "none"}
    g.commit({"jobs/orders.yaml": g.job_yaml("orders", args=args, flink_conf=conf)})
    started: list[str] = []
    for expected in ("deploy", "recover", "recover", "give-up"):
        proc = g.sync()
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert f"orders: {expected} failed" in proc.stderr, (expected, proc.stderr)
        status = g.status("orders")
        assert status["lifecycle"] == "failed", status
        if expected != "give-up":
            started.append(status["flinkJobId"])
            time.sleep(1.1)  # the backoff is wall-clock in a CLI process: let it pass
    assert len(set(started)) == 3, "each try is a new Flink job"
    status = g.status("orders")
    assert status["failedHash"] is not None
    assert "restart budget spent" in status["lastError"]
    assert "failing on start, as asked" in status["lastError"], status["lastError"]
    # stays FAILED: no more tries while the spec is unchanged
    proc = g.sync()
    assert proc.returncode == 1
    assert "orders: failed:" in proc.stderr
    with g.client() as c:
        ours = [j for j in c.jobs_overview().jobs if j.jid in started or j.jid == status["flinkJobId"]]
    assert len(ours) == 3
    assert g.live_jobs() == []
    # `restart` forgets the failure and tries again at once (and it fails again, visibly)
    proc = g.cli("restart", "orders")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "failure forgotten" in proc.stderr
    assert "orders: recover failed" in proc.stderr
    assert g.status("orders")["flinkJobId"] not in started


def _rescale(url: str, job_id: str, parallelism: int) -> None:
    """What a person does from the web UI or curl: new resource requirements (adaptive scheduler)."""
    with secretscan.scanning_client(base_url=url, timeout=10) as http:
        current = http.get(f"/jobs/{job_id}/resource-requirements").raise_for_status().json()
        wanted = {v: {"parallelism": {"lowerBound": 1, "upperBound": parallelism}} for v in current}
        http.put(f"/jobs/{job_id}/resource-requirements", json=wanted).raise_for_status()


@pytest.fixture(scope="module")
def adaptive(flink_home: Path) -> Iterator[LocalFlinkCluster]:
    """A cluster of its own (its JobManager is killed): the adaptive scheduler, which rescales in
    place on request, and a short heartbeat so a lost JobManager's tasks free their slots soon."""
    conf = {
        "jobmanager.scheduler": "adaptive",
        "heartbeat.timeout": 6000,
        "heartbeat.interval": 1000,
        # Flink deletes a checkpoint once num-retained newer ones completed (a cluster setting): the
        # one recorded must still be there when the JobManager is lost
        "execution.checkpointing.num-retained": 100,
    }
    with local_cluster(flink_home, slots=4, extra_conf=conf) as cluster:
        yield cluster


@pytest.fixture
def own(
    tmp_path: Path, remote: Remote, adaptive: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[tuple[Path, Remote, LocalFlinkCluster, JobJars]]:
    cancel_all_jobs(adaptive)
    yield tmp_path, remote, adaptive, test_jars
    cancel_all_jobs(adaptive)


def test_a_job_rescaled_by_hand_is_healed_to_its_spec_with_state(own: Any) -> None:
    g = make(own, drift="heal")
    g.put_job("orders", parallelism=2)
    g.synced()
    first = deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    with g.client() as c:

        def tasks() -> int | None:
            (job,) = [j for j in c.jobs_overview().jobs if j.jid == first]
            return job.total_tasks

        deployed_tasks = tasks()
        _rescale(g.clusters["default"].rest_url, first, 1)
        wait_until("the job rescaled in place", lambda: tasks() != deployed_tasks or None, 60)
        wait_until("it runs again", lambda: g.running(first) or None, 60)
    assert g.live_jobs() == [first], "rescaled in place: the same job id"
    out = g.synced()
    assert "live drift rescaled" in out.stderr
    second = deployed(g, "orders")
    assert g.live_jobs() == [second]
    with g.client() as c:
        assert {v.parallelism for v in c.job(second).vertices} == {2}
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)


def test_a_job_lost_with_its_jobmanager_recovers_from_its_retained_checkpoint(own: Any) -> None:
    g = make(own, checkpoint_track_s=0.1)
    g.put_job("orders")
    g.synced()
    first = deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    checkpointed_after(g, first, time.time() * 1000)
    g.synced()  # in sync: reads and records the job's latest retained checkpoint
    history = g.cli("history", "orders", check=True).stdout
    assert "retained" in history
    cluster = g.clusters["default"]
    cluster.kill_jobmanager()
    cluster.start_jobmanager()
    with g.client() as c:
        assert c.find_job(first) is None, "a JobManager without HA forgets its jobs"

    out = g.synced()
    assert "live drift missing" in out.stderr
    second = deployed(g, "orders")
    assert g.live_jobs() == [second]
    restored = g.restored_from(second)
    assert restored is not None
    assert f"/{first}/chk-" in restored, restored
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)


@pytest.mark.parametrize("point", ["restore-chosen", "run-sent", "before-finish"])
def test_killed_during_a_heal_then_run_again_leaves_one_job_with_state(shared: Any, point: str) -> None:
    g = make(shared, drift="heal")
    g.put_job("orders")
    g.synced()
    first = deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    checkpointed_after(g, first, time.time() * 1000)
    cancel_by_hand(g, first)
    killed = g.sync(env={"FLINK_GITOPS_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    g.synced()
    second = deployed(g, "orders")
    assert g.status("orders")["openOperation"] is None
    assert g.live_jobs() == [second], "exactly one job"
    with g.client() as c:
        retained = c.checkpoints(first).latest_completed_path
    assert g.restored_from(second) == retained
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    assert g.status("orders")["restarts"]["inWindow"] == 1, "one recovery, counted once"
    assert g.cli("audit", "verify").returncode == 0


def test_killed_during_a_recovery_after_a_lost_jobmanager_then_run_again_leaves_one_job(own: Any) -> None:
    g = make(own, checkpoint_track_s=0.1)
    g.put_job("orders")
    g.synced()
    first = deployed(g, "orders")
    before = g.wait_counts("orders", first, at_least=20)
    checkpointed_after(g, first, time.time() * 1000)
    g.synced()  # records the latest retained checkpoint
    cluster = g.clusters["default"]
    cluster.kill_jobmanager()
    cluster.start_jobmanager()
    killed = g.sync(env={"FLINK_GITOPS_KILL_AT": "run-sent"})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    g.synced()  # resumes: adopts the job the killed run submitted, never a second one
    second = deployed(g, "orders")
    assert g.live_jobs() == [second], "exactly one job"
    assert f"/{first}/chk-" in (g.restored_from(second) or "")
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    assert g.status("orders")["restarts"]["inWindow"] == 1
