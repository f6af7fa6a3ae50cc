"""Audit keys: where the master key comes from, and the versioned data keys wrapped under it.

Why: the audit trail encrypts each record under a *data key* (AES-256-GCM) and
tags searchable fields with HMAC-SHA256 under a *tag key*. Both hang off one
32-byte *master key*, which never leaves this process and never reaches the
store:

- the master key comes from exactly one :class:`KeySource`: a key file made by
  ``flink-gitops keys generate`` (mode 0600 enforced), a passphrase stretched
  with Argon2id (Scrypt when this cryptography build lacks it; salt and cost
  are kept in the key rows' ``params``), or an external command that prints
  the key (the hook for a KMS CLI; run without a shell, with a timeout);
- HKDF-SHA256 derives from it a *wrap key* (wraps data keys), the *tag key*
  (stable across data-key rotations, so tag filters work across versions) and
  a short public *key id* (tells "wrong master key" from "corrupt row");
- data keys are random, wrapped with AES-256-GCM under the wrap key (the
  version bound as associated data) and stored with ``Store.put_audit_key``;
  :meth:`KeyRing.add_version` is a rotation; old versions stay readable;
- each version also has an Ed25519 *signing key* that signs the chain
  (record.audit.signing): its private half wrapped like the data key, its
  public half in the row's params, endorsed by the previous version's signing
  key (a signature over the new public key), so an auditor holding only an
  exported public key can follow rotations.

Key material never appears in reprs, logs or error messages.
Neighbours: record.audit (uses the :class:`KeyRing`), record.store (keeps the
wrapped keys), cli.keys (``keys generate|rotate``), settings.AuditConfig.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import hmac
import os
import stat
import struct
import subprocess
import threading
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from cryptography.hazmat.primitives.kdf.scrypt import Scrypt

from flink_gitops.clock import utc
from flink_gitops.errors import ConfigError, PermanentError, TemporaryError
from flink_gitops.record.store.errors import DuplicateAuditKey
from flink_gitops.record.store.records import AuditKeyRow, UnreadableAuditKeyRow
from flink_gitops.secrets import Secret, read_secret

if TYPE_CHECKING:
    from flink_gitops.settings import Settings

try:  # Argon2id arrived in cryptography 44; Scrypt is the fallback.
    from cryptography.hazmat.primitives.kdf.argon2 import Argon2id

    HAVE_ARGON2 = True
except ImportError:  # pragma: no cover - depends on the installed cryptography
    HAVE_ARGON2 = False

KEY_BYTES = 32
_NONCE_BYTES = 12
_TAG_CACHE_SIZE = 4096
_DATA_PURPOSE = b"flink-gitops/audit/data-key/v1"
_SIGNING_PURPOSE = b"flink-gitops/audit/signing-key/v1"
_ENDORSE_DOMAIN = b"flink-gitops/audit/endorse/v1"
_KEY_FILE_HEADER = "# flink-gitops audit master key v1: keep secret, mode 0600, back it up offline"


class KeyError_(PermanentError):
    """Base of audit key problems that retrying will not fix."""


class KeySourceError(ConfigError):
    """The master key cannot be obtained: missing or unsafe key file, bad command output, bad config."""


class KeyCommandUnavailable(TemporaryError):
    """The key command failed or timed out (a KMS may be briefly unreachable); trying later may help."""


class WrongMasterKey(KeyError_):
    """The master key does not unwrap the stored data keys: a different key file/passphrase/command."""


class UnknownKeyVersion(KeyError_):
    """A record names a data key version that the store does not hold."""


class KeyVersionUnusable(KeyError_):
    """A stored key version exists but does not unwrap, or lacks its signing key (corrupt or forged row)."""


# --------------------------------------------------------------------------- master key


class MasterKey:
    """The 32-byte master key and the keys HKDF derives from it. Never prints its bytes."""

    __slots__ = ("_key_id", "_tag_cache", "_tag_key", "_wrap_key")

    def __init__(self, material: bytes) -> None:
        if len(material) != KEY_BYTES:
            raise KeySourceError(f"an audit master key is {KEY_BYTES} bytes, got {len(material)}")
        self._wrap_key = _hkdf(material, b"flink-gitops/audit/wrap/v1")
        self._tag_key = _hkdf(material, b"flink-gitops/audit/tag/v1")
        self._key_id = _hkdf(material, b"flink-gitops/audit/key-id/v1")[:8].hex()
        #: tags of recently seen (field, value) pairs: job and action names repeat a lot.
        self._tag_cache: dict[tuple[str, str], bytes] = {}

    @property
    def key_id(self) -> str:
        """A public fingerprint (16 hex digits, one-way): tells which master key wrapped a data key."""
        return self._key_id

    def tag(self, field: str, value: str) -> bytes:
        """HMAC-SHA256 search tag of ``value`` for ``field`` (domain-separated per field)."""
        cached = self._tag_cache.get((field, value))
        if cached is None:
            # surrogatepass: a lone surrogate (a non-UTF-8 argv) gets bytes no stored value has
            msg = field.encode() + b"\x00" + value.encode("utf-8", "surrogatepass")
            cached = hmac.digest(self._tag_key, msg, hashlib.sha256)
            if len(self._tag_cache) >= _TAG_CACHE_SIZE:
                self._tag_cache.clear()
            self._tag_cache[(field, value)] = cached
        return cached

    def wrap(self, version: int, data_key: bytes, *, purpose: bytes = _DATA_PURPOSE) -> bytes:
        """``data_key`` encrypted under the wrap key, bound to its version and purpose (data / signing)."""
        nonce = os.urandom(_NONCE_BYTES)
        return nonce + AESGCM(self._wrap_key).encrypt(nonce, data_key, _wrap_aad(version, purpose))

    def unwrap(self, version: int, wrapped: bytes, *, purpose: bytes = _DATA_PURPOSE) -> bytes:
        try:
            return AESGCM(self._wrap_key).decrypt(
                wrapped[:_NONCE_BYTES], wrapped[_NONCE_BYTES:], _wrap_aad(version, purpose)
            )
        except (InvalidTag, ValueError) as exc:
            what = "data key" if purpose == _DATA_PURPOSE else "signing key"
            raise KeyVersionUnusable(
                f"the master key (id {self.key_id}) cannot unwrap audit {what} v{version}"
            ) from exc

    def __repr__(self) -> str:
        return f"MasterKey(id={self._key_id})"

    __str__ = __repr__


def _hkdf(material: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=KEY_BYTES, salt=None, info=info).derive(material)


def _wrap_aad(version: int, purpose: bytes) -> bytes:
    return purpose + struct.pack(">Q", version)


def decode_key_text(text: bytes, *, what: str) -> bytes:
    """32 key bytes from base64 or hex text (comment lines starting with '#' ignored)."""
    lines = [ln.strip() for ln in text.splitlines() if ln.strip() and not ln.strip().startswith(b"#")]
    body = b"".join(lines)
    decoded: bytes | None = None
    if len(body) == 2 * KEY_BYTES:
        with contextlib.suppress(ValueError):
            decoded = bytes.fromhex(body.decode("ascii", "replace"))
    if decoded is None:
        with contextlib.suppress(binascii.Error, ValueError):
            decoded = base64.b64decode(body, validate=True)
    if decoded is None or len(decoded) != KEY_BYTES:
        # Never echo the text: it may be (part of) a key.
        raise KeySourceError(f"{what} does not hold a {KEY_BYTES}-byte key as base64 or hex")
    return decoded


# --------------------------------------------------------------------------- key sources


class KeySource(Protocol):
    """Where the master key comes from."""

    @property
    def kind(self) -> str:
        """ "file" | "passphrase" | "command"; stored in key rows' params."""
        ...

    def describe(self) -> str:
        """Safe to log: a path or command name, never key material."""
        ...

    def master_key(self, stored: Mapping[str, Any] | None) -> tuple[MasterKey, dict[str, Any]]:
        """The master key, plus the params to store with new key rows.

        ``stored`` is the params of the oldest stored key row (None on a new store);
        a passphrase source takes its KDF salt and cost from there.
        """
        ...


