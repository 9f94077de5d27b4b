"""Every error status, each with its JSON body; nothing is stored from a refused request."""

import gzip
import io
import resource
from dataclasses import replace
from typing import Any

import orjson
import pytest

from collector.appkeys import INFLIGHT, SINK
from collector.config import ServerConfig
from tests.conftest import API_KEY, AppFactory, auth, query


async def expect(resp: Any, status: int, error: str, detail_part: str = "") -> dict[str, Any]:
    assert resp.status == status, await resp.text()
    assert resp.content_type == "application/json"
    body: dict[str, Any] = await resp.json()
    assert set(body) == {"error", "detail"}
    assert body["error"] == error
    assert detail_part in body["detail"]
    return body


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({}, "missing Authorization"),
        ({"Authorization": "Bearer wrong-key"}, "unknown API key"),
        ({"Authorization": "Basic dXNlcjpwYXNz"}, "Bearer"),
        ({"Authorization": "Bearer "}, "Bearer"),
    ],
)
async def test_401(start: AppFactory, headers: dict[str, str], detail: str) -> None:
    client = await start()
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=headers)
    await expect(r, 401, "unauthorized", detail)


async def test_unknown_route_needs_a_key_too_and_answers_json(start: AppFactory) -> None:
    client = await start()
    await expect(await client.get("/v1/secret"), 401, "unauthorized")
    await expect(await client.get("/v1/nothing-here", headers=auth()), 404, "not found")
    await expect(await client.get("/v1/logs", headers=auth()), 405, "method not allowed")


@pytest.mark.parametrize(
    ("body", "headers", "detail"),
    [
        (b"{not json", {"Content-Type": "application/json"}, "not valid JSON"),
        (b"42", {"Content-Type": "application/json"}, "array of records"),
        (b"\xff\xfe", {"Content-Type": "text/plain"}, "not UTF-8"),
        (
            b"not gzip at all",
            {"Content-Type": "application/json", "Content-Encoding": "gzip"},
            "corrupt Content-Encoding",
        ),
        (
            b"not zstd at all",
            {"Content-Type": "application/json", "Content-Encoding": "zstd"},
            "corrupt Content-Encoding",
        ),
    ],
)
async def test_400(start: AppFactory, body: bytes, headers: dict[str, str], detail: str) -> None:
    client = await start()
    await expect(
        await client.post("/v1/logs", data=body, headers=auth(**headers)),
        400,
        "bad request",
        detail,
    )


@pytest.mark.parametrize(
    ("headers", "detail"),
    [
        ({"Content-Type": "application/xml"}, "Content-Type"),
        ({"Content-Type": "application/octet-stream"}, "Content-Type"),
        ({"Content-Type": "application/json", "Content-Encoding": "compress"}, "Content-Encoding"),
        ({"Content-Type": "application/json", "Content-Encoding": "x-custom"}, "Content-Encoding"),
    ],
)
async def test_415(start: AppFactory, headers: dict[str, str], detail: str) -> None:
    client = await start()
    r = await client.post("/v1/logs", data=b"[]", headers=auth(**headers))
    await expect(r, 415, "unsupported media type", detail)


async def test_413_wire_size(start: AppFactory) -> None:
    client = await start(server=ServerConfig(max_body_bytes=1000))
    r = await client.post(
        "/v1/logs",
        data=b"[" + b" " * 2000 + b"]",
        headers=auth(**{"Content-Type": "application/json"}),
    )
    await expect(r, 413, "payload too large", "limit is 1000")


async def test_413_gzip_bomb_is_refused_at_the_limit(start: AppFactory) -> None:
    """1 GiB of zeros is ~1 MiB gzip'd: refused once 1 MiB is inflated, never held whole."""
    client = await start(server=ServerConfig(max_decompressed_bytes=1024 * 1024))
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", compresslevel=9) as f:  # streamed: stays small
        chunk = b"\0" * (1024 * 1024)
        for _ in range(1024):
            f.write(chunk)
    bomb = buf.getvalue()
    assert len(bomb) < 2 * 1024 * 1024
    peak_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    r = await client.post(
        "/v1/logs",
        data=bomb,
        headers=auth(**{"Content-Type": "application/json", "Content-Encoding": "gzip"}),
    )
    await expect(r, 413, "payload too large", "decompressed")
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - peak_before
    assert grown_kib < 200 * 1024  # far below the 1 GiB the bomb would inflate to


