"""The encrypted, hash-chained audit trail (issue 4, audit half).

Modules: ``event`` (what a record says), ``sealing`` (AES-256-GCM + HMAC tags
+ hash of one record), ``chain`` (canonical encoding, AAD, head file),
``trail`` (append fail-closed, guard, rotation, queries), ``verify`` (chain,
head and, with the key, every record). Keys live in :mod:`flink_gitops.record.keys`;
rows in :mod:`flink_gitops.record.store` (reached only through its contract).
"""

from __future__ import annotations

from flink_gitops.record.audit.chain import Head, HeadFile, record_aad, record_hash, row_hash
from flink_gitops.record.audit.errors import (
    AuditDecryptError,
    AuditError,
    AuditIntegrityError,
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
from flink_gitops.record.audit.trail import (
    ROTATE_ACTION,
    ActionScope,
    AuditStore,
    AuditTrail,
    check_head,
    head_file_path,
    query_records,
)
from flink_gitops.record.audit.verify import Problem, VerifyReport, verify_trail

__all__ = [
    "FAILED",
    "INTENT",
    "ROTATE_ACTION",
    "SUCCEEDED",
    "ActionScope",
    "AuditDecryptError",
    "AuditError",
    "AuditEvent",
    "AuditIntegrityError",
    "AuditRecord",
    "AuditStore",
    "AuditTrail",
    "AuditUnavailable",
    "Head",
    "HeadFile",
    "Problem",
    "VerifyReport",
    "api_actor",
    "check_head",
    "cli_actor",
    "daemon_actor",
    "format_time",
    "head_file_path",
    "query_records",
    "record_aad",
    "record_hash",
    "row_hash",
    "verify_trail",
]