@dataclass(frozen=True, slots=True)
class KeyFileSource:
    """A key file made by ``keys generate``; refused when group or others may read it."""

    path: Path
    kind: str = "file"

    def describe(self) -> str:
        return f"key file {self.path}"

    def master_key(self, stored: Mapping[str, Any] | None) -> tuple[MasterKey, dict[str, Any]]:
        return read_key_file(self.path), {"source": self.kind}


@dataclass(frozen=True, slots=True)
class CommandSource:
    """An external command that prints the key as base64 or hex (a KMS CLI). No shell; stderr not echoed."""

    argv: tuple[str, ...]
    timeout_s: float = 30.0
    kind: str = "command"

    def describe(self) -> str:
        return f"key command {self.argv[0]!r}" if self.argv else "empty key command"

    def master_key(self, stored: Mapping[str, Any] | None) -> tuple[MasterKey, dict[str, Any]]:
        return MasterKey(run_key_command(self.argv, timeout_s=self.timeout_s)), {"source": self.kind}


@dataclass(frozen=True, slots=True)
class KdfParams:
    """A memory-hard KDF's name, salt and cost; public, kept in key rows' params."""

    name: str  # "argon2id" | "scrypt"
    salt: bytes
    #: argon2id: iterations, lanes, memory_cost (KiB); scrypt: n, r, p.
    cost: Mapping[str, int]

    @classmethod
    def new(cls, *, argon2_memory_kib: int = 64 * 1024, argon2_iterations: int = 3) -> KdfParams:
        salt = os.urandom(16)
        if HAVE_ARGON2:
            cost = {"iterations": argon2_iterations, "lanes": 4, "memory_cost": argon2_memory_kib}
            return cls("argon2id", salt, cost)
        return cls("scrypt", salt, {"n": 2**17, "r": 8, "p": 1})  # pragma: no cover

    def to_json(self) -> dict[str, Any]:
        return {"name": self.name, "salt": base64.b64encode(self.salt).decode(), **self.cost}

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> KdfParams:
        try:
            name = str(data["name"])
            salt = base64.b64decode(str(data["salt"]), validate=True)
            keys = ("iterations", "lanes", "memory_cost") if name == "argon2id" else ("n", "r", "p")
            if name not in {"argon2id", "scrypt"}:
                raise ValueError(name)
            return cls(name, salt, {k: int(data[k]) for k in keys})
        except (KeyError, ValueError, TypeError, binascii.Error) as exc:
            raise KeySourceError("stored passphrase KDF parameters are unreadable") from exc

    def derive(self, passphrase: bytes) -> bytes:
        if self.name == "argon2id":
            if not HAVE_ARGON2:  # pragma: no cover
                raise KeySourceError("the key rows use Argon2id but this cryptography build lacks it")
            return Argon2id(
                salt=self.salt,
                length=KEY_BYTES,
                iterations=self.cost["iterations"],
                lanes=self.cost["lanes"],
                memory_cost=self.cost["memory_cost"],
            ).derive(passphrase)
        return Scrypt(
            salt=self.salt, length=KEY_BYTES, n=self.cost["n"], r=self.cost["r"], p=self.cost["p"]
        ).derive(passphrase)


