"""Pure helpers of source.git: URL scrubbing, credential detection, SSH command composition."""

from __future__ import annotations

import shlex
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.secrets import SecretRef
from flink_gitops.source.errors import RemoteUnreachableError
from flink_gitops.source.git import (
    host_key_failure,
    is_ssh_url,
    scrub_url,
    ssh_command,
    ssh_host,
    url_has_credentials,
)
from tests.source.conftest import SourceFactory

secretish = st.text(
    alphabet=st.characters(blacklist_characters="@/ \t\r\n", blacklist_categories=("Cs", "Cc")), min_size=1
)


@given(user=secretish, password=secretish, scheme=st.sampled_from(["https", "http", "ssh", "git+ssh", "ftp"]))
def test_scrub_url_never_shows_userinfo(user: str, password: str, scheme: str) -> None:
    url = f"{scheme}://{user}:{password}@example.test/org/repo.git"
    shown = scrub_url(url)
    assert f"{user}:{password}" not in shown
    assert shown.endswith("@example.test/org/repo.git")
    # also inside longer text, e.g. a git error message
    assert f"{user}:{password}@" not in scrub_url(f"fatal: unable to access '{url}': 401")


def test_scrub_url_keeps_plain_urls() -> None:
    for url in (
        "https://example.test/r.git",
        "git://127.0.0.1:9418/r.git",
        "/srv/repo.git",
        "git@host:org/r.git",
    ):
        assert scrub_url(url) == url


@pytest.mark.parametrize(
    ("url", "has"),
    [
        ("https://example.test/r.git", False),
        ("https://token@example.test/r.git", True),
        ("https://user:pw@example.test/r.git", True),
        ("ssh://git@example.test/r.git", False),
        ("ssh://git:pw@example.test/r.git", True),
        ("git@example.test:org/r.git", False),
        ("/srv/r.git", False),
    ],
)
def test_url_has_credentials(url: str, has: bool) -> None:
    assert url_has_credentials(url) is has


@pytest.mark.parametrize(
    ("url", "ssh"),
    [
        ("ssh://git@example.test/r.git", True),
        ("git+ssh://example.test/r.git", True),
        ("git@example.test:org/r.git", True),
        ("https://example.test/r.git", False),
        ("git://example.test/r.git", False),
        ("file:///srv/r.git", False),
        ("/srv/r.git", False),
    ],
)
def test_is_ssh_url(url: str, ssh: bool) -> None:
    assert is_ssh_url(url) is ssh


def test_ssh_command_pins_key_and_host_keys(tmp_path: Path) -> None:
    key = tmp_path / "dir with space" / "id_ed25519"
    known = tmp_path / "known hosts"
    argv = shlex.split(ssh_command(key, known))
    assert argv[0] == "ssh"
    opts = {argv[i + 1] for i, a in enumerate(argv) if a == "-o"}
    assert {"IdentitiesOnly=yes", "StrictHostKeyChecking=yes", "BatchMode=yes"} <= opts
    assert f"UserKnownHostsFile={known}" in opts
    assert argv[argv.index("-i") + 1] == str(key)
    # without a key or known_hosts: still strict, no identity options
    bare = shlex.split(ssh_command(None, None))
    assert "-i" not in bare
    assert "StrictHostKeyChecking=yes" in bare


@pytest.mark.git
def test_ssh_command_is_accepted_by_the_real_ssh_client(make_source: SourceFactory, tmp_path: Path) -> None:
    from tests.fixtures.gitserver import free_port

    key = tmp_path / "keys dir" / "id_ed25519"
    key.parent.mkdir()
    key.write_text("not a real key\n")
    key.chmod(0o600)
    known = tmp_path / "known_hosts"
    known.write_text("")
    source = make_source(
        f"ssh://git@127.0.0.1:{free_port()}/r.git", ssh_key=SecretRef(file=key), known_hosts_file=known
    )
    result = source.poll()
    # ssh ran with our options (a bad option would fail differently) and could not connect
    assert type(result.error) is RemoteUnreachableError, result.error
    assert "connection refused" in str(result.error).lower()


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("ssh://git@example.test/r.git", "example.test"),
        ("ssh://git@example.test:22/r.git", "example.test"),
        ("ssh://git@example.test:2222/r.git", "[example.test]:2222"),
        ("git+ssh://example.test:2222/r.git", "[example.test]:2222"),
        ("git@example.test:org/r.git", "example.test"),
    ],
)
def test_ssh_host_is_named_as_known_hosts_names_it(url: str, host: str) -> None:
    assert ssh_host(url) == host


def test_host_key_failure_names_the_host_and_the_offered_key() -> None:
    changed = (
        "The fingerprint for the ED25519 key sent by the remote host is\n"
        "SHA256:QgZqGByT/WAyLlDMx49t3Vj0GB+4iw2M9ZmV0KokAVQ.\n"
        "Host key for [h.test]:2222 has changed and you have requested strict checking.\n"
        "Host key verification failed.\n"
    )
    text = host_key_failure(changed, "ssh://git@h.test:2222/r.git", "/etc/kh")
    assert "host key of [h.test]:2222 does NOT match the one in /etc/kh" in text
    assert "offered SHA256:QgZqGByT/WAyLlDMx49t3Vj0GB+4iw2M9ZmV0KokAVQ;" in text
    unknown = "No ED25519 host key is known for h.test and you have requested strict checking.\n"
    assert "host h.test has no key in /etc/kh" in host_key_failure(unknown, "git@h.test:r.git", "/etc/kh")
    # a refusal ssh does not explain (a revoked key, say) still names the host, from the URL
    bare = host_key_failure("Host key verification failed.\n", "ssh://git@h.test:2222/r.git", "/etc/kh")
    assert bare == "host key of [h.test]:2222 not accepted with /etc/kh; refused"
