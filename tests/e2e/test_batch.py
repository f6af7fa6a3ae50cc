"""Batch jobs and slots on the real Flink 2.3 cluster.

- a batch job through the real CLI (``sync --once`` subprocesses): run to FINISHED, not run
  again on the next cycles, run again when its spec changes;
- a cron batch job with a fake clock: the Reconciler in-process, as ``sync --once`` builds it,
  with a :class:`FakeClock` (the planner's ``now``, the store's timestamps) and a real Flink
  client on the real clock (its polls wait for real Flink); started at its time and not before,
  ``last_run_at`` written from the operation's intent, a missed run past the grace skipped;
- deploys that wait for slots on a 2-slot cluster and proceed when they free up (the CLI).
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from flink_gitops.clock import FakeClock, SystemClock
from flink_gitops.execute.cycle import CycleResult, Reconciler, Revision
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import BATCH_ENTRY, STATEFUL_ENTRY, JobJars
from flink_gitops.plan.model import ActionKind, Status
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.keys import generate_key_file
from flink_gitops.record.store import open_store
from flink_gitops.settings import AuditConfig, ClusterConfig, Settings, SyncConfig
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import SpecLoader
from tests.e2e.harness import CLI, Gitops
from tests.fixtures.flink import cancel_all_jobs, local_cluster
from tests.fixtures.gitserver import Remote


def batch_yaml(
    name: str, out: Path, *, records: int = 2000, extra_args: tuple[str, ...] = (), **spec: Any
) -> str:
    doc = {
        "apiVersion": "flink-gitops/v1",
        "kind": "FlinkJob",
        "metadata": {"name": name},
        "spec": {
            "cluster": "default",
            "job": {
                "jarURI": "artifacts/batch.jar",
                "entryClass": BATCH_ENTRY,
                "args": ["--records", str(records), "--out", str(out), *extra_args],
                "parallelism": 1,
                "upgradeMode": "stateless",
            },
            "mode": "batch",
            **spec,
        },
    }
    return yaml.safe_dump(doc, sort_keys=False)


def jobs_of(cluster: LocalFlinkCluster) -> dict[str, str]:
    with FlinkClient(cluster.rest_url, name="test") as c:
        return {j.jid: j.state for j in c.jobs_overview().jobs}


def wait_finished(cluster: LocalFlinkCluster, job_id: str) -> None:
    with FlinkClient(cluster.rest_url, name="test") as c:
        c.wait_for_job_state(job_id, {"FINISHED"}, 60)


def counts(out: Path) -> dict[str, int]:
    lines = (out / "batch-counts.txt").read_text(encoding="utf-8").splitlines()
    return {k: int(v) for k, v in (line.split("=", 1) for line in lines)}


@pytest.fixture
def gitops(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    g = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    g.commit({"artifacts/batch.jar": test_jars.batch.read_bytes()}, "batch jar")
    yield g
    cancel_all_jobs(flink_cluster)


def test_a_batch_job_runs_to_finished_once_and_again_only_when_its_spec_changes(
    gitops: Gitops, flink_cluster: LocalFlinkCluster
) -> None:
    g = gitops
    out = g.out / "report"
    g.commit({"jobs/report.yaml": batch_yaml("report", out)})
    assert "in sync" in g.synced().stdout
    assert g.status("report")["lifecycle"] == "deployed"
    run = g.status("report")["flinkJobId"]
    assert isinstance(run, str)
    wait_finished(flink_cluster, run)
    assert sum(counts(out).values()) == 2000
    seen = jobs_of(flink_cluster)
    for _ in range(2):  # later cycles: in sync, nothing started
        assert "in sync" in g.synced().stdout
        assert jobs_of(flink_cluster) == seen
        assert g.status("report")["flinkJobId"] == run
    # a change the run depends on runs it again, as a new Flink job
    g.commit({"jobs/report.yaml": batch_yaml("report", out, records=3000)})
    g.synced()
    second = g.status("report")["flinkJobId"]
    assert second != run
    wait_finished(flink_cluster, second)
    assert sum(counts(out).values()) == 3000
    assert g.status("report")["mode"] == "batch"
    assert g.status("report")["nextRunAt"] is None  # no schedule: no next run


def test_a_failed_batch_run_is_retried_within_the_budget_then_stays_failed_with_its_cause(
    gitops: Gitops, flink_cluster: LocalFlinkCluster
) -> None:
    g = gitops
    g.sync_settings = {**g.sync_settings, "restart_budget": 1, "backoff_initial_s": 0.1}
    g.write_config()
    out = g.out / "broken"
    # --keys 0: the generator divides by zero at run time; no restarts, so the run ends FAILED
    broken = batch_yaml(
        "broken", out, extra_args=("--keys", "0"), flinkConfiguration={"restart-strategy.type": "none"}
    )
    g.commit({"jobs/broken.yaml": broken})
    g.synced()  # the run was started: that is this cycle's action
    first = g.status("broken")["flinkJobId"]
    with g.client() as c:
        c.wait_for_job_state(first, {"FAILED"}, 60)
    retried = g.sync()  # within the budget (1): run again, a new Flink job
    assert retried.returncode == 0, retried.stdout + retried.stderr
    second = g.status("broken")["flinkJobId"]
    assert second != first
    with g.client() as c:
        c.wait_for_job_state(second, {"FAILED"}, 60)
    spent = g.sync()  # past the budget: recorded FAILED with Flink's cause
    assert spent.returncode == 1
    assert "broken: give-up failed: restart budget spent" in spent.stderr
    assert "ArithmeticException: / by zero" in spent.stderr
    seen = jobs_of(flink_cluster)
    for _ in range(2):
        proc = g.sync()
        assert proc.returncode == 1
        assert "broken: failed:" in proc.stderr
        assert jobs_of(flink_cluster) == seen  # not run again on the same spec
    status = g.status("broken")
    assert status["restarts"]["inWindow"] == 1
    assert "/ by zero" in status["lastError"]


# --- cron, with a fake clock ----------------------------------------------------------------------


class InProcess:
    """The Reconciler as ``sync --once`` builds it, on a FakeClock, over a working directory."""

    def __init__(self, root: Path, cluster: LocalFlinkCluster, clock: FakeClock) -> None:
        self.repo = root / "repo"
        (self.repo / "artifacts").mkdir(parents=True)
        (self.repo / "jobs").mkdir()
        key = root / "audit.key"
        generate_key_file(key)
        self.settings = Settings(
            state_dir=root / "state",
            clusters={"default": ClusterConfig(url=cluster.rest_url)},
            audit=AuditConfig(key_file=key),
            sync=SyncConfig(stability_s=1, readiness_timeout_s=60, missed_run_grace_s=600),
        )
        self.clock = clock
        self.store = open_store(self.settings, clock=clock)
        audit = AuditTrail.from_settings(self.settings, self.store, clock=clock, actor="test")
        # the client polls real Flink on the real clock; the planner and the store use the fake one
        self.client = FlinkClient(cluster.rest_url, name="default", clock=SystemClock())
        self.reconciler = Reconciler(
            self.settings, self.store, audit, {"default": self.client}, clock, actor="test", instance="test"
        )

    def cycle(self) -> CycleResult:
        tree = DirectoryTree(self.repo)
        desired = SpecLoader.from_settings(self.settings).load(tree)
        assert not desired.errors, desired.errors
        return self.reconciler.cycle(Revision(desired, None), tree=tree)

    def close(self) -> None:
        self.reconciler.release()
        self.client.close()
        self.store.close()


def test_a_cron_batch_job_runs_at_its_time_with_a_fake_clock(
    tmp_path: Path, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> None:
    cancel_all_jobs(flink_cluster)
    clock = FakeClock(datetime(2026, 12, 6, 1, 0, tzinfo=UTC))  # a Sunday
    world = InProcess(tmp_path, flink_cluster, clock)
    try:
        out = tmp_path / "out"
        (world.repo / "artifacts" / "batch.jar").write_bytes(test_jars.batch.read_bytes())
        # 03:00 on Sundays: cron's weekday 0 (APScheduler's from_crontab would read Monday)
        (world.repo / "jobs" / "report.yaml").write_text(batch_yaml("report", out, schedule="0 3 * * 0"))

        first = world.cycle()
        (action,) = first.plan.actions
        assert action.kind is ActionKind.RECORD
        assert "first run 2026-12-06T03:00" in action.reason
        assert first.in_sync
        before = jobs_of(flink_cluster)

        clock.advance(timedelta(hours=1, minutes=59, seconds=50).total_seconds())  # 02:59:50
        early = world.cycle()
        assert early.plan.actions == ()
        assert early.plan.reports["report"].status is Status.IN_SYNC
        assert "first run 2026-12-06T03:00Z" in early.plan.reports["report"].reason
        assert jobs_of(flink_cluster) == before

        clock.advance(30)  # 03:00:20
        due = world.cycle()
        (run,) = due.plan.actions
        assert run.kind is ActionKind.RUN
        assert run.scheduled_at == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
        assert due.results["report"].ok, due.results
        job = world.store.jobs.get("report")
        assert job is not None
        assert job.last_run_at == datetime(2026, 12, 6, 3, 0, tzinfo=UTC)
        assert job.flink_job_id is not None
        first_run = job.flink_job_id
        assert set(jobs_of(flink_cluster)) - set(before) == {first_run}
        wait_finished(flink_cluster, first_run)
        assert sum(counts(out).values()) == 2000

        clock.advance(300)  # 03:05:20: finished, in sync, never a second run for 03:00
        after = world.cycle()
        assert after.plan.actions == ()
        assert after.in_sync
        assert "FINISHED; next run 2026-12-13T03:00Z" in after.plan.reports["report"].reason
        clock.advance(timedelta(days=1).total_seconds())  # Monday 03:05: not a fire time
        assert world.cycle().plan.actions == ()

        # down over the next Sunday 03:00 and back at 05:00: two hours late, past the grace: skipped
        clock.advance(timedelta(days=6, hours=2).total_seconds() - 320)  # Sunday 2026-12-13 05:00
        late = world.cycle()
        assert late.plan.actions == ()
        report = late.plan.reports["report"]
        assert "skipped 1 missed run(s), the latest for 2026-12-13T03:00Z" in report.reason
        assert "next run 2026-12-20T03:00Z" in report.reason

        clock.advance(timedelta(days=6, hours=22, minutes=3).total_seconds())  # Sunday 12-20 03:03
        next_week = world.cycle()
        (again,) = next_week.plan.actions
        assert again.scheduled_at == datetime(2026, 12, 20, 3, 0, tzinfo=UTC)
        assert next_week.results["report"].ok
        second_run = world.store.jobs.get("report")
        assert second_run is not None
        assert second_run.flink_job_id not in (None, first_run)  # a new Flink job id each run
        assert second_run.last_run_at == datetime(2026, 12, 20, 3, 0, tzinfo=UTC)
        wait_finished(flink_cluster, second_run.flink_job_id or "")

        # `status` (the real CLI, on the real clock) shows the schedule, the last and the next run
        config = tmp_path / "config.yaml"
        config.write_text(yaml.safe_dump(world.settings.model_dump(mode="json", exclude_defaults=True)))
        proc = subprocess.run(
            [*CLI, "--config", str(config), "status", "report", "--output", "json"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
        )
        (row,) = json.loads(proc.stdout)
        assert (row["mode"], row["schedule"]) == ("batch", "0 3 * * 0")
        assert row["lastRunAt"] == "2026-12-20T03:00:00+00:00"
        nxt = datetime.fromisoformat(row["nextRunAt"])
        assert (nxt.isoweekday(), nxt.hour, nxt.minute) == (7, 3, 0)  # a Sunday, 03:00 UTC
        table = subprocess.run(
            [*CLI, "--config", str(config), "status"],
            capture_output=True,
            text=True,
            timeout=60,
            check=True,
            env={**os.environ, "COLUMNS": "200"},
        )
        assert "next run" in table.stdout
    finally:
        world.close()
        cancel_all_jobs(flink_cluster)


# --- slots ----------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def small_cluster(flink_home: Path) -> Iterator[LocalFlinkCluster]:
    """A 2-slot cluster of its own: slots are what this test is about."""
    with local_cluster(flink_home, slots=2) as cluster:
        yield cluster


def counter_yaml(g: Gitops, name: str, parallelism: int, **job: Any) -> str:
    args = ["--out", str(g.out / name), "--rate", "50", "--keys", "4"]
    return g.job_yaml(name, args=args, parallelism=parallelism, entryClass=STATEFUL_ENTRY, **job)


def test_a_deploy_waits_for_slots_and_proceeds_when_they_free_up(
    tmp_path: Path, remote: Remote, small_cluster: LocalFlinkCluster, test_jars: JobJars
) -> None:
    g = Gitops(tmp_path / "gitops", remote, {"default": small_cluster}, test_jars)
    try:
        g.commit({"jobs/a.yaml": counter_yaml(g, "a", 2), "jobs/b.yaml": counter_yaml(g, "b", 2)})
        proc = g.sync()
        assert proc.returncode == 1, proc.stdout + proc.stderr
        assert (
            "b: waiting: deploy waits: waiting for 2 slots, 0 free of 2 on cluster 'default'" in proc.stderr
        )
        a_job = g.status("a")["flinkJobId"]
        assert g.live_jobs() == [a_job]
        assert g.cli("status", "b").returncode == 2  # never started, so never recorded
        # suspending a (earlier in the plan) gives its slots back: b runs in the same cycle
        g.commit({"jobs/a.yaml": counter_yaml(g, "a", 2, state="suspended")})
        g.synced()
        assert g.status("a")["lifecycle"] == "suspended"
        b_job = g.status("b")["flinkJobId"]
        assert g.live_jobs() == [b_job]
        assert g.running(b_job)
        # a job that needs more slots than the cluster has waits too, saying so
        g.commit({"jobs/big.yaml": counter_yaml(g, "big", 4)})
        proc = g.sync()
        assert proc.returncode == 1
        assert "big: waiting: deploy waits: waiting for 4 slots, 0 free of 2" in proc.stderr
        assert g.live_jobs() == [b_job]
    finally:
        cancel_all_jobs(small_cluster)
