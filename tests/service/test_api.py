"""The HTTP API on a real uvicorn server on loopback: the auth matrix over every route, webhook
signatures in each form, hostile inputs (never a 500), and readiness.

The read model is a fake at our own boundary (``FakeReadModel``: records as the store returns
them); the trigger is a recorder. Everything between the socket and those is the real thing.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest

from flink_gitops.errors import ConfigError
from flink_gitops.execute.pauses import PauseOutcome
from flink_gitops.lifecycle import JobLifecycle
from flink_gitops.record.audit.event import AuditEvent, AuditRecord
from flink_gitops.record.store.records import (
    JobRecord,
    PauseRecord,
    SavepointRecord,
    SnapshotKind,
    SnapshotOrigin,
    SpecRecord,
)
from flink_gitops.secrets import Secret, SecretRef
from flink_gitops.service.api import (
    ApiServer,
    Credentials,
    Readiness,
    TokenBook,
    bind,
    create_app,
    hash_token,
)
from flink_gitops.settings import HttpConfig
from tests.fixtures import secretscan

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)
VIEWER = "viewer-token-0123456789"
OPERATOR = "operator-token-9876543210"
SECRET = b"webhook-secret-abc"
LIMIT = 64 * 1024
for _kind, _value in (("the API viewer token", VIEWER), ("the API operator token", OPERATOR)):
    secretscan.register(_kind, _value)


def job_record(name: str) -> JobRecord:
    spec = SpecRecord(spec={}, hash="a" * 64, commit="c" * 40)
    return JobRecord(
        name=name,
        uid="0" * 32,
        cluster="default",
        flink_job_id="f" * 32,
        state=JobLifecycle.STABLE,
        last_reconciled=spec,
        last_stable=spec,
        failed_hash=None,
        savepoint="file:///sp/1",
        file=f"jobs/{name}.yaml",
        generation=1,
        attempts=0,
        next_attempt_at=None,
        last_error=None,
        created_at=NOW,
        updated_at=NOW,
        drift_kind="rescaled",
        drift_since=NOW,
        drift_detail="parallelism 2, spec says 1",
    )


@dataclass
class FakeReadModel:
    """Our boundary: what the daemon's view would answer."""

    names: tuple[str, ...] = ("orders", "payments")
    ready: bool = True

    def jobs(self) -> list[JobRecord]:
        return [job_record(n) for n in self.names]

    def job(self, name: str) -> JobRecord | None:
        return job_record(name) if name in self.names else None

    def savepoints(self, name: str, limit: int) -> list[SavepointRecord]:
        return [
            SavepointRecord(
                id=1,
                name=name,
                uid="0" * 32,
                cluster="default",
                path="file:///sp/1",
                kind=SnapshotKind.SAVEPOINT,
                origin=SnapshotOrigin.UPGRADE,
                flink_job_id="f" * 32,
                created_at=NOW,
                disposed=False,
                disposed_at=None,
            )
        ][:limit]

    def audit(self, *, job: str | None, action: str | None, after_seq: int, limit: int) -> list[AuditRecord]:
        records = [
            AuditRecord(seq, NOW, 1, AuditEvent(action="job.deploy", actor="daemon:x", job=n))
            for seq, n in enumerate(self.names, start=1)
        ]
        return [
            r
            for r in records
            if r.seq > after_seq and (job is None or r.event.job == job) and action in (None, r.event.action)
        ][:limit]

    def metrics(self) -> bytes:
        return b"# HELP flink_jobs_total Jobs flink-gitops manages.\nflink_jobs_total 2.0\n"

    def readiness(self) -> Readiness:
        if self.ready:
            return Readiness(True, "ok", NOW, 1.5, 3)
        return Readiness(False, "no cycle has completed yet", None, None, 0)


