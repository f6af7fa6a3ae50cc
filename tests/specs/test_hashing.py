"""Properties of the spec hash and of change classification (hypothesis)."""

from __future__ import annotations

import copy
import functools
import random
from collections.abc import Callable
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from flink_gitops.specs.changes import JAR_PATH, classify, leaves
from flink_gitops.specs.hashing import canonical_json, essence, spec_hash
from flink_gitops.specs.model import Change, FlinkJob, FlinkSessionJob

JAR = "sha256:" + "a" * 64
OTHER_JAR = "sha256:" + "b" * 64

_names = st.from_regex(r"[a-z]([-a-z0-9]{0,12}[a-z0-9])?", fullmatch=True)
_text = st.text(st.characters(codec="utf-8", categories=["L", "N"]), min_size=1, max_size=8)
_config = st.dictionaries(
    st.from_regex(r"[a-z]{1,6}(\.[a-z]{1,6}){0,2}", fullmatch=True),
    st.one_of(_text, st.integers(0, 10**6), st.booleans()),
    max_size=4,
)
_job = st.fixed_dictionaries(
    {"jarURI": st.just("artifacts/app.jar")},
    optional={
        "entryClass": st.from_regex(r"com\.example\.[A-Z][a-z]{1,8}", fullmatch=True),
        "args": st.lists(_text, max_size=4),
        "parallelism": st.integers(1, 64),
        "upgradeMode": st.sampled_from(["savepoint", "last-state", "stateless"]),
        "state": st.sampled_from(["running", "suspended"]),
        "allowNonRestoredState": st.booleans(),
        "initialSavepointPath": st.just("file:///savepoints/sp-1"),
        "savepointTriggerNonce": st.integers(0, 100),
        "checkpointTriggerNonce": st.integers(0, 100),
        "savepointRedeployNonce": st.integers(0, 100),
        "restartNonce": st.integers(0, 100),
    },
)
_savepoints = st.fixed_dictionaries(
    {},
    optional={
        "periodic": st.sampled_from([None, "90s", "5m", "12h", 3600]),
        "maxCount": st.integers(1, 50),
        "maxAge": st.sampled_from(["7d", "1d", 7200]),
    },
)
_spec = st.fixed_dictionaries(
    {"job": _job},
    optional={
        "cluster": st.sampled_from(["default", "eu-1", "us-2"]),
        "flinkConfiguration": _config,
        "savepoints": _savepoints,
        "mode": st.just("streaming"),
    },
)
SPECS = st.builds(
    lambda name, spec, labels: {
        "apiVersion": "flink-gitops/v1",
        "kind": "FlinkJob",
        "metadata": {"name": name, "labels": labels},
        "spec": spec,
    },
    _names,
    _spec,
    st.dictionaries(st.sampled_from(["team", "tier"]), _text, max_size=2),
)


def _job_of(data: dict[str, Any]) -> FlinkJob:
    return FlinkJob.model_validate(data)


def _shuffled(value: Any, rnd: random.Random) -> Any:
    if isinstance(value, dict):
        items = list(value.items())
        rnd.shuffle(items)
        return {k: _shuffled(v, rnd) for k, v in items}
    return value


def _with_defaults(data: dict[str, Any]) -> dict[str, Any]:
    """The same spec with every default written out (durations in another spelling)."""
    out = copy.deepcopy(data)
    spec = out["spec"]
    spec.setdefault("cluster", "default")
    spec.setdefault("flinkConfiguration", {})
    spec.setdefault("mode", "streaming")
    spec.setdefault("schedule", None)
    sp = spec.setdefault("savepoints", {})
    sp.setdefault("periodic", None)
    sp.setdefault("maxCount", 10)
    sp.setdefault("maxAge", "168h")
    job = spec["job"]
    defaults: dict[str, object] = {
        "jarSha256": None,
        "entryClass": None,
        "args": [],
        "parallelism": None,
        "upgradeMode": "savepoint",
        "state": "running",
        "allowNonRestoredState": False,
        "initialSavepointPath": None,
        "savepointTriggerNonce": 0,
        "checkpointTriggerNonce": 0,
        "savepointRedeployNonce": 0,
        "restartNonce": 0,
    }
    for key, default in defaults.items():
        job.setdefault(key, default)
    out["metadata"].setdefault("annotations", {})
    return out


def _apply_to(fn: Callable[[Any], Any], current: Any, _old: Any) -> Any:
    return fn(current)


