"""Loading a revision's spec files into a validated desired state.

:class:`SpecLoader` walks a :class:`~flink_gitops.source.tree.Tree` (a Git
commit or a working directory), reads every ``*.yaml`` / ``*.yml`` below the
spec directory (hidden directories skipped) with ``specs.yamlsafe`` (bounded,
positions kept), validates each document against ``specs.model`` and checks
the things a schema cannot: jar locations and checksums against the tree,
duplicate job names across files, symlinks that leave the repository, files
and directories that cannot be read, a spec directory that is not there.

Safety rule: an invalid file invalidates only its own jobs, and they are
reported as :class:`InvalidJob` ("invalid, left as is"), never as removed. A
file whose job names cannot be recovered is still listed in
:attr:`DesiredState.invalid_files`, so pruning can refuse to delete any job last
seen in it (:meth:`DesiredState.may_prune`).

Incremental: parse and validation results are cached per (path, blob id), so
the next revision re-parses only files whose content changed; the cross-file
checks (jars, duplicate names) are recomputed on every load (cheap, memoised
by jar blob). Neighbours: ``source.tree`` / ``source.git`` (trees),
``specs.hashing`` (spec hash), the planner and ``cli.validate`` / ``cli.plan``.
"""

from __future__ import annotations

import difflib
import hashlib
import posixpath
import types
import typing
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import BaseModel, ValidationError

from flink_gitops.settings import Settings, SpecLimits
from flink_gitops.source.errors import UnreadableError
from flink_gitops.source.tree import Tree, TreeEntry, normalise
from flink_gitops.specs.errors import Problem, SpecError, quote, redact_url, shown
from flink_gitops.specs.guards import SpecGuards
from flink_gitops.specs.hashing import jar_digest_of, spec_hash
from flink_gitops.specs.model import KINDS, FlinkJob, FlinkSessionJob
from flink_gitops.specs.yamlsafe import Position, YamlDocument, YamlPath, parse_documents

SPEC_SUFFIXES = (".yaml", ".yml")
MAX_SYMLINK_HOPS = 8
#: a metadata.name longer than this (a DNS subdomain's limit) is not taken as a job name: no job
#: can have it, and it would only make every message that names the job huge.
MAX_RECOVERED_NAME = 253
_KINDS_TEXT = "flink-gitops/v1 FlinkJob or flink.apache.org/v1beta1 FlinkSessionJob"


@dataclass(frozen=True, slots=True)
class JarRef:
    """Where a job's jar comes from, as the deploy stage needs it."""

    kind: Literal["repo", "file", "https"]
    #: repo-relative path (symlinks resolved), absolute host path, or URL.
    location: str
    #: the content's SHA-256: computed for repo jars, the pinned jarSha256 otherwise (None: unpinned).
    sha256: str | None


@dataclass(frozen=True, slots=True)
class DesiredJob:
    """A valid job as the revision describes it."""

    name: str
    file: str
    line: int
    #: "FlinkJob" or "FlinkSessionJob" (the kind it was written as; ``spec`` is always a FlinkJob).
    source_kind: str
    spec: FlinkJob
    jar: JarRef
    #: the essence's jar value (``sha256:<hex>``; ``url:<hash of the location>`` for an unpinned jar
    #: whose bytes were not read: validate and plan; sync reads them, see ``execute.artifacts``).
    jar_digest: str
    spec_hash: str
    warnings: tuple[Problem, ...] = ()
    #: sha256 over the whole spec, IGNORE-class fields too (labels, upgradeMode...): it tells a
    #: record-only change from none where ``spec_hash`` cannot. Computed once per load.
    full_digest: str = field(init=False, default="", compare=False)

    def __post_init__(self) -> None:
        digest = hashlib.sha256(self.spec.model_dump_json().encode() + self.jar_digest.encode()).hexdigest()
        object.__setattr__(self, "full_digest", digest)

    @property
    def unpinned(self) -> bool:
        """An https:// jar without jarSha256 (the deploy refuses it unless allow_unpinned_artifacts)."""
        return self.jar.kind == "https" and self.jar.sha256 is None

    def pinned_by_content(self, sha256_hex: str) -> DesiredJob:
        """This job with its jar pinned to the bytes that were read (an unpinned jar, at sync)."""
        digest = jar_digest_of(sha256_hex)
        return DesiredJob(
            self.name, self.file, self.line, self.source_kind, self.spec,
            JarRef(self.jar.kind, self.jar.location, sha256_hex.lower()), digest,
            spec_hash(self.spec, digest), self.warnings,
        )  # fmt: skip


