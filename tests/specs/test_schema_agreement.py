"""The generated JSON Schema files and the pydantic models give the same verdict.

Every document of the example repository and of the invalid corpus (tests/specs/invalid), and
an edge corpus of single-field mutations, is validated twice: by the model, and by the real
``jsonschema`` library against schemas/*.json (the files editors use). They must agree, except
for the few rules JSON Schema cannot state (listed in INEXPRESSIBLE, each with its reason):
there the schema accepts what the model refuses, never the other way round.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from pydantic import ValidationError

from flink_gitops.settings import SpecLimits
from flink_gitops.specs.model import KINDS
from flink_gitops.specs.schema import SCHEMAS
from flink_gitops.specs.yamlsafe import parse_documents

ROOT = Path(__file__).resolve().parents[2]
_FILE_OF = {model: name for name, (model, _description) in SCHEMAS.items()}


def _validators() -> dict[str, jsonschema.Draft202012Validator]:
    out = {}
    for name in SCHEMAS:
        schema = json.loads((ROOT / "schemas" / name).read_text(encoding="utf-8"))
        jsonschema.Draft202012Validator.check_schema(schema)
        out[name] = jsonschema.Draft202012Validator(schema)
    return out


VALIDATORS = _validators()


def model_ok(doc: Any) -> bool:
    if not isinstance(doc, dict):
        return False
    model = KINDS.get((str(doc.get("apiVersion")), str(doc.get("kind"))))
    if model is None:
        return False
    try:
        model.model_validate(doc)
    except ValidationError:
        return False
    return True


def schema_ok(doc: Any) -> bool:
    """Valid under one of the schema files (each pins its apiVersion and kind)."""
    return any(v.is_valid(doc) for v in VALIDATORS.values())


def _documents(paths: list[Path]) -> list[tuple[str, Any]]:
    out = []
    for path in paths:
        docs, _problems = parse_documents(path.read_bytes(), path.name, SpecLimits())
        out += [(f"{path.parent.name}/{path.name}#{i}", d.value) for i, d in enumerate(docs)]
    return out


EXAMPLES = _documents(sorted((ROOT / "example-repo").rglob("*.yaml")))
INVALID = _documents(sorted((ROOT / "tests/specs/invalid").glob("*.yaml")))


def test_the_corpora_are_there() -> None:
    assert len(EXAMPLES) >= 5
    assert len(INVALID) >= 55


@pytest.mark.parametrize(("where", "doc"), EXAMPLES, ids=[w for w, _ in EXAMPLES])
def test_example_specs_are_valid_for_both(where: str, doc: Any) -> None:
    assert model_ok(doc), where
    assert schema_ok(doc), where


@pytest.mark.parametrize(("where", "doc"), INVALID, ids=[w for w, _ in INVALID])
def test_invalid_corpus_verdicts_agree(where: str, doc: Any) -> None:
    assert schema_ok(doc) == model_ok(doc), f"{where}: model {model_ok(doc)}, schema {schema_ok(doc)}"


# --- edge corpus: one field of a valid document changed ------------------------------------------

JOB: dict[str, Any] = {
    "apiVersion": "flink-gitops/v1",
    "kind": "FlinkJob",
    "metadata": {"name": "demo", "labels": {"tier": "gold"}},
    "spec": {"job": {"jarURI": "artifacts/app.jar"}},
}
SESSION: dict[str, Any] = {
    "apiVersion": "flink.apache.org/v1beta1",
    "kind": "FlinkSessionJob",
    "metadata": {"name": "demo"},
    "spec": {"deploymentName": "default", "job": {"jarURI": "artifacts/app.jar"}},
}
SHA = "0" * 64


def _with(base: dict[str, Any], path: str, value: Any) -> dict[str, Any]:
    doc = copy.deepcopy(base)
    *parents, last = path.split(".")
    node = doc
    for part in parents:
        node = node.setdefault(part, {})
    node[last] = value
    return doc


def _batch(schedule: Any) -> dict[str, Any]:
    return _with(_with(JOB, "spec.mode", "batch"), "spec.schedule", schedule)


EDGES: dict[str, dict[str, Any]] = {
    "name-ok": _with(JOB, "metadata.name", "a-1"),
    "name-trailing-newline": _with(JOB, "metadata.name", "demo\n"),
    "name-leading-newline": _with(JOB, "metadata.name", "\ndemo"),
    "name-63": _with(JOB, "metadata.name", "a" * 63),
    "name-64": _with(JOB, "metadata.name", "a" * 64),
    "name-upper": _with(JOB, "metadata.name", "Demo"),
    "name-unicode": _with(JOB, "metadata.name", "démo"),
    "name-int": _with(JOB, "metadata.name", 5),
    "duration-ok": _with(JOB, "spec.savepoints", {"periodic": "5m"}),
    "duration-int": _with(JOB, "spec.savepoints", {"periodic": 300}),
    "duration-zero": _with(JOB, "spec.savepoints", {"periodic": 0}),
    "duration-negative": _with(JOB, "spec.savepoints", {"periodic": -1}),
    "duration-spaced": _with(JOB, "spec.savepoints", {"periodic": "5 m"}),
    "duration-padded": _with(JOB, "spec.savepoints", {"periodic": " 5m "}),
    "duration-newline": _with(JOB, "spec.savepoints", {"periodic": "5m\n"}),
    "duration-unicode-digit": _with(JOB, "spec.savepoints", {"periodic": "٥m"}),
    "duration-week": _with(JOB, "spec.savepoints", {"periodic": "1w"}),
    "duration-upper": _with(JOB, "spec.savepoints", {"periodic": "5M"}),
    "duration-bool": _with(JOB, "spec.savepoints", {"periodic": True}),
    "duration-float": _with(JOB, "spec.savepoints", {"periodic": 1.5}),
    "sha-ok": _with(JOB, "spec.job.jarSha256", SHA),
    "sha-upper": _with(JOB, "spec.job.jarSha256", "A" * 64),
    "sha-short": _with(JOB, "spec.job.jarSha256", SHA[:63]),
    "sha-newline": _with(JOB, "spec.job.jarSha256", SHA + "\n"),
    "sha-number": _with(JOB, "spec.job.jarSha256", 1234),
    "parallelism-ok": _with(JOB, "spec.job.parallelism", 4),
    "parallelism-zero": _with(JOB, "spec.job.parallelism", 0),
    "parallelism-text": _with(JOB, "spec.job.parallelism", "4"),
    "parallelism-bool": _with(JOB, "spec.job.parallelism", True),
    "parallelism-fraction": _with(JOB, "spec.job.parallelism", 1.5),
    "parallelism-null": _with(JOB, "spec.job.parallelism", None),
    "args-int-item": _with(JOB, "spec.job.args", ["a", 1]),
    "config-number": _with(JOB, "spec.flinkConfiguration", {"a": 1, "b": True, "c": 1.5}),
    "config-null": _with(JOB, "spec.flinkConfiguration", {"a": None}),
    "config-list": _with(JOB, "spec.flinkConfiguration", {"a": [1]}),
    "label-int": _with(JOB, "metadata.labels", {"a": 1}),
    "unknown-field": _with(JOB, "spec.job.colour", "red"),
    "upgrade-mode-bad": _with(JOB, "spec.job.upgradeMode", "last_state"),
    "jar-empty": _with(JOB, "spec.job.jarURI", ""),
    "nonce-negative": _with(JOB, "spec.job.restartNonce", -1),
    "schedule-ok": _batch("30 2 * * 1-5"),
    "schedule-spaced": _batch("30  2 * *  1-5"),
    "schedule-names": _batch("0 3 1 jan,jul mon-fri"),
    "schedule-steps": _batch("*/15 */6 1-31/2 * *"),
    "schedule-streaming": _with(JOB, "spec.schedule", "0 3 * * *"),
    "schedule-null-streaming": _with(JOB, "spec.schedule", None),
    "schedule-no-mode": _with(JOB, "spec.schedule", "0 3 * * *"),
    "schedule-minute-60": _batch("60 3 * * *"),
    "schedule-hour-24": _batch("0 24 * * *"),
    "schedule-day-0": _batch("0 3 0 * *"),
    "schedule-weekday-7": _batch("0 3 * * 7"),
    "schedule-six-fields": _batch("0 0 3 * * *"),
    "schedule-four-fields": _batch("0 3 * *"),
    "schedule-step-zero": _batch("*/0 * * * *"),
    "schedule-step-too-big": _batch("*/60 * * * *"),
    "schedule-upper-name": _batch("0 3 * * MON"),
    "schedule-garbage": _batch("every day"),
    "schedule-unicode-digit": _batch("٥ 3 * * *"),
    "session-ok": SESSION,
    "session-path-ref": _with(SESSION, "spec.job.initialStateReference", {"path": "file:///sp/1"}),
    "session-name-ref": _with(SESSION, "spec.job.initialStateReference", {"name": "snap"}),
    "session-null-name-ref": _with(SESSION, "spec.job.initialStateReference", {"name": None, "path": "/x"}),
    "session-namespace-ref": _with(SESSION, "spec.job.initialStateReference", {"namespace": "ns"}),
    "session-null-nonce": _with(SESSION, "spec.job.savepointTriggerNonce", None),
    "session-no-deployment": _with(SESSION, "spec", {"job": {"jarURI": "a.jar"}}),
    "session-as-flinkjob-kind": _with(SESSION, "kind", "FlinkJob"),
    "wrong-api-version": _with(JOB, "apiVersion", "flink-gitops/v2"),
    "not-a-mapping": {"apiVersion": "flink-gitops/v1", "kind": "FlinkJob", "metadata": [], "spec": {}},
}

#: rules JSON Schema cannot state: the schema accepts these, the model refuses them.
INEXPRESSIBLE = {
    # JSON has one number type: 4.0 is an "integer" to JSON Schema; YAML's 4.0 is a float
    "parallelism-integral-float": _with(JOB, "spec.job.parallelism", 4.0),
    "duration-integral-float": _with(JOB, "spec.savepoints", {"periodic": 300.0}),
    # a reversed range is syntactically a range; only the cron parser sees that 23-0 is empty
    "schedule-reversed-range": _batch("0 23-0 * * *"),
    # a day no month has (31 February): only the evaluator finds that it never fires
    "schedule-never-fires": _batch("0 0 31 2 *"),
    # two fields that must be equal when both are set: no cross-field equality in JSON Schema
    "session-paths-disagree": _with(
        _with(SESSION, "spec.job.initialStateReference", {"path": "/a"}),
        "spec.job.initialSavepointPath",
        "/b",
    ),
}


@pytest.mark.parametrize("case", list(EDGES), ids=list(EDGES))
def test_edge_verdicts_agree(case: str) -> None:
    doc = EDGES[case]
    assert schema_ok(doc) == model_ok(doc), f"{case}: model {model_ok(doc)}, schema {schema_ok(doc)}"


def test_the_edge_corpus_has_both_verdicts() -> None:
    verdicts = [model_ok(doc) for doc in EDGES.values()]
    assert 15 <= sum(verdicts) <= len(verdicts) - 30


@pytest.mark.parametrize("case", list(INEXPRESSIBLE), ids=list(INEXPRESSIBLE))
def test_what_the_schema_cannot_state_it_accepts_and_the_model_refuses(case: str) -> None:
    doc = INEXPRESSIBLE[case]
    assert schema_ok(doc)
    assert not model_ok(doc)


def test_each_schema_file_pins_its_kind() -> None:
    for name, validator in VALIDATORS.items():
        model = next(m for m, n in _FILE_OF.items() if n == name)
        other = SESSION if model.__name__ == "FlinkJob" else JOB
        assert not validator.is_valid(other), name
