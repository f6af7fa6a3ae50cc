"""The HTTP API of ``flink-gitops run``: health, job status, sync, pause, savepoint, audit, webhooks.

FastAPI routes and pydantic response models (OpenAPI at ``/openapi.json``) over
a read model of the daemon (the store, the audit trail, the last cycle) and a
trigger callback (``Daemon.trigger``: a cycle now, bursts coalesce). uvicorn
serves it on a thread of the daemon (:class:`ApiServer`), on a socket bound
before the loop starts, so a port in use is an error at start, not a quiet
thread death.

Auth: bearer tokens from ``http.tokens`` (``role:sha256-hex`` lines, hashed at
rest, compared with ``hmac.compare_digest``); viewer reads, operator also
POSTs. No or unknown token → 401, a viewer on an operator route → 403, on every
route but /healthz, /readyz and the webhooks, which are checked by their
HMAC signature (or GitLab's token) against ``http.webhook_secret``: a wrong
or missing one is 401 and nothing is triggered. Bodies over
``http.max_body_bytes`` are 413 before they are read whole.

Control (operator): pause and resume one job or every job (``execute.pauses``: audited first,
idempotent), and a savepoint of one job, which is queued and taken at the start of the daemon's
next cycle, under its cycle lock and the cluster's lease (never beside a cycle's own action
on that job): 202 with what was queued. Non-leaders serve the API read-only: a mutating route
for a job whose cluster this replica does not lead (or, for every job, a replica that leads no
cluster) is 409 naming the leader. /readyz shows which clusters this replica leads. Tokens, secrets
and signatures are never logged or echoed. Neighbours: ``service.loop`` (the
daemon it serves), ``record.store`` / ``record.audit`` (what it reads),
``cli.run`` (wires them).
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import re
import socket
import threading
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import uvicorn
from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from loguru import logger
from pydantic import BaseModel, ConfigDict, Field

from flink_gitops.errors import ConfigError, FlinkGitOpsError, TemporaryError
from flink_gitops.execute import pauses
from flink_gitops.execute.pauses import PauseOutcome
from flink_gitops.record.audit.event import AuditRecord, api_actor, format_time
from flink_gitops.record.store.records import JobRecord, SavepointRecord
from flink_gitops.secrets import Secret, SecretRef, read_secret
from flink_gitops.service.metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from flink_gitops.settings import HttpConfig

if TYPE_CHECKING:
    from flink_gitops.execute.cycle import Reconciler
    from flink_gitops.service.loop import Daemon

#: a job name as the API accepts it: a DNS subdomain (lowercase labels), at most 253 characters.
JOB_NAME = r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
JobName = Annotated[str, Path(pattern=JOB_NAME, max_length=253)]
#: most audit records one query returns.
MAX_AUDIT_LIMIT = 1000


# --- tokens ----------------------------------------------------------------------------------------


class Role(enum.IntEnum):
    """What a token may do; a higher role may do what a lower one may."""

    VIEWER = 1
    OPERATOR = 2


_TOKEN_LINE = re.compile(r"^(viewer|operator):([0-9a-f]{64})$")


@dataclass(frozen=True)
class TokenBook:
    """The hashed tokens and their roles (empty: every token is refused)."""

    entries: tuple[tuple[Role, bytes], ...] = ()

    @classmethod
    def parse(cls, text: str, where: str) -> TokenBook:
        """Lines ``role:sha256-hex``; ConfigError naming the line of a bad one (never its content)."""
        entries: list[tuple[Role, bytes]] = []
        for number, raw in enumerate(text.splitlines(), start=1):
            line = raw.strip()
            if not line or line.startswith("#"):
                continue
            match = _TOKEN_LINE.match(line)
            if match is None:
                raise ConfigError(
                    f"{where}, line {number}: expected 'viewer:<sha256 hex>' or 'operator:<sha256 hex>'"
                )
            entries.append((Role[match.group(1).upper()], bytes.fromhex(match.group(2))))
        return cls(tuple(entries))

    @classmethod
    def load(cls, ref: SecretRef | None) -> TokenBook:
        if ref is None:
            return cls()
        return cls.parse(read_secret(ref).reveal_text(), ref.describe())

    def role_of(self, token: str) -> Role | None:
        """The role of ``token``, comparing its hash with every entry in constant time."""
        digest = hashlib.sha256(token.encode("utf-8", "surrogateescape")).digest()
        found: Role | None = None
        for role, expected in self.entries:
            if hmac.compare_digest(digest, expected) and (found is None or role > found):
                found = role
        return found


def hash_token(token: str) -> str:
    """What a tokens file holds for ``token`` (sha256 hex)."""
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


@dataclass
class Credentials:
    """The tokens and the webhook secret in force; SIGHUP replaces both at once (``reload``)."""

    tokens: TokenBook
    webhook_secret: Secret | None

    @classmethod
    def load(cls, http: HttpConfig) -> Credentials:
        """Read ``http.tokens`` and ``http.webhook_secret``; ConfigError naming the file if either fails."""
        secret = read_secret(http.webhook_secret) if http.webhook_secret is not None else None
        return cls(TokenBook.load(http.tokens), secret)

    def replace(self, other: Credentials) -> None:
        self.tokens, self.webhook_secret = other.tokens, other.webhook_secret

    def warn_if_open(self) -> None:
        if not self.tokens.entries:
            logger.warning("http.tokens is not set or empty: every /api/v1 request is refused (401)")
        if self.webhook_secret is None:
            logger.warning("http.webhook_secret is not set: every webhook is refused (401)")


# --- webhooks --------------------------------------------------------------------------------------


def _hmac_hex(secret: Secret, body: bytes) -> str:
    return hmac.new(secret.reveal(), body, hashlib.sha256).hexdigest()


def _same(given: str | None, expected: str) -> bool:
    if given is None:
        return False
    return hmac.compare_digest(given.strip().lower().encode("utf-8", "replace"), expected.encode("ascii"))


def check_webhook(form: str, secret: Secret | None, headers: Mapping[str, str], body: bytes) -> bool:
    """Whether a webhook of ``form`` (github, gitlab, gitea, generic) carries a valid signature."""
    if secret is None:
        return False
    if form == "gitlab":
        token = headers.get("x-gitlab-token")
        return token is not None and hmac.compare_digest(token.encode("utf-8", "replace"), secret.reveal())
    expected = _hmac_hex(secret, body)
    if form == "github":
        return _same(headers.get("x-hub-signature-256"), f"sha256={expected}")
    if form == "gitea":
        return _same(headers.get("x-gitea-signature"), expected)
    given = headers.get("x-signature-256")
    if given is not None and given.strip().lower().startswith("sha256="):
        given = given.strip()[len("sha256=") :]
    return _same(given, expected)


# --- the read model --------------------------------------------------------------------------------


class ReadModel(Protocol):
    """What the API reads (``DaemonView`` in ``cli.run`` is the daemon's)."""

    def jobs(self) -> list[JobRecord]: ...

    def job(self, name: str) -> JobRecord | None: ...

    def savepoints(self, name: str, limit: int) -> list[SavepointRecord]: ...

    def audit(
        self, *, job: str | None, action: str | None, after_seq: int, limit: int
    ) -> list[AuditRecord]: ...

    def readiness(self) -> Readiness: ...

    def metrics(self) -> bytes: ...


class Control(Protocol):
    """What the mutating routes call (``DaemonView`` is the daemon's)."""

    def refusal(self, job: str | None) -> str | None:
        """Why this replica may not change ``job`` (None: every job), naming the leader; None: it may."""
        ...

    def pause(self, job: str | None, reason: str, actor: str) -> PauseOutcome: ...

    def resume(self, job: str | None, actor: str) -> PauseOutcome: ...

    def queue_savepoint(self, job: str) -> bool:
        """Queue a savepoint of ``job`` for the next cycle; False when one is queued already."""
        ...


@dataclass(frozen=True)
class Readiness:
    ready: bool
    reason: str
    last_cycle_at: datetime | None
    last_cycle_age_s: float | None
    cycles: int
    #: cluster → whether this replica leads it now.
    leadership: Mapping[str, bool] = field(default_factory=dict)


# --- response models -------------------------------------------------------------------------------


class Health(BaseModel):
    status: str


class Ready(BaseModel):
    ready: bool
    reason: str
    last_cycle_at: str | None
    last_cycle_age_s: float | None
    cycles: int
    #: cluster → whether this replica leads it (a standby is ready, and serves reads).
    leadership: dict[str, bool] = Field(default_factory=dict)


class Drift(BaseModel):
    kind: str
    since: str | None
    detail: str | None


class Savepoint(BaseModel):
    path: str
    kind: str
    origin: str
    flink_job_id: str | None
    created_at: str


class Job(BaseModel):
    name: str
    cluster: str
    state: str
    flink_job_id: str | None
    spec_hash: str | None
    commit: str | None
    stable_spec_hash: str | None
    savepoint: str | None
    drift: Drift | None
    last_error: str | None
    attempts: int
    updated_at: str


class JobDetail(Job):
    savepoints: list[Savepoint]


class SyncAccepted(BaseModel):
    triggered: bool
    scope: str


class PauseRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")  # a misspelt "reason" is 422, not a pause without one

    #: why (shown by status, recorded in the audit trail); cut to 1000 characters.
    reason: str = ""


class PauseState(BaseModel):
    #: the job, or "*" for every job.
    scope: str
    paused: bool
    #: False: nothing changed (paused already, or was not paused).
    changed: bool
    paused_by: str | None
    paused_at: str | None
    reason: str | None
    detail: str


class SavepointQueued(BaseModel):
    job: str
    #: False: a savepoint of this job was queued already (one is taken).
    queued: bool
    detail: str


class AuditEntry(BaseModel):
    seq: int
    time: str
    key_version: int
    event: dict[str, Any]


class Problem(BaseModel):
    detail: str


def _time(value: datetime | None) -> str | None:
    return None if value is None else format_time(value)


def _job(rec: JobRecord) -> dict[str, Any]:
    drift = None
    if rec.drift_kind is not None:
        drift = Drift(kind=rec.drift_kind, since=_time(rec.drift_since), detail=rec.drift_detail)
    reconciled = rec.last_reconciled
    return {
        "name": rec.name,
        "cluster": rec.cluster,
        "state": str(rec.state.value),
        "flink_job_id": rec.flink_job_id,
        "spec_hash": reconciled.hash if reconciled else None,
        "commit": reconciled.commit if reconciled else None,
        "stable_spec_hash": rec.last_stable.hash if rec.last_stable else None,
        "savepoint": rec.savepoint,
        "drift": drift,
        "last_error": rec.last_error,
        "attempts": rec.attempts,
        "updated_at": format_time(rec.updated_at),
    }


def _savepoint(rec: SavepointRecord) -> Savepoint:
    return Savepoint(
        path=rec.path,
        kind=str(rec.kind.value),
        origin=str(rec.origin.value),
        flink_job_id=rec.flink_job_id,
        created_at=format_time(rec.created_at),
    )


# --- the body cap ----------------------------------------------------------------------------------

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]


