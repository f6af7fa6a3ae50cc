"""Opening the store: URL and password rules, migrations, SchemaTooNew, settings, and SQLite crash safety."""

from __future__ import annotations

import hashlib
import signal
import sqlite3
import stat
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.errors import ConfigError
from flink_gitops.record.store import (
    ZERO_HASH,
    InsecureStoreUrl,
    SchemaTooNew,
    Store,
    StoreUnavailable,
    open_store,
)
from flink_gitops.record.store.engine import head_revision
from flink_gitops.secrets import Secret, SecretRef
from flink_gitops.settings import Settings, StoreConfig
from tests.fixtures.postgres import PostgresServer, StoreTarget
from tests.record.audit_helpers import readable

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "hunter2-very-secret"  # a test value that must never be printed


@pytest.mark.parametrize(
    "url",
    [
        f"postgresql+psycopg://flink:{PASSWORD}@db.example:5432/state",
        f"postgresql://flink:{PASSWORD}@db.example/state",
        f"sqlite://user:{PASSWORD}@/x.db",
        f"postgresql+psycopg://flink@db.example/state?password={PASSWORD}",
    ],
)
def test_url_with_password_is_refused_without_printing_it(url: str) -> None:
    with pytest.raises(InsecureStoreUrl) as info:
        Store.from_url(url)
    assert PASSWORD not in str(info.value)
    assert "password" in str(info.value)
    assert info.value.__cause__ is None


@pytest.mark.parametrize("url", [f"not a url {PASSWORD}", f"postgresql://u@host:{PASSWORD}/db"])
def test_garbage_url_error_does_not_echo_it(url: str) -> None:
    with pytest.raises(InsecureStoreUrl) as info:
        Store.from_url(url)
    assert PASSWORD not in str(info.value)
    assert info.value.__cause__ is None


@pytest.mark.parametrize(
    ("url", "password", "match"),
    [
        ("mysql://u@h/db", None, "not supported"),
        ("sqlite://", None, "in-memory"),
        ("sqlite:///:memory:", None, "in-memory"),
        ("sqlite:////tmp/x.db", Secret(b"pw"), "SQLite"),
    ],
)
def test_unusable_urls_are_refused(url: str, password: Secret | None, match: str) -> None:
    with pytest.raises(InsecureStoreUrl, match=match):
        Store.from_url(url, password=password)


def test_non_utf8_password_is_refused_without_quoting_it() -> None:
    # UnicodeDecodeError would print the offending byte and carry the whole value as its cause.
    with pytest.raises(ConfigError, match="not valid UTF-8") as info:
        Store.from_url("postgresql+psycopg://flink@db.example/state", password=Secret(b"pw\xfe\x9c-secret"))
    assert "0xfe" not in str(info.value)
    assert info.value.__cause__ is None
    assert info.value.__context__ is None


@pytest.mark.postgres
def test_wrong_postgres_password_is_unavailable_and_not_printed(postgres_database: StoreTarget) -> None:
    with pytest.raises(StoreUnavailable) as info:
        Store.from_url(postgres_database.url, password=Secret(PASSWORD.encode()))
    assert "password authentication failed" in str(info.value)
    assert PASSWORD not in str(info.value)


def test_open_migrates_to_head_and_schema_matches_tables(store: Store) -> None:
    assert store.schema_revision() == head_revision()
    assert store.schema_differences() == []
    assert PASSWORD not in repr(store)


def test_reopening_keeps_data_and_revision(store_target: StoreTarget) -> None:
    with store_target.open() as first:
        lease = first.leases.acquire("a", ttl=3600)
        assert lease is not None
    with store_target.open() as second:
        assert second.schema_revision() == head_revision()
        assert second.leases.current() is not None


def test_concurrent_first_opens_migrate_once(store_target: StoreTarget) -> None:
    errors: list[BaseException] = []
    opened: list[Store] = []
    barrier = threading.Barrier(3)

    def open_one() -> None:
        barrier.wait()
        try:
            opened.append(store_target.open())
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=open_one) for _ in range(3)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert errors == []
        assert all(s.schema_revision() == head_revision() for s in opened)
        assert opened[0].audit_head() == (0, ZERO_HASH)  # the head row was inserted exactly once
    finally:
        for s in opened:
            s.close()


def _stamp(target: StoreTarget, revision: str, server: PostgresServer | None) -> None:
    if target.backend == "sqlite":
        conn = sqlite3.connect(target.url.removeprefix("sqlite:///"))
        with conn:
            conn.execute("UPDATE alembic_version SET version_num = ?", (revision,))
        conn.close()
    else:
        assert server is not None
        with server.admin_connect(target.dbname or "") as pg:
            pg.execute("UPDATE alembic_version SET version_num = %s", (revision,))


def test_newer_schema_is_refused(store_target: StoreTarget, request: pytest.FixtureRequest) -> None:
    store_target.open().close()
    server = request.getfixturevalue("postgres_server") if store_target.backend == "postgresql" else None
    _stamp(store_target, "9f9f9f9f9f9f", server)
    with pytest.raises(SchemaTooNew) as info:
        store_target.open()
    assert str(info.value) == (
        f"database schema revision 9f9f9f9f9f9f is newer than this flink-gitops knows ({head_revision()}); "
        "upgrade flink-gitops"
    )


