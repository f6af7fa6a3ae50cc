"""Who may sign the chain: the trusted Ed25519 public keys, their export file, and key endorsements.

Why: a hash chain alone can be recomputed by anyone who can write the
database. Every record and the head file are signed with the key version's
Ed25519 signing key (record.keys), so a verifier that trusts the public keys
detects a rehashed forgery, a rewritten head file and a wiped trail without
the master key. Trust comes from one of two places:

- the master key: it unwraps each version's private signing key, whose public
  half is then trusted (``TrustedKeys.from_ring``);
- a public key file exported by ``flink-gitops audit public-key`` (JSON,
  format ``flink-gitops-audit-public-keys/1``: ``{"version": n, "ed25519":
  base64}`` per version). A newer version than the file lists is trusted only
  when its key row carries a valid endorsement: a signature by an already
  trusted older version over the new public key, made at rotation
  (``TrustedKeys.extend``).

Neighbours: record.audit.verify (checks signatures), record.keys (makes and
endorses signing keys), cli.audit (``public-key``, ``verify --public-key``).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from pathlib import Path

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from flink_gitops.errors import ConfigError
from flink_gitops.record.keys import KeyRing, StoredSigningKey, endorsement_message
from flink_gitops.record.store.records import AuditKeyRow, UnreadableAuditKeyRow

PUBLIC_KEYS_FORMAT = "flink-gitops-audit-public-keys/1"
_MAX_FILE_BYTES = 1 << 20


class PublicKeyFileError(ConfigError):
    """The public key file given to ``audit verify --public-key`` cannot be read or is not ours."""


class TrustedKeys:
    """Ed25519 public keys by key version, and where the trust came from."""

    def __init__(self, keys: Mapping[int, bytes], *, origin: str) -> None:
        self.origin = origin
        self._raw = dict(keys)
        self._keys = {v: Ed25519PublicKey.from_public_bytes(k) for v, k in self._raw.items()}

    @classmethod
    def from_ring(cls, ring: KeyRing) -> TrustedKeys:
        return cls(ring.public_keys(), origin="the master key")

    @classmethod
    def from_file(cls, path: Path) -> TrustedKeys:
        try:
            with path.open("rb") as fh:
                text = fh.read(_MAX_FILE_BYTES + 1)
        except OSError as exc:
            raise PublicKeyFileError(f"cannot read audit public key file {path}: {exc.strerror}") from exc
        try:
            if len(text) > _MAX_FILE_BYTES:
                raise ValueError("too large")
            data = json.loads(text)
            if not isinstance(data, dict) or data.get("format") != PUBLIC_KEYS_FORMAT:
                raise ValueError("format")
            keys: dict[int, bytes] = {}
            for entry in data["keys"]:
                version = entry["version"]
                raw = base64.b64decode(str(entry["ed25519"]), validate=True)
                if not isinstance(version, int) or isinstance(version, bool) or version < 1 or len(raw) != 32:
                    raise ValueError("entry")
                keys[version] = raw
            if not keys:
                raise ValueError("no keys")
            return cls(keys, origin=f"public key file {path}")
        except (ValueError, TypeError, KeyError, binascii.Error) as exc:
            raise PublicKeyFileError(
                f"{path} is not an audit public key file ({PUBLIC_KEYS_FORMAT}, as written by "
                "`flink-gitops audit public-key`)"
            ) from exc

    def versions(self) -> list[int]:
        return sorted(self._keys)

    def __contains__(self, version: object) -> bool:
        return version in self._keys

    def __bool__(self) -> bool:
        return bool(self._keys)

    def verify(self, version: int, message: bytes, signature: bytes) -> bool:
        key = self._keys.get(version)
        if key is None or len(signature) != 64:
            return False
        try:
            key.verify(signature, message)
        except InvalidSignature:
            return False
        return True

    def extend(self, rows: list[AuditKeyRow | UnreadableAuditKeyRow]) -> dict[int, str]:
        """Trust the key rows' signing keys that a trusted key endorsed; why each other version is not.

        A row of a trusted version must carry exactly the trusted public key; a trusted version
        without a row is reported as dropped.
        """
        problems: dict[int, str] = {}
        seen: set[int] = set()
        for row in sorted(rows, key=lambda r: r.version if r.version is not None else 0):
            if row.version is None:
                continue
            seen.add(row.version)
            if isinstance(row, UnreadableAuditKeyRow):
                problems[row.version] = f"its key row is unreadable ({row.problem})"
                continue
            try:
                stored = StoredSigningKey.from_params(row.version, row.params)
            except ValueError:
                problems[row.version] = "its key row carries no readable signing public key"
                continue
            if row.version in self._raw:
                if stored.public_key != self._raw[row.version]:
                    problems[row.version] = "its key row's public key is not the trusted one (replaced)"
                continue
            by, endorsement = stored.endorsed_by, stored.endorsement
            if (
                by is None
                or endorsement is None
                or by >= row.version
                or not self.verify(by, endorsement_message(row.version, by, stored.public_key), endorsement)
            ):
                problems[row.version] = (
                    "its signing key is not endorsed by a trusted older key (a key row added behind "
                    "flink-gitops' back)"
                )
                continue
            self._raw[row.version] = stored.public_key
            self._keys[row.version] = Ed25519PublicKey.from_public_bytes(stored.public_key)
        for version in self._raw.keys() - seen:
            problems[version] = "its key row is missing (dropped)"
        return problems


def public_key_file(ring: KeyRing) -> str:
    """The export of every usable version's signing public key, for ``audit verify --public-key``."""
    body = {
        "format": PUBLIC_KEYS_FORMAT,
        "master_key_id": ring.master.key_id,
        "keys": [
            {"version": v, "ed25519": base64.b64encode(k).decode()}
            for v, k in sorted(ring.public_keys().items())
        ],
    }
    return json.dumps(body, indent=2) + "\n"
