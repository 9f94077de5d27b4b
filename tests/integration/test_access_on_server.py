"""`collector sql` and `collector grants --apply` on the server engine, against the test-only
ClickHouse server over chDB (tests/chserver.py, from the server-sink branch: skipped until it is
merged). The test server runs every statement on chDB, which has no access management: `--apply`
is shown to reach the server (which refuses CREATE ROLE with code 497, as a server would refuse a
user without access management) and to report it as one line, exit 2."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

pytest.importorskip("tests.chserver")

from collector import admin_sql
from collector.cli import main
from collector.config import StorageConfig
from collector.errors import SinkError
from collector.storage import open_sink
from tests.conftest import ADMIN_KEY, AppFactory, auth


async def test_admin_sql_reads_through_the_server_engine(
    start: AppFactory, server_storage: StorageConfig
) -> None:
    client = await start(storage=server_storage)
    r = await client.post("/v1/logs", json=[{"ip": "203.0.113.9", "path": "/a"}], headers=auth())
    assert r.status == 202
    answers = [
        ("SELECT count() AS n FROM access_log", 200, '"n":1'),
        ("DROP TABLE access_log", 400, "only reads"),
        ("SELECT number FROM numbers(100000)", 413, "TOO_MANY_ROWS_OR_BYTES"),
        ("SELECT nope FROM access_log", 400, "UNKNOWN_IDENTIFIER"),
    ]
    for query, status, text in answers:
        r = await client.post(
            "/v1/admin/sql", data=orjson.dumps({"query": query}), headers=auth(ADMIN_KEY)
        )
        assert r.status == status and text in await r.text(), query


def test_the_server_honours_readonly_by_itself(server_storage: StorageConfig) -> None:
    sink = open_sink(server_storage)
    try:
        sink.migrate()
        write = "INSERT INTO policy_audit SELECT * FROM policy_audit"
        with pytest.raises(SinkError, match="READONLY"):
            sink.query(admin_sql.read_only_statement(write, 10, 10**6, 5))
    finally:
        sink.close()


def test_grants_apply_reaches_the_server(
    tmp_path: Path, server_storage: StorageConfig, capsys: pytest.CaptureFixture[str]
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[storage]\nengine = "clickhouse"\nurl = "{server_storage.url}"\n'
        f'database = "{server_storage.database}"\npath = "{tmp_path / "d"}"\n'
    )
    assert main(["grants", "--config", str(config), "--apply"]) == 2
    captured = capsys.readouterr()
    assert "CREATE ROLE IF NOT EXISTS collector_writer;" in captured.out  # printed first
    assert "497" in captured.err and "Traceback" not in captured.err
