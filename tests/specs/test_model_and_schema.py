"""Model details (durations, cron, operator mapping) and the generated JSON Schema files."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from pydantic import ValidationError

from flink_gitops.specs.model import FlinkJob, FlinkSessionJob, parse_duration
from flink_gitops.specs.schema import SCHEMAS, render, stale_schemas, write_schemas

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("5m", 300), ("12h", 43200), ("7d", 604800), (30, 30), ("0s", 0)]
)
def test_durations_parse_to_seconds(text: object, seconds: int) -> None:
    assert parse_duration(text) == seconds


@pytest.mark.parametrize("text", ["7 days", "1w", "-5s", "5", "", True, 1.5])
def test_bad_durations_are_refused(text: object) -> None:
    with pytest.raises(ValueError, match="duration"):
        parse_duration(text)


def _job(**spec: object) -> dict[str, object]:
    return {
        "apiVersion": "flink-gitops/v1",
        "kind": "FlinkJob",
        "metadata": {"name": "a"},
        "spec": {"job": {"jarURI": "a.jar"}, **spec},
    }


def test_cron_schedule_is_normalised_for_batch_jobs() -> None:
    job = FlinkJob.model_validate(_job(mode="batch", schedule="30  2 * *  1-5"))
    assert job.spec.schedule == "30 2 * * 1-5"
    with pytest.raises(ValidationError, match="only allowed for batch"):
        FlinkJob.model_validate(_job(schedule="30 2 * * *"))


def test_operator_state_reference_path_becomes_initial_savepoint() -> None:
    session = FlinkSessionJob.model_validate(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkSessionJob",
            "metadata": {"name": "s"},
            "spec": {
                "deploymentName": "default",
                "job": {"jarURI": "a.jar", "initialStateReference": {"path": "file:///sp/1"}},
            },
            "status": {"lifecycleState": "STABLE"},
        }
    )
    job = session.to_flinkjob()
    assert job.spec.job.initialSavepointPath == "file:///sp/1"
    assert job.spec.job.upgradeMode == "stateless"  # the operator's default, kept


def test_schema_files_are_up_to_date() -> None:
    stale = stale_schemas(ROOT / "schemas")
    assert stale == [], f"run 'flink-gitops schema --write schemas' (stale: {stale})"


def test_stale_schema_is_detected_and_rewritten(tmp_path: Path) -> None:
    assert set(stale_schemas(tmp_path)) == set(SCHEMAS)
    write_schemas(tmp_path)
    assert stale_schemas(tmp_path) == []
    path = tmp_path / "flinkjob-v1.json"
    path.write_text(path.read_text().replace('"savepoint"', '"savepoints"', 1))
    assert stale_schemas(tmp_path) == ["flinkjob-v1.json"]


def test_schema_carries_change_classes_and_forbids_unknown_fields() -> None:
    schema = json.loads(render("flinkjob-v1.json"))
    job = schema["$defs"]["JobSection"]
    assert job["additionalProperties"] is False
    assert job["properties"]["parallelism"]["x-change-class"] == "scale"
    assert job["properties"]["savepointTriggerNonce"]["x-change-class"] == "savepoint"
    assert schema["$defs"]["Metadata"]["properties"]["name"]["pattern"].startswith("^[a-z0-9]")


def test_example_repo_modelines_point_at_the_right_schema() -> None:
    modeline = re.compile(r"# yaml-language-server: \$schema=(\S+)")
    files = sorted((ROOT / "example-repo").rglob("*.yaml"))
    assert files
    for path in files:
        text = path.read_text()
        refs = modeline.findall(text)
        assert refs, f"{path} has no schema modeline"
        for ref in refs:
            target = (path.parent / ref).resolve()
            assert target.is_file(), f"{path}: {ref} does not exist"
            expected = (
                "flinksessionjob-v1beta1.json" if "kind: FlinkSessionJob" in text else "flinkjob-v1.json"
            )
            assert target.name == expected


def test_schema_command_writes_checks_and_prints(tmp_path: Path) -> None:
    from click.testing import CliRunner

    from flink_gitops.cli import main

    runner = CliRunner()
    assert runner.invoke(main, ["schema", "--check", str(tmp_path)]).exit_code == 1
    result = runner.invoke(main, ["schema", "--write", str(tmp_path)])
    assert result.exit_code == 0
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(SCHEMAS)
    assert runner.invoke(main, ["schema", "--check", str(tmp_path)]).exit_code == 0
    printed = runner.invoke(main, ["schema", "--kind", "flinksessionjob-v1beta1.json"])
    assert json.loads(printed.output)["properties"]["kind"]["const"] == "FlinkSessionJob"
