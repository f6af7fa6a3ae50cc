"""`flink-gitops keys generate|rotate` and `audit verify|show|export`, end to end on a SQLite state dir."""

from __future__ import annotations

import base64
import json
import sqlite3
import stat
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from loguru import logger

from flink_gitops.cli import main
from flink_gitops.clock import FakeClock
from flink_gitops.record.audit import AuditEvent, AuditTrail, row_hash
from flink_gitops.record.store import AuditRow, open_store
from flink_gitops.settings import Settings


@pytest.fixture(autouse=True)
def _restore_logging() -> Iterator[None]:
    yield
    logger.remove()  # the CLI pointed loguru at the runner's (now closed) stderr
    logger.add(sys.stderr)


@pytest.fixture
def state(tmp_path: Path) -> Path:
    return tmp_path / "state"


def run(state: Path, *args: str) -> Result:
    runner = CliRunner()
    return runner.invoke(main, list(args), env={"FLINK_GITOPS_STATE_DIR": str(state)}, catch_exceptions=False)


def _fill(state: Path, clock: FakeClock) -> None:
    settings = Settings(state_dir=state)
    with open_store(settings) as store:
        trail = AuditTrail.from_settings(settings, store, clock=clock, actor="daemon:test")
        for i in range(6):
            trail.record(
                AuditEvent(
                    action="job.upgrade" if i % 2 else "job.deploy",
                    actor="daemon:test",
                    job=f"job-{i % 3}",
                    cluster="default",
                    outcome="failed" if i == 4 else "succeeded",
                    error="savepoint timed out" if i == 4 else None,
                )
            )
            clock.advance(3600)


def test_keys_generate_writes_0600_and_refuses_to_overwrite(state: Path) -> None:
    result = run(state, "keys", "generate")
    assert result.exit_code == 0, result.output
    key = state / "audit.key"
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    material = key.read_text().splitlines()[-1]
    assert material not in result.output
    again = run(state, "keys", "generate")
    assert again.exit_code == 2
    assert "refusing to overwrite" in again.output
    other = run(state, "keys", "generate", "--out", str(state / "other.key"))
    assert other.exit_code == 0
    assert (state / "other.key").read_text() != key.read_text()


def test_verify_show_export_rotate(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)

    ok = run(state, "audit", "verify")
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    assert "decrypted and tag-checked: 6 of 6" in ok.output

    table = run(state, "audit", "show", "--job", "job-1")
    assert table.exit_code == 0, table.output
    lines = table.output.splitlines()
    assert lines[0].split()[:4] == ["SEQ", "TIME", "ACTOR", "ACTION"]
    assert [ln.split()[0] for ln in lines[1:]] == ["2", "5"]

    jsonl = run(state, "audit", "show", "--outcome", "failed", "--output", "jsonl")
    [failed] = [json.loads(ln) for ln in jsonl.output.splitlines()]
    assert failed["seq"] == 5
    assert failed["error"] == "savepoint timed out"

    since = run(
        state,
        "audit",
        "show",
        "--since",
        "2026-01-01T02:00:00Z",
        "--until",
        "2026-01-01T04:00",
        "--output",
        "jsonl",
    )
    assert [json.loads(ln)["seq"] for ln in since.output.splitlines()] == [3, 4]
    actions = run(state, "audit", "show", "--action", "job.upgrade", "--output", "jsonl")
    assert [json.loads(ln)["seq"] for ln in actions.output.splitlines()] == [2, 4, 6]

    rotated = run(state, "keys", "rotate", "--reason", "quarterly")
    assert rotated.exit_code == 0, rotated.output
    assert "key version 2" in rotated.output

    exported = run(state, "audit", "export")
    records = [json.loads(ln) for ln in exported.output.splitlines()]
    assert [r["seq"] for r in records] == list(range(1, 8))
    assert records[-1]["action"] == "keys.rotate"
    assert records[-1]["key_version"] == 2
    assert records[-1]["details"] == {"from_version": 1, "to_version": 2, "reason": "quarterly"}
    assert records[-1]["actor"].startswith("cli:")

    out = state / "export.jsonl"
    raw = run(state, "audit", "export", "--raw", "--out", str(out))
    assert raw.exit_code == 0
    rows = [json.loads(ln) for ln in out.read_text().splitlines()]
    assert len(rows) == 7
    # A raw export carries everything needed to re-check the chain elsewhere.
    first = rows[0]
    assert set(first) >= {"seq", "ciphertext", "nonce", "prev_hash", "hash", "key_version", "recorded_at"}
    assert b"job-0" not in base64.b64decode(first["ciphertext"])
    again = run(state, "audit", "export", "--raw", "--out", str(out))
    assert again.exit_code != 0  # never overwrites an earlier export


