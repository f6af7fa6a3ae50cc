"""The loader never raises on hostile or random input: every outcome is a state with problems."""

from __future__ import annotations

from typing import Any

import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from flink_gitops.settings import SpecLimits
from flink_gitops.specs.loader import _parse_file
from flink_gitops.specs.yamlsafe import parse_documents

_scalars = st.one_of(
    st.none(), st.booleans(), st.integers(-(2**70), 2**70), st.floats(allow_nan=False), st.text(max_size=12)
)
_values = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=10), inner, max_size=4)
    ),
    max_leaves=20,
)
_keys = ["apiVersion", "kind", "metadata", "spec", "job", "jarURI", "name", "parallelism", "schedule", "mode"]


def _spec_like(extra: Any, where: str) -> dict[str, Any]:
    doc: dict[str, Any] = {
        "apiVersion": "flink-gitops/v1",
        "kind": "FlinkJob",
        "metadata": {"name": "fuzz"},
        "spec": {"job": {"jarURI": "artifacts/app.jar"}},
    }
    target = {"top": doc, "metadata": doc["metadata"], "spec": doc["spec"], "job": doc["spec"]["job"]}[where]
    if isinstance(extra, dict):
        target.update(extra)
    else:
        target[where] = extra
    return doc


@settings(max_examples=150)
@given(
    st.dictionaries(st.sampled_from(_keys), _values, max_size=4),
    st.sampled_from(["top", "metadata", "spec", "job"]),
)
def test_random_structures_give_problems_not_exceptions(extra: dict[str, Any], where: str) -> None:
    text = yaml.safe_dump(_spec_like(extra, where), allow_unicode=True).encode()
    parsed = _parse_file("f.yaml", text, SpecLimits(), None)
    for doc in parsed.docs:
        assert (doc.spec is None) == bool(doc.problems)
        for problem in doc.problems:
            assert problem.file == "f.yaml"
            assert problem.line is not None


@settings(max_examples=200)
@given(
    st.binary(max_size=300) | st.text(alphabet="{}[]:-,&*!|>'\"#%@ \n\tab01", max_size=200).map(str.encode)
)
def test_random_bytes_never_raise(data: bytes) -> None:
    docs, problems = parse_documents(data, "f.yaml", SpecLimits(max_nodes=500, max_depth=8))
    assert isinstance(docs, list)
    assert all(p.is_error for p in problems)
    _parse_file("f.yaml", data, SpecLimits(max_nodes=500, max_depth=8), None)
