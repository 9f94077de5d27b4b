"""Idempotency-Key: a retry is not stored twice, gets the first answer, and that survives restart."""

import asyncio
from typing import Any

from collector.app import create_app
from collector.config import Config
from tests.conftest import OTHER_KEY, AppFactory, auth, query

BATCH = [{"ip": "192.0.2.1", "path": "/a"}, {"ip": "nope"}]


async def test_retry_gets_first_answer_and_is_stored_once(start: AppFactory) -> None:
    client = await start()
    answers = []
    for _ in range(3):
        r = await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "req-1"}))
        answers.append((r.status, await r.json()))
    assert answers[0] == (
        202,
        {
            "accepted": 1,
            "rejected": 1,
            "errors": [{"index": 1, "field": "ip", "error": "not an IP address"}],
        },
    )
    assert answers[1] == answers[0] == answers[2]
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 1}]


async def test_keys_are_per_tenant_and_per_key(start: AppFactory) -> None:
    client = await start()
    await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "k"}))
    await client.post("/v1/logs", json=BATCH, headers=auth(OTHER_KEY, **{"Idempotency-Key": "k"}))
    await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "k2"}))
    await client.post("/v1/logs", json=BATCH, headers=auth())  # no key: always ingested
    await client.post("/v1/logs", json=BATCH, headers=auth())
    assert query(client, "SELECT tenant_id, count() AS n FROM access_log GROUP BY tenant_id ORDER BY tenant_id") == [
        {"tenant_id": "acme", "n": 4}, {"tenant_id": "globex", "n": 1},
    ]  # fmt: skip


async def test_same_key_different_body_is_422(start: AppFactory) -> None:
    client = await start()
    await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "k"}))
    r = await client.post("/v1/logs", json=BATCH[:1], headers=auth(**{"Idempotency-Key": "k"}))
    assert r.status == 422 and await r.json() == {
        "error": "unprocessable entity", "detail": "Idempotency-Key was used with a different body"
    }  # fmt: skip


async def test_concurrent_retries_wait_for_the_first(start: AppFactory) -> None:
    client = await start()
    posts = [
        client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "burst"}))
        for _ in range(5)
    ]
    responses = await asyncio.gather(*posts)
    assert {r.status for r in responses} == {202}
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 1}]


async def test_bad_key_is_400(start: AppFactory) -> None:
    client = await start()
    r = await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": "x" * 300}))
    assert r.status == 400 and "Idempotency-Key" in (await r.json())["detail"]


async def test_survives_restart_and_stores_no_raw_key(aiohttp_client: Any, config: Config) -> None:
    first = await aiohttp_client(create_app(config))
    r1 = await first.post(
        "/v1/events", json=[{"event": "e"}], headers=auth(**{"Idempotency-Key": "order-4711-alice"})
    )
    body1 = await r1.json()
    await first.close()
    second = await aiohttp_client(create_app(config))
    r2 = await second.post(
        "/v1/events", json=[{"event": "e"}], headers=auth(**{"Idempotency-Key": "order-4711-alice"})
    )
    assert r1.status == r2.status == 202 and body1 == await r2.json()
    assert query(second, "SELECT count() AS n FROM usage_events") == [{"n": 1}]
    log = (config.storage.path / "idempotency.jsonl").read_text()
    assert log.count("\n") == 1 and "alice" not in log and "4711" not in log


async def test_same_key_on_another_route_is_422_not_the_other_answer(start: AppFactory) -> None:
    client = await start()
    headers = auth(**{"Idempotency-Key": "shared"})
    first = await client.post("/v1/logs", json=BATCH, headers=headers)
    assert first.status == 202
    r = await client.post("/v1/events", json=[{"event": "e"}], headers=headers)
    assert r.status == 422 and await r.json() == {
        "error": "unprocessable entity", "detail": "Idempotency-Key was used on another route"
    }  # fmt: skip
    assert query(client, "SELECT count() AS n FROM usage_events") == [{"n": 0}]
    again = await client.post("/v1/logs", json=BATCH, headers=headers)
    assert (again.status, await again.json()) == (202, await first.json())


async def test_key_cap_from_config(start: AppFactory, config: Config) -> None:
    from dataclasses import replace

    from collector.appkeys import IDEMPOTENCY

    client = await start(idempotency=replace(config.idempotency, max_keys_per_tenant=2))
    for i in range(4):
        r = await client.post("/v1/logs", json=BATCH, headers=auth(**{"Idempotency-Key": f"c{i}"}))
        assert r.status == 202
    store = client.app[IDEMPOTENCY]
    assert (store.keys("acme"), store.evicted) == (2, 2)
    metrics = await (await client.get("/metrics")).text()
    assert "collector_idempotency_evicted_keys 2" in metrics
