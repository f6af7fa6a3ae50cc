"""The file watcher on a real directory: a burst of edits is one trigger (or two), editor temp
files, git internals and the daemon's own state are not news, a commit to a local git.url is;
hostile trees: symlinks (to outside, loops) not followed, a new directory watched, a repo that
vanishes and comes back, an unreadable subdirectory left out with a warning."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from flink_gitops.service.watch import RepoFilter, Watcher, local_repo, watched_dirs
from flink_gitops.settings import GitConfig, Settings
from tests.cli.clirun import drops_to_nobody, open_tempdir, remove_tree, unprivileged_prefix

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


# --- hostile trees --------------------------------------------------------------------------------


def start_watching(root: Path, **kw: float) -> tuple[Watcher, Triggers]:
    triggers = Triggers()
    watcher = Watcher(root, triggers, RepoFilter(root, git_dir=False), **kw)
    watcher.start()
    assert watcher.ready.wait(WAIT_S)
    return watcher, triggers


def test_symlinks_are_not_followed_and_git_objects_not_walked(tmp_path: Path) -> None:
    """A link to ``/`` in the repo made the watcher walk (and watch) the whole disk."""
    repo, outside = tmp_path / "repo", tmp_path / "outside"
    (repo / "jobs").mkdir(parents=True)
    (repo / ".git" / "objects" / "ab").mkdir(parents=True)
    (repo / ".git" / "refs" / "heads").mkdir(parents=True)
    outside.mkdir()
    (repo / "jobs" / "out").symlink_to(outside)
    (repo / "jobs" / "loop").symlink_to("..")
    (repo / "a").symlink_to("b")
    (repo / "b").symlink_to("a")
    dirs = watched_dirs(RepoFilter(repo, git_dir=False))
    assert sorted(str(d.relative_to(repo)) for d in dirs) == [
        ".",
        ".git",
        ".git/refs",
        ".git/refs/heads",
        "jobs",
    ]
    watcher, triggers = start_watching(repo)
    try:
        (outside / "elsewhere.yaml").write_text("not in the repo\n")
        (repo / "jobs" / "sentinel.yaml").write_text("x")
        upto = triggers.wait_for("sentinel")
        assert not any("elsewhere" in s for s in upto), upto
    finally:
        watcher.stop()


def test_a_new_directory_is_watched_too(tmp_path: Path) -> None:
    watcher, triggers = start_watching(tmp_path)
    try:
        (tmp_path / "jobs" / "team").mkdir(parents=True)
        triggers.wait_for("jobs")
        for i in range(int(WAIT_S * 10)):  # until the restarted watch sees inside it
            (tmp_path / "jobs" / "team" / f"a{i}.yaml").write_text("x")
            with triggers.changed:
                if triggers.changed.wait_for(lambda: any("jobs/team/a" in s for s in triggers.seen), 0.1):
                    break
        assert any("jobs/team/a" in s for s in triggers.seen), triggers.seen
    finally:
        watcher.stop()


def test_a_vanished_repo_is_logged_and_watched_again_once_it_is_back(tmp_path: Path) -> None:
    root = tmp_path / "repo"
    root.mkdir()
    watcher, triggers = start_watching(root, vanished_wait_s=0.05)
    try:
        shutil.rmtree(root)
        triggers.wait_for("vanished")
        root.mkdir()
        for i in range(int(WAIT_S * 10)):
            (root / f"back{i}.yaml").write_text("x")
            with triggers.changed:
                if triggers.changed.wait_for(lambda: any("back" in s for s in triggers.seen), 0.1):
                    break
        assert any("files changed: back" in s for s in triggers.seen), triggers.seen
        assert watcher._thread is not None
        assert watcher._thread.is_alive()
    finally:
        watcher.stop()


_UNREADABLE_SUBDIR = """
import sys, threading
from pathlib import Path
from flink_gitops.service.watch import RepoFilter, Watcher
root = Path(sys.argv[1]); seen = threading.Event()
w = Watcher(root, lambda why: seen.set() if "ok.yaml" in why else None, RepoFilter(root, git_dir=False))
w.start(); w.ready.wait(15)
for i in range(150):
    (root / "ok.yaml").write_text(str(i))
    if seen.wait(0.1):
        break
print("seen" if seen.is_set() else "missed", w._thread.is_alive())
w.stop()
"""


def test_an_unreadable_subdirectory_is_logged_and_the_rest_watched() -> None:
    prefix = unprivileged_prefix()
    if prefix is None:
        pytest.skip("no way to run unprivileged here")
    top = open_tempdir("fg-watch-")
    try:
        (top / "secret" / "deep").mkdir(parents=True)
        (top / "secret").chmod(0)
        if drops_to_nobody():
            os.chown(top, 65534, 65534)
        proc = subprocess.run(
            [*prefix, sys.executable, "-c", _UNREADABLE_SUBDIR, str(top)],
            capture_output=True,
            text=True,
            timeout=60,
            check=False,
        )
        assert proc.stdout.split() == ["seen", "True"], proc.stdout + proc.stderr
        assert "Permission denied" in proc.stderr, proc.stderr
        assert "watching the rest of" in proc.stderr
        assert "Traceback" not in proc.stderr
    finally:
        remove_tree(top)
