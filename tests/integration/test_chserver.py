"""The test-only ClickHouse server speaks what clickhouse-connect sends (sync and async clients:
command, Native insert and query, bound parameters, raw LZ4 insert with a dedup token, errors with
their code and name), so tests of the server sink test the sink, not a stand-in's gaps."""

from __future__ import annotations

import datetime as dt

import clickhouse_connect
import lz4.frame
import pytest
from clickhouse_connect.driver.exceptions import DatabaseError

from tests.chserver import ChServer


def test_the_sync_client_round_trip(chserver: ChServer) -> None:
    c = clickhouse_connect.get_client(host="127.0.0.1", port=chserver.port, compress="lz4")
    try:
        c.command("CREATE DATABASE IF NOT EXISTS chs")
        c.database = "chs"
        c.command(
            "CREATE TABLE IF NOT EXISTS t (a UInt32, s String, d DateTime64(3, 'UTC')) "
            "ENGINE = MergeTree ORDER BY a SETTINGS non_replicated_deduplication_window = 100"
        )
        c.command("TRUNCATE TABLE t")
        when = dt.datetime(2026, 11, 26, 1, 2, 3)
        c.insert("t", [[1, "x\ty", when], [2, "it's", when]], column_names=["a", "s", "d"])
        got = c.query("SELECT a, s, d FROM t WHERE s IN {v:Array(String)} ORDER BY a",
                      parameters={"v": ["x\ty", "it's"]}).result_rows  # fmt: skip
        assert got == [(1, "x\ty", when), (2, "it's", when)]
        block = lz4.frame.compress(b'{"a": 3, "s": "z", "d": "2026-11-26 00:00:00"}\n')
        for _ in range(2):
            c.raw_insert("t", None, block, settings={"insert_deduplication_token": "k1"},
                         fmt="JSONEachRow", compression="lz4")  # fmt: skip
        assert c.command("SELECT count() FROM t") == 3  # the repeat was deduplicated
        with pytest.raises(DatabaseError) as e:
            c.query("SELECT * FROM no_such_table")
        assert e.value.code == 60 and e.value.name == "UNKNOWN_TABLE"
    finally:
        c.close()


async def test_the_async_client_round_trip(chserver: ChServer) -> None:
    c = await clickhouse_connect.get_async_client(host="127.0.0.1", port=chserver.port)
    try:
        await c.command("CREATE DATABASE IF NOT EXISTS chs_async")
        await c.command("CREATE TABLE IF NOT EXISTS chs_async.t (a UInt32) ENGINE = Memory")
        await c.insert("chs_async.t", [[7], [8]], column_names=["a"])
        r = await c.query(
            "SELECT sum(a) FROM chs_async.t WHERE a > {n:UInt32}", parameters={"n": 1}
        )
        assert r.result_rows == [(15,)]
    finally:
        await c.close()
