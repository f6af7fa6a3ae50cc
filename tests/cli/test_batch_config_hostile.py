"""Hostile values for the batch and slot settings, through the real CLI: a clear config error (exit 2)
naming the file and the field, no traceback, nothing opened or started."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.cli.clirun import cli

CASES: dict[str, tuple[dict[str, Any], str]] = {
    "cap-zero": ({"clusters": {"default": {"max_total_parallelism": 0}}}, "max_total_parallelism"),
    "cap-negative": ({"clusters": {"default": {"max_total_parallelism": -4}}}, "max_total_parallelism"),
    "cap-word": ({"clusters": {"default": {"max_total_parallelism": "four"}}}, "max_total_parallelism"),
    "cap-fraction": ({"clusters": {"default": {"max_total_parallelism": 2.5}}}, "max_total_parallelism"),
    "cap-list": ({"clusters": {"default": {"max_total_parallelism": [4]}}}, "max_total_parallelism"),
    "grace-negative": ({"sync": {"missed_run_grace_s": -1}}, "sync.missed_run_grace_s"),
    "grace-word": ({"sync": {"missed_run_grace_s": "soon"}}, "sync.missed_run_grace_s"),
    "grace-huge-string": ({"sync": {"missed_run_grace_s": "9" * 5000 + "x"}}, "sync.missed_run_grace_s"),
}


@pytest.mark.parametrize("case", list(CASES), ids=list(CASES))
@pytest.mark.parametrize("command", [["status"], ["sync", "--once", "--repo", "."]], ids=["status", "sync"])
def test_a_bad_batch_or_slot_setting_is_a_config_error_naming_the_field(
    tmp_path: Path, case: str, command: list[str]
) -> None:
    body, field = CASES[case]
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"state_dir": str(tmp_path / "state"), **body}))
    run = cli("--config", str(config), *command, home=tmp_path)
    run.assert_clean()
    assert run.code == 2, run.out + run.err
    assert f"{config}: invalid config: " in run.err
    assert field in run.err
    assert not (tmp_path / "state").exists()  # refused before the store was opened
