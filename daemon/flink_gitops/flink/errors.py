"""Errors the Flink REST client raises, rooted in :mod:`flink_gitops.errors`.

Each carries the cluster name, the HTTP method and the request path (never a
URL with credentials, never a header or body that could hold a secret), so the
executor can log and audit them as they are. The type tells a reconciler what
it may do next:

- :class:`FlinkNotSent` (and :class:`CircuitOpen`): the request never reached
  Flink. Nothing changed; re-sending anything is safe.
- :class:`FlinkNoAnswer`: a read-only request (GET, plan) got no usable answer.
  Nothing changed; retry.
- :class:`FlinkMaybeApplied`: a request with a side effect went out and its
  answer was lost or unreadable. Look (job by id, trigger status by our trigger
  id, jar list) before re-sending; ``idempotent`` says whether re-sending the
  very same request is safe anyway. Not ``retryable`` as is.
- :class:`FlinkStillRunning`: a wait ran out of time; the operation goes on in
  Flink. Wait again with the same ids.
- :class:`PollCancelled`: the caller's cancel hook stopped a wait (the lease is
  lost). The operation may go on in Flink; a deposed leader must not retry.
- :class:`FlinkThrottled`, :class:`FlinkServerError`: Flink or a proxy refused
  for now (408/429, 5xx). Retry later.
- :class:`FlinkPermanentError` and below: refused; the same request fails again.

Neighbours: :mod:`.client` raises them, :mod:`.retry` and :mod:`.breaker`
decide by type which ones count as failures.
"""

from __future__ import annotations

from datetime import datetime
from typing import ClassVar

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


# --- temporary: retry (what "retry" means depends on the type) ---------------------------------------


class FlinkNotSent(FlinkTemporaryError):
    """The request never reached Flink: connection refused, connect timeout, DNS, TLS handshake,
    no free connection. Nothing was applied; re-sending any request, a run or a stop too, is safe."""


class FlinkNoAnswer(FlinkTemporaryError):
    """A read-only request (GET, plan) reached Flink but no usable answer came back: read timeout,
    reset, an undecodable body. Nothing changed; retry (the client already did, for GETs)."""


class FlinkServerError(FlinkTemporaryError):
    """Flink (or a proxy) answered 5xx: overloaded, leader election, a crash. A run's or plan's 500
    carrying Flink's own error text is :class:`FlinkProgramError` or :class:`FlinkNotFound` instead;
    a 502/504 to a request with a side effect is :class:`FlinkMaybeApplied` (a proxy may have passed
    it on)."""


class FlinkThrottled(FlinkTemporaryError):
    """Flink or a proxy did not take the request now: 408 (request timeout) or 429 (too many
    requests). Nothing was applied; retry after ``delay`` (from ``Retry-After``) or your backoff."""


class FlinkStillRunning(FlinkTemporaryError):
    """A wait ran out of its time (timeout or deadline); the operation or job goes on in Flink.

    Nothing is lost: wait again with the same ids (``job_id``, ``trigger_id``), or give up and
    record that it is still running. ``last_state`` is the last state seen (an operation's
    IN_PROGRESS, or a job state)."""

    def __init__(
        self,
        detail: str,
        *,
        cluster: str,
        path: str,
        job_id: str | None,
        trigger_id: str | None,
        last_state: str,
    ) -> None:
        super().__init__(detail, cluster=cluster, method="GET", path=path)
        self.job_id = job_id
        self.trigger_id = trigger_id
        self.last_state = last_state


class CircuitOpen(FlinkNotSent):
    """The cluster's circuit breaker is open: calls are refused until ``until`` (UTC), without
    being sent; ``delay`` is the time until the next trial call, seconds."""

    def __init__(self, *, cluster: str, method: str, path: str, until: datetime, retry_in: float) -> None:
        super().__init__(
            f"circuit open after repeated failures; next trial call at {until.isoformat()}",
            cluster=cluster,
            method=method,
            path=path,
            delay=retry_in,
        )
        self.until = until


# --- neither: the caller must look first or stop ------------------------------------------------------


class FlinkMaybeApplied(_Where, FlinkGitOpsError):
    """A request with a side effect (run, stop, savepoint, cancel, upload, delete) was sent, and
    its answer was lost (read timeout, reset, a proxy's 502/504) or came back 2xx but unreadable
    ("submitted, answer unreadable").

    Flink may have done it. Not retryable as is: look first (the job by its fixed id, the trigger
    status by our trigger id, the jar list). ``idempotent`` is True when re-sending the very same
    request is safe anyway: a trigger with our trigger id answers with the same operation, a run
    with a fixed job id answers :class:`DuplicateJobId`, a cancel or delete answers 409/404.
    """

    retryable: ClassVar[bool] = False

    def __init__(
        self,
        detail: str,
        *,
        cluster: str,
        method: str,
        path: str,
        status: int | None = None,
        idempotent: bool = False,
    ) -> None:
        super().__init__(detail, cluster=cluster, method=method, path=path, status=status)
        self.idempotent = idempotent


class PollCancelled(_Where, FlinkGitOpsError):
    """The caller's cancel hook (``cancelled``) returned True during a wait (e.g. the lease was lost).

    The operation or job may go on in Flink: whoever holds the lease now resumes from the recorded
    ids. Not retryable: a deposed leader must stop driving Flink. ``job_id`` / ``trigger_id`` name
    what was being waited for."""

    retryable: ClassVar[bool] = False

    def __init__(
        self, detail: str, *, cluster: str, path: str, job_id: str | None, trigger_id: str | None
    ) -> None:
        super().__init__(detail, cluster=cluster, method="GET", path=path)
        self.job_id = job_id
        self.trigger_id = trigger_id


# --- permanent: do not retry the same request ---------------------------------------------------------


class FlinkBadRequest(FlinkPermanentError):
    """Flink answered 400: the request (or the state it names) is wrong."""


class FlinkBadAnswer(FlinkPermanentError):
    """A read-only request was answered 2xx with a body that is not what this Flink API returns
    (not JSON, or a shape we cannot read): a proxy's page, or an unsupported Flink version."""


class FlinkNotFound(FlinkPermanentError):
    """Flink answered 404: no such job, jar, trigger or endpoint."""


class UnknownTrigger(FlinkNotFound):
    """Flink does not know this trigger id for this job (404): the trigger never arrived, or Flink
    forgot it (JobManager restart, or the result expired after ``rest.async.store-duration``,
    default 5 min). Re-sending the trigger with the same id is safe."""


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


class TriggerIdIgnored(FlinkPermanentError):
    """Flink answered a trigger with another id than the one we sent: this cluster does not honour
    client-chosen trigger ids, so re-sending would start a second operation. The operation Flink
    started is ``request_id``; track it by that id, and do not re-send."""

    def __init__(self, *, sent: str, request_id: str, cluster: str, path: str) -> None:
        super().__init__(
            f"sent trigger id {sent}, Flink answered {request_id}", cluster=cluster, method="POST", path=path
        )
        self.sent = sent
        self.request_id = request_id


class OperationFailed(FlinkPermanentError):
    """An asynchronous operation (savepoint, stop, disposal) ended with a failure cause."""


class SavepointFailed(OperationFailed):
    """A savepoint or stop-with-savepoint did not produce a savepoint location."""


class JobEnded(OperationFailed):
    """While waiting for a job to reach some states it reached a terminal one instead (``state``:
    FINISHED, CANCELED or FAILED)."""

    def __init__(self, detail: str, *, cluster: str, path: str, job_id: str, state: str) -> None:
        super().__init__(detail, cluster=cluster, method="GET", path=path)
        self.job_id = job_id
        self.state = state
