"""Secrets come from files or systemd credentials, never from inline config.

A :class:`SecretRef` names where a secret lives (``file: /etc/...`` or
``credential: name`` for ``$CREDENTIALS_DIRECTORY/name`` under systemd's
LoadCredential=). :func:`read_secret` returns a :class:`Secret`, whose repr and
str never show the value, so it cannot leak into logs, errors or the audit
trail by accident; :func:`redact_credentials` hides what looks like an HTTP
credential in text from outside (an error page, a log line). Neighbours:
settings (declares the refs), the Flink client, the Git source, the store and
the audit keys (read them).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Self

from pydantic import BaseModel, ConfigDict, model_validator

from flink_gitops.errors import ConfigError

#: an HTTP credential as text quotes it: ``Bearer <token>`` / ``Basic <base64>`` (a proxy's error
#: page echoing the request's Authorization header, a library's message).
_CREDENTIAL = re.compile(r"(?i)\b(bearer|basic)(\s+)([A-Za-z0-9._~+/=-]{6,})")


def _hide(m: re.Match[str]) -> str:
    value = m.group(3)
    if value.isalpha() and (value.islower() or value.istitle() or value.isupper()):
        return m.group(0)  # a word ("Basic Authentication"), not a credential
    return f"{m.group(1)}{m.group(2)}[redacted]"


def redact_credentials(text: str) -> str:
    """``text`` with what looks like a bearer or basic credential replaced by ``[redacted]``."""
    return _CREDENTIAL.sub(_hide, text)


class Secret:
    """A secret value that will not print itself."""

    __slots__ = ("_value",)

    def __init__(self, value: bytes) -> None:
        self._value = value

    def reveal(self) -> bytes:
        return self._value

    def reveal_text(self) -> str:
        """The value as UTF-8 text; ConfigError (naming no byte of it) when it is not."""
        try:
            return self._value.decode("utf-8")
        except UnicodeDecodeError:
            pass  # raised outside: UnicodeDecodeError quotes a byte and holds the whole value
        raise ConfigError("a secret is not valid UTF-8 text")

    def __repr__(self) -> str:
        return "Secret('**********')"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


class SecretRef(BaseModel):
    """Where a secret is read from: exactly one of ``file`` or ``credential``."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    file: Path | None = None
    #: name of a systemd credential, read from $CREDENTIALS_DIRECTORY/<name>.
    credential: str | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> Self:
        if (self.file is None) == (self.credential is None):
            raise ValueError("a secret reference needs exactly one of 'file' or 'credential'")
        if self.credential is not None and ("/" in self.credential or self.credential in {"", ".", ".."}):
            raise ValueError("a credential name is a plain file name")
        return self

    def describe(self) -> str:
        """Where the secret lives, safe to log (a path or credential name, never the value)."""
        if self.file is not None:
            return f"file {self.file}"
        return f"systemd credential {self.credential!r}"

    def path(self) -> Path:
        if self.file is not None:
            return self.file
        directory = os.environ.get("CREDENTIALS_DIRECTORY")
        if not directory:
            raise ConfigError(
                f"secret is a {self.describe()} but CREDENTIALS_DIRECTORY is not set "
                "(run under systemd with LoadCredential=)"
            )
        assert self.credential is not None
        return Path(directory) / self.credential


def read_secret(ref: SecretRef, *, strip: bool = True) -> Secret:
    """Read a secret; a trailing newline is stripped unless ``strip`` is False."""
    path = ref.path()
    try:
        data = path.read_bytes()
    except OSError as exc:
        # exc.strerror only: never echo file contents.
        raise ConfigError(f"cannot read secret from {ref.describe()}: {exc.strerror}") from exc
    if strip:
        data = data.rstrip(b"\r\n")
    if not data:
        raise ConfigError(f"secret from {ref.describe()} is empty")
    return Secret(data)
