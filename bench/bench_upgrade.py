"""One savepoint upgrade of the StatefulCounter job, three ways, on one real local Flink cluster.

Run: ``.venv/bin/python bench/bench_upgrade.py [--rounds 5] [--stability-s 1] [--refresh-ms 200]``.

"All tasks RUNNING" is seen the same way for all three: a watcher thread in this process polls
``/jobs/overview`` every 50 ms (Flink caches job views for ``--refresh-ms`` anyway) for a job that
was not listed before and that ``/jobs/:id`` shows RUNNING with every vertex RUNNING.

1. ``flink-gitops sync --once`` as a subprocess (a config file, a local Git repository made with
   the ``git`` CLI, an audit key from ``flink-gitops keys generate``, ``sync.stability_s`` small):
   each round commits a changed ``--rate`` and times, from just before the process is spawned,
   its exit and the watcher's RUNNING moment. The operation's recorded steps (SQLite
   ``operations.steps``: wall-clock ``at`` of each step, written *before* its side effect) split
   it: start -> ``begin`` (Python start, imports, Git, store, observe, plan), ``stop-sent`` ->
   ``stopped`` -> ``run-sent:job_id`` -> RUNNING; the upgrade phase is ``stop-sent`` -> RUNNING,
   the stability confirmation sync adds is RUNNING -> exit (``stable:job_id`` in between). After
   each round a no-op ``sync --once`` (nothing to do) gives its fixed cost.
2. Raw REST through :class:`flink_gitops.flink.client.FlinkClient`: stop-with-savepoint (our trigger
   id) -> wait for the savepoint -> upload the jar -> run from it with a new job id (NO_CLAIM, as
   the daemon) -> wait for all tasks RUNNING; with the client's default poll interval (the one the
   daemon uses) and with 50 ms.
3. The Flink CLI: ``flink stop --savepointPath DIR JOB`` then ``flink run -d -s SP -c ENTRY JAR``
   (``FLINK_CONF_DIR`` = the cluster's conf, so both talk to it).

A raw REST upgrade first warms the cluster's JVMs up. Figures: one JSON object (min / median / max
seconds each) and a readable summary with the issue's targets. Imports nothing from tests/.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import yaml

from flink_gitops.flink.client import DEFAULT_POLL_S, FlinkClient
from flink_gitops.flink.ids import deterministic_job_id, new_trigger_id
from flink_gitops.flink.local import LocalFlinkCluster, ensure_flink
from flink_gitops.flink.models import RunRequest
from flink_gitops.flink.testjobs import JobJars, build_test_jars

ROOT = Path(__file__).resolve().parent.parent
JOBS_SRC = ROOT / "tests" / "jobs" / "src"
CLI = [sys.executable, "-m", "flink_gitops"]
JOB = "counter"
WATCH_S = 0.05
FAST_POLL_S = 0.05
TIMEOUT_S = 180.0


def _git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=bench", "-c", "user.email=bench@localhost", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def _stats(values: list[float]) -> dict[str, float | int]:
    return {
        "min_s": round(min(values), 3),
        "median_s": round(statistics.median(values), 3),
        "max_s": round(max(values), 3),
        "n": len(values),
    }


class Watcher(threading.Thread):
    """Polls the cluster until a job not in ``old`` runs with all tasks; records when (wall clock)."""

    def __init__(self, rest_url: str, old: set[str]) -> None:
        super().__init__(daemon=True)
        self.rest_url = rest_url
        self.old = old
        self.found: str | None = None
        self.at: float | None = None  # time.time() when seen
        self.stop_event = threading.Event()

    def run(self) -> None:
        with FlinkClient(self.rest_url, name="watch") as client:
            while not self.stop_event.is_set():
                for job in client.jobs_overview().jobs:
                    if job.state != "RUNNING" or job.jid in self.old:
                        continue
                    details = client.find_job(job.jid)
                    if details is not None and details.all_tasks_running:
                        self.at, self.found = time.time(), job.jid
                        return
                self.stop_event.wait(WATCH_S)

    def result(self, job_id: str | None = None) -> tuple[str, float]:
        """The new job and when it was seen running (waits for it); ``job_id``: the one expected."""
        self.join(TIMEOUT_S)
        self.stop_event.set()
        if self.at is None or self.found is None:
            raise RuntimeError("no new job was seen running with all tasks")
        if job_id is not None and self.found != job_id:
            raise RuntimeError(f"job {self.found} ran, not the expected {job_id}")
        return self.found, self.at


@dataclass
class Bench:
    cluster: LocalFlinkCluster
    jars: JobJars
    root: Path
    stability_s: float
    samples: dict[str, list[float]] = field(default_factory=dict)
    current: str | None = None  # the Flink job id running now
    client: FlinkClient = field(init=False)

    def __post_init__(self) -> None:
        self.out = self.root / "out"
        self.repo = self.root / "repo"
        self.state = self.root / "state"
        self.config = self.root / "config.yaml"
        self.key = self.root / "audit.key"

    def add(self, name: str, value: float) -> None:
        self.samples.setdefault(name, []).append(value)

    def args(self, rate: int) -> list[str]:
        return ["--out", str(self.out), "--rate", str(rate), "--keys", "4"]

    # --- 1. sync --once --------------------------------------------------------------------------

    def setup_gitops(self) -> None:
        config = {
            "state_dir": str(self.state),
            "clusters": {"default": {"url": self.cluster.rest_url}},
            "git": {"url": str(self.repo), "ref": "main"},
            "audit": {"key_file": str(self.key)},
            "sync": {"stability_s": self.stability_s, "readiness_timeout_s": 60},
        }
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")
        self.cli("keys", "generate", "--out", str(self.key))
        self.repo.mkdir()
        _git(self.repo, "init", "-q", "-b", "main")
        (self.repo / "artifacts").mkdir()
        shutil.copyfile(self.jars.stateful, self.repo / "artifacts" / "counter.jar")
        self.commit_spec(100)

    def commit_spec(self, rate: int) -> None:
        doc = {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": JOB},
            "spec": {
                "cluster": "default",
                "job": {
                    "jarURI": "artifacts/counter.jar",
                    "entryClass": self.jars.stateful_entry,
                    "args": self.args(rate),
                    "parallelism": 1,
                    "upgradeMode": "savepoint",
                },
            },
        }
        (self.repo / "jobs").mkdir(exist_ok=True)
        (self.repo / "jobs" / f"{JOB}.yaml").write_text(yaml.safe_dump(doc, sort_keys=False), "utf-8")
        _git(self.repo, "add", "-A")
        _git(self.repo, "commit", "-q", "-m", f"rate {rate}")

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(f"flink-gitops {' '.join(args)} exited {proc.returncode}:\n{proc.stderr}")
        return proc

    def last_steps(self) -> list[tuple[str, float]]:
        with sqlite3.connect(self.state / "state.db") as db:
            row = db.execute(
                "SELECT steps FROM operations WHERE name = ? ORDER BY started_at DESC LIMIT 1", (JOB,)
            ).fetchone()
        steps: list[dict[str, Any]] = json.loads(row[0])
        return [(s["step"], datetime.fromisoformat(s["at"]).timestamp()) for s in steps]

    def sync_round(self, rate: int) -> None:
        self.commit_spec(rate)
        old = {j.jid for j in self.client.jobs_overview().jobs}
        watcher = Watcher(self.cluster.rest_url, old)
        watcher.start()
        wall0, t0 = time.time(), time.perf_counter()
        proc = subprocess.run(
            [*CLI, "--config", str(self.config), "sync", "--once"],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            check=False,
        )
        total = time.perf_counter() - t0
        wall_exit = wall0 + total
        if proc.returncode != 0:
            watcher.stop_event.set()
            raise RuntimeError(f"sync --once exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}")
        found, running = watcher.result()
        steps = dict(self.last_steps())
        for needed in ("begin", "stop-sent", "stopped", "run-sent:job_id", "stable:job_id"):
            if needed not in steps:
                raise RuntimeError(f"the upgrade's operation has no {needed!r} step: {sorted(steps)}")
        self.add("sync.total_to_exit", total)
        self.add("sync.start_to_running", running - wall0)
        self.add("sync.start_to_begin", steps["begin"] - wall0)
        self.add("sync.begin_to_stop_sent", steps["stop-sent"] - steps["begin"])
        self.add("sync.stop_sent_to_stopped", steps["stopped"] - steps["stop-sent"])
        self.add("sync.stopped_to_run_sent", steps["run-sent:job_id"] - steps["stopped"])
        self.add("sync.run_sent_to_running", running - steps["run-sent:job_id"])
        self.add("sync.upgrade_phase", running - steps["stop-sent"])
        self.add("sync.running_to_stable_step", steps["stable:job_id"] - running)
        self.add("sync.stability_confirmation", wall_exit - running)
        self.add("sync.stable_step_to_exit", wall_exit - steps["stable:job_id"])
        self.current = found

    def noop_round(self) -> None:
        """Everything in sync: the fixed cost of one ``sync --once`` (start, Git, store, observe, exit)."""
        t0 = time.perf_counter()
        self.cli("sync", "--once")
        self.add("sync.noop_total", time.perf_counter() - t0)

    def run_sync(self, rounds: int) -> None:
        self.setup_gitops()
        self.cli("sync", "--once")  # the first deploy, not measured
        live = [j.jid for j in self.client.jobs_overview().jobs if j.state == "RUNNING"]
        self.current = live[0]
        for n in range(rounds):
            self.sync_round(101 + n)
            self.noop_round()

    # --- 2. raw REST -----------------------------------------------------------------------------

    def watch(self) -> Watcher:
        watcher = Watcher(self.cluster.rest_url, {j.jid for j in self.client.jobs_overview().jobs})
        watcher.start()
        return watcher

    def rest_upgrade(self, poll_s: float, tag: str | None = None) -> None:
        old = self.current
        assert old is not None
        c = self.client
        watcher = self.watch()
        wall0 = time.time()
        trigger = c.stop_with_savepoint(old, trigger_id=new_trigger_id())
        location = c.wait_for_savepoint(old, trigger, poll_s=poll_s)
        saved = time.time()
        jar_id = c.upload_jar(self.jars.stateful)
        request = RunRequest(
            entry_class=self.jars.stateful_entry,
            args=self.args(100),
            parallelism=1,
            savepoint_path=location,
            claim_mode="NO_CLAIM",
            job_id=deterministic_job_id("bench-upgrade", uuid.uuid4().hex),
        )
        run_sent = time.time()
        new = c.run(jar_id, request).jobid
        c.wait_for_job_state(new, {"RUNNING"}, TIMEOUT_S, poll_s=poll_s, all_tasks_running=True)
        waited = time.time()
        _, running = watcher.result(new)
        c.delete_jar(jar_id)
        self.current = new
        if tag is not None:
            self.add(f"{tag}.upgrade_phase", running - wall0)
            self.add(f"{tag}.stop_to_savepoint", saved - wall0)
            self.add(f"{tag}.savepoint_to_run_sent", run_sent - saved)
            self.add(f"{tag}.run_sent_to_running", running - run_sent)
            self.add(f"{tag}.client_wait_returned", waited - wall0)

    # --- 3. Flink CLI ----------------------------------------------------------------------------

    def flink_env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_", "_FLINK"))}
        env.update(FLINK_HOME=str(self.cluster.flink_home), FLINK_CONF_DIR=str(self.cluster.conf_dir))
        return env

    def flink(self, *args: str) -> str:
        proc = subprocess.run(
            [str(self.cluster.flink_home / "bin" / "flink"), *args],
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
            env=self.flink_env(),
            check=False,
        )
        if proc.returncode != 0:
            raise RuntimeError(
                f"flink {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc.stdout

    def cli_upgrade(self) -> None:
        old = self.current
        assert old is not None
        watcher = self.watch()
        t0 = time.perf_counter()
        wall0 = time.time()
        stopped = self.flink("stop", "--savepointPath", self.cluster.savepoint_dir.as_uri(), old)
        t_stop = time.perf_counter() - t0
        found = re.search(r"Savepoint completed\. Path: (\S+)", stopped)
        if found is None:
            raise RuntimeError(f"flink stop printed no savepoint path:\n{stopped}")
        ran = self.flink(
            "run", "-d", "-s", found.group(1), "-c", self.jars.stateful_entry,
            str(self.jars.stateful), *self.args(100),
        )  # fmt: skip
        t_run = time.perf_counter() - t0 - t_stop
        job = re.search(r"JobID ([0-9a-f]{32})", ran)
        if job is None:
            raise RuntimeError(f"flink run printed no job id:\n{ran}")
        self.current, running = watcher.result(job.group(1))
        self.add("cli.total_to_running", running - wall0)
        self.add("cli.flink_stop", t_stop)
        self.add("cli.flink_run", t_run)

    # --- the run ---------------------------------------------------------------------------------

    def run(self, rounds: int) -> None:
        with FlinkClient(self.cluster.rest_url, name="bench") as self.client:
            self.warm_up()
            self.run_sync(rounds)
            for _ in range(rounds):
                self.rest_upgrade(DEFAULT_POLL_S, "rest")
            for _ in range(rounds):
                self.rest_upgrade(FAST_POLL_S, "rest_poll_50ms")
            for _ in range(rounds):
                self.cli_upgrade()
            assert self.current is not None
            self.client.cancel(self.current)

    def warm_up(self) -> None:
        jar_id = self.client.upload_jar(self.jars.stateful)
        first = RunRequest(
            entry_class=self.jars.stateful_entry,
            args=self.args(100),
            job_id=deterministic_job_id("bench-warm", uuid.uuid4().hex),
        )
        job = self.client.run(jar_id, first).jobid
        self.client.wait_for_job_state(job, {"RUNNING"}, TIMEOUT_S, all_tasks_running=True)
        self.client.delete_jar(jar_id)
        self.current = job
        self.rest_upgrade(FAST_POLL_S)
        self.client.cancel(self.current)
        self.client.wait_for_job_state(self.current, {"CANCELED"}, TIMEOUT_S)
        self.current = None


def summary(figures: dict[str, dict[str, float | int]], stability_s: float) -> str:
    lines = [
        f"{name:>30}: median {f['median_s']:.3f} s  (min {f['min_s']:.3f}, max {f['max_s']:.3f}, n={f['n']})"
        for name, f in figures.items()
    ]
    med = {name: float(f["median_s"]) for name, f in figures.items()}
    ratio = med["sync.upgrade_phase"] / med["rest.upgrade_phase"]
    ratio_fast = med["sync.upgrade_phase"] / med["rest_poll_50ms.upgrade_phase"]
    speedup = med["cli.total_to_running"] / med["sync.start_to_running"]
    lines += [
        f"target 1: sync upgrade phase / raw REST = {ratio:.2f}x (default poll), "
        f"{ratio_fast:.2f}x (50 ms poll); target <= 1.10x",
        f"target 2: Flink CLI / whole sync --once to RUNNING = {speedup:.2f}x; target >= 3x",
        f"stability confirmation sync adds after RUNNING (stability_s={stability_s:g}): "
        f"median {med['sync.stability_confirmation']:.3f} s",
    ]
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--stability-s", type=float, default=1.0)
    parser.add_argument("--refresh-ms", type=int, default=200)
    args = parser.parse_args()

    flink_home = ensure_flink("2.3.0")
    jars = build_test_jars(flink_home, src=JOBS_SRC)
    workdir = Path(tempfile.mkdtemp(prefix="bench-upgrade-"))
    try:
        cluster = LocalFlinkCluster(flink_home, workdir / "flink", refresh_interval_ms=args.refresh_ms)
        bench = Bench(cluster, jars, workdir, args.stability_s)
        with cluster:
            bench.run(args.rounds)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)

    figures = {name: _stats(v) for name, v in bench.samples.items()}
    result = {
        "flink": "2.3.0",
        "refresh_ms": args.refresh_ms,
        "stability_s": args.stability_s,
        "daemon_poll_s": DEFAULT_POLL_S,
        "figures": figures,
        "samples": {name: [round(x, 3) for x in v] for name, v in bench.samples.items()},
    }
    print(json.dumps(result))
    print(summary(figures, args.stability_s))


if __name__ == "__main__":
    main()
