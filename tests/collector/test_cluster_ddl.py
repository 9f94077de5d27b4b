"""Cluster DDL generated from sql/: every statement parses (chDB's `formatQuery`, on the test
server), the local tables are exactly the sql/ tables with Replicated engines, every sql/ name is
a Distributed table over its local one with a deterministic sharding key, and the views read and
write local tables. Running it needs a cluster (ZooKeeper, remote_servers), so it is parsed here,
not run; the single-server script is also run, and then `migrate` finds nothing to do."""

from __future__ import annotations

import re
import subprocess
import sys
from typing import Any

import pytest

from anonymizer.ddl import parse
from anonymizer.sql_text import split_statements
from collector.cluster_ddl import ClusterDdl, sharding_key
from collector.config import StorageConfig
from collector.errors import MigrationError
from collector.migrate import CREATE_MIGRATIONS_TABLE, SQL_DIR, plan, script
from collector.sink_clickhouse import ClickHouseSink
from tests.chserver import ChServer
from tests.conftest import REPO

CLUSTER = "prod"


def sql_texts() -> dict[str, str]:
    return {p.name: p.read_text() for p in sorted(SQL_DIR.glob("*.sql"))}


def format_query(server: ChServer, statement: str) -> str:
    rows: list[dict[str, Any]] = server.query(
        "SELECT formatQuery({q:String}) AS f", params={"q": statement}
    )
    return str(rows[0]["f"])


def cluster_script() -> str:
    out = subprocess.run(
        [sys.executable, "-m", "collector", "migrate", "--print", "--cluster", CLUSTER],
        cwd=REPO, capture_output=True, text=True, check=True,
    )  # fmt: skip
    return out.stdout


def test_every_printed_cluster_statement_parses(chserver: ChServer) -> None:
    text = cluster_script()
    statements = split_statements(text)
    assert len(statements) > 30
    code = [line for line in text.splitlines() if line.strip() and not line.startswith("--")]
    assert code[-1].endswith(";")  # only SQL on stdout, each statement `;`-terminated
    for statement in statements:
        formatted = format_query(chserver, statement)
        if not statement.startswith(("USE ", "INSERT ")):
            assert f"ON CLUSTER {CLUSTER}" in formatted, statement[:80]


def test_a_syntax_error_is_caught_by_the_same_check(chserver: ChServer) -> None:
    with pytest.raises(AssertionError, match="Code: 62"):
        format_query(chserver, "CREATE TABLE t ON CLUSTER prod (a UInt8 ENGINE = MergeTree")


def test_local_tables_are_the_sql_tables_replicated_under_distributed_ones() -> None:
    plain, _ = parse(sql_texts())
    create, migrations = plan(SQL_DIR, CLUSTER)
    generated = {m.name: ";\n".join(m.statements) + ";" for m in migrations}
    tables, views = parse(generated)
    locals_ = {n.removesuffix("_local"): t for n, t in tables.items() if n.endswith("_local")}
    assert set(locals_) == set(plain)
    for name, table in plain.items():
        # same columns, same types, in the same order: the two cannot drift
        assert [(c.name, c.type) for c in locals_[name].columns] == [
            (c.name, c.type) for c in table.columns
        ], name
    statements = [s for m in migrations for s in m.statements]
    for name in plain:
        local = next(
            s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {name}_local ")
        )
        assert re.search(
            rf"ENGINE = Replicated\w*MergeTree\('/clickhouse/tables/\{{shard\}}/\{{database\}}/{name}_local', '\{{replica\}}'",
            local,
        ), local
        dist = next(s for s in statements if s.startswith(f"CREATE TABLE IF NOT EXISTS {name} "))
        assert f"AS {name}_local" in dist
        assert (
            f"Distributed('{CLUSTER}', currentDatabase(), {name}_local, cityHash64(tenant_id, "
            in dist
        )
    _, plain_views = parse(sql_texts())
    assert set(views) == set(plain_views)
    for name, view in views.items():
        assert view.target == plain_views[name].target + "_local"
        assert view.source == plain_views[name].source + "_local"
        assert view.columns == plain_views[name].columns
    assert "schema_migrations_local" in create[0] and "cityHash64(version)" in create[1]


def test_column_changes_go_to_both_tables_other_alters_to_the_local_one() -> None:
    ddl = ClusterDdl(CLUSTER)
    ddl.translate(CREATE_MIGRATIONS_TABLE, "x")
    both = ddl.translate("ALTER TABLE schema_migrations ADD COLUMN IF NOT EXISTS note String", "x")
    assert both == [
        "ALTER TABLE schema_migrations_local ON CLUSTER prod ADD COLUMN IF NOT EXISTS note String",
        "ALTER TABLE schema_migrations ON CLUSTER prod ADD COLUMN IF NOT EXISTS note String",
    ]
    ttl = ddl.translate("ALTER TABLE schema_migrations MODIFY TTL toDateTime(applied_at)", "x")
    assert ttl == [
        "ALTER TABLE schema_migrations_local ON CLUSTER prod MODIFY TTL toDateTime(applied_at)"
    ]
    assert ddl.translate("DROP TABLE IF EXISTS schema_migrations", "x") == [
        "DROP TABLE IF EXISTS schema_migrations ON CLUSTER prod SYNC",
        "DROP TABLE IF EXISTS schema_migrations_local ON CLUSTER prod SYNC",
    ]


@pytest.mark.parametrize(
    "statement",
    [
        "CREATE TABLE t (a UInt8) ENGINE = Memory",
        "CREATE TABLE t AS other",
        "CREATE VIEW v AS SELECT 1",
        "INSERT INTO t VALUES (1)",
        "ALTER TABLE unknown ADD COLUMN a UInt8",
        "CREATE MATERIALIZED VIEW v TO nowhere AS SELECT 1 FROM t",
    ],
)
def test_what_cannot_be_translated_is_refused_never_passed_through(statement: str) -> None:
    with pytest.raises(MigrationError):
        ClusterDdl(CLUSTER).translate(statement, "0099_x.sql")


def test_the_sharding_key_is_deterministic_in_the_row() -> None:
    assert sharding_key(["tenant_id", "time", "path"]) == "cityHash64(tenant_id, time)"
    assert sharding_key(["tenant_id", "day", "requests"]) == "cityHash64(tenant_id, day)"
    assert sharding_key(["version", "name"]) == "cityHash64(version)"
    for key in (sharding_key(["tenant_id", "time"]), sharding_key(["version"])):
        assert "rand" not in key


def test_the_single_server_script_builds_what_migrate_builds(
    chserver: ChServer, server_storage: StorageConfig
) -> None:
    """Run by hand with any client, the printed script leaves a schema `migrate` agrees with."""
    db = server_storage.database
    for statement in split_statements(script(db)):
        if not statement.startswith("USE "):
            chserver.query(
                statement, database=db if not statement.startswith("CREATE DATABASE") else ""
            )
    sink = ClickHouseSink(server_storage)
    try:
        assert sink.migrate() == []
        n = sink.query("SELECT count() AS n FROM system.tables WHERE database = currentDatabase()")
        assert n[0]["n"] >= len(parse(sql_texts())[0]) + 1
    finally:
        sink.close()