def _set(data: dict[str, Any], path: tuple[str, ...], fn: Callable[[Any], Any], default: Any) -> None:
    node = data
    for part in path[:-1]:
        node = node.setdefault(part, {})
    node[path[-1]] = fn(node.get(path[-1], default))


# How to change each leaf to another valid value: (mutation, the value the model defaults to).
MUTATIONS: dict[tuple[str, ...], tuple[Callable[[Any], Any], Any]] = {
    ("metadata", "name"): (lambda v: v + "x" if len(v) < 60 else "b", None),
    ("metadata", "labels"): (lambda v: {**v, "changed": "yes"}, {}),
    ("metadata", "annotations"): (lambda v: {**v, "note": "x"}, {}),
    ("spec", "cluster"): (lambda v: v + "-x", "default"),
    ("spec", "job", "jarURI"): (lambda v: "artifacts/renamed.jar", None),
    ("spec", "job", "jarSha256"): (lambda v: "c" * 64 if v != "c" * 64 else "d" * 64, None),
    ("spec", "job", "entryClass"): (lambda v: (v or "com.example.A") + "B", None),
    ("spec", "job", "args"): (lambda v: [*v, "--extra"], []),
    ("spec", "job", "parallelism"): (lambda v: (v or 1) + 1, None),
    ("spec", "job", "upgradeMode"): (lambda v: "stateless" if v != "stateless" else "savepoint", "savepoint"),
    ("spec", "job", "state"): (lambda v: "suspended" if v == "running" else "running", "running"),
    ("spec", "job", "allowNonRestoredState"): (lambda v: not v, False),
    ("spec", "job", "initialSavepointPath"): (lambda v: (v or "file:///sp") + "-2", None),
    ("spec", "job", "savepointTriggerNonce"): (lambda v: v + 1, 0),
    ("spec", "job", "checkpointTriggerNonce"): (lambda v: v + 1, 0),
    ("spec", "job", "savepointRedeployNonce"): (lambda v: v + 1, 0),
    ("spec", "job", "restartNonce"): (lambda v: v + 1, 0),
    ("spec", "flinkConfiguration"): (lambda v: {**v, "added.key": "1"} if "added.key" not in v else {}, {}),
    ("spec", "mode"): (lambda v: "batch", "streaming"),
    ("spec", "schedule"): (lambda v: "0 3 * * *", None),
    ("spec", "savepoints", "periodic"): (lambda v: (v or 0) + 1, None),
    ("spec", "savepoints", "maxCount"): (lambda v: v + 1, 10),
    ("spec", "savepoints", "maxAge"): (lambda v: 1, 7 * 86400),
    ("spec", "drift"): (lambda v: "heal" if v != "heal" else "observe", None),
}


def _mutate(data: dict[str, Any], path: tuple[str, ...]) -> tuple[dict[str, Any], str]:
    """Mutate one leaf (the jar digest is an argument, not a field); returns (data, jar digest)."""
    out = _with_defaults(data)
    if path == JAR_PATH:
        return out, OTHER_JAR
    fn, default = MUTATIONS[path]
    if path == ("spec", "schedule"):
        out["spec"]["mode"] = "batch"
        out["spec"]["schedule"] = fn(None)
        return out, JAR
    if path == ("spec", "savepoints", "periodic") or path == ("spec", "savepoints", "maxAge"):
        current = _job_of(out).spec.savepoints.model_dump()[path[-1]]
        _set(out, path, lambda _v: fn(current), default)
        return out, JAR
    _set(out, path, fn, default)
    return out, JAR


def _base() -> dict[str, Any]:
    return {
        "apiVersion": "flink-gitops/v1",
        "kind": "FlinkJob",
        "metadata": {"name": "x"},
        "spec": {"job": {"jarURI": "a.jar"}},
    }


ALL_PATHS = sorted(leaves(_job_of(_with_defaults(_base())), JAR))


def test_every_leaf_has_a_mutation_and_a_class() -> None:
    assert set(ALL_PATHS) - {JAR_PATH} == set(MUTATIONS)
    classes = {p: c for p, (c, _v) in leaves(_job_of(_with_defaults(_base())), JAR).items()}
    assert classes[("spec", "job", "parallelism")] is Change.SCALE
    assert classes[("spec", "job", "state")] is Change.STATE
    assert classes[("spec", "job", "savepointTriggerNonce")] is Change.SAVEPOINT
    assert classes[("spec", "job", "restartNonce")] is Change.REDEPLOY
    assert classes[("metadata", "labels")] is Change.IGNORE
    assert classes[JAR_PATH] is Change.UPGRADE


