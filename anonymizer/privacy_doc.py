"""`docs/privacy.md`, generated: every stored column, where it comes from, what the policy does to
it and why it is not personal data.

It is made from the SQL migrations and `anonymizer.rules`, and refuses to be made when the two
disagree (a column with no rule, or a rule for a column the schema lacks), so the document
cannot drift from what is stored. The daily rollups are checked the same way, and against the
materialized views that fill them: each rollup column must be computed from exactly the source
columns, and by the operation, its rule names. A materialized view is the derivation of its
`TO` table, never a table of its own. Pure: the caller reads the files and passes their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from anonymizer.detectors import MAX_DECODE_ROUNDS
from anonymizer.errors import AnonymizerError
from anonymizer.policy import Policy
from anonymizer.rules import (
    KINDS,
    OPERATORS,
    OTHER_COLUMNS,
    POLICY_KEYS,
    RECORD_KEYS,
    ROLLUP_NOTES,
    ROLLUP_OPERATIONS,
    ROLLUPS,
    RULES,
    STAMPED,
    ColumnRule,
    FieldRule,
    Rollup,
    RollupColumn,
    RollupOperation,
    applied,
    rollup_columns,
    rules_for,
    setting_values,
)

REGENERATE = "python -m anonymizer privacy-doc policy.toml sql --output docs/privacy.md"
OPERATOR_MEANING = {
    "kept": "stored as sent (or in a normal form: upper-cased, lower-cased)",
    "truncated": "cut to a shorter prefix (network, ZIP, host)",
    "generalized": "replaced by a coarser category (country, browser family, consent outcome)",
    "pseudonymized": "replaced by a keyed token; unlinkable once its key or salt is destroyed",
    "redacted": "parts that look personal replaced by a placeholder such as {email}",
    "dropped": "not stored at all (the column, if any, stays empty)",
}
ROLLUP_OPERATION_MEANING: Mapping[RollupOperation, str] = {
    "grouped by": "a group key: one rollup row per day and distinct combination of the keys",
    "counted": "the number of source rows in the group (or of those with a value)",
    "summed": "the sum of a number over the group's source rows",
    "sketched (uniqCombined64)": "hashes of the group's distinct values (a HyperLogLog estimate "
    "once there are many), read only as an approximate distinct count",
    "quantiles": "a sample of the group's values (at most 8192), read only as percentiles",
}
# The aggregate function the view must apply, and the type the rollup column must have, for each
# operation but "grouped by" (a GROUP BY key, of a plain type).
_OPERATION_SQL: Mapping[RollupOperation, tuple[tuple[str, ...], str]] = {
    "counted": (("count", "countIf"), "SimpleAggregateFunction(sum,"),
    "summed": (("sum",), "SimpleAggregateFunction(sum,"),
    "sketched (uniqCombined64)": (("uniqCombined64State",), "AggregateFunction(uniqCombined64,"),
    "quantiles": (("quantilesState",), "AggregateFunction(quantiles("),
}


_HEADER = (
    "| column | type | source | under this policy | governed by | why it is not personal data |"
)


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


# --- a small parser for our ClickHouse DDL -----------------------------------------------------

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
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_NAME = re.compile(
    r"`(?P<bq>[^`]+)`|\"(?P<dq>[^\"]+)\"|(?<![\w.])(?:[A-Za-z_]\w*\.)?(?P<bare>[A-Za-z_]\w*)(?![\w.])"
    r"(?!\s*\()"
)
_SET_OPERATIONS = frozenset({"UNION", "EXCEPT", "INTERSECT", "WITH"})
_FUNCTION = re.compile(r"^\s*(\w+)\s*\(")
_COLUMN_END = frozenset(
    {"DEFAULT", "MATERIALIZED", "ALIAS", "EPHEMERAL", "CODEC", "TTL", "COMMENT", "AFTER",
     "FIRST", "SETTINGS", "NOT", "NULL", "PRIMARY", "STATISTICS"}
)  # fmt: skip
_NOT_COLUMNS = frozenset({"INDEX", "PROJECTION", "CONSTRAINT", "PRIMARY"})


def _statements(sql: str) -> Iterator[tuple[str, str]]:
    """(leading comment, statement) pairs; `--` comments and quotes are honoured."""
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
        elif c in "'\"`":
            quote = c
            text.append(c)
        elif sql.startswith("--", i):
            end = sql.find("\n", i)
            end = n if end < 0 else end
            if not "".join(text).strip():
                comment.append(sql[i + 2 : end].strip())
            i = end
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


def _split(text: str, sep: str = ",") -> list[str]:
    """Split at `sep` outside parentheses and quotes (whitespace: any run of it)."""
    parts: list[str] = []
    depth, quote, start = 0, "", 0
    i = 0
    while i < len(text):
        c = text[i]
        if quote:
            if c == "\\":
                i += 1
            elif c == quote:
                quote = ""
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        elif depth == 0 and (c == sep or (sep == " " and c.isspace())):
            parts.append(text[start:i])
            start = i + 1
        i += 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def _unquote(name: str) -> str:
    """`db`.`t`, "t" or db.t -> t."""
    return name.rsplit(".", 1)[-1].strip('`"')


def _body(rest: str) -> tuple[str, str]:
    """The text inside the first balanced parentheses of `rest`, and what follows."""
    if not rest.startswith("("):
        return "", rest
    depth, quote = 0, ""
    for i, c in enumerate(rest):
        if quote:
            quote = "" if c == quote else quote
        elif c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
            if depth == 0:
                return rest[1:i], rest[i + 1 :]
    raise SchemaMismatch("unbalanced parentheses in a CREATE TABLE statement")


def _column(definition: str, migration: str) -> Column:
    """`name Type [DEFAULT ...] [COMMENT ...]` -> Column(name, Type)."""
    tokens = _split(definition, " ")
    type_tokens: list[str] = []
    for token in tokens[1:]:
        if token.upper() in _COLUMN_END:
            break
        type_tokens.append(token)
    return Column(_unquote(tokens[0]), " ".join(type_tokens), migration)


def _alter(table: Table, actions: str, migration: str) -> None:
    for action in _split(actions):
        words = _split(action, " ")
        verb = [w.upper() for w in words[:2]]
        if verb[:2] not in (["ADD", "COLUMN"], ["DROP", "COLUMN"], ["MODIFY", "COLUMN"]):
            continue
        rest = words[2:]
        if [w.upper() for w in rest[:3]] == ["IF", "NOT", "EXISTS"]:
            rest = rest[3:]
        elif [w.upper() for w in rest[:2]] == ["IF", "EXISTS"]:
            rest = rest[2:]
        name = _unquote(rest[0])
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
            after = _unquote(rest[upper.index("AFTER") + 1])
            at = existing.index(after) + 1 if after in existing else at
        table.columns.insert(at, column)


def _top_level(text: str) -> list[bool]:
    """For each character of `text`: is it outside parentheses and quotes?"""
    out: list[bool] = []
    depth, quote, escaped = 0, "", False
    for c in text:
        if quote:
            out.append(False)
            if escaped:
                escaped = False
            elif c == "\\":
                escaped = True
            elif c == quote:
                quote = ""
            continue
        if c in "'\"`":
            quote = c
        elif c == "(":
            depth += 1
        elif c == ")":
            depth -= 1
        out.append(depth == 0 and not quote and c not in "()")
    return out


def _name(item: str) -> str:
    """The name of a SELECT item or GROUP BY key: its alias, its column, or its text."""
    item = item.strip()
    if m := _ALIAS.match(item):
        return _unquote(m["alias"])
    return _unquote(item) if _IDENTIFIER.match(item) else " ".join(item.split())


def _view(name: str, migration: str, target: str, select: str) -> View:
    """The view's output columns, source table and GROUP BY keys. A SELECT that is not one
    `SELECT ... FROM table [WHERE ...] [GROUP BY ...]` gets no source, so the check fails."""
    top = _top_level(select)
    marks = [m for m in _CLAUSE.finditer(select) if top[m.start()]]
    clauses: dict[str, str] = {}
    simple = bool(marks) and marks[0].start() == 0
    for i, m in enumerate(marks):
        keyword = " ".join(m[1].upper().split())
        stop = marks[i + 1].start() if i + 1 < len(marks) else len(select)
        simple = simple and keyword not in clauses and keyword not in _SET_OPERATIONS
        clauses[keyword] = select[m.end() : stop].strip()
    source = clauses.get("FROM", "")
    if not simple or not _IDENTIFIER.match(source):
        source = ""  # a join, a subquery, a UNION, a CTE: rules.py cannot vouch for it
    columns: dict[str, str] = {}
    for item in _split(clauses.get("SELECT", "")):
        aliased = _ALIAS.match(item)
        columns.setdefault(_name(item), aliased["expr"].strip() if aliased else item)
    group_by = tuple(_name(k) for k in _split(clauses.get("GROUP BY", "")))
    return View(name, migration, target, _unquote(source) if source else "", columns, group_by)


def _parse(sql_texts: Mapping[str, str]) -> tuple[dict[str, Table], dict[str, View]]:
    tables: dict[str, Table] = {}
    views: dict[str, View] = {}
    for migration in sorted(sql_texts):
        for comment, statement in _statements(sql_texts[migration]):
            if m := _CREATE.match(statement):
                name, rest = _unquote(m["name"]), m["rest"].strip()
                body, _ = _body(rest)
                table = Table(name, migration, comment)
                if body:
                    table.columns = [
                        _column(item, migration)
                        for item in _split(body)
                        if _split(item, " ")[0].upper() not in _NOT_COLUMNS
                    ]
                elif (other := re.match(r"AS\s+([\w.`\"]+)", rest, re.I)) and _unquote(
                    other[1]
                ) in tables:
                    table.columns = list(tables[_unquote(other[1])].columns)
                tables.setdefault(name, table)  # IF NOT EXISTS: the first definition stands
            elif m := _VIEW.match(statement):
                name = _unquote(m["name"])
                to = _TO.search(m["head"])
                target = _unquote(to["name"]) if to else ""
                views.setdefault(name, _view(name, migration, target, m["select"].strip()))
            elif m := _ALTER.match(statement):
                name = _unquote(m["name"])
                if name in views and (q := _MODIFY_QUERY.match(m["rest"].strip())):
                    views[name] = _view(name, migration, views[name].target, q["select"])
                    continue
                if name not in tables:
                    raise SchemaMismatch(f"{migration}: ALTER TABLE {name} before CREATE TABLE")
                _alter(tables[name], m["rest"], migration)
            elif m := _DROP.match(statement):
                tables.pop(_unquote(m["name"]), None)
                views.pop(_unquote(m["name"]), None)
    return tables, views


def parse_schema(sql_texts: Mapping[str, str]) -> dict[str, Table]:
    """The tables the migrations leave behind, applied in file-name order: CREATE TABLE (column
    list, or `AS other`), ALTER TABLE ... ADD / DROP / MODIFY COLUMN, DROP TABLE. Views are not
    tables of their own and are skipped (`parse_views` has the materialized ones)."""
    return _parse(sql_texts)[0]


def parse_views(sql_texts: Mapping[str, str]) -> dict[str, View]:
    """The materialized views the migrations leave behind: CREATE MATERIALIZED VIEW, ALTER TABLE
    ... MODIFY QUERY, DROP VIEW / DROP TABLE. Plain views store nothing and are skipped."""
    return _parse(sql_texts)[1]


# --- the rules each column must have -----------------------------------------------------------


def _rules_by_column(table: str) -> dict[str, list[FieldRule | ColumnRule]]:
    """Column -> the rules that fill it, for one table, in rules.py order."""
    out: dict[str, list[FieldRule | ColumnRule]] = {}
    for kind in KINDS.values():
        if kind.table == table:
            for rule in rules_for(kind.name):
                for column in rule.columns:
                    out.setdefault(column, []).append(rule)
    for c in (*STAMPED, *OTHER_COLUMNS):
        if table in c.tables:
            out.setdefault(c.column, []).append(c)
    return out


def _names(expression: str) -> set[str]:
    """The column names an SQL expression mentions (not functions, not string literals)."""
    return {m["bq"] or m["dq"] or m["bare"] for m in _NAME.finditer(_STRING.sub("''", expression))}


def derived_from(view: View, column: str, source: Table) -> tuple[str, ...]:
    """The columns of `source` that `view` computes `column` from, through its other aliases,
    in the source table's order."""
    present = {c.name for c in source.columns}
    found: set[str] = set()
    todo, seen = [column], set()
    while todo:
        name = todo.pop()
        if name in seen or name not in view.columns:
            continue
        seen.add(name)
        for n in _names(view.columns[name]):
            if n in present:
                found.add(n)
            elif n != name:
                todo.append(n)
    return tuple(c.name for c in source.columns if c.name in found)


