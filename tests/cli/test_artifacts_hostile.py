"""Hostile artifacts and restore paths through the real CLI (subprocesses): ``sync --once`` against a
FAKE Flink that records every request (tests/cli/test_sync_hostile.py) and a real loopback HTTPS
artifact server (tests/fixtures/jarserver.py), and ``validate`` / ``plan`` with a config that sets
savepoint roots and a deny-list.

One repository holds one job per hostile case; one sync runs them all. Each case's job must be
reported with its reason, nothing may be uploaded or run on the cluster, no traceback, bounded
lines, exit 1, and no secret (URL credentials, a query token) may be printed anywhere.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from flink_gitops.clock import SystemClock
from flink_gitops.record.audit import AuditTrail
from flink_gitops.record.store import open_store
from flink_gitops.settings import Settings
from tests.cli.clirun import Run, cli, open_tempdir, remove_tree
from tests.cli.test_sync_hostile import FakeFlink
from tests.fixtures.gitserver import init_work_repo, isolated_env
from tests.fixtures.jarserver import JarServer
from tests.specs.helpers import spec_yaml, write_repo

SECRET = "hunter2-do-not-print"
TOKEN = "t0ken-do-not-print"
JAR = b"PK\x03\x04 served jar\n" * 64
JAR_SHA = hashlib.sha256(JAR).hexdigest()


@pytest.fixture(scope="module")
def top() -> Iterator[Path]:
    path = open_tempdir("fg-artifacts-hostile-")
    yield path
    remove_tree(path)


@pytest.fixture(scope="module")
def server(top: Path) -> Iterator[JarServer]:
    srv = JarServer(top / "tls")
    srv.files["app.jar"] = JAR
    yield srv
    srv.close()


@pytest.fixture(scope="module")
def fake_flink() -> Iterator[FakeFlink]:
    fake = FakeFlink()
    yield fake
    fake.close()


def _config(top: Path, server: JarServer, flink_url: str, **extra: Any) -> Path:
    config = {
        "state_dir": str(top / "state"),
        "clusters": {"default": {"url": flink_url, "max_attempts": 1}},
        "audit": {"key_file": str(top / "audit.key")},
        "allow_unpinned_artifacts": True,
        "artifact_download": {"ca_file": str(server.ca_file), "max_bytes": 1_000_000, "timeout_s": 1},
        "savepoint_roots": ["file:///srv/savepoints", "s3://state/sp"],
        **extra,
    }
    path = top / "config.yaml"
    path.write_text(yaml.safe_dump(config), encoding="utf-8")
    return path


#: job -> (jarURI, jarSha256 or None, what the report must say about it)
def _cases(server: JarServer) -> dict[str, tuple[str, str | None, str]]:
    u = server.url
    return {
        "wrong-sha": (
            u("/jars/app.jar"),
            "0" * 64,
            f"has SHA-256 {JAR_SHA}, but jarSha256 expects {'0' * 64}",
        ),
        "endless": (u("/endless"), None, "larger than 1000000 bytes"),
        "claims-huge": (u("/claims-huge"), None, "10737418240 bytes, more than 1000000"),
        "slow": (u("/slow"), None, "took longer than 1 s"),
        "token": (
            u("/status/403") + f"?X-Amz-Signature={TOKEN}",
            None,
            "/status/403?…: the server answered 403",
        ),
        "to-http": (u("/to-http"), JAR_SHA, "redirects to a non-https URL"),
        "server-error": (u("/status/503"), None, "the server answered 503; retried later"),
        "credentials": (
            u("/jars/app.jar").replace("https://", f"https://deploy:{SECRET}@"),
            JAR_SHA,
            "must not hold credentials",
        ),
    }


@pytest.fixture(scope="module")
def synced(
    top: Path, server: JarServer, fake_flink: FakeFlink
) -> tuple[Run, dict[str, tuple[str, str | None, str]]]:
    cases = _cases(server)
    files: dict[str, str | bytes] = {}
    for name, (uri, pin, _say) in cases.items():
        extra = f"jarSha256: '{pin}'\n" if pin else ""
        files[f"jobs/{name}.yaml"] = spec_yaml(name, jar=json.dumps(uri), extra_job=extra)
    repo = write_repo(top / "repo", files)
    config = _config(top, server, fake_flink.url)
    keys = cli("--config", str(config), "keys", "generate", home=top)
    assert keys.code == 0, keys.err
    settings = Settings(state_dir=top / "state", audit={"key_file": top / "audit.key"})
    with open_store(settings) as store:
        AuditTrail.from_settings(settings, store, clock=SystemClock(), actor="test:setup")
    run = cli("--config", str(config), "sync", "--once", "--repo", str(repo), home=top, timeout=120)
    return run, cases


def test_sync_refuses_every_hostile_artifact_and_touches_nothing(
    synced: tuple[Run, dict[str, tuple[str, str | None, str]]], fake_flink: FakeFlink
) -> None:
    run, cases = synced
    run.assert_clean()
    assert run.code == 1, run.out + run.err
    report = run.out + run.err
    for name, (_uri, _pin, say) in cases.items():
        mine = [line for line in report.splitlines() if line.startswith(f"{name}: ")]
        assert any(say in line for line in mine), (name, say, mine)
    uploads = [r for r in fake_flink.actions() if r[1].startswith("/jars")]
    assert uploads == []


def test_no_secret_or_token_is_printed_or_recorded(
    synced: tuple[Run, dict[str, tuple[str, str | None, str]]], top: Path
) -> None:
    run, _ = synced
    assert SECRET not in run.out + run.err
    assert TOKEN not in run.out + run.err
    db = (top / "state" / "state.db").read_bytes()
    assert SECRET.encode() not in db
    assert TOKEN.encode() not in db


def test_the_slow_and_endless_servers_were_cut_off(synced: Any, server: JarServer) -> None:
    assert server.hits["/slow"] == 1
    assert server.hits["/endless"] == 1
    assert server.hits["/status/503"] == 1


# --- validate and plan with configured savepoint roots -----------------------------------------


def _guard_repo(root: Path) -> Path:
    def job(name: str, *, sp: str | None = None, conf: dict[str, str] | None = None) -> str:
        extra_job = f"initialSavepointPath: {json.dumps(sp)}\n" if sp else ""
        extra_spec = f"flinkConfiguration: {json.dumps(conf)}\n" if conf else ""
        return spec_yaml(name, extra_job=extra_job, extra_spec=extra_spec)

    return write_repo(
        root,
        {
            "jobs/ok-file.yaml": job("ok-file", sp="file:/srv/savepoints/savepoint-1"),
            "jobs/ok-s3.yaml": job("ok-s3", sp="s3://state/sp/job/chk-7"),
            "jobs/dotdot.yaml": job("dotdot", sp="file:///srv/savepoints/../../etc/shadow"),
            "jobs/encoded.yaml": job("encoded", sp="file:///srv/savepoints/%2e%2e/x"),
            "jobs/sibling.yaml": job("sibling", sp="file:///srv/savepoints-evil/x"),
            "jobs/other-bucket.yaml": job("other-bucket", sp="s3://state-evil/sp/x"),
            "jobs/creds.yaml": job("creds", sp=f"s3://a:{SECRET}@state/sp/x"),
            "jobs/denied.yaml": job("denied", conf={"execution.savepoint.path": "file:///etc"}),
            "jobs/custom-ok.yaml": job("custom-ok", conf={"pipeline.name": "x"}),
        },
    )


def test_validate_applies_the_configured_roots_and_deny_list(top: Path, server: JarServer) -> None:
    repo = _guard_repo(top / "guard-repo")
    config = _config(top, server, "http://127.0.0.1:1")
    run = cli("--config", str(config), "validate", str(repo), "--dir", "jobs", "--output", "json", home=top)
    run.assert_clean()
    assert run.code == 1
    report = json.loads(run.out)
    valid = {n for n, j in report["jobs"].items() if j["valid"]}
    assert valid == {"ok-file", "ok-s3", "custom-ok"}
    for name in ("dotdot", "encoded", "sibling", "other-bucket", "creds", "denied"):
        problems = [p for p in report["problems"] if p["job"] == name]
        assert problems, name
        assert problems[0]["line"] == 8, (name, problems)
    assert SECRET not in run.out


def test_a_custom_deny_list_replaces_the_default(top: Path, server: JarServer) -> None:
    repo = _guard_repo(top / "guard-repo-2")
    config = _config(top, server, "http://127.0.0.1:1", denied_configuration_keys=["pipeline.*"])
    run = cli("--config", str(config), "validate", str(repo), "--dir", "jobs", "--output", "json", home=top)
    report = json.loads(run.out)
    assert report["jobs"]["denied"]["valid"] is True
    assert report["jobs"]["custom-ok"]["valid"] is False


def test_plan_reports_a_pull_request_that_adds_a_restore_from_elsewhere(top: Path, server: JarServer) -> None:
    (top / "git-home").mkdir(exist_ok=True)
    work = init_work_repo(top / "plan-repo", isolated_env(top / "git-home"))
    work.commit({"artifacts/app.jar": b"jar", "jobs/a.yaml": spec_yaml("a")}, "base")
    work.git("branch", "base")
    work.commit(
        {"jobs/a.yaml": spec_yaml("a", extra_job="initialSavepointPath: file:///srv/savepoints/../etc\n")}
    )
    config = _config(top, server, "http://127.0.0.1:1")
    args = ("plan", "--repo", str(work.path), "--base", "base", "--head", "main", "--dir", "jobs")
    run = cli("--config", str(config), *args, "--output", "markdown", home=top)
    run.assert_clean()
    assert run.code == 1, run.out + run.err
    assert "'..' path segment" in run.out
