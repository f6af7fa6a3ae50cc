"""kill -9 at every step of an upgrade, then run again: exactly one job, from the right state.

``FLINK_GITOPS_KILL_AT`` makes the `sync --once` process SIGKILL itself at a
named point (execute.failpoints); the next `sync --once` — a new process, as
after a crash and a restart — must resume from what the first one recorded,
asking Flink about exactly those ids. Asserted from Flink and the job's own
keyed counts, plus an intact audit chain.
"""

from __future__ import annotations

import signal
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs, wait_until
from tests.fixtures.gitserver import Remote

SAVEPOINT_POINTS = ["stop-sent", "stopped", "uploaded", "run-sent", "before-finish"]
LAST_STATE_POINTS = ["cancel-sent", "cancelled", "uploaded", "run-sent", "before-finish"]


@pytest.fixture
def gitops(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    yield Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars)
    cancel_all_jobs(flink_cluster)


@pytest.mark.parametrize(
    ("mode", "point"),
    [("savepoint", p) for p in SAVEPOINT_POINTS] + [("last-state", p) for p in LAST_STATE_POINTS],
)
def test_killed_at_a_step_then_run_again_leaves_one_job_from_the_right_state(
    gitops: Gitops, mode: str, point: str
) -> None:
    g = gitops
    g.put_job("orders", upgradeMode=mode)
    g.synced()
    first = g.status("orders")["flinkJobId"]
    before = g.wait_counts("orders", first, at_least=20)
    seen_at_ms = time.time() * 1000
    with g.client() as c:  # a checkpoint newer than `before`, so a last-state restore is not older
        wait_until(
            "a checkpoint after the counts were read",
            lambda: (c.checkpoints(first).latest_completed_at_ms or 0) > seen_at_ms,
            30,
        )

    g.put_job(
        "orders", upgradeMode=mode, args=["--out", str(g.out / "orders"), "--rate", "120", "--keys", "4"]
    )
    killed = g.sync(env={"FLINK_GITOPS_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)

    g.synced()  # a new process: resumes the open operation from its recorded step
    status = g.status("orders")
    new = status["flinkJobId"]
    assert status["lifecycle"] == "stable", status
    assert status["openOperation"] is None
    assert new != first
    assert g.live_jobs() == [new], "exactly one job runs"
    assert g.running(new)
    with g.client() as c:
        stats = c.checkpoints(first)
        expected = stats.latest_savepoint_path if mode == "savepoint" else stats.latest_completed_path
    assert expected is not None
    assert g.restored_from(new) == expected, "restored from the state of the job it replaced"
    after = g.wait_counts("orders", new, at_least=1)
    assert all(after[k] >= before[k] for k in before), (before, after)
    verify = g.cli("audit", "verify")
    assert verify.returncode == 0, verify.stdout + verify.stderr
    # and a further run finds nothing to do
    assert "in sync" in g.synced().stdout
    assert g.live_jobs() == [new]
