"""Jar bytes for upload, kept by content: ``<state_dir>/jars/<sha256>.jar``.

Every jar the daemon deploys is written here first, checked against its
SHA-256, so that a rollback can upload the last stable spec's jar even when
that jar has since left the repository. Repo jars come from the revision's
tree, ``file://`` jars from the host (the loader admits only paths under
``artifact_roots``), ``https://`` jars are downloaded with the standard library
(only ``flink.client`` may use httpx): TLS verified against the system store or
``artifact_download.ca_file``, no redirect to anything but https, at most
``max_bytes`` (a larger Content-Length or body is refused), the whole download
within ``timeout_s``. A jar whose bytes do not match its pin is refused
(:class:`ArtifactRefused`, naming the expected and the found digest); a
network failure is :class:`ArtifactUnavailable` (retry later).

Unpinned jars (an https:// jar without ``jarSha256`` when
``allow_unpinned_artifacts`` is set, a ``file://`` jar without it) are hashed
by their bytes at every sync (:meth:`ArtifactCache.pin_unpinned`, before
planning), so new bytes behind the same URL are a spec change, never a silent
deploy at the next restart; a jar that cannot be read then makes its job
invalid for this cycle (left as is). URLs are shown without credentials or
query (``specs.errors.redact_url``). Neighbours: ``execute.procedures`` (asks
:meth:`ArtifactCache.path_for`), ``execute.cycle`` (pins), ``source.tree``
(repo jars), ``specs.loader`` (computed the digests).
"""

from __future__ import annotations

import hashlib
import http.client
import os
import ssl
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path
from typing import IO, Any

from loguru import logger

from flink_gitops.errors import PermanentError, TemporaryError
from flink_gitops.execute.procedures import RunSpec
from flink_gitops.settings import ArtifactDownload
from flink_gitops.source.tree import Tree
from flink_gitops.specs.errors import Problem, redact_url
from flink_gitops.specs.loader import DesiredJob, DesiredState, InvalidJob

_CHUNK = 256 * 1024


class ArtifactRefused(PermanentError):
    """Refused: the jar cannot be used as asked (missing, wrong bytes, unpinned, too large). Do not retry."""


class ArtifactUnavailable(TemporaryError):
    """The jar could not be fetched now (network, server error); trying again later may work."""


class _HttpsOnlyRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(
        self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any, newurl: str
    ) -> urllib.request.Request | None:
        if not newurl.lower().startswith("https://"):
            raise ArtifactRefused(f"refused: jar {redact_url(req.full_url)} redirects to a non-https URL")
        return super().redirect_request(req, fp, code, msg, headers, newurl)


def _opener(ca_file: Path | None) -> urllib.request.OpenerDirector:
    """https only (no http, ftp, file or data handler), verified TLS, https-only redirects."""
    try:
        ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    except (ssl.SSLError, OSError) as exc:
        raise ArtifactRefused(
            f"refused: artifact_download.ca_file {ca_file} cannot be loaded ({type(exc).__name__})"
        ) from exc
    opener = urllib.request.OpenerDirector()
    for handler in (
        urllib.request.ProxyHandler(),
        urllib.request.UnknownHandler(),
        urllib.request.HTTPSHandler(context=ctx),
        _HttpsOnlyRedirects(),
        urllib.request.HTTPDefaultErrorHandler(),
        urllib.request.HTTPErrorProcessor(),
    ):
        opener.add_handler(handler)
    return opener


