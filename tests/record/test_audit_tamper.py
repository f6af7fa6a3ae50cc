"""The tamper corpus: each attack on the stored trail is detected at the seq where the chain breaks.

The attacker edits the database file directly (stdlib sqlite3; psycopg for the
PostgreSQL cases) or the head file, as someone with write access to them would.
Each case checks both verifications: without the key (chain + head file) and
with it (every record decrypted, every tag checked).
"""

from __future__ import annotations

import dataclasses
import json
import os
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import AuditTrail, Head, HeadFile, record_aad, row_hash, verify_trail
from flink_gitops.record.store import Store
from tests.fixtures.postgres import PostgresServer, StoreTarget
from tests.record.audit_helpers import SqliteTamper, event, open_trail, readable, verify_both

N = 10


@dataclass
class Case:
    store: Store
    trail: AuditTrail
    db: SqliteTamper
    head_path: Path

    def expect_break(self, seq: int, *, keyless_at: int | None = None) -> None:
        """Both checks fail: with the key at ``seq``, without it at ``keyless_at`` (default ``seq``)."""
        plain, keyed = verify_both(self.store, self.trail)
        assert not keyed.ok, keyed
        assert keyed.first_break == seq, keyed.problems
        assert not plain.ok, plain
        assert plain.first_break == (seq if keyless_at is None else keyless_at), plain.problems


@pytest.fixture
def case(tmp_path: Path, clock: FakeClock) -> Iterator[Case]:
    store = Store.from_url(f"sqlite:///{tmp_path / 'state.db'}", clock=clock)
    trail = open_trail(store, tmp_path, clock)
    for i in range(N):
        trail.record(event(i))
        clock.advance(1)
        if i == 5:
            trail.rotate()  # seq 7 is the rotation record; later records use key v2
    try:
        plain, keyed = verify_both(store, trail)
        assert plain.ok
        assert keyed.ok
        assert keyed.decrypted == N + 1
        yield Case(store, trail, SqliteTamper(tmp_path / "state.db"), tmp_path / "audit.head")
    finally:
        store.close()


LAST = N + 1  # N events plus the rotation record


def test_intact_trail_verifies(case: Case) -> None:
    plain, keyed = verify_both(case.store, case.trail)
    assert plain.records == keyed.records == LAST
    assert keyed.decrypted == LAST
    assert plain.head_file is not None
    assert plain.head_file.seq == LAST


def test_flipped_ciphertext_byte(case: Case) -> None:
    case.db.flip(5, "ciphertext", index=3)
    case.expect_break(5)


@pytest.mark.parametrize("column", ["nonce", "job_tag", "action_tag", "outcome_tag", "prev_hash", "hash"])
def test_flipped_byte_in_any_column(case: Case, column: str) -> None:
    case.db.flip(4, column, index=7)
    case.expect_break(4)


def test_edited_time_column(case: Case) -> None:
    value = str(case.db.get(4, "recorded_at"))
    case.db.set(4, "recorded_at", value.replace("00:00:03", "00:00:02"))
    case.expect_break(4)


def test_edited_key_version(case: Case) -> None:
    case.db.set(9, "key_version", 1)
    case.expect_break(9)


def test_deleted_middle_record(case: Case) -> None:
    case.db.delete(5)
    case.expect_break(5)


def test_two_swapped_records(case: Case) -> None:
    case.db.swap(3, 6)
    case.expect_break(3)


def test_truncated_tail_shows_in_the_head_file(case: Case) -> None:
    # A careful attacker also moves the store's own head row back.
    keep = case.db.row(8)
    case.db.delete(9, 10, 11)
    case.db.set_head(8, keep["hash"])
    case.expect_break(9)
    plain = verify_trail(case.store, HeadFile(case.head_path))
    assert "truncated" in str(plain.problems)


def test_truncated_tail_without_touching_the_head_row(case: Case) -> None:
    case.db.delete(11)
    case.expect_break(11)


def _reencrypt(case: Case, seq: int, *, rechain: bool) -> None:
    row = case.db.row(seq)
    key = case.trail.keys.get(int(row["key_version"]))
    aad = record_aad(seq, int(row["key_version"]), bytes(row["prev_hash"]))
    plaintext = key.aead.decrypt(bytes(row["nonce"]), bytes(row["ciphertext"]), aad)
    forged = plaintext.replace(b'"outcome":"succeeded"', b'"outcome":"failed"')
    nonce = os.urandom(12)
    case.db.set(seq, "nonce", nonce)
    case.db.set(seq, "ciphertext", AESGCM(AESGCM.generate_key(bit_length=256)).encrypt(nonce, forged, aad))
    if rechain:
        # Recompute this hash and every later prev_hash/hash, the head row too: only the key
        # (decryption) and the head file outside the database can tell.
        prev = bytes(row["prev_hash"])
        for s in range(seq, LAST + 1):
            [stored] = readable(case.store.audit_rows(after_seq=s - 1, limit=1))
            digest = row_hash(dataclasses.replace(stored, prev_hash=prev))
            case.db.set(s, "prev_hash", prev)
            case.db.set(s, "hash", digest)
            prev = digest
        case.db.set_head(LAST, prev)