def test_verify_reports_the_breaking_seq_and_works_without_the_key(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    with sqlite3.connect(state / "state.db") as conn:
        (ct,) = conn.execute("SELECT ciphertext FROM audit_records WHERE seq = 4").fetchone()
        conn.execute("UPDATE audit_records SET ciphertext = ? WHERE seq = 4", (bytes([ct[0] ^ 1]) + ct[1:],))
    broken = run(state, "audit", "verify")
    assert broken.exit_code == 1
    assert "the chain breaks at seq 4" in broken.output

    (state / "audit.key").rename(state / "elsewhere.key")  # the auditor has no key
    missing = run(state, "audit", "verify")
    assert missing.exit_code == 2  # a configured key that is unusable is an error, never a downgrade
    assert "cannot open audit key file" in missing.output
    keyless = run(state, "audit", "verify", "--no-key")
    assert keyless.exit_code == 1
    assert "--no-key" in keyless.output
    assert "the chain breaks at seq 4" in keyless.output


def test_verify_with_a_failing_key_command_cannot_check(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    env = {"FLINK_GITOPS_STATE_DIR": str(state), "FLINK_GITOPS_AUDIT__KEY_COMMAND": '["false"]'}
    runner = CliRunner()
    result = runner.invoke(main, ["audit", "verify"], env=env, catch_exceptions=False)
    assert result.exit_code == 2, result.output
    assert "key command 'false' exited with status 1" in result.output
    assert "OK" not in result.output
    keyless = runner.invoke(main, ["audit", "verify", "--no-key"], env=env, catch_exceptions=False)
    assert keyless.exit_code == 0  # asked for: the unsigned chain check still works
    assert "OK: the chain is intact (unsigned check: --no-key)" in keyless.output


def test_verify_without_key_on_an_intact_trail(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    result = run(state, "audit", "verify", "--no-key")
    assert result.exit_code == 0, result.output
    assert "unsigned" in result.output
    assert "head file" in result.output


def test_verify_detects_truncation_via_head_file(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    with sqlite3.connect(state / "state.db") as conn:
        conn.execute("DELETE FROM audit_records WHERE seq = 6")
        (h,) = conn.execute("SELECT hash FROM audit_records WHERE seq = 5").fetchone()
        conn.execute("UPDATE audit_head SET seq = 5, hash = ?", (h,))
    result = run(state, "audit", "verify")
    assert result.exit_code == 1
    assert "truncated" in result.output
    assert "the chain breaks at seq 6" in result.output


def test_show_with_a_wrong_key_is_an_error_without_key_bytes(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    old = (state / "audit.key").read_text()
    (state / "audit.key").unlink()
    assert run(state, "keys", "generate").exit_code == 0
    result = run(state, "audit", "show")
    assert result.exit_code == 2
    assert "master key id" in result.output
    for text in (old, (state / "audit.key").read_text()):
        assert text.splitlines()[-1] not in result.output


def test_raw_row_hash_matches_export(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    result = run(state, "audit", "export", "--raw")
    first = json.loads(result.output.splitlines()[0])
    with open_store(Settings(state_dir=state)) as store:
        [row] = store.audit_rows(limit=1)
    assert isinstance(row, AuditRow)
    assert base64.b64decode(first["hash"]) == row.hash == row_hash(row)


def test_show_rejects_a_bad_time_and_limits_rows(state: Path, clock: FakeClock) -> None:
    assert run(state, "keys", "generate").exit_code == 0
    _fill(state, clock)
    bad = run(state, "audit", "show", "--since", "yesterday")
    assert bad.exit_code == 2
    assert "ISO 8601" in bad.output
    limited = run(state, "audit", "show", "--limit", "2")
    assert [ln.split()[0] for ln in limited.output.splitlines()[1:]] == ["1", "2"]
