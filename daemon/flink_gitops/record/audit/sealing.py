"""Sealing one record: encrypt + tag + hash into an AuditRow, and the reverse with every check.

Why a module of its own: the trail (writes), the verifier and ``audit show``
(read) must agree byte for byte on the AAD, the tags and the hash.
The plaintext is AES-256-GCM encrypted under the current data key with a fresh
random 96-bit nonce, and its hash is signed with the version's Ed25519 key
(record.audit.chain.record_signing_message); job, action and outcome are also stored as HMAC-SHA256
tags under the master key's tag key (record.keys.MasterKey.tag), so the store
can filter without decrypting. Neighbours: record.audit.chain (hash, AAD),
record.keys (keys), record.audit.trail, record.audit.verify.
"""

from __future__ import annotations

import dataclasses
import hmac
import os
from datetime import datetime

from cryptography.exceptions import InvalidTag

from flink_gitops.clock import utc
from flink_gitops.record.audit.chain import record_aad, record_signing_message, row_hash
from flink_gitops.record.audit.errors import AuditDecryptError
from flink_gitops.record.audit.event import AuditEvent, AuditRecord
from flink_gitops.record.keys import DataKey, KeyError_, KeyRing, MasterKey
from flink_gitops.record.store.records import AuditRow

NONCE_BYTES = 12


def event_tags(master: MasterKey, event: AuditEvent) -> tuple[bytes | None, bytes, bytes | None]:
    """(job_tag, action_tag, outcome_tag) of an event."""
    return (
        None if event.job is None else master.tag("job", event.job),
        master.tag("action", event.action),
        None if event.outcome is None else master.tag("outcome", event.outcome),
    )


def seal(
    *,
    seq: int,
    prev_hash: bytes,
    event: AuditEvent,
    recorded_at: datetime,
    key: DataKey,
    master: MasterKey,
    plaintext: bytes | None = None,
) -> AuditRow:
    """The stored form of ``event`` as record ``seq`` after ``prev_hash``.

    ``plaintext``: ``event.to_plaintext(recorded_at)`` computed beforehand (outside the store's lock).
    """
    if plaintext is None:
        plaintext = event.to_plaintext(recorded_at)
    nonce = os.urandom(NONCE_BYTES)
    ciphertext = key.aead.encrypt(nonce, plaintext, record_aad(seq, key.version, prev_hash))
    job_tag, action_tag, outcome_tag = event_tags(master, event)
    unhashed = AuditRow(
        seq=seq,
        recorded_at=recorded_at,
        key_version=key.version,
        job_tag=job_tag,
        action_tag=action_tag,
        outcome_tag=outcome_tag,
        nonce=nonce,
        ciphertext=ciphertext,
        prev_hash=prev_hash,
        hash=b"",
    )
    digest = row_hash(unhashed)
    signature = key.sign(record_signing_message(seq, key.version, digest))
    return dataclasses.replace(unhashed, hash=digest, signature=signature)


def unseal(row: AuditRow, keys: KeyRing) -> AuditRecord:
    """Decrypt ``row`` and check that its tags and time match its plaintext. Raises AuditDecryptError."""
    try:
        key = keys.get(row.key_version)
    except KeyError_ as exc:
        raise AuditDecryptError(f"record {row.seq}: {exc}", seq=row.seq) from exc
    try:
        plaintext = key.aead.decrypt(
            row.nonce, row.ciphertext, record_aad(row.seq, row.key_version, row.prev_hash)
        )
    except (InvalidTag, ValueError) as exc:
        raise AuditDecryptError(
            f"record {row.seq} does not decrypt under key v{row.key_version} at its place in the chain "
            "(ciphertext, nonce, seq, key version or prev_hash altered, or encrypted under another key)",
            seq=row.seq,
        ) from exc
    try:
        event, time = AuditEvent.from_plaintext(plaintext)
    except (ValueError, TypeError) as exc:
        raise AuditDecryptError(f"record {row.seq} decrypts to an unreadable plaintext", seq=row.seq) from exc
    want = event_tags(keys.master, event)
    have = (row.job_tag, row.action_tag, row.outcome_tag)
    for name, w, h in zip(("job", "action", "outcome"), want, have, strict=True):
        if (w is None) != (h is None) or (w is not None and h is not None and not hmac.compare_digest(w, h)):
            raise AuditDecryptError(
                f"record {row.seq}: the stored {name} tag does not match its plaintext", seq=row.seq
            )
    if time != utc(row.recorded_at):
        raise AuditDecryptError(
            f"record {row.seq}: recorded_at does not match its plaintext time", seq=row.seq
        )
    return AuditRecord(seq=row.seq, recorded_at=time, key_version=row.key_version, event=event)
