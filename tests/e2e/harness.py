"""The daemon's CLI end to end: a real Git remote (git daemon), real Flink, the CLI as a subprocess.

:class:`Gitops` owns one test's world: a work repository pushing to a bare
remote served by ``git daemon`` on loopback, a config file pointing the
daemon at it and at the real Flink session cluster(s), an audit key, and a
state directory (SQLite). Each ``sync()`` is a fresh ``flink-gitops sync
--once`` process, as an operator or a cron job would run it.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import STATEFUL_ENTRY, JobJars
from tests.fixtures.flink import read_counts, wait_until
from tests.fixtures.gitserver import Remote

CLI = [sys.executable, "-m", "flink_gitops"]
#: seconds a sync subprocess may take (a savepoint upgrade here takes ~2 s plus the stability window)
SYNC_TIMEOUT_S = 240


@dataclass
class Gitops:
    root: Path
    remote: Remote
    clusters: dict[str, LocalFlinkCluster]
    jars: JobJars
    sync_settings: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.state = self.root / "state"
        self.config = self.root / "config.yaml"
        self.out = self.root / "out"
        self.out.mkdir(parents=True, exist_ok=True)
        self.key = self.root / "audit.key"
        self.write_config()
        self.cli("keys", "generate", "--out", str(self.key), check=True)
        self.remote.work.write(
            {
                "artifacts/counter.jar": self.jars.stateful.read_bytes(),
                "artifacts/counter-uid-changed.jar": self.jars.stateful_uid_changed.read_bytes(),
            }
        )

    # --- config and repo -------------------------------------------------------------------------

    def write_config(self) -> None:
        config = {
            "state_dir": str(self.state),
            "clusters": {name: {"url": c.rest_url} for name, c in self.clusters.items()},
            "git": {"url": self.remote.url, "ref": "main", "poll_interval_s": 1},
            "audit": {"key_file": str(self.key)},
            "sync": {"stability_s": 1, "readiness_timeout_s": 60} | self.sync_settings,
            # initialSavepointPath must lie under these (specs.guards): the clusters' own savepoints
            "savepoint_roots": [c.savepoint_dir.as_uri() for c in self.clusters.values()],
            # the API of `run` on any free port: tests run side by side
            "http": {"port": 0},
        }
        self.config.write_text(yaml.safe_dump(config), encoding="utf-8")

    def job_yaml(
        self,
        name: str,
        *,
        jar: str = "artifacts/counter.jar",
        cluster: str = "default",
        flink_conf: dict[str, Any] | None = None,
        **job: Any,
    ) -> str:
        out_dir = self.out / name
        args = job.pop("args", ["--out", str(out_dir), "--rate", "100", "--keys", "4"])
        body = {
            "jarURI": jar,
            "entryClass": STATEFUL_ENTRY,
            "args": args,
            "parallelism": 1,
            "upgradeMode": "savepoint",
            **job,
        }
        doc: dict[str, Any] = {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": name},
            "spec": {"cluster": cluster, "job": body},
        }
        if flink_conf:
            doc["spec"]["flinkConfiguration"] = flink_conf
        return yaml.safe_dump(doc, sort_keys=False)

    def commit(self, files: dict[str, str | bytes | None], message: str = "change") -> str:
        sha = self.remote.work.commit(files, message)
        self.remote.work.push()
        return sha

    def put_job(self, name: str, *, file: str | None = None, **job: Any) -> str:
        return self.commit({file or f"jobs/{name}.yaml": self.job_yaml(name, **job)}, f"{name}: {job}")

    # --- the CLI ---------------------------------------------------------------------------------

    def cli(
        self,
        *args: str,
        check: bool = False,
        env: dict[str, str] | None = None,
        timeout: float = SYNC_TIMEOUT_S,
    ) -> subprocess.CompletedProcess[str]:
        proc = subprocess.run(
            [*CLI, "--config", str(self.config), *args],
            capture_output=True,
            text=True,
            timeout=timeout,
            env={**os.environ, **(env or {})},
            check=False,
        )
        if check and proc.returncode != 0:
            raise AssertionError(
                f"flink-gitops {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
            )
        return proc

    def sync(self, *extra: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
        return self.cli("sync", "--once", *extra, env=env)

    def synced(self, *extra: str) -> subprocess.CompletedProcess[str]:
        proc = self.sync(*extra)
        assert proc.returncode == 0, f"sync exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}"
        return proc

    def status(self, name: str) -> dict[str, Any]:
        proc = self.cli("status", name, "--output", "json", check=True)
        rows: list[dict[str, Any]] = json.loads(proc.stdout)
        return rows[0]

    # --- Flink -----------------------------------------------------------------------------------

    def client(self, cluster: str = "default") -> FlinkClient:
        return FlinkClient(self.clusters[cluster].rest_url, name=cluster)

    def live_jobs(self, cluster: str = "default") -> list[str]:
        with self.client(cluster) as c:
            return [
                j.jid for j in c.jobs_overview().jobs if j.state not in ("FINISHED", "CANCELED", "FAILED")
            ]

    def running(self, job_id: str, cluster: str = "default") -> bool:
        with self.client(cluster) as c:
            found = c.find_job(job_id)
            return found is not None and found.all_tasks_running

    def restored_from(self, job_id: str, cluster: str = "default") -> str | None:
        with self.client(cluster) as c:
            restored = c.checkpoints(job_id).latest.restored
            return restored.external_path if restored is not None else None

    def counts(self, name: str, job_id: str | None = None) -> dict[str, int]:
        return read_counts(self.out / name, job_id)

    def wait_counts(self, name: str, job_id: str, at_least: int = 1) -> dict[str, int]:
        """The job's own counts once every key reached ``at_least`` (the job writes them every ~200 ms)."""

        def enough() -> dict[str, int] | None:
            counts = self.counts(name, job_id)
            return counts if len(counts) == 4 and min(counts.values()) >= at_least else None

        return wait_until(f"counts of {name} job {job_id} >= {at_least}", enough, 60)
