"""`POST /v1/admin/sql` on the real app: admin scope only, reads only (checked, then run with the
engine's readonly = 1), bounded rows, errors that never quote the statement or a value."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from collector import admin_sql
from collector.appkeys import SINK
from collector.config import ServerConfig
from collector.errors import SinkError
from tests.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEY,
    OTHER_KEY,
    PRIVACY_KEY,
    AppFactory,
    auth,
)

URL = "/v1/admin/sql"


async def ask(client: Any, query: str, key: str = ADMIN_KEY) -> tuple[int, dict[str, Any]]:
    r = await client.post(URL, data=orjson.dumps({"query": query}), headers=auth(key))
    return r.status, await r.json()


async def test_an_admin_key_reads_every_tenant(start: AppFactory) -> None:
    client = await start()
    for key in (API_KEY, OTHER_KEY):
        r = await client.post(
            "/v1/logs", json=[{"ip": "203.0.113.9", "path": "/a"}], headers=auth(key)
        )
        assert r.status == 202
    status, body = await ask(
        client,
        "SELECT tenant_id, count() AS n FROM access_log GROUP BY tenant_id ORDER BY tenant_id",
    )
    assert status == 200 and body["rows"] == [
        {"tenant_id": "acme", "n": 1},
        {"tenant_id": "globex", "n": 1},
    ]
    status, body = await ask(client, "SHOW TABLES")
    assert status == 200 and {"name": "access_log"} in body["rows"]


@pytest.mark.parametrize("key", [API_KEY, ANALYST_KEY, PRIVACY_KEY])
async def test_other_scopes_are_forbidden(start: AppFactory, key: str) -> None:
    client = await start()
    status, body = await ask(client, "SELECT 1", key)
    assert status == 403 and body["error"] == "forbidden"


async def test_writes_are_refused_and_change_nothing(start: AppFactory) -> None:
    client = await start()
    for query in (
        "INSERT INTO policy_audit SELECT * FROM policy_audit",
        "SELECT 1; DROP TABLE access_log",
        "SELECT file('/etc/hostname')",
        "SELECT 1 INTO OUTFILE 'x.csv'",
        "SELECT 1 SETTINGS readonly = 0",
    ):
        status, body = await ask(client, query)
        assert status == 400 and body["error"] == "read only", query
    status, body = await ask(
        client, "SELECT count() AS n FROM system.tables WHERE name = 'access_log'"
    )
    assert body["rows"] == [{"n": 1}]


async def test_the_engine_enforces_read_only_by_itself(start: AppFactory) -> None:
    """Layer 2 alone: a write that the statement check is made to let through is refused by the
    engine's readonly = 1 (chDB honours it)."""
    client = await start()
    sink = client.app[SINK]
    statement = admin_sql.read_only_statement(
        "INSERT INTO policy_audit SELECT * FROM policy_audit", 10, 10**6, 5
    )
    with pytest.raises(SinkError, match="READONLY"):
        sink.query(statement)


async def test_results_are_bounded_and_errors_quote_nothing(start: AppFactory) -> None:
    client = await start(server=replace(ServerConfig(), admin_sql_max_rows=100))
    status, body = await ask(client, "SELECT number FROM numbers(1000)")
    assert status == 413 and "TOO_MANY_ROWS_OR_BYTES" in body["detail"]
    status, body = await ask(client, "SELECT number FROM numbers(1000) LIMIT 100")
    assert status == 200 and body["count"] == 100
    status, body = await ask(client, "SELECT secret_value_xyz FROM access_log")
    assert status == 400 and body["error"] == "query failed"
    assert "UNKNOWN_IDENTIFIER" in body["detail"] and "secret_value_xyz" not in body["detail"]


async def test_a_bad_body_is_a_400(start: AppFactory) -> None:
    client = await start()
    for data in (b"nope", b"[]", b'{"query": 1}', b'{"query": "SELECT 1", "x": 1}'):
        r = await client.post(URL, data=data, headers=auth(ADMIN_KEY))
        assert r.status == 400 and (await r.json())["error"] == "bad request"


async def test_answers_match_the_openapi_document(start: AppFactory) -> None:
    from tests.integration.test_openapi import check

    client = await start(server=replace(ServerConfig(), admin_sql_max_rows=5))
    bodies = [
        ({"query": "SELECT 1 AS one"}, ADMIN_KEY, 200),
        ({"query": "DROP TABLE access_log"}, ADMIN_KEY, 400),
        ({"query": "SELECT number FROM numbers(10)"}, ADMIN_KEY, 413),
        ({"query": "SELECT 1"}, ANALYST_KEY, 403),
        ({"query": "SELECT 1"}, "tck_unknown", 401),
    ]
    for body, key, status in bodies:
        r = await client.post(URL, data=orjson.dumps(body), headers=auth(key))
        assert r.status == status
        await check(r, URL)


async def test_a_statement_over_64_kib_is_a_413(start: AppFactory) -> None:
    client = await start()
    big = orjson.dumps({"query": "SELECT 1 " + " " * 70_000})
    r = await client.post(URL, data=big, headers=auth(ADMIN_KEY))
    assert r.status == 413 and "at most 65536 bytes" in (await r.json())["detail"]

    async def chunks():  # no Content-Length: counted as it arrives
        for _ in range(70):
            yield b" " * 1024

    r = await client.post(URL, data=chunks(), headers=auth(ADMIN_KEY))
    assert r.status == 413