@dataclass(frozen=True, slots=True)
class PassphraseSource:
    """A passphrase stretched by Argon2id/Scrypt; the salt lives in the oldest key row's params."""

    passphrase: Secret
    #: KDF for a brand-new store (tests pass cheap ones); ignored once key rows exist.
    new_kdf: KdfParams | None = None
    kind: str = "passphrase"

    def describe(self) -> str:
        return "passphrase"

    def master_key(self, stored: Mapping[str, Any] | None) -> tuple[MasterKey, dict[str, Any]]:
        if stored is not None and "kdf" in stored:
            kdf = KdfParams.from_json(stored["kdf"])
        elif stored is not None:
            raise KeySourceError(
                f"the audit keys were made from a {stored.get('source')!r} source, not a passphrase"
            )
        else:
            kdf = self.new_kdf or KdfParams.new()
        return MasterKey(kdf.derive(self.passphrase.reveal())), {"source": self.kind, "kdf": kdf.to_json()}


def key_source_from_settings(settings: Settings) -> KeySource:
    """The one key source the config names; the default is <state_dir>/audit.key."""
    cfg = settings.audit
    chosen = [
        n
        for n, v in (
            ("key_file", cfg.key_file),
            ("passphrase", cfg.passphrase),
            ("key_command", cfg.key_command),
        )
        if v
    ]
    if len(chosen) > 1:
        raise KeySourceError(
            f"audit: set only one of key_file, passphrase, key_command (got {', '.join(chosen)})"
        )
    if cfg.passphrase is not None:
        return PassphraseSource(read_secret(cfg.passphrase))
    if cfg.key_command:
        return CommandSource(tuple(cfg.key_command), timeout_s=cfg.key_command_timeout_s)
    return KeyFileSource(default_key_file(settings))


