"""Read-only SQL for operators: `collector sql` and `POST /v1/admin/sql`.

A statement runs only if two independent layers agree it is a read:

1. The statement check (`refusal`), over the tokens `anonymizer.sql_text` reads: one statement,
   starting with SELECT, WITH, SHOW, DESCRIBE, DESC, EXPLAIN or EXISTS; no `SETTINGS`, `FORMAT`
   or `INTO` (`INTO OUTFILE` writes a file even in read-only mode); no `$` (a heredoc string
   `$$...$$` would hide text from the check); no quoted identifier with a backslash (the engine
   reads `\\x66ile` as `file`); no call to the scalar `file()` (it reads any file the engine can,
   the pseudonym keys included, and read-only mode does not stop it) nor to a table function
   outside `SAFE_TABLE_FUNCTIONS` (they reach files, URLs, other servers, programs).
2. The engine's own `readonly = 1`, appended as the statement's SETTINGS clause with bounds on
   time and result size. chDB honours it (checked: INSERT, CREATE, ALTER, DELETE and every
   external table function are refused with READONLY, code 164; the scalar `file()` and `INTO
   OUTFILE` are not, hence layer 1). A ClickHouse server honours it the same way.

What runs is the statement as the check read it, comments removed, so a comment cannot hide
anything from the check. Errors name the engine's error code, never its message: ClickHouse
quotes the query (and values it could not parse) in its messages.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable
from typing import Any

import orjson

from anonymizer.sql_text import split_statements, tokens
from collector.errors import HttpError, SinkError
from collector.sink import Sink

READ_VERBS = frozenset({"SELECT", "WITH", "SHOW", "DESCRIBE", "DESC", "EXPLAIN", "EXISTS"})
# keywords a read needs none of: the service sets the settings and the format itself
REFUSED_KEYWORDS = frozenset({"SETTINGS", "FORMAT", "INTO", "OUTFILE"})
# table functions that generate rows or read this database only
SAFE_TABLE_FUNCTIONS = frozenset(
    {"numbers", "numbers_mt", "zeros", "zeros_mt", "generate_series", "generateseries", "values",
     "null", "view", "merge", "generaterandom", "primes"}
)  # fmt: skip
# scalar functions that read outside the database: `file(path)` returns a file's bytes
REFUSED_FUNCTIONS = frozenset({"file"})
# table functions known to reach outside, refused even before the engine's list is read
KNOWN_TABLE_FUNCTIONS = frozenset(
    {"file", "filecluster", "url", "urlcluster", "s3", "s3cluster", "hdfs", "remote",
     "remotesecure", "cluster", "clusterallreplicas", "mysql", "postgresql", "sqlite", "odbc",
     "jdbc", "mongodb", "redis", "executable", "input", "filesystem", "python", "dictionary",
     "azureblobstorage", "gcs", "iceberg", "deltalake", "hudi", "format", "eval"}
)  # fmt: skip
_CODE = re.compile(r"Code: (\d+)")
_NAME = re.compile(r"\(([A-Z][A-Z0-9_]+)\)\s*$")


class ReadOnlyRefused(HttpError):
    """A statement that is not one plain read; names the rule, never the statement."""

    status = 400
    error = "read only"


class QueryFailed(HttpError):
    """The engine refused the query; names the engine's error code, never its message."""

    status = 400
    error = "query failed"


class ResultTooLarge(HttpError):
    """The result is over the bound on rows, bytes or time."""

    status = 413
    error = "result too large"


