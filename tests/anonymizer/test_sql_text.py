"""The one statement splitter (used by the migrator and the DDL reader) and its quote-aware
helpers: a `;` inside quotes or comments never ends a statement."""

import re
from pathlib import Path

from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.sql_text import (
    parenthesized,
    split,
    split_statements,
    statements,
    top_level,
    unquote,
)
from collector.migrate import discover

REPO = Path(__file__).resolve().parents[2]
SQL_FILES = sorted((REPO / "sql").glob("*.sql"))


def _legacy_migrator_split(sql: str) -> list[str]:
    """What collector/migrate.py ran before it used anonymizer.sql_text: comment lines removed,
    then split at a `;` that ends a line, quotes ignored. Kept as the reference the shared
    splitter must agree with on the checked-in migrations."""
    text = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in re.split(r";\s*(?:\n|$)", text) if s.strip()]


def _words(sql: str) -> str:
    return " ".join(sql.split())


def test_the_splitter_agrees_with_the_migrator_on_every_file_in_sql() -> None:
    assert SQL_FILES
    migrations = {m.name: m for m in discover()}
    for path in SQL_FILES:
        text = path.read_text()
        ours = split_statements(text)
        assert ours, path.name
        assert [_words(s) for s in ours] == [_words(s) for s in _legacy_migrator_split(text)]
        assert list(migrations[path.name].statements) == ours  # the migrator runs these


def test_statements_and_their_leading_comment() -> None:
    sql = """
-- Things, with a comment; and a ";" in it.
-- Second line.
CREATE TABLE t (a String DEFAULT 'x;y', -- inline; comment
  b String COMMENT "q;r" /* block; comment */) ENGINE = Log;
INSERT INTO t VALUES ('it\\'s; fine', 'doubled '';'' quote');SELECT `odd;name` FROM t
;;
"""
    got = list(statements(sql))
    assert [c for c, _ in got] == ['Things, with a comment; and a ";" in it. Second line.', "", ""]
    assert [_words(s) for _, s in got] == [
        "CREATE TABLE t (a String DEFAULT 'x;y', b String COMMENT \"q;r\" ) ENGINE = Log",
        "INSERT INTO t VALUES ('it\\'s; fine', 'doubled '';'' quote')",
        "SELECT `odd;name` FROM t",
    ]
    assert split_statements("SELECT 1 /* unterminated ; comment") == ["SELECT 1"]
    nested = "SELECT 1 /* a /* b; */ c; */ AS x # d;\n, 2 AS y; SELECT 3"
    assert [_words(s) for s in split_statements(nested)] == ["SELECT 1 AS x , 2 AS y", "SELECT 3"]
    assert split_statements("SELECT 'unterminated ; quote") == ["SELECT 'unterminated ; quote"]
    assert split_statements("-- only a comment;\n  ;\n") == []


# --- hypothesis: statements built from plain SQL, quoted strings and comments ------------------

_PLAIN = st.text(alphabet="abcXYZ019 _,.()=*\n\t", min_size=1, max_size=12)
_ANY = st.text(alphabet="ab ;'\"`\\-/*#\n", max_size=12)


@st.composite
def _quoted(draw: st.DrawFn) -> str:
    quote = draw(st.sampled_from("'\"`"))
    inner = draw(_ANY).replace("\\", "\\\\").replace(quote, "\\" + quote)
    return quote + inner + quote


def _comment_text(t: str) -> str:
    """`t` with no `/*` or `*/` left in it (a comment's text, before nesting is added)."""
    return t.replace("/", "/ ").replace("*", "* ")


_LINE_COMMENT = st.tuples(st.sampled_from(["--", "#"]), _ANY).map(
    lambda p: p[0] + " " + p[1].replace("\n", " ") + "\n"
)
_BLOCK_COMMENT = st.tuples(_ANY, _ANY, st.booleans()).map(
    lambda p: (
        "/* "
        + _comment_text(p[0])
        + (" /* " + _comment_text(p[1]) + " */ " if p[2] else "")
        + _comment_text(p[1])
        + " */"
    )
)


@st.composite
def _statement(draw: st.DrawFn) -> tuple[str, str]:
    """(SQL with comments, the same SQL without them)."""
    parts = draw(st.lists(st.one_of(_PLAIN, _quoted(), _LINE_COMMENT, _BLOCK_COMMENT), max_size=8))
    with_comments = "SELECT " + " ".join(parts)
    without = "SELECT " + " ".join(p for p in parts if not p.startswith(("--", "#", "/*")))
    return with_comments, without


@settings(max_examples=300, deadline=None)
@given(st.lists(_statement(), min_size=1, max_size=5))
def test_a_semicolon_in_quotes_or_comments_never_splits(
    stmts: list[tuple[str, str]],
) -> None:
    sql = ";\n".join(s for s, _ in stmts)
    got = split_statements(sql)
    assert [_words(s) for s in got] == [_words(w) for _, w in stmts]


@settings(max_examples=200, deadline=None)
@given(st.lists(st.one_of(_PLAIN, _quoted()), max_size=8))
def test_a_statement_without_comments_comes_back_as_written(parts: list[str]) -> None:
    statement = ("SELECT " + " ".join(parts)).strip()
    assert split_statements(statement + ";") == [statement]
    assert split_statements(statement) == [statement]


def test_split_honours_parentheses_and_quotes() -> None:
    assert split("a, f(b, c), 'd, e', `g,h`") == ["a", "f(b, c)", "'d, e'", "`g,h`"]
    assert split("x  Map(String,\n String)   DEFAULT 'a b'", " ") == [
        "x",
        "Map(String,\n String)",
        "DEFAULT",
        "'a b'",
    ]
    assert split("'it\\'s, one', two") == ["'it\\'s, one'", "two"]


def test_unquote_parenthesized_and_top_level() -> None:
    assert unquote("`db`.`t`") == "t" and unquote('"t"') == "t" and unquote("db.t") == "t"
    assert parenthesized("(a, (b), ')') rest") == ("a, (b), ')'", " rest")
    assert parenthesized("(a '\\')' b) rest") == ("a '\\')' b", " rest")
    assert parenthesized("no parens") == ("", "no parens")
    assert parenthesized("(never closed") is None
    text = "a(b)'c'd"
    assert "".join(c for c, top in zip(text, top_level(text), strict=True) if top) == "ad"


def test_tokens_read_words_quoted_identifiers_strings_and_punctuation() -> None:
    from anonymizer.sql_text import tokens

    assert list(tokens("SELECT `a b`(x_1, 'it''s', \"q\\\"\") -- c")) == [
        ("word", "SELECT"), ("ident", "a b"), ("punct", "("), ("word", "x_1"), ("punct", ","),
        ("string", ""), ("string", ""), ("punct", ","), ("ident", 'q\\"'), ("punct", ")"),
        ("punct", "-"), ("punct", "-"), ("word", "c"),
    ]  # fmt: skip
    assert list(tokens("'never closed")) == [("string", "")]


@given(st.text(max_size=60))
@settings(max_examples=200)
def test_tokens_never_fail_and_never_yield_spaces(text: str) -> None:
    from anonymizer.sql_text import tokens

    for kind, value in tokens(text):
        assert kind in ("word", "ident", "string", "punct")
        assert kind != "punct" or (len(value) == 1 and not value.isspace())
