"""The service with `[storage] engine = "clickhouse"` against the test-only ClickHouse server
(tests/chserver.py): the corpus stored as the embedded engine stores it, a restart, a lost answer
retried and stored once, the server going away (503 JSON, then recovery), and a server
unreachable at start (the service listens, is not ready, migrates once the server is up)."""

from __future__ import annotations

import asyncio
import gzip
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson

from collector.config import StorageConfig
from collector.migrate import discover
from tests.chserver import ChServer
from tests.conftest import ANALYST_KEY, REPO, AppFactory, auth, corpus_lines, query
from tests.integration.test_reports import seed


async def post_corpus(client: Any, lines: list[str]) -> None:
    for i in range(0, len(lines), 2000):
        body = gzip.compress(("\n".join(lines[i : i + 2000]) + "\n").encode())
        r = await client.post(
            "/v1/logs",
            data=body,
            headers=auth(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"}),
        )
        assert r.status == 202, await r.text()
        assert (await r.json())["accepted"] == len(lines[i : i + 2000])


def stored(client: Any) -> list[bytes]:
    """Every stored access_log row, serialized, sorted: comparable across engines."""
    rows = query(client, "SELECT * FROM access_log")
    return sorted(orjson.dumps(r, option=orjson.OPT_SORT_KEYS) for r in rows)


ROLLUP = (
    "SELECT day, route, status_class, browser_family, sum(requests) AS requests, "
    "uniqCombined64Merge(visitors) AS visitors FROM access_daily "
    "GROUP BY day, route, status_class, browser_family "
    "ORDER BY day, route, status_class, browser_family"
)


async def test_the_corpus_is_stored_as_the_embedded_engine_stores_it(
    start: AppFactory, server_storage: StorageConfig, chserver: ChServer
) -> None:
    lines = corpus_lines()
    embedded = await start()  # same data folder: same keys and salts, so the same pseudonyms
    await post_corpus(embedded, lines)
    want, want_rollup = stored(embedded), query(embedded, ROLLUP)
    await embedded.close()

    server = await start(storage=server_storage)
    await post_corpus(server, lines)
    got = stored(server)
    assert len(got) == 10_000
    assert got == want
    assert query(server, ROLLUP) == want_rollup
    # the rows are on the server, not in this process
    on_server = chserver.query(
        "SELECT count() AS n FROM access_log", database=server_storage.database
    )
    assert on_server == [{"n": 10_000}]
    await server.close()


async def test_reports_read_the_same_from_the_server(
    start: AppFactory, server_storage: StorageConfig
) -> None:
    bodies = []
    for storage in (None, server_storage):
        client = await start(**({"storage": storage} if storage else {}))
        await seed(client)
        r = await client.get("/v1/reports/traffic", headers=auth(ANALYST_KEY))
        assert r.status == 200
        bodies.append(await r.json())
        await client.close()
    assert bodies[0] == bodies[1] and bodies[0]["rows"]


async def test_restart_keeps_rows_pseudonyms_and_applies_no_migration_twice(
    start: AppFactory, server_storage: StorageConfig
) -> None:
    first = await start(storage=server_storage)
    record = {"ip": "192.0.2.1", "user_id": "alice", "path": "/1"}
    assert (await first.post("/v1/logs", json=[record], headers=auth())).status == 202
    await first.close()
    second = await start(storage=server_storage)
    record = {"ip": "192.0.2.2", "user_id": "alice", "path": "/2"}
    assert (await second.post("/v1/logs", json=[record], headers=auth())).status == 202
    rows = query(second, "SELECT path, user_pseudonym FROM access_log ORDER BY path")
    assert [r["path"] for r in rows] == ["/1", "/2"]
    assert rows[0]["user_pseudonym"] == rows[1]["user_pseudonym"] != ""
    assert query(second, "SELECT count() AS n FROM schema_migrations") == [{"n": len(discover())}]
    await second.close()


async def test_a_lost_answer_is_retried_and_stored_once(
    start: AppFactory, server_storage: StorageConfig, chserver: ChServer
) -> None:
    client = await start(storage=server_storage)
    before = chserver.stats()["inserts"]
    chserver.fault("drop_after_insert", times=2)  # applied twice, never answered
    records = [{"ip": f"192.0.2.{i}", "path": f"/{i}"} for i in range(3)]
    r = await client.post("/v1/logs", json=records, headers=auth())
    assert r.status == 202, await r.text()
    assert chserver.stats()["inserts"] - before == 3  # the third attempt was answered
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 3}]
    # nor counted again by the rollup views (the repeated block is dropped there too)
    assert query(client, "SELECT sum(requests) AS n FROM access_daily") == [{"n": 3}]
    await client.close()


