"""The audit-row storage contract, on SQLite and a real PostgreSQL.

The audit engineer builds on these guarantees: dense seq, chained prev_hash,
one serialised appender across threads and processes, nothing written when
``build`` raises, filters, the head row, and insert-only keys.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import subprocess
import sys
import threading
from collections.abc import Callable
from dataclasses import fields, replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.record.store import (
    ZERO_HASH,
    AuditKeyRow,
    AuditRow,
    AuditRowRejected,
    DuplicateAuditKey,
    Store,
    StoreWriteFailed,
)
from tests.fixtures.postgres import StoreTarget
from tests.record.audit_helpers import readable

T0 = datetime(2026, 1, 1, tzinfo=UTC)
JOB_A, JOB_B = b"A" * 32, b"B" * 32
DEPLOY, STOP = b"d" * 32, b"s" * 32
OK, FAIL = b"o" * 32, b"f" * 32


def make_row(
    seq: int,
    prev: bytes,
    *,
    at: datetime = T0,
    job: bytes | None = JOB_A,
    action: bytes = DEPLOY,
    outcome: bytes | None = OK,
    body: bytes = b"payload",
) -> AuditRow:
    """A stand-in for the audit trail's builder: hash = sha256(seq || prev || ciphertext)."""
    ciphertext = body + seq.to_bytes(8, "big")
    digest = hashlib.sha256(seq.to_bytes(8, "big") + prev + ciphertext).digest()
    return AuditRow(
        seq=seq,
        recorded_at=at,
        key_version=1,
        job_tag=job,
        action_tag=action,
        outcome_tag=outcome,
        nonce=seq.to_bytes(12, "big"),
        ciphertext=ciphertext,
        prev_hash=prev,
        hash=digest,
    )


def assert_chain(rows: list[AuditRow]) -> None:
    assert [r.seq for r in rows] == list(range(1, len(rows) + 1))
    prev = ZERO_HASH
    for r in rows:
        assert r.prev_hash == prev
        assert r.hash == hashlib.sha256(r.seq.to_bytes(8, "big") + prev + r.ciphertext).digest()
        prev = r.hash


def test_empty_store_has_zero_head(store: Store) -> None:
    assert store.audit_head() == (0, ZERO_HASH)
    assert store.audit_count() == 0
    assert list(store.audit_rows()) == []
    assert store.audit_keys() == []


def test_append_hands_next_seq_and_prev_hash_and_keeps_order(store: Store) -> None:
    seen: list[tuple[int, bytes]] = []

    def build(seq: int, prev: bytes) -> AuditRow:
        seen.append((seq, prev))
        return make_row(seq, prev, at=T0 + timedelta(seconds=seq))

    appended = [store.append_audit(build) for _ in range(5)]
    rows = readable(store.audit_rows())
    assert rows == appended
    assert [s for s, _ in seen] == [1, 2, 3, 4, 5]
    assert seen[0][1] == ZERO_HASH
    assert_chain(rows)
    assert store.audit_head() == (5, rows[-1].hash)
    assert store.audit_count() == 5
    assert rows[2].recorded_at == T0 + timedelta(seconds=3)
    assert rows[2].recorded_at.tzinfo is not None


def test_recorded_at_in_other_zone_comes_back_as_the_same_instant_in_utc(store: Store) -> None:
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    store.append_audit(lambda seq, prev: make_row(seq, prev, at=at))
    (row,) = readable(store.audit_rows())
    assert row.recorded_at == at
    assert row.recorded_at.utcoffset() == timedelta(0)


def test_build_that_raises_writes_nothing_and_propagates_unchanged(store: Store) -> None:
    store.append_audit(lambda seq, prev: make_row(seq, prev))
    head = store.audit_head()
    boom = RuntimeError("cannot encrypt")

    def build(seq: int, prev: bytes) -> AuditRow:
        raise boom

    with pytest.raises(RuntimeError) as info:
        store.append_audit(build)
    assert info.value is boom
    assert store.audit_head() == head
    assert store.audit_count() == 1
    # The next append still gets seq 2: nothing was consumed.
    assert store.append_audit(lambda seq, prev: make_row(seq, prev)).seq == 2