@dataclass
class FakeControl:
    """Our boundary for the mutating routes (``DaemonView`` is tested on a real store elsewhere)."""

    refused: str | None = None
    paused: dict[str, PauseRecord] = field(default_factory=dict)
    queued: list[str] = field(default_factory=list)

    def refusal(self, job: str | None) -> str | None:
        return self.refused

    def pause(self, job: str | None, reason: str, actor: str) -> PauseOutcome:
        scope = job or "*"
        if scope in self.paused:
            return PauseOutcome(self.paused[scope], changed=False)
        self.paused[scope] = PauseRecord(scope, reason[:1000], actor, NOW)
        return PauseOutcome(self.paused[scope], changed=True, cut=len(reason) > 1000)

    def resume(self, job: str | None, actor: str) -> PauseOutcome:
        removed = self.paused.pop(job or "*", None)
        return PauseOutcome(removed, changed=removed is not None)

    def queue_savepoint(self, job: str) -> bool:
        if job in self.queued:
            return False
        self.queued.append(job)
        return True


@dataclass
class Api:
    url: str
    read: FakeReadModel
    triggers: list[str] = field(default_factory=list)
    control: FakeControl = field(default_factory=FakeControl)

    def client(self) -> httpx.Client:
        return secretscan.scanning_client(base_url=self.url, timeout=10)


@pytest.fixture
def api() -> Iterator[Api]:
    read = FakeReadModel()
    book = TokenBook.parse(f"# tokens\nviewer:{hash_token(VIEWER)}\noperator:{hash_token(OPERATOR)}\n", "t")
    holder = Api("", read)
    app = create_app(
        read,
        holder.triggers.append,
        tokens=book,
        webhook_secret=Secret(SECRET),
        max_body_bytes=LIMIT,
        control=holder.control,
    )
    server = ApiServer(app, HttpConfig(port=0))
    holder.url = f"http://{server.host}:{server.port}"
    server.start()
    # the socket is bound and listening before start(): the first request is simply served
    yield holder
    server.stop()


# --- the auth matrix ------------------------------------------------------------------------------

#: every route that needs a token: (method, path, the role it needs)
PROTECTED = [
    ("GET", "/api/v1/jobs", "viewer"),
    ("GET", "/api/v1/jobs/orders", "viewer"),
    ("GET", "/api/v1/audit", "viewer"),
    ("GET", "/metrics", "viewer"),
    ("POST", "/api/v1/sync", "operator"),
    ("POST", "/api/v1/sync?job=orders", "operator"),
    ("POST", "/api/v1/jobs/orders/pause", "operator"),
    ("POST", "/api/v1/jobs/orders/resume", "operator"),
    ("POST", "/api/v1/pause", "operator"),
    ("POST", "/api/v1/resume", "operator"),
    ("POST", "/api/v1/jobs/orders/savepoint", "operator"),
]
#: what an allowed call answers when it is not the default (GET 200, POST 202 and one trigger).
ANSWERS = {
    "/api/v1/jobs/orders/pause": 200,
    "/api/v1/jobs/orders/resume": 200,
    "/api/v1/pause": 200,
    "/api/v1/resume": 200,
}
#: the routes that need no token (their own checks, or none).
PUBLIC = {"/healthz", "/readyz", "/openapi.json", "/webhooks/github", "/webhooks/gitlab"}
PUBLIC |= {"/webhooks/gitea", "/webhooks/generic"}
TOKENS = {"none": None, "wrong": "not-a-token", "viewer": VIEWER, "operator": OPERATOR}


@pytest.mark.parametrize(("method", "path", "needs"), PROTECTED)
@pytest.mark.parametrize("who", list(TOKENS))
def test_the_auth_matrix(api: Api, method: str, path: str, needs: str, who: str) -> None:
    token = TOKENS[who]
    headers = {} if token is None else {"Authorization": f"Bearer {token}"}
    with api.client() as c:
        r = c.request(method, path, headers=headers)
    if who in ("none", "wrong"):
        expected = 401
    elif who == "viewer" and needs == "operator":
        expected = 403
    else:
        expected = ANSWERS.get(path, 202 if method == "POST" else 200)
    assert r.status_code == expected, r.text
    if expected == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    assert (len(api.triggers) == 1) == (expected == 202)
    changed = bool(api.control.paused or api.control.queued)
    assert changed == (expected in (200, 202) and path.endswith(("/pause", "/savepoint")))
    for secret in (VIEWER, OPERATOR):
        assert secret not in r.text


