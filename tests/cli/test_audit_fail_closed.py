"""The audit commands fail closed, through the real CLI in a subprocess (issue 7).

- a configured key that cannot be used (mode 0644, missing, corrupt, a failing
  key command) is exit 2 naming the problem, never a quiet keyless "OK";
- a head file more than one record behind refuses appends until ``audit
  accept-head --reason``, which writes a record naming the gap;
- ``audit public-key`` exports the signing keys; an old export still verifies
  after rotations (each new key is endorsed by the one before), a key row
  added behind flink-gitops' back does not;
- corrupt rows are tampering at their seq in verify, show and export (exit 1),
  a corrupt wrapped data key is reported while the other versions are checked.
"""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import AuditEvent, AuditTrail
from flink_gitops.record.store import open_store
from flink_gitops.settings import Settings

EXE = Path(sys.executable).parent / "flink-gitops"


def cli(state: Path, *args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("FLINK_GITOPS_")}
    result = subprocess.run(
        [str(EXE), *args],
        capture_output=True,
        text=True,
        env={**base, "FLINK_GITOPS_STATE_DIR": str(state), **(env or {})},
        timeout=120,
        check=False,
    )
    assert "Traceback" not in result.stdout + result.stderr, result.stdout + result.stderr
    return result


@pytest.fixture
def state(tmp_path: Path, clock: FakeClock) -> Path:
    """A state dir with 5 records under key v1, a rotation (record 6, v2) and 3 more under v2."""
    state = tmp_path / "state"
    assert cli(state, "keys", "generate").returncode == 0
    settings = Settings(state_dir=state)
    with open_store(settings) as store:
        trail = AuditTrail.from_settings(settings, store, clock=clock, actor="daemon:test")
        for i in range(8):
            trail.record(
                AuditEvent(action="job.deploy", actor="daemon:test", job=f"job-{i}", outcome="succeeded")
            )
            clock.advance(60)
            if i == 4:
                trail.rotate(reason="test")
    return state


def _db(state: Path) -> sqlite3.Connection:
    return sqlite3.connect(state / "state.db", isolation_level=None)


