"""The demo's GitOps loop: a local Git repository, the daemon as a real subprocess, one commit.

Why: the README's first command must show the product doing its job, not a one-shot sync. The
demo (``cli.demo``) seeds ``<workdir>/repo`` from example-repo (``source.git.seed_repository``),
writes a daemon config (SQLite store, audit key and head file under ``<workdir>/state``, the local
cluster as ``default``, ``git.url`` the local repository polled every 2 s, the HTTP API on
loopback with an operator token kept in ``<workdir>/api-token``, mode 0600, never printed), starts
``flink-gitops run`` on it and watches the jobs through the API until they are stable. Then it
commits a change to one savepoint-mode spec and watches the daemon upgrade it: the old job stopped
with a savepoint, the new one restored from exactly that savepoint (Flink's checkpoint stats of
the new job id), so the keyed counts carry over. Neighbours: ``cli.demo`` (cluster, summary),
``service.api`` (the routes read here, ``hash_token``), ``flink.client`` (the restore check).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

import yaml

from flink_gitops.errors import FlinkGitOpsError
from flink_gitops.flink.client import FlinkClient
from flink_gitops.flink.local import port_is_free
from flink_gitops.service.api import hash_token
from flink_gitops.source.git import commit_files

#: the API's port in the demo when free (the embedded default), else one picked by the OS.
DEMO_API_PORT = 8480
#: how long the demo waits for the daemon to deploy or upgrade, seconds.
WAIT_S = 240.0
#: the spec the demo changes, and how: a new event rate is a job change (savepoint upgrade).
CHANGED_JOB = "orders-enricher"
CHANGED_FILE = "jobs/orders-enricher.yaml"

T = TypeVar("T")


class DemoFailed(FlinkGitOpsError):
    """The demo's daemon did not do what the demo waits for (its log says why)."""


def _free_port(preferred: int) -> int:
    if port_is_free(preferred):
        return preferred
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def write_private(path: Path, text: str) -> Path:
    """A new file (never an existing one) of mode 0600 holding ``text`` and a newline."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(text + "\n")
    return path


def write_daemon_config(workdir: Path, state_dir: Path, repo: Path, rest_url: str) -> tuple[Path, str, str]:
    """The daemon's config file, the API base URL and the operator token (its file is 0600)."""
    token = secrets.token_urlsafe(24)
    token_file = workdir / "api-token"
    tokens_file = workdir / "api-tokens"
    for path, text in ((token_file, token), (tokens_file, f"operator:{hash_token(token)}")):
        path.unlink(missing_ok=True)
        write_private(path, text)
    port = _free_port(DEMO_API_PORT)
    config = {
        "state_dir": str(state_dir.resolve()),
        "clusters": {"default": {"url": rest_url}},
        "git": {"url": str(repo.resolve()), "ref": "main", "poll_interval_s": 2.0, "poll_jitter_s": 0.0},
        "audit": {"key_file": str((state_dir / "audit.key").resolve())},
        "http": {"host": "127.0.0.1", "port": port, "tokens": {"file": str(tokens_file.resolve())}},
        "sync": {"stability_s": 2.0, "prune": False},
    }
    path = workdir / "config.yaml"
    path.write_text(
        "# written by `flink-gitops demo`: the daemon on the local cluster and repository\n"
        + yaml.safe_dump(config, sort_keys=False),
        encoding="utf-8",
    )
    return path, f"http://127.0.0.1:{port}", token


@dataclass
class DaemonProcess:
    proc: subprocess.Popen[bytes]
    log: Path

    def alive(self) -> bool:
        return self.proc.poll() is None

    def tail(self, lines: int = 15) -> str:
        text = self.log.read_text(encoding="utf-8", errors="replace").splitlines()
        return "\n".join(text[-lines:])