@pytest.mark.parametrize(
    "tamper",
    [
        lambda r: replace(r, seq=r.seq + 1),
        lambda r: replace(r, prev_hash=b"x" * 32),
        lambda r: replace(r, hash=b"short"),
        lambda r: replace(r, nonce=b"n" * 16),
        lambda r: replace(r, action_tag=b"a" * 31),
        lambda r: replace(r, recorded_at=datetime(2026, 1, 1)),  # naive
    ],
    ids=["seq", "prev_hash", "hash-size", "nonce-size", "tag-size", "naive-time"],
)
def test_row_that_does_not_fit_is_rejected_and_not_written(
    store: Store, tamper: Callable[[AuditRow], AuditRow]
) -> None:
    store.append_audit(lambda seq, prev: make_row(seq, prev))
    head = store.audit_head()
    with pytest.raises(AuditRowRejected):
        store.append_audit(lambda seq, prev: tamper(make_row(seq, prev)))
    assert store.audit_head() == head
    assert store.audit_count() == 1


def _append_mix(store: Store, n: int) -> list[AuditRow]:
    out = []
    for i in range(n):
        job = [JOB_A, JOB_B, None][i % 3]
        action = DEPLOY if i % 2 else STOP
        outcome = [OK, FAIL, None][(i // 2) % 3]
        at = T0 + timedelta(minutes=i)

        def build(
            seq: int,
            prev: bytes,
            job: bytes | None = job,
            action: bytes = action,
            outcome: bytes | None = outcome,
        ) -> AuditRow:
            return make_row(seq, prev, at=at, job=job, action=action, outcome=outcome)

        out.append(store.append_audit(build))
    return out


def test_filters_select_exactly_the_matching_rows(store: Store) -> None:
    rows = _append_mix(store, 30)
    assert list(store.audit_rows(job_tag=JOB_B)) == [r for r in rows if r.job_tag == JOB_B]
    assert list(store.audit_rows(action_tag=STOP, outcome_tag=FAIL)) == [
        r for r in rows if r.action_tag == STOP and r.outcome_tag == FAIL
    ]
    since, until = T0 + timedelta(minutes=5), T0 + timedelta(minutes=12)
    assert [r.seq for r in store.audit_rows(since=since, until=until)] == list(range(6, 13))
    assert [r.seq for r in store.audit_rows(after_seq=25)] == [26, 27, 28, 29, 30]
    assert [r.seq for r in store.audit_rows(limit=3)] == [1, 2, 3]
    assert list(store.audit_rows(limit=0)) == []
    assert [r.seq for r in store.audit_rows(job_tag=JOB_A, after_seq=10, limit=2, batch_size=1)] == [13, 16]


def test_filter_results_match_a_plain_python_filter(store: Store) -> None:
    rows = _append_mix(store, 24)
    tags = st.sampled_from([None, JOB_A, JOB_B])
    minutes = st.one_of(st.none(), st.integers(-1, 26).map(lambda m: T0 + timedelta(minutes=m)))

    @given(
        job=tags,
        action=st.sampled_from([None, DEPLOY, STOP]),
        outcome=st.sampled_from([None, OK, FAIL]),
        since=minutes,
        until=minutes,
        after=st.integers(0, 25),
        limit=st.one_of(st.none(), st.integers(0, 25)),
        batch=st.integers(1, 7),
    )
    def check(
        job: bytes | None,
        action: bytes | None,
        outcome: bytes | None,
        since: datetime | None,
        until: datetime | None,
        after: int,
        limit: int | None,
        batch: int,
    ) -> None:
        expected = [
            r
            for r in rows
            if r.seq > after
            and (job is None or r.job_tag == job)
            and (action is None or r.action_tag == action)
            and (outcome is None or r.outcome_tag == outcome)
            and (since is None or r.recorded_at >= since)
            and (until is None or r.recorded_at < until)
        ][:limit]
        got = store.audit_rows(
            job_tag=job,
            action_tag=action,
            outcome_tag=outcome,
            since=since,
            until=until,
            after_seq=after,
            limit=limit,
            batch_size=batch,
        )
        assert list(got) == expected

    check()


def test_keys_are_insert_only_and_ascending(store: Store) -> None:
    k2 = AuditKeyRow(2, T0 + timedelta(days=1), b"wrapped-2", {"kdf": "scrypt", "salt": "00ff", "n": 16384})
    k1 = AuditKeyRow(1, T0, b"wrapped-1", {"kdf": "none"})
    store.put_audit_key(k2)
    store.put_audit_key(k1)
    assert store.audit_keys() == [k1, k2]
    with pytest.raises(DuplicateAuditKey):
        store.put_audit_key(AuditKeyRow(2, T0, b"other", {}))
    assert store.audit_keys() == [k1, k2]


def test_concurrent_threads_never_fork_the_chain(store_target: StoreTarget) -> None:
    stores = [store_target.open(), store_target.open()]  # two engines, like two components
    errors: list[BaseException] = []

    def worker(s: Store) -> None:
        try:
            for _ in range(15):
                s.append_audit(lambda seq, prev: make_row(seq, prev))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=worker, args=(stores[i % 2],)) for i in range(4)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    try:
        assert errors == []
        rows = readable(stores[0].audit_rows())
        assert len(rows) == 60
        assert_chain(rows)
        assert stores[1].audit_head() == (60, rows[-1].hash)
    finally:
        for s in stores:
            s.close()


CHILD = """
import hashlib, os, sys
from datetime import UTC, datetime
from pathlib import Path
from flink_gitops.record.store import AuditRow, Store
from flink_gitops.secrets import SecretRef, read_secret

pw = os.environ.get("FG_PW_FILE")
store = Store.from_url(os.environ["FG_URL"], password=read_secret(SecretRef(file=Path(pw))) if pw else None)
def build(seq, prev):
    ct = b"child" + seq.to_bytes(8, "big")
    digest = hashlib.sha256(seq.to_bytes(8, "big") + prev + ct).digest()
    nonce = seq.to_bytes(12, "big")
    return AuditRow(seq, datetime.now(UTC), 1, None, b"c" * 32, None, nonce, ct, prev, digest)
print("ready", flush=True)
sys.stdin.readline()  # the parent's start signal: both children append at the same moment
for _ in range(int(sys.argv[1])):
    store.append_audit(build)
store.close()
"""


def test_concurrent_processes_never_fork_the_chain(store_target: StoreTarget) -> None:
    store_target.open().close()  # migrate once first; the children then race only on appends
    env = {**os.environ, "FG_URL": store_target.url}
    if store_target.password_file is not None:
        env["FG_PW_FILE"] = str(store_target.password_file)
    root = Path(__file__).resolve().parents[2]
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, "40"],
            env=env,
            cwd=root,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    for child in children:
        assert child.stdout is not None
        assert child.stdout.readline().strip() == "ready", child.communicate()[1]
    for child in children:
        assert child.stdin is not None
        child.stdin.write("go\n")
        child.stdin.flush()
    for child in children:
        _, err = child.communicate(timeout=120)
        assert child.returncode == 0, err
    with store_target.open() as store:
        rows = readable(store.audit_rows())
        assert len(rows) == 80
        assert_chain(rows)
        assert store.audit_head() == (80, rows[-1].hash)