@given(SPECS, st.randoms(use_true_random=False))
def test_key_order_does_not_change_the_hash(data: dict[str, Any], rnd: random.Random) -> None:
    assert spec_hash(_job_of(_shuffled(data, rnd)), JAR) == spec_hash(_job_of(data), JAR)


@given(SPECS)
def test_writing_defaults_out_does_not_change_the_hash(data: dict[str, Any]) -> None:
    assert spec_hash(_job_of(_with_defaults(data)), JAR) == spec_hash(_job_of(data), JAR)


@given(SPECS, st.sampled_from(ALL_PATHS))
def test_a_change_changes_the_hash_exactly_when_the_field_is_not_ignored(
    data: dict[str, Any], path: tuple[str, ...]
) -> None:
    before = _job_of(data)
    changed, jar = _mutate(data, path)
    after = _job_of(changed)
    cls = leaves(after, jar)[path][0]
    result = classify(before, JAR, after, jar)
    assert path in {tuple(p.path.split("[")[0].split(".")) for p in result.fields}
    if path == ("spec", "schedule"):
        # schedule needs mode: batch, so both change (both UPGRADE)
        assert result.change is Change.UPGRADE
    else:
        assert result.change is cls
    if cls is Change.IGNORE:
        assert spec_hash(after, jar) == spec_hash(before, JAR)
    else:
        assert spec_hash(after, jar) != spec_hash(before, JAR)


@given(SPECS)
def test_classify_of_a_spec_with_itself_is_no_change(data: dict[str, Any]) -> None:
    job = _job_of(data)
    result = classify(job, JAR, _job_of(_with_defaults(data)), JAR)
    assert result.change is None
    assert result.fields == ()


@given(
    SPECS,
    st.sets(
        st.sampled_from([p for p in MUTATIONS if p not in {("spec", "schedule"), ("spec", "mode")}]),
        min_size=1,
    ),
)
def test_classify_takes_the_max_of_the_changed_fields(
    data: dict[str, Any], paths: set[tuple[str, ...]]
) -> None:
    before = _job_of(data)
    changed = _with_defaults(data)
    for path in paths:
        fn, default = MUTATIONS[path]
        if path[1] == "savepoints":
            current = _job_of(changed).spec.savepoints.model_dump()[path[-1]]
            _set(changed, path, functools.partial(_apply_to, fn, current), default)
        else:
            _set(changed, path, fn, default)
    after = _job_of(changed)
    result = classify(before, JAR, after, JAR)
    expected = max(leaves(after, JAR)[p][0] for p in paths)
    assert result.change is expected


def test_hash_is_sha256_of_sorted_canonical_json() -> None:
    import hashlib

    job = _job_of(_base())
    body = canonical_json(essence(job, JAR))
    assert body.startswith(b'{"spec":{')
    assert b"metadata" not in body  # identity and labels are not part of the essence
    assert spec_hash(job, JAR) == hashlib.sha256(body).hexdigest()


def test_flink_session_job_hashes_like_the_same_flinkjob() -> None:
    session = FlinkSessionJob.model_validate(
        {
            "apiVersion": "flink.apache.org/v1beta1",
            "kind": "FlinkSessionJob",
            "metadata": {"name": "inv", "namespace": "flink"},
            "spec": {
                "deploymentName": "default",
                "restartNonce": 3,
                "flinkConfiguration": {"parallelism.default": "2"},
                "job": {
                    "jarURI": "a.jar",
                    "parallelism": 2,
                    "upgradeMode": "savepoint",
                    "savepointTriggerNonce": None,
                },
            },
        }
    ).to_flinkjob()
    same = _job_of(
        {
            "apiVersion": "flink-gitops/v1",
            "kind": "FlinkJob",
            "metadata": {"name": "inv"},
            "spec": {
                "cluster": "default",
                "flinkConfiguration": {"parallelism.default": 2},
                "job": {"jarURI": "a.jar", "parallelism": 2, "restartNonce": 3},
            },
        }
    )
    assert spec_hash(session, JAR) == spec_hash(same, JAR)
    assert session.spec.job.restartNonce == 3
