"""Prune, safely, end to end on real Flink 2.3 (issue 9): a final savepoint, the mass-removal guard,
renames and broken files never remove a job, and kill -9 in the middle of a prune."""

from __future__ import annotations

import signal
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.flink.local import LocalFlinkCluster
from flink_gitops.flink.testjobs import JobJars
from tests.e2e.harness import Gitops
from tests.fixtures.flink import cancel_all_jobs
from tests.fixtures.gitserver import Remote


@pytest.fixture
def gitops(
    tmp_path: Path, remote: Remote, flink_cluster: LocalFlinkCluster, test_jars: JobJars
) -> Iterator[Gitops]:
    cancel_all_jobs(flink_cluster)
    sync = {"prune": True, "max_prune_fraction": 0.5}
    yield Gitops(tmp_path / "gitops", remote, {"default": flink_cluster}, test_jars, sync)
    cancel_all_jobs(flink_cluster)


def three(g: Gitops) -> dict[str, str]:
    for name in ("a", "b", "c"):
        g.put_job(name)
    g.synced()
    ids = {n: g.status(n)["flinkJobId"] for n in ("a", "b", "c")}
    assert sorted(g.live_jobs()) == sorted(ids.values())
    return ids


def test_prune_stops_with_a_final_savepoint_and_keeps_a_tombstone(gitops: Gitops) -> None:
    g = gitops
    ids = three(g)
    g.commit({"jobs/c.yaml": None})
    g.synced()
    gone = g.status("c")
    assert gone["lifecycle"] == "deleted"
    assert sorted(g.live_jobs()) == sorted([ids["a"], ids["b"]])
    with g.client() as c:
        final = c.checkpoints(ids["c"]).latest_savepoint_path
    assert final is not None
    assert gone["savepoint"] == final
    assert (Path(final.removeprefix("file:")) / "_metadata").is_file()
    history = g.cli("history", "c", check=True).stdout
    assert "final" in history


def test_a_revision_removing_too_many_jobs_is_refused_whole(gitops: Gitops) -> None:
    g = gitops
    ids = three(g)
    g.commit({"jobs/b.yaml": None, "jobs/c.yaml": None})
    proc = g.sync()
    assert proc.returncode == 1
    assert "would prune 2 of 3 jobs" in proc.stderr
    assert sorted(g.live_jobs()) == sorted(ids.values()), "nothing removed"
    assert {g.status(n)["lifecycle"] for n in "bc"} == {"stable"}


def test_a_rename_keeps_the_job_and_a_move_to_a_broken_file_leaves_it_running(gitops: Gitops) -> None:
    g = gitops
    ids = three(g)
    g.commit({"jobs/a.yaml": None, "teams/renamed-a.yaml": g.job_yaml("a")}, "rename a's file")
    out = g.synced()
    assert "in sync" in out.stdout
    assert g.status("a")["flinkJobId"] == ids["a"]
    assert sorted(g.live_jobs()) == sorted(ids.values())
    broken = g.job_yaml("b").replace("parallelism: 1", "parallelism: many")
    g.commit({"jobs/b.yaml": None, "teams/b.yaml": broken}, "move b into a broken file")
    proc = g.sync()
    assert proc.returncode == 1
    assert "teams/b.yaml" in proc.stderr
    assert g.status("b")["lifecycle"] == "stable"
    assert sorted(g.live_jobs()) == sorted(ids.values()), "b still runs"


@pytest.mark.parametrize("point", ["stop-sent", "stopped", "before-finish"])
def test_killed_during_a_prune_then_run_again_prunes_once_with_its_savepoint(
    gitops: Gitops, point: str
) -> None:
    g = gitops
    ids = three(g)
    g.commit({"jobs/c.yaml": None})
    killed = g.sync(env={"FLINK_GITOPS_KILL_AT": point})
    assert killed.returncode == -signal.SIGKILL, (killed.returncode, killed.stderr)
    g.synced()
    gone = g.status("c")
    assert gone["lifecycle"] == "deleted"
    assert gone["openOperation"] is None
    with g.client() as c:
        final = c.checkpoints(ids["c"]).latest_savepoint_path
    assert gone["savepoint"] == final
    assert sorted(g.live_jobs()) == sorted([ids["a"], ids["b"]])
    assert g.cli("audit", "verify").returncode == 0
