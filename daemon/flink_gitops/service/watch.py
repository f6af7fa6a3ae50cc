"""A repository on local disk triggers a cycle as soon as it changes (watchfiles).

For ``run --repo DIR`` the working directory itself is watched (inside its
``.git`` only ``refs/``, ``packed-refs`` and ``HEAD``: a commit or checkout,
not git's object churn); for a ``git.url`` that is a local path or a
``file://`` URL, the repository's refs (``.git/`` of a work tree, or a bare
repository's own). Editor temp files (``*.swp``, ``*~``, ``.#*``, vim's
``4913``), lock files and the daemon's own state directory and Git cache are
never news. A burst of changes is one call of the callback (watchfiles'
debounce; ``Daemon.trigger`` coalesces what remains). The thread ends when
:meth:`Watcher.stop` sets watchfiles' ``stop_event`` (on SIGTERM, the loop
stops it). Each real directory is watched on its own (:func:`watched_dirs`):
symlinks are not followed (a link to ``/`` must not watch the whole disk), git
objects are not watched, a new directory restarts the watch. An unreadable
subdirectory is logged and left out; a watched directory that vanishes is
logged and watched again once it is back (polling reports the missing
repository meanwhile). ``git.watch: false`` turns it off; read at start.
Neighbours: ``service.loop`` (starts it, ``Daemon.trigger``), ``settings.GitConfig``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from pathlib import Path
from urllib.parse import unquote, urlsplit

import watchfiles
from loguru import logger

from flink_gitops.settings import Settings

#: watchfiles: wait this long without a new change before reporting (ms), at most ``DEBOUNCE_MS``.
STEP_MS = 100
DEBOUNCE_MS = 1600
#: seconds between looks for a watched directory that vanished (the poll schedule goes on).
VANISHED_WAIT_S = 5.0
#: the refs a commit, a checkout or a push moves.
_GIT_KEPT = ("refs", "packed-refs", "HEAD")


def _editor_temp(name: str) -> bool:
    return name.endswith(("~", ".swp", ".swx", ".swo", ".lock")) or name.startswith(".#") or name == "4913"


class RepoFilter:
    """Which changed paths under ``root`` are news. ``git_dir``: ``root`` is a git directory
    (``.git`` or a bare repository): only its refs count."""

    def __init__(self, root: Path, *, git_dir: bool, exclude: Iterable[Path] = ()) -> None:
        self.root = root
        self.git_dir = git_dir
        self.exclude = [p for p in exclude if p != root]

    def __call__(self, _change: watchfiles.Change, path: str) -> bool:
        p = Path(path)
        if _editor_temp(p.name) or "__pycache__" in p.parts:
            return False
        if any(p == e or p.is_relative_to(e) for e in self.exclude):
            return False
        try:
            rel = p.relative_to(self.root).parts
        except ValueError:
            return False
        if self.git_dir:
            return bool(rel) and rel[0] in _GIT_KEPT
        if ".git" in rel:
            inner = rel[rel.index(".git") + 1 :]
            return bool(inner) and inner[0] in _GIT_KEPT
        return True

    def may_hold_news(self, directory: Path) -> bool:
        """Whether a change inside ``directory`` (below ``root``) could ever pass this filter."""
        if "__pycache__" in directory.parts or any(
            directory == e or directory.is_relative_to(e) for e in self.exclude
        ):
            return False
        rel = directory.relative_to(self.root).parts
        if self.git_dir:
            return not rel or rel[0] == "refs"
        if ".git" in rel:
            inner = rel[rel.index(".git") + 1 :]
            return not inner or inner[0] == "refs"
        return True


def watched_dirs(watch_filter: RepoFilter) -> list[Path]:
    """The real directories under the filter's root that may hold news, symlinks not followed (a
    link to ``/`` in the repo must not make us watch the whole file system)."""
    root = watch_filter.root
    found = [root]
    for dirpath, dirnames, _files in os.walk(root, followlinks=False):
        base = Path(dirpath)
        dirnames[:] = [
            d for d in dirnames if not os.path.islink(base / d) and watch_filter.may_hold_news(base / d)
        ]
        found.extend(base / d for d in dirnames)
    return found


def local_repo(url: str) -> Path | None:
    """The directory of a ``git.url`` that is a local path or a file:// URL (None: a remote)."""
    if "://" in url:
        parts = urlsplit(url)
        if parts.scheme.lower() != "file" or parts.netloc not in ("", "localhost"):
            return None
        path = Path(unquote(parts.path))
    else:
        path = Path(url).expanduser()
    return path if path.is_dir() else None


