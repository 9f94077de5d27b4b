"""`docs/privacy.md` is generated from `anonymizer/rules.py`, the policy and `sql/`, and cannot
drift from any of them: a column without a rule, or a rule without a column, stops generation."""

from pathlib import Path

import pytest

from anonymizer.policy import parse_policy
from anonymizer.privacy_doc import (
    REGENERATE,
    SchemaMismatch,
    check_schema,
    parse_schema,
    render_privacy_doc,
)
from anonymizer.rules import KINDS, OTHER_COLUMNS, STAMPED, rules_for

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


def test_every_rule_column_is_in_the_schema() -> None:
    tables = parse_schema(sql_texts())
    for kind in KINDS.values():
        columns = {c.name for c in tables[kind.table].columns}
        for rule in rules_for(kind.name):
            assert set(rule.columns) <= columns, rule.label
        assert {s.column for s in STAMPED} <= columns
    for c in OTHER_COLUMNS:
        for t in c.tables:
            assert c.column in {col.name for col in tables[t].columns}


def test_doc_follows_the_policy() -> None:
    strict = parse_policy((REPO / "testdata" / "policies" / "valid_strict.toml").read_text())
    doc = render_privacy_doc(strict, sql_texts())
    assert "`session_id` not listed in `identifiers.fields`" in doc
    assert "`ip.ipv4_prefix = 16`" in doc
    assert "- `access_log`: `session_id`: session_id is not in identifiers.fields" in doc


SCHEMA = """
-- Things, with a comment; and a ";" in it.
CREATE TABLE IF NOT EXISTS db.`things`
(
    -- an inline comment
    id UInt64,
    at DateTime64(3, 'UTC'),
    tags Map(LowCardinality(String), String) DEFAULT map(),
    note String COMMENT 'a, b (c)',
    INDEX idx_note note TYPE bloom_filter GRANULARITY 1
)
ENGINE = MergeTree ORDER BY (id);
CREATE MATERIALIZED VIEW IF NOT EXISTS things_mv TO other AS SELECT id FROM things;
"""
ALTER = """
-- Later columns.
ALTER TABLE things ADD COLUMN IF NOT EXISTS visitor_id String AFTER id,
    ADD COLUMN first_one UInt8 FIRST;
ALTER TABLE things ADD COLUMN IF NOT EXISTS id String;
ALTER TABLE things DROP COLUMN IF EXISTS note;
ALTER TABLE things MODIFY COLUMN at DateTime64(6, 'UTC');
ALTER TABLE things ADD COLUMN last Nullable(Float32) DEFAULT NULL
"""


def test_parse_schema() -> None:
    tables = parse_schema({"0002_alter.sql": ALTER, "0001_things.sql": SCHEMA})
    assert list(tables) == ["things"]
    t = tables["things"]
    assert t.comment == 'Things, with a comment; and a ";" in it.'
    assert [(c.name, c.type, c.migration) for c in t.columns] == [
        ("first_one", "UInt8", "0002_alter.sql"),
        ("id", "UInt64", "0001_things.sql"),
        ("visitor_id", "String", "0002_alter.sql"),
        ("at", "DateTime64(6, 'UTC')", "0002_alter.sql"),
        ("tags", "Map(LowCardinality(String), String)", "0001_things.sql"),
        ("last", "Nullable(Float32)", "0002_alter.sql"),
    ]


def test_alter_before_create_is_an_error() -> None:
    with pytest.raises(SchemaMismatch, match="ALTER TABLE things before CREATE TABLE"):
        parse_schema({"0001.sql": ALTER})


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
