"""The encrypted, hash-chained audit trail (issue 4, audit half).

Modules: ``event`` (what a record says), ``sealing`` (AES-256-GCM + HMAC tags
+ hash + signature of one record), ``chain`` (canonical encoding, AAD, signed
messages, head file), ``signing`` (trusted public keys, their export file,
endorsements), ``trail`` (append fail-closed, guard, rotation, accept-head,
queries), ``verify`` (chain, signatures, head and, with the key, every
record). Keys live in :mod:`flink_gitops.record.keys`; rows in
:mod:`flink_gitops.record.store` (reached only through its contract).
"""

from __future__ import annotations

from flink_gitops.record.audit.chain import (
    Head,
    HeadFile,
    head_signing_message,
    record_aad,
    record_hash,
    record_signing_message,
    row_hash,
)
from flink_gitops.record.audit.errors import (
    AuditDecryptError,
    AuditError,
    AuditIntegrityError,
    AuditOutcomeMissing,
    AuditRecordInvalid,
    AuditUnavailable,
)
from flink_gitops.record.audit.event import (
    FAILED,
    INTENT,
    SUCCEEDED,
    AuditEvent,
    AuditRecord,
    api_actor,
    cli_actor,
    daemon_actor,
    format_time,
)
from flink_gitops.record.audit.signing import PublicKeyFileError, TrustedKeys, public_key_file
from flink_gitops.record.audit.trail import (
    ACCEPT_HEAD_ACTION,
    ROTATE_ACTION,
    ActionScope,
    AuditStore,
    AuditTrail,
    HeadNotAccepted,
    check_head,
    head_file_path,
    head_mismatch,
    query_records,
)
from flink_gitops.record.audit.verify import Problem, VerifyReport, verify_trail

__all__ = [
    "ACCEPT_HEAD_ACTION",
    "FAILED",
    "INTENT",
    "ROTATE_ACTION",
    "SUCCEEDED",
    "ActionScope",
    "AuditDecryptError",
    "AuditError",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditOutcomeMissing",
    "AuditRecord",
    "AuditRecordInvalid",
    "AuditStore",
    "AuditTrail",
    "AuditUnavailable",
    "Head",
    "HeadFile",
    "HeadNotAccepted",
    "Problem",
    "PublicKeyFileError",
    "TrustedKeys",
    "VerifyReport",
    "api_actor",
    "check_head",
    "cli_actor",
    "daemon_actor",
    "format_time",
    "head_file_path",
    "head_mismatch",
    "head_signing_message",
    "public_key_file",
    "query_records",
    "record_aad",
    "record_hash",
    "record_signing_message",
    "row_hash",
    "verify_trail",
]
