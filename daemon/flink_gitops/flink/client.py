"""The Flink REST client: the only module that imports httpx.

One :class:`FlinkClient` per cluster. It maps every failure into the
:mod:`.errors` tree by what the caller may do next (never sent, maybe applied,
still running, refused), retries idempotent calls only (GETs, polls, plans, and
savepoint / stop triggers, which carry the caller's trigger id; never a run,
upload, cancel, delete or disposal) through :mod:`.retry`, guards the cluster
with a circuit breaker (:mod:`.breaker`) and parses answers into :mod:`.models`.
Long waits take a timeout, a deadline and a cancel hook (``cancelled``), so a
deposed leader stops driving Flink. Logs each request at DEBUG under
``flink_gitops.flink``, which is disabled until the CLI enables logging.
It learns the Flink version from ``/config`` once and shapes version-specific
requests from it. Time comes from an injected
:class:`~flink_gitops.clock.Clock`; credentials from
:mod:`flink_gitops.secrets` and never reach logs, reprs or errors.
Neighbours: observe (reads), execute (submits, stops, savepoints),
flink/local.py (readiness via :meth:`FlinkClient.overview`).
"""

from __future__ import annotations

import base64
import random
import ssl
from collections.abc import Callable, Collection, Generator
from pathlib import Path
from types import TracebackType
from typing import Any, Literal, Self, TypeVar
from urllib.parse import quote, urlsplit, urlunsplit

import httpx
from loguru import logger
from pydantic import BaseModel, ValidationError

from flink_gitops.clock import Clock, SystemClock
from flink_gitops.errors import ConfigError
from flink_gitops.flink.breaker import CircuitBreaker, State
from flink_gitops.flink.errors import (
    DuplicateJobId,
    FlinkAuthError,
    FlinkBadAnswer,
    FlinkBadRequest,
    FlinkConflict,
    FlinkMaybeApplied,
    FlinkNoAnswer,
    FlinkNotFound,
    FlinkNotSent,
    FlinkPermanentError,
    FlinkProgramError,
    FlinkServerError,
    FlinkStillRunning,
    FlinkThrottled,
    JobEnded,
    OperationFailed,
    PollCancelled,
    SavepointFailed,
    TriggerIdIgnored,
    UnknownTrigger,
)
from flink_gitops.flink.ids import check_flink_id, deterministic_job_id, new_trigger_id
from flink_gitops.flink.models import (
    TERMINAL_STATES,
    AsyncOperation,
    CheckpointStats,
    ClusterOverview,
    DashboardConfig,
    JarList,
    JarUpload,
    JobConfig,
    JobDetails,
    JobExceptions,
    JobManagerConfig,
    JobPlan,
    JobsOverview,
    RunRequest,
    RunResult,
    TaskManagers,
    TriggerResponse,
    last_cause,
)
from flink_gitops.flink.retry import RetryPolicy
from flink_gitops.secrets import Secret, read_secret, redact_credentials
from flink_gitops.settings import ClusterConfig, ClusterTls

__all__ = ["Cancelled", "FlinkClient", "deterministic_job_id", "new_trigger_id"]

M = TypeVar("M", bound=BaseModel)
P = TypeVar("P")

#: Flink's names for a run that reused a job id still listed by the cluster.
_DUPLICATE_MARKERS = ("DuplicateApplicationSubmissionException", "DuplicateJobSubmissionException")
#: Default poll interval for the wait helpers, seconds (callers may pass their own).
DEFAULT_POLL_S = 0.2

#: A wait's cancel hook: called before every poll; returning True stops the wait with
#: :class:`PollCancelled` (e.g. ``lambda: not lease.held()``).
Cancelled = Callable[[], bool]

#: What a request does, which decides what a lost or unreadable answer means:
#: "read" has no side effect (GET, plan): FlinkNoAnswer / FlinkBadAnswer, retried;
#: "idempotent" has one that a repeat does not double (trigger with our id, run with a fixed
#: job id, cancel, delete): FlinkMaybeApplied(idempotent=True);
#: "once" has one a repeat may double (upload, run without a job id, disposal):
#: FlinkMaybeApplied(idempotent=False).
Effect = Literal["read", "idempotent", "once"]


