"""Bounded YAML reading: limits stop hostile files quickly; positions, merges and tags behave."""

from __future__ import annotations

import time

import pytest
import yaml

from flink_gitops.settings import SpecLimits
from flink_gitops.specs.yamlsafe import parse_documents


def _laughs(levels: int) -> bytes:
    lines = ["a: &a [" + ", ".join(["lol"] * 10) + "]"]
    for i in range(levels):
        prev, cur = chr(97 + i), chr(98 + i)
        lines.append(f"{cur}: &{cur} [" + ", ".join([f"*{prev}"] * 10) + "]")
    return ("\n".join(lines) + "\n").encode()


@pytest.mark.timeout(10)
def test_billion_laughs_is_refused_quickly_without_expanding() -> None:
    started = time.process_time()
    docs, problems = parse_documents(_laughs(9), "bomb.yaml", SpecLimits())
    assert docs == []
    assert len(problems) == 1
    assert "more than 100000 YAML nodes" in problems[0].message
    # far below what building 10^10 strings would take; a generous bound, not a benchmark
    assert time.process_time() - started < 5


def test_alias_expansion_counts_against_the_node_limit() -> None:
    limits = SpecLimits(max_nodes=50)
    # 4 aliases to a 12-node list: 1 + 12 + 4*12 > 50 nodes although the text is short
    text = b"base: &b [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]\nuse: [*b, *b, *b, *b]\n"
    _docs, problems = parse_documents(text, "f.yaml", limits)
    assert problems
    assert "more than 50 YAML nodes" in problems[0].message
    assert problems[0].line == 2
    ok_docs, ok_problems = parse_documents(text, "f.yaml", SpecLimits(max_nodes=100))
    assert ok_problems == []
    assert ok_docs[0].value["use"][3] == list(range(1, 12))


@pytest.mark.timeout(10)
def test_deep_nesting_is_refused_without_recursion_error() -> None:
    # Whether our depth check or libyaml's own limit (PyYAML >= 6.0.4 bundles one) speaks first,
    # the file is refused, named and located, and nothing of it is kept.
    docs, problems = parse_documents(b"[" * 200_000 + b"]" * 200_000, "deep.yaml", SpecLimits())
    assert docs == []
    assert len(problems) == 1
    assert problems[0].file == "deep.yaml"
    assert problems[0].line == 1


def test_nesting_just_past_the_limit_is_refused_by_our_check() -> None:
    ok = b"a: " + b"[" * 31 + b"1" + b"]" * 31 + b"\n"
    docs, problems = parse_documents(ok, "ok.yaml", SpecLimits(max_depth=32))
    assert problems == []
    assert len(docs) == 1
    deep = b"a: " + b"[" * 32 + b"1" + b"]" * 32 + b"\n"
    _docs, problems = parse_documents(deep, "deep.yaml", SpecLimits(max_depth=32))
    assert [(p.file, p.line, p.message) for p in problems] == [
        ("deep.yaml", 1, "nesting deeper than 32 levels")
    ]


def test_depth_through_an_alias_counts() -> None:
    nested = "[" * 20 + "1" + "]" * 20
    text = f"a: &x {nested}\nb: [[[[[[[[[[[[[*x]]]]]]]]]]]]]\n".encode()
    _docs, problems = parse_documents(text, "f.yaml", SpecLimits(max_depth=32))
    assert problems
    assert "through an alias" in problems[0].message
    assert problems[0].line == 2


def test_document_count_and_file_size_limits() -> None:
    many = b"---\na: 1\n" * 11
    _docs, problems = parse_documents(many, "m.yaml", SpecLimits(max_documents=10))
    assert problems[0].message == "too many YAML documents in one file (limit 10)"
    assert problems[0].line == 21
    _docs, problems = parse_documents(b"a: 1\n" * 100, "big.yaml", SpecLimits(max_file_bytes=100))
    assert problems[0].message == "file larger than 100 bytes"


def test_positions_of_values_and_keys_are_one_based() -> None:
    docs, problems = parse_documents(b"# c\nspec:\n  job:\n    parallelism: 4\n", "f.yaml", SpecLimits())
    assert problems == []
    doc = docs[0]
    assert doc.values[("spec", "job", "parallelism")] == (4, 18)
    assert doc.keys[("spec", "job", "parallelism")] == (4, 5)
    # an unknown deeper path falls back to its nearest recorded ancestor
    assert doc.locate(("spec", "job", "parallelism", "x")) == (4, 18)
    assert doc.locate(("spec", "job"), key=True) == (3, 3)


def test_merge_keys_merge_without_overriding() -> None:
    text = b"base: &b {x: 1, y: 2}\nobj:\n  <<: *b\n  y: 3\n"
    docs, problems = parse_documents(text, "f.yaml", SpecLimits())
    assert problems == []
    assert docs[0].value["obj"] == {"x": 1, "y": 3}


def test_scalars_resolve_like_safe_load_except_dates() -> None:
    text = b"a: 1\nb: 1.5\nc: true\nd: null\ne: '1'\nf: 2024-01-02\ng: ! 5\n"
    docs, _ = parse_documents(text, "f.yaml", SpecLimits())
    expected = yaml.safe_load(text)
    expected["f"] = "2024-01-02"
    expected["g"] = "5"
    assert docs[0].value == expected


def test_syntax_error_keeps_documents_before_it() -> None:
    text = b"a: 1\n---\nb: [1\n"
    docs, problems = parse_documents(text, "f.yaml", SpecLimits())
    assert [d.value for d in docs] == [{"a": 1}]
    assert problems[0].message.startswith("YAML syntax error")
    assert problems[0].line == 4


def test_self_referencing_anchor_is_an_error() -> None:
    _docs, problems = parse_documents(b"a: &x [*x]\n", "f.yaml", SpecLimits())
    assert "unknown (or self-referencing) alias *x" in problems[0].message


def test_not_utf8_is_reported() -> None:
    _docs, problems = parse_documents(b"a: \xff\xfe\x00bad\n", "f.yaml", SpecLimits())
    assert problems[0].message.startswith("not UTF-8 text")
