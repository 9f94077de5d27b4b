"""Data-subject access, portability and erasure: found under every key epoch still held, in
every table; deletion verified; a shredded epoch is beyond reach (already unlinkable)."""

from datetime import UTC, datetime
from typing import Any

import pytest

from collector.appkeys import PIPELINE
from tests.conftest import (
    API_KEY,
    OTHER_KEY,
    OTHER_PRIVACY_KEY,
    PRIVACY_KEY,
    AppFactory,
    auth,
    query,
)
from tests.integration.test_kinds import BARS, ROUTING, TRACKING
from tests.integration.test_openapi import check


async def seed(client: Any) -> None:
    for key in (API_KEY, OTHER_KEY):
        await client.post("/v1/logs", json=[{"ip": "192.0.2.1", "user_id": "val", "path": "/a"},
                                            {"ip": "192.0.2.2", "user_id": "other", "path": "/b"}], headers=auth(key))  # fmt: skip
    await client.post(
        "/v1/devices",
        json=[{"device_id": "phone-1", "user_id": "val"}, {"device_id": "phone-2"}],
        headers=auth(),
    )
    await client.post("/v1/events", json=[{"event": "e", "user_id": "val", "consent": ["analytics"]},
                                          {"event": "e", "user_id": "val"}], headers=auth())  # fmt: skip
    await client.post(
        "/v1/mail-scans",
        json=[{"imb": TRACKING + ROUTING}, {"imb": "01234567094987654322"}],
        headers=auth(),
    )


async def post(client: Any, path: str, body: Any, key: str = PRIVACY_KEY) -> tuple[int, Any]:
    """Posts, and checks the answer against openapi.json."""
    r = await client.post(path, json=body, headers=auth(key))
    return r.status, await check(r, path)


async def test_export_finds_the_subject_everywhere_and_only_theirs(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    client.app[PIPELINE].keys.rotate("acme")  # a new epoch: the subject's rows span two keys
    await client.post(
        "/v1/logs", json={"ip": "192.0.2.9", "user_id": "val", "path": "/c"}, headers=auth()
    )
    status, body = await post(client, "/v1/subjects/export", {"user_id": "val"})
    assert status == 200 and body["subject"] == "user_id" and len(body["epochs_searched"]) == 2
    assert sorted(r["path"] for r in body["tables"]["access_log"]) == ["/a", "/c"]  # both epochs
    assert all(r["tenant_id"] == "acme" for rows in body["tables"].values() for r in rows)
    assert len(body["tables"]["device_info"]) == 1
    assert len(body["tables"]["usage_events"]) == 1  # the event without consent holds no pseudonym
    assert body["rows"] == 4
    status, body = await post(
        client, "/v1/subjects/export", {"imb": BARS}
    )  # the bars name the piece
    assert status == 200 and len(body["tables"]["mail_scans"]) == 1
    status, body = await post(client, "/v1/subjects/export", {"device_id": "phone-1"})
    assert len(body["tables"]["device_info"]) == 1


@pytest.mark.parametrize("engine", ["embedded", "clickhouse"])
async def test_delete_is_verified_and_spares_everyone_else(
    start: AppFactory, engine: str, request: pytest.FixtureRequest
) -> None:
    # on the server engine too (the test server, tests/chserver.py): the same statements
    server = {"storage": request.getfixturevalue("server_storage")} if engine != "embedded" else {}
    client = await start(**server)
    await seed(client)
    status, body = await post(client, "/v1/subjects/delete", {"user_id": "val"})
    assert status == 200 and body["verified"] is True
    assert body["deleted"] == {"access_log": 1, "device_info": 1, "usage_events": 1}
    # the day's rollup was rebuilt from what is left: acme's one other request
    daily = "SELECT sum(requests) AS n FROM access_daily WHERE tenant_id = 'acme'"
    assert query(client, daily) == [{"n": 1}]
    assert query(client, "SELECT tenant_id, path FROM access_log ORDER BY tenant_id, path") == [
        {"tenant_id": "acme", "path": "/b"}, {"tenant_id": "globex", "path": "/a"}, {"tenant_id": "globex", "path": "/b"},
    ]  # fmt: skip
    status, body = await post(client, "/v1/subjects/export", {"user_id": "val"})
    assert body["rows"] == 0
    status, body = await post(client, "/v1/subjects/delete", {"imb": TRACKING + ROUTING})
    assert body["deleted"] == {"mail_scans": 1} and query(
        client, "SELECT count() AS n FROM mail_scans"
    ) == [{"n": 1}]


async def test_tenants_are_isolated(start: AppFactory) -> None:
    client = await start()
    await seed(client)
    status, body = await post(
        client, "/v1/subjects/delete", {"user_id": "val"}, key=OTHER_PRIVACY_KEY
    )
    assert status == 200 and body["deleted"] == {
        "access_log": 1,
        "device_info": 0,
        "usage_events": 0,
    }
    assert query(client, "SELECT count() AS n FROM access_log WHERE tenant_id = 'acme'") == [
        {"n": 2}
    ]


async def test_shredded_epochs_are_beyond_reach(start: AppFactory) -> None:
    client = await start()
    await client.post("/v1/logs", json={"ip": "192.0.2.1", "user_id": "val"}, headers=auth())
    keys = client.app[PIPELINE].keys
    old = keys.key_files("acme")[0].epoch
    keys.rotate("acme")
    keys.shred("acme", datetime(2999, 1, 1, tzinfo=UTC), current_epoch=old + ".g1")
    status, body = await post(client, "/v1/subjects/export", {"user_id": "val"})
    assert status == 200 and body["rows"] == 0 and old not in body["epochs_searched"]


async def test_bad_requests_and_scopes(start: AppFactory) -> None:
    client = await start()
    for bad in (
        {},
        {"user_id": "a", "device_id": "b"},
        {"email": "x"},
        {"user_id": ""},
        {"imb": "123"},
        [1],
    ):
        status, body = await post(client, "/v1/subjects/export", bad)
        assert status == 400 and body["error"] == "bad request"
    status, body = await post(client, "/v1/subjects/delete", {"user_id": "val"}, key=API_KEY)
    assert status == 403
