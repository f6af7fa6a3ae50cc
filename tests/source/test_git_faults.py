"""Faults keep the last good revision: unreachable or hung remote, bad auth, damaged cache; no token leaks."""

from __future__ import annotations

import base64
import logging
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from flink_gitops.secrets import SecretRef
from flink_gitops.source.errors import (
    AuthError,
    CacheCorruptedError,
    FetchTimeoutError,
    RemoteUnreachableError,
    SourceError,
)
from flink_gitops.source.git import GitSource
from tests.fixtures.gitserver import GitDaemon, GitHttp, Remote, WorkRepo, init_work_repo, silent_server
from tests.source.conftest import SourceFactory

pytestmark = pytest.mark.git


@pytest.fixture
def served(own_git_daemon: GitDaemon, tmp_path: Path, git_env: dict[str, str]) -> tuple[WorkRepo, str]:
    bare, url = own_git_daemon.new_remote()
    work = init_work_repo(tmp_path / "w", git_env)
    work.git("remote", "add", "origin", str(bare))
    return work, url


def test_unreachable_remote_keeps_last_good(
    served: tuple[WorkRepo, str], own_git_daemon: GitDaemon, make_source: SourceFactory
) -> None:
    work, url = served
    good = work.commit({"a.yaml": "a"})
    work.push()
    source = make_source(url)
    assert source.poll().ok

    own_git_daemon.stop()  # port now closed: connection refused
    result = source.poll()
    assert type(result.error) is RemoteUnreachableError
    assert result.error.retryable
    assert "unreachable" in str(result.error)
    assert not result.changed
    assert result.revision is not None
    assert result.revision.commit == good
    assert result.revision.tree.read("a.yaml") == b"a"  # still readable from the cache


def test_unreachable_on_first_poll_has_no_revision(make_source: SourceFactory) -> None:
    from tests.fixtures.gitserver import free_port

    result = make_source(f"git://127.0.0.1:{free_port()}/x.git").poll()
    assert isinstance(result.error, RemoteUnreachableError)
    assert result.revision is None


def test_hung_remote_times_out(make_source: SourceFactory) -> None:
    with silent_server() as port:
        result = make_source(f"git://127.0.0.1:{port}/x.git", fetch_timeout_s=1).poll()
    assert type(result.error) is FetchTimeoutError
    assert isinstance(result.error, RemoteUnreachableError)  # callers may treat both alike
    assert "within 1s" in str(result.error)


def _token_file(tmp_path: Path, value: str) -> SecretRef:
    path = tmp_path / "token"
    path.write_text(value + "\n")
    return SecretRef(file=path)


def _everything_written_under(root: Path) -> bytes:
    return b"".join(p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file() and not p.is_symlink())


def test_https_token_works_and_never_leaks(
    git_http: GitHttp,
    remote: Remote,
    make_source: SourceFactory,
    tmp_path: Path,
    captured_logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.DEBUG, logger="git.cmd")  # GitPython logs every command line it starts
    head = remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    url = git_http.url(remote.bare.name)
    token = git_http.token
    git_http.server.requests.clear()
    source = make_source(url, token=_token_file(tmp_path, token))

    result = source.poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == head
    # the token travelled as a Basic auth header, never in the URL
    assert git_http.server.requests
    assert all(auth is not None for _, _, auth in git_http.server.requests)
    assert all(token not in path for _, path, _ in git_http.server.requests)

    remote.work.commit({"a.yaml": "b"})
    remote.work.push()
    assert source.poll().ok

    assert token.encode() not in _everything_written_under(tmp_path / "cache")
    assert token not in repr(source)
    assert token not in "\n".join(captured_logs)
    # not on any command line (what ps shows), neither plain nor as the Basic credential
    commands = [r.getMessage() for r in caplog.records if "Popen(" in r.getMessage()]
    assert any("ls-remote" in c for c in commands)
    assert any("fetch" in c for c in commands)
    basic = base64.b64encode(f"{git_http.user}:{token}".encode()).decode()
    assert not any(token in c or basic in c for c in commands)