class _HeaderAuth(httpx.Auth):
    """Adds one Authorization header per request; holds the value as a Secret (no repr leaks)."""

    def __init__(self, header: Secret) -> None:
        self._header = header

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        request.headers["Authorization"] = self._header.reveal_text()
        yield request

    def __repr__(self) -> str:
        return "_HeaderAuth('**********')"


def basic_auth(username: str, password: Secret) -> httpx.Auth:
    token = base64.b64encode(username.encode("utf-8") + b":" + password.reveal()).decode("ascii")
    return _HeaderAuth(Secret(f"Basic {token}".encode("ascii")))


def bearer_auth(token: Secret) -> httpx.Auth:
    return _HeaderAuth(Secret(b"Bearer " + token.reveal()))


def _ssl_context(tls: ClusterTls) -> ssl.SSLContext:
    """Server verification with an optional custom CA, plus an optional client certificate."""
    try:
        ctx = ssl.create_default_context(cafile=str(tls.ca_file) if tls.ca_file else None)
        if not tls.verify:
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
        if tls.cert_file is not None:
            if tls.key is None:
                raise ConfigError("tls.cert_file is set but tls.key is not")
            # The key must be password-less; it is read from the secret's file, never copied.
            ctx.load_cert_chain(certfile=str(tls.cert_file), keyfile=str(tls.key.path()))
        elif tls.key is not None:
            raise ConfigError("tls.key is set but tls.cert_file is not")
    except (ssl.SSLError, OSError) as exc:
        where = tls.key.describe() if tls.key is not None else "the CA file"
        raise ConfigError(
            f"cannot load TLS material (cert {tls.cert_file}, key {where}, ca {tls.ca_file}): "
            f"{type(exc).__name__}"
        ) from exc
    return ctx


def _redact_url(url: str) -> str:
    """The URL without any user:password part."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, parts.query, parts.fragment))


def _has_flink_errors(response: httpx.Response) -> bool:
    """The body is Flink's own ``{"errors": [...]}`` (not a proxy's error page)."""
    try:
        body = response.json()
    except ValueError:
        return False
    return isinstance(body, dict) and isinstance(body.get("errors"), list) and bool(body["errors"])


def _error_detail(response: httpx.Response) -> str:
    """Flink's error text reduced to its real cause (the last ``Caused by:`` line), bounded, with
    anything that looks like a credential redacted."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and isinstance(body.get("errors"), list):
        texts = [str(e) for e in body["errors"]]
        joined = "\n".join(texts)
        cause = last_cause(joined)
        head = texts[0].strip().splitlines()[0] if texts and texts[0].strip() else ""
        if cause and cause != head and "Caused by:" in joined:
            head_msg = head.rsplit(": ", 1)[-1] if ": " in head else head
            detail = f"{head_msg} Caused by: {cause}" if head_msg else cause
        else:
            detail = cause or head
    else:
        detail = response.text.strip().splitlines()[0] if response.text.strip() else response.reason_phrase
    return redact_credentials(detail)[:2000]  # a proxy's page may echo our Authorization header


