"""Jar bytes for upload, kept by content: ``<state_dir>/jars/<sha256>.jar``.

Every jar the daemon deploys is written here first, checked against its
SHA-256, so that a rollback can upload the last stable spec's jar even when
that jar has since left the repository. Repo jars come from the revision's
tree, ``file://`` jars from the host; ``https://`` jars are downloaded with a
size limit and must be pinned (``jarSha256``) unless unpinned artifacts are
allowed. A jar whose bytes do not match its pin is refused. Neighbours:
``execute.procedures`` (asks :meth:`ArtifactCache.path_for`), ``source.tree``
(repo jars), ``specs.loader`` (computed the digests).
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import urllib.request
from pathlib import Path

from flink_gitops.errors import PermanentError, TemporaryError
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.source.tree import Tree

#: the largest jar accepted, bytes (a fat jar of a big job is tens of MB).
MAX_JAR_BYTES = 512 * 1024 * 1024
_CHUNK = 1024 * 1024


class ArtifactRefused(PermanentError):
    """The jar cannot be used as asked: missing, wrong bytes, unpinned, or too large."""


class ArtifactUnavailable(TemporaryError):
    """The jar could not be fetched now (network); trying again may work."""


class ArtifactCache:
    """Content-addressed jar files; :meth:`use_tree` sets the revision repo jars are read from."""

    def __init__(self, root: Path, *, allow_unpinned: bool = False, timeout_s: float = 60.0) -> None:
        self.root = root
        self.allow_unpinned = allow_unpinned
        self.timeout_s = timeout_s
        self._tree: Tree | None = None

    def use_tree(self, tree: Tree) -> None:
        self._tree = tree

    def path_for(self, spec: RunSpec) -> Path:
        """A local file with the spec's jar bytes, verified; fetched into the cache on first use."""
        if spec.jar_sha256 is not None:
            cached = self.root / f"{spec.jar_sha256}.jar"
            if cached.is_file():
                return cached
        data = self._fetch(spec)
        sha = hashlib.sha256(data).hexdigest()
        if spec.jar_sha256 is not None and sha != spec.jar_sha256:
            raise ArtifactRefused(
                f"jar {spec.jar_location}: its SHA-256 is {sha}, the spec pins {spec.jar_sha256}"
            )
        return self._store(sha, data)

    def _fetch(self, spec: RunSpec) -> bytes:
        if spec.jar_kind == "repo":
            if self._tree is None:
                raise ArtifactRefused(
                    f"jar {spec.jar_location} is not in the cache and no revision is loaded"
                )
            try:
                return self._tree.read(spec.jar_location)
            except KeyError as exc:
                raise ArtifactRefused(
                    f"jar {spec.jar_location} is not in revision {self._tree.commit}"
                ) from exc
        if spec.jar_kind == "file":
            path = Path(spec.jar_location.removeprefix("file://").removeprefix("local://"))
            try:
                if path.stat().st_size > MAX_JAR_BYTES:
                    raise ArtifactRefused(f"jar {path} is larger than {MAX_JAR_BYTES} bytes")
                return path.read_bytes()
            except OSError as exc:
                raise ArtifactRefused(f"jar {path} cannot be read: {exc.strerror}") from exc
        if spec.jar_sha256 is None and not self.allow_unpinned:
            raise ArtifactRefused(
                f"jar {spec.jar_location} is not pinned (no jarSha256) and unpinned artifacts are not allowed"
            )
        return self._download(spec.jar_location)

    def _download(self, url: str) -> bytes:
        if not url.startswith("https://"):
            raise ArtifactRefused(f"jar {url}: only https:// downloads are allowed")
        try:
            with urllib.request.urlopen(url, timeout=self.timeout_s) as answer:  # noqa: S310 - https only
                data: bytes = answer.read(MAX_JAR_BYTES + 1)
        except OSError as exc:
            raise ArtifactUnavailable(f"jar {url} could not be downloaded: {type(exc).__name__}") from exc
        if len(data) > MAX_JAR_BYTES:
            raise ArtifactRefused(f"jar {url} is larger than {MAX_JAR_BYTES} bytes")
        return data

    def _store(self, sha: str, data: bytes) -> Path:
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        final = self.root / f"{sha}.jar"
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".jar-")
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
                fh.flush()
                os.fsync(fh.fileno())
            Path(tmp).replace(final)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
        return final