def test_the_auth_matrix_covers_every_route_of_the_app(api: Api) -> None:
    """A new route must join PROTECTED (or PUBLIC): the matrix above then checks it."""
    with api.client() as c:
        schema = c.get("/openapi.json").json()
    routes = {(m.upper(), p) for p, ops in schema["paths"].items() for m in ops}
    covered = {(m, p.split("?")[0].replace("orders", "{name}")) for m, p, _ in PROTECTED}
    public = {(m, p) for m, p in routes if p in PUBLIC}
    assert routes - public == covered, routes - public ^ covered


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/openapi.json"])
def test_health_and_the_openapi_need_no_token(api: Api, path: str) -> None:
    with api.client() as c:
        assert c.get(path).status_code == 200


def test_other_auth_schemes_and_empty_bearer_are_401(api: Api) -> None:
    with api.client() as c:
        for value in (
            "Basic dXNlcjpwYXNz",
            "Bearer",
            f"Token {OPERATOR}",
            "Bearer \x7f",
            f"Bearer  x{VIEWER}",
        ):
            assert c.get("/api/v1/jobs", headers={"Authorization": value}).status_code == 401


def test_job_detail_and_list_read_the_store_records(api: Api) -> None:
    auth = {"Authorization": f"Bearer {VIEWER}"}
    with api.client() as c:
        jobs = c.get("/api/v1/jobs", headers=auth).json()
        detail = c.get("/api/v1/jobs/orders", headers=auth).json()
        missing = c.get("/api/v1/jobs/nope", headers=auth)
        audit = c.get("/api/v1/audit", params={"job": "payments"}, headers=auth).json()
    assert [j["name"] for j in jobs] == ["orders", "payments"]
    assert detail["spec_hash"] == "a" * 64
    assert detail["commit"] == "c" * 40
    assert detail["state"] == "stable"
    assert detail["drift"] == {
        "kind": "rescaled",
        "since": "2026-01-02T03:04:05.000000Z",
        "detail": "parallelism 2, spec says 1",
    }
    assert detail["savepoints"][0]["origin"] == "upgrade"
    assert missing.status_code == 404
    assert [(a["seq"], a["event"]["job"]) for a in audit] == [(2, "payments")]


def test_sync_of_an_unknown_job_is_404_and_triggers_nothing(api: Api) -> None:
    with api.client() as c:
        r = c.post("/api/v1/sync", params={"job": "ghost"}, headers={"Authorization": f"Bearer {OPERATOR}"})
    assert r.status_code == 404
    assert api.triggers == []


def test_readyz_is_503_before_the_first_cycle(api: Api) -> None:
    api.read.ready = False
    with api.client() as c:
        r = c.get("/readyz")
    assert r.status_code == 503
    assert r.json()["reason"] == "no cycle has completed yet"


# --- webhooks -------------------------------------------------------------------------------------

BODY = json.dumps({"ref": "refs/heads/main", "after": "c" * 40}).encode()


def sign(body: bytes, key: bytes = SECRET) -> str:
    return hmac.new(key, body, hashlib.sha256).hexdigest()


GOOD = {
    "github": {"X-Hub-Signature-256": f"sha256={sign(BODY)}"},
    "gitlab": {"X-Gitlab-Token": SECRET.decode()},
    "gitea": {"X-Gitea-Signature": sign(BODY)},
    "generic": {"X-Signature-256": sign(BODY)},
}
WRONG = {
    "github": {"X-Hub-Signature-256": f"sha256={sign(BODY, b'other')}"},
    "gitlab": {"X-Gitlab-Token": "other"},
    "gitea": {"X-Gitea-Signature": sign(BODY + b" ")},
    "generic": {"X-Signature-256": "sha256=" + "0" * 64},
}


@pytest.mark.parametrize("form", list(GOOD))
def test_a_signed_webhook_triggers_a_cycle(api: Api, form: str) -> None:
    with api.client() as c:
        r = c.post(f"/webhooks/{form}", content=BODY, headers=GOOD[form])
    assert r.status_code == 202, r.text
    assert api.triggers == [f"webhook {form}"]