class BodyLimit:
    """ASGI middleware: a request body over ``limit`` bytes is 413, whether declared or streamed."""

    def __init__(self, app: ASGIApp, limit: int) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        for key, value in scope.get("headers", []):
            if key == b"content-length":
                try:
                    declared = int(value)
                except ValueError:
                    declared = -1
                if declared < 0 or declared > self.limit:
                    await self._refuse(send, 413 if declared > self.limit else 400)
                    return
        seen = 0

        async def counted() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise _TooLarge
            return message

        try:
            await self.app(scope, counted, send)
        except _TooLarge:
            await self._refuse(send, 413)

    async def _refuse(self, send: Send, status: int) -> None:
        detail = b"request body too large" if status == 413 else b"bad Content-Length"
        body = b'{"detail":"' + detail + b'"}'
        await send(
            {
                "type": "http.response.start",
                "status": status,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


class _TooLarge(Exception):
    pass


class StoreUnavailable(TemporaryError):
    """The daemon has no store open right now (starting, reloading, stopping): ask again shortly."""


# --- the app ---------------------------------------------------------------------------------------


def create_app(
    read: ReadModel,
    trigger: Callable[[str], None],
    *,
    tokens: TokenBook,
    webhook_secret: Secret | None,
    max_body_bytes: int = 1_048_576,
    control: Control | None = None,
) -> FastAPI:
    """The API over ``read``; ``trigger(why)`` asks for a cycle now; ``control`` serves the pause,
    resume and savepoint routes (None: they answer 503). The tokens and secret in force are
    ``app.state.credentials`` (a :class:`Credentials`; replaced in place on reload)."""
    creds = Credentials(tokens, webhook_secret)
    app = FastAPI(
        title="flink-gitops",
        version="1",
        description="Status, sync, audit and Git webhooks of the flink-gitops daemon.",
        openapi_url="/openapi.json",
        docs_url=None,
        redoc_url=None,
    )
    app.state.credentials = creds
    bearer = HTTPBearer(auto_error=False, description="a token from http.tokens")
    unauthorized: dict[int | str, dict[str, Any]] = {401: {"model": Problem}, 403: {"model": Problem}}

    def role(credentials: HTTPAuthorizationCredentials | None = Depends(bearer)) -> Role:  # noqa: B008
        if credentials is None or not credentials.credentials:
            raise HTTPException(401, "a bearer token is required", headers={"WWW-Authenticate": "Bearer"})
        found = creds.tokens.role_of(credentials.credentials)
        if found is None:
            raise HTTPException(401, "the bearer token is not valid", headers={"WWW-Authenticate": "Bearer"})
        return found

    def viewer(found: Role = Depends(role)) -> Role:  # noqa: B008
        return found

    def operator(found: Role = Depends(role)) -> Role:  # noqa: B008
        if found < Role.OPERATOR:
            raise HTTPException(403, "this needs the operator role")
        return found

    @app.exception_handler(FlinkGitOpsError)
    async def _our_error(_request: Request, exc: FlinkGitOpsError) -> JSONResponse:
        logger.error("api: {}", exc)
        return JSONResponse({"detail": str(exc)}, status_code=503)

    @app.get("/healthz", response_model=Health, tags=["health"])
    def healthz() -> Health:
        """The process is alive (no check of its dependencies)."""
        return Health(status="ok")

    @app.get("/readyz", response_model=Ready, responses={503: {"model": Ready}}, tags=["health"])
    def readyz() -> JSONResponse:
        """The store answers and the last cycle is recent; 503 otherwise."""
        state = read.readiness()
        body = Ready(
            ready=state.ready,
            reason=state.reason,
            last_cycle_at=_time(state.last_cycle_at),
            last_cycle_age_s=state.last_cycle_age_s,
            cycles=state.cycles,
        )
        body.leadership = dict(state.leadership)
        return JSONResponse(body.model_dump(), status_code=200 if state.ready else 503)

    @app.get(
        "/metrics",
        response_class=PlainTextResponse,
        responses={**unauthorized, 200: {"content": {"text/plain": {}}}},
        tags=["health"],
    )
    def metrics(_role: Role = Depends(viewer)) -> PlainTextResponse:  # noqa: B008
        """Prometheus metrics (text exposition format)."""
        return PlainTextResponse(read.metrics(), media_type=METRICS_CONTENT_TYPE)

    @app.get("/api/v1/jobs", response_model=list[Job], responses=unauthorized, tags=["jobs"])
    def jobs(_role: Role = Depends(viewer)) -> list[Job]:  # noqa: B008
        """Every job the store knows, tombstones included."""
        return [Job(**_job(rec)) for rec in read.jobs()]

    @app.get(
        "/api/v1/jobs/{name}",
        response_model=JobDetail,
        responses={**unauthorized, 404: {"model": Problem}},
        tags=["jobs"],
    )
    def job(name: JobName, _role: Role = Depends(viewer)) -> JobDetail:  # noqa: B008
        """One job with its savepoints (newest first)."""
        rec = read.job(name)
        if rec is None:
            raise HTTPException(404, "no such job")
        return JobDetail(**_job(rec), savepoints=[_savepoint(s) for s in read.savepoints(name, 50)])

    @app.post(
        "/api/v1/sync",
        response_model=SyncAccepted,
        status_code=202,
        responses={**unauthorized, 404: {"model": Problem}},
        tags=["sync"],
    )
    def sync(
        job: Annotated[str | None, Query(pattern=JOB_NAME, max_length=253)] = None,
        _role: Role = Depends(operator),  # noqa: B008
    ) -> SyncAccepted:
        """Run a reconcile cycle now (one cycle reconciles every job; ``job`` must exist)."""
        if job is not None and read.job(job) is None:
            raise HTTPException(404, "no such job")
        trigger(f"api sync {job}" if job else "api sync")
        return SyncAccepted(triggered=True, scope=job or "all")

    def controlled(job: str | None) -> Control:
        """The control for a change of ``job`` (None: every job): 404 unknown, 409 led elsewhere."""
        if job is not None and read.job(job) is None:
            raise HTTPException(404, "no such job")
        if control is None:
            raise HTTPException(503, "this server does not take changes")
        refused = control.refusal(job)
        if refused is not None:
            raise HTTPException(409, f"read-only here: {refused}")
        return control

    def pause_state(scope: str, outcome: PauseOutcome, verb: str, job: str | None) -> PauseState:
        p = outcome.pause
        return PauseState(
            scope=scope,
            paused=(verb == "pause"),
            changed=outcome.changed,
            paused_by=p.paused_by if p else None,
            paused_at=_time(p.paused_at) if p else None,
            reason=p.reason if p else None,
            detail=outcome.describe(verb, job),
        )

    changes: dict[int | str, dict[str, Any]] = {
        **unauthorized,
        404: {"model": Problem},
        409: {"model": Problem},
        503: {"model": Problem},
    }

    def do_pause(job: str | None, body: PauseRequest | None, found: Role) -> PauseState:
        ctl = controlled(job)
        try:
            outcome = ctl.pause(job, body.reason if body else "", api_actor(found.name.lower()))
        except pauses.UnknownJobError as exc:
            raise HTTPException(404, str(exc)) from exc
        return pause_state(job or "*", outcome, "pause", job)

    def do_resume(job: str | None, found: Role) -> PauseState:
        ctl = controlled(job)
        try:
            outcome = ctl.resume(job, api_actor(found.name.lower()))
        except pauses.UnknownJobError as exc:
            raise HTTPException(404, str(exc)) from exc
        return pause_state(job or "*", outcome, "resume", job)

    @app.post("/api/v1/jobs/{name}/pause", response_model=PauseState, responses=changes, tags=["control"])
    def pause_job(
        name: JobName,
        body: PauseRequest | None = None,
        found: Role = Depends(operator),  # noqa: B008
    ) -> PauseState:
        """Stop acting on one job (audited; idempotent); it is still observed and alerted on."""
        return do_pause(name, body, found)

    @app.post("/api/v1/jobs/{name}/resume", response_model=PauseState, responses=changes, tags=["control"])
    def resume_job(name: JobName, found: Role = Depends(operator)) -> PauseState:  # noqa: B008
        """Lift one job's pause (audited; idempotent)."""
        return do_resume(name, found)

    @app.post("/api/v1/pause", response_model=PauseState, responses=changes, tags=["control"])
    def pause_all(body: PauseRequest | None = None, found: Role = Depends(operator)) -> PauseState:  # noqa: B008
        """Stop acting on every job (audited; idempotent); observing and alerting go on."""
        return do_pause(None, body, found)

    @app.post("/api/v1/resume", response_model=PauseState, responses=changes, tags=["control"])
    def resume_all(found: Role = Depends(operator)) -> PauseState:  # noqa: B008
        """Lift the pause of every job (per-job pauses stay)."""
        return do_resume(None, found)

    @app.post(
        "/api/v1/jobs/{name}/savepoint",
        response_model=SavepointQueued,
        status_code=202,
        responses=changes,
        tags=["control"],
    )
    def savepoint(name: JobName, _role: Role = Depends(operator)) -> SavepointQueued:  # noqa: B008
        """Queue a savepoint of a running job: taken at the start of the next cycle (202)."""
        rec = read.job(name)
        if rec is not None and (not rec.state.runs_a_job or rec.flink_job_id is None):
            raise HTTPException(409, f"job {name} is {rec.state.value}: no running Flink job")
        ctl = controlled(name)
        queued = ctl.queue_savepoint(name)
        trigger(f"api savepoint {name}")
        detail = "queued: taken at the start of the next cycle" if queued else "queued already"
        return SavepointQueued(job=name, queued=queued, detail=detail)

    @app.get("/api/v1/audit", response_model=list[AuditEntry], responses=unauthorized, tags=["audit"])
    def audit(
        job: Annotated[str | None, Query(pattern=JOB_NAME, max_length=253)] = None,
        action: Annotated[str | None, Query(pattern=r"^[a-z][a-z0-9_.-]*$", max_length=64)] = None,
        after_seq: Annotated[int, Query(ge=0, le=2**62)] = 0,
        limit: Annotated[int, Query(ge=1, le=MAX_AUDIT_LIMIT)] = 100,
        _role: Role = Depends(viewer),  # noqa: B008
    ) -> list[AuditEntry]:
        """Audit records after ``after_seq``, oldest first, at most ``limit`` (page with the last seq)."""
        found = read.audit(job=job, action=action, after_seq=after_seq, limit=limit)
        return [
            AuditEntry(
                seq=r.seq, time=format_time(r.recorded_at), key_version=r.key_version, event=r.event.as_dict()
            )
            for r in found
        ]

    def webhook(form: str) -> Callable[[Request], Awaitable[SyncAccepted]]:
        async def receive(request: Request) -> SyncAccepted:
            body = await request.body()
            if not check_webhook(form, creds.webhook_secret, request.headers, body):
                logger.warning("webhook {}: signature missing or wrong, nothing triggered", form)
                raise HTTPException(401, "signature missing or wrong")
            trigger(f"webhook {form}")
            return SyncAccepted(triggered=True, scope="all")

        receive.__name__ = f"webhook_{form}"
        return receive

    for form in ("github", "gitlab", "gitea", "generic"):
        app.add_api_route(
            f"/webhooks/{form}",
            webhook(form),
            methods=["POST"],
            response_model=SyncAccepted,
            status_code=202,
            responses={401: {"model": Problem}, 413: {"model": Problem}},
            tags=["webhooks"],
            summary=f"{form} push webhook",
        )

    app.add_middleware(BodyLimit, limit=max_body_bytes)
    return app


# --- the server ------------------------------------------------------------------------------------


def bind(host: str, port: int) -> socket.socket:
    """A listening socket on ``host:port``; ConfigError when it cannot be had (in use, bad address)."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
        family, kind, proto, _name, address = infos[0]
        sock = socket.socket(family, kind, proto)
    except OSError as exc:
        raise ConfigError(f"http: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind(address)
        sock.listen(128)
    except OSError as exc:
        sock.close()
        raise ConfigError(f"http.port: cannot listen on {host}:{port}: {exc.strerror or exc}") from exc
    return sock


def _is_credential(ref: SecretRef | None) -> bool:
    return ref is not None and ref.credential is not None


class ApiServer:
    """uvicorn on its own thread over a socket bound at construction; ``stop()`` ends it."""

    def __init__(self, app: FastAPI, config: HttpConfig) -> None:
        self._app, self._config = app, config
        self._sock = bind(config.host, config.port)
        self.host, self.port = self._sock.getsockname()[:2]
        self._server = uvicorn.Server(
            uvicorn.Config(
                app,
                log_config=None,
                access_log=False,
                lifespan="off",
                server_header=False,
                timeout_graceful_shutdown=5,
            )
        )
        self._thread = threading.Thread(target=self._serve, name="http-api", daemon=True)

    def _serve(self) -> None:
        self._server.run(sockets=[self._sock])

    def start(self) -> None:
        self._thread.start()
        logger.info("api listening on http://{}:{}", self.host, self.port)

    def reload(self, new: HttpConfig) -> None:
        """SIGHUP: re-read the tokens and the webhook secret (both or neither: a ConfigError leaves
        the ones in force). Where the API listens and its body limit change only at a restart."""
        creds: Credentials = self._app.state.credentials
        creds.replace(Credentials.load(new))
        creds.warn_if_open()
        fixed = [
            k
            for k in ("enabled", "host", "port", "max_body_bytes")
            if getattr(new, k) != getattr(self._config, k)
        ]
        if fixed:  # against what the server was started with: still not in effect
            logger.warning("http.{} changed: takes effect at the next restart", ", http.".join(fixed))
        copied = [f"http.{k}" for k in ("tokens", "webhook_secret") if _is_credential(getattr(new, k))]
        if copied:
            # systemd copies LoadCredential= files once, at start: a reload reads that copy again
            logger.warning(
                "{} come from systemd credentials, copied at service start: a changed credential "
                "file takes effect at `systemctl restart`, not at a reload",
                " and ".join(copied),
            )
        logger.info("api: tokens and webhook secret re-read")

    def stop(self) -> None:
        self._server.should_exit = True
        if self._thread.is_alive():
            self._thread.join(timeout=10)
        self._sock.close()


# --- the daemon's read model -----------------------------------------------------------------------


class DaemonView:
    """The :class:`ReadModel` of a running :class:`~flink_gitops.service.loop.Daemon`: its store and
    audit trail as opened now (a reload may replace them), its last cycle."""

    def __init__(self, daemon: Daemon) -> None:
        self._daemon = daemon

    def _reconciler(self) -> Reconciler:
        rec = self._daemon.reconciler
        if rec is None:
            raise StoreUnavailable("the store is not open (the daemon is starting or stopping)")
        return rec

    def jobs(self) -> list[JobRecord]:
        return self._reconciler().store.jobs.all(specs=False)

    def job(self, name: str) -> JobRecord | None:
        return self._reconciler().store.jobs.get(name)

    def savepoints(self, name: str, limit: int) -> list[SavepointRecord]:
        return self._reconciler().store.snapshots.history(name, limit=limit)

    def audit(self, *, job: str | None, action: str | None, after_seq: int, limit: int) -> list[AuditRecord]:
        trail = self._reconciler().audit
        return list(trail.records(job=job, action=action, after_seq=after_seq, limit=limit))

    def metrics(self) -> bytes:
        return self._daemon.metrics.render()

    def refusal(self, job: str | None) -> str | None:
        rec = self._reconciler()
        if job is None:
            if rec.leases:
                return None
            led = "; ".join(sorted(rec.observing.values())) or "no cluster is led yet"
            return f"this replica leads no cluster ({led})"
        record = rec.store.jobs.get(job)
        if record is None:
            return None  # the route answers 404
        if record.cluster in rec.leases:
            return None
        why = rec.observing.get(record.cluster) or f"this replica does not lead cluster {record.cluster!r}"
        return f"job {job} is on cluster {record.cluster!r}: {why}"

    def pause(self, job: str | None, reason: str, actor: str) -> PauseOutcome:
        rec = self._reconciler()
        return pauses.pause(rec.store, rec.audit, job, reason, actor=f"{actor}@{rec.instance}")

    def resume(self, job: str | None, actor: str) -> PauseOutcome:
        rec = self._reconciler()
        return pauses.resume(rec.store, rec.audit, job, actor=f"{actor}@{rec.instance}")

    def queue_savepoint(self, job: str) -> bool:
        return self._daemon.queue_savepoint(job)

    def readiness(self) -> Readiness:
        daemon = self._daemon
        at = daemon.last_cycle_at
        age = None if at is None else max(0.0, (daemon.clock.now() - at).total_seconds())

        rec = daemon.reconciler
        leadership = rec.leadership() if rec is not None else {}

        def answer(ready: bool, reason: str) -> Readiness:
            return Readiness(ready, reason, at, age, daemon.cycles, leadership)

        try:
            self._reconciler().store.audit_head()
        except FlinkGitOpsError as exc:
            return answer(False, f"store unreachable: {exc}")
        if at is None or age is None:
            return answer(False, "no cycle has completed yet")
        http = daemon.settings.http
        limit = daemon.settings.git.poll_interval_s * http.ready_cycle_intervals
        if age > limit:
            return answer(False, f"the last cycle is {age:.0f} s old (limit {limit:.0f} s)")
        return answer(True, "ok")


def serve(daemon: Daemon) -> ApiServer:
    """The API of ``daemon`` on ``settings.http``, bound (not yet started)."""
    http = daemon.settings.http
    creds = Credentials.load(http)
    creds.warn_if_open()
    view = DaemonView(daemon)
    app = create_app(
        view,
        daemon.trigger,
        tokens=creds.tokens,
        webhook_secret=creds.webhook_secret,
        max_body_bytes=http.max_body_bytes,
        control=view,
    )
    return ApiServer(app, http)