class FlinkClient:
    """A typed client for one Flink cluster's REST API.

    ``FlinkClient.from_config(name, config, clock)`` in the daemon;
    ``FlinkClient(base_url, ...)`` in tests (``transport`` takes an ``httpx.MockTransport``).
    """

    def __init__(
        self,
        base_url: str,
        *,
        name: str = "default",
        clock: Clock | None = None,
        timeout_s: float = 10.0,
        retry: RetryPolicy | None = None,
        breaker_threshold: int = 5,
        breaker_reset_s: float = 30.0,
        savepoint_timeout_s: float = 600.0,
        auth: httpx.Auth | None = None,
        allow_plain_http_auth: bool = False,
        verify: ssl.SSLContext | bool = True,
        transport: httpx.BaseTransport | None = None,
        rng: random.Random | None = None,
    ) -> None:
        """``auth`` over a plain ``http://`` URL raises :class:`ConfigError` unless
        ``allow_plain_http_auth`` (the credentials would cross the network in clear)."""
        self.name = name
        self.base_url = base_url.rstrip("/")
        if auth is not None and not allow_plain_http_auth and urlsplit(self.base_url).scheme != "https":
            raise ConfigError(
                f"cluster {name!r}: refusing to send credentials over plain http "
                f"({_redact_url(self.base_url)}); use https:// or set auth.allow_plain_http: true"
            )
        self._clock: Clock = clock or SystemClock()
        self.retry = retry or RetryPolicy(rng=rng or random.Random())
        self.breaker = CircuitBreaker(
            name, threshold=breaker_threshold, reset_s=breaker_reset_s, clock=self._clock
        )
        self.savepoint_timeout_s = savepoint_timeout_s
        self._version: DashboardConfig | None = None
        self._default_parallelism: int | None = None
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout_s, auth=auth, verify=verify, transport=transport
        )

    @classmethod
    def from_config(
        cls,
        name: str,
        config: ClusterConfig,
        clock: Clock | None = None,
        *,
        transport: httpx.BaseTransport | None = None,
    ) -> Self:
        """A client for the cluster ``name`` as configured; reads credentials from their files now.

        ``transport`` is for tests (an ``httpx.MockTransport``)."""
        auth: httpx.Auth | None = None
        if config.auth.kind == "basic":
            if config.auth.username is None or config.auth.password is None:
                raise ConfigError(f"cluster {name!r}: basic auth needs username and password")
            auth = basic_auth(config.auth.username, read_secret(config.auth.password))
        elif config.auth.kind == "bearer":
            if config.auth.token is None:
                raise ConfigError(f"cluster {name!r}: bearer auth needs a token")
            auth = bearer_auth(read_secret(config.auth.token))
        verify: ssl.SSLContext | bool = True
        if config.url.startswith("https://"):
            verify = _ssl_context(config.tls)
        return cls(
            config.url,
            name=name,
            clock=clock,
            timeout_s=config.request_timeout_s,
            retry=RetryPolicy(
                max_attempts=config.max_attempts,
                initial_s=config.backoff_initial_s,
                max_s=config.backoff_max_s,
            ),
            breaker_threshold=config.breaker_threshold,
            breaker_reset_s=config.breaker_reset_s,
            savepoint_timeout_s=config.savepoint_timeout_s,
            auth=auth,
            allow_plain_http_auth=config.auth.allow_plain_http,
            verify=verify,
            transport=transport,
        )

    def __repr__(self) -> str:
        return f"FlinkClient(name={self.name!r}, base_url={_redact_url(self.base_url)!r})"

    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    # --- cluster -------------------------------------------------------------------------------

    def overview(self) -> ClusterOverview:
        """``GET /overview``: task managers, slots and job counts."""
        return self._get("/overview", ClusterOverview)

    def config(self) -> DashboardConfig:
        """``GET /config`` (not cached; see :meth:`version`)."""
        return self._get("/config", DashboardConfig)

    def version(self) -> DashboardConfig:
        """The cluster's ``/config``, fetched once and cached (the version does not change under us)."""
        if self._version is None:
            self._version = self.config()
        return self._version

    def default_parallelism(self) -> int:
        """The cluster's ``parallelism.default`` (``GET /jobmanager/config``; 1 when unset), asked
        once per client: it is a JobManager start option and does not change under us."""
        if self._default_parallelism is None:
            value = self._get("/jobmanager/config", JobManagerConfig).get("parallelism.default")
            try:
                self._default_parallelism = max(1, int(value)) if value is not None else 1
            except ValueError as exc:
                raise FlinkBadAnswer(
                    f"parallelism.default is not a number: {str(value)[:40]!r}",
                    cluster=self.name,
                    method="GET",
                    path="/jobmanager/config",
                ) from exc
        return self._default_parallelism

    def taskmanagers(self) -> TaskManagers:
        return self._get("/taskmanagers", TaskManagers)

    # --- jobs ----------------------------------------------------------------------------------

    def jobs_overview(self) -> JobsOverview:
        """``GET /jobs/overview``: every job the cluster lists, terminal ones included (one call
        per cluster per cycle is enough to observe it)."""
        return self._get("/jobs/overview", JobsOverview)

    def job(self, job_id: str) -> JobDetails:
        """``GET /jobs/:id``: state and vertices. :class:`FlinkNotFound` when Flink does not list it."""
        return self._get(f"/jobs/{_seg(job_id)}", JobDetails)

    def find_job(self, job_id: str) -> JobDetails | None:
        """:meth:`job`, or None when Flink does not list the id: how a caller "looks first" after
        :class:`FlinkMaybeApplied` from a run with a fixed job id."""
        try:
            return self.job(job_id)
        except FlinkNotFound:
            return None

    def job_config(self, job_id: str) -> JobConfig:
        return self._get(f"/jobs/{_seg(job_id)}/config", JobConfig)

    def breaker_state(self) -> State:
        """The cluster's circuit breaker now: closed, half-open or open (the metrics)."""
        return self.breaker.state

    def checkpoints(self, job_id: str) -> CheckpointStats:
        """``GET /jobs/:id/checkpoints``; see :meth:`CheckpointStats.latest_completed_path` and
        :meth:`CheckpointStats.latest_savepoint_path`."""
        return self._get(f"/jobs/{_seg(job_id)}/checkpoints", CheckpointStats)

    def exceptions(self, job_id: str) -> JobExceptions:
        """``GET /jobs/:id/exceptions`` (both versions' shapes; see :meth:`JobExceptions.root_cause`)."""
        return self._get(f"/jobs/{_seg(job_id)}/exceptions", JobExceptions)

    def cancel(self, job_id: str) -> None:
        """``PATCH /jobs/:id?mode=cancel``: cancel without a savepoint. Not retried; a repeat is
        harmless (409 once the job is terminal, :class:`FlinkConflict`)."""
        self._call("PATCH", f"/jobs/{_seg(job_id)}", effect="idempotent", params={"mode": "cancel"})

    # --- jars ----------------------------------------------------------------------------------

    def jars(self) -> JarList:
        return self._get("/jars", JarList)

    def upload_jar(self, path: Path) -> str:
        """Upload a jar (multipart field ``jarfile``) and return its jar id. Not retried: a lost
        answer is :class:`FlinkMaybeApplied` (look at :meth:`jars` for a jar of that name)."""
        with path.open("rb") as fh:
            answer = self._call(
                "POST",
                "/jars/upload",
                effect="once",
                files={"jarfile": (path.name, fh, "application/x-java-archive")},
            )
        return self._parse("POST", "/jars/upload", answer, JarUpload, effect="once").jar_id

    def delete_jar(self, jar_id: str) -> None:
        """``DELETE /jars/:id``. Not retried; a repeat answers :class:`FlinkNotFound`."""
        self._call("DELETE", f"/jars/{_seg(jar_id)}", effect="idempotent")

    def plan(self, jar_id: str, request: RunRequest) -> JobPlan:
        """``POST /jars/:id/plan``: the job graph the run would build (no side effect, so retried)."""
        body = request.to_body(self.version().major)
        for key in ("savepointPath", "allowNonRestoredState", "claimMode", "restoreMode", "jobId"):
            body.pop(key, None)
        path = f"/jars/{_seg(jar_id)}/plan"
        answer = self.retry.call(
            self._clock, lambda: self._call("POST", path, effect="read", json=body, program=True)
        )
        return self._parse("POST", path, answer, JobPlan)

    def run(self, jar_id: str, request: RunRequest) -> RunResult:
        """``POST /jars/:id/run``. Never retried.

        Raises :class:`DuplicateJobId` when ``request.job_id`` is already listed (the caller may
        adopt it), :class:`FlinkBadRequest` / :class:`FlinkProgramError` whose message carries
        Flink's real cause, and :class:`FlinkMaybeApplied` when the answer was lost or unreadable
        (look the job up by ``request.job_id``; ``idempotent`` is True when a job id was fixed).
        A run refused with 400 for its state (missing savepoint, unmappable state) still leaves a
        FAILED job listed under that id, so the next try needs the next job id.
        """
        path = f"/jars/{_seg(jar_id)}/run"
        body = request.to_body(self.version().major)
        effect: Effect = "idempotent" if request.job_id is not None else "once"
        try:
            answer = self._call("POST", path, effect=effect, json=body, program=True)
        except (FlinkPermanentError, FlinkServerError) as exc:
            marker = next((m for m in _DUPLICATE_MARKERS if m in str(exc)), None)
            if request.job_id is not None and marker is not None:
                raise DuplicateJobId(
                    request.job_id,
                    flink_error=marker,
                    cluster=self.name,
                    method="POST",
                    path=path,
                    status=exc.status,
                ) from exc
            raise
        return self._parse("POST", path, answer, RunResult, effect=effect)

    # --- savepoints ------------------------------------------------------------------------------

    def trigger_savepoint(self, job_id: str, *, trigger_id: str, target_directory: str | None = None) -> str:
        """``POST /jobs/:id/savepoints`` with our ``trigger_id`` (the job keeps running).

        Idempotent: the caller chooses ``trigger_id`` (:func:`new_trigger_id`, one per operation,
        never reused for another savepoint or stop: Flink keys both by (job, trigger id) and
        would take a stop for a repeat of the savepoint) and records it before calling; Flink
        answers a repeat with the same operation, so this call is retried on temporary errors and
        lost answers, and a resumed step simply calls it again. Flink remembers the operation for
        ``rest.async.store-duration`` (default 5 min) after it ended, on that JobManager; after
        that :meth:`savepoint_status` raises :class:`UnknownTrigger` and a repeat starts a new
        operation. Returns the trigger id; :class:`TriggerIdIgnored` if Flink answered another.
        """
        body: dict[str, Any] = {"cancel-job": False, "triggerId": check_flink_id(trigger_id, "trigger_id")}
        if target_directory is not None:
            body["target-directory"] = target_directory
        return self._trigger(f"/jobs/{_seg(job_id)}/savepoints", body, trigger_id)

    def stop_with_savepoint(
        self,
        job_id: str,
        *,
        trigger_id: str,
        target_directory: str | None = None,
        drain: bool = False,
    ) -> str:
        """``POST /jobs/:id/stop`` with our ``trigger_id``; returns it for :meth:`wait_for_savepoint`.

        Idempotent like :meth:`trigger_savepoint`, also after the stop has finished and the job
        is FINISHED: a repeat answers 202 with the same operation and starts nothing new. Once
        Flink forgot the stop (:class:`UnknownTrigger`), a repeat is a new stop, which fails for a
        finished job; :meth:`checkpoints` (``latest_savepoint_path``) still names the savepoint.
        """
        body: dict[str, Any] = {"drain": drain, "triggerId": check_flink_id(trigger_id, "trigger_id")}
        if target_directory is not None:
            body["targetDirectory"] = target_directory
        return self._trigger(f"/jobs/{_seg(job_id)}/stop", body, trigger_id)

    def savepoint_status(self, job_id: str, trigger_id: str) -> AsyncOperation:
        """``GET /jobs/:id/savepoints/:triggerid`` (also the status of a stop). :class:`UnknownTrigger`
        when Flink does not know that trigger for that job (never arrived, or forgotten)."""
        path = f"/jobs/{_seg(job_id)}/savepoints/{_seg(trigger_id)}"
        try:
            return self._get(path, AsyncOperation)
        except FlinkNotFound as exc:
            raise UnknownTrigger(
                exc.detail, cluster=self.name, method="GET", path=path, status=exc.status
            ) from exc

    def wait_for_savepoint(
        self,
        job_id: str,
        trigger_id: str,
        timeout: float | None = None,
        *,
        deadline: float | None = None,
        cancelled: Cancelled | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> str:
        """Poll a savepoint or stop until it ends; return the savepoint location.

        COMPLETED with a failure cause, or without a location, raises :class:`SavepointFailed`.
        The wait ends with :class:`FlinkStillRunning` after ``timeout`` seconds (default: the
        cluster's savepoint timeout) or at ``deadline`` (the clock's ``monotonic()``), whichever
        is first, and with :class:`PollCancelled` as soon as ``cancelled()`` returns True.
        """
        path = f"/jobs/{_seg(job_id)}/savepoints/{_seg(trigger_id)}"
        op = self._wait_operation(
            path,
            lambda: self.savepoint_status(job_id, trigger_id),
            timeout,
            deadline,
            cancelled,
            poll_s,
            job_id=job_id,
            trigger_id=trigger_id,
        )
        result = op.operation
        if result is not None and result.failure_cause is not None:
            raise SavepointFailed(
                f"savepoint failed: {result.failure_cause.summary()}",
                cluster=self.name,
                method="GET",
                path=path,
            )
        if result is None or not result.location:
            raise SavepointFailed(
                "savepoint operation completed without a location", cluster=self.name, method="GET", path=path
            )
        return result.location

    def dispose_savepoint(self, savepoint_path: str) -> str:
        """``POST /savepoint-disposal``; returns Flink's trigger id (Flink takes none from us here;
        a repeat is harmless, it disposes nothing twice). Not retried."""
        path = "/savepoint-disposal"
        answer = self._call("POST", path, effect="once", json={"savepoint-path": savepoint_path})
        return self._parse("POST", path, answer, TriggerResponse, effect="once").request_id

    def disposal_status(self, trigger_id: str) -> AsyncOperation:
        return self._get(f"/savepoint-disposal/{_seg(trigger_id)}", AsyncOperation)

    def wait_for_disposal(
        self,
        trigger_id: str,
        timeout: float | None = None,
        *,
        deadline: float | None = None,
        cancelled: Cancelled | None = None,
        poll_s: float = DEFAULT_POLL_S,
    ) -> None:
        """Poll a disposal until it ends; a failure cause raises :class:`OperationFailed`; the
        limits as in :meth:`wait_for_savepoint`."""
        path = f"/savepoint-disposal/{_seg(trigger_id)}"
        op = self._wait_operation(
            path,
            lambda: self.disposal_status(trigger_id),
            timeout,
            deadline,
            cancelled,
            poll_s,
            job_id=None,
            trigger_id=trigger_id,
        )
        if op.operation is not None and op.operation.failure_cause is not None:
            raise OperationFailed(
                f"savepoint disposal failed: {op.operation.failure_cause.summary()}",
                cluster=self.name,
                method="GET",
                path=path,
            )

    def wait_for_job_state(
        self,
        job_id: str,
        states: Collection[str],
        timeout: float,
        *,
        deadline: float | None = None,
        cancelled: Cancelled | None = None,
        poll_s: float = DEFAULT_POLL_S,
        all_tasks_running: bool = False,
    ) -> JobDetails:
        """Poll ``GET /jobs/:id`` until the job is in one of ``states``.

        With ``all_tasks_running`` a RUNNING job counts only once every vertex runs. A job that
        reaches a terminal state (FINISHED, CANCELED, FAILED) not in ``states`` raises
        :class:`JobEnded` at once (SUSPENDED is not terminal: HA recovers it). The limits as in
        :meth:`wait_for_savepoint` (:class:`FlinkStillRunning`, :class:`PollCancelled`). Job views
        are cached by Flink for ``web.refresh-interval``, so a state shows up to that late.
        """
        wanted = frozenset(states)
        path = f"/jobs/{_seg(job_id)}"

        def reached(details: JobDetails) -> bool:
            if details.state in wanted and (
                not all_tasks_running or details.state != "RUNNING" or details.all_tasks_running
            ):
                return True
            if details.state in TERMINAL_STATES:
                raise JobEnded(
                    f"job {job_id} ended {details.state} while waiting for {sorted(wanted)}",
                    cluster=self.name,
                    path=path,
                    job_id=job_id,
                    state=details.state,
                )
            return False

        return self._poll(
            path,
            lambda: self.job(job_id),
            reached,
            timeout,
            deadline,
            cancelled,
            poll_s,
            lambda details: details.state,
            job_id=job_id,
            trigger_id=None,
        )

    # --- plumbing --------------------------------------------------------------------------------

    def _trigger(self, path: str, body: dict[str, Any], trigger_id: str) -> str:
        """POST an idempotent trigger (it carries our trigger id): retried, lost answers too."""

        def send() -> str:
            answer = self._call("POST", path, effect="idempotent", json=body)
            return self._parse("POST", path, answer, TriggerResponse, effect="idempotent").request_id

        request_id = self.retry.call(self._clock, send, also=(FlinkMaybeApplied,))
        if request_id != trigger_id:
            raise TriggerIdIgnored(sent=trigger_id, request_id=request_id, cluster=self.name, path=path)
        return request_id

    def _wait_operation(
        self,
        path: str,
        fetch: Callable[[], AsyncOperation],
        timeout: float | None,
        deadline: float | None,
        cancelled: Cancelled | None,
        poll_s: float,
        *,
        job_id: str | None,
        trigger_id: str | None,
    ) -> AsyncOperation:
        """Poll an asynchronous operation until COMPLETED (default limit: the savepoint timeout)."""
        return self._poll(
            path,
            fetch,
            lambda op: op.completed,
            self.savepoint_timeout_s if timeout is None else timeout,
            deadline,
            cancelled,
            poll_s,
            lambda op: str(op.status.id),
            job_id=job_id,
            trigger_id=trigger_id,
        )

    def _poll(
        self,
        path: str,
        fetch: Callable[[], P],
        done: Callable[[P], bool],
        timeout: float,
        deadline: float | None,
        cancelled: Cancelled | None,
        poll_s: float,
        state_of: Callable[[P], str],
        *,
        job_id: str | None,
        trigger_id: str | None,
    ) -> P:
        """Call ``fetch`` every ``poll_s`` seconds of the clock until ``done`` accepts its answer.

        Before every fetch ``cancelled`` is asked (:class:`PollCancelled` when it says yes); once
        ``timeout`` seconds have passed or the clock reached ``deadline``,
        :class:`FlinkStillRunning` names the last state seen."""
        ids = {"job_id": job_id, "trigger_id": trigger_id}
        end = self._clock.monotonic() + timeout
        limit = f"after {timeout:g} s"
        if deadline is not None and deadline < end:
            end, limit = deadline, "at the caller's deadline"
        while True:
            if cancelled is not None and cancelled():
                raise PollCancelled("wait cancelled by the caller", cluster=self.name, path=path, **ids)
            value = fetch()
            if done(value):
                return value
            now = self._clock.monotonic()
            if now >= end:
                state = state_of(value)
                raise FlinkStillRunning(
                    f"still {state} {limit}",
                    cluster=self.name,
                    path=path,
                    last_state=state,
                    **ids,
                )
            self._clock.sleep(min(poll_s, max(end - now, 0.0)))

    def _get(self, path: str, model: type[M], params: dict[str, str] | None = None) -> M:
        """An idempotent GET: retried on temporary errors, parsed into ``model``."""
        answer = self.retry.call(self._clock, lambda: self._call("GET", path, effect="read", params=params))
        return self._parse("GET", path, answer, model)

    def _parse(self, method: str, path: str, answer: Any, model: type[M], *, effect: Effect = "read") -> M:
        """``answer`` as ``model``. A shape we cannot read is :class:`FlinkBadAnswer` for a read, and
        :class:`FlinkMaybeApplied` for a request with a side effect (Flink took it: 2xx)."""
        try:
            return model.model_validate(answer)
        except ValidationError as exc:
            fields = ", ".join(".".join(str(p) for p in e["loc"]) for e in exc.errors()[:5])
            detail = f"unexpected answer shape for {model.__name__} ({fields or 'not an object'})"
            if effect == "read":
                raise FlinkBadAnswer(detail, cluster=self.name, method=method, path=path) from exc
            raise FlinkMaybeApplied(
                f"accepted, answer unreadable: {detail}",
                cluster=self.name,
                method=method,
                path=path,
                idempotent=effect == "idempotent",
            ) from exc

    def _lost(
        self, effect: Effect, detail: str, where: dict[str, Any], status: int | None = None
    ) -> Exception:
        """The error for a request that went out without a usable answer."""
        if effect == "read":
            return FlinkNoAnswer(detail, status=status, **where)
        return FlinkMaybeApplied(
            f"sent, answer lost ({detail})", status=status, idempotent=effect == "idempotent", **where
        )

    def _call(self, method: str, path: str, *, effect: Effect, program: bool = False, **kwargs: Any) -> Any:
        """One HTTP request through the breaker; maps failures to :mod:`.errors`. Returns parsed JSON.

        ``effect`` (see :data:`Effect`) decides what a lost or unreadable answer means.
        ``program``: a run or plan, whose 500 answers with Flink's own error text are about the
        program or jar (:class:`FlinkProgramError`, :class:`FlinkNotFound`), not the cluster
        (503 stays :class:`FlinkServerError`: a leader election, worth another try later).
        """
        self.breaker.acquire(method, path)
        where: dict[str, Any] = {"cluster": self.name, "method": method, "path": path}
        started = self._clock.monotonic()
        try:
            response = self._http.request(method, path, **kwargs)
        except _NOT_SENT as exc:
            self.breaker.failure()
            logger.debug("flink {} {} {} -> not sent ({})", self.name, method, path, type(exc).__name__)
            raise FlinkNotSent(f"request not sent ({type(exc).__name__})", **where) from exc
        except httpx.RequestError as exc:  # sent: read/write timeout, reset, an undecodable answer
            self.breaker.failure()
            logger.debug("flink {} {} {} -> no answer ({})", self.name, method, path, type(exc).__name__)
            raise self._lost(effect, f"no readable answer: {type(exc).__name__}", where) from exc
        except BaseException:
            self.breaker.release()
            raise
        ms = (self._clock.monotonic() - started) * 1000
        status = response.status_code
        logger.debug("flink {} {} {} -> {} ({:.0f} ms)", self.name, method, path, status, ms)
        if status < 200:  # an informational answer is never a final one
            self.breaker.failure()
            raise self._lost(effect, f"no final answer (status {status})", where, status)
        if status >= 500:
            detail = _error_detail(response)
            flink_text = _has_flink_errors(response)
            if program and status == 500 and flink_text:
                self.breaker.success()
                if "Jar file" in detail and "does not exist" in detail:
                    raise FlinkNotFound(detail, status=status, **where)
                raise FlinkProgramError(detail, status=status, **where)
            self.breaker.failure()
            if effect != "read" and status in (502, 504) and not flink_text:
                raise self._lost(effect, f"a proxy answered {status}: {detail}", where, status)
            raise FlinkServerError(detail, status=status, **where)
        self.breaker.success()
        if 300 <= status < 400:  # Flink never redirects; a proxy in front does (login page?)
            raise FlinkPermanentError("answered a redirect; is a proxy in front?", status=status, **where)
        if status >= 400:
            detail = _error_detail(response)
            if status == 400:
                raise FlinkBadRequest(detail, status=status, **where)
            if status in (401, 403):
                raise FlinkAuthError(detail, status=status, **where)
            if status == 404:
                raise FlinkNotFound(detail, status=status, **where)
            if status == 409:
                raise FlinkConflict(detail, status=status, **where)
            if status in (408, 429):
                raise FlinkThrottled(detail, status=status, delay=_retry_after(response), **where)
            raise FlinkPermanentError(detail, status=status, **where)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError as exc:
            if effect == "read":
                raise FlinkBadAnswer("answer is not JSON", status=status, **where) from exc
            raise FlinkMaybeApplied(
                "accepted, answer unreadable: not JSON",
                status=status,
                idempotent=effect == "idempotent",
                **where,
            ) from exc


#: httpx errors raised before any byte of the request reached the server.
_NOT_SENT = (
    httpx.ConnectError,
    httpx.ConnectTimeout,
    httpx.PoolTimeout,
    httpx.ProxyError,
    httpx.UnsupportedProtocol,
    httpx.LocalProtocolError,
)


def _retry_after(response: httpx.Response) -> float | None:
    """``Retry-After`` in seconds when it is a number (the HTTP-date form is ignored)."""
    value = response.headers.get("Retry-After", "").strip()
    try:
        seconds = float(value)
    except ValueError:
        return None
    return seconds if 0 <= seconds < 86400 else None


def _seg(value: str) -> str:
    """One URL path segment, quoted (ids come from Flink or from us, but never trust them blindly)."""
    return quote(value, safe="")
