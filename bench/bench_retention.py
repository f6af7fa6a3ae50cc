"""Savepoint retention's cost per cycle at scale (SQLite, in this process, no Flink needed).

Run: ``.venv/bin/python bench/bench_retention.py [--jobs 10000] [--per-job 5] [--over 0.01] [--rounds 5]``.

A store holds ``--jobs`` jobs, each with ``--per-job`` undisposed savepoints (one current), and
``--over`` of them with maxCount + 2 (so two each to dispose, as local ``file://`` directories).
Reported, median of ``--rounds``: the aggregate query alone (count and oldest per job), for every
job with more than one savepoint and as retention asks it (only jobs past the loosest limits); a whole
retention pass when no job is over its limits; the first pass over the ``--over`` jobs (their
history read, the disposals audited, deleted and recorded); and, for comparison, reading every
job's history one by one (what a pass without the aggregate would cost).
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from flink_gitops.clock import SystemClock
from flink_gitops.execute.retention import Retention
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.keys import KeyFileSource, generate_key_file
from flink_gitops.record.store import (
    JobLifecycle,
    JobUpdate,
    NewSavepoint,
    SnapshotKind,
    SnapshotOrigin,
    Store,
    cluster_lease,
)
from flink_gitops.specs.hashing import spec_hash
from flink_gitops.specs.loader import DesiredJob, DesiredState, JarRef
from flink_gitops.specs.model import FlinkJob

JAR = "sha256:" + "ab" * 32
MAX_COUNT = 10


def _desired(size: int) -> DesiredState:
    jobs: dict[str, DesiredJob | Any] = {}
    for i in range(size):
        name = f"job-{i:05d}"
        model = FlinkJob.model_validate(
            {
                "apiVersion": "flink-gitops/v1",
                "kind": "FlinkJob",
                "metadata": {"name": name},
                "spec": {
                    "job": {"jarURI": "artifacts/app.jar", "entryClass": "com.example.Job"},
                    "savepoints": {"maxCount": MAX_COUNT, "maxAge": "7d"},
                },
            }
        )
        jobs[name] = DesiredJob(
            name,
            f"jobs/{name}.yaml",
            1,
            "FlinkJob",
            model,
            JarRef("repo", "artifacts/app.jar", "ab" * 32),
            JAR,
            spec_hash(model, JAR),
        )
    return DesiredState("c" * 40, jobs, (), frozenset(), {j.file: (n,) for n, j in jobs.items()}, ())


def _fill(store: Store, size: int, per_job: int, over: float, root: Path) -> int:
    lease = store.leases.acquire("bench", 10**6, name=cluster_lease("default"))
    assert lease is not None
    every = max(1, round(1 / over)) if over > 0 else 0
    n_over = 0
    with store.unit(epoch=lease.epoch, lease=lease.name) as uow:
        for i in range(size):
            name = f"job-{i:05d}"
            uow.jobs.create(name, "default")
            uow.jobs.update(name, JobUpdate(state=JobLifecycle.STABLE, flink_job_id=f"{i:032x}"))
            count = per_job
            if every and i % every == 0:
                count, n_over = MAX_COUNT + 2, n_over + 1
            for k in range(count):
                if count > per_job:  # the ones to dispose are real directories
                    directory = root / name / f"savepoint-{k}"
                    directory.mkdir(parents=True)
                    (directory / "_metadata").write_bytes(b"m")
                    path = directory.as_uri()
                else:
                    path = f"s3://bench/{name}/savepoint-{k}"
                uow.snapshots.record(
                    NewSavepoint(
                        name,
                        path,
                        SnapshotKind.SAVEPOINT,
                        SnapshotOrigin.PERIODIC,
                        make_current=k == count - 1,
                    )
                )
    store.leases.release(lease)
    return n_over


class _NoFlink:
    """Every savepoint to dispose here is a local directory: Flink is never asked."""

    def dispose_savepoint(self, savepoint_path: str) -> str:
        raise AssertionError(f"Flink asked to dispose {savepoint_path}")

    def wait_for_disposal(self, trigger_id: str, timeout: float | None = None) -> None:
        raise AssertionError("Flink asked")


def _median(fn: Any, rounds: int) -> float:
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def run(size: int, per_job: int, over: float, rounds: int, workdir: Path) -> dict[str, Any]:
    from loguru import logger

    logger.remove()
    store = Store.from_url(f"sqlite:///{workdir / 'state.db'}")
    t0 = time.perf_counter()
    n_over = _fill(store, size, per_job, over, workdir / "sp")
    fill_s = time.perf_counter() - t0
    rows = sum(n for n, _ in store.snapshots.retention_stats(more_than=0).values())
    desired = _desired(size)
    generate_key_file(workdir / "audit.key")
    clock = SystemClock()
    audit = AuditTrail.open(
        store, KeyFileSource(workdir / "audit.key"), head_file=workdir / "head", clock=clock, actor="bench"
    )
    lease = store.leases.acquire("bench", 10**6, name=cluster_lease("default"))
    assert lease is not None
    retention = Retention(
        store,
        audit,
        {"default": _NoFlink()},
        clock,
        actor="bench",
        lead=lambda _c: {},
        epoch_of=lambda _c: lease.epoch,
    )
    stats_s = _median(store.snapshots.retention_stats, rounds)  # every job with more than one
    cutoff = clock.now() - timedelta(days=7)
    filtered_s = _median(
        lambda: store.snapshots.retention_stats(more_than=MAX_COUNT, older_than=cutoff), rounds
    )
    t0 = time.perf_counter()
    first = retention.run(desired)
    first_s = time.perf_counter() - t0
    assert len(first.disposed) == 2 * n_over, (len(first.disposed), first.failed[:3])
    steady_s = _median(lambda: retention.run(desired), rounds)
    fresh = Retention(
        store,
        audit,
        {"default": _NoFlink()},
        clock,
        actor="bench",
        lead=lambda _c: {},
        epoch_of=lambda _c: lease.epoch,
    )
    fresh_s = _median(lambda: fresh.run(desired), 1)  # a new process: no settled jobs remembered
    names = sorted(desired.jobs)
    every_s = _median(lambda: [store.snapshots.history(n) for n in names], 1)
    store.close()
    return {
        "jobs": size,
        "savepoint_rows": rows,
        "jobs_over_limits": n_over,
        "fill_s": round(fill_s, 1),
        "aggregate_query_all_jobs_s": round(stats_s, 4),
        "aggregate_query_over_limits_s": round(filtered_s, 4),
        "pass_nothing_to_do_s": round(steady_s, 4),
        "first_pass_with_disposals_s": round(first_s, 3),
        "disposed": len(first.disposed),
        "pass_new_process_s": round(fresh_s, 4),
        "every_history_one_by_one_s": round(every_s, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--per-job", type=int, default=5)
    parser.add_argument("--over", type=float, default=0.01)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-retention-") as tmp:
        result = run(args.jobs, args.per_job, args.over, args.rounds, Path(tmp))
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
