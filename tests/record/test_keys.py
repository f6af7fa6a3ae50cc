"""Audit keys: key files (0600, no overwrite), passphrase KDF, key command, wrapping, no leaks."""

from __future__ import annotations

import base64
import dataclasses
import os
import stat
import sys
from datetime import UTC, datetime
from pathlib import Path

import pytest

from flink_gitops.record.audit import TrustedKeys, record_signing_message
from flink_gitops.record.keys import (
    HAVE_ARGON2,
    CommandSource,
    KdfParams,
    KeyCommandUnavailable,
    KeyFileSource,
    KeyRing,
    KeySourceError,
    KeyVersionUnusable,
    MasterKey,
    PassphraseSource,
    WrongMasterKey,
    decode_key_text,
    ensure_key_file,
    generate_key_file,
    key_source_from_settings,
    read_key_file,
)
from flink_gitops.record.store import AuditKeyRow
from flink_gitops.secrets import Secret, SecretRef
from flink_gitops.settings import AuditConfig, Settings
from tests.record.fakes import FakeAuditStore

NOW = datetime(2026, 1, 1, tzinfo=UTC)
CHEAP_KDF = KdfParams("scrypt", b"s" * 16, {"n": 2**10, "r": 8, "p": 1})


def _key_b64(path: Path) -> str:
    return next(ln for ln in path.read_text().splitlines() if not ln.startswith("#"))


def test_generate_key_file_is_0600_whatever_the_umask_and_never_overwrites(tmp_path: Path) -> None:
    path = tmp_path / "sub" / "audit.key"
    old = os.umask(0)
    try:
        generate_key_file(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.b64decode(_key_b64(path))) == 32
    before = path.read_bytes()
    with pytest.raises(KeySourceError, match="refusing to overwrite"):
        generate_key_file(path)
    assert path.read_bytes() == before
    assert read_key_file(path).key_id == read_key_file(path).key_id


def test_two_generated_keys_differ(tmp_path: Path) -> None:
    generate_key_file(tmp_path / "a")
    generate_key_file(tmp_path / "b")
    assert read_key_file(tmp_path / "a").key_id != read_key_file(tmp_path / "b").key_id


@pytest.mark.parametrize("mode", [0o640, 0o604, 0o660, 0o606])
def test_key_file_readable_by_group_or_others_is_refused(tmp_path: Path, mode: int) -> None:
    path = tmp_path / "audit.key"
    generate_key_file(path)
    path.chmod(mode)
    with pytest.raises(KeySourceError, match="chmod 600") as info:
        read_key_file(path)
    assert _key_b64(path) not in str(info.value)


def test_missing_key_file_names_the_fix(tmp_path: Path) -> None:
    with pytest.raises(KeySourceError, match="keys generate"):
        read_key_file(tmp_path / "nope.key")


def test_key_text_accepts_base64_and_hex_and_rejects_anything_else_without_echoing_it() -> None:
    raw = bytes(range(32))
    assert decode_key_text(base64.b64encode(raw) + b"\n", what="x") == raw
    assert decode_key_text(b"# comment\n" + raw.hex().encode(), what="x") == raw
    for bad in (b"hunter2-not-a-key", base64.b64encode(b"short"), b""):
        with pytest.raises(KeySourceError) as info:
            decode_key_text(bad, what="the test key")
        if bad:
            assert bad.decode() not in str(info.value)


def _script(tmp_path: Path, body: str) -> list[str]:
    path = tmp_path / "kms.py"
    path.write_text(body)
    return [sys.executable, str(path)]


def test_key_command_output_is_the_master_key(tmp_path: Path) -> None:
    raw = os.urandom(32)
    argv = _script(tmp_path, f"print({base64.b64encode(raw).decode()!r})")
    key, params = CommandSource(tuple(argv)).master_key(None)
    assert key.key_id == MasterKey(raw).key_id
    assert params == {"source": "command"}


