"""Errors of the audit trail (``flink_gitops.record.audit``).

Why separate: the reconciler must tell "the audit cannot be written, do not
act" (:class:`AuditUnavailable`, retryable) from "the evidence has been
tampered with" (:class:`AuditIntegrityError`, permanent). Messages carry
sequence numbers and paths, never key material or record plaintext.
Neighbours: record.audit.trail and .verify raise these; record.keys has the key errors.
"""

from __future__ import annotations

from flink_gitops.errors import FlinkGitOpsError, PermanentError, TemporaryError


class AuditError(FlinkGitOpsError):
    """Base of every audit trail error."""


class AuditUnavailable(AuditError, TemporaryError):
    """The audit record could not be written: the caller must NOT take the action (fail closed)."""


class AuditOutcomeMissing(AuditError, PermanentError):
    """The action WAS taken, but its outcome record could not be written. Not retryable: retrying
    would take the action twice. ``intent_seq`` is the intent record it belongs to; stop acting and
    look (the trail is unavailable)."""

    def __init__(self, message: str, *, intent_seq: int) -> None:
        super().__init__(message)
        self.intent_seq = intent_seq


class AuditRecordInvalid(AuditError, PermanentError):
    """The event cannot be recorded as given (a field that is not ours, a value that is not JSON):
    a programming error, refused before anything is written or done."""


class AuditIntegrityError(AuditError, PermanentError):
    """The stored trail or its head file does not add up (tampering, truncation, a forked chain)."""

    def __init__(self, message: str, *, seq: int | None = None) -> None:
        super().__init__(message)
        #: the sequence number where the chain breaks, when known.
        self.seq = seq


class AuditDecryptError(AuditError, PermanentError):
    """A record does not decrypt under its key version with its seq and prev_hash (tampered or wrong key)."""

    def __init__(self, message: str, *, seq: int) -> None:
        super().__init__(message)
        self.seq = seq
