"""The DDL reader: the tables and materialized views the migrations leave behind, in file-name
order, with the migration that made each column."""

import pytest

from anonymizer.ddl import SchemaMismatch, parse_schema, parse_views

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
