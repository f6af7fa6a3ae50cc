"""Two `flink-gitops run` replicas (real subprocesses, different instance names) on one real
PostgreSQL, real Flink 2.3 clusters and one loopback Git remote: with ``store.max_clusters_per_instance``
1 they split two clusters and each cluster is acted on by exactly one (the audit trail's actor and the
lease holders agree, Flink runs one job per spec); a leader SIGKILLed in the middle of an upgrade is
replaced by the other within the lease TTL, which finishes the upgrade from its recorded step (the
started job adopted, restored from the stop savepoint, the keyed counts carried on)."""

from __future__ import annotations

import json
import signal
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from flink_gitops.record.store import cluster_lease
from tests.e2e.harness import Gitops
from tests.e2e.test_daemon import Daemon, NotifySocket, start
from tests.fixtures.flink import cancel_all_jobs, local_cluster, wait_until
from tests.fixtures.gitserver import Remote
from tests.fixtures.postgres import StoreTarget

pytestmark = pytest.mark.postgres


@dataclass
class HaGitops(Gitops):
    """Gitops on PostgreSQL: one store and one shared audit head file for every replica."""

    target: StoreTarget | None = None
    store_settings: dict[str, Any] = field(default_factory=dict)

    def write_config(self) -> None:
        super().write_config()
        config = yaml.safe_load(self.config.read_text(encoding="utf-8"))
        assert self.target is not None
        assert self.target.password_file is not None
        config["store"] = {
            "url": self.target.url,
            "password": {"file": str(self.target.password_file)},
        } | self.store_settings
        config["audit"]["head_file"] = str(self.root / "audit.head")
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")

    def replica(self, notify: NotifySocket, name: str, **env: str) -> Daemon:
        state = self.root / f"state-{name}"
        return start(
            self, notify, name, FLINK_GITOPS_INSTANCE_NAME=name, FLINK_GITOPS_STATE_DIR=str(state), **env
        )

    def audit(self) -> list[dict[str, Any]]:
        proc = self.cli("audit", "show", "--output", "jsonl", check=True)
        return [json.loads(line) for line in proc.stdout.splitlines() if line.strip()]

    def holders(self) -> dict[str, str]:
        assert self.target is not None
        with self.target.open() as store:
            return {lease.name: lease.holder.partition(":")[0] for lease in store.leases.held()}


@pytest.fixture(scope="module")
def eu_cluster(flink_home: Path) -> Iterator[LocalFlinkCluster]:
    with local_cluster(flink_home) as cluster:
        yield cluster


MakeWorld = Callable[..., tuple[HaGitops, NotifySocket]]


@pytest.fixture
def ha_world(
    tmp_path: Path,
    remote: Remote,
    flink_cluster: LocalFlinkCluster,
    test_jars: JobJars,
    postgres_database: StoreTarget,
) -> Iterator[MakeWorld]:
    used: list[LocalFlinkCluster] = [flink_cluster]
    notify = NotifySocket(tmp_path / "notify.sock")

    def make(store: dict[str, Any], **clusters: LocalFlinkCluster) -> tuple[HaGitops, NotifySocket]:
        every = {"default": flink_cluster, **clusters}
        used[:] = list(every.values())
        for c in used:
            cancel_all_jobs(c)
        g = HaGitops(
            tmp_path / "gitops", remote, every, test_jars, target=postgres_database, store_settings=store
        )
        return g, notify

    yield make
    notify.close()
    for c in used:
        cancel_all_jobs(c)


def stable_job(g: Gitops, name: str, other_than: str | None = None) -> str:
    """Its Flink job id once stable (and not ``other_than``); the job may not be recorded yet."""

    def probe() -> str | None:
        proc = g.cli("status", name, "--output", "json")
        if proc.returncode != 0:
            return None
        (s,) = json.loads(proc.stdout)
        ok = s["lifecycle"] == "stable" and s["openOperation"] is None and s["flinkJobId"] != other_than
        return str(s["flinkJobId"]) if ok else None

    return wait_until(f"{name} stable (not {other_than})", probe, 120)


def _stop_all(daemons: list[Daemon]) -> list[int]:
    codes = []
    for d in daemons:
        if d.proc.poll() is None:
            codes.append(d.stop())
    return codes


