"""Git revisions as trees: read a commit of a local repository, and poll a remote.

The only module that imports GitPython. :func:`open_tree` serves one commit
of a local repository (bare or not) as a :class:`~flink_gitops.source.tree.Tree`
for the spec loader (``specs.loader``) and ``plan --base --head``.
:class:`GitSource` is the daemon's poller: a bare cache clone under
``git.cache_dir``, one ``ls-remote`` per poll (a no-change poll stops there),
a fetch when the tracked ref moved, then force-push and signature checks;
every fault leaves the last good revision in force.
:func:`seed_repository` and :func:`commit_files` make and change a local repository (the demo).
Neighbours: ``source.tree`` (the protocol), ``source.errors`` (what can go
wrong), ``settings.GitConfig`` (what to track), ``secrets`` (token, SSH key).
"""

from __future__ import annotations

import base64
import bisect
import contextlib
import json
import re
import shlex
import shutil
import tempfile
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Literal
from urllib.parse import urlsplit

import git
from loguru import logger

from flink_gitops.clock import Clock
from flink_gitops.errors import ConfigError
from flink_gitops.secrets import read_secret
from flink_gitops.settings import GitConfig
from flink_gitops.source.errors import (
    AuthError,
    CacheCorruptedError,
    FetchTimeoutError,
    ForcePushError,
    GitCommandError,
    HostKeyError,
    RefNotFoundError,
    RemoteUnreachableError,
    RepositoryError,
    SignatureError,
    SourceError,
)
from flink_gitops.source.tree import EntryKind, TreeEntry, normalise

if TYPE_CHECKING:
    from flink_gitops.settings import Settings

_MODE_KIND: dict[bytes, EntryKind] = {b"100644": "file", b"100755": "file", b"120000": "symlink"}