@dataclass(frozen=True, slots=True)
class InvalidJob:
    """A job (or an unparseable file) that is invalid in this revision: left as is, never removed."""

    #: None when no name could be recovered.
    name: str | None
    file: str
    line: int | None
    problems: tuple[Problem, ...]


@dataclass(frozen=True)
class DesiredState:
    """The desired state of one revision."""

    commit: str | None
    #: per job name: a valid DesiredJob, or an InvalidJob (leave that job as it is).
    jobs: Mapping[str, DesiredJob | InvalidJob]
    #: invalid documents or files from which no job name could be recovered.
    unnamed: tuple[InvalidJob, ...]
    #: every spec file with at least one error: no job last seen in one of these may be pruned.
    invalid_files: frozenset[str]
    #: spec file → names of the jobs it defines (valid or not).
    files: Mapping[str, tuple[str, ...]]
    #: every problem (errors and warnings), sorted by file and line.
    problems: tuple[Problem, ...]

    @property
    def errors(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if p.is_error)

    @property
    def warnings(self) -> tuple[Problem, ...]:
        return tuple(p for p in self.problems if not p.is_error)

    @property
    def ok(self) -> bool:
        return not self.errors

    def valid_jobs(self) -> dict[str, DesiredJob]:
        return {n: j for n, j in self.jobs.items() if isinstance(j, DesiredJob)}

    def invalid_jobs(self) -> dict[str, InvalidJob]:
        return {n: j for n, j in self.jobs.items() if isinstance(j, InvalidJob)}

    def errors_of(self, file: str) -> tuple[Problem, ...]:
        """The errors of ``file`` itself, or of a directory it is in (unreadable, missing)."""
        return tuple(
            p
            for p in self.errors
            if p.file == file or p.file == "." or file.startswith(p.file.rstrip("/") + "/")
        )

    def may_prune(self, name: str, last_seen_file: str | None) -> bool:
        """Whether a job absent from this revision may be treated as deleted.

        Never when the name is still present (even invalid), when the file it was
        last seen in is invalid now, or when that file is unknown and any file is invalid.
        """
        if name in self.jobs:
            return False
        if last_seen_file is None:
            return not self.invalid_files
        # an invalid "file" may be a directory (unreadable, or the missing spec directory)
        return not any(
            last_seen_file == bad or last_seen_file.startswith(bad.rstrip("/") + "/") or bad == "."
            for bad in self.invalid_files
        )


def unpinned_digest(location: str) -> str:
    """The essence's jar value for an unpinned jar before its bytes are read (``validate``, ``plan``):
    ``url:`` and a hash of the location (a URL's query may hold a token, so never the URL itself).
    ``sync`` replaces it with the content digest (``execute.artifacts.pin_unpinned``)."""
    return "url:" + hashlib.sha256(location.encode("utf-8", "surrogatepass")).hexdigest()


def _bad_https(uri: str) -> str | None:
    """Why an https:// jarURI cannot be used, or None."""
    try:
        parts = urlsplit(uri)
        parts.port  # noqa: B018 - raises for a port that is no number or out of range
    except ValueError:
        return "is not a valid https:// URL"
    if parts.username is not None or parts.password is not None:
        return "must not hold credentials (user:password@): serve the jar without them, pinned by jarSha256"
    if not parts.hostname or not parts.path or parts.path == "/":
        return "is not a valid https:// URL (it needs a host and a path)"
    if any(ord(c) < 0x21 or ord(c) == 0x7F for c in uri):
        return "contains blanks or control characters"
    return None


# --- per-file parse results (cached by blob) -------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Doc:
    index: int
    line: int
    name: str | None
    name_pos: Position | None
    source_kind: str | None
    spec: FlinkJob | None
    jar_pos: Position | None
    cluster_pos: Position | None
    problems: tuple[Problem, ...]


@dataclass(slots=True)
class _File:
    path: str
    docs: tuple[_Doc, ...]
    problems: tuple[Problem, ...]
    #: (doc index, jar digest) → spec hash.
    hashes: dict[tuple[int, str], str] = field(default_factory=dict)


