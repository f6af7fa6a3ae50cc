"""The hash chain: the canonical encoding of a stored record, its hash, its AAD, and the head file.

Canonical encoding (version 1) of a record, hashed with SHA-256::

    b"flink-gitops/audit/record/v1"
    || int(seq) || int(recorded_at as µs since the Unix epoch, UTC) || int(key_version)
    || opt(job_tag) || bytes(action_tag) || opt(outcome_tag)
    || bytes(nonce) || bytes(ciphertext) || bytes(prev_hash)

where ``int(n)`` is 8 bytes big-endian signed, ``bytes(b)`` is a 4-byte
big-endian length then ``b``, and ``opt(b)`` is ``0x00`` for None or ``0x01``
then ``bytes(b)``. Every stored column except ``hash`` is covered, so no index
column (time, tags, key version) can be edited unseen, and the chain needs no
key to check. AES-GCM's associated data binds the ciphertext to its place:
``b"flink-gitops/audit/aad/v1" || int(seq) || int(key_version) || bytes(prev_hash)``.

Signatures (Ed25519, the key version's signing key from record.keys): each
record's ``signature`` column signs
``b"flink-gitops/audit/record-sig/v1" || int(seq) || int(key_version) || bytes(hash)``
and the head file signs the same fields under ``b"flink-gitops/audit/head-sig/v1"``
(a distinct domain, so a record's signature copied from the database cannot
vouch for a head file moved back after a truncation). The hash covers the
whole prefix of the chain, so one valid signature vouches for every record up
to it.

The head file (``settings.audit.head_file``) holds the last (seq, hash, key
version, signature) outside the database, so deleting or truncating records
shows. It is written at seq 0 when a trail opens on an empty store, then after
each append, atomically (temp file, fsync, rename, fsync of the directory),
only ever forward (under a lock file, so concurrent appenders cannot move it
back). A crash between the commit and the head write leaves it one record
behind: head seq ∈ {db seq, db seq - 1} with a matching hash is consistent.
Neighbours: record.audit.trail (appends), record.audit.verify (checks).
"""

from __future__ import annotations

import base64
import binascii
import fcntl
import hashlib
import json
import os
import struct
import threading
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from flink_gitops.clock import utc
from flink_gitops.record.audit.errors import AuditIntegrityError
from flink_gitops.record.store.records import ZERO_HASH, AuditRow

__all__ = [
    "ZERO_HASH",
    "Head",
    "HeadFile",
    "head_signing_message",
    "record_aad",
    "record_hash",
    "record_signing_message",
    "row_hash",
]

_RECORD_DOMAIN = b"flink-gitops/audit/record/v1"
_AAD_DOMAIN = b"flink-gitops/audit/aad/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RECORD_SIG_DOMAIN = b"flink-gitops/audit/record-sig/v1"
_HEAD_SIG_DOMAIN = b"flink-gitops/audit/head-sig/v1"
_HEAD_FORMAT = "flink-gitops-audit-head/2"
_OLD_HEAD_FORMAT = "flink-gitops-audit-head/1"  # unsigned; read so that verify can say so


def _int(n: int) -> bytes:
    return struct.pack(">q", n)


def _bytes(b: bytes) -> bytes:
    return struct.pack(">I", len(b)) + b


def _opt(b: bytes | None) -> bytes:
    return b"\x00" if b is None else b"\x01" + _bytes(b)


def micros(value: datetime) -> int:
    """Microseconds since the Unix epoch (a naive value counts as UTC)."""
    delta = utc(value) - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def record_hash(
    *,
    seq: int,
    recorded_at: datetime,
    key_version: int,
    job_tag: bytes | None,
    action_tag: bytes,
    outcome_tag: bytes | None,
    nonce: bytes,
    ciphertext: bytes,
    prev_hash: bytes,
) -> bytes:
    """SHA-256 of the canonical encoding above."""
    h = hashlib.sha256(_RECORD_DOMAIN)
    h.update(_int(seq) + _int(micros(recorded_at)) + _int(key_version))
    h.update(_opt(job_tag) + _bytes(action_tag) + _opt(outcome_tag))
    h.update(_bytes(nonce))
    h.update(_bytes(ciphertext))
    h.update(_bytes(prev_hash))
    return h.digest()


def row_hash(row: AuditRow) -> bytes:
    """The hash a stored row should carry, recomputed from its other columns."""
    return record_hash(
        seq=row.seq,
        recorded_at=row.recorded_at,
        key_version=row.key_version,
        job_tag=row.job_tag,
        action_tag=row.action_tag,
        outcome_tag=row.outcome_tag,
        nonce=row.nonce,
        ciphertext=row.ciphertext,
        prev_hash=row.prev_hash,
    )


def record_aad(seq: int, key_version: int, prev_hash: bytes) -> bytes:
    """AES-GCM associated data: binds a ciphertext to its seq, key version and predecessor."""
    return _AAD_DOMAIN + _int(seq) + _int(key_version) + _bytes(prev_hash)


