"""Errors the Flink REST client raises, rooted in :mod:`flink_gitops.errors`.

Each carries the cluster name, the HTTP method and the request path (never a
URL with credentials, never a header or body that could hold a secret), so the
executor can log and audit them as they are. Temporary ones (unreachable,
timeout, 5xx, an open circuit) are worth retrying later; the rest are not.
Neighbours: :mod:`.client` raises them, :mod:`.retry` and :mod:`.breaker`
decide by type which ones count as failures.
"""

from __future__ import annotations

from datetime import datetime

from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError


def _message(cluster: str, method: str, path: str, status: int | None, detail: str) -> str:
    code = f" -> {status}" if status is not None else ""
    return f"flink cluster {cluster!r}: {method} {path}{code}: {detail}"


class _Where(FlinkGitOpsError):
    """Which cluster and request an error is about; the message is built from them and ``detail``.

    Mixed in before :class:`TemporaryError` / :class:`PermanentError`, whose ``retryable`` wins.
    """

    def __init__(
        self, detail: str, *, cluster: str, method: str, path: str, status: int | None = None
    ) -> None:
        super().__init__(_message(cluster, method, path, status, detail))
        self.cluster = cluster
        self.method = method
        self.path = path
        self.status = status
        self.detail = detail


class FlinkTemporaryError(_Where, TemporaryError):
    """A Flink call failed in a way that may pass (base of the temporary ones)."""

    def __init__(
        self,
        detail: str,
        *,
        cluster: str,
        method: str,
        path: str,
        status: int | None = None,
        delay: float | None = None,
    ) -> None:
        super().__init__(detail, cluster=cluster, method=method, path=path, status=status)
        #: suggested wait before the next try, in seconds (see :class:`TemporaryError`).
        self.delay = delay


class FlinkPermanentError(_Where, PermanentError):
    """Flink refused or could not do what was asked; the same request will fail again."""


class FlinkUnreachable(FlinkTemporaryError):
    """No usable HTTP answer: connection refused, DNS, TLS handshake, reset, an undecodable body."""


class FlinkTimeout(FlinkTemporaryError):
    """The request or a wait for an operation/job state ran out of time."""


class FlinkServerError(FlinkTemporaryError):
    """Flink (or a proxy) answered 5xx: overloaded, leader election, a crash. A run's or plan's 500
    carrying Flink's own error text is :class:`FlinkProgramError` or :class:`FlinkNotFound` instead."""


class FlinkBadRequest(FlinkPermanentError):
    """Flink answered 400: the request (or the state it names) is wrong."""


class FlinkNotFound(FlinkPermanentError):
    """Flink answered 404: no such job, jar, trigger or endpoint."""


class FlinkConflict(FlinkPermanentError):
    """Flink answered 409: the resource is in a state that does not allow this."""


class FlinkProgramError(FlinkPermanentError):
    """Flink answered a run or plan with 5xx and its own error text: the program cannot be built or
    started (bad entry class, main() threw). The cluster itself is fine, so the breaker is not charged."""


class FlinkAuthError(FlinkPermanentError):
    """Flink (or the proxy in front of it) answered 401/403: credentials are wrong."""


class DuplicateJobId(FlinkConflict):
    """A run asked for a job id that Flink already lists (running or terminal).

    The caller can adopt the existing job: ``job_id`` is the id it asked for. ``flink_error`` is the
    exception Flink named (DuplicateApplicationSubmissionException on 2.x,
    DuplicateJobSubmissionException on 1.x).
    """

    def __init__(
        self, job_id: str, *, flink_error: str, cluster: str, method: str, path: str, status: int | None
    ) -> None:
        super().__init__(
            f"job id {job_id} is already in use on the cluster ({flink_error})",
            cluster=cluster,
            method=method,
            path=path,
            status=status,
        )
        self.job_id = job_id


class OperationFailed(FlinkPermanentError):
    """An asynchronous operation (savepoint, stop, disposal) ended with a failure cause."""


class SavepointFailed(OperationFailed):
    """A savepoint or stop-with-savepoint did not produce a savepoint location."""


class CircuitOpen(FlinkTemporaryError):
    """The cluster's circuit breaker is open: calls are refused until ``until`` (UTC)."""

    def __init__(self, *, cluster: str, method: str, path: str, until: datetime, retry_in: float) -> None:
        super().__init__(
            f"circuit open after repeated failures; next trial call at {until.isoformat()}",
            cluster=cluster,
            method=method,
            path=path,
            delay=retry_in,
        )
        self.until = until
