"""Failures of the background tasks through the real app: the scratch folder where inserts are
written, and the folder of visitor salts. Each failure is made real on disk (a file where a
folder must be, a folder where a salt file is), answered 503, shown by /readyz and /metrics, and
recovered from without a restart once the cause is removed."""

from __future__ import annotations

import asyncio
import logging
import shutil
import time
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestClient

from tests.conftest import AppFactory, auth, query
from tests.integration.test_openapi import check

Client = TestClient[web.Request, web.Application]
RECORD = {"ip": "198.51.100.23", "path": "/bg-marker-path", "user_id": "bg-marker-user"}


@pytest.fixture(autouse=True)
def quick_sweeps(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("collector.app.SALT_SWEEP_SECONDS", 0.2)


async def ready_within(client: Client, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get("/readyz")
        body: dict[str, Any] = await r.json()
        if r.status == 200 or time.monotonic() > deadline:
            return body
        await asyncio.sleep(0.1)


async def not_ready_within(client: Client, seconds: float) -> dict[str, Any]:
    deadline = time.monotonic() + seconds
    while True:
        r = await client.get("/readyz")
        body: dict[str, Any] = await r.json()
        if r.status == 503 or time.monotonic() > deadline:
            assert r.status == 503, body
            return body
        await asyncio.sleep(0.05)


def metric(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    raise AssertionError(f"{name} not in /metrics")


async def test_an_unusable_scratch_folder_is_answered_shown_and_recovered(
    start: AppFactory, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    client = await start()
    scratch = data_dir / "tmp"
    shutil.rmtree(scratch)
    scratch.write_bytes(b"")  # a file where the insert files go: every write fails
    r = await asyncio.wait_for(client.post("/v1/logs", json=[RECORD], headers=auth()), 10)
    assert r.status == 503 and r.headers["Retry-After"] == "5"
    assert await r.json() == {"error": "service unavailable", "detail": "storage is failing"}
    ready = await client.get("/readyz")
    body = await check(ready, "/readyz", "get")  # as documented in openapi.json
    assert ready.status == 503 and body["status"] == "failing"
    assert any(
        "table access_log" in reason and "FileExistsError EEXIST" in reason
        for reason in body["reasons"]
    ), body
    r = await asyncio.wait_for(client.post("/v1/logs", json=[RECORD], headers=auth()), 10)
    assert r.status == 503  # while failing: one attempt (counted below), the answer at once
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, 'collector_insert_errors_total{table="access_log"}') == 5  # 4 + 1
    assert metric(metrics, 'collector_background_errors_total{task="batcher-access_log"}') == 2
    assert metric(metrics, 'collector_storage_failing{table="access_log"}') == 1
    assert metric(metrics, 'collector_storage_failing{table="usage_events"}') == 0
    assert (await client.get("/healthz")).status == 200  # alive, not ready

    scratch.unlink()  # the cause goes away: a probe sees it, no request needed
    assert (await ready_within(client, 10))["status"] == "ready"
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, 'collector_storage_failing{table="access_log"}') == 0
    r = await client.post("/v1/logs", json=[RECORD], headers=auth())
    assert r.status == 202, await r.text()
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 1}]
    # the sender sees it too: what was answered 503 is counted as failed, not accepted
    r = await client.get("/v1/outcomes", headers=auth())
    outcomes = {(o["outcome"], o["reason"]): o["count"] for o in (await r.json())["rows"]}
    assert outcomes == {("failed", "storage"): 2, ("accepted", ""): 1}
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "storage for access_log is failing: FileExistsError EEXIST" in logged
    for value in RECORD.values():  # logged by kind, never with data
        assert value not in logged


async def test_the_engine_gone_is_shown_by_readyz(start: AppFactory, config: Any) -> None:
    from dataclasses import replace

    from collector.appkeys import SINK

    client = await start(batch=replace(config.batch, insert_retries=0, max_delay_ms=0))
    client.app[SINK].close()
    r = await client.post("/v1/events", json={"event": "e"}, headers=auth())
    assert r.status == 503
    body = await not_ready_within(client, 5)
    assert any(
        "usage_events" in reason and "SinkUnavailable" in reason for reason in body["reasons"]
    )


async def test_a_salt_folder_that_cannot_be_listed_is_shown_and_retried(
    start: AppFactory, data_dir: Path, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING)
    client = await start()
    salts = data_dir / "salts"
    shutil.rmtree(salts, ignore_errors=True)
    salts.write_bytes(b"")  # the sweep cannot list it; no salt can be made in it either
    body = await not_ready_within(client, 5)
    assert "salt sweep failing: listing: NotADirectoryError ENOTDIR" in body["reasons"], body
    r = await client.post("/v1/logs", json=[RECORD], headers=auth())
    assert r.status == 503 and r.headers["Retry-After"] == "5"  # today's salt cannot be made
    assert (await r.json())["detail"] == "storage is failing"
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "collector_salt_sweep_errors_total") >= 1
    assert metric(metrics, "collector_salt_sweep_failing") == 1
    assert metric(metrics, 'collector_background_errors_total{task="salt-sweep"}') >= 1
    salts.unlink()
    assert (await ready_within(client, 10))["status"] == "ready"  # the sweeper retried
    r = await client.post("/v1/logs", json=[RECORD], headers=auth())
    assert r.status == 202, await r.text()
    rows = query(client, "SELECT visitor_id FROM access_log")
    assert len(rows) == 1 and rows[0]["visitor_id"]
    for value in RECORD.values():
        assert value not in caplog.text


async def test_an_overdue_salt_is_shown_until_it_is_destroyed(
    start: AppFactory, data_dir: Path
) -> None:
    stuck = data_dir / "salts" / "2020-01-01.salt"
    (stuck / "inside").mkdir(parents=True)  # a folder: unlink fails (EISDIR), even as root
    client = await start()
    body = await not_ready_within(client, 5)
    assert "visitor salt destruction overdue: 2020-01-01" in body["reasons"], body
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "collector_salts_overdue") == 1
    shutil.rmtree(stuck)
    (data_dir / "salts" / "2020-01-01.salt").write_bytes(b"s" * 32)  # now a plain salt file
    assert (await ready_within(client, 10))["status"] == "ready"
    assert not stuck.exists()
    metrics = await (await client.get("/metrics")).text()
    assert metric(metrics, "collector_salts_overdue") == 0
    assert metric(metrics, "collector_salts_destroyed_total") == 1
    assert (data_dir / "salts" / "destroyed").read_text() == "2020-01-01\n"