@pytest.mark.parametrize("form", list(GOOD))
@pytest.mark.parametrize("kind", ["wrong", "missing", "other-body", "garbage"])
def test_a_wrong_or_missing_signature_is_401_and_triggers_nothing(api: Api, form: str, kind: str) -> None:
    body, headers = BODY, WRONG[form]
    if kind == "missing":
        headers = {}
    elif kind == "other-body":
        body, headers = BODY + b"x", GOOD[form]
    elif kind == "garbage":
        headers = {name: "\x01\x02 nonsense é" for name in GOOD[form]}
    with api.client() as c:
        r = c.post(f"/webhooks/{form}", content=body, headers=_latin1(headers))
    if form == "gitlab" and kind == "other-body":
        assert r.status_code == 202  # GitLab's token does not cover the body: that is its design
        return
    assert r.status_code == 401, r.text
    assert api.triggers == []
    assert SECRET.decode() not in r.text


def _latin1(headers: dict[str, str]) -> dict[bytes, bytes]:
    return {k.encode("ascii"): v.encode("utf-8") for k, v in headers.items()}


def test_without_a_webhook_secret_every_webhook_is_401() -> None:
    triggers: list[str] = []
    app = create_app(FakeReadModel(), triggers.append, tokens=TokenBook(), webhook_secret=None)
    server = ApiServer(app, HttpConfig(port=0))
    server.start()
    try:
        with secretscan.scanning_client(base_url=f"http://{server.host}:{server.port}") as c:
            for form, headers in GOOD.items():
                assert c.post(f"/webhooks/{form}", content=BODY, headers=headers).status_code == 401
            assert c.get("/api/v1/jobs", headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 401
    finally:
        server.stop()
    assert triggers == []


# --- hostile inputs -------------------------------------------------------------------------------

HOSTILE_NAMES = ["ORDERS", "a\x00b", "a\nb", "a b", "../etc", "-x", "x" * 300, "é", "a%2Fb", "%00"]


@pytest.mark.parametrize("name", HOSTILE_NAMES)
def test_hostile_job_names_are_refused_cleanly(api: Api, name: str) -> None:
    auth = {"Authorization": f"Bearer {OPERATOR}"}
    with api.client() as c:
        detail = c.get(f"/api/v1/jobs/{quote(name, safe='%')}", headers=auth)
        sync = c.post("/api/v1/sync", params={"job": name}, headers=auth)
        audit = c.get("/api/v1/audit", params={"job": name}, headers=auth)
        control = [
            c.post(f"/api/v1/jobs/{quote(name, safe='%')}/{verb}", headers=auth)
            for verb in ("pause", "resume", "savepoint")
        ]
    for r in (detail, sync, audit, *control):
        assert r.status_code in (404, 422), (r.status_code, r.text)
        assert "Traceback" not in r.text
    assert api.triggers == []
    assert api.control.paused == {}
    assert api.control.queued == []


def test_a_huge_body_is_413_before_it_is_read(api: Api) -> None:
    huge = b"x" * (LIMIT + 1)
    with api.client() as c:
        declared = c.post("/webhooks/github", content=huge, headers=GOOD["github"])

        def chunks() -> Iterator[bytes]:
            for _ in range(LIMIT // 1024 + 2):
                yield b"y" * 1024

        streamed = c.post("/webhooks/generic", content=chunks())
    assert declared.status_code == 413
    assert streamed.status_code == 413
    assert api.triggers == []


@pytest.mark.parametrize(
    "body", [b"{", b"\xff\xfe\x00", b"null", b"[]" * 1000, json.dumps({"a": "\x00" * 100}).encode()]
)
def test_garbage_bodies_never_give_a_server_error(api: Api, body: bytes) -> None:
    with api.client() as c:
        for path in ["/api/v1/sync", "/webhooks/github", "/webhooks/generic", "/api/v1/jobs"]:
            r = c.post(path, content=body, headers={"Authorization": f"Bearer {OPERATOR}"})
            assert r.status_code < 500, (path, r.status_code, r.text)


def test_audit_limits_are_enforced(api: Api) -> None:
    auth = {"Authorization": f"Bearer {VIEWER}"}
    with api.client() as c:
        assert c.get("/api/v1/audit", params={"limit": 100000}, headers=auth).status_code == 422
        assert c.get("/api/v1/audit", params={"limit": "x"}, headers=auth).status_code == 422
        assert c.get("/api/v1/audit", params={"after_seq": -1}, headers=auth).status_code == 422
        assert len(c.get("/api/v1/audit", params={"limit": 1}, headers=auth).json()) == 1


# --- the tokens file and the socket --------------------------------------------------------------


def test_a_bad_tokens_line_names_its_line_and_not_its_content(tmp_path: Path) -> None:
    path = tmp_path / "tokens"
    path.write_text(f"viewer:{hash_token(VIEWER)}\nadmin:supersecret\n", encoding="utf-8")
    with pytest.raises(ConfigError) as err:
        TokenBook.load(SecretRef(file=path))
    assert "line 2" in str(err.value)
    assert "supersecret" not in str(err.value)


def test_the_higher_role_wins_and_unknown_tokens_have_none() -> None:
    book = TokenBook.parse(f"viewer:{hash_token('t')}\noperator:{hash_token('t')}", "t")
    assert book.role_of("t") is not None
    assert book.role_of("t").name == "OPERATOR"  # type: ignore[union-attr]
    assert book.role_of("u") is None


def test_a_port_in_use_is_a_config_error() -> None:
    sock = bind("127.0.0.1", 0)
    try:
        with pytest.raises(ConfigError, match="cannot listen"):
            bind("127.0.0.1", sock.getsockname()[1])
    finally:
        sock.close()


def test_metrics_are_the_prometheus_text_format(api: Api) -> None:
    with api.client() as c:
        r = c.get("/metrics", headers={"Authorization": f"Bearer {VIEWER}"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    assert "flink_jobs_total 2.0" in r.text


# --- SIGHUP: the tokens and the webhook secret are re-read -------------------------------------------


def test_a_reload_replaces_tokens_and_secret_together_and_a_bad_file_leaves_both(tmp_path: Path) -> None:
    tokens, secret = tmp_path / "tokens", tmp_path / "webhook-secret"
    tokens.write_text(f"viewer:{hash_token(VIEWER)}\n")
    secret.write_bytes(SECRET)
    config = HttpConfig(port=0, tokens=SecretRef(file=tokens), webhook_secret=SecretRef(file=secret))
    creds = Credentials.load(config)
    triggers: list[str] = []
    app = create_app(
        FakeReadModel(), triggers.append, tokens=creds.tokens, webhook_secret=creds.webhook_secret
    )
    server = ApiServer(app, config)
    server.start()
    body = b'{"ref": "refs/heads/main"}'

    def signed(key: bytes) -> dict[str, str]:
        return {"X-Signature-256": "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()}

    try:
        with secretscan.scanning_client(base_url=f"http://{server.host}:{server.port}", timeout=10) as c:
            assert c.get("/api/v1/jobs", headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 200
            rotated = b"webhook-secret-rotated"
            tokens.write_text(f"viewer:{hash_token(OPERATOR)}\n")
            secret.write_bytes(rotated)
            server.reload(config)
            assert c.get("/api/v1/jobs", headers={"Authorization": f"Bearer {VIEWER}"}).status_code == 401
            assert c.get("/api/v1/jobs", headers={"Authorization": f"Bearer {OPERATOR}"}).status_code == 200
            assert c.post("/webhooks/generic", content=body, headers=signed(SECRET)).status_code == 401
            assert c.post("/webhooks/generic", content=body, headers=signed(rotated)).status_code == 202
            # a broken tokens file: refused, and neither the tokens nor the secret change
            tokens.write_text("admin:not-a-hash\n")
            secret.write_bytes(SECRET)
            with pytest.raises(ConfigError, match="line 1"):
                server.reload(config)
            assert c.get("/api/v1/jobs", headers={"Authorization": f"Bearer {OPERATOR}"}).status_code == 200
            assert c.post("/webhooks/generic", content=body, headers=signed(rotated)).status_code == 202
    finally:
        server.stop()
    assert triggers == ["webhook generic", "webhook generic"]
