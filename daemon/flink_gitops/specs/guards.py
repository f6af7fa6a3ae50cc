"""Validate-time guards on what a spec may make Flink read: restore paths and configuration keys.

A pull request must not be able to restore a job from, or load classes and files
from, an arbitrary location. Two rules, checked by ``specs.loader`` for every
job (an offending job is invalid, reported with file:line, and left as is):

- ``initialSavepointPath`` must lie under one of the configured savepoint roots
  (``savepoint_roots`` plus ``sync.savepoint_dir``). Both sides are normalised
  first: scheme and host lowercased, ``file:/x``, ``file:///x``,
  ``file://localhost/x`` and a bare ``/x`` are the same, percent-escapes are
  decoded once, and a path with a ``.`` or ``..`` segment, a backslash, a
  control character or a ``%`` left after decoding, a query or a fragment is
  refused outright (no ``file:///roots/../etc`` or ``%2e%2e`` tricks). The
  match is per path segment (``/sp`` does not admit ``/sp-other``).
- no ``flinkConfiguration`` key may match the deny-list
  (``denied_configuration_keys``: glob patterns, case-insensitive, the key
  stripped of surrounding blanks first).

Neighbours: ``settings`` (the two lists; their defaults and why), ``specs.loader``
(applies them).
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable
from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from flink_gitops.errors import ConfigError
from flink_gitops.settings import DENIED_CONFIGURATION_KEYS, Settings


class _Bad(ValueError):
    """A location that cannot be normalised safely (the message says why)."""


def normalise_location(location: str) -> tuple[str, str, str]:
    """(scheme, host, path) of a savepoint location or root; :class:`ValueError` when it is unsafe."""
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in location) or "\\" in location:
        raise _Bad("it contains a control character or a backslash")
    if location.startswith("/"):
        scheme, host, raw = "file", "", location
        query = fragment = ""
    else:
        try:
            parts = urlsplit(location)
        except ValueError as exc:
            raise _Bad("it is not a valid URI") from exc
        if not parts.scheme or len(parts.scheme) < 2:  # "c:/x" is a drive letter, not a scheme
            raise _Bad("it is neither an absolute path nor a URI with a scheme")
        if parts.username is not None or parts.password is not None:
            raise _Bad("it holds credentials")
        scheme, raw, query, fragment = parts.scheme.lower(), parts.path, parts.query, parts.fragment
        host = (parts.netloc or "").lower()
        if scheme == "file" and host in ("", "localhost"):
            host = ""
        elif scheme == "file":
            raise _Bad("a file:// URI must not name another host")
    if query or fragment or "?" in location or "#" in location:
        raise _Bad("it has a query or fragment")
    try:
        path = unquote(raw, errors="strict")
    except UnicodeDecodeError:
        raise _Bad("its percent-escapes are not UTF-8") from None
    if "%" in path or any(ord(c) < 0x20 or ord(c) == 0x7F for c in path) or "\\" in path:
        raise _Bad("it has an encoded '%', control character or backslash")
    if not path.startswith("/"):
        raise _Bad("its path is not absolute")
    if any(seg in (".", "..") for seg in path.split("/")):
        raise _Bad("it has a '.' or '..' path segment")
    clean = posixpath.normpath(path)
    clean = "/" + clean.lstrip("/")  # normpath keeps a leading "//"
    return scheme, host, clean


def _under(path: tuple[str, str, str], root: tuple[str, str, str]) -> bool:
    if path[:2] != root[:2]:
        return False
    base = root[2].rstrip("/")
    return path[2] == root[2] or path[2].startswith(base + "/")


@dataclass(frozen=True, slots=True)
class SpecGuards:
    """The two validate-time rules, with the configured roots normalised once."""

    #: the roots as given (for messages), and normalised.
    roots: tuple[str, ...] = ()
    normalised_roots: tuple[tuple[str, str, str], ...] = ()
    #: lowercased glob patterns.
    denied_keys: tuple[str, ...] = tuple(p.lower() for p in DENIED_CONFIGURATION_KEYS)

    @classmethod
    def of(cls, roots: Iterable[str], denied_keys: Iterable[str] = DENIED_CONFIGURATION_KEYS) -> SpecGuards:
        given = tuple(dict.fromkeys(r for r in roots if r))
        normalised = []
        for root in given:
            try:
                normalised.append(normalise_location(root))
            except ValueError as exc:
                raise ConfigError(f"savepoint root {root!r} cannot be used: {exc}") from None
        return cls(given, tuple(normalised), tuple(p.strip().lower() for p in denied_keys if p.strip()))

    @classmethod
    def from_settings(cls, settings: Settings) -> SpecGuards:
        roots = [*settings.savepoint_roots]
        if settings.sync.savepoint_dir:
            roots.append(settings.sync.savepoint_dir)
        return cls.of(roots, settings.denied_configuration_keys)

    def savepoint_problem(self, location: str) -> str | None:
        """Why ``location`` may not be restored from, or None when it lies under a root."""
        try:
            where = normalise_location(location)
        except ValueError as exc:
            return f"initialSavepointPath is refused: {exc}"
        if not self.normalised_roots:
            return (
                "initialSavepointPath is refused: no savepoint roots are configured "
                "(set savepoint_roots or sync.savepoint_dir in the daemon config)"
            )
        if any(_under(where, root) for root in self.normalised_roots):
            return None
        return f"initialSavepointPath is not under the configured savepoint roots ({', '.join(self.roots)})"

    def denied_key(self, key: str) -> str | None:
        """The deny-list pattern ``key`` matches, or None."""
        wanted = key.strip().lower()
        return next((p for p in self.denied_keys if fnmatch.fnmatchcase(wanted, p)), None)