def test_sqlite_tables_have_the_contract_columns(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    Store.from_url(f"sqlite:///{db}").close()
    with sqlite3.connect(db) as conn:
        cols = [r[1] for r in conn.execute("PRAGMA table_info(audit_records)")]
        head_cols = [r[1] for r in conn.execute("PRAGMA table_info(audit_head)")]
        key_cols = [r[1] for r in conn.execute("PRAGMA table_info(audit_keys)")]
        journal = conn.execute("PRAGMA journal_mode").fetchone()[0]
    conn.close()
    assert cols == [f.name for f in fields(AuditRow)]
    assert head_cols == ["id", "seq", "hash"]
    assert key_cols == [f.name for f in fields(AuditKeyRow)]
    assert journal == "wal"


def test_tampered_row_is_returned_as_stored(tmp_path: Path) -> None:
    """The store does not verify hashes (the audit trail does); a tampered row comes back tampered."""
    db = tmp_path / "state.db"
    with Store.from_url(f"sqlite:///{db}") as store:
        store.append_audit(lambda seq, prev: make_row(seq, prev))
        conn = sqlite3.connect(db)
        with conn:
            conn.execute("UPDATE audit_records SET ciphertext = ? WHERE seq = 1", (b"evil",))
        conn.close()
        (row,) = readable(store.audit_rows())
        assert row.ciphertext == b"evil"
        with pytest.raises(AssertionError):
            assert_chain([row])


def test_failed_insert_is_store_write_failed_and_moves_nothing(
    store_target: StoreTarget, request: pytest.FixtureRequest
) -> None:
    with store_target.open() as store:
        store.append_audit(lambda seq, prev: make_row(seq, prev))
        head = store.audit_head()
        # Make the database refuse the next insert, behind the store's back.
        if store_target.backend == "sqlite":
            conn = sqlite3.connect(store_target.url.removeprefix("sqlite:///"))
            with conn:
                conn.execute(
                    "CREATE TRIGGER refuse BEFORE INSERT ON audit_records "
                    "BEGIN SELECT RAISE(ABORT, 'no'); END"
                )
            conn.close()
        else:
            server = request.getfixturevalue("postgres_server")
            with server.admin_connect(store_target.dbname) as pg:
                pg.execute("ALTER TABLE audit_records ADD CONSTRAINT refuse CHECK (seq < 2) NOT VALID")
        with pytest.raises(StoreWriteFailed) as info:
            store.append_audit(lambda seq, prev: make_row(seq, prev))
        assert info.value.retryable
        assert store.audit_head() == head
        assert store.audit_count() == 1


def test_sqlite_lock_held_elsewhere_fails_the_append_before_build(tmp_path: Path) -> None:
    db = tmp_path / "state.db"
    with Store.from_url(f"sqlite:///{db}", busy_timeout_s=0.05) as store:
        blocker = sqlite3.connect(db, isolation_level=None)
        blocker.execute("BEGIN IMMEDIATE")
        built: list[int] = []

        def build(seq: int, prev: bytes) -> AuditRow:
            built.append(seq)
            return make_row(seq, prev)

        try:
            with pytest.raises(StoreWriteFailed, match="locked"):
                store.append_audit(build)
        finally:
            blocker.execute("ROLLBACK")
            blocker.close()
        assert built == []
        assert store.append_audit(build).seq == 1


def test_sqlite_columns_hold_the_documented_formats(tmp_path: Path) -> None:
    """recorded_at is UTC text ``YYYY-MM-DD HH:MM:SS.ffffff``, bytes are BLOBs, a missing tag is NULL."""
    db = tmp_path / "state.db"
    at = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=timezone(timedelta(hours=5)))
    with Store.from_url(f"sqlite:///{db}") as store:
        appended = store.append_audit(lambda seq, prev: make_row(seq, prev, at=at, outcome=None))
    conn = sqlite3.connect(db)
    try:
        stored = conn.execute(
            "SELECT typeof(seq), recorded_at, typeof(key_version), typeof(job_tag), typeof(action_tag), "
            "typeof(outcome_tag), typeof(nonce), typeof(ciphertext), typeof(prev_hash), hash "
            "FROM audit_records"
        ).fetchall()
        head = conn.execute("SELECT typeof(seq), seq, hash FROM audit_head").fetchall()
    finally:
        conn.close()
    assert stored == [
        (
            "integer",
            "2026-03-01 07:30:15.123456",
            "integer",
            "blob",
            "blob",
            "null",
            "blob",
            "blob",
            "blob",
            appended.hash,
        )
    ]
    assert head == [("integer", 1, appended.hash)]


