"""A steady-state reconcile cycle (no drift) at scale, against FAKE Flink REST servers on loopback.

Run: ``.venv/bin/python bench/bench_sync.py [--jobs 1000 10000] [--clusters 10] [--rounds 5]``.

For each size: ``--clusters`` fake Flink servers (bench/fake_flink.py) list the jobs, split evenly;
a SQLite store holds every job as deployed and stable (its reconciled spec recorded as the
reconciler writes it); the desired state is the same specs, loaded once (the daemon keeps its
loader: a poll without a new commit does not reload). Then ``Reconciler.cycle`` runs ``--rounds``
times in this process: observe (one ``GET /jobs/overview`` and one ``GET /overview`` for the
slots per cluster, concurrently; ``/config`` and ``/jobmanager/config`` once per client), read the
records, plan, record the cycle. Reported: wall time per cycle (min / median / max), REST calls
per cycle and per cluster, and the process's peak RSS. Targets: 1,000 jobs under 250 ms with
exactly two REST calls per cluster and cycle; 10,000 under 2.5 s; RSS under 200 MB.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import resource
import statistics
import tempfile
import time
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from fake_flink import FakeFlinkServer  # type: ignore[import-not-found]
from flink_gitops.clock import SystemClock
from flink_gitops.execute.cycle import Reconciler, Revision
from flink_gitops.execute.journal import spec_record
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.ids import job_id_for
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.keys import KeyFileSource, generate_key_file
from flink_gitops.record.store import JobUpdate, Store, cluster_lease
from flink_gitops.settings import ClusterConfig, Settings, SyncConfig
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.loader import DesiredJob, DesiredState, JarRef
from flink_gitops.specs.model import FlinkJob

JAR = "sha256:" + "ab" * 32


def _spec(i: int, clusters: int) -> DesiredJob:
    name = f"job-{i:05d}"
    model = FlinkJob.model_validate(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": name, "labels": {"team": f"t{i % 17}"}},
            "spec": {
                "cluster": f"c{i % clusters}",
                "job": {
                    "jarURI": "artifacts/app.jar",
                    "entryClass": "com.example.Job",
                    "args": ["--id", str(i)],
                    "parallelism": 1 + i % 4,
                    "upgradeMode": "savepoint",
                },
                "flinkConfiguration": {"execution.checkpointing.interval": "30s"},
            },
        }
    )
    return DesiredJob(
        name,
        f"jobs/{name}.yaml",
        1,
        "FlinkJob",
        model,
        JarRef("repo", "artifacts/app.jar", "ab" * 32),
        JAR,
        spec_hash(model, JAR),
    )


def record_stable(
    store: Store, jobs: Iterable[DesiredJob], commit: str | None, live: Callable[[str], str]
) -> dict[str, dict[str, str]]:
    """Record every job as deployed and stable, as the reconciler would have; cluster → Flink job
    id → the state its fake lists (``live(name)``: RUNNING, or CANCELED for drift)."""
    per_cluster: dict[str, dict[str, str]] = {}
    by_cluster: dict[str, list[DesiredJob]] = {}
    for d in jobs:
        by_cluster.setdefault(d.spec.spec.cluster, []).append(d)
    for cluster, listed in by_cluster.items():
        lease = store.leases.acquire("bench-fill", 3600, name=cluster_lease(cluster))
        assert lease is not None
        with store.unit(epoch=lease.epoch, lease=cluster_lease(cluster)) as uow:
            for d in listed:
                uow.jobs.create(d.name, cluster, file=d.file)
                job = uow.jobs.next_generation(d.name, by=2)
                jid = job_id_for(job.uid, job.generation - 1)
                record = spec_record(RunSpec.of(d, commit).to_record())
                # what the executor records once a start is stable (the fake lists jid[:8], 1 task)
                deployed = {"job_id": jid, "name": jid[:8], "tasks": 1}
                update = JobUpdate(
                    state=JobLifecycle.STABLE,
                    flink_job_id=jid,
                    last_reconciled=record,
                    last_stable=record,
                    fingerprint=deployed,
                )
                uow.jobs.update(d.name, update)
                per_cluster.setdefault(cluster, {})[jid] = live(d.name)
        store.leases.release(lease)
    return per_cluster


def _fill(
    size: int, clusters: int, db: Path, drifted: float = 0.0
) -> tuple[dict[str, dict[str, str]], float]:
    """Write every job as deployed and stable, as the reconciler would have (a process of its own)."""
    store = Store.from_url(f"sqlite:///{db}")
    t0 = time.perf_counter()
    every = round(1 / drifted) if drifted else 0

    def live(name: str) -> str:
        # live drift: a share of the jobs were cancelled by hand
        return "CANCELED" if every and int(name.rsplit("-", 1)[1]) % every == 0 else "RUNNING"

    per_cluster: dict[str, dict[str, str]] = {f"c{k}": {} for k in range(clusters)}
    per_cluster |= record_stable(store, (_spec(i, clusters) for i in range(size)), "c" * 40, live)
    store.close()
    return per_cluster, time.perf_counter() - t0


def run(size: int, clusters: int, rounds: int, workdir: Path, drifted: float = 0.0) -> dict[str, object]:
    """``drifted``: the share of jobs cancelled by hand (drift: warn, so reported, never acted on)."""
    from loguru import logger

    logger.remove()
    ctx = multiprocessing.get_context("spawn")
    db = workdir / "state.db"
    per_cluster, fill_s = _in_child(_fill, size, clusters, db, drifted)
    manager = ctx.Manager()
    urls_q, stop = manager.Queue(), manager.Event()
    server = ctx.Process(target=_serve, args=(per_cluster, urls_q, stop))
    server.start()
    del per_cluster
    urls: dict[str, str] = urls_q.get(timeout=120)
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    # the daemon's side: its desired state, its store, one client per cluster
    desired = {d.name: d for d in (_spec(i, clusters) for i in range(size))}
    state = DesiredState(
        "c" * 40, desired, (), frozenset(), {d.file: (d.name,) for d in desired.values()}, ()
    )
    store = Store.from_url(f"sqlite:///{db}")
    settings = Settings(
        state_dir=workdir / "state",
        clusters={c: ClusterConfig(url=u) for c, u in urls.items()},
        # the fake answers no checkpoint stats; tracking (<= 50 GETs a cycle) is the same either way
        sync=SyncConfig(drift="warn", checkpoint_reads_per_cycle=0),
    )
    clock = SystemClock()
    generate_key_file(workdir / "audit.key")
    audit = AuditTrail.open(
        store, KeyFileSource(workdir / "audit.key"), head_file=workdir / "head", clock=clock, actor="bench"
    )
    clients = {c: FlinkClient(u, name=c, clock=clock) for c, u in urls.items()}
    reconciler = Reconciler(settings, store, audit, clients, clock, actor="bench", instance="bench")
    revision = Revision(state, state.commit)
    times: list[float] = []
    try:
        for _ in range(rounds):
            started = time.perf_counter()
            result = reconciler.cycle(revision)
            times.append(time.perf_counter() - started)
            assert not result.plan.actions
            drifting = sum(1 for r in result.plan.reports.values() if r.drift is not None)
            assert drifting == sum(1 for i in range(size) if drifted and i % round(1 / drifted) == 0)
            assert result.in_sync == (drifting == 0), list(result.problems().items())[:3]
    finally:
        for c in clients.values():
            c.close()
        store.close()
        stop.set()
        requests: dict[str, int] = urls_q.get(timeout=60)
        server.join(30)
        manager.shutdown()
    return {
        "jobs": size,
        "clusters": clusters,
        "fill_s": round(fill_s, 2),
        "drifted": drifted,
        "first_cycle_s": round(times[0], 4),
        "steady_cycle_s": round(statistics.median(times[1:] or times), 4),
        "cycle_s": {
            "min": round(min(times), 4),
            "median": round(statistics.median(times), 4),
            "max": round(max(times), 4),
        },
        "rest_calls_per_cycle": sorted({n // rounds for n in requests.values()} | set()),
        "rest_calls_total": sum(requests.values()),
        "rest_calls_per_cycle_all_clusters": sum(requests.values()) / rounds,
        "rss_before_mb": round(rss_before, 1),
        "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
    }


def _serve(per_cluster: dict[str, dict[str, str]], urls: Any, stop: Any) -> None:
    """The fake clusters, in a process of their own (their memory is not the daemon's)."""
    servers = {c: FakeFlinkServer(jobs).start() for c, jobs in per_cluster.items()}
    urls.put({c: s.url for c, s in servers.items()})
    stop.wait()
    urls.put({c: s.total_requests() for c, s in servers.items()})
    for s in servers.values():
        s.stop()


def _one(size: int, clusters: int, rounds: int, drifted: float = 0.0) -> dict[str, object]:
    with tempfile.TemporaryDirectory(prefix="bench-sync-") as tmp:
        return run(size, clusters, rounds, Path(tmp), drifted)


def _call(out: Any, fn: Any, args: tuple[Any, ...]) -> None:
    out.put(fn(*args))


def _in_child(fn: Any, *args: Any) -> Any:
    """``fn(*args)`` in a fresh (non-daemonic) process: its memory is not this one's."""
    ctx = multiprocessing.get_context("spawn")
    out = ctx.Queue()
    proc = ctx.Process(target=_call, args=(out, fn, args))
    proc.start()
    result = out.get(timeout=1800)
    proc.join(60)
    return result


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, nargs="+", default=[1000, 10000])
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    results = []
    for size in args.jobs:
        # each size in a fresh process, so its peak RSS is its own
        r = _in_child(_one, size, args.clusters, args.rounds)
        results.append(r)
        cycle = r["cycle_s"]
        assert isinstance(cycle, dict)
        print(
            f"{size} jobs / {args.clusters} clusters: cycle median {cycle['median']} s "
            f"(min {cycle['min']}, max {cycle['max']}), REST calls per cycle {r['rest_calls_per_cycle']}, "
            f"peak RSS {r['peak_rss_mb']} MB (fill {r['fill_s']} s in a separate process)",
            flush=True,
        )
    print(json.dumps(results))


if __name__ == "__main__":
    main()