def _loc_text(loc: Iterable[str | int]) -> str:
    out = ""
    for part in loc:
        text = shown(part)
        out += f"[{part}]" if isinstance(part, int) else (f".{text}" if out else text)
    return out


def _submodel(annotation: Any) -> type[BaseModel] | None:
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    origin = typing.get_origin(annotation)
    if origin in (typing.Union, types.UnionType, typing.Annotated):
        for arg in typing.get_args(annotation):
            found = _submodel(arg)
            if found is not None:
                return found
    return None


def _fields_at(model: type[BaseModel], loc: YamlPath) -> list[str]:
    current: type[BaseModel] | None = model
    for part in loc:
        if current is None or not isinstance(part, str) or part not in current.model_fields:
            return []
        current = _submodel(current.model_fields[part].annotation)
    return list(current.model_fields) if current is not None else []


def _value_at(value: Any, loc: YamlPath) -> Any:
    for part in loc:
        in_list = isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value)
        if not in_list and not (isinstance(value, dict) and part in value):
            return None
        value = value[part]
    return value


def _schema_problems(
    file: str, doc: YamlDocument, model: type[BaseModel], exc: ValidationError
) -> list[Problem]:
    out: list[Problem] = []
    for err in exc.errors(include_url=False, include_context=False, include_input=False):
        loc: YamlPath = tuple(err["loc"])
        kind = err["type"]
        if kind == "extra_forbidden" and loc:
            line, col = doc.locate(loc, key=True)
            message = f"{_loc_text(loc)}: unknown field"
            close = difflib.get_close_matches(str(loc[-1]), _fields_at(model, loc[:-1]), n=1, cutoff=0.6)
            if close:
                message += f" (did you mean {close[0]!r}?)"
        elif kind == "missing" and loc:
            line, col = doc.locate(loc[:-1], key=True)
            message = f"{_loc_text(loc)}: required field missing"
        else:
            # an error about a whole mapping (a model rule) points at its key
            line, col = doc.locate(loc, key=isinstance(_value_at(doc.value, loc), dict))
            text = str(err["msg"]).removeprefix("Value error, ")
            message = f"{_loc_text(loc)}: {text}" if loc else text
        out.append(Problem(file, line, col, message))
    return out


def _guard_problems(file: str, doc: YamlDocument, spec: FlinkJob, guards: SpecGuards) -> list[Problem]:
    """The savepoint-root and configuration deny-list rules (``specs.guards``), at their lines."""
    out: list[Problem] = []
    location = spec.spec.job.initialSavepointPath
    if location is not None:
        why = guards.savepoint_problem(location)
        if why is not None:
            line, col = doc.locate(("spec", "job", "initialSavepointPath"))
            if (line, col) == doc.locate(("spec", "job")):
                line, col = doc.locate(("spec", "job", "initialStateReference", "path"))
            out.append(Problem(file, line, col, f"{why}: {quote(redact_url(location), 80)}", job=spec.name))
    for key in spec.spec.flinkConfiguration:
        pattern = guards.denied_key(key)
        if pattern is not None:
            line, col = doc.locate(("spec", "flinkConfiguration", key), key=True)
            message = (
                f"flinkConfiguration key {quote(key, 80)} is not allowed (denied by {pattern!r} in "
                "denied_configuration_keys: it changes where state or code is read from)"
            )
            out.append(Problem(file, line, col, message, job=spec.name))
    return out


