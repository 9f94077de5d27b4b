"""SQL as text: the one statement splitter, and the quote-aware helpers the DDL reader uses.

The migrator (`collector/migrate.py`) runs the statements this module finds, and the privacy
doc (`anonymizer/ddl.py`) reads the same statements, so the two can never disagree about what a
statement is. A `;` ends a statement only outside quotes ('...', "...", `...`, with backslash
escapes; a doubled quote closes and reopens, which splits the same) and outside comments
(`-- ...`, `# ...` and `#!...` to the end of the line; `/* ... */`, nested as ClickHouse nests
them). Comments are left out of the statements. Pure text: no I/O, no engine.
"""

from __future__ import annotations

from collections.abc import Iterator

QUOTES = "'\"`"


def statements(sql: str) -> Iterator[tuple[str, str]]:
    """(leading comment, statement) pairs, in order. The leading comment is the text of the
    `--` comments before the statement's first token, joined by spaces (a table's description
    in our migrations); comments inside a statement are dropped."""
    comment: list[str] = []
    text: list[str] = []
    i, n = 0, len(sql)
    quote = ""
    while i < n:
        c = sql[i]
        if quote:
            text.append(c)
            if c == "\\" and i + 1 < n:
                text.append(sql[i + 1])
                i += 1
            elif c == quote:
                quote = ""
        elif c in QUOTES:
            quote = c
            text.append(c)
        elif sql.startswith(("--", "# ", "#!"), i):  # ClickHouse: `#c` is no comment
            end = sql.find("\n", i)
            end = n if end < 0 else end
            if not "".join(text).strip():
                comment.append(sql[i:end].lstrip("-#").strip())
            i = end
            continue
        elif sql.startswith("/*", i):
            i = _block_comment_end(sql, i)
            text.append(" ")  # `a/**/b` is two tokens
            continue
        elif c == ";":
            statement = "".join(text).strip()
            if statement:
                yield " ".join(comment).strip(), statement
            comment, text = [], []
        else:
            text.append(c)
        i += 1
    statement = "".join(text).strip()
    if statement:
        yield " ".join(comment).strip(), statement


def _block_comment_end(sql: str, start: int) -> int:
    """The index after the `/* ... */` at `start`; ClickHouse nests them, so do we."""
    depth, i = 0, start
    while i < len(sql):
        if sql.startswith("/*", i):
            depth, i = depth + 1, i + 2
        elif sql.startswith("*/", i):
            depth, i = depth - 1, i + 2
            if depth == 0:
                return i
        else:
            i += 1
    return len(sql)


def split_statements(sql: str) -> list[str]:
    """The statements of a migration file, without comments, each ready to execute."""
    return [statement for _, statement in statements(sql)]


def split(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside parentheses and quotes (" ": any run of whitespace); the parts
    stripped, empty ones dropped."""
    parts: list[str] = []
    start = 0
    for i, (c, outside) in enumerate(zip(text, top_level(text), strict=True)):
        if outside and (c == sep or (sep == " " and c.isspace())):
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def unquote(name: str) -> str:
    """`db`.`t`, "t" or db.t -> t."""
    return name.rsplit(".", 1)[-1].strip('`"')


def parenthesized(rest: str) -> tuple[str, str] | None:
    """The text inside the balanced parentheses `rest` starts with, and what follows; ("",
    rest) when it does not start with one; None when they never close."""
    if not rest.startswith("("):
        return "", rest
    for i, c, depth, quoted in _scan(rest):
        if c == ")" and depth == 0 and not quoted:
            return rest[1:i], rest[i + 1 :]
    return None


def top_level(text: str) -> list[bool]:
    """For each character of `text`: is it outside parentheses and quotes?"""
    return [depth == 0 and not quoted and c not in "()" for _, c, depth, quoted in _scan(text)]


def _scan(text: str) -> Iterator[tuple[int, str, int, bool]]:
    """(index, character, parenthesis depth after it, is it part of a quoted string) for each
    character: the one scanner of quotes (with backslash escapes) and parentheses."""
    depth, quote, escaped = 0, "", False
    for i, c in enumerate(text):
        if quote:
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            yield i, c, depth, True
            continue
        if c in QUOTES:
            quote = c
            yield i, c, depth, True
            continue
        if c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        yield i, c, depth, False


def tokens(sql: str) -> Iterator[tuple[str, str]]:
    """(kind, text) for each token of a statement without comments: `word` (a run of letters,
    digits and `_`), `ident` (a `...` or "..." quoted identifier, unquoted: it can name a
    function as well as a bare word can), `string` (a '...' literal, its text dropped) and
    `punct` (any other character but spaces). Quotes are read as `statements` reads them, so a
    check over these tokens sees the text the engine will run."""
    i, n = 0, len(sql)
    while i < n:
        c = sql[i]
        if c.isspace():
            i += 1
        elif c.isalnum() or c == "_":
            start = i
            while i < n and (sql[i].isalnum() or sql[i] == "_"):
                i += 1
            yield "word", sql[start:i]
        elif c in QUOTES:
            end = _quote_end(sql, i)
            yield ("string", "") if c == "'" else ("ident", sql[i + 1 : end - 1])
            i = end
        else:
            yield "punct", c
            i += 1


def _quote_end(sql: str, start: int) -> int:
    """The index after the quote opened at `start` (backslash escapes honoured); the end of the
    text when it never closes."""
    quote, i = sql[start], start + 1
    while i < len(sql):
        if sql[i] == "\\":
            i += 2
        elif sql[i] == quote:
            return i + 1
        else:
            i += 1
    return len(sql)
