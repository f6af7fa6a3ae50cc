"""A corpus of hostile spec files for ``validate`` and ``plan`` (see test_hostile_corpus.py).

Each :class:`Case` is one file (or a few) a pull request could add under ``jobs/``, and what
the tools must say about it: ``error`` (a message substring, optionally the line), ``warning``
(reported, exit 0), or ``ok`` (no problem at all: hostile-looking but valid). The contents are
built here because many are binary, huge or symlinks.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tests.specs.helpers import spec_yaml


@dataclass(frozen=True)
class Link:
    """A symlink to ``target`` (as written, relative to the link's directory or absolute)."""

    target: str


Content = bytes | Link


@dataclass(frozen=True)
class Case:
    id: str
    #: files, by path relative to the repository root.
    files: dict[str, Content]
    verdict: Literal["error", "warning", "ok"]
    #: a substring of the problem reported at the case's first file (None: any problem).
    expect: str | None = None
    line: int | None = None
    #: the file the problem is reported at (default: the first of ``files``).
    at: str | None = None
    tags: frozenset[str] = field(default_factory=frozenset)

    @property
    def path(self) -> str:
        return self.at or next(iter(self.files))


HEAD = b"apiVersion: flink-gitops/v1\nkind: FlinkJob\nmetadata:\n  name: "
BIG = 900_000


def _spec(name: str, **kw: str) -> bytes:
    return spec_yaml(name, **kw).encode()


def _one(
    case_id: str,
    content: Content,
    verdict: Literal["error", "warning", "ok"],
    expect: str | None,
    line: int | None = None,
    *tags: str,
) -> Case:
    return Case(case_id, {f"jobs/{case_id}.yaml": content}, verdict, expect, line, tags=frozenset(tags))


_LAUGHS = b'a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]\n' + b"".join(
    f"{chr(98 + i)}: &{chr(98 + i)} [*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},"
    f"*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)},*{chr(97 + i)}]\n".encode()
    for i in range(8)
)

CASES: list[Case] = [
    # --- the file-level problems the issue names ------------------------------------------------
    _one(
        "oversize",
        b"# " + b"x" * (2 * 1024 * 1024) + b"\n",
        "error",
        "file larger than 1048576 bytes",
        None,
        "plan6",
    ),
    _one("yaml-bomb", _LAUGHS, "error", "YAML nodes in one file", None, "plan6"),
    _one("too-deep", b"a: " + b"[" * 40 + b"]" * 40 + b"\n", "error", "nesting deeper than 32", 1, "plan6"),
    _one("very-deep", b"[" * 5000 + b"]" * 5000 + b"\n", "error", None, 1),
    _one("not-utf8", HEAD + b"caf\xe9\n", "error", "not UTF-8 text: byte 0xe9 at offset 64", 4, "plan6"),
    _one("utf16", "apiVersion: x\n".encode("utf-16"), "error", "not UTF-8 text: byte 0xff at offset 0", 1),
    _one("binary", b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 16, "error", "not UTF-8 text", 1),
    _one(
        "tag-python", b"!!python/object/apply:os.system ['id']\n", "error", "unsupported YAML tag", 1, "plan6"
    ),
    _one("tag-custom", HEAD + b"a\nspec: !Ref other\n", "error", "unsupported YAML tag '!Ref'", 5),
    _one("tag-on-mapping", b"!!python/object:os.Foo {a: 1}\n", "error", "unsupported YAML tag", 1),
    _one(
        "symlink-out",
        Link("../../../../../../../etc/passwd"),
        "error",
        "points outside the repository",
        None,
        "plan6",
    ),
    _one("symlink-absolute", Link("/etc/passwd"), "error", "points outside the repository"),
    Case(
        "symlink-loop",
        {
            "jobs/symlink-loop.yaml": Link("symlink-loop-b.yaml"),
            "jobs/symlink-loop-b.yaml": Link("symlink-loop.yaml"),
        },
        "error",
        "more than 8 symlinks in a row",
    ),
    _one("symlink-dangling", Link("nowhere.yaml"), "error", "which does not exist"),
    # --- characters YAML refuses, reported with their position --------------------------------
    _one(
        "nul-byte",
        b"apiVersion: flink-gitops/v1\nkind: Flink\x00Job\n",
        "error",
        "a NUL byte at offset 39 (line 2, column 12)",
        2,
    ),
    _one("escape-char", HEAD + b"\x1b[31mred\n", "error", "character U+001B", 4),
    # --- huge values: reported, never echoed whole --------------------------------------------
    _one(
        "huge-name",
        HEAD + b"a" * BIG + b"\n",
        "error",
        f"… ({BIG} characters) is not a lowercase DNS label",
        4,
    ),
    # a plain key longer than 1024 characters is no key to YAML: a syntax error, reported briefly
    _one(
        "huge-key",
        _spec("huge-key", extra_job="k" * BIG + ": 1\n"),
        "error",
        "could not find expected ':'",
        8,
    ),
    _one(
        "long-key",
        _spec("long-key", extra_job="k" * 1000 + ": 1\n"),
        "error",
        "(1000 characters): unknown field",
        8,
    ),
    _one(
        "huge-config-string",
        _spec("huge-config-string", extra_spec="flinkConfiguration: {a: " + "v" * BIG + "}\n"),
        "ok",
        None,
    ),
    _one(
        "huge-jar-uri",
        _spec("huge-jar-uri", jar="x" * BIG + ".jar"),
        "error",
        f"({BIG + 4} characters) not found",
        7,
    ),
    _one(
        "huge-config-value",
        _spec("huge-config-value", extra_spec="flinkConfiguration: [" + "1," * 200_000 + "]\n"),
        "error",
        "more than 100000 YAML nodes",
    ),
    _one(
        "huge-int",
        _spec("huge-int", extra_job="parallelism: " + "9" * 5000 + "\n"),
        "error",
        "bad int value '" + "9" * 40 + "'… (5000 characters)",
        8,
    ),
    _one(
        "huge-float",
        _spec("huge-float", extra_job="parallelism: 1e400\n"),
        "error",
        "spec.job.parallelism",
        8,
    ),
    _one("nan", _spec("nan", extra_job="parallelism: .nan\n"), "error", "spec.job.parallelism", 8),
    _one(
        "flow-100k-items",
        HEAD + b"x\nspec: [" + b"1," * 100_001 + b"]\n",
        "error",
        "more than 100000 YAML nodes",
    ),
    _one("many-documents", b"---\na: 1\n" * 101, "error", "too many YAML documents"),
    # --- wrong types --------------------------------------------------------------------------
    _one(
        "metadata-list",
        b"apiVersion: flink-gitops/v1\nkind: FlinkJob\nmetadata: [a]\nspec: {}\n",
        "error",
        "metadata: Input should be",
        3,
    ),
    _one("spec-string", HEAD + b"spec-string\nspec: run it\n", "error", "spec: Input should be", 5),
    _one(
        "parallelism-text",
        _spec("parallelism-text", extra_job='parallelism: "4"\n'),
        "error",
        "spec.job.parallelism: Input should be a valid integer",
        8,
    ),
    _one("args-int", _spec("args-int", extra_job="args: 5\n"), "error", "spec.job.args", 8),
    _one("name-int", HEAD + b"123\nspec: {job: {jarURI: artifacts/app.jar}}\n", "error", "metadata.name", 4),
    _one("name-null", HEAD + b"~\nspec: {job: {jarURI: artifacts/app.jar}}\n", "error", "metadata.name", 4),
    _one(
        "duration-spaced",
        _spec("duration-spaced", extra_spec="savepoints: {periodic: 5 m}\n"),
        "error",
        "'5 m' is not a duration",
        8,
    ),
    _one(
        "duration-unicode-digit",
        _spec("duration-unicode-digit", extra_spec="savepoints: {periodic: ٥m}\n"),
        "error",
        "is not a duration",
        8,
    ),
    _one("scalar-document", b"just some text\n", "error", "a spec document must be a mapping", 1),
    _one("list-document", b"- a\n- b\n", "error", "a spec document must be a mapping", 1),
    _one("complex-key", b"? [a, b]\n: c\n", "error", "mapping keys must be plain scalars", 1),
    _one("duplicate-key", _spec("duplicate-key") + b"kind: FlinkJob\n", "error", "duplicate key 'kind'", 8),
    _one("unknown-alias", b"a: *nowhere\n", "error", "unknown (or self-referencing) alias *nowhere", 1),
    _one("syntax-error", b'a: "unclosed\n', "error", "YAML syntax error", 2),
    Case("newline-in-name", {"jobs/evil\nname.yaml": b"a: 1\n"}, "error", "missing apiVersion", 1),
    # --- nothing in it: a warning (a truncated file would silently drop its jobs) ---------------
    _one("empty", b"", "warning", "no spec document in this file (empty)"),
    _one("comments-only", b"# nothing here\n# at all\n", "warning", "no spec document"),
    _one("whitespace-only", b"   \n\n  \n", "warning", "no spec document"),
    _one("bare-separator", b"---\n...\n", "warning", "no spec document"),
    # --- artifacts and restore paths (issue 9): refused at validate time, at their line ----------
    _one(
        "jar-url-credentials",
        _spec("jar-url-credentials", jar="https://deployer:hunter2@repo.example/app.jar"),
        "error",
        "must not hold credentials",
        7,
    ),
    _one(
        "jar-url-no-path",
        _spec("jar-url-no-path", jar="https://repo.example"),
        "error",
        "needs a host and a path",
        7,
    ),
    _one(
        "jar-url-unpinned",
        _spec("jar-url-unpinned", jar="https://repo.example/app.jar?X-Amz-Signature=t0ken"),
        "warning",
        "has no jarSha256",
        7,
    ),
    _one(
        "jar-sha-garbage",
        _spec("jar-sha-garbage", extra_job='jarSha256: "zz-not-hex"\n'),
        "error",
        "jarSha256 must be 64 hexadecimal characters",
        8,
    ),
    _one(
        "jar-sha-huge",
        _spec("jar-sha-huge", extra_job=f"jarSha256: {'a' * 100_000}\n"),
        "error",
        "jarSha256 must be 64 hexadecimal characters",
        8,
    ),
    _one(
        "jar-sha-wrong",
        _spec("jar-sha-wrong", extra_job="jarSha256: " + "ab" * 32 + "\n"),
        "error",
        "jarSha256 does not match",
        7,
    ),
    _one(
        "jar-file-dotdot",
        _spec("jar-file-dotdot", jar="file:///opt/jars/../../etc/passwd"),
        "error",
        "outside the repository and the allowed artifact_roots",
        7,
    ),
    _one(
        "jar-file-encoded",
        _spec("jar-file-encoded", jar="file:///opt/jars/%2e%2e/%2e%2e/etc/passwd"),
        "error",
        "percent-escapes are not allowed",
        7,
    ),
    _one(
        "savepoint-dotdot",
        _spec("savepoint-dotdot", extra_job="initialSavepointPath: file:///sp/../etc\n"),
        "error",
        "'..' path segment",
        8,
    ),
    _one(
        "savepoint-encoded",
        _spec("savepoint-encoded", extra_job="initialSavepointPath: file:///sp/%2E%2e/etc\n"),
        "error",
        "'..' path segment",
        8,
    ),
    _one(
        "savepoint-no-roots",
        _spec("savepoint-no-roots", extra_job="initialSavepointPath: file:///sp/savepoint-1\n"),
        "error",
        "no savepoint roots are configured",
        8,
    ),
    _one(
        "config-denied",
        _spec("config-denied", extra_spec="flinkConfiguration:\n  pipeline.classpaths: file:///tmp/x.jar\n"),
        "error",
        "'pipeline.classpaths' is not allowed",
        9,
    ),
    _one(
        "config-denied-internal",
        _spec("config-denied-internal", extra_spec="flinkConfiguration: {$internal.pipeline.job-id: x}\n"),
        "error",
        "is not allowed (denied by '$internal.*'",
        8,
    ),
    _one(
        "config-denied-disguised",
        _spec(
            "config-denied-disguised",
            extra_spec='flinkConfiguration:\n  " Execution.State-Recovery.Path ": /x\n',
        ),
        "error",
        "denied by 'execution.state-recovery.*'",
        9,
    ),
    # --- hostile-looking but valid ------------------------------------------------------------
    _one("crlf", _spec("crlf").replace(b"\n", b"\r\n"), "ok", None),
    _one("utf8-bom", b"\xef\xbb\xbf" + _spec("utf8-bom"), "ok", None),
    _one("big-comment", _spec("big-comment") + b"# " + b"c" * BIG + b"\n", "ok", None),
    _one("symlink-inside", Link("../other/real.yaml"), "ok", None),
]

#: cases also run alone (validate), to check the exit status each gets by itself.
ALONE = {
    "oversize",
    "yaml-bomb",
    "too-deep",
    "not-utf8",
    "tag-python",
    "symlink-out",
    "nul-byte",
    "huge-name",
    "empty",
    "crlf",
    "symlink-inside",
    "jar-url-credentials",
    "savepoint-encoded",
    "config-denied",
}

#: files the ok-case symlink points to (outside jobs/, so not loaded twice).
SUPPORT: dict[str, Content] = {"other/real.yaml": _spec("symlink-inside")}
