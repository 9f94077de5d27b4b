"""The schema checked against the rules: every stored column has a rule in `anonymizer/rules.py`
and every rule a column, so neither can change alone.

The daily rollups are checked against the materialized views that fill them: each rollup column
must be computed from exactly the source columns, and by the operation, its rule names. A
materialized view is the derivation of its `TO` table, never a table of its own. The schema comes
from `anonymizer.ddl`; `anonymizer.privacy_doc` renders only what passed this check.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from anonymizer.ddl import SchemaMismatch, Table, View
from anonymizer.rules import (
    KINDS,
    OTHER_COLUMNS,
    ROLLUPS,
    STAMPED,
    ColumnRule,
    FieldRule,
    Rollup,
    RollupOperation,
    rollup_columns,
    rules_for,
)

# The aggregate function the view must apply, and the type the rollup column must have, for each
# operation but "grouped by" (a GROUP BY key, of a plain type).
_OPERATION_SQL: Mapping[RollupOperation, tuple[tuple[str, ...], str]] = {
    "counted": (("count", "countIf"), "SimpleAggregateFunction(sum,"),
    "summed": (("sum",), "SimpleAggregateFunction(sum,"),
    "sketched (uniqCombined64)": (("uniqCombined64State",), "AggregateFunction(uniqCombined64,"),
    "quantiles": (("quantilesState",), "AggregateFunction(quantiles("),
}
_STRING = re.compile(r"'(?:[^'\\]|\\.)*'")
_NAME = re.compile(
    r"`(?P<bq>[^`]+)`|\"(?P<dq>[^\"]+)\"|(?<![\w.])(?:[A-Za-z_]\w*\.)?(?P<bare>[A-Za-z_]\w*)(?![\w.])"
    r"(?!\s*\()"
)
_FUNCTION = re.compile(r"^\s*(\w+)\s*\(")


def rules_by_column(table: str) -> dict[str, list[FieldRule | ColumnRule]]:
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
        ruled = rules_by_column(table.name)
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