def test_open_store_default_is_private_sqlite_under_state_dir(tmp_path: Path) -> None:
    state = tmp_path / "state"
    with open_store(Settings(state_dir=state), clock=FakeClock()) as store:
        assert store.backend == "sqlite"
        assert store.leases.acquire("me", ttl=1) is not None
        assert sorted(p.name for p in state.iterdir()) == ["state.db", "state.db-shm", "state.db-wal"]
        for side in state.iterdir():
            assert stat.S_IMODE(side.stat().st_mode) == 0o600, side.name
    db = state / "state.db"
    assert db.exists()
    assert stat.S_IMODE(db.stat().st_mode) == 0o600
    for side in state.glob("state.db-*"):  # -wal / -shm, if SQLite kept them
        assert stat.S_IMODE(side.stat().st_mode) == 0o600, side.name
    assert stat.S_IMODE(state.stat().st_mode) == 0o700


@pytest.mark.postgres
def test_open_store_postgres_reads_password_from_file(postgres_database: StoreTarget, tmp_path: Path) -> None:
    assert postgres_database.password_file is not None
    settings = Settings(
        state_dir=tmp_path,
        store=StoreConfig(
            url=postgres_database.url, password=SecretRef(file=postgres_database.password_file)
        ),
    )
    with open_store(settings) as store:
        assert store.backend == "postgresql"
        assert store.schema_revision() == head_revision()
    assert not (tmp_path / "state.db").exists()


@pytest.mark.postgres
def test_open_store_postgres_reads_systemd_credential(
    postgres_database: StoreTarget, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    assert postgres_database.password_file is not None
    creds = tmp_path / "creds"
    creds.mkdir()
    (creds / "store-password").write_bytes(postgres_database.password_file.read_bytes())
    monkeypatch.setenv("CREDENTIALS_DIRECTORY", str(creds))
    settings = Settings(
        state_dir=tmp_path,
        store=StoreConfig(url=postgres_database.url, password=SecretRef(credential="store-password")),
    )
    with open_store(settings) as store:
        assert store.leases.current() is None


CRASH_CHILD = """
import hashlib, sys
from datetime import UTC, datetime
from flink_gitops.record.store import AuditRow, JobUpdate, OperationState, Store

store = Store.from_url(sys.argv[1])
lease = store.leases.acquire("crasher", ttl=3600)
store.jobs.create("job", "default", epoch=lease.epoch)
def build(seq, prev):
    ct = b"x" * 200 + seq.to_bytes(8, "big")
    digest = hashlib.sha256(prev + ct).digest()
    nonce = seq.to_bytes(12, "big")
    return AuditRow(seq, datetime.now(UTC), 1, None, b"a" * 32, None, nonce, ct, prev, digest)
i = 0
while True:
    name = "job" if i % 2 else None  # a job has one open operation at a time
    op = store.operations.begin(name, "deploy", {"i": i}, epoch=lease.epoch, op_id=f"op-{i}")
    if i % 2:
        store.operations.advance(op.op_id, "run-sent", {"job_id": str(i)}, epoch=lease.epoch)
        store.operations.finish(
            op.op_id, OperationState.SUCCEEDED, {"i": i}, epoch=lease.epoch,
            job=JobUpdate(flink_job_id=str(i)),
        )
    row = store.append_audit(build)
    print(f"{i} {row.seq}", flush=True)
    i += 1
"""


def test_sqlite_survives_sigkill_mid_burst(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    child = subprocess.Popen(
        [sys.executable, "-c", CRASH_CHILD, f"sqlite:///{db}"],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    committed: list[tuple[int, int]] = []
    try:
        assert child.stdout is not None
        for line in child.stdout:
            i, seq = map(int, line.split())
            committed.append((i, seq))
            if len(committed) >= 60:
                break
    finally:
        child.send_signal(signal.SIGKILL)  # mid-write: the child never stops on its own
        child.communicate()
    assert child.returncode == -signal.SIGKILL, "the child died on its own"
    assert len(committed) >= 60

    conn = sqlite3.connect(db)
    assert conn.execute("PRAGMA integrity_check").fetchall() == [("ok",)]
    conn.close()
    with Store.from_url(f"sqlite:///{db}") as store:
        rows = readable(store.audit_rows())
        # Everything reported committed is there; at most the one write in flight may also be.
        assert len(rows) in {committed[-1][1], committed[-1][1] + 1}
        prev = ZERO_HASH
        for r in rows:
            assert r.prev_hash == prev
            assert r.hash == hashlib.sha256(prev + r.ciphertext).digest()
            prev = r.hash
        assert store.audit_head() == (len(rows), prev)
        for i, _ in committed:
            op = store.operations.get(f"op-{i}")
            assert op is not None
            assert op.intent == {"i": i}
            if i % 2:
                assert op.detail == {"job_id": str(i), "i": i}
                assert [s.step for s in op.steps] == ["begin", "run-sent", "succeeded"]
        job = store.jobs.get("job")
        assert job is not None
        finished = [i for i, _ in committed if i % 2]
        assert job.flink_job_id in {str(finished[-1]), str(finished[-1] + 2)}  # the outcome and the job agree
        open_ids = {o.op_id for o in store.operations.open()}
        assert {f"op-{i}" for i, _ in committed if i % 2 == 0} <= open_ids


def test_the_fast_open_path_knows_the_newest_migration() -> None:
    from flink_gitops.record.store.engine import HEAD_REVISION

    assert head_revision() == HEAD_REVISION
