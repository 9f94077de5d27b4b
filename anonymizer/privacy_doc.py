"""`docs/privacy.md`, generated: every stored column, where it comes from, what the policy does to
it and why it is not personal data.

It is made from the SQL migrations (read by `anonymizer.ddl`) and `anonymizer.rules`, and is
refused when the two disagree (`anonymizer.schema_check`: a column with no rule, a rule for a
column the schema lacks, a rollup its view does not compute as its rules say), so the document
cannot drift from what is stored. This module only renders. Pure: the caller reads the files and
passes their text.
"""

from __future__ import annotations

from collections.abc import Mapping

from anonymizer.ddl import Table, View, parse
from anonymizer.detectors import MAX_DECODE_ROUNDS
from anonymizer.operators.registry import describe
from anonymizer.policy import Policy
from anonymizer.rules import (
    KINDS,
    OPERATORS,
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
    rollup_columns,
    rules_for,
    setting_values,
)
from anonymizer.schema_check import check_schema, rules_by_column

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

_HEADER = (
    "| column | type | source | under this policy | governed by | why it is not personal data |"
)


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
    a = describe(rule, policy)
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
    ruled = rules_by_column(table.name)
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
                f"| {_cell(_source(rule))} | {describe(rule, policy).operator} | {columns} |"
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
    a = describe(rule, policy)
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
    tables, views = parse(sql_texts)
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
        *(f"- `{KINDS[r.kind].name}`: {_source(r)}: {describe(r, policy).how}" for r in never),
        "- any field no rule names: "
        + (
            'dropped (`records.unknown_fields = "drop"`)'
            if policy.unknown_fields == "drop"
            else 'the record is rejected (`records.unknown_fields = "reject"`)'
        ),
        "",
    ]
    return "\n".join(lines)
