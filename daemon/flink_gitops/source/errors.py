"""Errors of the Git source (one distinct type per fault a poll can meet) and of reading a tree.

Every type derives from :class:`SourceError` and from either
:class:`~flink_gitops.errors.TemporaryError` (a later poll may succeed without
any change on our side) or :class:`~flink_gitops.errors.PermanentError`
(nothing changes until the config, the keys or the remote do). ``source.git``
raises them; the runtime logs them and keeps the last good revision in force.
Messages carry URLs only after :func:`source.git.scrub_url` and never a token.
"""

from __future__ import annotations

from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError


class SourceError(FlinkGitOpsError):
    """Base of every Git source error."""


class RepositoryError(SourceError, PermanentError):
    """A local path is not a readable Git repository."""


class RefNotFoundError(SourceError, PermanentError):
    """The tracked branch, tag or commit does not exist (locally or on the remote)."""


class RemoteUnreachableError(SourceError, TemporaryError):
    """The remote could not be reached (connection refused, DNS, network, server error)."""


class FetchTimeoutError(RemoteUnreachableError):
    """A fetch or clone took longer than ``git.fetch_timeout_s``."""


class AuthError(SourceError, PermanentError):
    """The remote refused our credentials, or we refused the remote's host key (:class:`HostKeyError`)."""


class HostKeyError(AuthError):
    """The SSH server's host key is not in the known_hosts file, or differs from the one there.

    A security event (possibly a man-in-the-middle): never retried, never trusted on first use.
    """


class ForcePushError(SourceError, PermanentError):
    """The remote's new commit does not descend from the last good one (history rewritten)."""

    def __init__(self, message: str, *, last_good: str, new: str) -> None:
        super().__init__(message)
        self.last_good = last_good
        self.new = new


class SignatureError(SourceError, PermanentError):
    """The commit's signature is missing, invalid, or by a key that is not allowed."""

    def __init__(self, message: str, *, commit: str) -> None:
        super().__init__(message)
        self.commit = commit


class CacheCorruptedError(SourceError, TemporaryError):
    """The local clone was damaged; it is moved aside and cloned again."""


class GitCommandError(SourceError, TemporaryError):
    """A git command failed for a reason none of the other types describe."""


class UnreadableError(SourceError, PermanentError):
    """A file of a working directory exists but cannot be read (permissions, I/O error)."""

    def __init__(self, path: str, reason: str) -> None:
        super().__init__(f"{path}: cannot read: {reason}")
        self.path = path
        self.reason = reason
