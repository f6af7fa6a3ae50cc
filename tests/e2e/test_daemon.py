"""`flink-gitops run` as a real subprocess against real Flink 2.3 and a real Git remote: the loop
deploys and upgrades on commits, reports to a real NOTIFY_SOCKET (READY, WATCHDOG, STOPPING),
refuses a broken config on SIGHUP, parks an upgrade on SIGTERM and finishes it on the next start,
and stops feeding the watchdog when its loop is stuck."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import CLI, Gitops
from tests.fixtures.flink import cancel_all_jobs, wait_until
from tests.fixtures.gitserver import Remote


@dataclass
class NotifySocket:
    """A systemd stand-in: a bound datagram socket, every message kept with its arrival time."""

    path: Path
    messages: list[tuple[float, str]] = field(default_factory=list)

    def __post_init__(self) -> None:
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._sock.bind(str(self.path))
        self._sock.settimeout(0.2)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self) -> None:
        while not self._stop.is_set():
            try:
                data = self._sock.recv(65536)
            except TimeoutError:
                continue
            except OSError:
                return
            self.messages.append((time.monotonic(), data.decode()))

    def seen(self, text: str, since: float = 0.0) -> bool:
        return any(text in m for t, m in list(self.messages) if t >= since)

    def count(self, text: str, since: float) -> int:
        return sum(1 for t, m in list(self.messages) if t >= since and text in m)

    def close(self) -> None:
        self._stop.set()
        self._thread.join(2)
        self._sock.close()


@dataclass
class Daemon:
    proc: subprocess.Popen[bytes]
    log: Path

    def text(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def wait_log(self, text: str, timeout: float = 60) -> None:
        wait_until(f"daemon log says {text!r}", lambda: text in self.text() or None, timeout)

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 60) -> int:
        self.proc.send_signal(sig)
        return self.proc.wait(timeout)


@pytest.fixture
def world(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[tuple[Gitops, NotifySocket]]:
    cancel_all_jobs(flink_cluster)
    g = Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    notify = NotifySocket(tmp_path / "notify.sock")
    yield g, notify
    notify.close()
    cancel_all_jobs(flink_cluster)


def start(g: Gitops, notify: NotifySocket, name: str = "daemon", **env: str) -> Daemon:
    log = g.root / f"{name}.log"
    handle = log.open("wb")
    proc = subprocess.Popen(
        [*CLI, "--config", str(g.config), "run"],
        stdout=handle,
        stderr=subprocess.STDOUT,
        env={**os.environ, "NOTIFY_SOCKET": str(notify.path), "WATCHDOG_USEC": "2000000", **env},
    )
    handle.close()
    return Daemon(proc, log)


def stable_job(g: Gitops, name: str, other_than: str | None = None) -> str:
    def probe() -> str | None:
        s = g.status(name)
        ok = s["lifecycle"] == "stable" and s["openOperation"] is None and s["flinkJobId"] != other_than
        return s["flinkJobId"] if ok else None

    return wait_until(f"{name} stable (not {other_than})", probe, 120)


def test_the_loop_deploys_and_upgrades_on_commits_reloads_and_stops_cleanly(world: Any) -> None:
    g, notify = world
    g.sync_settings = {"stability_s": 1}
    g.write_config()
    g.put_job("orders")
    d = start(g, notify)
    try:
        wait_until("READY=1", lambda: notify.seen("READY=1") or None, 120)
        first = stable_job(g, "orders")
        before = g.wait_counts("orders", first, at_least=10)
        # a commit: the next poll (git.poll_interval_s 1) upgrades through a savepoint
        g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])
        second = stable_job(g, "orders", other_than=first)
        assert g.live_jobs() == [second]
        after = g.wait_counts("orders", second, at_least=1)
        assert all(after[k] >= before[k] for k in before), (before, after)
        # the watchdog is fed while the loop lives
        t0 = time.monotonic()
        wait_until("watchdog pings", lambda: notify.count("WATCHDOG=1", t0) >= 3 or None, 20)
        # SIGHUP with a broken config: refused, the key named, the old config stays in force
        good = g.config.read_text()
        g.config.write_text(good.replace("sync:", "sync:\n  drift: sometimes", 1))
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reload refused")
        assert "sync.drift" in d.text()
        assert d.proc.poll() is None
        g.config.write_text(good)
        d.proc.send_signal(signal.SIGHUP)
        d.wait_log("config reloaded")
        assert "cycle rev=" in d.text()
    finally:
        code = d.stop()
    assert code == 0, d.text()[-3000:]
    assert notify.seen("STOPPING=1")
    assert g.live_jobs() == [second], "stopping the daemon leaves the jobs running"
    assert g.status("orders")["openOperation"] is None


def test_sigterm_during_an_upgrade_parks_it_and_the_next_start_finishes_it(world: Any) -> None:
    g, notify = world
    g.put_job("orders")
    g.synced()
    first = g.status("orders")["flinkJobId"]
    before = g.wait_counts("orders", first, at_least=10)
    args = ["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"]
    g.put_job("orders", args=args)
    # the new job's start stalls (as a slow start would) until the stop asks it to park
    d = start(g, notify, FLINK_GITOPS_STALL_AT="run-sent")
    try:

        def in_stability_wait() -> bool | None:
            s = g.status("orders")
            return (s["openOperation"] is not None and any(j != first for j in g.live_jobs())) or None

        wait_until("the upgrade waiting for stability", in_stability_wait, 120)
    finally:
        code = d.stop()
    assert code == 0, d.text()[-3000:]
    assert "parked at its last recorded step" in d.text()
    parked = g.status("orders")
    assert parked["openOperation"] is not None, "left open at its recorded step"
    (new,) = g.live_jobs()
    assert new != first
    # the next start resumes the operation: adopts the job it started, waits, finishes
    d = start(g, notify, "daemon-2")
    try:
        second = stable_job(g, "orders", other_than=first)
    finally:
        assert d.stop() == 0
    assert second == new, "the parked run's job was adopted, not started twice"
    assert g.live_jobs() == [second]
    after = g.wait_counts("orders", second, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)


def test_a_stuck_loop_stops_the_watchdog_pings(world: Any) -> None:
    g, notify = world
    g.put_job("orders")
    d = start(g, notify, FLINK_GITOPS_HANG_AT="run-sent")
    try:
        wait_until("the deploy stuck after its run", lambda: len(g.live_jobs()) == 1 or None, 120)
        time.sleep(1.5)  # not a timing assertion: lets a ping already on its way arrive first
        t0 = time.monotonic()
        time.sleep(3)  # longer than the 2 s watchdog interval systemd would allow
        assert notify.count("WATCHDOG=1", t0) == 0, "a stuck loop must not look alive"
        assert d.proc.poll() is None
    finally:
        d.proc.kill()  # what systemd does once the watchdog fires
        d.proc.wait(30)


def test_a_paused_job_is_observed_not_upgraded_and_resume_lets_the_commit_through(world: Any) -> None:
    g, notify = world
    g.put_job("orders")
    d = start(g, notify)
    try:
        wait_until("READY=1", lambda: notify.seen("READY=1") or None, 120)
        first = stable_job(g, "orders")
        paused = g.cli("pause", "orders", "--reason", "change freeze", check=True)
        assert "orders" in paused.stdout + paused.stderr
        commit = g.put_job("orders", args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"])

        def held() -> dict[str, Any] | None:
            proc = g.cli("status", "orders", "--output", "json")
            if proc.returncode not in (0, 1):
                return None
            (s,) = json.loads(proc.stdout)
            return s if s.get("hold") and commit[:12] in d.text() else None

        status = wait_until("the commit seen and held", held, 120)
        assert "change freeze" in json.dumps(status["hold"])
        d.wait_log("paused")
        assert g.live_jobs() == [first], "paused: the job runs on untouched"
        assert g.status("orders")["flinkJobId"] == first
        g.cli("resume", "orders", check=True)
        second = stable_job(g, "orders", other_than=first)
        assert g.live_jobs() == [second]
    finally:
        code = d.stop()
    assert code == 0, d.text()[-3000:]
    audit = g.cli("audit", "show", "--job", "orders", "--output", "jsonl", check=True).stdout
    actions = [json.loads(line)["action"] for line in audit.splitlines() if line.strip()]
    assert actions.index("job.pause") < actions.index("job.resume") < len(actions) - 1
    assert "job.upgrade" in actions[actions.index("job.resume") :]