def test_key_command_failure_does_not_echo_its_stderr(tmp_path: Path) -> None:
    argv = _script(tmp_path, "import sys\nsys.stderr.write('token=SUPERSECRET\\n')\nsys.exit(3)")
    with pytest.raises(KeyCommandUnavailable, match="status 3") as info:
        CommandSource(tuple(argv)).master_key(None)
    assert "SUPERSECRET" not in str(info.value)
    assert info.value.retryable


def test_key_command_timeout_is_temporary(tmp_path: Path) -> None:
    argv = _script(tmp_path, "import sys\nsys.stdin.read()\nimport time\ntime.sleep(60)")
    with pytest.raises(KeyCommandUnavailable, match="did not finish"):
        CommandSource(tuple(argv), timeout_s=0.5).master_key(None)


def test_key_command_that_cannot_start_is_a_config_error(tmp_path: Path) -> None:
    with pytest.raises(KeySourceError, match="cannot run key command"):
        CommandSource((str(tmp_path / "no-such-kms"),)).master_key(None)


def test_passphrase_kdf_params_are_stored_and_reused(tmp_path: Path) -> None:
    store = FakeAuditStore()
    source = PassphraseSource(Secret(b"correct horse battery staple"), new_kdf=CHEAP_KDF)
    ring = KeyRing.open(store, source, now=NOW)
    [row] = store.keys
    assert row.params["kdf"]["name"] == "scrypt"
    assert base64.b64decode(row.params["kdf"]["salt"]) == CHEAP_KDF.salt
    assert "correct horse" not in repr(row.params)
    # Reopened without new_kdf: the stored salt and cost give the same master key.
    again = KeyRing.open(store, PassphraseSource(Secret(b"correct horse battery staple")), now=NOW)
    assert again.master.key_id == ring.master.key_id
    assert again.master.tag("job", "a") == ring.master.tag("job", "a")
    with pytest.raises(WrongMasterKey):
        KeyRing.open(store, PassphraseSource(Secret(b"wrong horse")), now=NOW)


@pytest.mark.skipif(not HAVE_ARGON2, reason="this cryptography build has no Argon2id")
def test_default_passphrase_kdf_is_argon2id_with_rfc9106_cost() -> None:
    kdf = KdfParams.new()
    assert kdf.name == "argon2id"
    assert kdf.cost["memory_cost"] >= 64 * 1024
    assert kdf.cost["iterations"] >= 3
    key = kdf.derive(b"pass")
    assert key == KdfParams.from_json(kdf.to_json()).derive(b"pass")
    assert key != KdfParams.new().derive(b"pass")  # a fresh salt


def test_keyring_creates_version_one_then_rotates_keeping_old_versions(tmp_path: Path) -> None:
    store = FakeAuditStore()
    generate_key_file(tmp_path / "k")
    ring = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)
    assert ring.versions() == [1]
    ring.add_version(NOW)
    assert ring.versions() == [1, 2]
    assert ring.current().version == 2
    # Another process sees both, and its rotation does not collide with ours.
    other = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)
    assert other.versions() == [1, 2]
    assert other.add_version(NOW).version == 3
    assert ring.get(3).version == 3  # picked up on demand
    assert [k.version for k in store.audit_keys()] == [1, 2, 3]


def test_wrong_master_key_is_named_by_key_id_never_by_bytes(tmp_path: Path) -> None:
    store = FakeAuditStore()
    generate_key_file(tmp_path / "a")
    generate_key_file(tmp_path / "b")
    KeyRing.open(store, KeyFileSource(tmp_path / "a"), now=NOW)
    with pytest.raises(WrongMasterKey, match="master key id") as info:
        KeyRing.open(store, KeyFileSource(tmp_path / "b"), now=NOW)
    for name in ("a", "b"):
        assert _key_b64(tmp_path / name) not in str(info.value)


