"""`docs/privacy.md` is generated from `anonymizer/rules.py`, the policy and `sql/`, and cannot
drift from any of them: a column without a rule, or a rule without a column, stops generation."""

from pathlib import Path

import pytest

from anonymizer.ddl import SchemaMismatch, parse_schema, parse_views
from anonymizer.policy import parse_policy
from anonymizer.privacy_doc import REGENERATE, render_privacy_doc
from anonymizer.rules import ROLLUPS, rollup_columns
from anonymizer.schema_check import check_schema, derived_from

REPO = Path(__file__).resolve().parents[2]
POLICY = parse_policy((REPO / "policy.toml").read_text())
DOC = REPO / "docs" / "privacy.md"


def sql_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((REPO / "sql").glob("*.sql"))}


def test_checked_in_doc_is_up_to_date() -> None:
    assert render_privacy_doc(POLICY, sql_texts()) == DOC.read_text(), (
        "docs/privacy.md is out of date with policy.toml, sql/ or anonymizer/rules.py; "
        f"regenerate it with:\n  cd {REPO} && .venv/bin/{REGENERATE}"
    )


def test_every_column_of_every_table_is_documented() -> None:
    doc = render_privacy_doc(POLICY, sql_texts())
    for table in parse_schema(sql_texts()).values():
        section = doc.split(f"## `{table.name}`", 1)[1].split("\n## ", 1)[0]
        for column in table.columns:
            assert f"| `{column.name}` | `{column.type}` |" in section, (table.name, column.name)


def test_doc_follows_the_policy() -> None:
    strict = parse_policy((REPO / "testdata" / "policies" / "valid_strict.toml").read_text())
    doc = render_privacy_doc(strict, sql_texts())
    assert "`session_id` not listed in `identifiers.fields`" in doc
    assert "`ip.ipv4_prefix = 16`" in doc
    assert "- `access_log`: `session_id`: session_id is not in identifiers.fields" in doc


def test_a_column_without_a_rule_stops_the_doc() -> None:
    sql = {**sql_texts(), "0099_email.sql": "ALTER TABLE access_log ADD COLUMN email String;"}
    with pytest.raises(SchemaMismatch) as e:
        render_privacy_doc(POLICY, sql)
    message = "0099_email.sql: column access_log.email has no rule in anonymizer/rules.py"
    assert message in str(e.value)


def test_a_rule_without_a_column_stops_the_doc() -> None:
    sql = {**sql_texts(), "0099_drop.sql": "ALTER TABLE mail_scans DROP COLUMN routing_zip;"}
    with pytest.raises(SchemaMismatch) as e:
        render_privacy_doc(POLICY, sql)
    message = "anonymizer/rules.py names column mail_scans.routing_zip, which the SQL lacks"
    assert message in str(e.value)


def test_a_table_without_rules_stops_the_doc() -> None:
    sql = {**sql_texts(), "0099_raw.sql": "CREATE TABLE raw_hits (ip String) ENGINE = Log;"}
    with pytest.raises(SchemaMismatch, match="table raw_hits has no rules"):
        render_privacy_doc(POLICY, sql)
    tables = parse_schema({"0001.sql": "CREATE TABLE device_info (time DateTime) ENGINE = Log;"})
    with pytest.raises(SchemaMismatch, match="rules for table access_log, which the SQL lacks"):
        check_schema(tables)


# --- rollups: derived tables, checked against the views that fill them -------------------------


def test_rollup_section_lists_every_rollup_column_and_its_source() -> None:
    doc = render_privacy_doc(POLICY, sql_texts())
    tables = parse_schema(sql_texts())
    views = parse_views(sql_texts())
    rollups = doc.split("## Daily rollups (derived tables)", 1)[1]
    for rollup in ROLLUPS.values():
        heading = (
            f"## `{rollup.table}` (rollup of `{rollup.source}`, filled by view `{rollup.view}`)"
        )
        section = rollups.split(heading, 1)[1].split("\n## ", 1)[0]
        rows = {line.split(" | ", 1)[0]: line for line in section.splitlines() if line[:3] == "| `"}
        columns = [c.name for c in tables[rollup.table].columns]
        assert sorted(r.column for r in rollup_columns(rollup.table)) == sorted(columns)
        assert list(rows) == [f"| `{c}`" for c in columns]
        for rule in rollup_columns(rollup.table):
            row = rows[f"| `{rule.column}`"]
            sources = [f"`{rollup.source}.{c}`" for c in rule.sources]
            assert all(s in row for s in sources) or not rule.sources, row
            assert sources or f"every row of `{rollup.source}`" in row, row
            assert f"**{rule.operation}**" in row and rule.why in row, row
            # the source named is the one the view really reads
            found = derived_from(views[rollup.view], rule.column, tables[rollup.source])
            assert set(found) == set(rule.sources), (rollup.table, rule.column, found)
    visitors = rollups.split("| `visitors` |", 1)[1].split("\n", 1)[0]
    assert "`access_log.visitor_id`" in visitors and "sketched (uniqCombined64)" in visitors
    zip3 = rollups.split("| `zip3` |", 1)[1].split("\n", 1)[0]
    assert "`mail_scans.routing_zip`" in zip3 and "`left(routing_zip, 3)`" in zip3


def test_views_are_derivations_not_tables() -> None:
    tables, views = parse_schema(sql_texts()), parse_views(sql_texts())
    assert {v.name for v in views.values()} == {r.view for r in ROLLUPS.values()}
    assert not set(views) & set(tables)
    doc = render_privacy_doc(POLICY, sql_texts())
    for view in views:
        assert f"## `{view}`" not in doc