class GitTree:
    """The files of one commit. Lists the tree with one ``git ls-tree`` call; reads blobs on demand
    through a persistent ``git cat-file --batch`` process (thread-safe, serialised by a lock)."""

    def __init__(self, repo: git.Repo, commit: str, *, lock: threading.Lock | None = None) -> None:
        self._repo = repo
        #: full commit SHA-1 (hex).
        self.commit: str | None = commit
        # trees of one repository share its cat-file process, so they share a lock
        self._lock = lock or threading.Lock()
        out = repo.git.execute(
            ["git", "ls-tree", "-r", "-z", "--full-tree", "-l", commit],
            stdout_as_string=False,
            strip_newline_in_stdout=False,
        )
        assert isinstance(out, bytes)
        entries: dict[str, TreeEntry] = {}
        for record in out.split(b"\0"):
            if not record:
                continue
            meta, _, raw_path = record.partition(b"\t")
            mode, _type, blob, size = meta.split(maxsplit=3)
            kind = _MODE_KIND.get(mode)
            if kind is None:  # 160000 submodule (gitlink): not our content
                continue
            path = raw_path.decode("utf-8", "surrogateescape")
            entries[path] = TreeEntry(path, blob.decode("ascii"), kind, int(size))
        self._paths = sorted(entries)
        self._entries = entries

    def __repr__(self) -> str:
        return f"GitTree(commit={self.commit!r}, files={len(self._paths)})"

    def __len__(self) -> int:
        return len(self._paths)

    def entries(self, under: str = ".") -> Iterator[TreeEntry]:
        base = normalise(under)
        if base is None:
            return
        if not base:
            yield from (self._entries[p] for p in self._paths)
            return
        prefix = base + "/"
        start = bisect.bisect_left(self._paths, prefix)
        for path in self._paths[start:]:
            if not path.startswith(prefix):
                break
            yield self._entries[path]

    def get(self, path: str) -> TreeEntry | None:
        rel = normalise(path)
        if not rel:
            return None
        return self._entries.get(rel)

    def read(self, path: str) -> bytes:
        entry = self.get(path)
        if entry is None:
            raise KeyError(path)
        return self.read_blob(entry.blob)

    def read_blob(self, blob: str) -> bytes:
        """Content of a blob by SHA (any blob of the repository)."""
        with self._lock:
            try:
                _sha, kind, _size, data = self._repo.git.get_object_data(blob)
            except ValueError as exc:
                raise KeyError(blob) from exc
        if kind not in (b"blob", "blob"):
            raise KeyError(blob)
        assert isinstance(data, bytes)
        return data

    def read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes]:
        """Contents of many blobs by SHA in one ``git cat-file --batch`` pass (pipelined, no round trips).

        KeyError names the first SHA that is not a blob of the repository.
        """
        wanted = list(dict.fromkeys(blobs))
        if not wanted:
            return {}
        with tempfile.TemporaryFile() as request:
            request.write("".join(f"{sha}\n" for sha in wanted).encode("ascii"))
            request.seek(0)
            out = self._repo.git.execute(
                ["git", "cat-file", "--batch"],
                istream=request,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        assert isinstance(out, bytes)
        found: dict[str, bytes] = {}
        pos = 0
        for sha in wanted:
            end = out.index(b"\n", pos)
            header = out[pos:end].split()
            if len(header) != 3 or header[1] != b"blob":
                raise KeyError(sha)
            size = int(header[2])
            found[sha] = out[end + 1 : end + 1 + size]
            pos = end + 1 + size + 1  # content, then a newline
        return found

    def close(self) -> None:
        """Stop the repository's helper processes (reopened on the next read)."""
        with self._lock:
            self._repo.git.clear_cache()


def _open_repo(repo_path: Path) -> git.Repo:
    try:
        return git.Repo(repo_path)
    except (git.InvalidGitRepositoryError, git.NoSuchPathError) as exc:
        raise RepositoryError(f"{repo_path}: not a Git repository") from exc


def resolve_commit(repo: git.Repo, ref: str) -> str:
    """The commit SHA a branch, tag (annotated tags peeled), remote branch or SHA names."""
    if not ref or ref.startswith("-") or any(c in ref for c in "\0\n\r"):
        raise RefNotFoundError(f"invalid ref {ref!r}")
    candidates = [ref, f"refs/remotes/origin/{ref}"]
    for candidate in candidates:
        try:
            out = repo.git.rev_parse("--verify", "--quiet", f"{candidate}^{{commit}}")
        except git.GitCommandError:
            continue
        if isinstance(out, str) and out:
            return out.strip()
    raise RefNotFoundError(f"ref {ref!r} not found in {repo.git_dir}")


def open_tree(repo_path: Path, ref: str) -> GitTree:
    """A Tree over commit ``ref`` (branch, tag or commit SHA) of the local repository at ``repo_path``.

    Raises RepositoryError when ``repo_path`` is no repository, RefNotFoundError when ``ref`` is unknown.
    """
    repo = _open_repo(repo_path)
    commit = resolve_commit(repo, ref)
    return GitTree(repo, commit)


# --- polling a remote ------------------------------------------------------------------------------

_TRACKED = "refs/flink-gitops/tracked"
_LAST_GOOD = "refs/flink-gitops/last-good"
_SHA = re.compile(r"[0-9a-f]{40}")
_URL_USERINFO = re.compile(r"(?i)\b([a-z][a-z0-9+.-]*://)[^/@ \t\r\n]*@")
#: git settings for every command on the cache: no credential helpers, no background gc, checked objects.
_GIT_FLAGS = (
    "-c",
    "credential.helper=",
    "-c",
    "gc.autoDetach=false",
    "-c",
    "maintenance.auto=false",
    "-c",
    "fetch.fsckObjects=true",
    "-c",
    "core.askPass=",
)
_TIMEOUT_PREFIX = "Timeout: the command"
#: what ssh prints, with StrictHostKeyChecking=yes, for an unknown or a changed host key
_HOST_KEY_FAILED = "host key verification failed"
_HOST_KEY_CHANGED = re.compile(r"Host key for (\S+) has changed")
_HOST_KEY_UNKNOWN = re.compile(r"No \S+ host key is known for (\S+)")
_HOST_KEY_OFFERED = re.compile(r"key sent by the remote host is\s+(SHA256:[A-Za-z0-9+/=]+)")
_AUTH_MARKERS = (
    "authentication failed",
    "could not read username",
    "could not read password",
    "permission denied (publickey",
    "returned error: 401",
    "returned error: 403",
    "invalid credentials",
)
_MISSING_REPO_MARKERS = (
    "repository not exported",
    "does not appear to be a git repository",
    "not found",
    "no such repository",
)
_UNREACHABLE_MARKERS = (
    "unable to connect",
    "connection refused",
    "could not resolve",
    "failed to connect",
    "connection timed out",
    "network is unreachable",
    "no route to host",
    "connection reset",
    "the remote end hung up",
    "early eof",
    "returned error: 5",
    "unable to access",
    "could not read from remote repository",
    "operation timed out",
)
_REF_MARKERS = ("couldn't find remote ref", "not our ref", "no such ref")
_CORRUPT_MARKERS = (
    "corrupt",
    "bad object",
    "does not match index",
    "inflate",
    "loose object",
    "missing blob",
    "missing tree",
    "missing commit",
    "not a git repository",
    "unable to read",
    "invalid object",
    "broken link",
    "bad packed object",
)


_DEMO_ACTOR = ("flink-gitops demo", "demo@localhost")


def seed_repository(source: Path, dest: Path, *, message: str) -> str:
    """A new repository at ``dest`` (branch main) holding a copy of ``source``; its commit.

    For the demo: a local repository the daemon polls like any remote, committed to by
    :func:`commit_files`. ``dest`` must not exist."""
    shutil.copytree(source, dest, ignore=shutil.ignore_patterns(".git"))
    repo = git.Repo.init(dest, initial_branch="main")
    try:
        repo.git.add(A=True)
        return _commit(repo, message)
    finally:
        repo.close()


def commit_files(repo_path: Path, files: Mapping[str, str], *, message: str) -> str:
    """Write ``files`` (path in the repository → text) and commit them on the checked-out branch."""
    repo = _open_repo(repo_path)
    try:
        for name, text in files.items():
            target = repo_path / name
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
            repo.git.add("--", name)
        return _commit(repo, message)
    finally:
        repo.close()


def _commit(repo: git.Repo, message: str) -> str:
    actor = git.Actor(*_DEMO_ACTOR)
    return str(repo.index.commit(message, author=actor, committer=actor).hexsha)


def scrub_url(url: str) -> str:
    """``url`` safe to print: any ``user:password@`` or ``token@`` part replaced by ``***@``."""
    return _URL_USERINFO.sub(r"\1***@", url)


def url_has_credentials(url: str) -> bool:
    """True when an http(s) URL carries userinfo, or any URL carries a password."""
    parts = urlsplit(url) if "://" in url else None
    if parts is None:
        return False
    if parts.scheme.lower() in ("http", "https"):
        return parts.username is not None or parts.password is not None
    return parts.password is not None


def is_ssh_url(url: str) -> bool:
    """ssh://, git+ssh:// and scp-like ``user@host:path`` URLs."""
    if "://" in url:
        return url.split("://", 1)[0].lower() in ("ssh", "git+ssh", "ssh+git")
    head = url.split("/", 1)[0]
    return ":" in head and not Path(url).exists()


def ssh_host(url: str) -> str:
    """The host of an SSH URL as ssh names it in known_hosts: ``host``, or ``[host]:port``."""
    if "://" in url:
        parts = urlsplit(url)
        host = parts.hostname or "?"
        return f"[{host}]:{parts.port}" if parts.port not in (None, 22) else host
    return url.split(":", 1)[0].rpartition("@")[2]


def host_key_failure(stderr: str, url: str, known_hosts: str) -> str:
    """Why ssh refused the server's host key, naming the host (and the key it offered, if shown)."""
    changed = _HOST_KEY_CHANGED.search(stderr)
    unknown = _HOST_KEY_UNKNOWN.search(stderr)
    offered = _HOST_KEY_OFFERED.search(stderr)
    if changed:
        reason = (
            f"host key of {changed[1]} does NOT match the one in {known_hosts} "
            "(possible man-in-the-middle, or the server's key was replaced)"
        )
    elif unknown:
        reason = f"host {unknown[1]} has no key in {known_hosts} (keys are never trusted on first use)"
    else:
        reason = f"host key of {ssh_host(url)} not accepted with {known_hosts}"
    if offered:
        reason += f"; the server offered {offered[1]}"
    return reason + "; refused"


def ssh_command(key_file: Path | None, known_hosts_file: Path | None) -> str:
    """GIT_SSH_COMMAND: only our key, host keys always checked, never a prompt."""
    parts = ["ssh", "-o", "BatchMode=yes", "-o", "StrictHostKeyChecking=yes"]
    if key_file is not None:
        parts += ["-i", str(key_file), "-o", "IdentitiesOnly=yes"]
    if known_hosts_file is not None:
        parts += ["-o", f"UserKnownHostsFile={known_hosts_file}"]
    return shlex.join(parts)


@dataclass(frozen=True, slots=True)
class Signer:
    """Who signed a commit, as verified."""

    #: gpg | ssh
    method: Literal["gpg", "ssh"]
    #: gpg: primary key fingerprint (hex); ssh: key fingerprint "SHA256:...".
    key: str
    #: gpg: the user id of the signature; ssh: the principal from allowed_signers.
    identity: str


@dataclass(frozen=True, slots=True, eq=False)
class Revision:
    """One commit of the tracked ref, checked and ready to load."""

    commit: str
    tree: GitTree
    #: the ref as configured (branch, tag or SHA).
    ref: str
    #: what it resolved to on the remote: refs/heads/<b>, refs/tags/<t>, or the pinned SHA.
    remote_ref: str
    #: "Name <email>".
    author: str
    committer: str
    committed_at: datetime
    #: first line of the commit message.
    summary: str
    #: verified signer, or None when the policy is "none".
    signer: Signer | None


@dataclass(frozen=True, slots=True)
class PollResult:
    """What one poll found. ``revision`` is the one in force: the new one, or the last good one on error."""

    revision: Revision | None
    #: ``revision`` differs from what the previous poll of this source returned (True on the first success).
    changed: bool
    #: why the remote's current state was not taken; None when it was.
    error: SourceError | None = None
    #: set when the cache was found damaged during this poll and rebuilt.
    recovered: CacheCorruptedError | None = None
    #: seconds the poll took (the ls-remote, and the fetch when the ref moved).
    duration_s: float = 0.0

    @property
    def ok(self) -> bool:
        return self.error is None


@dataclass(frozen=True, slots=True)
class _Result:
    status: int
    out: str
    err: str


class _Corrupt(Exception):
    """Internal: a local operation on the cache failed."""


class GitSource:
    """Polls one remote ref into a bare cache clone and hands out checked revisions.

    Not thread-safe by design beyond a lock around :meth:`poll`: the runtime polls from one thread.
    """

    def __init__(self, config: GitConfig, cache_dir: Path, *, clock: Clock) -> None:
        if not config.url:
            raise ConfigError("git.url is empty")
        if url_has_credentials(config.url):
            raise ConfigError(
                f"git.url {scrub_url(config.url)} carries credentials; put the token in git.token instead"
            )
        if config.signatures.mode == "gpg" and config.signatures.gpg_home is None:
            raise ConfigError("git.signatures.mode is gpg but git.signatures.gpg_home is not set")
        if config.signatures.mode == "ssh" and config.signatures.allowed_signers_file is None:
            raise ConfigError("git.signatures.mode is ssh but git.signatures.allowed_signers_file is not set")
        self.config = config
        self.cache_dir = cache_dir
        self.repo_dir = cache_dir / "repo.git"
        self._state_file = cache_dir / "state.json"
        self._clock = clock
        self._url = config.url
        self._shown_url = scrub_url(config.url)
        #: a full commit SHA is pinned: immutable, fetched once
        self._pinned = bool(_SHA.fullmatch(config.ref.lower()))
        self._repo: git.Repo | None = None
        self._checked = False
        self._current: Revision | None = None
        self._lock = threading.Lock()
        self._repo_lock = threading.Lock()
        #: after a re-clone the revision in force must be rebuilt on the new cache
        self._rebuild = False
        #: (text, replacement) pairs hidden from every message: the token, the SSH key's path
        self._masks: list[tuple[str, str]] = []

    @classmethod
    def from_settings(cls, settings: Settings, *, clock: Clock) -> GitSource:
        cache = settings.git.cache_dir or settings.state_dir / "git"
        return cls(settings.git, cache, clock=clock)

    def __repr__(self) -> str:
        return f"GitSource(url={self._shown_url!r}, ref={self.config.ref!r})"

    @property
    def current(self) -> Revision | None:
        """The revision in force (the last good one), if any."""
        return self._current

    # -- public ---------------------------------------------------------------------------------

    def poll(self) -> PollResult:
        """Fetch, resolve, check and return the revision in force. Never raises a SourceError."""
        with self._lock:
            recovered: CacheCorruptedError | None = None
            t0 = self._clock.monotonic()
            try:
                try:
                    revision = self._poll_once()
                except _Corrupt as exc:
                    recovered = self._recover(exc)
                    try:
                        revision = self._poll_once()
                    except _Corrupt as again:
                        raise CacheCorruptedError(
                            f"git cache {self.repo_dir} is still unusable after a fresh clone: {again}"
                        ) from again
            except SourceError as exc:
                level = "ERROR" if isinstance(exc, HostKeyError) else "WARNING"  # a security event
                logger.log(
                    level, "git: {} ({}); keeping {}", exc, type(exc).__name__, self._describe_current()
                )
                return PollResult(self._current, False, exc, recovered, self._clock.monotonic() - t0)
            changed = self._current is None or self._current.commit != revision.commit
            if changed or revision is not self._current:
                if self._current is not None and self._current.tree is not revision.tree:
                    self._current.tree.close()
                self._current = revision
            if changed:
                logger.info("git: {} {} is now at {}", self._shown_url, self.config.ref, revision.commit)
            return PollResult(revision, changed, None, recovered, self._clock.monotonic() - t0)

    def changed_paths(self, old_commit: str, new_commit: str) -> list[str]:
        """Paths whose content or kind differ between two commits of the cache (renames: both paths)."""
        repo = self._open()
        res = self._run(
            repo, ["diff-tree", "-r", "-z", "--no-renames", "--name-only", old_commit, new_commit]
        )
        if res.status != 0:
            raise RefNotFoundError(f"cannot compare {old_commit} and {new_commit}: {self._excerpt(res.err)}")
        return sorted(p for p in res.out.split("\0") if p)

    def close(self) -> None:
        """Stop helper processes; the source can be polled again afterwards."""
        with self._lock:
            if self._current is not None:
                self._current.tree.close()
            if self._repo is not None:
                self._repo.close()
                self._repo = None

    # -- one poll -------------------------------------------------------------------------------

    def _poll_once(self) -> Revision:
        repo = self._open()
        baseline = self._current.commit if self._current is not None else self._load_baseline()
        current = None if self._rebuild else self._current
        if self._pinned:
            commit = self.config.ref.lower()
            remote_ref = commit
            if not self._has_commit(repo, commit):
                self._fetch_pinned(repo, commit)
        else:
            remote_ref, remote_sha = self._ls_remote(repo)
            if current is not None and remote_sha == current.commit:
                return current  # no change: one ls-remote, nothing else
            self._fetch(repo, [f"+{remote_ref}:{_TRACKED}"], first=not self._has_ref(repo, _TRACKED))
            commit = self._tracked_commit(repo, remote_ref)
        if current is not None and commit == current.commit:
            return current
        if baseline is not None and baseline != commit and not self._pinned:
            self._check_descends(repo, baseline, commit)
        signer = self._verify_signature(repo, commit)
        revision = self._revision(repo, commit, remote_ref, signer)
        self._mark_good(repo, commit)
        self._rebuild = False
        return revision

    def _open(self) -> git.Repo:
        if self._repo is not None:
            return self._repo
        if not self.repo_dir.exists():
            try:
                self.cache_dir.mkdir(parents=True, exist_ok=True)
                repo = git.Repo.init(self.repo_dir, bare=True, mkdir=True)
            except (OSError, git.GitCommandError) as exc:
                raise RepositoryError(f"cannot create the git cache {self.repo_dir}: {exc}") from exc
            self._checked = True
        else:
            try:
                repo = git.Repo(self.repo_dir)
            except (git.InvalidGitRepositoryError, git.NoSuchPathError, OSError, ValueError) as exc:
                raise _Corrupt(f"cannot open: {type(exc).__name__}") from exc
        self._repo = repo
        if not self._checked:
            # Once per process: a damaged cache from before a crash or power loss is found here.
            res = self._run(repo, ["fsck", "--connectivity-only", "--no-dangling", "--no-progress"])
            if res.status != 0:
                raise _Corrupt(f"fsck failed: {self._excerpt(res.out + res.err)}")
            self._checked = True
        return repo

    def _recover(self, exc: _Corrupt) -> CacheCorruptedError:
        if self._repo is not None:
            self._repo.close()
            self._repo = None
        stamp = self._clock.now().strftime("%Y%m%dT%H%M%S")
        aside = self.cache_dir / f"repo.git.corrupt-{stamp}"
        for old in self.cache_dir.glob("repo.git.corrupt-*"):
            shutil.rmtree(old, ignore_errors=True)  # keep only the newest damaged copy
        try:
            if self.repo_dir.exists():
                self.repo_dir.rename(aside)
        except OSError as err:
            raise CacheCorruptedError(
                f"git cache {self.repo_dir} is damaged ({exc}) and cannot be moved aside: {err.strerror}"
            ) from err
        self._checked = False
        self._rebuild = True
        error = CacheCorruptedError(
            f"git cache {self.repo_dir} was damaged ({exc}); moved to {aside.name} and cloned again"
        )
        error.__cause__ = exc
        logger.error("git: {}", error)
        return error

    # -- remote operations ------------------------------------------------------------------------

    def _ls_remote(self, repo: git.Repo) -> tuple[str, str]:
        ref = self.config.ref
        # git's own order for a short name: tags first
        patterns = [ref] if ref.startswith("refs/") else [f"refs/tags/{ref}", f"refs/heads/{ref}"]
        res = self._run(repo, ["ls-remote", "--", self._url, *patterns], network=True)
        if res.status != 0:
            raise self._remote_error(res, "ls-remote")
        found: dict[str, str] = {}
        for line in res.out.splitlines():
            sha, _, name = line.partition("\t")
            found[name] = sha
        for name in patterns:
            if name in found:
                return name, found.get(f"{name}^{{}}", found[name])  # peeled annotated tag
        raise RefNotFoundError(f"ref {ref!r} not found on {self._shown_url}")

    def _fetch(self, repo: git.Repo, refspecs: list[str], *, first: bool, unshallow: bool = False) -> None:
        args = ["fetch", "--no-tags", "--no-write-fetch-head", "--quiet"]
        if unshallow:
            args.append("--unshallow")
        elif first and self.config.depth > 0:
            args.append(f"--depth={self.config.depth}")
        res = self._run(repo, [*args, "--", self._url, *refspecs], network=True)
        if res.status != 0:
            raise self._remote_error(res, "fetch", repo=repo)

    def _fetch_pinned(self, repo: git.Repo, commit: str) -> None:
        try:
            self._fetch(repo, [f"+{commit}:{_TRACKED}"], first=True)
        except (RefNotFoundError, GitCommandError):
            # The server does not serve commits by SHA: fetch every branch and tag, full depth.
            self._fetch(
                repo,
                ["+refs/heads/*:refs/flink-gitops/all/heads/*", "+refs/tags/*:refs/flink-gitops/all/tags/*"],
                first=False,
                unshallow=self._is_shallow(repo),
            )
        if not self._has_commit(repo, commit):
            raise RefNotFoundError(f"commit {commit} not found on {self._shown_url}")

    def _check_descends(self, repo: git.Repo, old: str, new: str) -> None:
        if not self._has_commit(repo, old):
            # gone from the remote: history was rewritten (or collected) there
            with contextlib.suppress(RefNotFoundError, GitCommandError):
                self._fetch(repo, [f"+{old}:{_LAST_GOOD}"], first=False)
        for attempt in range(2):
            if self._has_commit(repo, old):
                res = self._run(repo, ["merge-base", "--is-ancestor", old, new])
                if res.status == 0:
                    return
                if res.status != 1:
                    raise _Corrupt(f"merge-base failed: {self._excerpt(res.err)}")
            if attempt == 0 and self._is_shallow(repo):
                self._fetch(repo, [f"+{self._tracked_source()}:{_TRACKED}"], first=False, unshallow=True)
                continue
            break
        message = (
            f"{self._shown_url} {self.config.ref}: new commit {new} does not descend from the last good "
            f"commit {old} (history rewritten)"
        )
        if self.config.allow_force_push:
            logger.warning("git: {}; accepted (git.allow_force_push)", message)
            return
        raise ForcePushError(
            message + "; refused, set git.allow_force_push to accept", last_good=old, new=new
        )

    def _tracked_source(self) -> str:
        ref = self.config.ref
        return ref if ref.startswith("refs/") else self._ls_remote(self._open())[0]

    # -- signature --------------------------------------------------------------------------------

    def _verify_signature(self, repo: git.Repo, commit: str) -> Signer | None:
        policy = self.config.signatures
        if policy.mode == "none":
            return None
        env: dict[str, str] = {}
        flags: list[str] = []
        if policy.mode == "gpg":
            assert policy.gpg_home is not None
            env["GNUPGHOME"] = str(policy.gpg_home)
            flags += ["-c", "gpg.program=gpg"]
        else:
            assert policy.allowed_signers_file is not None
            flags += ["-c", f"gpg.ssh.allowedSignersFile={policy.allowed_signers_file}"]
            flags += ["-c", "gpg.ssh.program=ssh-keygen"]
        res = self._run(repo, [*flags, "verify-commit", "--raw", commit], env=env)
        signer = _parse_gpg_status(res.err) if policy.mode == "gpg" else _parse_ssh_status(res.err)
        if res.status != 0 or signer is None:
            reason = _signature_failure(res.err, policy.mode)
            raise SignatureError(f"commit {commit} refused: {reason}", commit=commit)
        if policy.mode == "gpg" and policy.allowed_fingerprints:
            allowed = {f.replace(" ", "").upper() for f in policy.allowed_fingerprints}
            if signer.key.upper() not in allowed:
                raise SignatureError(
                    f"commit {commit} refused: signed by key {signer.key}, which is not in "
                    "git.signatures.allowed_fingerprints",
                    commit=commit,
                )
        return signer

    # -- local operations -------------------------------------------------------------------------

    def _revision(self, repo: git.Repo, commit: str, remote_ref: str, signer: Signer | None) -> Revision:
        # fetch checks only objects new to the cache; a blob lost from an older pack shows up here
        res = self._run(repo, ["rev-list", "--objects", "--no-walk", "--missing=print", commit])
        missing = [ln[1:] for ln in res.out.splitlines() if ln.startswith("?")]
        if res.status != 0 or missing:
            detail = f"{len(missing)} objects missing" if missing else self._excerpt(res.err)
            raise _Corrupt(f"commit {commit} incomplete: {detail}")
        try:
            obj = repo.commit(commit)
            tree = GitTree(repo, commit, lock=self._repo_lock)
        except (git.GitCommandError, ValueError, KeyError) as exc:
            raise _Corrupt(f"cannot read commit {commit}: {type(exc).__name__}") from exc
        return Revision(
            commit=commit,
            tree=tree,
            ref=self.config.ref,
            remote_ref=remote_ref,
            author=f"{obj.author.name} <{obj.author.email}>",
            committer=f"{obj.committer.name} <{obj.committer.email}>",
            committed_at=obj.committed_datetime.astimezone(UTC),
            summary=str(obj.summary if isinstance(obj.summary, str) else obj.summary.decode()),
            signer=signer,
        )

    def _mark_good(self, repo: git.Repo, commit: str) -> None:
        res = self._run(repo, ["update-ref", _LAST_GOOD, commit])
        if res.status != 0:
            raise _Corrupt(f"update-ref failed: {self._excerpt(res.err)}")
        state = {"url": self._shown_url, "ref": self.config.ref, "commit": commit}
        tmp = self._state_file.with_suffix(".tmp")
        try:
            tmp.write_text(json.dumps(state), encoding="utf-8")
            tmp.replace(self._state_file)
        except OSError as exc:  # only the force-push baseline across restarts is lost
            logger.warning("git: cannot write {}: {}", self._state_file, exc.strerror)

    def _load_baseline(self) -> str | None:
        """The last good commit of this URL and ref from before a restart."""
        try:
            state = json.loads(self._state_file.read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        if (
            not isinstance(state, dict)
            or state.get("url") != self._shown_url
            or state.get("ref") != self.config.ref
        ):
            return None
        commit = state.get("commit")
        return commit if isinstance(commit, str) and _SHA.fullmatch(commit) else None

    def _has_commit(self, repo: git.Repo, commit: str) -> bool:
        return self._run(repo, ["cat-file", "-e", f"{commit}^{{commit}}"]).status == 0

    def _has_ref(self, repo: git.Repo, ref: str) -> bool:
        return self._run(repo, ["rev-parse", "--verify", "--quiet", ref]).status == 0

    def _is_shallow(self, repo: git.Repo) -> bool:
        return self._run(repo, ["rev-parse", "--is-shallow-repository"]).out.strip() == "true"

    def _tracked_commit(self, repo: git.Repo, remote_ref: str) -> str:
        res = self._run(repo, ["rev-parse", "--verify", "--quiet", f"{_TRACKED}^{{commit}}"])
        if res.status == 0 and _SHA.fullmatch(res.out.strip()):
            return res.out.strip()
        kind = self._run(repo, ["cat-file", "-t", f"{_TRACKED}^{{}}"])
        if kind.status == 0:  # the object is there, it is just no commit (a tag of a tree or blob)
            raise RefNotFoundError(
                f"{remote_ref} on {self._shown_url} points to a {kind.out.strip()}, not a commit"
            )
        raise _Corrupt(f"cannot resolve {remote_ref} after fetch")

    # -- running git --------------------------------------------------------------------------------

    def _network_env(self) -> dict[str, str]:
        env = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": "", "GCM_INTERACTIVE": "never"}
        self._masks = []
        try:
            if is_ssh_url(self._url):
                key = self.config.ssh_key.path() if self.config.ssh_key is not None else None
                if key is not None:  # ssh names it in "Load key ...", "bad permissions" and so on
                    self._masks = [(str(key), "<git.ssh_key>")]
                env["GIT_SSH_COMMAND"] = ssh_command(key, self.config.known_hosts_file)
            elif self.config.token is not None and self._url.lower().startswith(("http://", "https://")):
                token = read_secret(self.config.token).reveal_text()
                basic = base64.b64encode(f"{self.config.token_user}:{token}".encode()).decode()
                self._masks = [(token, "***"), (basic, "***")]
                env.update(
                    {
                        "GIT_CONFIG_COUNT": "1",
                        "GIT_CONFIG_KEY_0": f"http.{self._url}.extraHeader",
                        "GIT_CONFIG_VALUE_0": f"Authorization: Basic {basic}",
                    }
                )
        except ConfigError as exc:
            raise AuthError(f"git credentials unusable: {exc}") from exc
        return env

    def _run(
        self, repo: git.Repo, args: list[str], *, network: bool = False, env: Mapping[str, str] | None = None
    ) -> _Result:
        full_env = dict(env or {})
        if network:
            full_env.update(self._network_env())
        try:
            status, out, err = repo.git.execute(
                ["git", *_GIT_FLAGS, *args],
                env=full_env,
                with_extended_output=True,
                with_exceptions=False,
                kill_after_timeout=self.config.fetch_timeout_s if network else None,
                stdout_as_string=True,
            )
        finally:
            full_env.clear()
        return _Result(int(status), str(out), str(err))

    def _excerpt(self, text: str) -> str:
        for secret, shown in self._masks:
            text = text.replace(secret, shown)
        # ssh frames its warnings in "@@@" banners: keep the words, drop the frame
        lines = [ln.strip().strip("@").strip() for ln in scrub_url(text).splitlines()]
        lines = [ln for ln in lines if ln]
        lines = [ln for ln in lines if not ln.startswith("notice:")]
        joined = " / ".join(lines)
        return (joined[:400] + " ...") if len(joined) > 400 else (joined or "no message")

    def _remote_error(self, res: _Result, what: str, repo: git.Repo | None = None) -> SourceError:
        err = res.err
        low = err.lower()
        where = f"{what} {self._shown_url}"
        if err.startswith(_TIMEOUT_PREFIX):
            return FetchTimeoutError(f"{where}: no answer within {self.config.fetch_timeout_s:g}s")
        if _HOST_KEY_FAILED in low and is_ssh_url(self._url):
            known = self.config.known_hosts_file or "~/.ssh/known_hosts"
            return HostKeyError(f"{where}: {host_key_failure(err, self._url, str(known))}")
        excerpt = self._excerpt(err)
        if any(m in low for m in _AUTH_MARKERS):
            return AuthError(f"{where}: authentication refused: {excerpt}")
        if any(m in low for m in _REF_MARKERS):
            return RefNotFoundError(f"{where}: ref {self.config.ref!r} not found: {excerpt}")
        if any(m in low for m in _MISSING_REPO_MARKERS):
            return RepositoryError(f"{where}: remote repository not found: {excerpt}")
        if any(m in low for m in _UNREACHABLE_MARKERS):
            return RemoteUnreachableError(f"{where}: remote unreachable: {excerpt}")
        if repo is not None:
            if any(m in low for m in _CORRUPT_MARKERS):
                raise _Corrupt(f"{what} failed: {excerpt}")
            # an unexplained failure: blame the cache only if it fails a check of its own
            fsck = self._run(repo, ["fsck", "--connectivity-only", "--no-dangling", "--no-progress"])
            if fsck.status != 0:
                raise _Corrupt(
                    f"{what} failed ({excerpt}) and fsck failed: {self._excerpt(fsck.out + fsck.err)}"
                )
        return GitCommandError(f"{where} failed: {excerpt}")

    def _describe_current(self) -> str:
        return f"last good {self._current.commit}" if self._current is not None else "no revision yet"


def _parse_gpg_status(status: str) -> Signer | None:
    key = identity = None
    for line in status.splitlines():
        fields = line.split()
        if len(fields) >= 3 and fields[:2] == ["[GNUPG:]", "VALIDSIG"]:
            key = fields[-1]
        elif len(fields) >= 4 and fields[:2] == ["[GNUPG:]", "GOODSIG"]:
            identity = " ".join(fields[3:])
    if key is None or identity is None:
        return None
    return Signer("gpg", key, identity)


_SSH_GOOD = re.compile(r'^Good "git" signature for (?P<who>.+) with (?P<type>\S+) key (?P<fpr>SHA256:\S+)$')


def _parse_ssh_status(status: str) -> Signer | None:
    for line in status.splitlines():
        match = _SSH_GOOD.match(line.strip())
        if match:
            return Signer("ssh", match["fpr"], match["who"])
    return None


def _signature_failure(status: str, mode: str) -> str:
    if not status.strip():
        return "not signed"
    if mode == "gpg":
        if "NO_PUBKEY" in status:
            return "signed by a key that is not in git.signatures.gpg_home"
        for word, reason in (
            ("BADSIG", "bad signature"),
            ("EXPKEYSIG", "signing key expired"),
            ("REVKEYSIG", "signing key revoked"),
            ("EXPSIG", "signature expired"),
        ):
            if word in status:
                return reason
        if "BEGIN SSH SIGNATURE" in status or 'Good "git" signature' in status:
            return "signed with SSH, but the policy requires GPG"
        return "no valid GPG signature"
    if "No principal matched" in status:
        return "signed by a key that is not in git.signatures.allowed_signers_file"
    if "[GNUPG:]" in status:
        return "signed with GPG, but the policy requires SSH"
    return "no valid SSH signature"
