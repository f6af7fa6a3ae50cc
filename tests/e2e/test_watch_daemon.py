"""`flink-gitops run --repo DIR` as a real subprocess: editing a spec file runs a cycle at once,
with a poll interval of an hour (the log says why the cycle ran; no timing is asserted). No Flink:
the cluster is unreachable, which the cycle reports and survives."""

from __future__ import annotations

import os
import signal
import subprocess
from pathlib import Path

from tests.e2e.harness import CLI
from tests.fixtures.flink import wait_until


def test_editing_a_spec_file_runs_a_cycle_at_once(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True)
    spec = repo / "jobs" / "orders.yaml"
    spec.write_text("# first\n")
    config = tmp_path / "config.yaml"
    config.write_text(
        f"state_dir: {tmp_path / 'state'}\n"
        "git: {poll_interval_s: 3600, poll_jitter_s: 0}\n"
        "http: {enabled: false}\n"
        "clusters: {default: {url: 'http://127.0.0.1:9', max_attempts: 1}}\n"
    )
    cli = [*CLI, "--config", str(config)]
    subprocess.run([*cli, "keys", "generate"], check=True, capture_output=True)
    log = tmp_path / "daemon.log"
    with log.open("wb") as handle:
        env = {k: v for k, v in os.environ.items() if not k.startswith(("FLINK_GITOPS", "JOURNAL_STREAM"))}
        proc = subprocess.Popen(
            [*cli, "run", "--repo", str(repo)], stdout=handle, stderr=subprocess.STDOUT, env=env
        )

    def text() -> str:
        return log.read_text(errors="replace")

    try:
        wait_until("the first cycle", lambda: "cycle rev=" in text() or None, 60)
        edits = iter(range(10**6))

        def edited_and_seen() -> bool | None:
            # edit again until the watcher (started after the first cycle's scheduling) reports it
            spec.write_text(f"# edit {next(edits)}\n")
            return "cycle requested: files changed: jobs/orders.yaml" in text() or None

        wait_until("a cycle requested by the file watcher", edited_and_seen, 30)
        wait_until("the requested cycle ran", lambda: text().count("cycle rev=") >= 2 or None, 30)
    finally:
        proc.send_signal(signal.SIGTERM)
        code = proc.wait(30)
    assert code == 0, text()[-3000:]
    out = text()
    assert out.index("cycle requested: files changed") < out.rindex("cycle rev=")
    assert "stopped after" in out
