"""GitSource against a real git daemon: clone, fetch, branch / tag / pinned commit, shallow, force-push."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_gitops.source.errors import ForcePushError, RefNotFoundError, RepositoryError
from tests.fixtures.gitserver import GitDaemon, Remote, run_git
from tests.source.conftest import SourceFactory

pytestmark = pytest.mark.git


def cache_git(cache: Path, *args: str) -> str:
    return run_git(
        list(args), cwd=cache / "repo.git", env={"GIT_CONFIG_GLOBAL": "/dev/null", "PATH": "/usr/bin:/bin"}
    )


def test_clone_then_fetch_new_commits(remote: Remote, make_source: SourceFactory, tmp_path: Path) -> None:
    first = remote.work.commit({"jobs/a.yaml": "a: 1\n", "jobs/b.yaml": "b: 1\n"}, message="add jobs")
    remote.work.push()
    source = make_source(remote.url)

    result = source.poll()
    assert result.ok
    assert result.changed
    rev = result.revision
    assert rev is not None
    assert rev.commit == first
    assert rev.remote_ref == "refs/heads/main"
    assert rev.summary == "add jobs"
    assert rev.author == "Test Author <author@example.test>"
    assert rev.signer is None
    assert rev.tree.read("jobs/a.yaml") == b"a: 1\n"
    assert source.current is rev

    second = remote.work.commit({"jobs/a.yaml": "a: 2\n", "jobs/c.yaml": "c\n", "jobs/b.yaml": None})
    remote.work.push()
    result = source.poll()
    assert result.ok
    assert result.changed
    assert result.revision is not None
    assert result.revision.commit == second
    assert result.revision.tree.read("jobs/a.yaml") == b"a: 2\n"
    assert result.revision.tree.get("jobs/b.yaml") is None
    assert source.changed_paths(first, second) == ["jobs/a.yaml", "jobs/b.yaml", "jobs/c.yaml"]
    # the cache is bare: no working copy, and the remote URL is not stored in its config
    assert (tmp_path / "cache/repo.git/HEAD").is_file()
    assert not (tmp_path / "cache/repo.git/jobs").exists()
    assert remote.url not in (tmp_path / "cache/repo.git/config").read_text()


def test_no_change_poll_reuses_the_revision_and_its_tree(remote: Remote, make_source: SourceFactory) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    source = make_source(remote.url)
    first = source.poll()
    again = source.poll()
    assert again.ok
    assert not again.changed
    assert again.revision is first.revision
    assert again.revision is not None
    assert first.revision is not None
    assert again.revision.tree is first.revision.tree


def test_tracks_an_annotated_tag(remote: Remote, make_source: SourceFactory) -> None:
    tagged = remote.work.commit({"a.yaml": "v1"})
    remote.work.git("tag", "-a", "release", "-m", "release 1")
    remote.work.commit({"a.yaml": "v2"})
    remote.work.push("HEAD:refs/heads/main", "refs/tags/release")
    source = make_source(remote.url, ref="release")
    result = source.poll()
    assert result.ok
    assert result.revision is not None
    assert result.revision.commit == tagged  # peeled to the commit
    assert result.revision.remote_ref == "refs/tags/release"
    assert result.revision.tree.read("a.yaml") == b"v1"

    # moving the tag forward is followed
    moved = remote.work.commit({"a.yaml": "v3"})
    remote.work.git("tag", "-f", "-a", "release", "-m", "release 2")
    remote.work.push("HEAD:refs/heads/main", "refs/tags/release", force=True)
    result = source.poll()
    assert result.ok
    assert result.changed
    assert result.revision is not None
    assert result.revision.commit == moved


def test_tracks_a_branch_by_full_ref_name(remote: Remote, make_source: SourceFactory) -> None:
    remote.work.commit({"a.yaml": "main"})
    remote.work.push()
    other = remote.work.commit({"a.yaml": "release"})
    remote.work.push("HEAD:refs/heads/release")
    result = make_source(remote.url, ref="refs/heads/release").poll()
    assert result.ok
    assert result.revision is not None
    assert result.revision.commit == other


def test_pinned_commit_stays_put_and_needs_no_fetch_once_cached(
    own_git_daemon: GitDaemon, make_source: SourceFactory, tmp_path: Path, git_env: dict[str, str]
) -> None:
    from tests.fixtures.gitserver import init_work_repo

    bare, url = own_git_daemon.new_remote()
    work = init_work_repo(tmp_path / "w", git_env)
    work.git("remote", "add", "origin", str(bare))
    pinned = work.commit({"a.yaml": "pinned"})
    for i in range(3):
        work.commit({"a.yaml": f"later {i}"})
    work.push()

    source = make_source(url, ref=pinned.upper(), depth=1)  # SHA case does not matter
    result = source.poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == pinned
    assert result.revision.remote_ref == pinned
    assert result.revision.tree.read("a.yaml") == b"pinned"

    own_git_daemon.stop()  # a pinned commit already in the cache needs no remote
    again = source.poll()
    assert again.ok
    assert not again.changed
    assert again.revision is result.revision


def test_pinned_commit_missing_on_remote(remote: Remote, make_source: SourceFactory) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    local_only = remote.work.commit({"a.yaml": "never pushed"})
    result = make_source(remote.url, ref=local_only).poll()
    assert isinstance(result.error, RefNotFoundError)
    assert result.revision is None


def test_shallow_clone_then_incremental_fetch(
    remote: Remote, make_source: SourceFactory, tmp_path: Path
) -> None:
    for i in range(6):
        remote.work.commit({"a.yaml": f"{i}"})
    remote.work.push()
    source = make_source(remote.url, depth=2)
    assert source.poll().ok
    assert cache_git(tmp_path / "cache", "rev-parse", "--is-shallow-repository") == "true"
    assert cache_git(tmp_path / "cache", "rev-list", "--count", "refs/flink-gitops/tracked") == "2"

    for i in range(5):  # more new commits than the depth: still recognised as descendants
        head = remote.work.commit({"a.yaml": f"new {i}"})
    remote.work.push()
    result = source.poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == head


def test_full_history_when_depth_is_zero(remote: Remote, make_source: SourceFactory, tmp_path: Path) -> None:
    for i in range(4):
        remote.work.commit({"a.yaml": f"{i}"})
    remote.work.push()
    assert make_source(remote.url, depth=0).poll().ok
    assert cache_git(tmp_path / "cache", "rev-parse", "--is-shallow-repository") == "false"
    assert cache_git(tmp_path / "cache", "rev-list", "--count", "refs/flink-gitops/tracked") == "4"


def _force_push_setup(remote: Remote) -> tuple[str, str, str]:
    base = remote.work.commit({"a.yaml": "base"})
    good = remote.work.commit({"a.yaml": "good"})
    remote.work.push()
    return base, good, ""


def _rewrite(remote: Remote, base: str, content: str) -> str:
    remote.work.git("reset", "-q", "--hard", base)
    rewritten = remote.work.commit({"a.yaml": content})
    remote.work.push(force=True)
    return rewritten


@pytest.mark.parametrize("depth", [0, 1])
def test_force_push_is_refused_and_last_good_kept(
    remote: Remote, make_source: SourceFactory, depth: int
) -> None:
    base, good, _ = _force_push_setup(remote)
    source = make_source(remote.url, depth=depth)
    assert source.poll().ok

    rewritten = _rewrite(remote, base, "rewritten")
    for _ in range(2):  # refused on every poll until someone acts
        result = source.poll()
        assert isinstance(result.error, ForcePushError)
        assert not result.error.retryable
        assert result.error.last_good == good
        assert result.error.new == rewritten
        assert "history rewritten" in str(result.error)
        assert not result.changed
        assert result.revision is not None
        assert result.revision.commit == good
        assert result.revision.tree.read("a.yaml") == b"good"

    # fixing the remote (a descendant of the last good commit again) is accepted
    remote.work.git("reset", "-q", "--hard", good)
    fixed = remote.work.commit({"a.yaml": "fixed"})
    remote.work.push(force=True)
    result = source.poll()
    assert result.ok
    assert result.revision is not None
    assert result.revision.commit == fixed


def test_force_push_detected_across_a_restart(remote: Remote, make_source: SourceFactory) -> None:
    base, good, _ = _force_push_setup(remote)
    first = make_source(remote.url)
    assert first.poll().ok
    first.close()
    _rewrite(remote, base, "rewritten")

    restarted = make_source(remote.url)  # same cache dir: remembers the last good commit
    result = restarted.poll()
    assert isinstance(result.error, ForcePushError)
    assert result.error.last_good == good

    # another ref is a different baseline: no claim of a rewrite
    other = make_source(remote.url, ref="refs/heads/main")
    assert other.poll().ok


def test_force_push_accepted_when_allowed(remote: Remote, make_source: SourceFactory) -> None:
    base, _good, _ = _force_push_setup(remote)
    source = make_source(remote.url, allow_force_push=True)
    assert source.poll().ok
    rewritten = _rewrite(remote, base, "rewritten")
    result = source.poll()
    assert result.ok
    assert result.changed
    assert result.revision is not None
    assert result.revision.commit == rewritten


def test_unknown_branch_and_unknown_repository(
    remote: Remote, git_daemon: GitDaemon, make_source: SourceFactory
) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    result = make_source(remote.url, ref="no-such-branch").poll()
    assert isinstance(result.error, RefNotFoundError)
    assert result.revision is None
    assert not result.changed
    missing = make_source(git_daemon.url("absent.git"), cache="c2").poll()
    assert isinstance(missing.error, RepositoryError)
    assert not missing.error.retryable


def test_pinned_commit_from_a_server_that_refuses_fetch_by_sha(
    remote: Remote, make_source: SourceFactory, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    pinned = remote.work.commit({"a.yaml": "pinned"})
    remote.work.commit({"a.yaml": "later"})
    remote.work.push()
    # protocol v0 without uploadpack.allowReachableSHA1InWant: "want <sha>" of a non-tip is refused
    monkeypatch.setenv("GIT_CONFIG_COUNT", "1")
    monkeypatch.setenv("GIT_CONFIG_KEY_0", "protocol.version")
    monkeypatch.setenv("GIT_CONFIG_VALUE_0", "0")
    result = make_source(remote.url, ref=pinned, depth=1).poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.tree.read("a.yaml") == b"pinned"
    # it came from the fall-back: every branch, full depth
    assert cache_git(tmp_path / "cache", "rev-parse", "refs/flink-gitops/all/heads/main") != pinned
    assert cache_git(tmp_path / "cache", "rev-parse", "--is-shallow-repository") == "false"


@pytest.mark.parametrize("form", ["path", "file-url"])
def test_local_repository_as_remote(remote: Remote, make_source: SourceFactory, form: str) -> None:
    head = remote.work.commit({"a.yaml": "local"})
    remote.work.push()
    url = str(remote.bare) if form == "path" else remote.bare.as_uri()
    result = make_source(url).poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == head
    assert result.revision.tree.read("a.yaml") == b"local"


def test_ref_deleted_or_not_a_commit_keeps_last_good(remote: Remote, make_source: SourceFactory) -> None:
    good = remote.work.commit({"a.yaml": "a"})
    remote.work.push("HEAD:refs/heads/main", "HEAD:refs/heads/feature")
    source = make_source(remote.url, ref="feature")
    assert source.poll().ok
    remote.work.git("push", "-q", "origin", ":refs/heads/feature")
    result = source.poll()
    assert isinstance(result.error, RefNotFoundError)
    assert result.revision is not None
    assert result.revision.commit == good

    tree_sha = remote.work.git("rev-parse", "HEAD^{tree}")
    remote.work.git("tag", "-a", "tree-tag", "-m", "a tag of a tree", tree_sha)
    remote.work.push("refs/tags/tree-tag")
    odd = make_source(remote.url, cache="c2", ref="tree-tag").poll()
    assert isinstance(odd.error, RefNotFoundError)
    assert "points to a tree, not a commit" in str(odd.error)
    assert odd.recovered is None  # not mistaken for a damaged cache