def _names_list(names: tuple[str, ...]) -> str:
    return ", ".join(names) if names else "no column (the rows alone)"


def _check_rollup(
    table: Table, rollup: Rollup, tables: Mapping[str, Table], views: Mapping[str, View]
) -> list[str]:
    """A rollup's columns against its rules, and each rule against the view that fills it."""
    problems = []
    ruled = {r.column: r for r in rollup_columns(table.name)}
    for c in table.columns:
        if c.name not in ruled:
            problems.append(
                f"{c.migration}: column {table.name}.{c.name} has no rule in anonymizer/rules.py"
            )
    present = {c.name: c for c in table.columns}
    for name in ruled:
        if name not in present:
            problems.append(
                f"anonymizer/rules.py names column {table.name}.{name}, which the SQL lacks"
            )
    view = views.get(rollup.view)
    if view is None or view.target != table.name:
        problems.append(
            f"anonymizer/rules.py says view {rollup.view} fills rollup {table.name}, which the "
            "SQL lacks"
        )
        return problems
    if view.source != rollup.source:
        reads = view.source or "something other than one table (a join, subquery, union or CTE)"
        problems.append(
            f"{view.migration}: view {view.name} reads {reads}; anonymizer/rules.py says "
            f"rollup {table.name} is made from {rollup.source}"
        )
        return problems
    source = tables.get(rollup.source)
    if source is None:
        return problems  # reported as a table the SQL lacks
    for name, rule in ruled.items():
        if name not in present:
            continue
        where = f"{view.migration}: view {view.name}"
        expression = view.columns.get(name)
        if expression is None:
            problems.append(f"{where} does not fill column {table.name}.{name}")
            continue
        found = derived_from(view, name, source)
        if set(found) != set(rule.sources):
            problems.append(
                f"{where} computes {table.name}.{name} from {_names_list(found)} of "
                f"{source.name}; anonymizer/rules.py says {_names_list(rule.sources)}"
            )
        kind = "".join(present[name].type.split())
        call = _FUNCTION.match(expression)
        function = call[1] if call else ""
        if rule.operation == "grouped by":
            grouped = name in view.group_by or " ".join(expression.split()) in view.group_by
            ok, plain = grouped, "AggregateFunction(" not in kind
        else:
            functions, type_prefix = _OPERATION_SQL[rule.operation]
            ok, plain = function in functions, kind.startswith(type_prefix)
        if not ok:
            problems.append(
                f"{where} computes {table.name}.{name} as {' '.join(expression.split())}; "
                f"anonymizer/rules.py says it is {rule.operation}"
            )
        if not plain:
            problems.append(
                f"{present[name].migration}: column {table.name}.{name} is {present[name].type}; "
                f"anonymizer/rules.py says it is {rule.operation}"
            )
    return problems