def test_key_material_never_in_reprs(tmp_path: Path) -> None:
    store = FakeAuditStore()
    raw = os.urandom(32)
    (tmp_path / "k").write_text(base64.b64encode(raw).decode())
    (tmp_path / "k").chmod(0o600)
    ring = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)
    shown = " ".join(
        [
            repr(ring),
            str(ring.master),
            repr(ring.current()),
            repr(store.audit_keys()),
            repr(KeyFileSource(tmp_path)),
        ]
    )
    for form in (raw.hex(), base64.b64encode(raw).decode(), repr(raw)):
        assert form not in shown
    secret_source = PassphraseSource(Secret(b"my passphrase"))
    assert "my passphrase" not in repr(secret_source)


def test_key_source_from_settings_picks_exactly_one(tmp_path: Path) -> None:
    default = key_source_from_settings(Settings(state_dir=tmp_path))
    assert default == KeyFileSource(tmp_path / "audit.key")
    cmd = key_source_from_settings(
        Settings(
            state_dir=tmp_path, audit=AuditConfig(key_command=["kms", "decrypt"], key_command_timeout_s=5)
        )
    )
    assert cmd == CommandSource(("kms", "decrypt"), timeout_s=5)
    (tmp_path / "pass").write_text("pw\n")
    both = Settings(
        state_dir=tmp_path,
        audit=AuditConfig(key_file=tmp_path / "k", passphrase=SecretRef(file=tmp_path / "pass")),
    )
    with pytest.raises(KeySourceError, match="only one"):
        key_source_from_settings(both)
    only_pass = Settings(state_dir=tmp_path, audit=AuditConfig(passphrase=SecretRef(file=tmp_path / "pass")))
    assert key_source_from_settings(only_pass).kind == "passphrase"


def test_ensure_key_file_creates_once_and_keeps_the_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "audit.key"
    assert ensure_key_file(path) is True
    first = path.read_bytes()
    assert ensure_key_file(path) is False
    assert path.read_bytes() == first
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_each_version_has_a_signing_key_endorsed_by_the_one_before(tmp_path: Path) -> None:
    store = FakeAuditStore()
    generate_key_file(tmp_path / "k")
    ring = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)
    ring.add_version(NOW)
    ring.add_version(NOW)
    rows = store.keys
    assert "endorsement" not in rows[0].params  # v1 is the root of trust (the exported public key)
    first_export = TrustedKeys({1: ring.public_keys()[1]}, origin="v1 only")
    assert first_export.extend(list(rows)) == {}
    assert first_export.versions() == [1, 2, 3]
    message = record_signing_message(5, 3, b"h" * 32)
    assert first_export.verify(3, message, ring.get(3).sign(message))
    assert not first_export.verify(2, message, ring.get(3).sign(message))
    # The private halves are wrapped, never stored in the clear; the public halves match them.
    for row in rows:
        assert isinstance(row, AuditKeyRow)
        assert len(base64.b64decode(row.params["signing_key"])) == 12 + 32 + 16
        assert base64.b64decode(row.params["signing_public_key"]) == ring.public_keys()[row.version]


def test_a_version_that_does_not_unwrap_is_reported_and_the_others_still_load(tmp_path: Path) -> None:
    store = FakeAuditStore()
    generate_key_file(tmp_path / "k")
    ring = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)
    ring.add_version(NOW)
    ring.add_version(NOW)
    store.keys[1] = dataclasses.replace(store.keys[1], wrapped_key=b"\0" * 60)
    reader = KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW, create=False)
    assert reader.versions() == [1, 3]
    assert list(reader.broken()) == [2]
    assert "cannot unwrap audit data key v2" in reader.problems()[0]
    with pytest.raises(KeyVersionUnusable, match="v2"):
        reader.get(2)
    store.keys[2] = dataclasses.replace(store.keys[2], wrapped_key=b"\0" * 60)
    with pytest.raises(KeyVersionUnusable, match="newest audit key v3"):
        KeyRing.open(store, KeyFileSource(tmp_path / "k"), now=NOW)  # a writer: no appending under v1