def _parse_doc(
    file: str,
    index: int,
    doc: YamlDocument,
    clusters: Collection[str] | None,
    guards: SpecGuards | None = None,
) -> _Doc:
    value = doc.value
    if not isinstance(value, dict):
        problem = Problem(
            file, doc.line, 1, "a spec document must be a mapping (apiVersion, kind, metadata, spec)"
        )
        return _Doc(index, doc.line, None, None, None, None, None, None, (problem,))
    meta = value.get("metadata")
    raw_name = meta.get("name") if isinstance(meta, dict) else None
    recoverable = isinstance(raw_name, str) and 0 < len(raw_name) <= MAX_RECOVERED_NAME
    name = raw_name if recoverable else None
    name_pos = doc.locate(("metadata", "name")) if name else None
    api, kind = value.get("apiVersion"), value.get("kind")
    model = KINDS.get((api, kind)) if isinstance(api, str) and isinstance(kind, str) else None
    if model is None:
        if api is None:
            line, col = doc.line, 1
            message = f"missing apiVersion (expected {_KINDS_TEXT})"
        else:
            line, col = doc.locate(("apiVersion",))
            message = f"unsupported apiVersion/kind {shown(api)}/{shown(kind)} (expected {_KINDS_TEXT})"
        return _Doc(
            index,
            doc.line,
            name,
            name_pos,
            None,
            None,
            None,
            None,
            (Problem(file, line, col, message, job=name),),
        )
    try:
        parsed = model.model_validate(value)
        spec = parsed.to_flinkjob() if isinstance(parsed, FlinkSessionJob) else parsed
    except ValidationError as exc:
        problems = tuple(
            Problem(p.file, p.line, p.col, p.message, job=name)
            for p in _schema_problems(file, doc, model, exc)
        )
        return _Doc(index, doc.line, name, name_pos, kind, None, None, None, problems)
    assert isinstance(spec, FlinkJob)
    session = model is FlinkSessionJob
    cluster_path: YamlPath = ("spec", "deploymentName") if session else ("spec", "cluster")
    problems_list: list[Problem] = []
    if clusters is not None and spec.spec.cluster not in clusters:
        line, col = doc.locate(cluster_path)
        known = ", ".join(sorted(clusters)) or "none"
        problems_list.append(
            Problem(
                file, line, col, f"unknown cluster {quote(spec.spec.cluster)} (configured: {known})", job=name
            )
        )
    if guards is not None:
        problems_list.extend(_guard_problems(file, doc, spec, guards))
    return _Doc(
        index,
        doc.line,
        spec.name,
        name_pos,
        kind,
        spec if not problems_list else None,
        doc.locate(("spec", "job", "jarURI")),
        doc.locate(cluster_path),
        tuple(problems_list),
    )


def _parse_file(
    path: str,
    data: bytes,
    limits: SpecLimits,
    clusters: Collection[str] | None,
    guards: SpecGuards | None = None,
) -> _File:
    docs, problems = parse_documents(data, path, limits)
    if not docs and not problems:
        # harmless alone, but a file truncated by mistake would remove its jobs: say so
        empty = Problem(path, None, None, "no spec document in this file (empty)", "warning")
        return _File(path, (), (empty,))
    parsed = [_parse_doc(path, i, d, clusters, guards) for i, d in enumerate(docs)]
    if problems:
        # The file cannot be read completely: none of its jobs may be applied.
        first = problems[0]
        where = f"line {first.line}" if first.line is not None else "its start"
        note = f"not applied: the file has an error at {where}"
        parsed = [
            _Doc(
                d.index, d.line, d.name, d.name_pos, d.source_kind, None, None, None,
                (*d.problems, Problem(path, d.line, 1, note, job=d.name)),
            )
            for d in parsed
        ]  # fmt: skip
    return _File(path, tuple(parsed), tuple(problems))


# --- the loader -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Occurrence:
    file: _File
    doc: _Doc


