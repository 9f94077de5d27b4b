"""The schema against the rules: every column has a rule and every rule a column; each rollup is
computed by its view from exactly the source columns, and by the operation, its rules name."""

from pathlib import Path

import pytest

from anonymizer.ddl import SchemaMismatch, parse, parse_schema
from anonymizer.rules import (
    KINDS,
    OTHER_COLUMNS,
    RECORD_TABLES,
    ROLLUP_COLUMNS,
    ROLLUP_OPERATIONS,
    ROLLUPS,
    STAMPED,
    rules_for,
)
from anonymizer.schema_check import check_schema

REPO = Path(__file__).resolve().parents[2]


def sql_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted((REPO / "sql").glob("*.sql"))}


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


def test_every_rollup_rule_is_complete() -> None:
    for r in ROLLUPS.values():
        assert r.source in RECORD_TABLES, r.table  # made from anonymized rows only
    for c in ROLLUP_COLUMNS:
        assert c.table in ROLLUPS and c.operation in ROLLUP_OPERATIONS, (c.table, c.column)
        assert c.how and c.why.endswith("."), (c.table, c.column)
        assert c.sources or c.operation == "counted", (c.table, c.column)
    assert len({(c.table, c.column) for c in ROLLUP_COLUMNS}) == len(ROLLUP_COLUMNS)


def _rollup_sql(old: str, new: str) -> dict[str, str]:
    text = sql_texts()["0008_rollups.sql"]
    assert old in text
    return {**sql_texts(), "0008_rollups.sql": text.replace(old, new)}


def _mismatch(sql: dict[str, str]) -> str:
    with pytest.raises(SchemaMismatch) as e:
        check_schema(*parse(sql))
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
