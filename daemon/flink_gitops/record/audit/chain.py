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

The head file (``settings.audit.head_file``) holds the last (seq, hash) outside
the database, so deleting or truncating records shows. It is written at seq 0
when a trail opens on an empty store, then after each append, atomically (temp
file, fsync, rename, fsync of the directory), only ever forward (under a lock
file, so concurrent appenders cannot move it back).
A crash between the commit and the head write leaves it one record behind:
head seq ∈ {db seq, db seq - 1} with a matching hash is consistent.
Neighbours: record.audit.trail (appends), record.audit.verify (checks).
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import struct
import threading
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from flink_gitops.record.audit.errors import AuditIntegrityError
from flink_gitops.record.audit.event import utc
from flink_gitops.record.store.records import ZERO_HASH, AuditRow

__all__ = ["ZERO_HASH", "Head", "HeadFile", "record_aad", "record_hash", "row_hash"]

_RECORD_DOMAIN = b"flink-gitops/audit/record/v1"
_AAD_DOMAIN = b"flink-gitops/audit/aad/v1"
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_HEAD_FORMAT = "flink-gitops-audit-head/1"


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


@dataclass(frozen=True, slots=True)
class Head:
    """The last record of the chain: its seq (0 when empty) and hash."""

    seq: int
    hash: bytes

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
            if data.get("format") != _HEAD_FORMAT:
                raise ValueError("format")
            seq, digest = int(data["seq"]), bytes.fromhex(data["hash"])
            if seq < 0 or len(digest) != 32:
                raise ValueError("range")
        except (ValueError, TypeError, KeyError, AttributeError) as exc:
            raise AuditIntegrityError(f"audit head file {self.path} is corrupt") from exc
        return Head(seq, digest)

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
        body = json.dumps({"format": _HEAD_FORMAT, "seq": head.seq, "hash": head.hash.hex()}) + "\n"
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.{threading.get_ident()}.tmp")
        fd = self._open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        try:
            os.write(fd, body.encode())
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(tmp, self.path)
        dir_fd = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
