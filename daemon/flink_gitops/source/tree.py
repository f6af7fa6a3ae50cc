"""A read-only view of the files of one revision, as the spec loader sees them.

The loader (``specs.loader``) never touches Git or the filesystem directly: it
walks a :class:`Tree`. ``DirectoryTree`` serves a working directory (for
``validate`` on a checkout); ``source.git.GitTree`` serves a commit. Every entry
carries a content id (the Git blob SHA, or for a directory a SHA-1 computed
the same way), so a loader can skip re-parsing files whose content id did not
change between two revisions.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Literal, Protocol

EntryKind = Literal["file", "symlink"]


@dataclass(frozen=True, slots=True)
class TreeEntry:
    """One file in a revision."""

    #: POSIX path relative to the repository root, no leading "./".
    path: str
    #: content id: git blob SHA-1 hex (same algorithm for directories).
    blob: str
    kind: EntryKind
    size: int


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
        """Content of a file (for a symlink: its target path as bytes). KeyError if absent."""
        ...


def git_blob_sha(data: bytes) -> str:
    """The SHA-1 that Git gives a blob with this content."""
    header = f"blob {len(data)}\0".encode()
    return hashlib.sha1(header + data, usedforsecurity=False).hexdigest()


def normalise(path: str) -> str | None:
    """A repo-relative POSIX path without '.' parts, or None if it leaves the root."""
    parts: list[str] = []
    for part in PurePosixPath(path).parts:
        if part in ("", "."):
            continue
        if part == "/":
            return None
        if part == "..":
            if not parts:
                return None
            parts.pop()
            continue
        parts.append(part)
    return "/".join(parts)


class DirectoryTree:
    """A working directory as a Tree. ``.git`` directories are skipped."""

    commit: str | None = None

    def __init__(self, root: Path) -> None:
        self.root = root.resolve()
        self._blob_cache: dict[str, tuple[int, int, str]] = {}

    def _entry(self, rel: str) -> TreeEntry | None:
        full = self.root / rel
        try:
            st = full.lstat()
        except OSError:
            return None
        if os.path.islink(full):
            target = os.readlink(full).encode()
            return TreeEntry(rel, git_blob_sha(target), "symlink", len(target))
        if not full.is_file():
            return None
        cached = self._blob_cache.get(rel)
        if cached is not None and cached[:2] == (st.st_mtime_ns, st.st_size):
            return TreeEntry(rel, cached[2], "file", st.st_size)
        blob = git_blob_sha(full.read_bytes())
        self._blob_cache[rel] = (st.st_mtime_ns, st.st_size, blob)
        return TreeEntry(rel, blob, "file", st.st_size)

    def entries(self, under: str = ".") -> Iterator[TreeEntry]:
        base = normalise(under)
        if base is None:
            return
        start = self.root / base if base else self.root
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(start, followlinks=False):
            dirnames[:] = sorted(d for d in dirnames if d != ".git")
            rel_dir = Path(dirpath).relative_to(self.root).as_posix()
            for name in filenames:
                found.append(name if rel_dir == "." else f"{rel_dir}/{name}")
            # symlinked directories appear in dirnames but are not walked; list them as entries
            for d in list(dirnames):
                if os.path.islink(os.path.join(dirpath, d)):
                    found.append(d if rel_dir == "." else f"{rel_dir}/{d}")
        for rel in sorted(found):
            entry = self._entry(rel)
            if entry is not None:
                yield entry

    def get(self, path: str) -> TreeEntry | None:
        rel = normalise(path)
        if not rel:
            return None
        return self._entry(rel)

    def read(self, path: str) -> bytes:
        rel = normalise(path)
        entry = self.get(path) if rel else None
        if entry is None or rel is None:
            raise KeyError(path)
        full = self.root / rel
        if entry.kind == "symlink":
            return os.readlink(full).encode()
        return full.read_bytes()
