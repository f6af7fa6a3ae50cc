"""The SSH transport against a real loopback sshd: key login, host keys pinned (never trusted on first use).

The server is ``tests.fixtures.gitserver.sshd`` (our own sshd process, its own host key, one authorized
client key). The key path and key material never show in errors, logs or the cache.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import shutil
from dataclasses import dataclass
from pathlib import Path

import pytest

from flink_gitops.errors import PermanentError
from flink_gitops.secrets import SecretRef
from flink_gitops.source.errors import AuthError, HostKeyError
from flink_gitops.source.git import GitSource, PollResult
from tests.fixtures import gitserver
from tests.fixtures.gitserver import SshKeys, SshServer, WorkRepo, init_work_repo
from tests.source.conftest import SourceFactory

pytestmark = pytest.mark.git


@dataclass
class SshRemote:
    bare: Path
    url: str
    work: WorkRepo
    #: trusts the server's real host key.
    known_hosts: Path
    #: the authorized client key, copied into a directory of this test (mode 0600).
    key_file: Path

    @property
    def key(self) -> SecretRef:
        return SecretRef(file=self.key_file)


def _copy_key(private: Path, dest: Path, mode: int = 0o600) -> Path:
    dest.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(private, dest)
    dest.chmod(mode)
    return dest


@pytest.fixture
def ssh_remote(sshd: SshServer, tmp_path: Path, git_env: dict[str, str]) -> SshRemote:
    bare, url = sshd.new_remote()
    work = init_work_repo(tmp_path / "work", git_env)
    work.git("remote", "add", "origin", str(bare))
    key = _copy_key(sshd.client_key.private, tmp_path / "deploy keys" / "id_deploy")
    known = sshd.write_known_hosts(tmp_path / "known_hosts")
    return SshRemote(bare, url, work, known, key)


@pytest.fixture
def command_log(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.DEBUG, logger="git.cmd")  # GitPython logs every command line it starts
    return caplog


def _fingerprint(public: str) -> str:
    blob = base64.b64decode(public.split()[1])
    return "SHA256:" + base64.b64encode(hashlib.sha256(blob).digest()).decode().rstrip("=")


def _assert_key_hidden(
    key_file: Path,
    source: GitSource,
    results: list[PollResult],
    logs: list[str],
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Neither the key's path nor any line of its material is in errors, logs, reprs or the cache."""
    material = [
        ln for ln in key_file.read_text(encoding="utf-8").splitlines() if ln and not ln.startswith("-----")
    ]
    assert material
    texts = [repr(source), *logs, *(r.getMessage() for r in caplog.records)]
    for result in results:
        if result.error is not None:
            err = result.error
            texts += [str(err), repr(err), repr(err.__cause__), repr(err.__context__)]
    cache = b"".join(
        p.read_bytes() for p in source.cache_dir.rglob("*") if p.is_file() and not p.is_symlink()
    )
    for needle in [str(key_file), *material]:
        assert not any(needle in text for text in texts), needle
        assert needle.encode() not in cache, needle


def test_clone_and_fetch_over_ssh(
    sshd: SshServer,
    ssh_remote: SshRemote,
    make_source: SourceFactory,
    captured_logs: list[str],
    command_log: pytest.LogCaptureFixture,
) -> None:
    first = ssh_remote.work.commit({"jobs/a.yaml": "a: 1\n"})
    ssh_remote.work.push()
    logins_before = sshd.log.read_text(errors="replace").count("Accepted publickey for")
    known_before = ssh_remote.known_hosts.read_bytes()
    source = make_source(ssh_remote.url, ssh_key=ssh_remote.key, known_hosts_file=ssh_remote.known_hosts)

    cloned = source.poll()
    assert cloned.ok, cloned.error
    assert cloned.changed
    assert cloned.revision is not None
    assert cloned.revision.commit == first
    assert cloned.revision.remote_ref == "refs/heads/main"
    assert cloned.revision.tree.read("jobs/a.yaml") == b"a: 1\n"

    second = ssh_remote.work.commit({"jobs/b.yaml": "b: 2\n"})
    ssh_remote.work.push()
    fetched = source.poll()
    assert fetched.ok, fetched.error
    assert fetched.changed
    assert fetched.revision is not None
    assert fetched.revision.commit == second
    assert source.changed_paths(first, second) == ["jobs/b.yaml"]

    idle = source.poll()
    assert idle.ok
    assert not idle.changed
    assert idle.revision is fetched.revision

    # it really went through sshd, logging in with our key, once per network command
    log = sshd.log.read_text(errors="replace")
    assert log.count("Accepted publickey for") - logins_before >= 4  # ls-remote+fetch, ls-remote+fetch
    assert f"Accepted publickey for {sshd.user} " in log
    assert sshd.client_key.fingerprint in log
    assert ssh_remote.known_hosts.read_bytes() == known_before  # ssh never rewrote our known_hosts
    _assert_key_hidden(ssh_remote.key_file, source, [cloned, fetched, idle], captured_logs, command_log)