def test_wrong_token_is_an_auth_error_without_the_token(
    git_http: GitHttp, remote: Remote, make_source: SourceFactory, tmp_path: Path, captured_logs: list[str]
) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    wrong = "wrong-" + git_http.token
    result = make_source(git_http.url(remote.bare.name), token=_token_file(tmp_path, wrong)).poll()
    assert type(result.error) is AuthError
    assert not result.error.retryable
    text = f"{result.error} {result.error!r} {result.error.__cause__!r} {result.error.__context__!r}"
    assert wrong not in text
    assert wrong not in "\n".join(captured_logs)
    assert wrong.encode() not in _everything_written_under(tmp_path / "cache")


def test_missing_token_is_an_auth_error(
    git_http: GitHttp, remote: Remote, make_source: SourceFactory
) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    result = make_source(git_http.url(remote.bare.name)).poll()
    assert type(result.error) is AuthError


def test_unreadable_token_file_is_an_auth_error(
    git_http: GitHttp, remote: Remote, make_source: SourceFactory, tmp_path: Path
) -> None:
    remote.work.commit({"a.yaml": "a"})
    remote.work.push()
    result = make_source(git_http.url(remote.bare.name), token=SecretRef(file=tmp_path / "absent")).poll()
    assert type(result.error) is AuthError
    assert "absent" in str(result.error)


def _corrupt_head(repo: Path) -> None:
    (repo / "HEAD").write_text("garbage\n")


def _delete_objects(repo: Path) -> None:
    shutil.rmtree(repo / "objects")


def _garbage_in_pack(repo: Path) -> None:
    pack = next((repo / "objects/pack").glob("*.pack"))
    data = bytearray(pack.read_bytes())
    middle = len(data) // 2
    data[middle : middle + 64] = b"\xff" * 64
    pack.chmod(0o644)
    pack.write_bytes(bytes(data))


def _garbage_in_index(repo: Path) -> None:
    idx = next((repo / "objects/pack").glob("*.idx"))
    idx.chmod(0o644)
    idx.write_bytes(b"garbage")


def _dangling_ref(repo: Path) -> None:
    (repo / "refs/flink-gitops/tracked").write_text("0" * 40 + "\n")


@pytest.mark.parametrize(
    "damage", [_corrupt_head, _delete_objects, _garbage_in_pack, _garbage_in_index, _dangling_ref]
)
def test_damaged_cache_found_at_start_is_recloned(
    remote: Remote, make_source: SourceFactory, tmp_path: Path, damage: object
) -> None:
    # > fetch.unpackLimit objects, so the fetch keeps a pack to damage
    head = remote.work.commit({f"jobs/j{i:03d}.yaml": f"n: {i}\n" * 20 for i in range(120)})
    remote.work.push()
    first = make_source(remote.url)
    assert first.poll().ok
    first.close()
    assert callable(damage)
    damage(tmp_path / "cache/repo.git")

    restarted = make_source(remote.url)
    result = restarted.poll()
    assert result.ok, result.error
    assert isinstance(result.recovered, CacheCorruptedError)
    assert "moved to repo.git.corrupt-" in str(result.recovered)
    assert result.revision is not None
    assert result.revision.commit == head
    assert not result.changed or restarted.current is result.revision
    assert result.revision.tree.read("jobs/j007.yaml") == b"n: 7\n" * 20
    assert len(list((tmp_path / "cache").glob("repo.git.corrupt-*"))) == 1
    # the next poll finds a healthy cache
    again = restarted.poll()
    assert again.ok
    assert again.recovered is None


