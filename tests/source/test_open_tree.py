"""open_tree over real repositories: refs (branch, tag, annotated tag, SHA), symlinks, bare, large trees."""

from __future__ import annotations

import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flink_gitops.source.errors import RefNotFoundError, RepositoryError
from flink_gitops.source.git import open_tree
from flink_gitops.source.tree import DirectoryTree, git_blob_sha, normalise
from tests.fixtures.gitserver import WorkRepo, init_work_repo, run_git

pytestmark = pytest.mark.git


def test_branch_tag_and_sha_resolve_to_their_commits(work_repo: WorkRepo) -> None:
    first = work_repo.commit({"jobs/a.yaml": "a: 1\n"})
    work_repo.git("tag", "light")
    work_repo.git("tag", "-a", "annotated", "-m", "release")
    second = work_repo.commit({"jobs/a.yaml": "a: 2\n"})

    assert open_tree(work_repo.path, "main").commit == second
    assert open_tree(work_repo.path, "light").commit == first
    assert open_tree(work_repo.path, "annotated").commit == first  # peeled to the commit
    assert open_tree(work_repo.path, first).commit == first
    assert open_tree(work_repo.path, first[:10]).commit == first
    assert open_tree(work_repo.path, "main").read("jobs/a.yaml") == b"a: 2\n"
    assert open_tree(work_repo.path, "annotated").read("jobs/a.yaml") == b"a: 1\n"


def test_entries_carry_blob_sha_kind_size_in_path_order(work_repo: WorkRepo) -> None:
    files = {"b.yaml": "b\n", "a/x.yaml": "x\n", "a-b/y.yaml": "y\n", "a0": "z", "bin/run.sh": "#!/bin/sh\n"}
    work_repo.write(files)
    (work_repo.path / "bin/run.sh").chmod(0o755)
    work_repo.git("add", "bin/run.sh")
    work_repo.symlink("link.yaml", "a/x.yaml")
    work_repo.commit()

    tree = open_tree(work_repo.path, "HEAD")
    entries = list(tree.entries())
    assert [e.path for e in entries] == sorted([*files, "link.yaml"])
    for entry in entries:
        data = tree.read(entry.path)
        assert entry.blob == git_blob_sha(data)
        assert entry.size == len(data)
    link = tree.get("link.yaml")
    assert link is not None
    assert link.kind == "symlink"
    assert tree.read("link.yaml") == b"a/x.yaml"
    assert tree.get("bin/run.sh") is not None
    assert tree.get("bin/run.sh").kind == "file"  # type: ignore[union-attr]
    # same view as the checkout on disk
    assert entries == list(DirectoryTree(work_repo.path).entries())


def test_entries_under_a_directory_and_path_normalisation(work_repo: WorkRepo) -> None:
    work_repo.commit({"jobs/a.yaml": "a", "jobs/sub/b.yaml": "b", "jobsx/c.yaml": "c", "top.yaml": "t"})
    tree = open_tree(work_repo.path, "main")
    assert [e.path for e in tree.entries("jobs")] == ["jobs/a.yaml", "jobs/sub/b.yaml"]
    assert [e.path for e in tree.entries("./jobs/sub/")] == ["jobs/sub/b.yaml"]
    assert list(tree.entries("../outside")) == []
    assert list(tree.entries("missing")) == []
    assert tree.get("./jobs/../top.yaml") is not None
    assert tree.get("jobs") is None  # directories are not entries
    assert tree.get("../top.yaml") is None
    with pytest.raises(KeyError):
        tree.read("nope.yaml")


def test_paths_through_a_directory_symlink_are_absent_as_in_the_commit(
    work_repo: WorkRepo, tmp_path: Path
) -> None:
    """A symlinked directory is one symlink entry: the checkout never reads through it (outside the root)."""
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.jar").write_bytes(b"not in the repository")
    work_repo.write({"jobs/a.yaml": "a"})
    work_repo.symlink("jars", str(outside))
    work_repo.symlink("jobs-link", "jobs")
    work_repo.commit()
    commit, checkout = open_tree(work_repo.path, "main"), DirectoryTree(work_repo.path)
    try:
        for tree in (commit, checkout):
            assert [(e.path, e.kind) for e in tree.entries()] == [
                ("jars", "symlink"),
                ("jobs-link", "symlink"),
                ("jobs/a.yaml", "file"),
            ]
            assert tree.get("jars/secret.jar") is None
            assert tree.get("jobs-link/a.yaml") is None
            assert list(tree.entries("jars")) == []
            assert list(tree.entries("jobs-link")) == []
            with pytest.raises(KeyError):
                tree.read("jars/secret.jar")
            assert tree.read("jars") == str(outside).encode()
        assert list(commit.entries()) == list(checkout.entries())
    finally:
        commit.close()


def test_normalise_rejects_every_absolute_path() -> None:
    assert normalise("//etc/passwd") is None  # PurePosixPath kept "//" as a part: "///etc/passwd"
    assert normalise("/etc") is None
    assert normalise("../x") is None
    assert normalise("a/../../x") is None
    assert normalise("./a//b/./c/../d/") == "a/b/d"
    assert normalise("") == normalise(".") == ""
    assert DirectoryTree(Path("/")).get("//etc/passwd") is None


