"""`flink-gitops demo` end to end: a real Flink 2.3.0 cluster, the example repository, a clean stop."""

from __future__ import annotations

import os
import re
import signal
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
def test_demo_starts_a_cluster_loads_the_example_repo_and_stops_on_sigterm(
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
        r"Summary: Flink 2\.3\.0 with 1 TaskManager\(s\) and 8 slot\(s\); "
        rf"{len(expected)} job spec\(s\) valid; in sync"
    )
    assert re.search(summary, out)
    assert "Ctrl-C or SIGTERM stops it." in out
    assert out.rstrip().endswith("Done.")
    # it kept running until the signal, then stopped: no JVM left, handler restored, logs kept
    assert len(seen_jvms) == 2
    assert jvms_mentioning(str(workdir)) == []
    assert signal.getsignal(signal.SIGTERM) is original
    assert any((workdir / "cluster" / "log").glob("*.log"))
    # the run is in the local SQLite store's audit trail, which verifies with the key the demo made
    assert "audit record #1 written; chain of 1 record(s) intact" in out
    # the daemon's main job: the example jobs deployed (the scheduled batch job only recorded), then
    # a second cycle with nothing to do
    deployed = set(re.findall(r"^  ([a-z0-9-]+) +deploy +ok: stable, job [0-9a-f]{32}$", out, re.MULTILINE))
    scheduled = {n for n, j in expected.items() if j.spec.spec.schedule is not None}
    assert deployed == set(expected) - scheduled
    assert "second cycle: in sync" in out
    state = workdir / "state"
    assert (state / "audit.key").stat().st_mode & 0o077 == 0
    verify = CliRunner().invoke(main, ["audit", "verify"], env={"FLINK_GITOPS_STATE_DIR": str(state)})
    assert verify.exit_code == 0, verify.output
    checked = re.search(r"decrypted and tag-checked: (\d+) of (\d+)", verify.output)
    assert checked is not None
    assert checked.group(1) == checked.group(2)
    assert int(checked.group(1)) > len(expected)  # the run, and each action's intent and outcome
    shown = CliRunner().invoke(
        main,
        ["audit", "show", "--action", "demo.run", "--output", "jsonl"],
        env={"FLINK_GITOPS_STATE_DIR": str(state)},
    )
    assert shown.exit_code == 0, shown.output
    assert f'"valid_jobs": {len(expected)}' in shown.output


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
