"""Daily rollups and k-anonymous reports: what analysts see, and what they never see."""

import time
from typing import Any

import pytest

from collector import rollups
from collector.appkeys import SINK
from tests.conftest import ANALYST_KEY, API_KEY, PRIVACY_KEY, AppFactory, auth, query
from tests.integration.test_openapi import check

UA = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0 Safari/537.36"
TODAY = time.strftime("%Y-%m-%d", time.gmtime())


async def seed(client: Any) -> None:
    """/popular: 8 visitors (distinct IPs); /rare: 2 visitors; /solo: 1 visitor, 20 requests."""
    records = [
        {
            "ip": f"198.51.100.{i}",
            "path": "/popular",
            "status": 200,
            "user_agent": UA,
            "duration_ms": 10 * i,
        }
        for i in range(1, 9)
    ] * 2
    records += [
        {"ip": f"203.0.113.{i}", "path": "/rare", "status": 404, "user_agent": UA} for i in (1, 2)
    ]
    records += [{"ip": "192.0.2.99", "path": "/solo", "status": 200, "user_agent": UA}] * 20
    r = await client.post("/v1/logs", json=records, headers=auth())
    assert (await r.json())["accepted"] == 38
    events = [
        {"event": "export", "feature": "reports", "user_id": f"u{i}", "consent": ["analytics"]}
        for i in range(6)
    ]
    events += [{"event": "delete_account", "user_id": "lonely", "consent": ["analytics"]}]
    await client.post("/v1/events", json=events, headers=auth())


async def report(client: Any, name: str, key: str = ANALYST_KEY, **params: str) -> tuple[int, Any]:
    r = await client.get(f"/v1/reports/{name}", params=params, headers=auth(key))
    return r.status, await check(r, "/v1/reports/{name}", "get")


async def ok(client: Any, name: str, **params: str) -> Any:
    status, body = await report(client, name, **params)
    assert status == 200, body
    return body


async def test_traffic_shows_only_groups_of_k_or_more(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    status, body = await report(client, "traffic")
    assert status == 200 and body["k"] == 5 and body["to"] == TODAY
    rows = {r["route"]: r for r in body["rows"]}
    # /rare (2 visitors) and /solo (1 visitor, 20 requests) are merged into (other): together
    # 3 visitors, fewer than k, so that row is not shown either
    assert set(rows) == {"/popular"}
    popular = rows["/popular"]
    assert (popular["requests"], popular["visitors"], popular["status_class"]) == (16, 8, "2xx")
    assert popular["duration_ms_p50"] > 0 and popular["merged_groups"] == 0
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 38}]  # all stored


async def test_other_group_shown_when_it_reaches_k(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    more = [
        {"ip": f"10.9.{i}.1", "path": f"/page-{i}", "user_agent": UA} for i in range(5)
    ]  # 5 routes, 1 visitor each
    await client.post("/v1/logs", json=more, headers=auth())
    body = await ok(client, "traffic")
    other = [r for r in body["rows"] if r["route"] == "(other)"]
    assert len(other) == 1 and other[0]["visitors"] >= 5 and other[0]["merged_groups"] >= 5


async def test_events_and_clients(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    body = await ok(client, "events")
    assert [(r["event"], r["events"], r["users"]) for r in body["rows"]] == [("export", 6, 6)]
    body = await ok(client, "clients")
    assert body["rows"] and all(r["visitors"] >= 5 for r in body["rows"])
    assert body["rows"][0]["browser_family"] == "Chrome"


@pytest.mark.parametrize(
    ("name", "params", "status"),
    [("nope", {}, 404), ("traffic", {"k": "3"}, 400), ("traffic", {"k": "x"}, 400),
     ("traffic", {"from": "2026-13-01"}, 400), ("traffic", {"from": "2026-11-20", "to": "2026-11-01"}, 400),
     ("traffic", {"from": "2020-01-01", "to": "2026-01-01"}, 400)],
)  # fmt: skip
async def test_bad_requests(
    start: AppFactory, name: str, params: dict[str, str], status: int
) -> None:
    client = await start()
    got, body = await report(client, name, **params)
    assert got == status and set(body) == {"error", "detail"}


async def test_scopes(start: AppFactory) -> None:
    client = await start()
    assert (await report(client, "traffic", key=PRIVACY_KEY))[0] == 200
    assert (await report(client, "traffic", key=API_KEY))[0] == 403


async def test_subject_deletion_rebuilds_the_rollup_days(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    body = await ok(client, "events")
    assert body["rows"][0]["users"] == 6
    r = await client.post("/v1/subjects/delete", json={"user_id": "u0"}, headers=auth(PRIVACY_KEY))
    assert (await r.json())["verified"] is True
    rows = query(
        client,
        "SELECT sum(events) AS e, uniqCombined64Merge(users) AS u FROM events_daily WHERE event = 'export'",
    )
    assert rows == [{"e": 5, "u": 5}]  # the deleted subject is gone from the sketches too
    body = await ok(client, "events")
    assert body["rows"][0]["users"] == 5


async def test_backfill_rebuilds_rollups_from_stored_rows(start: AppFactory) -> None:
    """What `migrate` does when the rollups are new: fill them from the rows already stored."""
    client = await start()
    await seed(client)
    sink = client.app[SINK]
    for rollup in rollups.ROLLUPS:
        sink.execute(f"TRUNCATE TABLE {rollup.table}")
    rollups.backfill(sink)
    assert query(client, "SELECT sum(requests) AS n FROM access_daily") == [{"n": 38}]
    assert query(client, "SELECT sum(events) AS n FROM events_daily") == [{"n": 7}]
    body = await ok(client, "traffic")
    assert [(r["route"], r["requests"], r["visitors"]) for r in body["rows"]] == [
        ("/popular", 16, 8)
    ]