def check_schema(tables: Mapping[str, Table], views: Mapping[str, View] | None = None) -> None:
    """Raise `SchemaMismatch` listing every column without a rule and every rule without a
    column, so neither the schema nor the rules can change alone. Rollups are checked against
    the materialized views that fill them (`views`, from `parse_views`); a materialized view
    that writes anywhere but a rollup with rules is refused."""
    views = views or {}
    problems = []
    ruled_tables = (
        {k.table for k in KINDS.values()}
        | {t for c in OTHER_COLUMNS for t in c.tables}
        | set(ROLLUPS)
    )
    for name in sorted(ruled_tables - set(tables)):
        problems.append(f"anonymizer/rules.py has rules for table {name}, which the SQL lacks")
    for view in views.values():
        rollup = ROLLUPS.get(view.target)
        if not view.target:
            problems.append(
                f"{view.migration}: materialized view {view.name} keeps rows in a table of its "
                "own; give it a TO table with rules in anonymizer/rules.py"
            )
        elif rollup is None:
            problems.append(
                f"{view.migration}: materialized view {view.name} writes to {view.target}, "
                "which is not a rollup in anonymizer/rules.py"
            )
        elif rollup.view != view.name:
            problems.append(
                f"{view.migration}: materialized view {view.name} writes to {view.target}, "
                f"which anonymizer/rules.py says only {rollup.view} fills"
            )
    for table in tables.values():
        if table.name not in ruled_tables:
            problems.append(
                f"{table.migration}: table {table.name} has no rules in anonymizer/rules.py"
            )
            continue
        if table.name in ROLLUPS:
            problems += _check_rollup(table, ROLLUPS[table.name], tables, views)
            continue
        ruled = _rules_by_column(table.name)
        for c in table.columns:
            if c.name not in ruled:
                problems.append(
                    f"{c.migration}: column {table.name}.{c.name} has no rule in "
                    "anonymizer/rules.py"
                )
        present = {c.name for c in table.columns}
        for name in ruled:
            if name not in present:
                problems.append(
                    f"anonymizer/rules.py names column {table.name}.{name}, which the SQL lacks"
                )
    if problems:
        raise SchemaMismatch(
            "the SQL schema and anonymizer/rules.py disagree:\n  " + "\n  ".join(problems)
        )