@pytest.mark.parametrize("problem", ["mode-0644", "missing", "corrupt", "failing-command"])
def test_an_unusable_configured_key_is_exit_2_naming_it(state: Path, problem: str) -> None:
    key = state / "audit.key"
    env: dict[str, str] = {}
    if problem == "mode-0644":
        key.chmod(0o644)
        named = "has mode 0644"
    elif problem == "missing":
        key.unlink()
        named = "cannot open audit key file"
    elif problem == "corrupt":
        key.write_text("# flink-gitops audit master key v1\nnot-a-key\n")
        named = "does not hold a 32-byte key"
    else:
        env = {"FLINK_GITOPS_AUDIT__KEY_COMMAND": '["false"]'}
        named = "key command 'false' exited with status 1"
    with _db(state) as conn:  # and a forgery that a keyless check could never see
        conn.execute("UPDATE audit_records SET outcome_tag = action_tag WHERE seq = 3")
    result = cli(state, "audit", "verify", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert named in result.stderr
    assert "OK" not in result.stdout
    for command in (("audit", "show"), ("audit", "export"), ("keys", "rotate")):
        refused = cli(state, *command, env=env)
        assert refused.returncode == 2, (command, refused.stdout + refused.stderr)
        assert named in refused.stderr
    keyless = cli(state, "audit", "verify", "--no-key", env=env)
    assert keyless.returncode == 1  # asked for explicitly: the unsigned chain check still runs
    assert "the chain breaks at seq 3" in keyless.stdout


def test_help_documents_the_exit_codes(tmp_path: Path) -> None:
    for command in ("verify", "show", "export"):
        text = " ".join(cli(tmp_path, "audit", command, "--help").stdout.split())
        assert "Exit status: 0 intact; 1 tampering found" in text
        assert "2 cannot check (config, key or database unusable)" in text


def test_a_lagging_head_file_refuses_appends_until_accepted(state: Path) -> None:
    head = state / "audit.head"
    old = head.read_text()
    for _ in range(2):
        assert cli(state, "keys", "rotate").returncode == 0
    head.write_text(old)  # a restored backup: two records behind
    refused = cli(state, "keys", "rotate")
    assert refused.returncode == 2
    assert "more than the one in-flight record behind" in refused.stderr
    assert "audit accept-head --reason" in refused.stderr
    failing = cli(state, "audit", "verify")
    assert failing.returncode == 1
    assert "the chain breaks at seq 10" in failing.stdout
    assert cli(state, "keys", "rotate").returncode == 2  # still refused: nothing laundered it

    missing_reason = cli(state, "audit", "accept-head")
    assert missing_reason.returncode == 2
    accepted = cli(state, "audit", "accept-head", "--reason", "restored /var/lib from last night's backup")
    assert accepted.returncode == 0, accepted.stdout + accepted.stderr
    assert "recorded as audit record 12" in accepted.stdout
    assert cli(state, "audit", "verify").returncode == 0
    shown = cli(state, "audit", "show", "--action", "audit.accept_head", "--output", "jsonl")
    [record] = [json.loads(line) for line in shown.stdout.splitlines()]
    assert record["seq"] == 12
    assert record["details"]["reason"] == "restored /var/lib from last night's backup"
    assert record["details"]["head_file"]["seq"] == 9
    assert record["details"]["store_head"]["seq"] == 11
    assert "in-flight" in record["details"]["problem"]
    assert cli(state, "keys", "rotate").returncode == 0  # appends go on
    nothing = cli(state, "audit", "accept-head", "--reason", "again")
    assert nothing.returncode == 0
    assert "nothing to accept" in nothing.stdout


def test_an_old_public_key_export_follows_rotations_but_not_a_forged_key(state: Path, tmp_path: Path) -> None:
    old_export = tmp_path / "v1-v2.pub"
    assert cli(state, "audit", "public-key", "--out", str(old_export)).returncode == 0
    assert [k["version"] for k in json.loads(old_export.read_text())["keys"]] == [1, 2]
    assert cli(state, "keys", "rotate").returncode == 0
    assert cli(state, "keys", "rotate").returncode == 0
    ok = cli(state, "audit", "verify", "--public-key", str(old_export))
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert "public key file" in ok.stdout
    both = cli(state, "audit", "verify", "--key", "--public-key", str(old_export))
    assert both.returncode == 0, both.stdout + both.stderr
    assert "decrypted and tag-checked: 11 of 11" in both.stdout
    not_ours = tmp_path / "bad.pub"
    not_ours.write_text('{"format": "something else"}')
    unreadable = cli(state, "audit", "verify", "--public-key", str(not_ours))
    assert unreadable.returncode == 2
    assert "is not an audit public key file" in unreadable.stderr

    # A key row v5 added behind our back (its endorsement made with a key of the attacker's own).
    with _db(state) as conn:
        (params,) = conn.execute("SELECT params FROM audit_keys WHERE version = 4").fetchone()
        conn.execute(
            "INSERT INTO audit_keys (version, created_at, wrapped_key, params) "
            "SELECT 5, created_at, wrapped_key, params FROM audit_keys WHERE version = 4"
        )
        forged = json.loads(params) | {"endorsed_by": 4}
        conn.execute("UPDATE audit_keys SET params = ? WHERE version = 5", (json.dumps(forged),))
        conn.execute("UPDATE audit_records SET key_version = 5 WHERE seq = 11")
    public = cli(state, "audit", "verify", "--public-key", str(old_export))
    assert public.returncode == 1
    assert "not endorsed by a trusted older key" in public.stdout
    assert "the chain breaks at seq 11" in public.stdout
    keyed = cli(state, "audit", "verify")
    assert keyed.returncode == 1
    assert "the chain breaks at seq 11" in keyed.stdout


def test_corrupt_rows_are_tampering_in_verify_show_and_export(state: Path) -> None:
    with _db(state) as conn:
        conn.execute("UPDATE audit_records SET recorded_at = 'garbage' WHERE seq = 2")
        conn.execute("UPDATE audit_records SET ciphertext = 'text, not bytes' WHERE seq = 4")
        conn.execute("UPDATE audit_records SET key_version = 'x' WHERE seq = 8")
    verify = cli(state, "audit", "verify")
    assert verify.returncode == 1
    assert "seq 2: the stored row is unreadable: recorded_at holds text" in verify.stdout
    assert "seq 4: the stored row is unreadable: ciphertext holds str, not bytes" in verify.stdout
    assert "seq 8: the stored row is unreadable: key_version holds str" in verify.stdout
    assert "the chain breaks at seq 2" in verify.stdout
    for command in (("show",), ("show", "--output", "jsonl"), ("export",), ("export", "--raw")):
        result = cli(state, "audit", *command)
        assert result.returncode == 1, (command, result.stdout + result.stderr)
        assert "tampering: record 2 is unreadable" in result.stderr
        assert "(first at seq 2)" in result.stderr
        assert "job-2" in result.stdout or "--raw" in command  # the readable records still come out
    with _db(state) as conn:
        conn.execute("UPDATE audit_keys SET params = '{not json' WHERE version = 1")
    keys_broken = cli(state, "audit", "verify")
    assert keys_broken.returncode == 1
    assert "records under key v1 (the first here) cannot be checked: its key row is unreadable" in (
        keys_broken.stdout
    )


def test_a_corrupt_wrapped_data_key_is_reported_and_the_rest_still_checked(state: Path) -> None:
    with _db(state) as conn:
        (wrapped,) = conn.execute("SELECT wrapped_key FROM audit_keys WHERE version = 1").fetchone()
        conn.execute("UPDATE audit_keys SET wrapped_key = ? WHERE version = 1", (wrapped[:-1] + b"\0",))
    result = cli(state, "audit", "verify")
    assert result.returncode == 1
    assert "records under key v1 (the first here) cannot be checked" in result.stdout
    assert "cannot unwrap audit data key v1" in result.stdout
    assert "decrypted and tag-checked: 4 of 9" in result.stdout  # every record under v2
    assert "the chain breaks at seq 1" in result.stdout
    shown = cli(state, "audit", "show", "--output", "jsonl")
    assert shown.returncode == 1
    assert [json.loads(line)["seq"] for line in shown.stdout.splitlines()] == [6, 7, 8, 9]
    with _db(state) as conn:  # every version corrupt: that is a wrong key, nothing can be checked
        (wrapped,) = conn.execute("SELECT wrapped_key FROM audit_keys WHERE version = 2").fetchone()
        conn.execute("UPDATE audit_keys SET wrapped_key = ? WHERE version = 2", (wrapped[:-1] + b"\0",))
    none = cli(state, "audit", "verify")
    assert none.returncode == 2
    assert "unwraps none of the data keys" in none.stderr