@pytest.mark.parametrize("failure", ["build-raises", "row-rejected"])
def test_failed_append_frees_the_appenders_lock_at_once(
    store_target: StoreTarget, request: pytest.FixtureRequest, failure: str
) -> None:
    def build(seq: int, prev: bytes) -> AuditRow:
        if failure == "build-raises":
            raise RuntimeError("cannot encrypt")
        return make_row(seq + 1, prev)

    with store_target.open() as store:
        store.append_audit(make_row)
        with pytest.raises((RuntimeError, AuditRowRejected)):
            store.append_audit(build)
        # Another connection gets the lock without waiting: the failed append rolled back.
        if store_target.backend == "sqlite":
            other = sqlite3.connect(
                store_target.url.removeprefix("sqlite:///"), timeout=0, isolation_level=None
            )
            try:
                other.execute("BEGIN IMMEDIATE")
                other.execute("ROLLBACK")
            finally:
                other.close()
        else:
            server = request.getfixturevalue("postgres_server")
            with server.admin_connect(store_target.dbname) as pg:
                assert pg.execute("SELECT seq FROM audit_head WHERE id = 1 FOR UPDATE NOWAIT").fetchone() == (
                    1,
                )
        assert store.append_audit(make_row).seq == 2
        assert store.audit_count() == 2
