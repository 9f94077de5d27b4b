"""Statements that change stored rows, rendered for one server and for a cluster
(collector/statements.py).

One server / embedded: byte-for-byte the statements of before. A cluster: every rendered
statement parses (chDB's `formatQuery`, on the test server); deletes go to `<t>_local ON
CLUSTER`; a rebuild reads the Distributed source. A real cluster (ZooKeeper, remote_servers)
cannot run here, so the cluster path is also run on a ONE-NODE EMULATION on the test server: the
cluster DDL collector.cluster_ddl generates, with `ON CLUSTER` removed, the Replicated engines
made plain and each Distributed table made a pass-through `Buffer` over its local table (which,
like a Distributed table, takes SELECT and INSERT but refuses DELETE, code 36). That runs the real
migrate / backfill / rebuild / delete path with the cluster's table names; it cannot show rows on
two shards."""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from dataclasses import replace
from typing import Any

import orjson
import pytest

from collector import rollups
from collector.config import StorageConfig
from collector.errors import SinkError
from collector.scan_pii import scan
from collector.sink_clickhouse import ClickHouseSink
from collector.statements import Statements
from collector.subjects import SUBJECT_COLUMNS, _where
from tests.chserver import ChServer
from tests.collector.test_cluster_ddl import CLUSTER, format_query

ONE = Statements("")
CL = Statements(CLUSTER)
WHERE = "tenant_id = {t:String} AND day IN {days:Array(Date)}"


def test_on_one_server_the_statements_are_those_of_before() -> None:
    for cols in SUBJECT_COLUMNS.values():
        for col in cols:
            assert ONE.delete(col.table, _where(col)) == (
                f"DELETE FROM `{col.table}` WHERE {_where(col)}"
            )
    for r in rollups.ROLLUPS:
        select = f"SELECT tenant_id FROM db.{r.source}_local GROUP BY tenant_id"
        assert ONE.view_select(select, r.source) == select  # untouched, even a `_local` name
        assert ONE.delete(r.table, WHERE) == f"DELETE FROM `{r.table}` WHERE {WHERE}"
        assert ONE.rebuild_insert(r.table, select, WHERE) == (
            f"INSERT INTO `{r.table}` SELECT * FROM ({select}) WHERE {WHERE} "
            "SETTINGS insert_deduplicate = 0"
        )
        assert ONE.rebuild_insert(r.table, select) == (
            f"INSERT INTO `{r.table}` SELECT * FROM ({select}) SETTINGS insert_deduplicate = 0"
        )


def test_on_a_cluster_deletes_go_to_every_shards_local_table() -> None:
    sql = CL.delete("access_log", "tenant_id = {t:String}")
    assert sql == (
        "DELETE FROM `access_log_local` ON CLUSTER `prod` WHERE tenant_id = {t:String} "
        "SETTINGS lightweight_deletes_sync = 2"
    )
    insert = CL.rebuild_insert("access_daily", "SELECT 1", WHERE)
    assert insert.startswith("INSERT INTO `access_daily` SELECT")  # the Distributed rollup
    assert insert.endswith("SETTINGS insert_deduplicate = 0, distributed_foreground_insert = 1")


@pytest.mark.parametrize(
    "as_select",
    [
        "SELECT tenant_id, count() AS n FROM db.access_log_local GROUP BY tenant_id",
        "SELECT tenant_id, count() AS n FROM `db`.`access_log_local` GROUP BY tenant_id",
        "SELECT tenant_id, count() AS n FROM access_log_local GROUP BY tenant_id",
    ],
)
def test_a_rebuild_reads_the_distributed_source(as_select: str) -> None:
    got = CL.view_select(as_select, "access_log")
    assert "_local" not in got
    assert re.search(r"FROM (`?db`?\.)?`access_log` GROUP BY", got), got


@pytest.mark.parametrize(
    "as_select",
    [
        "SELECT 1 FROM db.access_log",  # not the local table: not what a cluster view reads
        "SELECT 1 FROM db.access_log_local_x",
        "SELECT 1 FROM db.access_log_local AS a JOIN db.access_log_local AS b USING tenant_id",
    ],
)
def test_a_view_select_that_is_not_one_local_read_is_refused(as_select: str) -> None:
    with pytest.raises(SinkError):
        CL.view_select(as_select, "access_log")


def test_names_are_checked() -> None:
    with pytest.raises(SinkError):
        Statements("prod; DROP")
    with pytest.raises(SinkError):
        CL.delete("t`x", "1")


# --- the one-node emulation of a cluster (see the module docstring) ---------------------------

_REPLICATED = re.compile(r"Replicated(\w*MergeTree)\('[^']*', '\{replica\}'(?:, )?")
_DISTRIBUTED = re.compile(r"Distributed\('\w+', currentDatabase\(\), (\w+), [^\n]*\)$", re.M)


def one_node(sql: str) -> str:
    sql = sql.replace(f" ON CLUSTER `{CLUSTER}`", "").replace(f" ON CLUSTER {CLUSTER}", "")
    sql = _REPLICATED.sub(r"\1(", sql)
    return _DISTRIBUTED.sub(r"Buffer(currentDatabase(), \1, 1, 0, 0, 0, 0, 0, 0)", sql)


class OneNodeCluster(ClickHouseSink):
    """The server sink with `cluster` set, every statement it sends made runnable on one node."""

    def _call(self, fn: str, *args: Any, **kwargs: Any) -> Any:
        if fn in ("command", "raw_query") and args and isinstance(args[0], str):
            args = (one_node(args[0]), *args[1:])
        return super()._call(fn, *args, **kwargs)