def _lose_object(repo: Path, sha: str) -> None:
    """Delete one object: unpack every pack into loose objects first, then remove its file."""
    for pack in list((repo / "objects/pack").glob("*.pack")):
        data = pack.read_bytes()
        for path in (pack, pack.with_suffix(".idx"), pack.with_suffix(".rev")):
            path.unlink(missing_ok=True)
        subprocess.run(["git", "unpack-objects", "-q"], input=data, cwd=repo, check=True, capture_output=True)
    (repo / "objects" / sha[:2] / sha[2:]).unlink()


@pytest.mark.parametrize(
    "change",
    [{"a.yaml": "b"}, {"new.bin": os.urandom(4096)}],
    ids=["delta-against-lost-blob", "no-delta"],
)
def test_cache_damaged_while_running_is_recloned_on_next_fetch(
    remote: Remote, make_source: SourceFactory, tmp_path: Path, change: dict[str, str | bytes]
) -> None:
    remote.work.commit({"a.yaml": "a", "keep.yaml": "kept"})
    remote.work.push()
    source = make_source(remote.url)
    assert source.poll().ok
    # lose one blob of a file the next commit keeps unchanged: fetch alone would not notice
    _lose_object(tmp_path / "cache/repo.git", remote.work.git("rev-parse", "HEAD:keep.yaml"))

    head = remote.work.commit(change)
    remote.work.push()
    result = source.poll()
    assert result.ok, result.error
    assert isinstance(result.recovered, CacheCorruptedError)
    assert "missing" in str(result.recovered)
    assert result.revision is not None
    assert result.revision.commit == head
    assert result.revision.tree.read("keep.yaml") == b"kept"


def test_every_fault_type_is_distinct() -> None:
    from flink_gitops.source import errors

    kinds: list[type[SourceError]] = [
        errors.RemoteUnreachableError,
        errors.FetchTimeoutError,
        errors.AuthError,
        errors.RefNotFoundError,
        errors.RepositoryError,
        errors.ForcePushError,
        errors.SignatureError,
        errors.CacheCorruptedError,
        errors.GitCommandError,
    ]
    assert len(set(kinds)) == len(kinds)
    assert all(issubclass(k, SourceError) for k in kinds)
    temporary = {k for k in kinds if k.retryable}
    assert temporary == {
        errors.RemoteUnreachableError,
        errors.FetchTimeoutError,
        errors.CacheCorruptedError,
        errors.GitCommandError,
    }


def test_source_refuses_credentials_in_the_url(tmp_path: Path, clock: object) -> None:
    from flink_gitops.clock import FakeClock
    from flink_gitops.errors import ConfigError
    from flink_gitops.settings import GitConfig

    with pytest.raises(ConfigError) as info:
        GitSource(GitConfig(url="https://user:s3cr3t@example.test/r.git"), tmp_path, clock=FakeClock())
    assert "s3cr3t" not in str(info.value)
    with pytest.raises(ConfigError):
        GitSource(GitConfig(url="https://ghp_tokenasuser@example.test/r.git"), tmp_path, clock=FakeClock())


def test_missing_blob_of_a_cached_commit_is_found_without_a_fetch(
    remote: Remote, make_source: SourceFactory, tmp_path: Path
) -> None:
    old = remote.work.commit({"a.yaml": "a", "gone.yaml": "only in the old commit"})
    remote.work.push()
    source = make_source(remote.url, allow_force_push=True)
    assert source.poll().ok
    remote.work.commit({"gone.yaml": None})
    remote.work.push()
    assert source.poll().ok
    _lose_object(tmp_path / "cache/repo.git", remote.work.git("rev-parse", f"{old}:gone.yaml"))

    # the remote goes back to a commit the cache already holds: the fetch brings nothing
    remote.work.git("reset", "-q", "--hard", old)
    remote.work.push(force=True)
    result = source.poll()
    assert result.ok, result.error
    assert isinstance(result.recovered, CacheCorruptedError)
    assert "1 objects missing" in str(result.recovered)
    assert result.revision is not None
    assert result.revision.commit == old
    assert result.revision.tree.read("gone.yaml") == b"only in the old commit"
