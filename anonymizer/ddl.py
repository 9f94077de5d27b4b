"""Our ClickHouse DDL, read: the tables and materialized views the migrations in `sql/` leave
behind, with their columns and the migration that made each.

Statements come from `anonymizer.sql_text` (the splitter the migrator runs), so what is read here
is what is executed. A small reader for the DDL we write, not a full SQL parser: what it cannot
read (a view over a join, a CTE) it reports as such, and `anonymizer.schema_check` refuses it.
Pure: the caller reads the files and passes their text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from anonymizer.errors import AnonymizerError
from anonymizer.sql_text import parenthesized, split, statements, top_level, unquote


class SchemaMismatch(AnonymizerError):
    """The SQL schema and `anonymizer/rules.py` disagree; names every column concerned."""


@dataclass(frozen=True, slots=True)
class Column:
    name: str
    type: str
    migration: str  # the file that created or last changed it


@dataclass(slots=True)
class Table:
    name: str
    migration: str
    comment: str
    columns: list[Column] = field(default_factory=list)


@dataclass(frozen=True, slots=True)
class View:
    """A materialized view: how the rows of its `TO` table are derived, not stored data itself."""

    name: str
    migration: str
    target: str  # the `TO` table; "": the view keeps its rows in an inner table of its own
    source: str  # the one table it reads; "": not a plain `SELECT ... FROM table`
    columns: Mapping[str, str]  # output column -> its SQL expression, in SELECT order
    group_by: tuple[str, ...]


_CREATE = re.compile(
    r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w.`\"]+)\s*"
    r"(?:ON\s+CLUSTER\s+\S+\s*)?(?P<rest>.*)$",
    re.S | re.I,
)
_ALTER = re.compile(
    r"^ALTER\s+TABLE\s+(?P<name>[\w.`\"]+)\s+(?:ON\s+CLUSTER\s+\S+\s+)?(?P<rest>.*)$", re.S | re.I
)
_DROP = re.compile(r"^DROP\s+(?:TABLE|VIEW)\s+(?:IF\s+EXISTS\s+)?(?P<name>[\w.`\"]+)", re.I)
_VIEW = re.compile(
    r"^CREATE\s+(?:OR\s+REPLACE\s+)?MATERIALIZED\s+VIEW\s+(?:IF\s+NOT\s+EXISTS\s+)?"
    r"(?P<name>[\w.`\"]+)\s*(?P<head>.*?)\bAS\s+(?P<select>(?:SELECT|WITH)\b.*|\(.*)$",
    re.S | re.I,
)
_TO = re.compile(r"\bTO\s+(?P<name>[\w.`\"]+)", re.I)
_MODIFY_QUERY = re.compile(r"^MODIFY\s+QUERY\s+(?P<select>.*)$", re.S | re.I)
_CLAUSE = re.compile(
    r"\b(SELECT|FROM|PREWHERE|WHERE|GROUP\s+BY|HAVING|ORDER\s+BY|LIMIT|SETTINGS|UNION|EXCEPT|"
    r"INTERSECT|WINDOW|QUALIFY|FORMAT|WITH)\b",
    re.I,
)
_IDENTIFIER = re.compile(r"^(?:[\w`\"]+\.)?(?:\w+|`[^`]+`|\"[^\"]+\")$")
_ALIAS = re.compile(r"^(?P<expr>.*)\s+AS\s+(?P<alias>\w+|`[^`]+`|\"[^\"]+\")$", re.S | re.I)
_ARRAY_JOIN = re.compile(r"^(?P<table>\S+)\s+ARRAY\s+JOIN\s+(?P<arrays>.*)$", re.S | re.I)
_SET_OPERATIONS = frozenset({"UNION", "EXCEPT", "INTERSECT", "WITH"})
_COLUMN_END = frozenset(
    {"DEFAULT", "MATERIALIZED", "ALIAS", "EPHEMERAL", "CODEC", "TTL", "COMMENT", "AFTER",
     "FIRST", "SETTINGS", "NOT", "NULL", "PRIMARY", "STATISTICS"}
)  # fmt: skip
_NOT_COLUMNS = frozenset({"INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY"})


def _column(definition: str, migration: str) -> Column:
    """`name Type [DEFAULT ...] [COMMENT ...]` -> Column(name, Type)."""
    tokens = split(definition, " ")
    type_tokens: list[str] = []
    for token in tokens[1:]:
        if token.upper() in _COLUMN_END:
            break
        type_tokens.append(token)
    return Column(unquote(tokens[0]), " ".join(type_tokens), migration)


def _alter(table: Table, actions: str, migration: str) -> None:
    for action in split(actions):
        words = split(action, " ")
        verb = [w.upper() for w in words[:2]]
        if verb[:2] not in (["ADD", "COLUMN"], ["DROP", "COLUMN"], ["MODIFY", "COLUMN"]):
            continue
        rest = words[2:]
        if [w.upper() for w in rest[:3]] == ["IF", "NOT", "EXISTS"]:
            rest = rest[3:]
        elif [w.upper() for w in rest[:2]] == ["IF", "EXISTS"]:
            rest = rest[2:]
        name = unquote(rest[0])
        existing = [c.name for c in table.columns]
        if verb[0] == "DROP":
            table.columns = [c for c in table.columns if c.name != name]
            continue
        column = _column(" ".join(rest), migration)
        if name in existing:  # MODIFY, or ADD ... IF NOT EXISTS of a column that is there
            if verb[0] == "MODIFY" and column.type:
                table.columns[existing.index(name)] = column
            continue
        upper = [w.upper() for w in rest]
        at = len(table.columns)
        if "FIRST" in upper:
            at = 0
        elif "AFTER" in upper and upper.index("AFTER") + 1 < len(rest):
            after = unquote(rest[upper.index("AFTER") + 1])
            at = existing.index(after) + 1 if after in existing else at
        table.columns.insert(at, column)


def _name(item: str) -> str:
    """The name of a SELECT item or GROUP BY key: its alias, its column, or its text."""
    item = item.strip()
    if m := _ALIAS.match(item):
        return unquote(m["alias"])
    return unquote(item) if _IDENTIFIER.match(item) else " ".join(item.split())


def _view(name: str, migration: str, target: str, select: str) -> View:
    """The view's output columns, source table and GROUP BY keys. A SELECT that is not one
    `SELECT ... FROM table [WHERE ...] [GROUP BY ...]` gets no source, so the check fails."""
    top = top_level(select)
    marks = [m for m in _CLAUSE.finditer(select) if top[m.start()]]
    clauses: dict[str, str] = {}
    simple = bool(marks) and marks[0].start() == 0
    for i, m in enumerate(marks):
        keyword = " ".join(m[1].upper().split())
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(select)
        simple = simple and keyword not in clauses and keyword not in _SET_OPERATIONS
        clauses[keyword] = select[m.end() : stop].strip()
    source = clauses.get("FROM", "")
    columns: dict[str, str] = {}
    if joined := _ARRAY_JOIN.match(source):
        # `FROM table ARRAY JOIN <array> AS alias`: each row of the table repeated once per
        # element; the alias is an expression over the table's columns like any other
        aliased = _ALIAS.match(joined["arrays"].strip())
        source = joined["table"] if aliased else ""
        if aliased:
            columns[unquote(aliased["alias"])] = aliased["expr"].strip()
    if not simple or not _IDENTIFIER.match(source):
        source = ""  # a join, a subquery, a UNION, a CTE: rules.py cannot vouch for it
    for item in split(clauses.get("SELECT", "")):
        aliased = _ALIAS.match(item)
        columns.setdefault(_name(item), aliased["expr"].strip() if aliased else item)
    group_by = tuple(_name(k) for k in split(clauses.get("GROUP BY", "")))
    return View(name, migration, target, unquote(source) if source else "", columns, group_by)


def parse(sql_texts: Mapping[str, str]) -> tuple[dict[str, Table], dict[str, View]]:
    tables: dict[str, Table] = {}
    views: dict[str, View] = {}
    for migration in sorted(sql_texts):
        for comment, statement in statements(sql_texts[migration]):
            if m := _CREATE.match(statement):
                name, rest = unquote(m["name"]), m["rest"].strip()
                inside = parenthesized(rest)
                if inside is None:
                    raise SchemaMismatch(
                        f"{migration}: unbalanced parentheses in CREATE TABLE {name}"
                    )
                body = inside[0]
                table = Table(name, migration, comment)
                if body:
                    table.columns = [
                        _column(item, migration)
                        for item in split(body)
                        if split(item, " ")[0].upper() not in _NOT_COLUMNS
                    ]
                elif (other := re.match(r"AS\s+([\w.`\"]+)", rest, re.I)) and unquote(
                    other[1]
                ) in tables:
                    table.columns = list(tables[unquote(other[1])].columns)
                tables.setdefault(name, table)  # IF NOT EXISTS: the first definition stands
            elif m := _VIEW.match(statement):
                name = unquote(m["name"])
                to = _TO.search(m["head"])
                target = unquote(to["name"]) if to else ""
                views.setdefault(name, _view(name, migration, target, m["select"].strip()))
            elif m := _ALTER.match(statement):
                name = unquote(m["name"])
                if name in views and (q := _MODIFY_QUERY.match(m["rest"].strip())):
                    views[name] = _view(name, migration, views[name].target, q["select"])
                    continue
                if name not in tables:
                    raise SchemaMismatch(f"{migration}: ALTER TABLE {name} before CREATE TABLE")
                _alter(tables[name], m["rest"], migration)
            elif m := _DROP.match(statement):
                tables.pop(unquote(m["name"]), None)
                views.pop(unquote(m["name"]), None)
    return tables, views


def parse_schema(sql_texts: Mapping[str, str]) -> dict[str, Table]:
    """The tables the migrations leave behind, applied in file-name order: CREATE TABLE (column
    list, or `AS other`), ALTER TABLE ... ADD / DROP / MODIFY COLUMN, DROP TABLE. Views are not
    tables of their own and are skipped (`parse_views` has the materialized ones)."""
    return parse(sql_texts)[0]


def parse_views(sql_texts: Mapping[str, str]) -> dict[str, View]:
    """The materialized views the migrations leave behind: CREATE MATERIALIZED VIEW, ALTER TABLE
    ... MODIFY QUERY, DROP VIEW / DROP TABLE. Plain views store nothing and are skipped."""
    return parse(sql_texts)[1]
