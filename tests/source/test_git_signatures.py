"""Signature policy on real signed commits: GPG (dedicated GNUPGHOME) and SSH (allowed_signers)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flink_gitops.errors import ConfigError
from flink_gitops.settings import SignaturePolicy
from flink_gitops.source.errors import SignatureError
from tests.fixtures.gitserver import GpgKeys, Remote, SshKeys, use_gpg_key, use_ssh_key
from tests.source.conftest import SourceFactory

pytestmark = pytest.mark.git


def gpg_policy(keys: GpgKeys, allowed: list[str] | None = None) -> SignaturePolicy:
    return SignaturePolicy(mode="gpg", gpg_home=keys.trust_home, allowed_fingerprints=allowed or [])


def ssh_policy(keys: SshKeys) -> SignaturePolicy:
    return SignaturePolicy(mode="ssh", allowed_signers_file=keys.allowed_signers)


@pytest.mark.parametrize("method", ["gpg", "ssh"])
def test_signed_commit_accepted_with_signer(
    remote: Remote, gpg_keys: GpgKeys, ssh_keys: SshKeys, make_source: SourceFactory, method: str
) -> None:
    if method == "gpg":
        use_gpg_key(remote.work, gpg_keys.trusted)
        policy, key, identity = gpg_policy(gpg_keys), gpg_keys.trusted.fingerprint, gpg_keys.trusted.uid
    else:
        use_ssh_key(remote.work, ssh_keys.trusted)
        policy, key, identity = ssh_policy(ssh_keys), ssh_keys.trusted.fingerprint, ssh_keys.trusted.principal
    head = remote.work.commit({"a.yaml": "a"}, sign=method)
    remote.work.push()
    result = make_source(remote.url, signatures=policy).poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == head
    signer = result.revision.signer
    assert signer is not None
    assert signer.method == method
    assert signer.key == key
    assert signer.identity == identity


def test_gpg_unsigned_and_foreign_signatures_refused_last_good_kept(
    remote: Remote, gpg_keys: GpgKeys, make_source: SourceFactory
) -> None:
    use_gpg_key(remote.work, gpg_keys.trusted)
    good = remote.work.commit({"a.yaml": "good"}, sign="gpg")
    remote.work.push()
    source = make_source(remote.url, signatures=gpg_policy(gpg_keys))
    assert source.poll().ok

    unsigned = remote.work.commit({"a.yaml": "unsigned"})
    remote.work.push()
    result = source.poll()
    assert isinstance(result.error, SignatureError)
    assert result.error.commit == unsigned
    assert "not signed" in str(result.error)
    assert result.revision is not None
    assert result.revision.commit == good
    assert not result.changed

    use_gpg_key(remote.work, gpg_keys.other)
    foreign = remote.work.commit({"a.yaml": "foreign"}, sign="gpg")
    remote.work.push()
    result = source.poll()
    assert isinstance(result.error, SignatureError)
    assert result.error.commit == foreign
    assert "not in git.signatures.gpg_home" in str(result.error)
    assert result.revision is not None
    assert result.revision.tree.read("a.yaml") == b"good"

    # a trusted signature on top of the refused ones is taken again (only HEAD is checked)
    use_gpg_key(remote.work, gpg_keys.trusted)
    fixed = remote.work.commit({"a.yaml": "fixed"}, sign="gpg")
    remote.work.push()
    result = source.poll()
    assert result.ok, result.error
    assert result.revision is not None
    assert result.revision.commit == fixed


def test_gpg_key_outside_the_fingerprint_allow_list_refused(
    remote: Remote, gpg_keys: GpgKeys, make_source: SourceFactory
) -> None:
    use_gpg_key(remote.work, gpg_keys.trusted)
    remote.work.commit({"a.yaml": "a"}, sign="gpg")
    remote.work.push()
    refused = make_source(remote.url, signatures=gpg_policy(gpg_keys, ["AB" * 20])).poll()
    assert isinstance(refused.error, SignatureError)
    assert "allowed_fingerprints" in str(refused.error)
    assert refused.revision is None
    spaced = " ".join(gpg_keys.trusted.fingerprint[i : i + 4] for i in range(0, 40, 4)).lower()
    allowed = make_source(remote.url, cache="c2", signatures=gpg_policy(gpg_keys, [spaced])).poll()
    assert allowed.ok, allowed.error


def test_ssh_signature_by_unlisted_key_or_unsigned_refused(
    remote: Remote, ssh_keys: SshKeys, make_source: SourceFactory
) -> None:
    use_ssh_key(remote.work, ssh_keys.trusted)
    good = remote.work.commit({"a.yaml": "good"}, sign="ssh")
    remote.work.push()
    source = make_source(remote.url, signatures=ssh_policy(ssh_keys))
    assert source.poll().ok

    use_ssh_key(remote.work, ssh_keys.other)
    remote.work.commit({"a.yaml": "other"}, sign="ssh")
    remote.work.push()
    result = source.poll()
    assert isinstance(result.error, SignatureError)
    assert "allowed_signers_file" in str(result.error)
    assert result.revision is not None
    assert result.revision.commit == good

    remote.work.commit({"a.yaml": "unsigned"})
    remote.work.push()
    result = source.poll()
    assert isinstance(result.error, SignatureError)
    assert "not signed" in str(result.error)
    assert result.revision is not None
    assert result.revision.commit == good


def test_signature_of_the_wrong_kind_refused(
    remote: Remote, gpg_keys: GpgKeys, ssh_keys: SshKeys, make_source: SourceFactory
) -> None:
    use_ssh_key(remote.work, ssh_keys.trusted)
    remote.work.commit({"a.yaml": "ssh"}, sign="ssh")
    remote.work.push()
    result = make_source(remote.url, signatures=gpg_policy(gpg_keys)).poll()
    assert isinstance(result.error, SignatureError)

    use_gpg_key(remote.work, gpg_keys.trusted)
    remote.work.commit({"a.yaml": "gpg"}, sign="gpg")
    remote.work.push()
    result = make_source(remote.url, cache="c2", signatures=ssh_policy(ssh_keys)).poll()
    assert isinstance(result.error, SignatureError)


def test_policy_without_its_key_material_is_a_config_error(
    make_source: SourceFactory, tmp_path: Path
) -> None:
    with pytest.raises(ConfigError):
        make_source("git://127.0.0.1:1/x.git", signatures=SignaturePolicy(mode="gpg"))
    with pytest.raises(ConfigError):
        make_source("git://127.0.0.1:1/x.git", signatures=SignaturePolicy(mode="ssh"))