def test_the_emulation_translates_the_cluster_ddl() -> None:
    assert (
        one_node(
            "CREATE TABLE t_local ON CLUSTER prod\n(a UInt8)\nENGINE = ReplicatedMergeTree("
            "'/clickhouse/tables/{shard}/{database}/t_local', '{replica}')\nORDER BY a"
        )
        == "CREATE TABLE t_local\n(a UInt8)\nENGINE = MergeTree()\nORDER BY a"
    )
    assert one_node(
        "CREATE TABLE t ON CLUSTER prod AS t_local\n"
        "ENGINE = Distributed('prod', currentDatabase(), t_local, cityHash64(tenant_id, time))"
    ) == (
        "CREATE TABLE t AS t_local\nENGINE = Buffer(currentDatabase(), t_local, 1, 0, 0, 0, 0, 0, 0)"
    )


def _row(n: int) -> bytes:
    now = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    return orjson.dumps(
        {"tenant_id": "acme", "time": f"{now}.000", "path": f"/p/{n}", "status": 200,
         "retention_days": 30}
    )  # fmt: skip


@pytest.fixture
def cluster_sink(server_storage: StorageConfig) -> Iterator[OneNodeCluster]:
    s = OneNodeCluster(replace(server_storage, cluster=CLUSTER))
    yield s
    s.close()


def _requests(sink: ClickHouseSink, table: str) -> int:
    return int(
        sink.query(f"SELECT sum(requests) AS n FROM {table} WHERE tenant_id = 'acme'")[0]["n"]
    )


def test_on_the_emulated_cluster_delete_rebuild_and_backfill_run(
    cluster_sink: OneNodeCluster, chserver: ChServer
) -> None:
    sink = cluster_sink
    assert rollups.migrate(sink)  # the cluster DDL, then a backfill from the Distributed source
    names = {
        r["name"]
        for r in sink.query("SELECT name FROM system.tables WHERE database = currentDatabase()")
    }
    assert {"access_log", "access_log_local", "access_daily", "access_daily_local"} <= names
    sink.insert("access_log", b"\n".join(_row(i) for i in range(4)), "c1")
    assert _requests(sink, "access_daily") == 4 == _requests(sink, "access_hourly")

    # a Distributed (here: pass-through) table refuses a DELETE: why it goes to the local table
    with pytest.raises(SinkError, match="36"):
        sink.query("DELETE FROM access_log WHERE path = '/p/0'")
    delete = CL.delete("access_log", "path = {p:String}")
    assert format_query(chserver, delete).startswith("DELETE FROM access_log_local ON CLUSTER prod")
    sink.query(delete, {"p": "/p/0"})
    assert sink.query("SELECT count() AS n FROM access_log") == [{"n": 3}]
    assert _requests(sink, "access_daily") == 4  # the rollups still count it until rebuilt

    day = time.strftime("%Y-%m-%d", time.gmtime())
    rollups.rebuild_days(sink, "access_log", "acme", [day])
    assert _requests(sink, "access_daily") == 3 == _requests(sink, "access_hourly")

    # a backfill (the rollups migration on an existing cluster) reads the Distributed source.
    # (One more source row goes first: the emulation's Buffer drops the query's
    # `insert_deduplicate = 0` on its way to the local table, so a block identical to the
    # rebuild's would be dropped here; a Distributed insert sends the settings to the shards.)
    sink.query(delete, {"p": "/p/1"})
    sink.query(CL.delete("access_daily", "1 = 1"))
    assert sink.query("SELECT count() AS n FROM access_daily") == [{"n": 0}]
    rollups.backfill(sink, {"access_daily"})
    assert _requests(sink, "access_daily") == 2


def test_every_statement_a_cluster_rebuild_renders_parses(
    cluster_sink: OneNodeCluster, chserver: ChServer
) -> None:
    rollups.migrate(cluster_sink)
    rendered: list[str] = []
    for cols in SUBJECT_COLUMNS.values():
        rendered += [CL.delete(c.table, _where(c)) for c in cols]
    for r in rollups.ROLLUPS:
        select = rollups._view_select(cluster_sink, r)  # the view's own, made to read all shards
        assert "_local" not in select, r.table
        rendered += [CL.delete(r.table, WHERE), CL.rebuild_insert(r.table, select, WHERE)]
        rendered.append(CL.rebuild_insert(r.table, select))
    for statement in rendered:
        formatted = format_query(chserver, statement)
        if statement.startswith("DELETE"):
            assert re.match(r"DELETE FROM \w+_local ON CLUSTER prod WHERE", formatted), formatted
            assert "lightweight_deletes_sync = 2" in formatted
        else:
            assert "distributed_foreground_insert = 1" in formatted


def test_a_pii_scan_on_a_cluster_reads_the_distributed_tables_only(
    cluster_sink: OneNodeCluster,
) -> None:
    assert ONE.shown_tables() == ""
    rollups.migrate(cluster_sink)
    cluster_sink.insert("access_log", _row(1), "s1")
    findings, scanned = scan(cluster_sink, ["/p/1"])
    assert scanned > 0
    assert {(f.table, f.column) for f in findings if f.check == "sample"} == {
        ("access_log", "path")
    }  # not access_log_local too: the same rows twice