# --- rendering ---------------------------------------------------------------------------------


def _md_row(*cells: str) -> str:
    """One Markdown table row."""
    return "| " + " | ".join(_cell(x) for x in cells) + " |"


def _cell(text: str) -> str:
    return text.replace("|", "\\|").replace("\n", " ")


def _setting(key: str, settings: Mapping[str, str]) -> str:
    return f"`{key} = {settings[key]}`"


def _under(rule: FieldRule | ColumnRule, policy: Policy, settings: Mapping[str, str]) -> str:
    """`**operator**: what it does (the settings that decided it)`."""
    if isinstance(rule, ColumnRule):
        keys = [_setting(k, settings) for k in rule.policy_keys]
        return f"**{rule.operator}**: {rule.how}" + (f" ({', '.join(keys)})" if keys else "")
    a = applied(rule, policy)
    if rule.identifier:
        listed = "listed" if rule.identifier in policy.identifiers.fields else "not listed"
        keys = [f"`{rule.identifier}` {listed} in `identifiers.fields`"]
        keys += [_setting(k, settings) for k in rule.policy_keys if k != "identifiers.fields"]
    else:
        keys = [_setting(k, settings) for k in rule.policy_keys]
    return f"**{a.operator}**: {a.how}" + (f" ({'; '.join(keys)})" if keys else "")