def record_signing_message(seq: int, key_version: int, digest: bytes) -> bytes:
    """What a record's ``signature`` signs."""
    return _RECORD_SIG_DOMAIN + _int(seq) + _int(key_version) + _bytes(digest)


def head_signing_message(seq: int, key_version: int, digest: bytes) -> bytes:
    """What the head file's signature signs."""
    return _HEAD_SIG_DOMAIN + _int(seq) + _int(key_version) + _bytes(digest)


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of the chain: its seq (0 when empty) and hash; in the head file also signed."""

    seq: int
    hash: bytes
    #: the signing key's version (0: unsigned) and the signature; a head is equal to another
    #: with the same seq and hash whoever signed it.
    key_version: int = field(default=0, compare=False)
    signature: bytes = field(default=b"", compare=False)

    def signing_message(self) -> bytes:
        return head_signing_message(self.seq, self.key_version, self.hash)

    def __str__(self) -> str:
        return f"seq {self.seq} ({self.hash.hex()[:16]}…)"


class HeadFile:
    """The chain head kept outside the database; written atomically and only forward."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._lock = threading.Lock()
        self._lock_path = path.with_name(path.name + ".lock")

    def _open(self, path: Path, flags: int) -> int:
        """``os.open`` (owner-only), creating the head file's directory first if it is missing.

        Creating it only on demand keeps a ``mkdir`` (~25 µs) off every append.
        """
        try:
            return os.open(path, flags, 0o600)
        except FileNotFoundError:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            return os.open(path, flags, 0o600)

    def read(self) -> Head | None:
        """The recorded head; None when there is no file. Raises AuditIntegrityError if unreadable."""
        try:
            text = self.path.read_text(encoding="utf-8")
        except FileNotFoundError:
            return None
        except OSError as exc:
            raise AuditIntegrityError(f"cannot read audit head file {self.path}: {exc.strerror}") from exc
        try:
            data = json.loads(text)
            if data.get("format") not in (_HEAD_FORMAT, _OLD_HEAD_FORMAT):
                raise ValueError("format")
            seq, digest = data["seq"], bytes.fromhex(data["hash"])
            version, signature = 0, b""
            if data["format"] == _HEAD_FORMAT:
                version, signature = data["key_version"], base64.b64decode(data["signature"], validate=True)
            if not all(isinstance(n, int) and not isinstance(n, bool) for n in (seq, version)):
                raise ValueError("type")
            if seq < 0 or len(digest) != 32:
                raise ValueError("range")
        except (ValueError, TypeError, KeyError, AttributeError, binascii.Error) as exc:
            raise AuditIntegrityError(f"audit head file {self.path} is corrupt") from exc
        return Head(seq, digest, version, signature)

    def advance(self, head: Head) -> None:
        """Record ``head`` unless the file already holds a later one (another appender got there first)."""
        with self._lock:
            fd = self._open(self._lock_path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)  # other processes appending to the same trail
                try:
                    current = self.read()
                except AuditIntegrityError:
                    current = None  # open refused a corrupt file; one corrupted since gets the newer head
                if current is None or current.seq < head.seq:
                    self.write(head)
            finally:
                os.close(fd)  # releases the flock

    def replace(self, head: Head) -> None:
        """Record ``head`` even over a later or corrupt one (``audit accept-head`` only)."""
        with self._lock:
            fd = self._open(self._lock_path, os.O_RDWR | os.O_CREAT)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX)
                self.write(head)
            finally:
                os.close(fd)

    def remove_stale_temps(self) -> int:
        """Delete temp files left by appenders that died mid-write (their pid is gone); how many."""
        removed = 0
        for tmp in self.path.parent.glob(f".{self.path.name}.*.tmp"):
            try:
                os.kill(int(tmp.name.split(".")[-3]), 0)
            except ProcessLookupError:
                tmp.unlink(missing_ok=True)
                removed += 1
            except (ValueError, IndexError, PermissionError):
                continue  # not ours, or a live process of another user
        return removed

    def write(self, head: Head) -> None:
        """Replace the file atomically: temp file, fsync, rename, fsync the directory.

        Both fsyncs are needed. Without the first, a power cut after the rename can
        leave an empty or garbled head file (corrupt: verify fails). Without the
        directory's, the rename may be lost in a power cut while the store's next
        commit (synchronous=FULL) survives it (SQLite's fdatasync of its WAL need
        not commit the filesystem journal that holds the rename; on ext4 it does
        not once the WAL is being reused), so the head file could come back two or
        more records behind, which verify reports: it cannot tell that from records
        appended behind the head file's back.
        """
        body = {
            "format": _HEAD_FORMAT,
            "seq": head.seq,
            "hash": head.hash.hex(),
            "key_version": head.key_version,
            "signature": base64.b64encode(head.signature).decode(),
        }
        text = json.dumps(body) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = self._open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, text.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
