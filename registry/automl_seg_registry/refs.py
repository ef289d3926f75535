"""Record references: ``name``, ``name:3``, ``name@best`` and ``latest``, parsed strictly.

Names, aliases and artifact names become directory and file names inside the registry, so they are
restricted to a safe alphabet: nothing that could climb out of the registry folder (``..``, ``/``,
absolute paths, NUL) gets past :func:`check_name`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from automl_seg.errors import RegistryError

NAME_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
MAX_VERSION = 2**63 - 1  #: the index stores versions as 64-bit integers
#: ``latest`` on its own means the newest record overall; ``name@latest`` the newest version of a name.
LATEST = "latest"
REF_HELP = "use NAME, NAME:VERSION, NAME@ALIAS or 'latest'"


@dataclass(frozen=True)
class Ref:
    """A parsed reference. Exactly one of ``version`` / ``alias`` is set, unless ``name`` is None (``latest``)."""

    name: str | None
    version: int | None = None
    alias: str | None = None

    def __str__(self) -> str:
        if self.name is None:
            return LATEST
        if self.version is not None:
            return f"{self.name}:{self.version}"
        return f"{self.name}@{self.alias}"


def check_name(value: str, what: str = "record name") -> str:
    """``value`` if it is a safe name (letters, digits, ``._-``, starting with a letter or digit)."""
    if not isinstance(value, str) or not NAME_PATTERN.fullmatch(value):
        raise RegistryError(
            f"invalid {what} {value!r}: use 1-128 letters, digits, '.', '_' or '-', starting with a letter or digit"
        )
    return value


def check_record_name(name: str) -> str:
    """A record name: a safe name that is not the reserved word ``latest``."""
    check_name(name)
    if name == LATEST:
        raise RegistryError(f"'{LATEST}' is reserved for the newest record; choose another record name")
    return name


def check_alias(alias: str) -> str:
    """A user alias: a safe name that is not ``latest`` (the registry moves that one itself)."""
    check_name(alias, "alias")
    if alias == LATEST:
        raise RegistryError(f"'{LATEST}' is moved by the registry itself; choose another alias")
    return alias


def parse_ref(text: str) -> Ref:
    """Parse ``latest``, ``name``, ``name:N`` or ``name@alias``; anything else is a RegistryError."""
    if not isinstance(text, str) or not text:
        raise RegistryError(f"empty registry reference; {REF_HELP}")
    if text == LATEST:
        return Ref(name=None)
    name, sep, rest = _split(text)
    try:
        check_record_name(name)
        if sep == "":
            return Ref(name=name, alias=LATEST)
        if sep == ":":
            if not rest.isascii() or not rest.isdigit() or not 1 <= int(rest) <= MAX_VERSION:
                raise RegistryError(f"version {rest!r} is not a positive integer (at most {MAX_VERSION})")
            return Ref(name=name, version=int(rest))
        check_name(rest, "alias")
        return Ref(name=name, alias=rest)
    except RegistryError as exc:
        raise RegistryError(f"malformed registry reference {text!r}: {exc}; {REF_HELP}") from None


def _split(text: str) -> tuple[str, str, str]:
    """Split at the first ':' or '@' (a name contains neither)."""
    for index, char in enumerate(text):
        if char in ":@":
            return text[:index], char, text[index + 1 :]
    return text, "", ""