def _joined(values: list[str]) -> str:
    return "<br>".join(dict.fromkeys(values))


def _source(rule: FieldRule | ColumnRule) -> str:
    if isinstance(rule, ColumnRule):
        return f"stamped: {rule.source}" if rule in STAMPED else rule.source
    return f"`{rule.field}`" + (f" ({rule.part})" if rule.part else "")


def _table_section(table: Table, policy: Policy, settings: Mapping[str, str]) -> list[str]:
    kinds = [k for k in KINDS.values() if k.table == table.name]
    title = f"## `{table.name}`"
    if kinds:
        title += f" (kind `{kinds[0].name}`)"
    lines = [title, ""]
    if table.comment:
        lines += [f"> {table.comment}", ""]
    lines += [_HEADER, "|---|---|---|---|---|---|"]
    ruled = _rules_by_column(table.name)
    for c in table.columns:
        rules = ruled[c.name]
        lines.append(
            _md_row(
                f"`{c.name}`",
                f"`{c.type}`",
                _joined([_source(r) for r in rules]),
                _joined([_under(r, policy, settings) for r in rules]),
                _joined([r.rule for r in rules]),
                _joined([r.why for r in rules]),
            )
        )
    if kinds:
        kind = kinds[0]
        lines += [
            "",
            f"Every input field of a record of kind `{kind.name}` "
            f"(required: {', '.join(f'`{f}`' for f in kind.required)}):",
            "",
            "| field | operator under this policy | columns |",
            "|---|---|---|",
        ]
        for rule in rules_for(kind.name):
            columns = ", ".join(f"`{c}`" for c in rule.columns) or "none: not stored"
            lines.append(
                f"| {_cell(_source(rule))} | {applied(rule, policy).operator} | {columns} |"
            )
    return [*lines, ""]


