"""Periodic savepoints and retention on the real Flink 2.3 cluster.

The Reconciler runs in this process (the CLI reads the real clock; these tests need the days to
pass): its planning, store and audit trail run on a FakeClock that the test advances, the Flink
client on the real clock (its polls really wait for Flink). Asserted against Flink and the disk:
the savepoints are taken when due and not before, the disposed ones' directories are gone and
their rows disposed, the current one, the one the running job was restored from and a retained
checkpoint are kept, and `flink-gitops savepoints` (the real CLI) shows it so.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
import yaml

from flink_gitops.clock import FakeClock, SystemClock
from flink_gitops.execute.cycle import CycleResult, Reconciler, Revision
from flink_gitops.execute.retention import _GONE, local_savepoint
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.errors import OperationFailed
from flink_gitops.flink.ids import new_trigger_id
from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.testjobs import STATEFUL_ENTRY, JobJars
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import NewSavepoint, SavepointRecord, SnapshotKind, SnapshotOrigin, Store
from flink_gitops.settings import Settings
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import SpecLoader
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs, wait_until
from tests.fixtures.gitserver import Remote
from tests.record.audit_helpers import open_trail


@dataclass
class Daemon:
    repo: Path
    out: Path
    store: Store
    audit: AuditTrail
    clock: FakeClock
    client: FlinkClient
    rec: Reconciler
    settings: Settings
    settings_file: Path

    def put(self, **savepoints: Any) -> None:
        args = savepoints.pop("args", ["--out", str(self.out), "--rate", "100", "--keys", "4"])
        doc = {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "orders"},
            "spec": {
                "job": {
                    "jarURI": "artifacts/counter.jar",
                    "entryClass": STATEFUL_ENTRY,
                    "args": args,
                    "parallelism": 1,
                    "upgradeMode": "savepoint",
                },
                "savepoints": savepoints,
            },
        }
        (self.repo / "jobs").mkdir(parents=True, exist_ok=True)
        (self.repo / "jobs/orders.yaml").write_text(yaml.safe_dump(doc), encoding="utf-8")

    def cycle(self) -> CycleResult:
        tree = DirectoryTree(self.repo)
        desired = SpecLoader.from_settings(self.settings).load(tree)
        result = self.rec.cycle(Revision(desired, None), tree=tree)
        assert result.in_sync, result.problems()
        return result

    def history(self) -> list[SavepointRecord]:
        return self.store.snapshots.history("orders", include_disposed=True)

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "flink_gitops", "--config", str(self.settings_file), *args],
            capture_output=True,
            text=True,
            timeout=120,
            env=os.environ.copy(),
            check=False,
        )


@pytest.fixture
def daemon(tmp_path: Path, flink_cluster: LocalFlinkCluster, test_jars: JobJars) -> Iterator[Daemon]:
    cancel_all_jobs(flink_cluster)
    repo = tmp_path / "repo"
    (repo / "artifacts").mkdir(parents=True)
    (repo / "artifacts/counter.jar").write_bytes(test_jars.stateful.read_bytes())
    config = {
        "state_dir": str(tmp_path / "state"),
        "clusters": {"default": {"url": flink_cluster.rest_url}},
        "sync": {"stability_s": 1, "readiness_timeout_s": 60},
        "store": {"lease_ttl_s": 10**7},  # the fake clock moves days
    }
    settings_file = tmp_path / "config.yaml"
    settings_file.write_text(yaml.safe_dump(config), encoding="utf-8")
    settings = Settings.model_validate(config)
    settings.state_dir.mkdir()
    clock = FakeClock()
    store = Store.from_url(f"sqlite:///{settings.state_dir / 'state.db'}", clock=clock)
    audit = open_trail(store, tmp_path, clock)
    client = FlinkClient(flink_cluster.rest_url, name="default", clock=SystemClock())
    rec = Reconciler(settings, store, audit, {"default": client}, clock, actor="test", instance="e2e")
    try:
        yield Daemon(repo, tmp_path / "out", store, audit, clock, client, rec, settings, settings_file)
    finally:
        rec.release()
        client.close()
        store.close()
        cancel_all_jobs(flink_cluster)


def _dir(path: str) -> Path:
    return Path(urlparse(path).path)


def test_periodic_savepoints_at_their_time_and_retention_on_real_flink(daemon: Daemon) -> None:
    d = daemon
    d.put(periodic="10m", maxCount=2, maxAge="1d")
    (deploy,) = d.cycle().plan.actions
    assert deploy.kind.value == "deploy"

    def periodic() -> str:
        (a,) = d.cycle().plan.actions
        assert (a.kind.value, a.origin) == ("savepoint", "periodic")
        job = d.store.jobs.get("orders")
        assert job is not None
        assert job.savepoint is not None
        assert job.savepoint_at == d.clock.now()
        assert (_dir(job.savepoint) / "_metadata").is_file()  # Flink wrote it
        return job.savepoint

    sp1 = periodic()  # no savepoint yet: due at once
    d.clock.advance(599)
    assert d.cycle().plan.actions == ()  # one second early: nothing
    d.clock.advance(1)
    sp2 = periodic()
    d.clock.advance(600)
    sp3 = periodic()  # three now, maxCount 2: the oldest goes
    rows = {r.path: r for r in d.history()}
    assert rows[sp1].disposed
    assert not _dir(sp1).exists()
    assert not rows[sp2].disposed
    assert not rows[sp3].disposed

    # an upgrade: stop-with-savepoint (origin upgrade), the new job restored from it
    d.put(periodic="10m", maxCount=2, maxAge="1d", args=["--out", str(d.out), "--rate", "120", "--keys", "4"])
    (up,) = d.cycle().plan.actions
    assert up.kind.value == "upgrade"
    job = d.store.jobs.get("orders")
    assert job is not None
    assert job.flink_job_id is not None
    restored = job.savepoint
    assert restored is not None
    from_flink = d.client.checkpoints(job.flink_job_id).latest.restored
    assert from_flink is not None
    assert from_flink.external_path == restored  # Flink says so, not only our record
    assert {r.path: r for r in d.history()}[restored].origin is SnapshotOrigin.UPGRADE
    assert {r.path: r for r in d.history()}[sp2].disposed  # three again: sp2 went

    # a retained checkpoint of the running job, recorded as a recovery would: Flink's to clean, never ours
    def completed() -> str | None:
        done = d.client.checkpoints(job.flink_job_id).latest.completed  # type: ignore[arg-type]
        return done.external_path if done is not None else None

    chk = wait_until("a completed checkpoint", completed, 30)
    lease = d.rec.leases["default"]
    retained = NewSavepoint(
        "orders", chk, SnapshotKind.CHECKPOINT, SnapshotOrigin.RETAINED, job.flink_job_id, make_current=False
    )
    d.store.snapshots.record(retained, epoch=lease.epoch, lease=lease.name)

    d.clock.advance(600)
    sp5 = periodic()
    rows = {r.path: r for r in d.history()}
    assert rows[sp3].disposed
    assert not rows[restored].disposed

    # two days on: past maxAge, all but the newest and the one the running job was restored from
    d.clock.advance(2 * 86400)
    sp6 = periodic()
    rows = {r.path: r for r in d.history()}
    assert rows[sp5].disposed
    assert not _dir(sp5).exists()
    assert not rows[chk].disposed  # older than maxAge, and left alone
    live = sorted(p for p, r in rows.items() if not r.disposed and r.kind is SnapshotKind.SAVEPOINT)
    assert live == sorted([restored, sp6])
    for path in live:
        assert (_dir(path) / "_metadata").is_file()
    for path in (sp1, sp2, sp3, sp5):
        assert local_savepoint(path) is None
    # audited
    disposed = [
        e.event.savepoint
        for e in d.audit.records(action="savepoint.dispose")
        if e.event.outcome == "succeeded"
    ]
    assert sorted(str(p) for p in disposed) == sorted([sp1, sp2, sp3, sp5])

    # the real CLI shows it so
    proc = d.cli("savepoints", "orders", "--output", "json")
    assert proc.returncode == 0, proc.stderr
    states = {r["path"]: (r["state"], r["origin"]) for r in json.loads(proc.stdout)["savepoints"]}
    assert states[sp6] == ("current", "periodic")
    assert states[restored] == ("stable", "upgrade")
    assert all(states[p][0] == "disposed" for p in (sp1, sp2, sp3, sp5))
    live_jobs = [j.jid for j in d.client.jobs_overview().jobs if j.state == "RUNNING"]
    assert live_jobs == [job.flink_job_id]


def test_flink_disposal_of_a_real_savepoint_and_of_one_already_gone(
    flink_cluster_clean: LocalFlinkCluster, test_jars: JobJars, tmp_path: Path
) -> None:
    """What retention relies on for paths it cannot see: POST /savepoint-disposal removes the
    directory, and a second disposal fails with a cause that retention reads as "gone already"."""
    with FlinkClient(flink_cluster_clean.rest_url, name="default") as client:
        jar = client.upload_jar(test_jars.stateful)
        args = ["--out", str(tmp_path / "out"), "--rate", "50", "--keys", "2"]
        job = client.run(jar, RunRequest(entry_class=STATEFUL_ENTRY, args=args, parallelism=1)).jobid
        client.wait_for_job_state(job, {"RUNNING"}, 60, all_tasks_running=True)
        trigger = client.trigger_savepoint(job, trigger_id=new_trigger_id())
        path = client.wait_for_savepoint(job, trigger, 60)
        assert (_dir(path) / "_metadata").is_file()
        client.wait_for_disposal(client.dispose_savepoint(path), 60)
        assert not _dir(path).exists()
        with pytest.raises(OperationFailed) as failed:
            client.wait_for_disposal(client.dispose_savepoint(path), 60)
        assert any(marker in str(failed.value) for marker in _GONE), str(failed.value)


def test_the_cli_records_nonce_and_manual_savepoints_with_their_origin(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> None:
    cancel_all_jobs(flink_cluster)
    g = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    try:
        g.put_job("orders")
        g.synced()
        job_id = g.status("orders")["flinkJobId"]
        g.put_job("orders", savepointTriggerNonce=1)
        g.synced()
        manual = g.cli("savepoint", "orders", check=True).stdout.strip()
        proc = g.cli("savepoints", "orders", "--output", "json", check=True)
        rows = json.loads(proc.stdout)["savepoints"]
        assert [(r["origin"], r["state"], r["flinkJobId"]) for r in rows] == [
            ("manual", "current", job_id),
            ("nonce", "kept", job_id),
        ]
        assert rows[0]["path"] == manual
        assert g.live_jobs() == [job_id]  # neither redeployed the job
        table = g.cli("savepoints", "orders", check=True).stdout
        assert "manual" in table
        assert "nonce" in table
    finally:
        cancel_all_jobs(flink_cluster)
