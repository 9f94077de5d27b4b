"""Typed reading of a parsed TOML document, with errors that name the dotted key.

The privacy policy (`anonymizer.policy`) and the collector's config (`collector.config`) read
their files with these same checks, so a value is refused in the same words by both: "must be a
whole number from 0 to 24", "must be one of 'a', 'b'", "unknown key". Each caller says which
error to raise (a `PolicyError` with its line, a `ConfigError`). Pure: the caller parses the text
(`tomllib`) and passes the document.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

ErrorFactory = Callable[[str, str], Exception]  # (dotted key, reason) -> the error to raise
C = TypeVar("C", bound=str)


@dataclass(frozen=True, slots=True)
class TomlTable:
    """One table of the document (`where`: its dotted path, "" for the top level)."""

    values: Mapping[str, Any]
    where: str
    error: ErrorFactory

    def dotted(self, key: str) -> str:
        return f"{self.where}.{key}" if self.where else key

    def fail(self, key: str, reason: str) -> Exception:
        """The error for `key` of this table, to raise."""
        return self.error(self.dotted(key), reason)

    def table(self, key: str) -> TomlTable:
        """A sub-table; absent: empty."""
        return TomlTable(self.mapping(key, {}), self.dotted(key), self.error)

    def at(self, where: str, values: Any) -> TomlTable:
        """A table found elsewhere (an element of an array of tables), named `where`."""
        if not isinstance(values, dict):
            raise self.error(where, "must be a table")
        return TomlTable(values, where, self.error)

    def get(self, key: str, default: Any) -> Any:
        """The raw value, or `default`; a default of None makes the key required."""
        value = self.values.get(key, default)
        if value is None:
            raise self.fail(key, "is required")
        return value

    def integer(self, key: str, default: int | None, lo: int, hi: int) -> int:
        value = self.get(key, default)
        if not isinstance(value, int) or isinstance(value, bool) or not lo <= value <= hi:
            raise self.fail(key, f"must be a whole number from {lo} to {hi}")
        return value

    def choice(self, key: str, default: C, allowed: Sequence[C]) -> C:
        value = self.get(key, default)
        if value not in allowed:
            raise self.fail(key, f"must be one of {', '.join(map(repr, allowed))}")
        return allowed[list(allowed).index(value)]

    def boolean(self, key: str, default: bool) -> bool:
        value = self.get(key, default)
        if not isinstance(value, bool):
            raise self.fail(key, "must be true or false")
        return value

    def string(self, key: str, default: str) -> str:
        value = self.get(key, default)
        if not isinstance(value, str):
            raise self.fail(key, "must be a string")
        return value

    def str_list(self, key: str, default: Iterable[str]) -> list[str]:
        value = self.get(key, list(default))
        if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
            raise self.fail(key, "must be a list of strings")
        return list(value)

    def mapping(self, key: str, default: Mapping[str, Any]) -> dict[str, Any]:
        value = self.get(key, dict(default))
        if not isinstance(value, dict):
            raise self.fail(key, "must be a table")
        return value

    def check_known(self, known: Iterable[str], *, list_known: bool = False) -> None:
        """An unknown key is an error: a misspelt setting must never silently take a default.
        `list_known`: the message lists the keys this table takes."""
        names = set(known)
        for key in self.values:
            if key not in names:
                hint = f"; known: {', '.join(sorted(names))}" if list_known else ""
                raise self.fail(key, "unknown key" + hint)


def line_of(texts: Sequence[str], dotted: str) -> int | None:
    """Best-effort line of `dotted` in the first of `texts` that has it, or of its nearest
    enclosing key (a key inside an inline table); tomllib keeps no positions."""
    lines = [t.splitlines() for t in texts]
    path = dotted
    while path:
        parent, _, leaf = path.rpartition(".")
        for text in lines:
            n = _line_in(text, parent, leaf)
            if n is not None:
                return n
        path = parent
    return None


def _line_in(lines: list[str], section: str, key: str) -> int | None:
    current = ""
    key_re = re.compile(r"^\s*" + re.escape(key) + r"\s*=")
    header_re = re.compile(r"^\s*\[+\s*([^\]]+?)\s*\]+")
    for n, line in enumerate(lines, 1):
        h = header_re.match(line)
        if h:
            current = h.group(1)
            if current == f"{section}.{key}" or (current == key and not section):
                return n
            continue
        if current == section and key_re.match(line):
            return n
    return None