def test_changed_host_key_is_refused_and_the_last_good_revision_kept(
    sshd: SshServer,
    ssh_remote: SshRemote,
    ssh_keys: SshKeys,
    make_source: SourceFactory,
    captured_logs: list[str],
    command_log: pytest.LogCaptureFixture,
) -> None:
    first = ssh_remote.work.commit({"a.yaml": "a"})
    ssh_remote.work.push()
    source = make_source(ssh_remote.url, ssh_key=ssh_remote.key, known_hosts_file=ssh_remote.known_hosts)
    assert source.poll().ok

    # the pinned key for this host is now a different one: as if someone sat in the middle
    sshd.write_known_hosts(ssh_remote.known_hosts, ssh_keys.other.public)
    second = ssh_remote.work.commit({"a.yaml": "b"})
    ssh_remote.work.push()
    refused = source.poll()

    assert isinstance(refused.error, HostKeyError)
    assert isinstance(refused.error, AuthError)
    assert isinstance(refused.error, PermanentError)
    assert not refused.error.retryable
    message = str(refused.error)
    assert sshd.host in message
    assert "does NOT match" in message
    assert str(ssh_remote.known_hosts) in message
    assert _fingerprint(sshd.host_key) in message  # what the server offered, to compare out of band
    assert refused.revision is not None
    assert refused.revision.commit == first
    assert not refused.changed
    assert any(line.startswith("ERROR ") and "HostKeyError" in line for line in captured_logs)

    # the operator restores the right key: polling resumes
    sshd.write_known_hosts(ssh_remote.known_hosts)
    resumed = source.poll()
    assert resumed.ok, resumed.error
    assert resumed.revision is not None
    assert resumed.revision.commit == second
    _assert_key_hidden(ssh_remote.key_file, source, [refused, resumed], captured_logs, command_log)


@pytest.mark.parametrize("known_hosts", ["empty file", "not configured"])
def test_unknown_host_key_is_never_trusted_on_first_use(
    sshd: SshServer,
    ssh_remote: SshRemote,
    make_source: SourceFactory,
    tmp_path: Path,
    known_hosts: str,
    captured_logs: list[str],
    command_log: pytest.LogCaptureFixture,
) -> None:
    ssh_remote.work.commit({"a.yaml": "a"})
    ssh_remote.work.push()
    empty = tmp_path / "empty_known_hosts"
    empty.write_text("")
    file = empty if known_hosts == "empty file" else None
    source = make_source(ssh_remote.url, ssh_key=ssh_remote.key, known_hosts_file=file)

    results = [source.poll(), source.poll()]  # a second try does not trust what the first one saw
    for result in results:
        assert isinstance(result.error, HostKeyError), result.error
        assert result.revision is None
        assert sshd.host in str(result.error)
        assert "never trusted on first use" in str(result.error)
    assert empty.read_text() == ""
    home = tmp_path / "daemon-home"  # the daemon's HOME (tests/source/conftest.py)
    assert not (home / ".ssh" / "known_hosts").exists()
    _assert_key_hidden(ssh_remote.key_file, source, results, captured_logs, command_log)


def test_wrong_client_key_is_an_auth_error(
    sshd: SshServer,
    ssh_remote: SshRemote,
    ssh_keys: SshKeys,
    make_source: SourceFactory,
    tmp_path: Path,
    captured_logs: list[str],
    command_log: pytest.LogCaptureFixture,
) -> None:
    ssh_remote.work.commit({"a.yaml": "a"})
    ssh_remote.work.push()
    wrong = _copy_key(ssh_keys.other.private, tmp_path / "wrong keys" / "id_wrong")
    source = make_source(
        ssh_remote.url, ssh_key=SecretRef(file=wrong), known_hosts_file=ssh_remote.known_hosts
    )

    result = source.poll()
    assert type(result.error) is AuthError, result.error
    assert not result.error.retryable
    assert "permission denied (publickey)" in str(result.error).lower()
    assert result.revision is None
    accepted = [ln for ln in sshd.log.read_text(errors="replace").splitlines() if "Accepted publickey" in ln]
    assert not any(ssh_keys.other.fingerprint in ln for ln in accepted)
    _assert_key_hidden(wrong, source, [result], captured_logs, command_log)


def test_key_file_ssh_ignores_is_an_auth_error_that_hides_the_path(
    ssh_remote: SshRemote,
    make_source: SourceFactory,
    tmp_path: Path,
    captured_logs: list[str],
    command_log: pytest.LogCaptureFixture,
) -> None:
    ssh_remote.work.commit({"a.yaml": "a"})
    ssh_remote.work.push()
    # readable by others: ssh prints the path ("bad permissions") and ignores the key
    loose = _copy_key(ssh_remote.key_file, tmp_path / "loose keys" / "id_loose", mode=0o644)
    source = make_source(
        ssh_remote.url, ssh_key=SecretRef(file=loose), known_hosts_file=ssh_remote.known_hosts
    )

    result = source.poll()
    assert type(result.error) is AuthError, result.error
    assert "<git.ssh_key>" in str(result.error)  # where ssh named the file
    assert "bad permissions" in str(result.error)
    assert "permission denied (publickey)" in str(result.error).lower()
    assert "@@@" not in str(result.error)  # ssh's banner frame is dropped, its words kept
    _assert_key_hidden(loose, source, [result], captured_logs, command_log)


def test_missing_sshd_fails_the_fixture_naming_the_package(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(gitserver, "SSHD", tmp_path / "no-such-sshd")
    with pytest.raises(pytest.fail.Exception, match="openssh-server"), gitserver.running_sshd(tmp_path):
        pytest.fail("the fixture started without sshd")  # pragma: no cover