def refusal(sql: str, table_functions: Iterable[str] = ()) -> str:
    """Why `sql` (one statement, comments allowed) is not a plain read, or "" when it is.
    `table_functions`: the engine's own list (system.table_functions), beside the known ones."""
    statements = split_statements(sql)
    if len(statements) != 1:
        return "exactly one statement, please"
    toks = list(tokens(statements[0]))
    if toks[0][0] != "word" or toks[0][1].upper() not in READ_VERBS:
        return f"only reads run here ({', '.join(sorted(READ_VERBS))})"
    blocked = {*KNOWN_TABLE_FUNCTIONS, *(t.lower() for t in table_functions)}
    blocked -= SAFE_TABLE_FUNCTIONS
    blocked |= REFUSED_FUNCTIONS
    for i, (kind, text) in enumerate(toks):
        called = i + 1 < len(toks) and toks[i + 1] == ("punct", "(")
        if kind == "punct" and text == "$":
            return "heredoc strings ($$...$$) are refused"
        if kind == "ident" and "\\" in text:
            return "quoted identifiers with escapes are refused"
        if kind == "word" and not called and text.upper() in REFUSED_KEYWORDS:
            return f"{text.upper()} is refused: the service sets settings and format itself"
        if kind in ("word", "ident") and called and text.lower() in blocked:
            return f"{text}() reaches outside the database and is refused"
    return ""


def read_only_statement(sql: str, max_rows: int, max_bytes: int, timeout_s: int) -> str:
    """The statement with the engine's read-only mode and the bounds as its SETTINGS clause
    (the check has refused any SETTINGS of its own, so this is the only one)."""
    return (
        f"{split_statements(sql)[0]}\nSETTINGS readonly = 1, max_execution_time = {timeout_s}, "
        f"max_result_rows = {max_rows}, max_result_bytes = {max_bytes}, "
        "result_overflow_mode = 'throw'"
    )


def engine_error(e: SinkError) -> HttpError:
    """The engine's refusal as an answer: its code and name, e.g. `Code 47 (UNKNOWN_IDENTIFIER)`;
    over the bounds: 413."""
    text = str(e)
    code = _CODE.search(text)
    name = _NAME.search(text.split("\n", 1)[0])
    label = " ".join(
        p
        for p in (f"Code {code.group(1)}" if code else "", f"({name.group(1)})" if name else "")
        if p
    )
    if name and name.group(1) in ("TOO_MANY_ROWS_OR_BYTES", "TIMEOUT_EXCEEDED"):
        return ResultTooLarge(f"over the result or time bound: {label}; add a LIMIT or a WHERE")
    if name and name.group(1) == "READONLY":
        return ReadOnlyRefused(f"the engine refused a write in read-only mode: {label}")
    return QueryFailed(f"the engine refused the query: {label or 'no code given'}")


def table_functions(sink: Sink) -> frozenset[str]:
    """The engine's table functions, by name (read once per process by the callers)."""
    return frozenset(str(r["name"]) for r in sink.query("SELECT name FROM system.table_functions"))


def run(
    sink: Sink, sql: str, functions: Iterable[str], max_rows: int, max_bytes: int, timeout_s: int
) -> list[dict[str, Any]]:
    """Check, then run read-only within the bounds; blocking (the sink's thread)."""
    why = refusal(sql, functions)
    if why:
        raise ReadOnlyRefused(why)
    try:
        return sink.query(read_only_statement(sql, max_rows, max_bytes, timeout_s))
    except SinkError as e:
        raise engine_error(e) from None


def render(rows: list[dict[str, Any]], fmt: str) -> str:
    """Rows as `json` (one JSON object a line), `csv` (with a header) or `table` (aligned)."""
    if fmt == "json":
        return "".join(orjson.dumps(r).decode() + "\n" for r in rows)
    columns = list(rows[0]) if rows else []
    cells = [[_cell(r.get(c)) for c in columns] for r in rows]
    if fmt == "csv":
        out = io.StringIO()
        writer = csv.writer(out, lineterminator="\n")
        if columns:
            writer.writerow(columns)
        writer.writerows(cells)
        return out.getvalue()
    widths = [max([len(c), *(len(row[i]) for row in cells)]) for i, c in enumerate(columns)]
    lines = [_line(columns, widths), "  ".join("-" * w for w in widths)]
    lines += [_line(row, widths) for row in cells]
    lines.append(f"({len(rows)} row{'' if len(rows) == 1 else 's'})")
    return "\n".join(lines if columns else lines[-1:]) + "\n"


def _line(cells: list[str], widths: list[int]) -> str:
    return "  ".join(c.ljust(w) for c, w in zip(cells, widths, strict=True)).rstrip()


def _cell(value: Any) -> str:
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    return orjson.dumps(value).decode()