async def test_413_too_many_records(start: AppFactory) -> None:
    client = await start(server=ServerConfig(max_records=3))
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}] * 4, headers=auth())
    await expect(r, 413, "payload too large", "4 records")
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 0}]


async def test_503_when_storage_fails_and_nothing_is_accepted(
    start: AppFactory, config: Any
) -> None:
    client = await start(batch=replace(config.batch, insert_retries=1, max_delay_ms=0))
    client.app[SINK].close()  # the engine goes away under the running service
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=auth())
    body = await expect(r, 503, "service unavailable", "storage")
    assert r.headers["Retry-After"] == "5" and body


async def test_public_endpoints(start: AppFactory) -> None:
    client = await start()
    assert (await client.get("/healthz")).status == 200
    ready = await client.get("/readyz")
    assert ready.status == 200 and (await ready.json())["status"] == "ready"
    assert "collector_queued_rows 0" in await (await client.get("/metrics")).text()


async def test_429_tenant_over_its_rate(start: AppFactory, config: Any) -> None:
    from collector.config import TenantConfig

    limited = tuple(
        TenantConfig(t.id, t.plan, t.api_key_sha256, t.keys, 100 if t.id == "acme" else 0)
        for t in config.tenants
    )
    client = await start(tenants=limited)
    ok = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}] * 250, headers=auth())
    assert ok.status == 202
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=auth())
    body = await expect(r, 429, "too many requests", "100 records/s")
    assert body and r.headers["Retry-After"] == "1"
    from tests.conftest import OTHER_KEY

    assert (
        await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=auth(OTHER_KEY))
    ).status == 202


async def test_503_when_too_many_requests_are_in_flight(start: AppFactory) -> None:
    client = await start(server=ServerConfig(max_inflight_requests=1))
    client.app[INFLIGHT].count = 1  # one request is being processed
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=auth())
    await expect(r, 503, "service unavailable", "in flight")
    assert r.headers["Retry-After"] == "1"


async def test_413_chunked_body_counted_on_the_wire(start: AppFactory) -> None:
    """No Content-Length to check: the wire bytes are counted as they arrive."""
    client = await start(server=ServerConfig(max_body_bytes=1000))

    async def chunks() -> Any:
        for _ in range(10):
            yield b" " * 500

    r = await client.post(
        "/v1/logs", data=chunks(), headers=auth(**{"Content-Type": "application/json"})
    )
    await expect(r, 413, "payload too large", "limit of 1000 bytes")


async def test_413_newline_bomb_stops_at_the_records_limit(start: AppFactory) -> None:
    client = await start()
    bomb = gzip.compress(b"\n" * (16 * 1024 * 1024))
    for ctype in ("text/plain", "application/x-ndjson"):
        r = await client.post(
            "/v1/logs",
            data=io.BytesIO(bomb),
            headers=auth(**{"Content-Type": ctype, "Content-Encoding": "gzip"}),
        )
        await expect(r, 413, "payload too large", "more than 10000 records")


async def test_408_body_not_received_in_time_frees_the_slot(start: AppFactory) -> None:
    import asyncio

    client = await start(server=ServerConfig(body_read_timeout_s=1, max_inflight_requests=1))
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Authorization: Bearer " + API_KEY.encode() + b"\r\nContent-Length: 100\r\n\r\n["
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(4096), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 408") and b"application/json" in head
    assert orjson.loads(body)["error"] == "request timeout"
    assert client.app[INFLIGHT].count == 0
    r = await client.post("/v1/logs", json=[{"ip": "192.0.2.1"}], headers=auth())
    assert r.status == 202


async def test_401_for_authorization_bytes_that_are_not_utf8(start: AppFactory) -> None:
    import asyncio

    client = await start()
    reader, writer = await asyncio.open_connection("127.0.0.1", client.server.port)
    writer.write(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer tck_\xff\xfe\xc3\r\n"
        b"Content-Type: application/json\r\nContent-Length: 2\r\nConnection: close\r\n\r\n[]"
    )
    await writer.drain()
    answer = await asyncio.wait_for(reader.read(), 10)
    writer.close()
    head, _, body = answer.partition(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 401"), head
    assert orjson.loads(body) == {"error": "unauthorized", "detail": "unknown API key"}