async def wait_ready(client: Any, within_s: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + within_s
    while True:
        r = await client.get("/readyz")
        body: dict[str, Any] = await r.json()
        if r.status == 200 or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.2)


async def test_a_server_gone_is_503_json_then_recovers_without_restart(
    start: AppFactory, server_storage: StorageConfig, chserver: ChServer
) -> None:
    client = await start(storage=replace(server_storage, timeout_s=2))
    record = [{"ip": "192.0.2.1", "path": "/"}]
    assert (await client.post("/v1/logs", json=record, headers=auth())).status == 202
    chserver.fault("refuse")
    r = await asyncio.wait_for(client.post("/v1/logs", json=record, headers=auth()), 30)
    assert r.status == 503 and r.headers["Retry-After"] == "5"
    assert await r.json() == {"error": "service unavailable", "detail": "storage is failing"}
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503 and any("SinkUnavailable" in x for x in body["reasons"]), body
    r = await client.get("/v1/reports/traffic", headers=auth(ANALYST_KEY))
    assert r.status == 503 and (await r.json())["error"] == "service unavailable"
    chserver.fault("none")
    assert (await wait_ready(client))["status"] == "ready"
    assert (await client.post("/v1/logs", json=record, headers=auth())).status == 202
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 2}]
    await client.close()


async def test_unreachable_at_start_the_service_listens_and_migrates_when_it_can(
    start: AppFactory, server_storage: StorageConfig, chserver: ChServer
) -> None:
    chserver.fault("refuse")
    client = await start(storage=replace(server_storage, timeout_s=2))  # starts regardless
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    body = await ready.json()
    assert ready.status == 503
    assert any(x.startswith("schema not migrated") for x in body["reasons"]), body
    record = [{"ip": "192.0.2.1", "user_id": "bob", "path": "/"}]
    r = await asyncio.wait_for(client.post("/v1/logs", json=record, headers=auth()), 30)
    assert r.status == 503
    assert await r.json() == {"error": "service unavailable", "detail": "storage is failing"}
    chserver.fault("none")
    assert (await wait_ready(client))["status"] == "ready"
    assert (await client.post("/v1/logs", json=record, headers=auth())).status == 202
    assert query(client, "SELECT count() AS n FROM schema_migrations") == [{"n": len(discover())}]
    audit = query(client, "SELECT DISTINCT tenant_id, diff FROM policy_audit ORDER BY tenant_id")
    assert [a["tenant_id"] for a in audit] == ["acme", "globex"]  # the start-up audit, once ready
    await client.close()


def test_collector_migrate_on_the_server_applies_once_and_refuses_in_one_line(
    server_storage: StorageConfig, chserver: ChServer, tmp_path: Path
) -> None:
    config = tmp_path / "c.toml"
    config.write_text(
        f'[storage]\nengine = "clickhouse"\nurl = "{chserver.url}"\n'
        f'database = "{server_storage.database}"\npath = "data"\ntimeout_s = 2\n'
    )

    def migrate() -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "collector", "migrate", "--config", str(config)],
            cwd=REPO, capture_output=True, text=True,
        )  # fmt: skip

    first, second = migrate(), migrate()
    assert first.returncode == 0 and first.stdout.startswith("applied: 0001_access_log.sql")
    assert second.returncode == 0 and second.stdout == "applied: nothing (up to date)\n"
    chserver.fault("refuse")
    down = migrate()
    assert down.returncode == 2
    assert (
        down.stderr == "collector: ClickHouse server unreachable: connection failed or timed out\n"
    )