class ArtifactCache:
    """Content-addressed jar files; :meth:`use_tree` sets the revision repo jars are read from."""

    def __init__(
        self,
        root: Path,
        *,
        allow_unpinned: bool = False,
        download: ArtifactDownload | None = None,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.root = root
        self.allow_unpinned = allow_unpinned
        self.download = download or ArtifactDownload()
        self._monotonic = monotonic
        self._opener: urllib.request.OpenerDirector | None = None
        self._tree: Tree | None = None
        #: downloads and host-file reads made (for tests and metrics).
        self.fetches = 0

    @property
    def max_bytes(self) -> int:
        return self.download.max_bytes

    def use_tree(self, tree: Tree) -> None:
        self._tree = tree

    # --- what the executor asks --------------------------------------------------------------

    def path_for(self, spec: RunSpec) -> Path:
        """A local file with the spec's jar bytes, verified; fetched into the cache on first use."""
        pin = spec.jar_sha256.lower() if spec.jar_sha256 is not None else None
        if pin is not None:
            cached = self.root / f"{pin}.jar"
            if cached.is_file():
                return cached
        elif spec.jar_kind == "https" and not self.allow_unpinned:
            raise ArtifactRefused(
                f"refused: jar {redact_url(spec.jar_location)} is not pinned (no jarSha256) and "
                "allow_unpinned_artifacts is not set"
            )
        return self._fetch(spec.jar_kind, spec.jar_location, pin)

    def pin_unpinned(self, desired: DesiredState) -> DesiredState:
        """``desired`` with every unpinned jar that may be deployed hashed by its bytes (read now,
        kept in the cache); a jar that cannot be read makes its job invalid this cycle (left as is)."""
        jobs: dict[str, DesiredJob | InvalidJob] = dict(desired.jobs)
        problems: list[Problem] = []
        invalid: set[str] = set()
        changed = False
        for name, job in desired.jobs.items():
            if not isinstance(job, DesiredJob) or job.jar.sha256 is not None or job.jar.kind == "repo":
                continue
            if job.jar.kind == "https" and not self.allow_unpinned:
                continue  # the deploy refuses it (and says why); validate warned already
            changed = True
            try:
                path = self._fetch(job.jar.kind, job.jar.location, None)
            except (ArtifactRefused, ArtifactUnavailable) as exc:
                problem = Problem(job.file, job.line, None, f"jar not read, job left as is: {exc}", job=name)
                jobs[name] = InvalidJob(name, job.file, job.line, (problem, *job.warnings))
                problems.append(problem)
                invalid.add(job.file)
                continue
            jobs[name] = job.pinned_by_content(path.stem)
        if not changed:
            return desired
        return replace(
            desired,
            jobs=jobs,
            invalid_files=desired.invalid_files | invalid,
            problems=tuple(sorted((*desired.problems, *problems), key=lambda p: (p.file, p.line or 0))),
        )

    # --- fetching ----------------------------------------------------------------------------

    def _fetch(self, kind: str, location: str, pin: str | None) -> Path:
        """Read the jar into a temporary file while hashing it; checked against ``pin``; cached."""
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        fd, tmp_name = tempfile.mkstemp(dir=self.root, prefix=".jar-")
        tmp = Path(tmp_name)
        try:
            with os.fdopen(fd, "wb") as out:
                digest = hashlib.sha256()
                self._copy(kind, location, out, digest)
                out.flush()
                os.fsync(out.fileno())
            found = digest.hexdigest()
            if pin is not None and found != pin:
                raise ArtifactRefused(
                    f"refused: jar {self._shown(kind, location)} has SHA-256 {found}, but jarSha256 "
                    f"expects {pin}: not deployed, nothing changed"
                )
            final = self.root / f"{found}.jar"
            tmp.replace(final)
            return final
        finally:
            tmp.unlink(missing_ok=True)

    @staticmethod
    def _shown(kind: str, location: str) -> str:
        return redact_url(location) if kind == "https" else location

    def _copy(self, kind: str, location: str, out: IO[bytes], digest: Any) -> None:
        if kind == "repo":
            data = self._repo_bytes(location)
            digest.update(data)
            out.write(data)
            return
        self.fetches += 1
        if kind == "file":
            self._copy_file(location, out, digest)
        elif kind == "https":
            self._copy_https(location, out, digest)
        else:
            raise ArtifactRefused(f"refused: jar {location!r}: unknown kind {kind!r}")

    def _repo_bytes(self, location: str) -> bytes:
        if self._tree is None:
            raise ArtifactRefused(f"refused: jar {location} is not in the cache and no revision is loaded")
        try:
            return self._tree.read(location)
        except KeyError as exc:
            raise ArtifactRefused(f"refused: jar {location} is not in revision {self._tree.commit}") from exc

    def _copy_file(self, location: str, out: IO[bytes], digest: Any) -> None:
        path = Path(location.removeprefix("file://").removeprefix("local://"))
        limit = self.max_bytes
        try:
            with path.open("rb") as fh:
                total = 0
                while chunk := fh.read(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise ArtifactRefused(f"refused: jar {path} is larger than {limit} bytes")
                    digest.update(chunk)
                    out.write(chunk)
        except OSError as exc:
            raise ArtifactRefused(f"refused: jar {path} cannot be read: {exc.strerror}") from exc

    def _copy_https(self, url: str, out: IO[bytes], digest: Any) -> None:
        shown = redact_url(url)
        if not url.lower().startswith("https://"):
            raise ArtifactRefused(f"refused: jar {shown}: only https:// downloads are allowed")
        if self._opener is None:
            self._opener = _opener(self.download.ca_file)
        limit, timeout = self.max_bytes, self.download.timeout_s
        deadline = self._monotonic() + timeout
        request = urllib.request.Request(url, headers={"User-Agent": "flink-gitops"})  # noqa: S310 - https only
        try:
            with self._opener.open(request, timeout=timeout) as answer:
                length = answer.headers.get("Content-Length")
                if length is not None and length.strip().isdigit() and int(length) > limit:
                    raise ArtifactRefused(f"refused: jar {shown} is {int(length)} bytes, more than {limit}")
                total = 0
                while chunk := answer.read1(_CHUNK):
                    total += len(chunk)
                    if total > limit:
                        raise ArtifactRefused(f"refused: jar {shown} is larger than {limit} bytes")
                    if self._monotonic() > deadline:
                        raise ArtifactUnavailable(
                            f"jar {shown}: the download took longer than {timeout:g} s; retried later"
                        )
                    digest.update(chunk)
                    out.write(chunk)
        except urllib.error.HTTPError as exc:
            code = exc.code
            exc.close()
            if code in (404, 408, 429) or code >= 500:
                raise ArtifactUnavailable(f"jar {shown}: the server answered {code}; retried later") from exc
            raise ArtifactRefused(f"refused: jar {shown}: the server answered {code}") from exc
        except urllib.error.URLError as exc:
            if isinstance(exc.reason, ssl.SSLCertVerificationError):
                raise ArtifactRefused(
                    f"refused: jar {shown}: the server's certificate is not trusted "
                    "(see artifact_download.ca_file)"
                ) from exc
            why = type(exc.reason).__name__ if isinstance(exc.reason, BaseException) else "unreachable"
            raise ArtifactUnavailable(f"jar {shown} could not be downloaded ({why}); retried later") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise ArtifactUnavailable(
                f"jar {shown} could not be downloaded ({type(exc).__name__}); retried later"
            ) from exc
        except ValueError as exc:
            raise ArtifactRefused(f"refused: jar {shown} is not a URL that can be fetched") from exc
        logger.debug("jar {}: downloaded {} bytes", shown, total)