def _rollup_source(rule: RollupColumn, rollup: Rollup) -> str:
    if not rule.sources:
        return f"every row of `{rollup.source}`"
    return ", ".join(f"`{rollup.source}.{c}`" for c in rule.sources)


def _rollup_section(table: Table, view: View) -> list[str]:
    rollup = ROLLUPS[table.name]
    lines = [f"## `{table.name}` (rollup of `{rollup.source}`, filled by view `{view.name}`)", ""]
    if table.comment:
        lines += [f"> {table.comment}", ""]
    ruled = {r.column: r for r in rollup_columns(table.name)}
    keys = [c.name for c in table.columns if ruled[c.name].operation == "grouped by"]
    lines += [
        f"One row per {', '.join(f'`{k}`' for k in keys)}.",
        "",
        "| column | type | made from | operation | view computes | why it is not personal data |",
        "|---|---|---|---|---|---|",
    ]
    for c in table.columns:
        rule = ruled[c.name]
        lines.append(
            _md_row(
                f"`{c.name}`",
                f"`{c.type}`",
                _rollup_source(rule, rollup),
                f"**{rule.operation}**: {rule.how}",
                f"`{' '.join(view.columns[c.name].split())}`",
                rule.why,
            )
        )
    return [*lines, ""]


def _rollups_intro(views: Mapping[str, View]) -> list[str]:
    return [
        "## Daily rollups (derived tables)",
        "",
        "No record is posted to these tables: each is filled by a materialized view "
        f"(`CREATE MATERIALIZED VIEW ... TO table`, in "
        f"{', '.join(sorted({f'`{v.migration}`' for v in views.values()}))}) from "
        "one anonymized table above. The view is the rollup's derivation, not a table of its "
        "own; the generator checks that it computes each column from exactly the source columns, "
        "and by the operation, listed here.",
        "",
        *(f"- {note}" for note in ROLLUP_NOTES),
        "",
        "| operation | meaning |",
        "|---|---|",
        *(f"| {op} | {_cell(ROLLUP_OPERATION_MEANING[op])} |" for op in ROLLUP_OPERATIONS),
        "",
    ]


def _never_stored(rule: FieldRule, policy: Policy) -> bool:
    """No column at all, or a column the policy leaves empty."""
    a = applied(rule, policy)
    return not rule.columns or (a.operator == "dropped" and a.how != rule.how)


