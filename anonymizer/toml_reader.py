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
from dataclasses import MISSING, Field, dataclass, field, fields
from types import MappingProxyType
from typing import Any, TypeVar

ErrorFactory = Callable[[str, str], Exception]  # (dotted key, reason) -> the error to raise
C = TypeVar("C", bound=str)
R = TypeVar("R")


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


# --- keys declared on dataclass fields ---------------------------------------------------------
# A key is declared once, on the field that holds its value: `key(default, read, ...)` gives its
# default, how it is read and checked, its TOML name when that differs, and how `settings_of`
# shows it; `section(cls)` makes a field a `[table]` whose dataclass declares its keys. The
# reader (`read_declared`), the known keys of every table (`known_keys`) and the flat settings
# (`settings_of`) are derived from the fields.

Read = Callable[[TomlTable, str, Any], Any]  # (the key's table, its TOML name, default) -> value


def _same(value: Any) -> Any:
    return value


@dataclass(frozen=True, slots=True)
class Key:
    """One key: how it is read from its table (type, bounds, checks; the error names the key)
    and how `settings_of` shows the value held."""

    read: Read
    name: str = ""  # the TOML name (dotted from the top for a key of `Policy` itself); "": field's
    show: Callable[[Any], Any] = _same
    attr: str = ""  # where the built section holds the value, when not under the field's name


def key(
    default: Any,
    read: Read,
    *,
    name: str = "",
    show: Callable[[Any], Any] = _same,
    attr: str = "",
    factory: Callable[[], Any] | None = None,
) -> Any:
    """The dataclass field of a key (`default` None: the key is required)."""
    meta = {"key": Key(read, name, show, attr)}
    if factory is not None:
        return field(default_factory=factory, metadata=meta)
    if default is None:
        return field(metadata=meta)
    return field(default=default, metadata=meta)


@dataclass(frozen=True, slots=True)
class Section:
    """A `[section]` of the file: the dataclass that declares its keys, and how the section's
    object is made of their values when it is not that dataclass (a compiled form)."""

    keys: type
    build: Callable[[dict[str, Any]], Any] | None = None

    def make(self, values: dict[str, Any]) -> Any:
        return self.build(values) if self.build else self.keys(**values)

    def default(self) -> Any:
        return self.make({f.name: _default(f) for f, _ in _keys_of(self.keys)})


def section(keys: type, build: Callable[[dict[str, Any]], Any] | None = None) -> Any:
    """The field of a section whose keys `keys` declares."""
    spec = Section(keys, build)
    return field(default_factory=spec.default, metadata={"section": spec})


def _keys_of(cls: type) -> list[tuple[Field[Any], Key]]:
    return [(f, f.metadata["key"]) for f in fields(cls) if "key" in f.metadata]


def _default(f: Field[Any]) -> Any:
    if f.default is not MISSING:
        return f.default
    if f.default_factory is not MISSING:
        return f.default_factory()
    return None  # required


def integer(lo: int, hi: int) -> Read:
    return lambda t, name, default: t.integer(name, default, lo, hi)


def choice(allowed: tuple[str, ...]) -> Read:
    return lambda t, name, default: t.choice(name, default, allowed)


def boolean(t: TomlTable, name: str, default: bool) -> bool:
    return t.boolean(name, default)


def strings(t: TomlTable, name: str, default: Iterable[str]) -> list[str]:
    return t.str_list(name, default)


def sorted_list(value: Any) -> list[Any]:
    return sorted(value)


def sorted_map(value: Mapping[str, Any]) -> dict[str, Any]:
    return dict(sorted(value.items()))


@dataclass(frozen=True, slots=True)
class Declared:
    """One declared key of a root dataclass, as the reader and the settings walk them."""

    dotted: str  # `section.key` (or `key` at the top)
    field: str  # the root's field that holds it (or its section)
    part: str  # the field of the section's dataclass that declares it; "" for a key of the root
    attr: str  # where the section's built object holds it; "" for a key of the root itself
    key: Key
    default: Any


def declared(root: type) -> tuple[Declared, ...]:
    """Every key of `root`, in field order (a section's keys in its own field order)."""
    out = []
    for f in fields(root):
        if "key" in f.metadata:
            k: Key = f.metadata["key"]
            out.append(Declared(k.name or f.name, f.name, "", "", k, _default(f)))
            continue
        spec: Section = f.metadata["section"]
        for kf, k in _keys_of(spec.keys):
            dotted = f"{f.name}.{k.name or kf.name}"
            out.append(Declared(dotted, f.name, kf.name, k.attr or kf.name, k, _default(kf)))
    return tuple(out)


def known_keys(keys: Iterable[Declared]) -> Mapping[str, frozenset[str]]:
    """Each table's known keys ("": the top level's keys and sections)."""
    known: dict[str, set[str]] = {"": set()}
    for d in keys:
        table, _, name = d.dotted.rpartition(".")
        known[""].add(table.partition(".")[0] or name)
        if table:
            known.setdefault(table, set()).add(name)
    return MappingProxyType({t: frozenset(names) for t, names in known.items()})


def read_declared(root: type[R], r: TomlTable, keys: Iterable[Declared]) -> R:
    """`root` read from the document's top table `r`, key by key in declaration order."""
    values: dict[str, Any] = {}
    sections: dict[str, dict[str, Any]] = {}
    for d in keys:
        table, _, name = d.dotted.rpartition(".")
        value = d.key.read(r.table(table) if table else r, name, d.default)
        if d.part:
            sections.setdefault(d.field, {})[d.part] = value
        else:
            values[d.field] = value
    for f in fields(root):  # type: ignore[arg-type]
        if "section" in f.metadata:
            values[f.name] = f.metadata["section"].make(sections.get(f.name, {}))
    return root(**values)


def settings_of(obj: Any, keys: Iterable[Declared]) -> dict[str, Any]:
    """Every declared key's value in `obj`, flattened to `section.key`."""
    out: dict[str, Any] = {}
    for d in keys:
        held = getattr(obj, d.field)
        out[d.dotted] = d.key.show(getattr(held, d.attr) if d.part else held)
    return out


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
