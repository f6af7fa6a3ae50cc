"""`flink-gitops demo` end to end: a real Flink 2.3.0 cluster, a Git repository made from the example
repository, the daemon as a subprocess deploying it, a commit upgraded through a savepoint, a clean stop."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import threading
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from flink_gitops.cli import main
from flink_gitops.cli.demo import _record_run
from flink_gitops.record.audit import AuditEvent
from flink_gitops.settings import load_settings
from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.loader import SpecLoader
from tests.fixtures.flink import jvms_mentioning

EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "example-repo"


def _terminate_when_waiting(workdir: Path, seen_jvms: list[int], done: threading.Event) -> None:
    """Send SIGTERM to this process once the demo waits for it (its handler is installed)."""
    original = signal.getsignal(signal.SIGTERM)
    deadline = time.monotonic() + 300
    while not done.is_set() and time.monotonic() < deadline:
        if signal.getsignal(signal.SIGTERM) is not original:
            seen_jvms.extend(jvms_mentioning(str(workdir)))
            os.kill(os.getpid(), signal.SIGTERM)
            return
        time.sleep(0.1)


@pytest.mark.flink
def test_demo_runs_the_gitops_loop_upgrades_a_commit_through_a_savepoint_and_stops_on_sigterm(
    flink_home: Path, tmp_path: Path
) -> None:
    workdir = tmp_path / "demo"
    original = signal.getsignal(signal.SIGTERM)
    seen_jvms: list[int] = []
    done = threading.Event()
    killer = threading.Thread(target=_terminate_when_waiting, args=(workdir, seen_jvms, done), daemon=True)
    killer.start()
    try:
        result = CliRunner().invoke(
            main, ["demo", "--workdir", str(workdir), "--repo", str(EXAMPLE_REPO), "--keep-running"]
        )
    finally:
        done.set()
        killer.join()
    assert result.exit_code == 0, result.output
    out = result.output
    ready = r"Flink 2\.3\.0 at http://127\.0\.0\.1:\d+: ready in [\d.]+ s, TaskManagers: 1, slots: 8/8"
    assert re.search(ready, out)
    expected = SpecLoader().load(DirectoryTree(EXAMPLE_REPO)).valid_jobs()
    assert expected  # the example repository has valid jobs
    listed = set(re.findall(r"^  ([a-z0-9-]+) +\S+:\d+  cluster=", out, re.MULTILINE))
    assert listed == set(expected)
    summary = (
        r"Summary: Flink 2\.3\.0 with 1 TaskManager\(s\) and 8 slot\(s\); \d job\(s\) deployed from Git, "
        r"orders-enricher upgraded through a savepoint with its state; daemon exit 0"
    )
    assert re.search(summary, out), out
    assert "Ctrl-C or SIGTERM stops them." in out
    assert out.rstrip().endswith("Done.")
    # it kept running until the signal, then stopped: no JVM left, handler restored, logs kept
    assert len(seen_jvms) == 2
    assert jvms_mentioning(str(workdir)) == []
    assert signal.getsignal(signal.SIGTERM) is original
    assert any((workdir / "cluster" / "log").glob("*.log"))
    # the run is in the local SQLite store's audit trail, which verifies with the key the demo made
    assert "audit record #1 written; chain of 1 record(s) intact" in out
    # the GitOps loop: the daemon deployed the streaming jobs from the demo's Git repository ...
    scheduled = {n for n, j in expected.items() if j.spec.spec.schedule is not None}
    running = re.findall(r"^  ([a-z0-9-]+) +stable +flink job [0-9a-f]{32}$", out, re.MULTILINE)
    assert set(running) == set(expected) - scheduled
    assert f"All {len(running)} streaming job(s) deployed by the daemon" in out
    # ... then upgraded the changed one through a savepoint, and the new job restored from it
    stopped = re.search(r"stopped job ([0-9a-f]{32}) with a savepoint: (\S+)$", out, re.MULTILINE)
    started = re.search(r"started job ([0-9a-f]{32}), restored from: (\S+)$", out, re.MULTILINE)
    assert stopped is not None, out
    assert started is not None, out
    assert stopped.group(1) != started.group(1)
    assert stopped.group(2).removeprefix("file:") == started.group(2).removeprefix("file:")
    assert "its keyed state carried over." in out
    assert re.search(r"daemon exit 0; audit chain of \d+ record\(s\) intact", out)
    # the demo's repository holds the change as a commit, and the user is told how to make their own
    log = subprocess.run(
        ["git", "-C", str(workdir / "repo"), "log", "--format=%s"], capture_output=True, text=True, check=True
    )
    assert log.stdout.splitlines()[0] == "orders-enricher: events per second 20 -> 40"
    assert f"cd {workdir / 'repo'} && $EDITOR jobs/payments.yaml && git commit -am" in out
    # the operator token is in a 0600 file, never in the output or the daemon's log
    token = (workdir / "api-token").read_text(encoding="utf-8").strip()
    assert (workdir / "api-token").stat().st_mode & 0o077 == 0
    assert token not in out
    assert token not in (workdir / "daemon.log").read_text(encoding="utf-8")
    state = workdir / "state"
    assert (state / "audit.key").stat().st_mode & 0o077 == 0
    env = {"FLINK_GITOPS_STATE_DIR": str(state)}
    verify = CliRunner().invoke(main, ["audit", "verify"], env=env)
    assert verify.exit_code == 0, verify.output
    checked = re.search(r"decrypted and tag-checked: (\d+) of (\d+)", verify.output)
    assert checked is not None
    assert checked.group(1) == checked.group(2)
    assert int(checked.group(1)) > len(expected)  # the run, and each action's intent and outcome
    shown = CliRunner().invoke(main, ["audit", "show", "--output", "jsonl"], env=env)
    assert shown.exit_code == 0, shown.output
    records = [json.loads(line) for line in shown.output.splitlines() if line.strip()]
    assert any(r["action"] == "demo.run" and r["details"]["valid_jobs"] == len(expected) for r in records)
    upgrades = [r for r in records if r["action"] == "job.upgrade" and r["job"] == "orders-enricher"]
    assert upgrades
    assert all(r["actor"].startswith("daemon:") for r in upgrades)


def test_demo_refuses_a_missing_repo(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["demo", "--workdir", str(tmp_path), "--repo", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "does not exist" in result.output
    assert not (tmp_path / "cluster").exists()  # refused before anything started


def test_demo_records_into_its_own_trail_whatever_the_environment_configures(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A daemon's FLINK_GITOPS_STORE__* / _AUDIT__* in the shell must not route the demo's record
    into that (production) store, key or head file."""
    production = tmp_path / "production"
    monkeypatch.setenv("FLINK_GITOPS_STORE__URL", "postgresql+psycopg://nobody@127.0.0.1:1/prod")
    monkeypatch.setenv("FLINK_GITOPS_AUDIT__KEY_FILE", str(production / "audit.key"))
    monkeypatch.setenv("FLINK_GITOPS_AUDIT__HEAD_FILE", str(production / "audit.head"))
    state = tmp_path / "state"
    event = AuditEvent(action="demo.run", actor="demo-test", cluster="default", outcome="succeeded")
    assert (
        _record_run(load_settings(None), state, event)
        == "audit record #1 written; chain of 1 record(s) intact"
    )
    assert (state / "state.db").is_file()
    assert (state / "audit.key").is_file()
    assert (state / "audit.head").is_file()
    assert not production.exists()
