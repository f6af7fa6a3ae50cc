"""The tamper corpus (issue 7): every attack on a stored trail, on SQLite and PostgreSQL, is detected.

Each case starts from a fresh trail of 11 records under two key versions (seq
1-6 under v1, the rotation record 7 and 8-11 under v2), tampers with it as
someone with write access to the database and the head file but without the
master key would (raw SQL, the head file rewritten, "rehashed" chains, forged
appends under keys of their own), then checks:

- with the master key (decrypt, signatures, head file): detected, first at ``keyed``;
- with only the exported public key file: detected first at ``public``, or,
  for ``public=None``, not detectable without decrypting (a corrupt wrapped
  data key: the public half stays intact);
- for the cases marked ``cli``, the same through the real ``flink-gitops
  audit verify`` in a subprocess: exit 1, the seq named, no traceback.

``CASES`` is also the table in the issue's report (see ``corpus_table``).
"""

from __future__ import annotations

import base64
import dataclasses
import json
import os
import sqlite3
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import psycopg
import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from psycopg.types.json import Json

from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import (
    AuditTrail,
    Head,
    HeadFile,
    TrustedKeys,
    VerifyReport,
    head_signing_message,
    public_key_file,
    record_signing_message,
    row_hash,
    verify_trail,
)
from flink_gitops.record.audit.sealing import seal
from flink_gitops.record.keys import DataKey, KeyRing, MasterKey, endorsement_message, public_key_bytes
from flink_gitops.record.store import AuditRow, Store
from tests.fixtures.postgres import PostgresServer, StoreTarget
from tests.record.audit_helpers import event, key_source, open_trail

LAST = 11
ROTATION = 7  # first record under key v2
OLD_HEAD_AT = 8  # a genuine head file saved when the trail ended here ("restored backup")


