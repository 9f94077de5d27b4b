"""`docs/privacy.md` is generated from `anonymizer/rules.py`, the policy and `sql/`, and cannot
drift from any of them: a column without a rule, or a rule without a column, stops generation."""

from pathlib import Path

import pytest

from anonymizer.policy import parse_policy
from anonymizer.privacy_doc import (
    REGENERATE,
    SchemaMismatch,
    check_schema,
    derived_from,
    parse_schema,
    parse_views,
    render_privacy_doc,
)
from anonymizer.rules import (
    KINDS,
    OTHER_COLUMNS,
    RECORD_TABLES,
    ROLLUP_COLUMNS,
    ROLLUP_OPERATIONS,
    ROLLUPS,
    STAMPED,
    rollup_columns,
    rules_for,
)

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


# --- rollups: derived tables, checked against the views that fill them -------------------------


def test_every_rollup_rule_is_complete() -> None:
    for r in ROLLUPS.values():
        assert r.source in RECORD_TABLES, r.table  # made from anonymized rows only
    for c in ROLLUP_COLUMNS:
        assert c.table in ROLLUPS and c.operation in ROLLUP_OPERATIONS, (c.table, c.column)
        assert c.how and c.why.endswith("."), (c.table, c.column)
        assert c.sources or c.operation == "counted", (c.table, c.column)
    assert len({(c.table, c.column) for c in ROLLUP_COLUMNS}) == len(ROLLUP_COLUMNS)


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


def test_parse_views() -> None:
    views = parse_views({"0001_things.sql": SCHEMA})
    assert list(views) == ["things_mv"]
    v = views["things_mv"]
    assert (v.target, v.source, v.group_by) == ("other", "things", ())
    assert dict(v.columns) == {"id": "id"}
    modify = """ALTER TABLE things_mv MODIFY QUERY
        SELECT toDate(at) AS day, count() AS n, 'a, b' AS `tag` FROM db.things GROUP BY day;"""
    v = parse_views({"0001_things.sql": SCHEMA, "0002.sql": modify})["things_mv"]
    assert (v.target, v.source, v.group_by) == ("other", "things", ("day",))
    assert v.migration == "0002.sql"
    assert dict(v.columns) == {"day": "toDate(at)", "n": "count()", "tag": "'a, b'"}
    assert parse_views({"0001_things.sql": SCHEMA, "0002.sql": "DROP VIEW things_mv"}) == {}
    join = "CREATE MATERIALIZED VIEW j TO t AS SELECT a FROM x JOIN y USING (a)"
    assert parse_views({"1.sql": join})["j"].source == ""
    plain = "CREATE VIEW p AS SELECT a FROM x"  # stores nothing: neither a table nor a derivation
    assert parse_views({"1.sql": plain}) == {} and parse_schema({"1.sql": plain}) == {}


def _rollup_sql(old: str, new: str) -> dict[str, str]:
    text = sql_texts()["0008_rollups.sql"]
    assert old in text
    return {**sql_texts(), "0008_rollups.sql": text.replace(old, new)}


def _mismatch(sql: dict[str, str]) -> str:
    with pytest.raises(SchemaMismatch) as e:
        render_privacy_doc(POLICY, sql)
    return str(e.value)


def test_a_rollup_column_without_a_rule_stops_the_doc() -> None:
    extra = "ALTER TABLE access_daily ADD COLUMN referrer_host LowCardinality(String);"
    message = _mismatch({**sql_texts(), "0099_referrer.sql": extra})
    assert "0099_referrer.sql: column access_daily.referrer_host has no rule" in message


def test_a_rollup_rule_without_a_column_stops_the_doc() -> None:
    message = _mismatch(
        {**sql_texts(), "0099_zip3.sql": "ALTER TABLE mail_daily DROP COLUMN zip3;"}
    )
    assert "anonymizer/rules.py names column mail_daily.zip3, which the SQL lacks" in message


def test_a_rollup_computed_from_another_column_stops_the_doc() -> None:
    message = _mismatch(
        _rollup_sql("left(routing_zip, 3) AS zip3", "left(facility_zip, 3) AS zip3")
    )
    assert (
        "0008_rollups.sql: view mail_daily_mv computes mail_daily.zip3 from facility_zip of "
        "mail_scans; anonymizer/rules.py says routing_zip"
    ) in message


def test_a_rollup_that_stores_the_ids_stops_the_doc() -> None:
    sql = _rollup_sql(
        "uniqCombined64State(nullIf(visitor_id, '')) AS visitors",
        "groupUniqArrayState(nullIf(visitor_id, '')) AS visitors",
    )
    message = _mismatch(sql)
    assert (
        "view access_daily_mv computes access_daily.visitors as "
        "groupUniqArrayState(nullIf(visitor_id, '')); anonymizer/rules.py says it is sketched "
        "(uniqCombined64)"
    ) in message
    sql = _rollup_sql(
        "visitors AggregateFunction(uniqCombined64, Nullable(String))",
        "visitors AggregateFunction(groupUniqArray, Nullable(String))",
    )
    assert "column access_daily.visitors is AggregateFunction(groupUniqArray" in _mismatch(sql)


def test_a_rollup_group_key_must_be_grouped_by() -> None:
    sql = _rollup_sql(
        "GROUP BY tenant_id, day, mailer_id, zip3, event, retention_days",
        "GROUP BY tenant_id, day, mailer_id, event, retention_days",
    )
    assert "computes mail_daily.zip3 as left(routing_zip, 3)" in _mismatch(sql)


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("CREATE MATERIALIZED VIEW copy_mv TO access_log AS SELECT * FROM access_log",
         "0099.sql: materialized view copy_mv writes to access_log, which is not a rollup"),
        ("CREATE MATERIALIZED VIEW hits ENGINE = MergeTree ORDER BY tuple() AS SELECT ip_prefix "
         "FROM access_log", "0099.sql: materialized view hits keeps rows in a table of its own"),
        ("CREATE MATERIALIZED VIEW more_mv TO events_daily AS SELECT tenant_id FROM usage_events",
         "materialized view more_mv writes to events_daily, which anonymizer/rules.py says only "
         "events_daily_mv fills"),
        ("DROP VIEW events_daily_mv",
         "anonymizer/rules.py says view events_daily_mv fills rollup events_daily, which the SQL "
         "lacks"),
        ("ALTER TABLE mail_daily_mv MODIFY QUERY SELECT tenant_id FROM mail_scans AS m JOIN x "
         "USING (tenant_id)",
         "0099.sql: view mail_daily_mv reads something other than one table (a join, subquery, "
         "union or CTE); anonymizer/rules.py says rollup mail_daily is made from mail_scans"),
    ],
)  # fmt: skip
def test_a_view_the_rules_do_not_describe_stops_the_doc(sql: str, message: str) -> None:
    assert message in _mismatch({**sql_texts(), "0099.sql": sql})
