"""A read-only view of the files of one revision, as the spec loader sees them.

The loader (``specs.loader``) never touches Git or the filesystem directly: it
walks a :class:`Tree`. ``DirectoryTree`` serves a working directory (for
``validate`` on a checkout); ``source.git.GitTree`` serves a commit. Every entry
carries a content id (the Git blob SHA; in a working directory, the same SHA-1
computed from the file), so a loader can skip re-parsing files whose content id did not
change between two revisions. A working directory can hold what a commit cannot: a file or
directory we may not read. ``DirectoryTree`` lists it as an ``unreadable`` entry (with the reason)
instead of skipping it, and ``read`` raises :class:`~flink_gitops.source.errors.UnreadableError`,
so the loader reports it as an error naming the path.
"""

from __future__ import annotations

import errno
import hashlib
import os
import stat
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Protocol

from flink_gitops.source.errors import UnreadableError

#: "unreadable": a file or directory of a working directory that we may not read (never in a commit).
EntryKind = Literal["file", "symlink", "unreadable"]
#: lstat errors that mean "nothing there" rather than "cannot look".
_ABSENT = (errno.ENOENT, errno.ENOTDIR, errno.ENAMETOOLONG, errno.ELOOP)


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file in a revision."""

    #: POSIX path relative to the repository root, no leading "./".
    path: str
    #: content id: git blob SHA-1 hex (computed the same way in a working directory).
    blob: str
    kind: EntryKind
    size: int
    #: for an ``unreadable`` entry: why (e.g. "cannot read file: Permission denied"); None otherwise.
    error: str | None = None
    #: for an ``unreadable`` entry: it is (or, not even stat-able, may be) a directory.
    maybe_dir: bool = False


class Tree(Protocol):
    """Files of one revision."""

    #: commit SHA the tree comes from, or None for a working directory.
    commit: str | None

    def entries(self, under: str = ".") -> Iterator[TreeEntry]:
        """Every file and symlink below ``under`` (recursively), in path order."""
        ...

    def get(self, path: str) -> TreeEntry | None:
        """The entry at ``path`` (normalised, relative to the root), or None."""
        ...

    def read(self, path: str) -> bytes:
        """Content of a file (for a symlink: its target path as bytes).

        KeyError if absent; UnreadableError if it exists but cannot be read.
        """
        ...


def git_blob_sha(data: bytes) -> str:
    """The SHA-1 that Git gives a blob with this content."""
    header = f"blob {len(data)}\0".encode()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def normalise(path: str) -> str | None:
    """A repo-relative POSIX path without '.' parts, or None if it leaves the root."""
    if path.startswith("/"):  # absolute, including "//x" (which PurePosixPath keeps as a "//" part)
        return None
    parts: list[str] = []
    for part in path.split("/"):
        if part in ("", "."):
            continue
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


class DirectoryTree:
    """A working directory as a Tree, listing what a commit of it would: ``.git`` is skipped.

    Like a commit, it has no directory symlinks to walk through: a symlinked directory is one
    symlink entry, and a path below it (``get``, ``read``, ``entries(under)``) is absent, so
    ``validate`` sees what the daemon's ``GitTree`` will see and never reads outside the root.
    Nested repositories (submodule checkouts) are absent too, as their gitlinks are from a commit.
    """

    commit: str | None = None

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._root = str(self.root)
        #: path → (mtime_ns, size, blob): a file is hashed again only when it changed.
        self._blob_cache: dict[str, tuple[int, int, str]] = {}

    def _inside(self, rel: str) -> bool:
        """True when the directories on the way to ``rel`` hold this repository's files: none is a
        symlink, nor a nested repository (a submodule's checkout, which a commit has as a gitlink)."""
        parent = rel.rpartition("/")[0]
        if not parent:
            return True
        full = os.path.join(self._root, parent)
        if os.path.realpath(full) != full:
            return False
        parts = parent.split("/")
        dirs = (os.path.join(self._root, *parts[: n + 1]) for n in range(len(parts)))
        return not any(os.path.lexists(os.path.join(d, ".git")) for d in dirs)

    def _entry(self, rel: str) -> TreeEntry | None:
        """The entry at ``rel`` (its parents already known to be real directories), or None."""
        full = os.path.join(self._root, rel)
        try:
            st = os.lstat(full)
        except OSError as exc:  # its type is unknown too: it may be a directory
            return None if exc.errno in _ABSENT else _unreadable(rel, exc, maybe_dir=True)
        try:
            if stat.S_ISLNK(st.st_mode):
                target = os.fsencode(os.readlink(full))
                return TreeEntry(rel, git_blob_sha(target), "symlink", len(target))
            if not stat.S_ISREG(st.st_mode):
                return None
            cached = self._blob_cache.get(rel)
            if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
                return TreeEntry(rel, cached[2], "file", st.st_size)
            with open(full, "rb") as fh:
                blob = git_blob_sha(fh.read())
        except OSError as exc:
            return _unreadable(rel, exc)
        self._blob_cache[rel] = (st.st_mtime_ns, st.st_size, blob)
        return TreeEntry(rel, blob, "file", st.st_size)

    def entries(self, under: str = ".") -> Iterator[TreeEntry]:
        base = normalise(under)
        if base is None or (base and not self._inside(base + "/")):
            return
        start = os.path.join(self._root, base) if base else self._root
        found: list[str] = []
        denied: dict[str, OSError] = {}

        def walk_error(exc: OSError) -> None:
            if exc.errno in _ABSENT and exc.filename == start:
                return  # ``under`` does not exist: no entries, as in a commit
            denied[os.path.relpath(exc.filename or start, self._root)] = exc

        for dirpath, dirnames, filenames in os.walk(start, onerror=walk_error, followlinks=False):
            if dirpath != self._root and (".git" in dirnames or ".git" in filenames):
                dirnames[:] = []  # a nested repository: not this repository's content
                continue
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel_dir = os.path.relpath(dirpath, self._root)
            prefix = "" if rel_dir == "." else rel_dir + "/"
            found += (prefix + name for name in filenames if name != ".git")
            # symlinked directories appear in dirnames but are not walked; list them as entries
            found += (prefix + d for d in dirnames if os.path.islink(os.path.join(dirpath, d)))
        found += denied
        for rel in sorted(found):
            exc = denied.get(rel)
            entry = _unreadable(rel, exc, directory=True, maybe_dir=True) if exc else self._entry(rel)
            if entry is not None:
                yield entry

    def get(self, path: str) -> TreeEntry | None:
        rel = normalise(path)
        if not rel or not self._inside(rel):
            return None
        return self._entry(rel)

    def read(self, path: str) -> bytes:
        rel = normalise(path)
        if not rel or not self._inside(rel):
            raise KeyError(path)
        full = os.path.join(self._root, rel)
        try:
            st = os.lstat(full)
        except OSError as exc:
            if exc.errno in _ABSENT:
                raise KeyError(path) from exc
            raise UnreadableError(rel, _reason(exc)) from exc
        try:
            if stat.S_ISLNK(st.st_mode):
                return os.fsencode(os.readlink(full))
            if not stat.S_ISREG(st.st_mode):
                raise KeyError(path)
            with open(full, "rb") as fh:
                return fh.read()
        except OSError as exc:
            raise UnreadableError(rel, _reason(exc)) from exc


def _reason(exc: OSError) -> str:
    return exc.strerror or type(exc).__name__


def _unreadable(rel: str, exc: OSError, *, directory: bool = False, maybe_dir: bool = False) -> TreeEntry:
    what = "directory" if directory else "file"
    return TreeEntry(rel, "", "unreadable", 0, f"cannot read {what}: {_reason(exc)}", maybe_dir)