class SpecLoader:
    """Loads trees into :class:`DesiredState`, re-parsing only files whose blob changed."""

    def __init__(
        self,
        spec_dir: str = ".",
        *,
        limits: SpecLimits | None = None,
        artifact_roots: Iterable[Path | str] = (),
        clusters: Collection[str] | None = None,
        guards: SpecGuards | None = None,
    ) -> None:
        base = normalise(spec_dir)
        if base is None:
            raise SpecError(f"spec directory {spec_dir!r} leaves the repository")
        self.spec_dir = base or "."
        self.limits = limits or SpecLimits()
        self.artifact_roots = tuple(posixpath.normpath(str(r)) for r in artifact_roots)
        #: cluster names to check spec.cluster against; None: not checked (e.g. CI without the daemon config).
        self.clusters = frozenset(clusters) if clusters is not None else None
        #: savepoint roots and the configuration deny-list (default: no roots, the default deny-list).
        self.guards = guards if guards is not None else SpecGuards()
        self._files: dict[tuple[str, str], _File] = {}
        self._jar_sha: dict[str, str] = {}
        #: repo jar path → resolved entry (or why not), for the duration of one load.
        self._load_jars: dict[str, tuple[TreeEntry | None, str | None]] = {}
        #: files parsed (cache misses) by the last load; for tests and metrics.
        self.last_parsed = 0

    @classmethod
    def from_settings(cls, settings: Settings, *, check_clusters: bool = True) -> SpecLoader:
        return cls(
            settings.git.path,
            limits=settings.spec_limits,
            artifact_roots=settings.artifact_roots,
            clusters=set(settings.clusters) if check_clusters else None,
            guards=SpecGuards.from_settings(settings),
        )

    # -- tree helpers

    @staticmethod
    def _resolve(tree: Tree, entry: TreeEntry) -> tuple[TreeEntry | None, str | None]:
        """Follow symlinks inside the tree; (entry, None) or (None, why not)."""
        hops = 0
        current: TreeEntry | None = entry
        while current is not None and current.kind == "symlink":
            hops += 1
            if hops > MAX_SYMLINK_HOPS:
                return None, f"more than {MAX_SYMLINK_HOPS} symlinks in a row at {entry.path}"
            try:
                target = tree.read(current.path).decode("utf-8", "replace")
            except UnreadableError as exc:
                return None, f"symlink {current.path} cannot be read: {exc.reason}"
            except KeyError:
                return None, f"symlink {current.path} disappeared while it was read"
            resolved = (
                None
                if target.startswith("/")
                else normalise(posixpath.join(posixpath.dirname(current.path), target))
            )
            if not resolved:
                return None, f"symlink {entry.path} points outside the repository ({quote(target, 80)})"
            current = tree.get(resolved)
            if current is None:
                return None, f"symlink {entry.path} points to {quote(resolved, 80)}, which does not exist"
        if current is not None and current.kind == "unreadable":
            where = "" if current.path == entry.path else f" (symlink {entry.path} points to {current.path})"
            return None, f"{current.error or 'cannot read'}{where}"
        return current, None

    def _spec_entries(self, tree: Tree) -> list[TreeEntry]:
        """Spec files below the spec directory, and every directory that could not be read (it may
        hold specs); hidden paths (a part starting with ".") skipped."""
        out = []
        for entry in tree.entries(self.spec_dir):
            if not (entry.path.endswith(SPEC_SUFFIXES) or (entry.kind == "unreadable" and entry.maybe_dir)):
                continue
            if any(part.startswith(".") and part != "." for part in entry.path.split("/")):
                continue
            out.append(entry)
        return out

    def _missing_spec_dir(self, tree: Tree) -> Problem | None:
        """Why the spec directory (not the root) holds no files in ``tree``, or None if it has some."""
        if self.spec_dir == "." or next(iter(tree.entries(self.spec_dir)), None) is not None:
            return None
        found = tree.get(self.spec_dir)
        if found is None:
            why = "has no files in this revision (missing or empty)"
        elif found.kind == "unreadable":
            why = found.error or "cannot be read"
        else:
            why = f"is a {found.kind}, not a directory"
        return Problem(self.spec_dir, None, None, f"spec directory {quote(self.spec_dir, 80)} {why}")

    def _file(self, tree: Tree, entry: TreeEntry, fresh: dict[tuple[str, str], _File]) -> _File:
        target, why = (entry, None) if entry.kind == "file" else self._resolve(tree, entry)
        if target is None:
            return _File(entry.path, (), (Problem(entry.path, None, None, why or "cannot read"),))
        key = (entry.path, target.blob)
        cached = self._files.get(key) or fresh.get(key)
        if cached is None:
            if target.size > self.limits.max_file_bytes:
                message = f"file larger than {self.limits.max_file_bytes} bytes ({target.size} bytes)"
                cached = _File(entry.path, (), (Problem(entry.path, None, None, message),))
            else:
                try:
                    data = tree.read(target.path)
                except UnreadableError as exc:
                    return _File(
                        entry.path, (), (Problem(entry.path, None, None, f"cannot read: {exc.reason}"),)
                    )
                except KeyError:
                    message = "disappeared while it was read"
                    return _File(entry.path, (), (Problem(entry.path, None, None, message),))
                cached = _parse_file(entry.path, data, self.limits, self.clusters, self.guards)
            self.last_parsed += 1
        fresh[key] = cached
        return cached

    def _find_repo_jar(self, tree: Tree, rel: str) -> tuple[TreeEntry | None, str | None]:
        entry = tree.get(rel)
        if entry is None:
            return None, f"jar {shown(rel, 80)} not found in the repository"
        target, why = self._resolve(tree, entry)
        return target, (f"jarURI {quote(rel, 80)}: {why}" if why else None)

    def _repo_jar_sha(self, tree: Tree, entry: TreeEntry) -> str | None:
        """The jar's SHA-256, or None when it cannot be read (it changed or vanished meanwhile)."""
        sha = self._jar_sha.get(entry.blob)
        if sha is None:
            try:
                sha = hashlib.sha256(tree.read(entry.path)).hexdigest()
            except (UnreadableError, KeyError):
                return None
            self._jar_sha[entry.blob] = sha
        return sha

    def _under_roots(self, path: str) -> bool:
        return any(path == root or path.startswith(root.rstrip("/") + "/") for root in self.artifact_roots)

    def _check_jar(
        self, tree: Tree, file: str, doc: _Doc, spec: FlinkJob, used_jars: set[str]
    ) -> tuple[JarRef | None, str | None, list[Problem]]:
        uri = spec.spec.job.jarURI
        pin = spec.spec.job.jarSha256
        line, col = doc.jar_pos or (doc.line, 1)
        name = spec.name

        def problem(message: str, severity: Literal["error", "warning"] = "error") -> Problem:
            return Problem(file, line, col, message, severity, name)

        scheme, sep, rest = uri.partition("://")
        if sep:
            scheme = scheme.lower()
            if scheme == "https":
                why = _bad_https(uri)
                if why is not None:
                    return None, None, [problem(f"jarURI {quote(redact_url(uri), 80)} {why}")]
                if pin is None:
                    warning = problem(
                        f"jarURI {shown(redact_url(uri), 120)} has no jarSha256: the jar is not pinned, and "
                        "the daemon refuses to deploy it unless allow_unpinned_artifacts is set (then it "
                        "is hashed by its bytes at every sync)",
                        "warning",
                    )
                    return JarRef("https", uri, None), unpinned_digest(uri), [warning]
                return JarRef("https", uri, pin), jar_digest_of(pin), []
            if scheme in ("file", "local"):
                if not rest.startswith("/"):
                    return (
                        None,
                        None,
                        [
                            problem(
                                f"jarURI {quote(uri, 80)}: a {shown(scheme)}:// URI needs an absolute path"
                            )
                        ],
                    )
                return self._host_jar(rest, uri, pin, problem)
            if scheme == "http":
                return (
                    None,
                    None,
                    [problem("plain http:// jars are not allowed; use https:// with jarSha256")],
                )
            return (
                None,
                None,
                [
                    problem(
                        f"jarURI {quote(uri, 80)}: unsupported scheme {shown(scheme)}:// "
                        "(use a repo path, file:// or https://)"
                    )
                ],
            )
        if uri.startswith("/"):
            return self._host_jar(uri, uri, pin, problem)
        rel = normalise(uri)
        if not rel:
            return None, None, [problem(f"jarURI {quote(uri, 80)} escapes the repository")]
        found = self._load_jars.get(rel)
        if found is None:
            found = self._load_jars[rel] = self._find_repo_jar(tree, rel)
        target, why = found
        if target is None:
            return None, None, [problem(why or f"jar {shown(rel, 80)} not found in the repository")]
        sha = self._repo_jar_sha(tree, target)
        if sha is None:
            return None, None, [problem(f"jar {target.path} cannot be read")]
        used_jars.add(target.blob)
        if pin is not None and pin != sha:
            return (
                None,
                None,
                [problem(f"jarSha256 does not match {shown(rel, 80)}: the file's SHA-256 is {sha}")],
            )
        return JarRef("repo", target.path, sha), jar_digest_of(sha), []

    def _host_jar(
        self, path: str, uri: str, pin: str | None, problem: Any
    ) -> tuple[JarRef | None, str | None, list[Problem]]:
        if "%" in path:
            return (
                None,
                None,
                [problem(f"jarURI {quote(uri, 80)}: percent-escapes are not allowed in a host path")],
            )
        clean = posixpath.normpath(path)
        if not self._under_roots(clean):
            roots = ", ".join(self.artifact_roots) or "none configured"
            return (
                None,
                None,
                [
                    problem(
                        f"jarURI {quote(uri, 80)} is outside the repository and the allowed "
                        f"artifact_roots ({roots})"
                    )
                ],
            )
        return JarRef("file", clean, pin), (jar_digest_of(pin) if pin else unpinned_digest(clean)), []

    # -- the load

    def load(self, tree: Tree) -> DesiredState:
        """The desired state of ``tree``; never raises for bad specs (they become problems)."""
        self.last_parsed = 0
        self._load_jars = {}
        fresh: dict[tuple[str, str], _File] = {}
        files = [self._file(tree, entry, fresh) for entry in self._spec_entries(tree)]
        self._files = fresh

        problems: list[Problem] = []
        unnamed: list[InvalidJob] = []
        invalid_files: set[str] = set()
        missing = self._missing_spec_dir(tree)
        if missing is not None:
            problems.append(missing)
            unnamed.append(InvalidJob(None, missing.file, None, (missing,)))
            invalid_files.add(missing.file)
        by_name: dict[str, list[_Occurrence]] = {}
        file_names: dict[str, tuple[str, ...]] = {}
        extra: dict[tuple[str, int], list[Problem]] = {}
        good: dict[tuple[str, int], DesiredJob] = {}
        used_jars: set[str] = set()

        for f in files:
            problems.extend(f.problems)
            if any(p.is_error for p in f.problems):
                invalid_files.add(f.path)
            if not f.docs and any(p.is_error for p in f.problems):
                unnamed.append(InvalidJob(None, f.path, f.problems[0].line, f.problems))
            names: list[str] = []
            for doc in f.docs:
                problems.extend(doc.problems)
                if doc.name is None:
                    unnamed.append(InvalidJob(None, f.path, doc.line, doc.problems))
                    invalid_files.add(f.path)
                    continue
                names.append(doc.name)
                by_name.setdefault(doc.name, []).append(_Occurrence(f, doc))
                if doc.spec is None:
                    continue
                jar, digest, jar_problems = self._check_jar(tree, f.path, doc, doc.spec, used_jars)
                problems.extend(jar_problems)
                if jar is None or digest is None:
                    extra[(f.path, doc.index)] = jar_problems
                    continue
                key = (doc.index, digest)
                h = f.hashes.get(key)
                if h is None:
                    h = f.hashes[key] = spec_hash(doc.spec, digest)
                good[(f.path, doc.index)] = DesiredJob(
                    doc.name, f.path, doc.line, doc.source_kind or "FlinkJob", doc.spec, jar, digest, h,
                    tuple(jar_problems),
                )  # fmt: skip
            file_names[f.path] = tuple(names)

        jobs: dict[str, DesiredJob | InvalidJob] = {}
        for name, occurrences in by_name.items():
            if len(occurrences) > 1:
                dup_problems: list[Problem] = []
                for occ in occurrences:
                    others = ", ".join(
                        f"{o.file.path}:{o.doc.line if o.doc.name_pos is None else o.doc.name_pos[0]}"
                        for o in occurrences
                        if o is not occ
                    )
                    line, col = occ.doc.name_pos or (occ.doc.line, 1)
                    p = Problem(
                        occ.file.path,
                        line,
                        col,
                        f"duplicate job name {quote(name, 64)}: also defined at {others}",
                        job=name,
                    )
                    problems.append(p)
                    invalid_files.add(occ.file.path)
                    dup_problems.extend(
                        (*occ.doc.problems, *extra.get((occ.file.path, occ.doc.index), ()), p)
                    )
                first = occurrences[0]
                jobs[name] = InvalidJob(name, first.file.path, first.doc.line, tuple(dup_problems))
                continue
            occ = occurrences[0]
            where = (occ.file.path, occ.doc.index)
            if where in good:
                jobs[name] = good[where]
            else:
                invalid_files.add(occ.file.path)
                jobs[name] = InvalidJob(
                    name, occ.file.path, occ.doc.line, (*occ.doc.problems, *extra.get(where, ()))
                )

        self._jar_sha = {b: s for b, s in self._jar_sha.items() if b in used_jars}
        return DesiredState(
            commit=tree.commit,
            jobs=dict(sorted(jobs.items())),
            unnamed=tuple(unnamed),
            invalid_files=frozenset(invalid_files),
            files=file_names,
            problems=tuple(sorted(problems, key=_problem_order)),
        )


def _problem_order(p: Problem) -> tuple[str, int, int, str]:
    return (p.file, p.line or 0, p.col or 0, p.message)