@contextmanager
def daemon(config: Path, log: Path) -> Iterator[DaemonProcess]:
    """``flink-gitops run`` on ``config`` (its log in ``log``); SIGTERM and a clean stop on exit."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINK_GITOPS_")}
    with log.open("ab") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "flink_gitops", "--config", str(config), "run"],
            stdout=out,
            stderr=subprocess.STDOUT,
            env=env,
        )
    handle = DaemonProcess(proc, log)
    try:
        yield handle
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(60)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


class Api:
    """The daemon's HTTP API with the demo's operator token (urllib: no client library here)."""

    def __init__(self, base: str, token: str) -> None:
        self.base = base
        self._token = token

    def get(self, path: str) -> Any:
        url = self.base + path  # http://127.0.0.1:<port>, made by write_daemon_config
        request = urllib.request.Request(url, headers={"Authorization": f"Bearer {self._token}"})  # noqa: S310
        with urllib.request.urlopen(request, timeout=5) as answer:  # noqa: S310
            return json.loads(answer.read())

    def jobs(self) -> dict[str, dict[str, Any]]:
        return {job["name"]: job for job in self.get("/api/v1/jobs")}

    def job(self, name: str) -> dict[str, Any]:
        found: dict[str, Any] = self.get(f"/api/v1/jobs/{name}")
        return found


def wait_for(what: str, probe: Callable[[], T | None], proc: DaemonProcess, timeout: float = WAIT_S) -> T:
    """Poll ``probe`` every half second until it returns a value; DemoFailed on timeout or exit."""
    deadline = time.monotonic() + timeout
    while True:
        if not proc.alive():
            raise DemoFailed(
                f"the daemon exited ({proc.proc.returncode}) while waiting for {what}:\n{proc.tail()}"
            )
        try:
            value = probe()
        except urllib.error.HTTPError as exc:
            if exc.code in (401, 403):
                raise DemoFailed(f"the daemon's API refused the demo's token ({exc.code})") from exc
            value = None  # 404: not recorded yet; 5xx: the store is being reopened
        except (urllib.error.URLError, OSError, ValueError):
            value = None  # the API is not up yet, or a cycle is writing
        if value is not None:
            return value
        if time.monotonic() > deadline:
            raise DemoFailed(
                f"timed out after {timeout:.0f} s waiting for {what}; the daemon log ends:\n{proc.tail()}"
            )
        time.sleep(0.5)


def _stable(job: dict[str, Any]) -> bool:
    return job.get("state") == "stable" and bool(job.get("flink_job_id"))


def wait_deployed(api: Api, proc: DaemonProcess, running: set[str]) -> dict[str, dict[str, Any]]:
    """Every job in ``running`` stable with a Flink job id (the daemon's first cycles)."""

    def probe() -> dict[str, dict[str, Any]] | None:
        jobs = api.jobs()
        ok = all(name in jobs and _stable(jobs[name]) for name in running)
        return jobs if ok else None

    return wait_for(f"{', '.join(sorted(running))} to run", probe, proc)


def change_spec(repo: Path) -> tuple[str, str]:
    """Commit a new event rate for CHANGED_JOB; (commit, what changed)."""
    path = repo / CHANGED_FILE
    doc = yaml.safe_load(path.read_text(encoding="utf-8"))
    args = list(doc["spec"]["job"]["args"])
    old_rate = args[1]
    args[1] = str(int(float(old_rate)) * 2)
    text = path.read_text(encoding="utf-8").replace(json.dumps(doc["spec"]["job"]["args"]), json.dumps(args))
    if text == path.read_text(encoding="utf-8"):
        raise DemoFailed(f"{path}: could not find its args line to change")
    what = f"{CHANGED_JOB}: events per second {old_rate} -> {args[1]}"
    return commit_files(repo, {CHANGED_FILE: text}, message=what), what


@dataclass(frozen=True)
class Upgrade:
    old_job: str
    new_job: str
    savepoint: str
    restored_from: str | None
    took_s: float


def wait_upgraded(api: Api, proc: DaemonProcess, old_job: str, commit: str, rest_url: str) -> Upgrade:
    """CHANGED_JOB upgraded to ``commit`` (a new job id, stable); what it was restored from."""
    started = time.monotonic()

    def probe() -> dict[str, Any] | None:
        job = api.job(CHANGED_JOB)
        done = _stable(job) and job["flink_job_id"] != old_job and job.get("commit") == commit
        return job if done else None

    job = wait_for(f"{CHANGED_JOB} to be upgraded to {commit[:12]}", probe, proc)
    took = time.monotonic() - started
    with FlinkClient(rest_url, name="demo") as client:
        restored = client.checkpoints(job["flink_job_id"]).latest.restored
    return Upgrade(
        old_job,
        str(job["flink_job_id"]),
        str(job.get("savepoint") or ""),
        restored.external_path if restored is not None else None,
        took,
    )
