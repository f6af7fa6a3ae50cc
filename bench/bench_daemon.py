"""The idle daemon: its tick (git poll, no spec loading, one reconcile cycle, alerts, metrics) with
1,000 jobs in sync, and its RSS over a compressed hour (FAKE Flink REST servers on loopback).

Run: ``.venv/bin/python bench/bench_daemon.py [--jobs 1000] [--clusters 10] [--ticks 720]``.

A real local Git repository holds ``--jobs`` spec files (one repo jar); a SQLite store holds every
job as deployed and stable (filled in a process of its own, from the specs as the real loader
loads them); ``--clusters`` fake Flink servers list the jobs (bench/fake_flink.py, their own
process). Then the real ``service.loop.Daemon`` (the runtime of ``flink-gitops run``: store, audit
trail, one client per cluster, the Git source) ticks ``--ticks`` times back to back: each tick is
an ``ls-remote`` of the repository, no spec loading (the commit did not move), the leadership
pass, one cycle, the alert conditions and the metrics. 720 ticks are an hour at a 5 s poll
interval (the default 30 s makes an hour 120 ticks). Reported: the first tick (clone and load),
the idle tick (min / median / p95 / max), RSS after 10 ticks and at the end (VmRSS), and the
growth per 100 ticks over the second half. Target: the idle tick with 1,000 jobs under 0.5 s; RSS
growth over the second half under 1 MB per 100 ticks.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from bench_sync import _in_child, _serve, record_stable  # type: ignore[import-not-found]
from flink_gitops.clock import SystemClock
from flink_gitops.record.keys import generate_key_file
from flink_gitops.record.store import Store
from flink_gitops.settings import ClusterConfig, Settings
from flink_gitops.source.git import seed_repository
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import SpecLoader

SPEC = """apiVersion: flink-gitops/v1
kind: FlinkJob
metadata:
  name: {name}
  labels: {{team: t{team}}}
spec:
  cluster: c{cluster}
  job:
    jarURI: artifacts/app.jar
    entryClass: com.example.Job
    args: ["--id", "{i}"]
    parallelism: {parallelism}
    upgradeMode: savepoint
  flinkConfiguration:
    execution.checkpointing.interval: 30s
"""


def _make_repo(root: Path, size: int, clusters: int) -> Path:
    src = root / "src"
    (src / "artifacts").mkdir(parents=True)
    (src / "artifacts" / "app.jar").write_bytes(b"PK\x03\x04 bench jar\n" * 256)
    (src / "jobs").mkdir()
    for i in range(size):
        name = f"job-{i:05d}"
        (src / "jobs" / f"{name}.yaml").write_text(
            SPEC.format(name=name, team=i % 17, cluster=i % clusters, i=i, parallelism=1 + i % 4),
            encoding="utf-8",
        )
    seed_repository(src, root / "repo", message=f"{size} jobs")
    return root / "repo"


def _fill(repo: Path, db: Path, clusters: int) -> dict[str, dict[str, str]]:
    """Every job deployed and stable, as the reconciler records it (a process of its own)."""
    desired = SpecLoader().load(DirectoryTree(repo))
    assert not desired.errors, desired.errors[:3]
    store = Store.from_url(f"sqlite:///{db}")
    per_cluster: dict[str, dict[str, str]] = {f"c{k}": {} for k in range(clusters)}
    per_cluster |= record_stable(store, desired.valid_jobs().values(), None, lambda name: "RUNNING")
    store.close()
    return per_cluster


def _rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(size: int, clusters: int, ticks: int, workdir: Path) -> dict[str, Any]:
    from loguru import logger

    from flink_gitops.cli.sync import runtime
    from flink_gitops.service.loop import Daemon

    logger.remove()
    repo = _make_repo(workdir, size, clusters)
    db = workdir / "state" / "state.db"
    db.parent.mkdir()
    per_cluster = _in_child(_fill, repo, db, clusters)
    ctx = multiprocessing.get_context("spawn")
    manager = ctx.Manager()
    urls_q, stop = manager.Queue(), manager.Event()
    server = ctx.Process(target=_serve, args=(per_cluster, urls_q, stop))
    server.start()
    urls: dict[str, str] = urls_q.get(timeout=120)
    generate_key_file(workdir / "state" / "audit.key")
    settings = Settings.model_validate(
        {
            "state_dir": str(workdir / "state"),
            "clusters": {c: ClusterConfig(url=u).model_dump() for c, u in urls.items()},
            "git": {"url": str(repo), "poll_interval_s": 5},
            "audit": {"key_file": str(workdir / "state" / "audit.key")},
            "http": {"enabled": False},
            # the fake answers no checkpoint stats
            "sync": {"drift": "warn", "checkpoint_reads_per_cycle": 0},
        }
    )
    daemon = Daemon(
        settings,
        reload=lambda: settings,
        open_runtime=lambda s: runtime(s, daemon=True),
        clock=SystemClock(),
    )
    times: list[float] = []
    rss: list[float] = []
    try:
        for n in range(ticks):
            started = time.perf_counter()
            result = daemon.tick()
            times.append(time.perf_counter() - started)
            assert result is not None, "the tick ran no cycle"
            assert not result.plan.actions, [a.job for a in result.plan.actions][:3]
            assert result.in_sync, list(result.problems().items())[:3]
            rss.append(_rss_mb())
            if n == 0:
                assert len(result.plan.reports) == size
    finally:
        daemon.stop()
        daemon._close()  # what run() does on its way out (the bench calls tick() itself)
        stop.set()
        urls_q.get(timeout=60)
        server.join(30)
        manager.shutdown()
    idle = sorted(times[1:])
    half = len(rss) // 2
    growth = (rss[-1] - rss[half]) / max(1, len(rss) - 1 - half) * 100
    return {
        "jobs": size,
        "clusters": clusters,
        "ticks": ticks,
        "first_tick_s": round(times[0], 3),
        "idle_tick_s": {
            "min": round(idle[0], 4),
            "median": round(statistics.median(idle), 4),
            "p95": round(idle[int(len(idle) * 0.95)], 4),
            "max": round(idle[-1], 4),
        },
        "rss_mb_after_10": round(rss[min(9, len(rss) - 1)], 1),
        "rss_mb_end": round(rss[-1], 1),
        "rss_growth_mb_per_100_ticks_second_half": round(growth, 3),
        "wall_s": round(sum(times), 1),
    }


def _one(size: int, clusters: int, ticks: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory(prefix="bench-daemon-") as tmp:
        return run(size, clusters, ticks, Path(tmp))


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--jobs", type=int, default=1000)
    parser.add_argument("--clusters", type=int, default=10)
    parser.add_argument("--ticks", type=int, default=720)
    args = parser.parse_args()
    r = _in_child(_one, args.jobs, args.clusters, args.ticks)
    tick = r["idle_tick_s"]
    print(
        f"{args.jobs} jobs / {args.clusters} clusters, {args.ticks} ticks: first tick {r['first_tick_s']} s, "
        f"idle tick median {tick['median']} s (p95 {tick['p95']}, max {tick['max']}); RSS "
        f"{r['rss_mb_after_10']} MB after 10 ticks, {r['rss_mb_end']} MB at the end "
        f"({r['rss_growth_mb_per_100_ticks_second_half']:+} MB per 100 ticks over the second half)",
        flush=True,
    )
    print(json.dumps(r))
    assert tick["median"] < 0.5, "the idle tick is too slow"
    assert r["rss_growth_mb_per_100_ticks_second_half"] < 1.0, "RSS grows while idle"


if __name__ == "__main__":
    main()