def test_record_reencrypted_with_another_key(case: Case) -> None:
    _reencrypt(case, 4, rechain=False)
    case.expect_break(4)


def test_record_reencrypted_with_another_key_and_chain_rewritten(case: Case) -> None:
    _reencrypt(case, 4, rechain=True)
    # Without the key only the head file shows it (at the head); with the key, at the forged record.
    case.expect_break(4, keyless_at=LAST)


def test_edited_head_file(case: Case) -> None:
    data = json.loads(case.head_path.read_text())
    data["hash"] = "00" * 32
    case.head_path.write_text(json.dumps(data))
    case.expect_break(LAST)


def test_head_file_moved_back_more_than_one_record(case: Case) -> None:
    data = json.loads(case.head_path.read_text())
    data["seq"] = LAST - 3
    data["hash"] = bytes(case.db.row(LAST - 3)["hash"]).hex()
    case.head_path.write_text(json.dumps(data))
    case.expect_break(LAST - 2)


def test_deleted_head_file(case: Case) -> None:
    case.head_path.unlink()
    plain, keyed = verify_both(case.store, case.trail)
    assert not plain.ok
    assert not keyed.ok
    assert "missing" in str(plain.problems[0])


def test_replayed_old_record(case: Case) -> None:
    old = case.db.row(3)
    case.db.insert({**old, "seq": LAST + 1})
    case.db.set_head(LAST + 1, old["hash"])
    case.expect_break(LAST + 1)


def test_replayed_old_record_relinked(case: Case) -> None:
    # Replay with prev_hash and hash recomputed so the chain links, and the head file forged too:
    # the AAD (seq, prev_hash) still ties the ciphertext to its original place.
    old = case.db.row(3)
    last_hash = bytes(case.db.row(LAST)["hash"])
    [orig] = readable(case.store.audit_rows(after_seq=2, limit=1))
    digest = row_hash(dataclasses.replace(orig, seq=LAST + 1, prev_hash=last_hash))
    case.db.insert({**old, "seq": LAST + 1, "prev_hash": last_hash, "hash": digest})
    case.db.set_head(LAST + 1, digest)
    HeadFile(case.head_path).write(Head(LAST + 1, digest))
    plain, keyed = verify_both(case.store, case.trail)
    assert plain.ok  # a keyless check cannot see a perfect forgery of chain + head file ...
    assert not keyed.ok
    assert keyed.first_break == LAST + 1


# ----------------------------------------------------------------------------- PostgreSQL


@pytest.fixture
def pg_case(
    postgres_server: PostgresServer, postgres_database: StoreTarget, tmp_path: Path, clock: FakeClock
) -> Iterator[tuple[Store, AuditTrail, psycopg.Connection[tuple[object, ...]]]]:
    store = postgres_database.open(clock)
    trail = open_trail(store, tmp_path, clock)
    for i in range(6):
        trail.record(event(i))
    conn = postgres_server.admin_connect(postgres_database.dbname or "")
    try:
        yield store, trail, conn
    finally:
        conn.close()
        store.close()


@pytest.mark.postgres
def test_postgres_flipped_ciphertext_byte(
    pg_case: tuple[Store, AuditTrail, psycopg.Connection[tuple[object, ...]]],
) -> None:
    store, trail, conn = pg_case
    conn.execute(
        "UPDATE audit_records SET ciphertext = set_byte(ciphertext, 0, get_byte(ciphertext, 0) # 1) "
        "WHERE seq = 3"
    )
    plain, keyed = verify_both(store, trail)
    assert plain.first_break == keyed.first_break == 3


@pytest.mark.postgres
def test_postgres_deleted_middle_record(
    pg_case: tuple[Store, AuditTrail, psycopg.Connection[tuple[object, ...]]],
) -> None:
    store, trail, conn = pg_case
    conn.execute("DELETE FROM audit_records WHERE seq = 4")
    plain, keyed = verify_both(store, trail)
    assert plain.first_break == keyed.first_break == 4


@pytest.mark.postgres
def test_postgres_truncated_tail(
    pg_case: tuple[Store, AuditTrail, psycopg.Connection[tuple[object, ...]]],
) -> None:
    store, trail, conn = pg_case
    conn.execute("DELETE FROM audit_records WHERE seq >= 5")
    conn.execute("UPDATE audit_head SET seq = 4, hash = (SELECT hash FROM audit_records WHERE seq = 4)")
    plain, keyed = verify_both(store, trail)
    assert plain.first_break == keyed.first_break == 5