def default_key_file(settings: Settings) -> Path:
    return settings.audit.key_file or settings.state_dir / "audit.key"


# --------------------------------------------------------------------------- key files and commands


def generate_key_file(path: Path) -> None:
    """Write a new random master key to ``path`` with mode 0600; never overwrites."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    material = base64.b64encode(os.urandom(KEY_BYTES)).decode()
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError as exc:
        raise KeySourceError(f"{path} already exists; refusing to overwrite a key") from exc
    except OSError as exc:
        raise KeySourceError(f"cannot create key file {path}: {exc.strerror}") from exc
    try:
        os.fchmod(fd, 0o600)  # whatever the umask
        os.write(fd, f"{_KEY_FILE_HEADER}\n{material}\n".encode())
        os.fsync(fd)
    finally:
        os.close(fd)


def ensure_key_file(path: Path) -> bool:
    """Create the key file if it does not exist (first start of a demo/default install); True if created."""
    try:
        generate_key_file(path)
    except KeySourceError:
        if path.exists():
            return False
        raise
    return True


def read_key_file(path: Path) -> MasterKey:
    """Read a master key file, refusing one that group or others may read or write."""
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        hint = " (make one with `flink-gitops keys generate`)" if isinstance(exc, FileNotFoundError) else ""
        raise KeySourceError(f"cannot open audit key file {path}: {exc.strerror}{hint}") from exc
    try:
        st = os.fstat(fd)
        if not stat.S_ISREG(st.st_mode):
            raise KeySourceError(f"audit key file {path} is not a regular file")
        if st.st_mode & 0o077:
            raise KeySourceError(
                f"audit key file {path} has mode {stat.S_IMODE(st.st_mode):04o}; refusing a key that "
                f"group or others can access (chmod 600 {path})"
            )
        with os.fdopen(fd, "rb", closefd=False) as fh:
            text = fh.read(4096)
    finally:
        os.close(fd)
    return MasterKey(decode_key_text(text, what=f"audit key file {path}"))


def run_key_command(argv: Sequence[str], *, timeout_s: float) -> bytes:
    """Run ``argv`` (no shell) and read a base64/hex key from its stdout. Its stderr is never echoed."""
    if not argv:
        raise KeySourceError("audit.key_command is empty")
    name = os.path.basename(argv[0])
    try:
        proc = subprocess.run(
            list(argv), capture_output=True, timeout=timeout_s, check=False, stdin=subprocess.DEVNULL
        )
    except subprocess.TimeoutExpired as exc:
        exc.output = exc.stderr = None  # drop partial output (may be key material) before chaining
        raise KeyCommandUnavailable(f"key command {name!r} did not finish within {timeout_s:g} s") from exc
    except OSError as exc:
        raise KeySourceError(f"cannot run key command {name!r}: {exc.strerror}") from exc
    if proc.returncode != 0:
        raise KeyCommandUnavailable(
            f"key command {name!r} exited with status {proc.returncode} "
            "(its stderr is not shown: it may hold secrets)"
        )
    return decode_key_text(proc.stdout, what=f"the output of key command {name!r}")


# --------------------------------------------------------------------------- data keys


class AuditKeyStore(Protocol):
    """The two store calls the key ring needs (record.store.Store has them)."""

    def put_audit_key(self, row: AuditKeyRow) -> None: ...

    def audit_keys(self) -> list[AuditKeyRow | UnreadableAuditKeyRow]: ...


def endorsement_message(version: int, endorsed_by: int, public_key: bytes) -> bytes:
    """What signing key ``endorsed_by`` signs to introduce the signing key of ``version``."""
    return _ENDORSE_DOMAIN + struct.pack(">qq", version, endorsed_by) + public_key


def public_key_bytes(key: Ed25519PublicKey) -> bytes:
    return key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)


@dataclass(frozen=True, slots=True)
class StoredSigningKey:
    """The public part of a key row's signing key, as an auditor without the master key reads it."""

    version: int
    public_key: bytes  # raw Ed25519, 32 bytes
    endorsed_by: int | None  # the older version whose signing key signed this one (None: the first)
    endorsement: bytes | None

    @classmethod
    def from_params(cls, version: int, params: Mapping[str, Any]) -> StoredSigningKey:
        """Raises ValueError when the params carry no readable signing key."""
        try:
            public = base64.b64decode(str(params["signing_public_key"]), validate=True)
            by = params.get("endorsed_by")
            sig = params.get("endorsement")
            if len(public) != 32 or (by is not None and not isinstance(by, int)) or isinstance(by, bool):
                raise ValueError("signing key fields")
            endorsement = None if sig is None else base64.b64decode(str(sig), validate=True)
        except (KeyError, binascii.Error, TypeError) as exc:
            raise ValueError("no readable signing public key") from exc
        return cls(version, public, by, endorsement)