def test_two_daemons_split_two_clusters_and_each_cluster_is_acted_on_by_exactly_one(
    ha_world: MakeWorld, eu_cluster: LocalFlinkCluster
) -> None:
    # a TTL long enough that the second replica is up before the first would take both
    g, notify = ha_world({"lease_ttl_s": 20, "max_clusters_per_instance": 1}, eu=eu_cluster)
    g.commit(
        {"jobs/orders.yaml": g.job_yaml("orders"), "jobs/payments.yaml": g.job_yaml("payments", cluster="eu")}
    )
    daemons = [g.replica(notify, "r1"), g.replica(notify, "r2")]
    try:
        first = {name: stable_job(g, name) for name in ("orders", "payments")}
        # one commit changes both: each is upgraded by its own cluster's leader
        upgraded: dict[str, str | bytes | None] = {
            f"jobs/{name}.yaml": g.job_yaml(
                name, cluster=cluster, args=["--out", str(g.out / name), "--rate", "120", "--keys", "4"]
            )
            for name, cluster in (("orders", "default"), ("payments", "eu"))
        }
        g.commit(upgraded, "both")
        second = {name: stable_job(g, name, other_than=first[name]) for name in first}
        held = g.holders()
    finally:
        codes = _stop_all(daemons)
    assert codes == [0, 0], [d.text()[-3000:] for d in daemons]
    leader = {"default": held[cluster_lease("default")], "eu": held[cluster_lease("eu")]}
    assert sorted(leader.values()) == ["r1", "r2"], f"the replicas split the clusters: {leader}"
    for cluster, name in (("default", "orders"), ("eu", "payments")):
        logs = [d for d in daemons if f"cluster {cluster}: leading" in d.text()]
        assert len(logs) == 1, f"{cluster} was led by {len(logs)} daemons"
        assert g.live_jobs(cluster) == [second[name]], "one job per spec, never two"
    acted: dict[str, set[str]] = {}
    for rec in g.audit():
        if rec.get("job") in first and str(rec.get("action", "")).startswith("job."):
            acted.setdefault(rec["job"], set()).add(rec["actor"])
    assert acted == {"orders": {f"daemon:{leader['default']}"}, "payments": {f"daemon:{leader['eu']}"}}


TTL = 5.0


def test_kill_9_of_the_leader_mid_upgrade_the_other_takes_over_and_finishes_it(
    ha_world: MakeWorld, capsys: pytest.CaptureFixture[str]
) -> None:
    g, notify = ha_world({"lease_ttl_s": TTL})
    g.put_job("orders")
    g.synced()
    first = g.status("orders")["flinkJobId"]
    before = g.wait_counts("orders", first, at_least=10)
    # r1 leads (started first, no cap: it takes every cluster); its new job's start will stall
    r1 = g.replica(notify, "r1", FLINK_GITOPS_STALL_AT="run-sent")
    daemons = [r1]
    try:
        r1.wait_log("cluster default: leading", 120)
        r2 = g.replica(notify, "r2")
        daemons.append(r2)
        r2.wait_log("observing only", 120)
        g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])

        def mid_upgrade() -> bool | None:
            s = g.status("orders")
            return (s["openOperation"] is not None and any(j != first for j in g.live_jobs())) or None

        wait_until("r1 in the middle of the upgrade", mid_upgrade, 120)
        (started,) = g.live_jobs()
        r1.proc.send_signal(signal.SIGKILL)
        killed_at = time.monotonic()
        r1.proc.wait(30)
        r2.wait_log("cluster default: leading", 60)
        took_over = time.monotonic() - killed_at
        second = stable_job(g, "orders", other_than=first)
        stable_after = time.monotonic() - killed_at
    finally:
        codes = _stop_all(daemons)
    assert codes == [0], r2.text()[-3000:]
    with capsys.disabled():
        print(f"\n[ha] SIGKILL -> lease taken {took_over:.1f} s, job stable {stable_after:.1f} s")
    # the last renewal is at most TTL/3 before the kill, the next leadership pass at most a poll later
    assert took_over <= TTL + 1 + 3, f"takeover took {took_over:.1f} s (lease TTL {TTL} s)"
    assert second == started, "the job r1 started was adopted, not started twice"
    assert g.live_jobs() == [second], "exactly one job running"
    status = g.status("orders")
    assert status["openOperation"] is None
    assert g.restored_from(second) == status["savepoint"], "restored from the stop savepoint"
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    resumed = "resuming operation" in r2.text()
    assert resumed, r2.text()[-3000:]
