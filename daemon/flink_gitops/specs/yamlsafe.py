"""Safe, bounded YAML reading that remembers where every value came from.

Spec files are untrusted input from a pull request, so this module builds plain
Python values straight from the parser's event stream (libyaml when present)
instead of ``yaml.safe_load``. That lets it enforce the limits of
:class:`~flink_gitops.settings.SpecLimits` *while* reading: the number of
documents, the nesting depth and the node count with alias expansion counted
(an alias adds the size of what it points to, so a "billion laughs" file stops
after a few events instead of exhausting memory). Only the core scalar tags are
accepted; duplicate keys are errors (PyYAML would silently keep the last one);
``<<`` merge keys work. Every value's and key's position is recorded so the
loader (``specs.loader``) can report schema problems at their file:line:col.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import yaml
from yaml.constructor import SafeConstructor

from flink_gitops.settings import SpecLimits
from flink_gitops.specs.errors import Problem, quote, shown

YamlPath = tuple[str | int, ...]
Position = tuple[int, int]

_Loader: type[yaml.SafeLoader] = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
_T = "tag:yaml.org,2002:"
_MERGE_TAG = _T + "merge"
_STR_TAG = _T + "str"
_MAP_TAGS = {None, "!", _T + "map"}
_SEQ_TAGS = {None, "!", _T + "seq"}


def _construct_scalars() -> dict[str, Callable[[yaml.ScalarNode], Any]]:
    c = SafeConstructor()
    return {
        _T + "str": c.construct_yaml_str,
        _T + "int": c.construct_yaml_int,
        _T + "float": c.construct_yaml_float,
        _T + "bool": c.construct_yaml_bool,
        _T + "null": c.construct_yaml_null,
        # dates stay the text they were written as: no field of ours is a date
        _T + "timestamp": lambda node: str(node.value),
    }


_SCALARS = _construct_scalars()


@dataclass
class YamlDocument:
    """One parsed document: its value and where each part of it starts (1-based line, column)."""

    value: Any
    line: int
    #: position of each value (mapping values, sequence items, collections), by path.
    values: dict[YamlPath, Position] = field(default_factory=dict)
    #: position of each mapping key, by the path of the value it introduces.
    keys: dict[YamlPath, Position] = field(default_factory=dict)

    def locate(self, path: YamlPath, *, key: bool = False) -> Position:
        """Where ``path`` (or its nearest recorded ancestor) starts; ``key`` prefers the key's position."""
        for n in range(len(path), 0, -1):
            prefix = path[:n]
            if key and prefix in self.keys:
                return self.keys[prefix]
            if prefix in self.values:
                return self.values[prefix]
            if prefix in self.keys:
                return self.keys[prefix]
        return (self.line, 1)


class _Stop(Exception):
    def __init__(self, message: str, pos: Position | None) -> None:
        super().__init__(message)
        self.message = message
        self.pos = pos


_NO_KEY = object()
_MERGE = object()


@dataclass
class _Frame:
    container: dict[Any, Any] | list[Any]
    path: YamlPath
    anchor: str | None
    pos: Position
    size: int = 1
    height: int = 1
    key: Any = _NO_KEY
    key_pos: Position = (0, 0)
    merges: list[tuple[Any, Position]] = field(default_factory=list)


def _pos(mark: Any) -> Position:
    return (mark.line + 1, mark.column + 1)