class RawDb:
    """The attacker's database access: plain SQL through the driver, no flink-gitops code."""

    def __init__(self, target: StoreTarget, server: PostgresServer | None) -> None:
        self.backend = target.backend
        self._sqlite: sqlite3.Connection | None = None
        self._pg: psycopg.Connection[tuple[Any, ...]] | None = None
        if server is None:
            self._sqlite = sqlite3.connect(target.url.removeprefix("sqlite:///"), isolation_level=None)
        else:
            self._pg = server.admin_connect(target.dbname or "")

    def close(self) -> None:
        if self._sqlite is not None:
            self._sqlite.close()
        if self._pg is not None:
            self._pg.close()

    def execute(self, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
        if self._sqlite is not None:
            return self._sqlite.execute(sql, params).fetchall()
        assert self._pg is not None
        cur = self._pg.execute(sql.replace("?", "%s"), params)
        return cur.fetchall() if cur.description else []

    def time(self, value: datetime) -> object:
        return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f") if self._sqlite else value

    def json(self, value: object) -> object:
        return json.dumps(value) if self._sqlite else Json(value)

    def get(self, seq: int, column: str) -> Any:
        return self.execute(f"SELECT {column} FROM audit_records WHERE seq = ?", (seq,))[0][0]

    def set(self, seq: int, column: str, value: object) -> None:
        self.execute(f"UPDATE audit_records SET {column} = ? WHERE seq = ?", (value, seq))

    def delete(self, *seqs: int) -> None:
        for s in seqs:
            self.execute("DELETE FROM audit_records WHERE seq = ?", (s,))

    def set_head(self, seq: int, digest: bytes) -> None:
        self.execute("UPDATE audit_head SET seq = ?, hash = ? WHERE id = 1", (seq, digest))

    def insert(self, row: AuditRow) -> None:
        values = dataclasses.asdict(row)
        values["recorded_at"] = self.time(row.recorded_at)
        cols = list(values)
        self.execute(
            f"INSERT INTO audit_records ({', '.join(cols)}) VALUES ({', '.join('?' for _ in cols)})",
            tuple(values[c] for c in cols),
        )

    def retype(self, table: str, column: str, using: str) -> None:
        """PostgreSQL only: an attacker with DDL rights turns a column into text."""
        self.execute(f"ALTER TABLE {table} ALTER COLUMN {column} TYPE text USING {using}")


@dataclass
class Trail:
    store: Store
    trail: AuditTrail
    db: RawDb
    head_path: Path
    old_head: bytes
    public_keys: Path
    config: Path
    attacker: Ed25519PrivateKey
    target: StoreTarget

    def rows(self) -> dict[int, AuditRow]:
        return {r.seq: r for r in self.store.audit_rows() if isinstance(r, AuditRow)}

    def forge_head_file(self, seq: int, digest: bytes) -> None:
        """The attacker rewrites the head file; they cannot sign it with our key, only with theirs."""
        forged = self.attacker.sign(head_signing_message(seq, 2, digest))
        HeadFile(self.head_path).write(Head(seq, digest, 2, forged))

    def rechain(self, start: int) -> None:
        """Recompute prev_hash/hash from ``start`` on, the head row and the head file (the attacker's
        best effort: they can also re-sign, but only with a key of their own)."""
        rows = self.rows()
        before = [s for s in rows if s < start]
        prev = rows[max(before)].hash if before else b"\0" * 32
        for seq in sorted(s for s in rows if s >= start):
            fixed = dataclasses.replace(rows[seq], prev_hash=prev)
            digest = row_hash(fixed)
            self.db.set(seq, "prev_hash", prev)
            self.db.set(seq, "hash", digest)
            sig = self.attacker.sign(record_signing_message(seq, fixed.key_version, digest))
            self.db.set(seq, "signature", sig)
            prev = digest
        last = max(rows)
        self.db.set_head(last, prev)
        self.forge_head_file(last, prev)

    def attacker_key(self, version: int) -> tuple[DataKey, MasterKey]:
        """A key of the attacker's own, and a key row for it (endorsed by themselves) at ``version``."""
        public = public_key_bytes(self.attacker.public_key())
        params = {
            "source": "file",
            "master_key_id": self.trail.keys.master.key_id,
            "signing_public_key": base64.b64encode(public).decode(),
            "signing_key": base64.b64encode(os.urandom(60)).decode(),
            "endorsed_by": version - 1,
            "endorsement": base64.b64encode(
                self.attacker.sign(endorsement_message(version, version - 1, public))
            ).decode(),
        }
        now = datetime(2026, 1, 2, tzinfo=UTC)
        self.db.execute(
            "INSERT INTO audit_keys (version, created_at, wrapped_key, params) VALUES (?, ?, ?, ?)",
            (version, self.db.time(now), os.urandom(60), self.db.json(params)),
        )
        key = DataKey(version, now, AESGCM(AESGCM.generate_key(bit_length=256)), self.attacker, public)
        return key, MasterKey(os.urandom(32))

    def forged_row(self, seq: int, prev: bytes, key: DataKey, master: MasterKey, i: int = 99) -> AuditRow:
        return seal(
            seq=seq,
            prev_hash=prev,
            event=event(i),
            recorded_at=datetime(2026, 1, 2, tzinfo=UTC),
            key=key,
            master=master,
        )


# ----------------------------------------------------------------------------- the attacks


def delete_middle(t: Trail) -> None:
    t.db.delete(5)


def delete_middle_rehash(t: Trail) -> None:
    t.db.delete(5)
    t.rechain(6)


def delete_middle_renumber_rehash(t: Trail) -> None:
    t.db.delete(5)
    for seq in range(6, LAST + 1):
        t.db.execute("UPDATE audit_records SET seq = ? WHERE seq = ?", (seq - 1, seq))
    t.rechain(5)


def delete_end(t: Trail) -> None:
    t.db.delete(10, 11)


def delete_end_head_row_moved(t: Trail) -> None:
    t.db.delete(10, 11)
    t.db.set_head(9, t.rows()[9].hash)


def delete_end_head_rewritten(t: Trail) -> None:
    t.db.delete(10, 11)
    row = t.rows()[9]
    t.db.set_head(9, row.hash)
    # The record's own signature is in the database; it does not pass for a head signature.
    HeadFile(t.head_path).write(Head(9, row.hash, row.key_version, row.signature))


def delete_end_head_forged(t: Trail) -> None:
    t.db.delete(10, 11)
    t.db.set_head(9, t.rows()[9].hash)
    t.forge_head_file(9, t.rows()[9].hash)


def delete_end_head_deleted(t: Trail) -> None:
    t.db.delete(10, 11)
    t.db.set_head(9, t.rows()[9].hash)
    t.head_path.unlink()


def reorder(t: Trail) -> None:
    rows = t.rows()
    for a, b in ((3, 5), (5, 3)):
        for col in ("recorded_at", "job_tag", "action_tag", "outcome_tag", "nonce", "ciphertext"):
            value = getattr(rows[b], col)
            t.db.set(a, col, t.db.time(value) if col == "recorded_at" else value)


def reorder_rehash(t: Trail) -> None:
    reorder(t)
    t.rechain(3)


def replay(t: Trail) -> None:
    old = t.rows()[3]
    t.db.insert(dataclasses.replace(old, seq=LAST + 1))
    t.db.set_head(LAST + 1, old.hash)


def replay_relinked(t: Trail) -> None:
    rows = t.rows()
    moved = dataclasses.replace(rows[3], seq=LAST + 1, prev_hash=rows[LAST].hash)
    digest = row_hash(moved)
    t.db.insert(dataclasses.replace(moved, hash=digest))
    t.db.set_head(LAST + 1, digest)
    t.forge_head_file(LAST + 1, digest)


def duplicate(t: Trail) -> None:
    last = t.rows()[LAST]
    t.db.insert(dataclasses.replace(last, seq=LAST + 1))


def key_version_changed(t: Trail) -> None:
    t.db.set(9, "key_version", 1)


def key_version_changed_rehash(t: Trail) -> None:
    t.db.set(9, "key_version", 1)
    t.rechain(9)


def ciphertexts_swapped(t: Trail) -> None:
    rows = t.rows()
    for a, b in ((2, 4), (4, 2)):
        t.db.set(a, "nonce", rows[b].nonce)
        t.db.set(a, "ciphertext", rows[b].ciphertext)


def ciphertexts_swapped_rehash(t: Trail) -> None:
    ciphertexts_swapped(t)
    t.rechain(2)


def forged_append_fresh_key(t: Trail) -> None:
    key, master = t.attacker_key(3)
    row = t.forged_row(LAST + 1, t.rows()[LAST].hash, key, master)
    t.db.insert(row)
    t.db.set_head(row.seq, row.hash)
    t.forge_head_file(row.seq, row.hash)


def forged_replacement_same_version(t: Trail) -> None:
    # Record 4 re-encrypted under a fresh AES key but still labelled v1, the chain rehashed.
    row = t.rows()[4]
    aad_key = AESGCM(AESGCM.generate_key(bit_length=256))
    nonce = os.urandom(12)
    t.db.set(4, "nonce", nonce)
    t.db.set(4, "ciphertext", aad_key.encrypt(nonce, b'{"v":1}', None))
    del row
    t.rechain(4)


def forged_replacement_fresh_key(t: Trail) -> None:
    key, master = t.attacker_key(3)
    rows = t.rows()
    t.db.delete(LAST)
    t.db.insert(t.forged_row(LAST, rows[LAST - 1].hash, key, master))
    t.rechain(LAST)


def timestamp_changed(t: Trail) -> None:
    t.db.set(4, "recorded_at", t.db.time(t.rows()[4].recorded_at - timedelta(hours=1)))


def timestamp_changed_rehash(t: Trail) -> None:
    timestamp_changed(t)
    t.rechain(4)


def tag_changed(t: Trail) -> None:
    t.db.set(4, "job_tag", t.rows()[5].job_tag)


def tag_changed_rehash(t: Trail) -> None:
    tag_changed(t)
    t.rechain(4)


def key_row_dropped(t: Trail) -> None:
    t.db.execute("DELETE FROM audit_keys WHERE version = 2")


def key_row_wrapped_key_corrupt(t: Trail) -> None:
    (wrapped,) = t.db.execute("SELECT wrapped_key FROM audit_keys WHERE version = 2")[0]
    t.db.execute("UPDATE audit_keys SET wrapped_key = ? WHERE version = 2", (bytes(wrapped)[:-1] + b"\0",))


def key_row_params_not_json(t: Trail) -> None:
    if t.db.backend == "postgresql":
        t.db.retype("audit_keys", "params", "params::text")
    t.db.execute("UPDATE audit_keys SET params = ? WHERE version = 2", ("{not json",))


def key_row_public_key_replaced(t: Trail) -> None:
    (params,) = t.db.execute("SELECT params FROM audit_keys WHERE version = 2")[0]
    params = json.loads(params) if isinstance(params, str) else dict(params)
    public = public_key_bytes(t.attacker.public_key())
    params["signing_public_key"] = base64.b64encode(public).decode()
    params["endorsement"] = base64.b64encode(t.attacker.sign(endorsement_message(2, 1, public))).decode()
    t.db.execute("UPDATE audit_keys SET params = ? WHERE version = 2", (t.db.json(params),))


def key_rows_wiped(t: Trail) -> None:
    t.db.execute("DELETE FROM audit_keys")


def head_older(t: Trail) -> None:
    t.head_path.write_bytes(t.old_head)


def head_missing(t: Trail) -> None:
    t.head_path.unlink()


def head_garbage(t: Trail) -> None:
    t.head_path.write_text("{garbage")


def head_past_end(t: Trail) -> None:
    t.forge_head_file(LAST + 4, os.urandom(32))


def recorded_at_garbage(t: Trail) -> None:
    if t.db.backend == "postgresql":
        t.db.retype("audit_records", "recorded_at", "recorded_at::text")
    t.db.set(5, "recorded_at", "yesterday at noon")


def ciphertext_as_text(t: Trail) -> None:
    if t.db.backend == "postgresql":
        t.db.retype("audit_records", "ciphertext", "encode(ciphertext, 'base64')")
    else:
        t.db.set(5, "ciphertext", base64.b64encode(t.rows()[5].ciphertext).decode())


def key_version_not_integer(t: Trail) -> None:
    if t.db.backend == "postgresql":
        t.db.retype("audit_records", "key_version", "key_version::text")
    t.db.set(5, "key_version", "two")


def seq_not_integer(t: Trail) -> None:
    t.db.set(5, "seq", "five")  # SQLite only: PostgreSQL's bigint primary key refuses it


def table_emptied(t: Trail) -> None:
    t.db.execute("DELETE FROM audit_records")
    t.db.set_head(0, b"\0" * 32)


def table_emptied_head_deleted(t: Trail) -> None:
    table_emptied(t)
    t.head_path.unlink()


def everything_wiped(t: Trail) -> None:
    table_emptied_head_deleted(t)
    key_rows_wiped(t)


@dataclass(frozen=True)
class Case:
    name: str
    attack: Callable[[Trail], None]
    keyed: int | None  # first seq with the master key; None: not detected
    public: int | None  # first seq with only the public key file; None: not detected
    cli: bool = False
    #: PostgreSQL differs: (keyed, public) (a retyped column breaks every row of it, from seq 1).
    pg: tuple[int | None, int | None] | None = None
    sqlite_only: bool = False
    why: str = ""


CASES = [
    Case("deletion in the middle", delete_middle, 5, 5, cli=True),
    Case("deletion in the middle, chain rehashed, head forged", delete_middle_rehash, 5, 5),
    Case("deletion in the middle, renumbered and rehashed", delete_middle_renumber_rehash, 5, 5, cli=True),
    Case("deletion at the end", delete_end, 10, 10),
    Case("deletion at the end, head row moved back", delete_end_head_row_moved, 10, 10),
    Case("deletion at the end, head file given a record's signature", delete_end_head_rewritten, 10, 10),
    Case(
        "deletion at the end, head file rewritten (forged signature)",
        delete_end_head_forged,
        10,
        10,
        cli=True,
    ),
    Case("deletion at the end, head file deleted", delete_end_head_deleted, 10, 10),
    Case("two records reordered", reorder, 3, 3),
    Case("two records reordered, rehashed", reorder_rehash, 3, 3, cli=True),
    Case("old record replayed at the end", replay, 12, 12),
    Case("old record replayed, relinked and rehashed", replay_relinked, 12, 12, cli=True),
    Case("last record duplicated", duplicate, 12, 12),
    Case("key version changed", key_version_changed, 9, 9),
    Case("key version changed, rehashed", key_version_changed_rehash, 9, 9),
    Case("ciphertexts swapped", ciphertexts_swapped, 2, 2),
    Case("ciphertexts swapped, rehashed", ciphertexts_swapped_rehash, 2, 2, cli=True),
    Case("forged append under a fresh key (own key row v3)", forged_append_fresh_key, 12, 12, cli=True),
    Case("forged replacement under a fresh AES key, rehashed", forged_replacement_same_version, 4, 4),
    Case("forged replacement under a fresh key row v3, rehashed", forged_replacement_fresh_key, 11, 11),
    Case("timestamp changed", timestamp_changed, 4, 4),
    Case("timestamp changed, rehashed", timestamp_changed_rehash, 4, 4, cli=True),
    Case("job tag changed", tag_changed, 4, 4),
    Case("job tag changed, rehashed", tag_changed_rehash, 4, 4),
    Case("key row v2 dropped", key_row_dropped, ROTATION, ROTATION, cli=True),
    Case(
        "key row v2: wrapped data key corrupt",
        key_row_wrapped_key_corrupt,
        ROTATION,
        None,
        cli=True,
        why="needs decryption: the public half of v2 is intact",
    ),
    Case("key row v2: params not JSON", key_row_params_not_json, ROTATION, ROTATION, cli=True),
    Case("key row v2: signing public key replaced", key_row_public_key_replaced, ROTATION, ROTATION),
    Case("head file older (restored backup)", head_older, OLD_HEAD_AT + 1, OLD_HEAD_AT + 1, cli=True),
    Case("head file missing", head_missing, LAST + 1, LAST + 1),
    Case("head file garbage", head_garbage, LAST, LAST, cli=True),
    Case("head file pointing past the end", head_past_end, LAST + 1, LAST + 1),
    Case("recorded_at garbage", recorded_at_garbage, 5, 5, cli=True, pg=(1, 1)),
    Case("ciphertext stored as text", ciphertext_as_text, 5, 5, cli=True, pg=(1, 1)),
    Case("key version not an integer", key_version_not_integer, 5, 5, pg=(1, 1)),
    Case("seq not an integer", seq_not_integer, 5, 5, sqlite_only=True),
    Case("table emptied", table_emptied, 1, 1, cli=True),
    Case("table emptied, head file deleted", table_emptied_head_deleted, 1, 1, cli=True),
    Case(
        "everything wiped: records, head file, key rows",
        everything_wiped,
        None,
        1,
        cli=True,
        why="no key rows left for the master key alone to anchor; with --key --public-key: yes (1)",
    ),
]


@pytest.fixture
def trail(
    store_target: StoreTarget, tmp_path: Path, clock: FakeClock, request: pytest.FixtureRequest
) -> Iterator[Trail]:
    server: PostgresServer | None = (
        request.getfixturevalue("postgres_server") if store_target.backend == "postgresql" else None
    )
    store = store_target.open(clock)
    opened = open_trail(store, tmp_path, clock)
    old_head = b""
    for i in range(10):
        opened.record(event(i))
        clock.advance(1)
        if i == 5:
            opened.rotate()
        if store.audit_head()[0] == OLD_HEAD_AT:
            old_head = (tmp_path / "audit.head").read_bytes()
    public = tmp_path / "audit.pub"
    public.write_text(public_key_file(opened.keys))
    config = tmp_path / "config.yaml"
    store_cfg: dict[str, Any] = {"url": store_target.url}
    if store_target.password_file is not None:
        store_cfg["password"] = {"file": str(store_target.password_file)}
    config.write_text(
        json.dumps(
            {
                "state_dir": str(tmp_path / "state"),
                "store": store_cfg,
                "audit": {"key_file": str(tmp_path / "audit.key"), "head_file": str(tmp_path / "audit.head")},
            }
        )
    )
    db = RawDb(store_target, server)
    try:
        attacker = Ed25519PrivateKey.generate()
        t = Trail(
            store, opened, db, tmp_path / "audit.head", old_head, public, config, attacker, store_target
        )
        keyed, public_only = _verify(t)
        assert keyed.ok, keyed.problems
        assert public_only.ok, public_only.problems
        assert keyed.decrypted == LAST
        yield t
    finally:
        db.close()
        store.close()


def _verify(t: Trail) -> tuple[VerifyReport, VerifyReport]:
    """(with the master key, with only the public key file), each as a fresh verifier process would."""
    head = HeadFile(t.head_path)
    with t.target.open() as store:
        ring = KeyRing.open(store, key_source(t.head_path.parent), now=datetime.now(UTC), create=False)
        keyed = verify_trail(store, head, ring)
    with t.target.open() as store:
        trusted = TrustedKeys.from_file(t.public_keys)
        public_only = verify_trail(store, head, trusted=trusted, key_rows=store.audit_keys())
    return keyed, public_only


def _expected(case: Case, backend: str) -> tuple[int | None, int | None]:
    if backend == "postgresql" and case.pg is not None:
        return case.pg
    return case.keyed, case.public


def _cli(t: Trail, *args: str) -> subprocess.CompletedProcess[str]:
    exe = Path(sys.executable).parent / "flink-gitops"
    env = {k: v for k, v in os.environ.items() if not k.startswith("FLINK_GITOPS_")}
    return subprocess.run(
        [str(exe), "--config", str(t.config), "audit", "verify", *args],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize("case", CASES, ids=[c.attack.__name__ for c in CASES])
def test_tamper_is_detected_at_its_seq(trail: Trail, case: Case) -> None:
    if case.sqlite_only and trail.db.backend != "sqlite":
        pytest.skip("PostgreSQL's bigint primary key cannot hold it")  # not a gap: the database refuses
    case.attack(trail)
    want_keyed, want_public = _expected(case, trail.db.backend)
    keyed, public_only = _verify(trail)
    if want_keyed is None:
        assert keyed.ok, keyed.problems
        # An auditor holding the master key and the public key file detects it.
        assert want_public is not None
        with trail.target.open() as store:
            ring = KeyRing.open(
                store, key_source(trail.head_path.parent), now=datetime.now(UTC), create=False
            )
            trusted = TrustedKeys.from_file(trail.public_keys)
            both = verify_trail(
                store, HeadFile(trail.head_path), ring, trusted=trusted, key_rows=store.audit_keys()
            )
        assert both.first_break == want_public, both.problems
    else:
        assert not keyed.ok
        assert keyed.first_break == want_keyed, keyed.problems
    if want_public is None:
        assert public_only.ok, public_only.problems
    else:
        assert not public_only.ok
        assert public_only.first_break == want_public, public_only.problems
    if not case.cli:
        return
    for args, want in ((("--key",), want_keyed), (("--public-key", str(trail.public_keys)), want_public)):
        result = _cli(trail, *args)
        assert "Traceback" not in result.stderr + result.stdout
        if want is None:
            assert result.returncode == 0, result.stdout + result.stderr
        else:
            assert result.returncode == 1, result.stdout + result.stderr
            assert f"the chain breaks at seq {want}" in result.stdout, result.stdout


def test_intact_trail_passes_through_the_cli(trail: Trail) -> None:
    for args in ((), ("--public-key", str(trail.public_keys)), ("--no-key",)):
        result = _cli(trail, *args)
        assert result.returncode == 0, result.stdout + result.stderr
        assert "OK: the chain is intact" in result.stdout


def corpus_table() -> str:
    """The corpus as a Markdown table (for the report): case, detected with key / public key only, seq."""
    lines = [
        "| case | with the key (seq) | with the public key only (seq) | note |",
        "|---|---|---|---|",
    ]
    for c in CASES:

        def cell(seq: int | None, pg: int | None, *, has_pg: bool) -> str:
            if seq is None:
                return "not detected"
            return f"yes ({seq}" + (f"; PostgreSQL {pg}" if has_pg and pg != seq else "") + ")"

        pk, pp = c.pg if c.pg is not None else (c.keyed, c.public)
        note = c.why or ("SQLite only" if c.sqlite_only else "")
        lines.append(
            f"| {c.name}{' (CLI)' if c.cli else ''} | {cell(c.keyed, pk, has_pg=c.pg is not None)} | "
            f"{cell(c.public, pp, has_pg=c.pg is not None)} | {note} |"
        )
    return "\n".join(lines)
