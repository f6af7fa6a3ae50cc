"""The file watcher on a real directory: a burst of edits is one trigger (or two), editor temp
files, git internals and the daemon's own state are not news, a commit to a local git.url is."""

from __future__ import annotations

import subprocess
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.service.watch import RepoFilter, Watcher, local_repo
from flink_gitops.settings import GitConfig, Settings

WAIT_S = 15.0


class Triggers:
    def __init__(self) -> None:
        self.seen: list[str] = []
        self.changed = threading.Condition()

    def __call__(self, why: str) -> None:
        with self.changed:
            self.seen.append(why)
            self.changed.notify_all()

    def wait_for(self, text: str) -> list[str]:
        """Every trigger up to the first that mentions ``text`` (AssertionError after WAIT_S)."""
        with self.changed:
            ok = self.changed.wait_for(lambda: any(text in s for s in self.seen), WAIT_S)
            assert ok, f"no trigger mentioning {text!r}: {self.seen}"
            first = next(i for i, s in enumerate(self.seen) if text in s)
            return self.seen[: first + 1]


@pytest.fixture
def watched(tmp_path: Path) -> Iterator[tuple[Path, Triggers]]:
    repo = tmp_path / "repo"
    (repo / "jobs").mkdir(parents=True)
    (repo / ".git" / "objects").mkdir(parents=True)
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    (repo / "state").mkdir()
    settings = Settings(state_dir=repo / "state")
    triggers = Triggers()
    watcher = Watcher.for_settings(settings, repo, triggers)
    assert watcher is not None
    watcher.start()
    assert watcher.ready.wait(WAIT_S), "the watcher reports at least once a second"
    try:
        yield repo, triggers
    finally:
        watcher.stop()


def test_a_burst_of_edits_is_at_most_two_triggers(watched: tuple[Path, Triggers]) -> None:
    repo, triggers = watched
    for i in range(30):
        (repo / "jobs" / f"j{i % 5}.yaml").write_text(f"edit {i}\n")
    first = triggers.wait_for("files changed: jobs/j")
    (repo / "sentinel").write_text("after the burst")
    upto = triggers.wait_for("sentinel")
    assert 1 <= len([s for s in upto if "jobs/j" in s]) <= 2, upto
    assert first[0].startswith("files changed: jobs/j0.yaml, jobs/j1.yaml, jobs/j2.yaml (+2 more)")


def test_temp_files_git_internals_and_the_state_dir_are_not_news(watched: tuple[Path, Triggers]) -> None:
    repo, triggers = watched
    (repo / "jobs" / ".orders.yaml.swp").write_text("x")
    (repo / "jobs" / "orders.yaml~").write_text("x")
    (repo / "jobs" / ".#orders.yaml").write_text("x")
    (repo / ".git" / "objects" / "ab").write_text("x")
    (repo / "state" / "state.db").write_text("x")
    (repo / ".git" / "refs" / "heads" / "main").write_text("1" * 40)
    upto = triggers.wait_for("refs/heads/main")
    assert upto == ["files changed: .git/refs/heads/main"], upto


def test_a_local_git_url_is_watched_at_its_refs(tmp_path: Path) -> None:
    repo = tmp_path / "origin"

    def git(*args: str) -> None:
        subprocess.run(["git", "-C", str(repo), *args], check=True, capture_output=True)

    repo.mkdir()
    git("init", "-q", "-b", "main")
    git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "one")
    assert local_repo(f"file://{repo}") == repo
    assert local_repo("https://example.com/r.git") is None
    settings = Settings(state_dir=tmp_path / "state", git=GitConfig(url=f"file://{repo}"))
    triggers = Triggers()
    watcher = Watcher.for_settings(settings, None, triggers)
    assert watcher is not None
    assert watcher.root == (repo / ".git").resolve()
    watcher.start()
    try:
        assert watcher.ready.wait(WAIT_S)
        (repo / "spec.yaml").write_text("a work tree edit, not a commit: not news\n")
        git("-c", "user.name=t", "-c", "user.email=t@e", "commit", "-q", "--allow-empty", "-m", "two")
        upto = triggers.wait_for("refs/heads/main")
        assert not any("spec.yaml" in s or "objects" in s or "logs" in s for s in upto), upto
    finally:
        watcher.stop()
    off = Settings(state_dir=tmp_path / "state", git=GitConfig(url=str(repo), watch=False))
    assert Watcher.for_settings(off, None, triggers) is None


def test_the_filter() -> None:
    root = Path("/r")
    f = RepoFilter(root, git_dir=False, exclude=[Path("/r/state")])
    assert f(None, "/r/jobs/a.yaml")  # type: ignore[arg-type]
    assert f(None, "/r/.git/HEAD")  # type: ignore[arg-type]
    assert f(None, "/r/.git/packed-refs")  # type: ignore[arg-type]
    assert not f(None, "/r/.git/index")  # type: ignore[arg-type]
    assert not f(None, "/r/.git/refs/heads/main.lock")  # type: ignore[arg-type]
    assert not f(None, "/r/state/x.db")  # type: ignore[arg-type]
    assert not f(None, "/r/jobs/4913")  # type: ignore[arg-type]
    bare = RepoFilter(root, git_dir=True)
    assert bare(None, "/r/refs/heads/main")  # type: ignore[arg-type]
    assert not bare(None, "/r/objects/ab/cd")  # type: ignore[arg-type]