@dataclass(frozen=True, slots=True)
class DataKey:
    """One key version: the data key (AES-256-GCM) and the chain's signing key (Ed25519)."""

    version: int
    created_at: datetime
    aead: AESGCM
    signer: Ed25519PrivateKey
    public_key: bytes  # raw Ed25519 public key of ``signer``

    def sign(self, message: bytes) -> bytes:
        return self.signer.sign(message)

    def __repr__(self) -> str:
        return f"DataKey(version={self.version}, created_at={self.created_at.isoformat()})"


class KeyRing:
    """The unwrapped data and signing keys, by version, and the master key's tagger.

    ``open`` creates key version 1 on a new store. A version whose row does not unwrap (corrupt
    or forged) is kept in :meth:`broken` with the reason, so a verifier still checks everything
    the other versions decrypt. Thread-safe.
    """

    def __init__(self, store: AuditKeyStore, master: MasterKey, params: dict[str, Any]) -> None:
        self._store = store
        self._master = master
        self._params = params
        self._keys: dict[int, DataKey] = {}
        self._broken: dict[int, str] = {}
        self._unreadable: list[str] = []
        self._lock = threading.Lock()

    @classmethod
    def open(
        cls,
        store: AuditKeyStore,
        source: KeySource,
        *,
        now: datetime,
        create: bool = True,
        require_current: bool | None = None,
    ) -> KeyRing:
        """The ring of ``store`` under ``source``'s master key.

        Raises WrongMasterKey when key rows exist but the master key unwraps none of them; with
        ``require_current`` (default: ``create``, i.e. for writers) also KeyVersionUnusable when
        the newest version does not unwrap (appending under an older key would hide it).
        """
        rows = store.audit_keys()
        first = next((r for r in rows if isinstance(r, AuditKeyRow)), None)
        master, params = source.master_key(first.params if first is not None else None)
        params["master_key_id"] = master.key_id
        ring = cls(store, master, params)
        ring._load(rows)
        if rows and not ring._keys:
            detail = "; ".join(ring.problems()) or "no key row is readable"
            raise WrongMasterKey(f"the configured audit master key unwraps none of the data keys: {detail}")
        if not ring._keys and create:
            ring.add_version(now)
        if create if require_current is None else require_current:
            newest = max([*ring._keys, *ring._broken], default=0)
            if newest in ring._broken:
                raise KeyVersionUnusable(
                    f"the newest audit key v{newest} is unusable ({ring._broken[newest]}); refusing to "
                    "append under an older key: run `flink-gitops audit verify`"
                )
        return ring

    def _load(self, rows: list[AuditKeyRow | UnreadableAuditKeyRow]) -> None:
        broken: dict[int, str] = {}
        unreadable: list[str] = []
        for row in rows:
            if isinstance(row, UnreadableAuditKeyRow):
                if row.version is None:
                    unreadable.append(f"a key row is unreadable: {row.problem}")
                else:
                    broken[row.version] = f"its key row is unreadable: {row.problem}"
                continue
            if row.version in self._keys:
                continue
            try:
                self._keys[row.version] = self._unwrap_row(row)
            except KeyError_ as exc:
                broken[row.version] = str(exc)
        self._broken = {v: why for v, why in broken.items() if v not in self._keys}
        self._unreadable = unreadable

    def _unwrap_row(self, row: AuditKeyRow) -> DataKey:
        stored_id = row.params.get("master_key_id")
        if stored_id is not None and stored_id != self._master.key_id:
            raise WrongMasterKey(
                f"audit data key v{row.version} was wrapped under master key id {stored_id}; the "
                f"configured key has id {self._master.key_id}"
            )
        material = self._master.unwrap(row.version, row.wrapped_key)
        try:
            wrapped_signer = base64.b64decode(str(row.params["signing_key"]), validate=True)
            stored = StoredSigningKey.from_params(row.version, row.params)
        except (KeyError, binascii.Error, ValueError) as exc:
            raise KeyVersionUnusable(f"audit key v{row.version} has no readable signing key") from exc
        raw = self._master.unwrap(row.version, wrapped_signer, purpose=_SIGNING_PURPOSE)
        try:
            signer = Ed25519PrivateKey.from_private_bytes(raw)
        except ValueError as exc:
            raise KeyVersionUnusable(f"audit key v{row.version}: the signing key is malformed") from exc
        public = public_key_bytes(signer.public_key())
        if public != stored.public_key:
            raise KeyVersionUnusable(
                f"audit key v{row.version}: the stored signing public key is not the wrapped key's"
            )
        return DataKey(row.version, utc(row.created_at), AESGCM(material), signer, public)

    @property
    def master(self) -> MasterKey:
        return self._master

    def current(self) -> DataKey:
        with self._lock:
            if not self._keys:
                raise UnknownKeyVersion("the store holds no audit data key yet")
            return self._keys[max(self._keys)]

    def versions(self) -> list[int]:
        """The versions that unwrap."""
        with self._lock:
            return sorted(self._keys)

    def broken(self) -> dict[int, str]:
        """Versions whose rows exist but do not unwrap, with the reason (no key material)."""
        with self._lock:
            return dict(self._broken)

    def problems(self) -> list[str]:
        """Every key row problem, one line each."""
        with self._lock:
            return [*(f"v{v}: {why}" for v, why in sorted(self._broken.items())), *self._unreadable]

    def public_keys(self) -> dict[int, bytes]:
        """Each usable version's signing public key (raw Ed25519), derived from its unwrapped private key."""
        with self._lock:
            return {v: k.public_key for v, k in sorted(self._keys.items())}

    def get(self, version: int) -> DataKey:
        with self._lock:
            key = self._keys.get(version)
            why = self._broken.get(version)
        if key is None and why is None:
            self.refresh()
            with self._lock:
                key = self._keys.get(version)
                why = self._broken.get(version)
        if key is None:
            if why is not None:
                raise KeyVersionUnusable(f"audit key v{version} is unusable: {why}")
            raise UnknownKeyVersion(f"no audit data key v{version} in the store")
        return key

    def refresh(self) -> None:
        """Pick up versions another process added."""
        rows = self._store.audit_keys()
        with self._lock:
            self._load(rows)

    def add_version(self, now: datetime) -> DataKey:
        """Rotate: store new random data and signing keys as the next version; on a lost race, adopt
        the winner's. The new signing key is endorsed by the current one (its signature over the new
        public key, in the key row), so an auditor who trusts the old public key can trust the new one.
        """
        for _ in range(5):
            self.refresh()
            with self._lock:
                version = max([*self._keys, *self._broken], default=0) + 1
                endorser = self._keys[max(self._keys)] if self._keys else None
            material = AESGCM.generate_key(bit_length=256)
            signer = Ed25519PrivateKey.generate()
            public = public_key_bytes(signer.public_key())
            raw_signer = signer.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()
            )
            params = dict(self._params) | {
                "signing_public_key": base64.b64encode(public).decode(),
                "signing_key": base64.b64encode(
                    self._master.wrap(version, raw_signer, purpose=_SIGNING_PURPOSE)
                ).decode(),
            }
            if endorser is not None:
                params["endorsed_by"] = endorser.version
                params["endorsement"] = base64.b64encode(
                    endorser.sign(endorsement_message(version, endorser.version, public))
                ).decode()
            row = AuditKeyRow(
                version=version,
                created_at=now,
                wrapped_key=self._master.wrap(version, material),
                params=params,
            )
            try:
                self._store.put_audit_key(row)
            except DuplicateAuditKey:  # a concurrent rotation took this version: adopt it or try the next
                self.refresh()
                with self._lock:
                    if version in self._keys and version == max(self._keys):
                        return self._keys[version]
                continue
            key = DataKey(version, utc(now), AESGCM(material), signer, public)
            with self._lock:
                self._keys[version] = key
            return key
        raise KeyError_("could not add an audit data key version after 5 tries")

    def __repr__(self) -> str:
        return f"KeyRing(master={self._master!r}, versions={sorted(self._keys)})"
