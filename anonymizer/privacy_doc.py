"""`docs/privacy.md`, generated: every stored column, where it comes from, what the policy does to
it and why it is not personal data.

It is made from the SQL migrations and `anonymizer.rules`, and refuses to be made when the two
disagree (a column with no rule, or a rule for a column the schema lacks), so the document
cannot drift from what is stored. Pure: the caller reads the files and passes their text.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field

from anonymizer.errors import AnonymizerError
from anonymizer.policy import Policy
from anonymizer.rules import (
    KINDS,
    OPERATORS,
    OTHER_COLUMNS,
    POLICY_KEYS,
    RECORD_KEYS,
    RULES,
    STAMPED,
    ColumnRule,
    FieldRule,
    applied,
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


# --- a small parser for our ClickHouse DDL -----------------------------------------------------

_CREATE = re.compile(
    r"^CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?(?P<name>[\w.`\"]+)\s*"
    r"(?:ON\s+CLUSTER\s+\S+\s*)?(?P<rest>.*)$",
    re.S | re.I,
)
_ALTER = re.compile(
    r"^ALTER\s+TABLE\s+(?P<name>[\w.`\"]+)\s+(?:ON\s+CLUSTER\s+\S+\s+)?(?P<rest>.*)$", re.S | re.I
)
_DROP = re.compile(r"^DROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?(?P<name>[\w.`\"]+)", re.I)
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


def parse_schema(sql_texts: Mapping[str, str]) -> dict[str, Table]:
    """The tables the migrations leave behind, applied in file-name order: CREATE TABLE (column
    list, or `AS other`), ALTER TABLE ... ADD / DROP / MODIFY COLUMN, DROP TABLE. Views are not
    tables of their own and are skipped."""
    tables: dict[str, Table] = {}
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
            elif m := _ALTER.match(statement):
                name = _unquote(m["name"])
                if name not in tables:
                    raise SchemaMismatch(f"{migration}: ALTER TABLE {name} before CREATE TABLE")
                _alter(tables[name], m["rest"], migration)
            elif m := _DROP.match(statement):
                tables.pop(_unquote(m["name"]), None)
    return tables


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


def check_schema(tables: Mapping[str, Table]) -> None:
    """Raise `SchemaMismatch` listing every column without a rule and every rule without a
    column, so neither the schema nor the rules can change alone."""
    problems = []
    ruled_tables = {k.table for k in KINDS.values()} | {t for c in OTHER_COLUMNS for t in c.tables}
    for name in sorted(ruled_tables - set(tables)):
        problems.append(f"anonymizer/rules.py has rules for table {name}, which the SQL lacks")
    for table in tables.values():
        if table.name not in ruled_tables:
            problems.append(
                f"{table.migration}: table {table.name} has no rules in anonymizer/rules.py"
            )
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
        title += f" (kind `{kinds[0].name}`, `POST {kinds[0].route}`)"
    lines = [title, ""]
    if table.comment:
        lines += [f"> {table.comment}", ""]
    lines += [_HEADER, "|---|---|---|---|---|---|"]
    ruled = _rules_by_column(table.name)
    for c in table.columns:
        rules = ruled[c.name]
        lines.append(
            "| "
            + " | ".join(
                _cell(x)
                for x in (
                    f"`{c.name}`",
                    f"`{c.type}`",
                    _joined([_source(r) for r in rules]),
                    _joined([_under(r, policy, settings) for r in rules]),
                    _joined([r.rule for r in rules]),
                    _joined([r.why for r in rules]),
                )
            )
            + " |"
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


def _never_stored(rule: FieldRule, policy: Policy) -> bool:
    """No column at all, or a column the policy leaves empty."""
    a = applied(rule, policy)
    return not rule.columns or (a.operator == "dropped" and a.how != rule.how)


def render_privacy_doc(policy: Policy, sql_texts: Mapping[str, str]) -> str:
    """The Markdown document for `policy` and the schema the migrations in `sql_texts` (file
    name -> SQL text) create. Raises `SchemaMismatch` when schema and rules disagree."""
    tables = parse_schema(sql_texts)
    check_schema(tables)
    settings = setting_values(policy)
    record_tables = [k.table for k in KINDS.values()]
    ordered = [tables[t] for t in record_tables] + [
        t for t in tables.values() if t.name not in record_tables
    ]
    lines = [
        f"<!-- Generated by `{REGENERATE}`. Do not edit: regenerate. -->",
        "",
        "# What is stored, and why it is not personal data",
        "",
        f"Every column of every table, under the policy in force (version {policy.version}). "
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
    for table in ordered:
        lines += _table_section(table, policy, settings)
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