def git_dir_of(repo: Path) -> Path | None:
    """The git directory of a work tree (``.git``) or a bare repository (itself); None otherwise."""
    if (repo / ".git").is_dir():
        return repo / ".git"
    if (repo / "HEAD").is_file() and (repo / "refs").is_dir():
        return repo
    return None


def _real_dir(path: str) -> bool:
    return os.path.isdir(path) and not os.path.islink(path)


class Watcher:
    """A thread calling ``on_change(why)`` once per burst of changes under ``root``."""

    def __init__(
        self,
        root: Path,
        on_change: Callable[[str], None],
        watch_filter: RepoFilter,
        *,
        vanished_wait_s: float = VANISHED_WAIT_S,
    ) -> None:
        self.root = root
        self.vanished_wait_s = vanished_wait_s
        self.on_change = on_change
        self.filter = watch_filter
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        #: set once the watcher runs (its first scan done): changes after it are seen.
        self.ready = threading.Event()

    @classmethod
    def for_settings(
        cls, settings: Settings, repo: Path | None, on_change: Callable[[str], None]
    ) -> Watcher | None:
        """The watcher for ``--repo DIR`` or a local ``git.url``; None when off or the repo is remote."""
        if not settings.git.watch:
            return None
        exclude = [settings.state_dir.resolve()]
        if settings.git.cache_dir is not None:
            exclude.append(settings.git.cache_dir.resolve())
        if repo is not None:
            root = repo.resolve()
            return cls(root, on_change, RepoFilter(root, git_dir=False, exclude=exclude))
        local = local_repo(settings.git.url) if settings.git.url else None
        git_dir = git_dir_of(local) if local is not None else None
        if git_dir is None:
            return None
        root = git_dir.resolve()
        return cls(root, on_change, RepoFilter(root, git_dir=True, exclude=exclude))

    def start(self) -> Watcher:
        self._thread = threading.Thread(target=self._run, name="watch", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def _run(self) -> None:
        logger.info("watching {} for changes", self.root)
        skip_denied = vanished = False
        try:
            while not self._stop.is_set():
                if not self.root.is_dir():  # gone (a re-clone?): wait for it, polling goes on
                    vanished = True
                    self.ready.set()
                    self._stop.wait(self.vanished_wait_s)
                    continue
                if vanished:
                    logger.info("file watcher: {} is back, watching it again", self.root)
                    vanished = False
                try:
                    self._watch(skip_denied=skip_denied)
                except FileNotFoundError:  # a directory went between the walk and the watch
                    self._stop.wait(STEP_MS / 1000)
                except PermissionError as exc:
                    if skip_denied:
                        raise
                    logger.warning("file watcher: {}: watching the rest of {}", exc, self.root)
                    skip_denied = True
        except (OSError, RuntimeError) as exc:  # no inotify watches left, and the like
            logger.error("file watcher stopped: {}", exc)
        finally:
            self.ready.set()

    def _watch(self, *, skip_denied: bool) -> None:
        """Watch until stopped or until the root vanishes (then say so and return)."""
        changes = watchfiles.watch(
            *watched_dirs(self.filter),
            watch_filter=self.filter,
            debounce=DEBOUNCE_MS,
            step=STEP_MS,
            stop_event=self._stop,
            rust_timeout=1000,
            yield_on_timeout=True,
            raise_interrupt=False,
            ignore_permission_denied=skip_denied,
            recursive=False,  # each directory on its own: watched_dirs did not follow symlinks
        )
        for batch in changes:
            self.ready.set()
            if self._stop.is_set():
                return
            if not self.root.is_dir():
                logger.error("file watcher: {} vanished: watching again once it is back", self.root)
                self.on_change(f"watched directory {self.root} vanished")
                return
            if batch:
                self.on_change(f"files changed: {self._describe(batch)}")
                if any(c == watchfiles.Change.added and _real_dir(p) for c, p in batch):
                    return  # a new directory: watched from the next walk on

    def _describe(self, batch: set[tuple[watchfiles.Change, str]]) -> str:
        paths = sorted({str(Path(p).relative_to(self.root)) for _, p in batch})
        more = f" (+{len(paths) - 3} more)" if len(paths) > 3 else ""
        return ", ".join(paths[:3]) + more
