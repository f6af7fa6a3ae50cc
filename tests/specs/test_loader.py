"""The spec loader over real trees: isolation of invalid files, duplicates, symlinks, jars, caching."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from flink_gitops.source.tree import DirectoryTree
from flink_gitops.specs.changes import classify
from flink_gitops.specs.loader import DesiredJob, InvalidJob, SpecLoader
from flink_gitops.specs.model import Change
from tests.fixtures.gitserver import WorkRepo
from tests.specs.helpers import APP_JAR, APP_JAR_SHA, spec_yaml, write_repo

EXAMPLE_REPO = Path(__file__).resolve().parents[2] / "example-repo"


def test_example_repo_is_valid_and_has_every_kind_of_job() -> None:
    state = SpecLoader().load(DirectoryTree(EXAMPLE_REPO))
    assert state.problems == ()
    jobs = state.valid_jobs()
    assert len(jobs) >= 5
    modes = {j.spec.spec.job.upgradeMode for j in jobs.values()}
    assert modes == {"savepoint", "last-state", "stateless"}
    batch = [j for j in jobs.values() if j.spec.spec.mode == "batch"]
    assert batch
    assert all(j.spec.spec.schedule for j in batch)
    session = [j for j in jobs.values() if j.source_kind == "FlinkSessionJob"]
    assert session
    assert session[0].spec.spec.cluster == "default"
    assert {j.jar.kind for j in jobs.values()} == {"repo"}
    for job in jobs.values():
        jar = EXAMPLE_REPO / job.jar.location
        assert job.jar.sha256 == hashlib.sha256(jar.read_bytes()).hexdigest()
        assert jar.stat().st_size < 10 * 1024


def test_unchanged_files_are_not_parsed_again(tmp_path: Path) -> None:
    files: dict[str, str | bytes] = {f"jobs/job-{i}.yaml": spec_yaml(f"job-{i}") for i in range(5)}
    write_repo(tmp_path, files)
    loader = SpecLoader()
    tree = DirectoryTree(tmp_path)
    first = loader.load(tree)
    assert loader.last_parsed == 5
    second = loader.load(tree)
    assert loader.last_parsed == 0
    assert second.jobs == first.jobs
    (tmp_path / "jobs/job-3.yaml").write_text(spec_yaml("job-3", extra_job="parallelism: 7\n"))
    third = loader.load(DirectoryTree(tmp_path))
    assert loader.last_parsed == 1
    changed = third.jobs["job-3"]
    assert isinstance(changed, DesiredJob)
    assert changed.spec.spec.job.parallelism == 7
    assert changed.spec_hash != first.jobs["job-3"].spec_hash  # type: ignore[union-attr]
    assert third.jobs["job-1"] == first.jobs["job-1"]


def test_an_invalid_file_invalidates_only_its_own_jobs(tmp_path: Path) -> None:
    write_repo(
        tmp_path,
        {
            "jobs/good.yaml": spec_yaml("good"),
            "jobs/half.yaml": spec_yaml("first")
            + "---\n"
            + spec_yaml("second", extra_job="parallelism: zero\n"),
            "jobs/broken.yaml": "apiVersion: flink-gitops/v1\nmetadata: {name: [unclosed\n",
        },
    )
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert isinstance(state.jobs["good"], DesiredJob)
    assert isinstance(state.jobs["first"], DesiredJob)  # its sibling document is invalid, it is not
    second = state.jobs["second"]
    assert isinstance(second, InvalidJob)
    assert second.file == "jobs/half.yaml"
    assert any("parallelism" in p.message for p in second.problems)
    # no name recoverable from broken.yaml: recorded as an unnamed invalid file
    assert [u.file for u in state.unnamed] == ["jobs/broken.yaml"]
    assert state.invalid_files == {"jobs/half.yaml", "jobs/broken.yaml"}
    # pruning: never for a job last seen in an invalid file, nor for an invalid job
    assert not state.may_prune("was-in-broken", "jobs/broken.yaml")
    assert not state.may_prune("second", "jobs/half.yaml")
    assert state.may_prune("was-in-good", "jobs/good.yaml")
    assert not state.may_prune("unknown-origin", None)


def test_a_syntax_error_keeps_recovered_names_invalid(tmp_path: Path) -> None:
    write_repo(tmp_path, {"jobs/a.yaml": spec_yaml("early") + "---\nkind: [\n"})
    state = SpecLoader().load(DirectoryTree(tmp_path))
    early = state.jobs["early"]
    assert isinstance(early, InvalidJob)
    assert any("not applied: the file has an error at line" in p.message for p in early.problems)


def test_duplicate_names_in_two_files_invalidate_both(tmp_path: Path) -> None:
    write_repo(
        tmp_path,
        {"jobs/a.yaml": spec_yaml("same"), "jobs/b.yaml": spec_yaml("same", extra_job="parallelism: 2\n")},
    )
    state = SpecLoader().load(DirectoryTree(tmp_path))
    job = state.jobs["same"]
    assert isinstance(job, InvalidJob)
    dup = [p for p in state.errors if "duplicate job name 'same'" in p.message]
    assert {(p.file, p.line) for p in dup} == {("jobs/a.yaml", 4), ("jobs/b.yaml", 4)}
    assert "also defined at jobs/b.yaml:4" in next(p.message for p in dup if p.file == "jobs/a.yaml")
    assert state.invalid_files == {"jobs/a.yaml", "jobs/b.yaml"}
    assert state.files == {"jobs/a.yaml": ("same",), "jobs/b.yaml": ("same",)}


def test_symlinks_inside_are_followed_and_outside_refused(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    write_repo(repo, {"shared/inside.yaml": spec_yaml("linked"), "jobs/real.yaml": spec_yaml("real")})
    (tmp_path / "secret.yaml").write_text(spec_yaml("outside"))
    os.symlink("../shared/inside.yaml", repo / "jobs/inside.yaml")
    os.symlink("../../secret.yaml", repo / "jobs/escape.yaml")
    os.symlink(str(tmp_path / "secret.yaml"), repo / "jobs/absolute.yaml")
    os.symlink("nowhere.yaml", repo / "jobs/dangling.yaml")
    state = SpecLoader("jobs").load(DirectoryTree(repo))
    assert set(state.valid_jobs()) == {"linked", "real"}
    assert state.valid_jobs()["linked"].file == "jobs/inside.yaml"
    messages = {p.file: p.message for p in state.errors}
    assert "points outside the repository" in messages["jobs/escape.yaml"]
    assert "points outside the repository" in messages["jobs/absolute.yaml"]
    assert "does not exist" in messages["jobs/dangling.yaml"]
    assert "outside" not in state.jobs
    assert {"jobs/escape.yaml", "jobs/absolute.yaml", "jobs/dangling.yaml"} <= state.invalid_files


def test_repo_jar_through_a_symlink_is_hashed_by_content(tmp_path: Path) -> None:
    write_repo(tmp_path, {"jobs/a.yaml": spec_yaml("a", jar="artifacts/current.jar")})
    os.symlink("app.jar", tmp_path / "artifacts/current.jar")
    job = SpecLoader().load(DirectoryTree(tmp_path)).jobs["a"]
    assert isinstance(job, DesiredJob)
    assert job.jar.location == "artifacts/app.jar"
    assert job.jar_digest == f"sha256:{APP_JAR_SHA}"


def test_jar_content_change_is_an_upgrade_and_a_rename_is_not(tmp_path: Path) -> None:
    write_repo(tmp_path, {"jobs/a.yaml": spec_yaml("a")})
    loader = SpecLoader()
    before = loader.load(DirectoryTree(tmp_path)).valid_jobs()["a"]
    (tmp_path / "artifacts/app.jar").write_bytes(b"new build")
    after = loader.load(DirectoryTree(tmp_path)).valid_jobs()["a"]
    assert after.spec_hash != before.spec_hash
    assert classify(before.spec, before.jar_digest, after.spec, after.jar_digest).change is Change.UPGRADE
    (tmp_path / "artifacts/renamed.jar").write_bytes(b"new build")
    (tmp_path / "jobs/a.yaml").write_text(spec_yaml("a", jar="artifacts/renamed.jar"))
    renamed = loader.load(DirectoryTree(tmp_path)).valid_jobs()["a"]
    assert renamed.spec_hash == after.spec_hash
    result = classify(after.spec, after.jar_digest, renamed.spec, renamed.jar_digest)
    assert result.change is Change.IGNORE
    assert result.paths == ("spec.job.jarURI",)


def test_https_jar_without_checksum_is_a_warning_only(tmp_path: Path) -> None:
    pinned = "e" * 64
    write_repo(
        tmp_path,
        {
            "jobs/a.yaml": spec_yaml("unpinned", jar="https://repo.example.com/app-1.0.jar"),
            "jobs/b.yaml": spec_yaml(
                "pinned", jar="https://repo.example.com/app-1.0.jar", extra_job=f"jarSha256: {pinned}\n"
            ),
        },
    )
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert state.ok
    assert [(w.file, w.line, w.severity) for w in state.warnings] == [("jobs/a.yaml", 7, "warning")]
    assert "allow_unpinned_artifacts" in state.warnings[0].message
    jobs = state.valid_jobs()
    assert jobs["unpinned"].unpinned
    assert not jobs["pinned"].unpinned
    assert jobs["pinned"].jar_digest == f"sha256:{pinned}"


def test_host_jars_only_under_artifact_roots(tmp_path: Path) -> None:
    write_repo(
        tmp_path,
        {
            "jobs/a.yaml": spec_yaml("inside", jar="file:///opt/flink/jars/app.jar"),
            "jobs/b.yaml": spec_yaml("sneaky", jar="/opt/flink/jars/../../../etc/app.jar"),
            "jobs/c.yaml": spec_yaml("prefix", jar="/opt/flink/jars-evil/app.jar"),
        },
    )
    state = SpecLoader(artifact_roots=[Path("/opt/flink/jars")]).load(DirectoryTree(tmp_path))
    assert set(state.valid_jobs()) == {"inside"}
    assert state.valid_jobs()["inside"].jar.location == "/opt/flink/jars/app.jar"
    assert {p.job for p in state.errors} == {"sneaky", "prefix"}


def test_unknown_cluster_is_an_error_only_when_clusters_are_known(tmp_path: Path) -> None:
    write_repo(tmp_path, {"jobs/a.yaml": spec_yaml("a", extra_spec="cluster: prod-eu\n")})
    assert SpecLoader().load(DirectoryTree(tmp_path)).ok
    state = SpecLoader(clusters={"default"}).load(DirectoryTree(tmp_path))
    assert [(p.line, p.message) for p in state.errors] == [
        (8, "unknown cluster 'prod-eu' (configured: default)")
    ]


def test_hidden_directories_and_other_files_are_skipped(tmp_path: Path) -> None:
    write_repo(
        tmp_path,
        {
            "jobs/a.yaml": spec_yaml("a"),
            ".github/workflows/ci.yml": "on: [push]\njobs: {}\n",
            "README.md": "# not a spec\n",
        },
    )
    state = SpecLoader().load(DirectoryTree(tmp_path))
    assert state.ok
    assert list(state.files) == ["jobs/a.yaml"]


def test_spec_dir_may_not_leave_the_repo() -> None:
    from flink_gitops.specs.errors import SpecError

    with pytest.raises(SpecError):
        SpecLoader("../elsewhere")


@pytest.mark.git
def test_loads_git_commits_incrementally(work_repo: WorkRepo) -> None:
    from flink_gitops.source.git import open_tree

    work_repo.write(
        {"artifacts/app.jar": APP_JAR, **{f"jobs/j{i}.yaml": spec_yaml(f"j{i}") for i in range(3)}}
    )
    work_repo.symlink("jobs/link-to-self.yml", "../jobs/j0.yaml")
    first_commit = work_repo.commit(message="one")
    work_repo.write(
        {"jobs/link-to-self.yml": None, "jobs/j2.yaml": spec_yaml("j2", extra_job="parallelism: 3\n")}
    )
    work_repo.commit(message="two")

    loader = SpecLoader()
    first_tree = open_tree(work_repo.path, "main~1")
    try:
        first = loader.load(first_tree)
    finally:
        first_tree.close()
    # the symlink resolves to j0.yaml inside the repo, so j0 is defined twice
    assert isinstance(first.jobs["j0"], InvalidJob)
    assert first.commit == first_commit
    second_tree = open_tree(work_repo.path, "main")
    try:
        second = loader.load(second_tree)
    finally:
        second_tree.close()
    assert loader.last_parsed == 1  # only j2.yaml changed; j0 and j1 come from the cache
    assert set(second.valid_jobs()) == {"j0", "j1", "j2"}
    assert second.valid_jobs()["j2"].spec.spec.job.parallelism == 3
