"""Hostile input to issue 10's interfaces through the real CLI (a subprocess where the argv bytes
matter, click's runner in-process otherwise): job names and reasons that are not UTF-8
(surrogateescape argv), numbers in the config that are no numbers (NaN, infinity, negative
timeouts). Each is a clear one-line answer (exit 2 for an error, nothing changed) and never a
traceback. The pause and window basics are in test_pause_cli.py."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.clirun import Run, cli
from tests.cli.test_pause_cli import audit_actions, state, status_json
from tests.cli.test_pause_cli import run as invoke

__all__ = ["state"]  # the fixture, shared with test_pause_cli

NOT_UTF8 = os.fsdecode(b"bad\xffname")  # what Python makes of a non-UTF-8 argv byte


def run(state: Path, *args: str, env: dict[str, str] | None = None) -> Run:
    result = cli(*args, home=state.parent, env={"FLINK_GITOPS_STATE_DIR": str(state), **(env or {})})
    result.assert_clean()
    return result


def test_a_job_name_that_is_not_utf8_is_an_unknown_job(state: Path) -> None:
    result = run(state, "pause", NOT_UTF8)  # the real argv bytes
    assert result.code == 2, result.out + result.err
    assert "no job named 'bad\\udcffname' is recorded" in result.err
    for command in ("resume", "savepoint", "history"):
        again = invoke(state, command, NOT_UTF8)
        assert again.exit_code == 2, again.output
        assert "no job named 'bad\\udcffname' is recorded" in again.output
    for flag in ("--job", "--action", "--outcome"):  # the search tag of a name no record has
        shown = invoke(state, "audit", "show", flag, NOT_UTF8)
        assert shown.exit_code == 0, shown.output
    assert audit_actions(state) == []


def test_a_reason_that_is_not_utf8_is_kept_with_replacement_characters(state: Path) -> None:
    result = run(state, "pause", "orders", "--reason", f"why {NOT_UTF8} \x1b[31mred")
    assert result.code == 0, result.out + result.err
    assert "job orders paused" in result.out
    assert audit_actions(state) == [("job.pause", "orders", "intent"), ("job.pause", "orders", "succeeded")]
    reason = status_json(state)["orders"]["hold"]["reason"]
    assert reason.endswith(": why bad\ufffdname \x1b[31mred")  # JSON output: escaped by json
    table = run(state, "status", env={"COLUMNS": "300"})
    assert "\x1b" not in table.out  # the table shows it escaped
    assert "\\x1b[31mred" in table.out


#: (config, the key path and words the error must name)
NOT_NUMBERS: dict[str, tuple[dict[str, Any], str]] = {
    "window-nan": (
        {"sync": {"windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration_s": float("nan")}]}},
        "sync.windows.0.duration_s: Input should be a finite number",
    ),
    "window-string": (
        {"sync": {"windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration_s": "3600"}]}},
        "sync.windows.0.duration_s: Input should be a valid number",
    ),
    "window-bool": (
        {"sync": {"windows": [{"kind": "deny", "schedule": "0 22 * * *", "duration_s": True}]}},
        "sync.windows.0.duration_s: Input should be a valid number",
    ),
    "busy-timeout-nan": (
        {"store": {"busy_timeout_s": float("nan")}},
        "store.busy_timeout_s: Input should be a finite",
    ),
    "busy-timeout-negative": (
        {"store": {"busy_timeout_s": -1}},
        "store.busy_timeout_s: Input should be greater than 0",
    ),
    "lease-infinite": (
        {"store": {"lease_ttl_s": float("inf")}},
        "store.lease_ttl_s: Input should be a finite number",
    ),
    "request-timeout-zero": (
        {"clusters": {"default": {"request_timeout_s": 0}}},
        "clusters.default.request_timeout_s: Input should be greater than 0",
    ),
}


@pytest.mark.parametrize("case", list(NOT_NUMBERS), ids=list(NOT_NUMBERS))
def test_a_number_that_is_no_number_is_a_config_error_naming_the_key(tmp_path: Path, case: str) -> None:
    data, expected = NOT_NUMBERS[case]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), **data}))
    result = invoke(tmp_path / "state", "pause", "orders", config=config)
    assert result.exit_code == 2, result.output
    assert f"{config}: invalid config: {expected}" in result.output
    assert not (tmp_path / "state").exists()


def test_a_number_from_the_environment_that_is_nan_names_its_variable(tmp_path: Path) -> None:
    result = cli("status", home=tmp_path, env={"FLINK_GITOPS_STORE__BUSY_TIMEOUT_S": "nan"})
    result.assert_clean()
    assert result.code == 2
    assert (
        "store.busy_timeout_s: Input should be a finite number (set by FLINK_GITOPS_STORE__BUSY_TIMEOUT_S)"
        in (result.err)
    )