class _Builder:
    """Turns one file's event stream into documents, enforcing the limits."""

    def __init__(self, limits: SpecLimits, resolve: Callable[..., str]) -> None:
        self.limits = limits
        self.resolve = resolve
        self.nodes = 0
        self.stack: list[_Frame] = []
        self.anchors: dict[str, tuple[Any, int, int]] = {}
        self.doc: YamlDocument | None = None
        self.done: list[YamlDocument] = []
        self.documents = 0

    def start_document(self, pos: Position) -> None:
        self.documents += 1
        if self.documents > self.limits.max_documents:
            raise _Stop(f"too many YAML documents in one file (limit {self.limits.max_documents})", pos)
        self.doc = YamlDocument(value=None, line=pos[0])
        self.anchors = {}

    def end_document(self) -> None:
        assert self.doc is not None
        if self.doc.value is not None:
            self.done.append(self.doc)
        self.doc = None

    def _child_path(self, pos: Position) -> YamlPath:
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, len(top.container))
        if top.key is _NO_KEY:
            raise _Stop("mapping keys must be plain scalars", pos)
        if top.key is _MERGE:
            return top.path
        return (*top.path, top.key)

    def start_collection(
        self, container: dict[Any, Any] | list[Any], anchor: str | None, pos: Position
    ) -> None:
        depth = len(self.stack) + 1
        if depth > self.limits.max_depth:
            raise _Stop(f"nesting deeper than {self.limits.max_depth} levels", pos)
        path = self._child_path(pos)
        self.stack.append(_Frame(container, path, anchor, pos))

    def end_collection(self) -> None:
        frame = self.stack.pop()
        if isinstance(frame.container, dict):
            for merged, pos in frame.merges:
                sources = merged if isinstance(merged, list) else [merged]
                for src in sources:
                    if not isinstance(src, dict):
                        raise _Stop("a '<<' merge key needs a mapping or a list of mappings", pos)
                    for k, v in src.items():
                        frame.container.setdefault(k, v)
        # its children were counted as they came; only the collection itself is new
        self.add(frame.container, frame.size, frame.height, frame.pos, frame.anchor, collection=True, new=1)

    def add(
        self,
        value: Any,
        size: int,
        height: int,
        pos: Position,
        anchor: str | None,
        *,
        collection: bool = False,
        new: int | None = None,
    ) -> None:
        """Attach a value; ``size`` is its node count with aliases expanded, ``new`` how many are new."""
        assert self.doc is not None
        self.nodes += size if new is None else new
        if self.nodes > self.limits.max_nodes:
            raise _Stop(
                f"more than {self.limits.max_nodes} YAML nodes in one file (aliases count once per use)", pos
            )
        if height + len(self.stack) > self.limits.max_depth:
            raise _Stop(f"nesting deeper than {self.limits.max_depth} levels (through an alias)", pos)
        if anchor is not None:
            self.anchors[anchor] = (value, size, height)
        if not self.stack:
            self.doc.value = value
            self.doc.values[()] = pos
            return
        top = self.stack[-1]
        top.size += size
        top.height = max(top.height, height + 1)
        if isinstance(top.container, list):
            self.doc.values[(*top.path, len(top.container))] = pos
            top.container.append(value)
            return
        if top.key is _NO_KEY:
            if collection:
                raise _Stop("mapping keys must be plain scalars", pos)
            if value is not _MERGE:
                if value in top.container:
                    first = self.doc.keys.get((*top.path, value), pos)
                    raise _Stop(f"duplicate key {quote(value)} (first at line {first[0]})", pos)
                self.doc.keys[(*top.path, value)] = pos
            top.key, top.key_pos = value, pos
            return
        if top.key is _MERGE:
            top.merges.append((value, pos))
        else:
            self.doc.values[(*top.path, top.key)] = pos
            top.container[top.key] = value
        top.key = _NO_KEY

    def scalar(self, event: yaml.ScalarEvent) -> None:
        pos = _pos(event.start_mark)
        tag = event.tag
        if tag is None or tag == "!":
            tag = _T + "str" if tag == "!" else self.resolve(yaml.ScalarNode, event.value, event.implicit)
        if tag == _MERGE_TAG and self._expects_key():
            self.add(_MERGE, 0, 0, pos, None)
            return
        if tag == _MERGE_TAG:
            tag = _T + "str"
        construct = _SCALARS.get(tag)
        if construct is None:
            raise _Stop(f"unsupported YAML tag {quote(tag, 80)}", pos)
        if tag == _STR_TAG:
            self.add(event.value, 1, 0, pos, event.anchor)
            return
        try:
            value = construct(yaml.ScalarNode(tag, event.value))
        except (ValueError, yaml.YAMLError) as exc:
            raise _Stop(f"bad {tag.removeprefix(_T)} value {quote(event.value)}", pos) from exc
        self.add(value, 1, 0, pos, event.anchor)

    def _expects_key(self) -> bool:
        return (
            bool(self.stack) and isinstance(self.stack[-1].container, dict) and self.stack[-1].key is _NO_KEY
        )

    def alias(self, event: yaml.AliasEvent) -> None:
        pos = _pos(event.start_mark)
        found = self.anchors.get(event.anchor or "")
        if found is None:
            raise _Stop(f"unknown (or self-referencing) alias *{shown(event.anchor or '')}", pos)
        value, size, height = found
        self.add(value, size, height, pos, None, collection=isinstance(value, (dict, list)))


