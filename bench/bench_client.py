"""Flink REST client speed against a real local Flink session cluster.

Run: ``.venv/bin/python bench/bench_client.py [--version 2.3.0] [--rounds 5] [--refresh-ms 200]``.

Per round, through :class:`flink_gitops.flink.client.FlinkClient` (poll interval 50 ms):
upload (the stateful test jar), run → all tasks RUNNING, savepoint (trigger + wait for the
location), stop-with-savepoint (trigger + wait), and a full upgrade (stop-with-savepoint, then
run from it with a new deterministic job id → all tasks RUNNING). Flink caches job views for
``web.refresh-interval`` (``--refresh-ms``), which bounds how fast a state change is seen.
Figures are printed as one JSON object (min / median / max seconds) and a readable summary.
"""

from __future__ import annotations

import argparse
import json
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.ids import deterministic_job_id, new_trigger_id
from flink_gitops.flink.local import LocalFlinkCluster, ensure_flink
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.testjobs import JobJars, build_test_jars

T = TypeVar("T")
POLL_S = 0.05


def timed(samples: dict[str, list[float]], name: str, fn: Callable[[], T]) -> T:
    started = time.perf_counter()
    result = fn()
    samples.setdefault(name, []).append(time.perf_counter() - started)
    return result


def one_round(client: FlinkClient, jars: JobJars, out: Path, samples: dict[str, list[float]]) -> None:
    jar_id = timed(samples, "upload", lambda: client.upload_jar(jars.stateful))

    def request(tag: str, savepoint: str | None = None) -> RunRequest:
        return RunRequest(
            entry_class=jars.stateful_entry,
            args=["--out", str(out)],
            job_id=deterministic_job_id("bench", uuid.uuid4().hex, tag),
            savepoint_path=savepoint,
        )

    def run_running(req: RunRequest) -> str:
        job = client.run(jar_id, req).jobid
        client.wait_for_job_state(job, {"RUNNING"}, 120, poll_s=POLL_S, all_tasks_running=True)
        return job

    def savepoint(job: str) -> str:
        trigger = client.trigger_savepoint(job, trigger_id=new_trigger_id())
        return client.wait_for_savepoint(job, trigger, poll_s=POLL_S)

    def stop(job: str) -> str:
        trigger = client.stop_with_savepoint(job, trigger_id=new_trigger_id())
        return client.wait_for_savepoint(job, trigger, poll_s=POLL_S)

    def upgrade(old: str) -> str:
        return run_running(request("c", stop(old)))

    first = timed(samples, "run_to_running", lambda: run_running(request("a")))
    taken = timed(samples, "savepoint", lambda: savepoint(first))
    timed(samples, "stop_with_savepoint", lambda: stop(first))
    second = run_running(request("b"))
    third = timed(samples, "full_upgrade", lambda: upgrade(second))
    client.cancel(third)
    client.wait_for_job_state(third, {"CANCELED"}, 120, poll_s=POLL_S)
    client.wait_for_disposal(client.dispose_savepoint(taken), poll_s=POLL_S)
    client.delete_jar(jar_id)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", default="2.3.0")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--refresh-ms", type=int, default=200)
    args = parser.parse_args()

    flink_home = ensure_flink(args.version)
    jars = build_test_jars(ensure_flink("2.3.0"))
    workdir = Path(tempfile.mkdtemp(prefix="bench-client-"))
    samples: dict[str, list[float]] = {}
    try:
        cluster = LocalFlinkCluster(flink_home, workdir, refresh_interval_ms=args.refresh_ms)
        with cluster, FlinkClient(cluster.rest_url, name="bench") as client:
            client.version()
            for round_no in range(args.rounds):
                one_round(client, jars, workdir / f"out-{round_no}", samples)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    figures = {
        name: {
            "min_s": round(min(v), 3),
            "median_s": round(statistics.median(v), 3),
            "max_s": round(max(v), 3),
            "n": len(v),
        }
        for name, v in samples.items()
    }
    result = {"flink": args.version, "refresh_ms": args.refresh_ms, "figures": figures}
    print(json.dumps(result))
    for name, f in figures.items():
        spread = f"min {f['min_s']:.3f}, max {f['max_s']:.3f}, n={f['n']}"
        print(f"{name:>20}: median {f['median_s']:.3f} s  ({spread})")


if __name__ == "__main__":
    main()
