"""The root of flink-gitops' exception tree.

Every error we raise derives from :class:`FlinkGitOpsError`, and its type says
whether trying again can help (kopf's TemporaryError / PermanentError idea):
``retryable`` is a class attribute, and a :class:`TemporaryError` may carry a
suggested delay. Areas define their own subtrees next to their code
(``flink.errors``, ``source.errors``, ``specs.errors``, ``record.errors``) and
always chain the cause (``raise X(...) from exc``).

Messages must never contain secrets: tokens, passwords, key material. Build
messages from names and paths, never from credential values.
"""

from __future__ import annotations

from typing import ClassVar


class FlinkGitOpsError(Exception):
    """Base of every error flink-gitops raises on purpose."""

    retryable: ClassVar[bool] = False


class TemporaryError(FlinkGitOpsError):
    """Retrying later may help (network, timeouts, a busy peer)."""

    retryable: ClassVar[bool] = True

    def __init__(self, message: str, *, delay: float | None = None) -> None:
        super().__init__(message)
        #: suggested wait before the next try, in seconds; None: use the caller's backoff.
        self.delay = delay


class PermanentError(FlinkGitOpsError):
    """Retrying the same thing will fail the same way (bad input, refused by policy)."""

    retryable: ClassVar[bool] = False


class ConfigError(PermanentError):
    """The daemon's own configuration is invalid or a secret file cannot be read."""
