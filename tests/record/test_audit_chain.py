"""The canonical encoding, AAD and plaintext are a storage format: pinned here byte for byte.

Changing any of them would make every existing trail fail verification, so
these tests rebuild the bytes from the spec in record.audit.chain's docstring
and compare against known answers.
"""

from __future__ import annotations

import hashlib
import struct
from datetime import UTC, datetime

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.record.audit import AuditEvent, record_aad, record_hash
from flink_gitops.record.audit.chain import micros
from flink_gitops.record.audit.event import format_time, parse_time

WHEN = datetime(2026, 3, 4, 5, 6, 7, 891011, tzinfo=UTC)
FIELDS = {
    "seq": 42,
    "recorded_at": WHEN,
    "key_version": 3,
    "job_tag": b"\x01" * 32,
    "action_tag": b"\x02" * 32,
    "outcome_tag": None,
    "nonce": b"\x03" * 12,
    "ciphertext": b"ciphertext-bytes",
    "prev_hash": b"\x04" * 32,
}


def _spec_encoding() -> bytes:
    def i(n: int) -> bytes:
        return struct.pack(">q", n)

    def b(v: bytes) -> bytes:
        return struct.pack(">I", len(v)) + v

    return (
        b"flink-gitops/audit/record/v1"
        + i(42)
        + i(1_772_600_767_891_011)
        + i(3)
        + b"\x01"
        + b(b"\x01" * 32)
        + b(b"\x02" * 32)
        + b"\x00"
        + b(b"\x03" * 12)
        + b(b"ciphertext-bytes")
        + b(b"\x04" * 32)
    )


def test_record_hash_follows_the_documented_encoding() -> None:
    assert micros(WHEN) == 1_772_600_767_891_011
    assert record_hash(**FIELDS) == hashlib.sha256(_spec_encoding()).digest()  # type: ignore[arg-type]


def test_record_hash_known_answer() -> None:
    expected = "d2789bbfa06b0a227657235cabdaee8b42ee47df163810afd881b521cf17139a"
    assert record_hash(**FIELDS).hex() == expected  # type: ignore[arg-type]


def test_none_and_empty_tags_hash_differently() -> None:
    assert record_hash(**{**FIELDS, "outcome_tag": b""}) != record_hash(**FIELDS)  # type: ignore[arg-type]


def test_aad_binds_seq_key_version_and_prev_hash() -> None:
    assert record_aad(42, 3, b"\x04" * 32) == (
        b"flink-gitops/audit/aad/v1" + struct.pack(">qq", 42, 3) + struct.pack(">I", 32) + b"\x04" * 32
    )
    assert (
        len({record_aad(1, 1, b"a"), record_aad(2, 1, b"a"), record_aad(1, 2, b"a"), record_aad(1, 1, b"b")})
        == 4
    )


def test_plaintext_is_canonical_json() -> None:
    ev = AuditEvent(action="job.upgrade", actor="daemon:h", job="orders", details={"b": 1, "a": "é"})
    assert (
        ev.to_plaintext(WHEN)
        == (
            '{"action":"job.upgrade","actor":"daemon:h","cluster":null,"details":{"a":"é","b":1},"error":null,'
            '"git_commit":null,"git_signer":null,"intent_seq":null,"job":"orders","job_id_after":null,'
            '"job_id_before":null,"outcome":null,"savepoint":null,"spec_hash":null,"time":"2026-03-04T05:06:07.891011Z",'
            '"v":1}'
        ).encode()
    )
    assert AuditEvent.from_plaintext(ev.to_plaintext(WHEN)) == (ev, WHEN)


@given(st.datetimes(timezones=st.just(UTC)))
def test_times_round_trip(when: datetime) -> None:
    assert parse_time(format_time(when)) == when