def test_submodules_are_skipped(work_repo: WorkRepo) -> None:
    work_repo.write({"a.yaml": "a"})
    sub_sha = work_repo.commit()
    # a gitlink entry (mode 160000) pointing at some commit, as a submodule would add
    work_repo.git("update-index", "--add", "--cacheinfo", f"160000,{sub_sha},vendor/lib")
    work_repo.commit()
    tree = open_tree(work_repo.path, "main")
    assert [e.path for e in tree.entries()] == ["a.yaml"]
    # its checkout (a nested repository: .git as a file, as git submodule writes it) is not listed either
    (work_repo.path / "vendor/lib").mkdir(parents=True)
    (work_repo.path / "vendor/lib/.git").write_text("gitdir: ../../.git/modules/lib\n", encoding="utf-8")
    (work_repo.path / "vendor/lib/job.yaml").write_text("b", encoding="utf-8")
    (work_repo.path / "vendor/other/.git").mkdir(parents=True)  # a nested clone
    (work_repo.path / "vendor/other/job.yaml").write_text("c", encoding="utf-8")
    checkout = DirectoryTree(work_repo.path)
    assert [e.path for e in checkout.entries()] == ["a.yaml"]
    assert list(checkout.entries("vendor/lib")) == []
    assert checkout.get("vendor/lib/job.yaml") is None


def test_bare_repository(work_repo: WorkRepo, tmp_path: Path) -> None:
    head = work_repo.commit({"a.yaml": "a"})
    bare = tmp_path / "bare.git"
    run_git(["clone", "-q", "--bare", str(work_repo.path), str(bare)], cwd=tmp_path, env=work_repo.env)
    tree = open_tree(bare, "main")
    assert tree.commit == head
    assert tree.read("a.yaml") == b"a"


def test_unknown_ref_and_non_repository(work_repo: WorkRepo, tmp_path: Path) -> None:
    work_repo.commit({"a.yaml": "a"})
    for bad in ("nope", "-h", "0" * 40, "main\nx"):
        with pytest.raises(RefNotFoundError):
            open_tree(work_repo.path, bad)
    empty = tmp_path / "plain"
    empty.mkdir()
    with pytest.raises(RepositoryError):
        open_tree(empty, "main")
    with pytest.raises(RepositoryError):
        open_tree(tmp_path / "absent", "main")


def test_large_tree_lists_and_reads(work_repo: WorkRepo) -> None:
    count = 10_000
    head = work_repo.bulk_commit(
        {f"jobs/d{i % 100:02d}/job{i:05d}.yaml": f"n: {i}\n".encode() for i in range(count)}
    )
    tree = open_tree(work_repo.path, "main")
    assert tree.commit == head
    entries = list(tree.entries())
    assert len(entries) == count
    assert [e.path for e in entries] == sorted(e.path for e in entries)
    assert len(list(tree.entries("jobs/d07"))) == count // 100
    sample = entries[::97]
    assert all(tree.read(e.path) == f"n: {int(e.path[-10:-5])}\n".encode() for e in sample)
    batch = tree.read_blobs([e.blob for e in entries])
    assert len(batch) == count  # every content differs
    assert all(batch[e.blob] == f"n: {int(e.path[-10:-5])}\n".encode() for e in entries)
    tree.close()
    assert tree.read(entries[0].path) == b"n: 0\n"  # reopens its reader after close()


def test_read_blobs_in_one_pass(work_repo: WorkRepo) -> None:
    work_repo.write({"a": "same\n", "b": "same\n", "c": "", "d": b"\x00\n\xffbinary\n"})
    work_repo.symlink("l", "a")
    work_repo.commit()
    tree = open_tree(work_repo.path, "main")
    entries = list(tree.entries())
    blobs = tree.read_blobs([e.blob for e in entries] * 2)
    assert {e.path: blobs[e.blob] for e in entries} == {e.path: tree.read(e.path) for e in entries}
    assert tree.read_blobs([]) == {}
    with pytest.raises(KeyError):
        tree.read_blobs([entries[0].blob, "1" * 40])
    commit_sha = tree.commit
    assert commit_sha is not None
    with pytest.raises(KeyError):
        tree.read_blobs([commit_sha])  # not a blob
    with pytest.raises(KeyError):
        tree.read_blob(commit_sha)


_names = st.text(alphabet="abcxyz019-_.", min_size=1, max_size=6).filter(lambda n: n not in (".", ".."))
_paths = st.lists(_names, min_size=1, max_size=3).map("/".join)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(files=st.dictionaries(_paths, st.binary(max_size=64), min_size=1, max_size=12))
def test_git_tree_matches_the_checkout(files: dict[str, bytes], git_env: dict[str, str]) -> None:
    """For any set of files, the commit's tree and the working directory list the same entries."""
    paths = sorted(files)
    # a path cannot be both a file and a directory
    files = {p: files[p] for p in paths if not any(q.startswith(p + "/") for q in paths)}
    with tempfile.TemporaryDirectory() as tmp:
        repo = init_work_repo(Path(tmp) / "w", git_env)
        repo.commit(files)
        tree = open_tree(repo.path, "main")
        try:
            assert list(tree.entries()) == list(DirectoryTree(repo.path).entries())
            assert all(tree.read(p) == data for p, data in files.items())
        finally:
            tree.close()