def _bounded(text: str, limit: int = 200) -> str:
    """A parser's message, which may quote the input, cut to ``limit`` characters."""
    return text if len(text) <= limit else text[:limit] + "…"


def parse_documents(data: bytes, file: str, limits: SpecLimits) -> tuple[list[YamlDocument], list[Problem]]:
    """Every non-empty document of ``data``, and the problems found.

    A problem here (syntax, a limit, a tag) stops reading the file; the documents
    read before it are still returned, so their job names can be recovered.
    """
    if len(data) > limits.max_file_bytes:
        return [], [Problem(file, None, None, f"file larger than {limits.max_file_bytes} bytes")]
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        bad_line = data.count(b"\n", 0, exc.start) + 1
        bad_col = exc.start - data.rfind(b"\n", 0, exc.start)
        message = f"not UTF-8 text: byte 0x{data[exc.start]:02x} at offset {exc.start}"
        return [], [Problem(file, bad_line, bad_col, message)]
    loader = _Loader(text)
    builder = _Builder(limits, loader.resolve)
    try:
        while True:
            event = loader.get_event()  # type: ignore[no-untyped-call]
            kind = type(event)
            if kind is yaml.ScalarEvent:
                builder.scalar(event)
            elif kind is yaml.MappingEndEvent or kind is yaml.SequenceEndEvent:
                builder.end_collection()
            elif kind is yaml.MappingStartEvent:
                if event.tag not in _MAP_TAGS:
                    raise _Stop(f"unsupported YAML tag {quote(event.tag, 80)}", _pos(event.start_mark))
                builder.start_collection({}, event.anchor, _pos(event.start_mark))
            elif kind is yaml.SequenceStartEvent:
                if event.tag not in _SEQ_TAGS:
                    raise _Stop(f"unsupported YAML tag {quote(event.tag, 80)}", _pos(event.start_mark))
                builder.start_collection([], event.anchor, _pos(event.start_mark))
            elif kind is yaml.AliasEvent:
                builder.alias(event)
            elif kind is yaml.DocumentStartEvent:
                builder.start_document(_pos(event.start_mark))
            elif kind is yaml.DocumentEndEvent:
                builder.end_document()
            elif event is None or kind is yaml.StreamEndEvent:
                break
    except _Stop as stop:
        line, col = stop.pos if stop.pos else (None, None)
        return builder.done, [Problem(file, line, col, stop.message)]
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line, col = _pos(mark) if mark is not None else (None, None)
        what = exc.problem or exc.context or "invalid YAML"
        return builder.done, [Problem(file, line, col, f"YAML syntax error: {_bounded(what)}")]
    except yaml.reader.ReaderError as exc:
        # a character YAML does not allow (NUL, other controls): not a MarkedYAMLError, so no mark
        at = min(max(exc.position, 0), len(text))
        at_line = text.count("\n", 0, at) + 1
        at_col = at - text.rfind("\n", 0, at)
        what = "a NUL byte" if exc.character == 0 else f"character U+{exc.character:04X}"
        message = f"{what} at offset {at} (line {at_line}, column {at_col}): {exc.reason}"
        return builder.done, [Problem(file, at_line, at_col, message)]
    except yaml.YAMLError as exc:
        return builder.done, [Problem(file, None, None, f"YAML error: {type(exc).__name__}")]
    finally:
        loader.dispose()
    return builder.done, []
