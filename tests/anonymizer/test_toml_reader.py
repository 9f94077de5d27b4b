"""The one typed TOML reader behind the policy and the collector's config: each check refuses a
value in the same words, naming the dotted key, through the error its caller chooses."""

import tomllib
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from anonymizer.toml_reader import (
    TomlTable,
    boolean,
    choice,
    declared,
    integer,
    key,
    known_keys,
    line_of,
    read_declared,
    section,
    settings_of,
    sorted_list,
    strings,
)


class Refused(Exception):
    pass


def _error(dotted: str, reason: str) -> Refused:
    return Refused(f"{dotted}: {reason}")


def _reader(text: str) -> TomlTable:
    return TomlTable(tomllib.loads(text), "", _error)


@pytest.mark.parametrize(
    ("text", "read", "message"),
    [
        ("[s]\nn = 70\n", lambda t: t.table("s").integer("n", 1, 0, 24),
         "s.n: must be a whole number from 0 to 24"),
        ("[s]\nn = true\n", lambda t: t.table("s").integer("n", 1, 0, 24),
         "s.n: must be a whole number from 0 to 24"),
        ("", lambda t: t.integer("version", None, 1, 9), "version: is required"),
        ('[s]\nc = "x"\n', lambda t: t.table("s").choice("c", "a", ("a", "b")),
         "s.c: must be one of 'a', 'b'"),
        ("[s]\nb = 1\n", lambda t: t.table("s").boolean("b", True), "s.b: must be true or false"),
        ("[s]\nv = 1\n", lambda t: t.table("s").string("v", ""), "s.v: must be a string"),
        ("[s]\nl = [1]\n", lambda t: t.table("s").str_list("l", ()),
         "s.l: must be a list of strings"),
        ("s = 1\n", lambda t: t.table("s"), "s: must be a table"),
        ("[s]\nm = 1\n", lambda t: t.table("s").mapping("m", {}), "s.m: must be a table"),
        ("[s]\nx = 1\n", lambda t: t.table("s").check_known({"y", "a"}), "s.x: unknown key"),
        ("[s]\nx = 1\n", lambda t: t.table("s").check_known({"y", "a"}, list_known=True),
         "s.x: unknown key; known: a, y"),
        ("t = [1]\n", lambda t: t.at("t[0]", t.values["t"][0]), "t[0]: must be a table"),
    ],
)  # fmt: skip
def test_each_check_names_the_dotted_key(text: str, read: Any, message: str) -> None:
    with pytest.raises(Refused) as e:
        read(_reader(text))
    assert str(e.value) == message


def test_values_and_defaults() -> None:
    t = _reader('[s]\nn = 3\nc = "b"\nb = false\nl = ["x"]\n[s.m]\nk = 1\n').table("s")
    assert t.integer("n", 1, 0, 9) == 3 and t.integer("absent", 7, 0, 9) == 7
    assert t.choice("c", "a", ("a", "b")) == "b" and t.choice("absent", "a", ("a", "b")) == "a"
    assert t.boolean("b", True) is False and t.boolean("absent", True) is True
    assert t.str_list("l", ()) == ["x"] and t.str_list("absent", ("d",)) == ["d"]
    assert t.mapping("m", {}) == {"k": 1} and t.table("m").dotted("k") == "s.m.k"
    assert t.table("absent").values == {}
    t.check_known({"n", "c", "b", "l", "m"})


@given(st.one_of(st.integers(), st.booleans(), st.floats(allow_nan=False), st.text()))
def test_integer_takes_exactly_the_whole_numbers_in_range(value: object) -> None:
    t = TomlTable({"n": value}, "", _error)
    ok = isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 24
    if ok:
        assert t.integer("n", None, 0, 24) == value
    else:
        with pytest.raises(Refused, match=r"^n: must be a whole number from 0 to 24$"):
            t.integer("n", None, 0, 24)


def test_line_of_a_key_its_enclosing_key_and_the_base() -> None:
    override = "version = 2\n[ip]\n\nipv4_prefix = 40\n"
    base = "version = 1\n[pii]\nfields = { url = 'x' }\n[retention.plans]\nfree = 0\n"
    assert line_of([override, base], "ip.ipv4_prefix") == 4
    assert line_of([override, base], "version") == 1  # the override's, first
    assert line_of([override, base], "pii.fields.url") == 3  # inline: the enclosing key
    assert line_of([override, base], "retention.plans.free") == 5
    assert line_of([override, base], "mail.routing_zip") is None


# --- keys declared on dataclass fields ----------------------------------------------------------


@dataclass(frozen=True)
class _Limits:
    size: int = key(10, integer(1, 99))
    names: tuple[str, ...] = key(("b", "a"), strings, show=sorted_list)
    compiled: frozenset[str] = key(frozenset(), strings, name="raw", attr="compiled")


def _compile(values: dict[str, Any]) -> "_Compiled":
    return _Compiled(values["size"], tuple(values["names"]), frozenset(values["compiled"]))


@dataclass(frozen=True)
class _Compiled:
    size: int
    names: tuple[str, ...]
    compiled: frozenset[str]


@dataclass(frozen=True)
class _Root:
    version: int = key(None, integer(1, 9))
    mode: str = key("on", choice(("on", "off")), name="other.mode")
    limits: _Compiled = section(_Limits, _compile)
    flag: bool = key(True, boolean)


DECLARED = declared(_Root)


def test_declared_keys_give_the_known_keys_of_every_table() -> None:
    assert [d.dotted for d in DECLARED] == [
        "version", "other.mode", "limits.size", "limits.names", "limits.raw", "flag",
    ]  # fmt: skip
    assert known_keys(DECLARED) == {
        "": {"version", "other", "limits", "flag"},
        "other": {"mode"},
        "limits": {"size", "names", "raw"},
    }


def test_read_declared_reads_defaults_checks_and_builds_sections() -> None:
    assert _Root(1).limits == _Compiled(10, ("b", "a"), frozenset())  # the section's default
    root = read_declared(_Root, _reader("version = 2\n[limits]\nraw = ['x']\n"), DECLARED)
    assert root == _Root(2, "on", _Compiled(10, ("b", "a"), frozenset({"x"})), True)
    assert settings_of(root, DECLARED) == {
        "version": 2, "other.mode": "on", "limits.size": 10, "limits.names": ["a", "b"],
        "limits.raw": frozenset({"x"}), "flag": True,
    }  # fmt: skip
    with pytest.raises(Refused, match=r"^version: is required$"):
        read_declared(_Root, _reader("flag = false\n"), DECLARED)
    with pytest.raises(Refused, match=r"^limits\.size: must be a whole number from 1 to 99$"):
        read_declared(_Root, _reader("version = 1\n[limits]\nsize = 100\n"), DECLARED)
    with pytest.raises(Refused, match=r"^other\.mode: must be one of 'on', 'off'$"):
        read_declared(_Root, _reader("version = 1\n[other]\nmode = 'x'\n"), DECLARED)
