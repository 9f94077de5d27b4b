"""Requests refused as a whole (400, 408, 413, 415, 422) are counted in outcomes as one
`refused` request each, by tenant, kind and reason: a shipper that treats a 4xx as "drop and
move on" leaves no other trace. 401/403 are not counted (no tenant, or not its ingest key)."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest

from collector.config import Config
from collector.reasons import REFUSALS
from tests.conftest import ADMIN_KEY, ANALYST_KEY, API_KEY, OTHER_KEY, AppFactory, auth
from tests.integration.test_openapi import check

GOOD = [{"ip": "203.0.113.7", "path": "/", "status": 200}]


async def refused(client: Any, key: str = API_KEY) -> dict[tuple[str, str], int]:
    r = await client.get("/v1/outcomes", headers=auth(key))
    body = await check(r, "/v1/outcomes", "get")
    assert r.status == 200
    return {(x["kind"], x["reason"]): x["count"] for x in body["rows"] if x["outcome"] == "refused"}


@pytest.mark.parametrize(
    ("path", "kwargs", "status", "kind", "reason"),
    [
        ("/v1/logs", {"data": b"[{not json", "ctype": "application/json"}, 400, "access_log",
         "malformed_body"),
        ("/v1/logs", {"data": gzip.compress(b"x")[:8], "ctype": "application/json",
                      "headers": {"Content-Encoding": "gzip"}}, 400, "access_log",
         "malformed_body"),
        ("/v1/logs", {"data": b"<a/>", "ctype": "application/xml"}, 415, "access_log",
         "unsupported_media_type"),
        ("/v1/events", {"data": b"{}", "ctype": "application/json",
                        "headers": {"Content-Encoding": "lzma"}}, 415, "event",
         "unsupported_media_type"),
        ("/v1/logs", {"data": b"[" + b"1," * 600 + b"1]", "ctype": "application/json"}, 413,
         "access_log", "body_too_large"),
        ("/otlp/v1/logs", {"data": b"x", "ctype": "text/plain"}, 415, "otlp",
         "unsupported_media_type"),
        ("/otlp/v1/traces", {"data": b"{not json", "ctype": "application/json"}, 400,
         "access_log", "malformed_body"),
    ],
)  # fmt: skip
async def test_each_refusal_is_counted_for_the_tenant_and_kind(
    start: AppFactory,
    config: Config,
    path: str,
    kwargs: dict[str, Any],
    status: int,
    kind: str,
    reason: str,
) -> None:
    client = await start(server=replace(config.server, max_body_bytes=1000))
    headers = auth(**{"Content-Type": kwargs["ctype"], **kwargs.get("headers", {})})
    for _ in range(2):
        r = await client.post(path, data=kwargs["data"], headers=headers)
        assert r.status == status, await r.text()
        assert set(await r.json()) == {"error", "detail"}
    assert await refused(client) == {(kind, reason): 2}  # counted in requests, one each
    assert await refused(client, OTHER_KEY) == {}  # the other tenant sees none of it
    assert reason in REFUSALS.values()


async def test_a_body_that_never_finishes_is_counted_as_body_timeout(
    start: AppFactory, config: Config
) -> None:
    client = await start(server=replace(config.server, body_read_timeout_s=1))

    async def slow() -> AsyncIterator[bytes]:
        yield b'[{"ip": "203.0.113.7",'
        await asyncio.sleep(2.5)
        yield b'"path": "/"}]'

    r = await client.post(
        "/v1/logs", data=slow(), headers=auth(**{"Content-Type": "application/json"})
    )
    assert r.status == 408
    assert await refused(client) == {("access_log", "body_timeout"): 1}


async def test_an_idempotency_key_reused_with_another_body_is_counted(start: AppFactory) -> None:
    client = await start()
    key = {"Idempotency-Key": "batch-0001"}
    r = await client.post("/v1/logs", json=GOOD, headers=auth(**key))
    assert r.status == 202
    r = await client.post("/v1/logs", json=GOOD * 2, headers=auth(**key))
    assert r.status == 422
    assert await refused(client) == {("access_log", "idempotency_conflict"): 1}


async def test_unauthenticated_forbidden_and_rate_limited_are_not_refusals(
    start: AppFactory,
) -> None:
    client = await start()
    bad = {"Content-Type": "application/xml"}
    r = await client.post("/v1/logs", data=b"<a/>", headers=bad)
    assert r.status == 401
    r = await client.post("/v1/logs", data=b"<a/>", headers=auth("tck_nobody-0123456789", **bad))
    assert r.status == 401
    r = await client.post("/v1/logs", data=b"<a/>", headers=auth(ANALYST_KEY, **bad))
    assert r.status == 403
    assert await refused(client) == {}
    metrics = await (await client.get("/metrics", headers=auth(ADMIN_KEY))).text()
    assert 'outcome="refused"' not in metrics


async def test_metrics_count_refusals_publicly_without_tenant_and_per_tenant_for_its_own(
    start: AppFactory,
) -> None:
    client = await start()
    xml = {"Content-Type": "application/xml"}
    for key in (API_KEY, API_KEY, OTHER_KEY):
        r = await client.post("/v1/logs", data=b"<a/>", headers=auth(key, **xml))
        assert r.status == 415
    public = await (await client.get("/metrics")).text()
    assert (
        'collector_records_outcomes_total{kind="access_log",outcome="refused",'
        'reason="unsupported_media_type"} 3.0' in public
    )
    assert "acme" not in public and "globex" not in public
    own = await (await client.get("/metrics", headers=auth(ADMIN_KEY))).text()
    assert (
        'collector_tenant_records_outcomes_total{kind="access_log",outcome="refused",'
        'reason="unsupported_media_type",tenant="acme"} 2.0' in own
    )
    assert 'tenant="globex"' not in own


async def test_an_unparseable_text_line_is_rejected_as_unparseable_line(start: AppFactory) -> None:
    """Not a refusal (the request is answered 202), but the reason syslog-ng's users look for."""
    client = await start()
    lines = '203.0.113.7 - - [01/Jan/2026:00:00:00 +0000] "GET / HTTP/1.1" 200 1\nnot a log line'
    r = await client.post("/v1/logs", data=lines, headers=auth(**{"Content-Type": "text/plain"}))
    assert r.status == 202
    r = await client.get("/v1/outcomes", headers=auth())
    rows = (await r.json())["rows"]
    assert ("rejected", "unparseable_line", 1) in {
        (x["outcome"], x["reason"], x["count"]) for x in rows
    }