def _detectors_section(policy: Policy) -> list[str]:
    """The detectors (anonymizer.detectors): what each finds and the placeholder it leaves."""
    pii = policy.pii
    per_field = ", ".join(f"`{k}`: {v}" for k, v in pii.fields.items()) or "none"
    lines = [
        "## Personal data detectors",
        "",
        "One set of detectors (`anonymizer/detectors.py`) runs on the write path of every kind "
        "and in `collector scan-pii`. Text is first normalized (NFKC; percent-decoding repeated "
        f"up to {MAX_DECODE_ROUNDS} times, `+` as a space in query values; a value still encoded "
        "after that is treated as a token). In free-text columns (every text column not made "
        "by a named operator, map keys and values included) each finding is replaced in place "
        "by its placeholder (`call {phone} now`); in a path or a kept query value the whole "
        "segment or value becomes the placeholder; in a host, an IP literal in any form becomes "
        "`{ip}`.",
        "",
        f"When a detector fires in a free-text field the policy says `{pii.action}` "
        f"(`pii.action`; per field: {per_field}): `replace` stores the placeholder, `reject` "
        "refuses the record with an error naming the field and the class, never the value.",
        "",
        "| class | placeholder | finds | confirmed by |",
        "|---|---|---|---|",
    ]
    for d in pii.detectors.detectors:
        lines.append(_md_row(d.name, f"`{d.placeholder}`", d.what, d.confirmation))
    return [*lines, ""]


def render_privacy_doc(policy: Policy, sql_texts: Mapping[str, str]) -> str:
    """The Markdown document for `policy` and the schema the migrations in `sql_texts` (file
    name -> SQL text) create. Raises `SchemaMismatch` when schema and rules disagree."""
    tables, views = _parse(sql_texts)
    check_schema(tables, views)
    settings = setting_values(policy)
    record_tables = [k.table for k in KINDS.values()]
    ordered = [tables[t] for t in record_tables] + [
        t for t in tables.values() if t.name not in record_tables and t.name not in ROLLUPS
    ]
    rollups = [tables[r.table] for r in ROLLUPS.values()]
    lines = [
        f"<!-- Generated by `{REGENERATE}`. Do not edit: regenerate. -->",
        "",
        "# What is stored, and why it is not personal data",
        "",
        f"Every column of every table, under the policy in force (version {policy.version}), "
        "and how each daily rollup is derived. "
        "Generated from `anonymizer/rules.py` (the one table of what happens to each input "
        "field), the policy file and the SQL migrations "
        f"({', '.join(f'`{m}`' for m in sorted(sql_texts))}). The generator refuses to run when "
        "a column has no rule or a rule names a column the schema lacks, and "
        "`tests/anonymizer/test_privacy_doc.py` fails when this file is out of date.",
        "",
        "To see what happens to one record, field by field: "
        "`python -m anonymizer explain policy.toml RECORD.json --kind KIND`.",
        "",
        "## Operators",
        "",
        "| operator | meaning |",
        "|---|---|",
        *(f"| {op} | {_cell(OPERATOR_MEANING[op])} |" for op in OPERATORS),
        "",
        "## Policy in force",
        "",
        "| setting | value | acts on |",
        "|---|---|---|",
    ]
    for key in POLICY_KEYS:
        targets = sorted(
            {
                f"`{KINDS[r.kind].table}.{c}`"
                for r in RULES
                if key in r.policy_keys
                for c in r.columns
            }
            | {f"`{s.column}` (every table)" for s in STAMPED if key in s.policy_keys}
        )
        acts = RECORD_KEYS.get(key, "")
        acts = "; ".join(x for x in (acts, ", ".join(targets)) if x) or "-"
        lines.append(f"| `{key}` | `{_cell(settings[key])}` | {_cell(acts)} |")
    lines.append("")
    lines += _detectors_section(policy)
    for table in ordered:
        lines += _table_section(table, policy, settings)
    if rollups:
        lines += _rollups_intro(views)
    for table in rollups:
        lines += _rollup_section(table, views[ROLLUPS[table.name].view])
    never = [r for r in RULES if _never_stored(r, policy)]
    lines += [
        "## Never stored under this policy",
        "",
        *(f"- `{KINDS[r.kind].name}`: {_source(r)}: {applied(r, policy).how}" for r in never),
        "- any field no rule names: "
        + (
            'dropped (`records.unknown_fields = "drop"`)'
            if policy.unknown_fields == "drop"
            else 'the record is rejected (`records.unknown_fields = "reject"`)'
        ),
        "",
    ]
    return "\n".join(lines)
