"""Connection-level availability, tried against the real service: a flood of idle connections,
slowloris heads, one tenant's slow bodies, and malformed requests that aiohttp's parser refuses.

Counts and times are bounded (1,500 sockets, a few seconds each), all on 127.0.0.1.
"""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import aiohttp
import orjson
import pytest

from tests.redteam.service import INGEST_KEY, OTHER_KEY, Service, running_service

pytestmark = pytest.mark.slow

IDLE_CONNECTIONS = 1_500
MAX_CONNECTIONS = 200
# what a careless client puts in a header: a key, an email, a user id; none may come back
MARKER = "tck_leaked-bearer-key-7f3a alice.marker@example.com user-id-4242424242"


async def open_idle(
    port: int, count: int
) -> list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]:
    """`count` TCP connections that never send a byte."""
    conns = []
    for _ in range(count // 50):
        conns += await asyncio.gather(
            *(asyncio.open_connection("127.0.0.1", port) for _ in range(50))
        )
    return conns


async def closed_by_server(reader: asyncio.StreamReader, within_s: float) -> bool:
    """The server closed the connection (EOF or reset) within the time given."""
    try:
        while True:
            chunk = await asyncio.wait_for(reader.read(4096), within_s)
            if not chunk:
                return True
    except TimeoutError:  # an OSError: caught first
        return False
    except OSError:  # reset
        return True


async def timed_healthz(svc: Service) -> float:
    started = time.monotonic()
    async with aiohttp.ClientSession() as s, s.get(svc.url + "/healthz") as r:
        assert r.status == 200
    return time.monotonic() - started


def close_all(conns: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]]) -> None:
    for _, w in conns:
        w.close()


async def test_idle_connections_leave_healthz_reachable_and_the_log_small(tmp_path: Path) -> None:
    server = (
        f"max_connections = {MAX_CONNECTIONS}\nkeepalive_timeout_s = 30\nheader_read_timeout_s = 5"
    )
    async with running_service(tmp_path, server_extra=server) as svc:
        lines_before = len(svc.log().splitlines())
        conns = await open_idle(svc.port, IDLE_CONNECTIONS)
        try:
            await asyncio.sleep(0.5)
            latencies = [await timed_healthz(svc) for _ in range(5)]
            assert max(latencies) < 2.0, latencies
            # the oldest idle ones were shed to stay under the cap ...
            shed = await asyncio.gather(*(closed_by_server(r, 0.5) for r, _ in conns[:1000]))
            assert all(shed)
            # ... and the rest are closed by the header deadline (no request head within 5 s)
            rest = await asyncio.gather(*(closed_by_server(r, 8) for r, _ in conns[-150:]))
            assert all(rest)
        finally:
            close_all(conns)
        assert await timed_healthz(svc) < 2.0
        assert await svc.stop() == 0
        log = svc.log()
    written = len(log.splitlines()) - lines_before
    print(f"{IDLE_CONNECTIONS} idle connections, healthz {max(latencies):.3f}s, {written} lines")
    assert written < 100, written  # 1,300 sheds and 200 deadline closes: a few lines and counts
    assert "closed the least recently active idle connection" in log
    assert "suppressed" in log and "collector stopped" in log
    assert "out of system resource" not in log  # never EMFILE


async def test_slowloris_head_is_closed_after_the_header_deadline(tmp_path: Path) -> None:
    server = "keepalive_timeout_s = 4\nheader_read_timeout_s = 2"
    async with running_service(tmp_path, server_extra=server) as svc:
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        started = time.monotonic()
        closed_at = None
        for _ in range(40):  # one header byte every 0.2 s: would take 8 s
            try:
                writer.write(b"X")
                await writer.drain()
            except (ConnectionError, OSError):
                break
            if reader.at_eof() or await closed_by_server(reader, 0.2):
                closed_at = time.monotonic() - started
                break
        closed_at = closed_at or time.monotonic() - started
        writer.close()
        assert 1.5 < closed_at < 4.0, closed_at

        # a keep-alive client that finished its request is not held to the header deadline,
        # only to the keep-alive timeout
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        for _ in range(2):
            writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, _, _ = await read_response(reader)
            assert status == 200
            await asyncio.sleep(2.5)  # longer than the header deadline
        started = time.monotonic()
        assert await closed_by_server(reader, 6)
        assert time.monotonic() - started < 3.0  # closed 4 s after the last answer
        writer.close()
        assert "header deadline" in svc.log()


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, v in (h.split(":", 1) for h in lines[1:] if ":" in h)}
    body = await asyncio.wait_for(reader.readexactly(int(headers.get("content-length", "0"))), 10)
    return status, headers, body


async def slow_body(port: int, key: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    """An ingest request whose body never finishes."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    writer.write(
        b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer " + key.encode()
        + b"\r\nContent-Type: application/json\r\nContent-Length: 100000\r\n\r\n[{"
    )  # fmt: skip
    await writer.drain()
    return reader, writer


async def test_one_tenants_slow_bodies_leave_slots_for_the_others(tmp_path: Path) -> None:
    server = "max_inflight_requests = 8\nmax_inflight_per_tenant = 2"
    async with running_service(tmp_path, server_extra=server) as svc:
        held = [await slow_body(svc.port, INGEST_KEY) for _ in range(2)]
        await asyncio.sleep(0.5)  # both in their slots
        over = [await slow_body(svc.port, INGEST_KEY) for _ in range(3)]
        try:
            for reader, _ in over:  # the tenant's third slow body onwards: 503 at once
                status, headers, body = await read_response(reader)
                assert status == 503 and headers["retry-after"] == "1"
                answer = orjson.loads(body)
                assert answer["error"] == "service unavailable"
                assert "max_inflight_per_tenant = 2" in answer["detail"]
            async with aiohttp.ClientSession() as s:
                for _ in range(3):  # another tenant is served meanwhile
                    async with s.post(
                        svc.url + "/v1/logs", json=[{"path": "/"}], headers=svc.headers(OTHER_KEY)
                    ) as r:
                        assert r.status == 202, await r.text()
                for _, writer in held:  # the held bodies still finish normally
                    writer.write(b'"path": "/"}]'.ljust(100000 - 2))
                statuses = [(await read_response(r))[0] for r, _ in held]
                assert statuses == [202, 202]
                async with s.post(
                    svc.url + "/v1/logs", json=[{"path": "/"}], headers=svc.headers(INGEST_KEY)
                ) as r:
                    assert r.status == 202  # slots given back
        finally:
            close_all(held + over)


async def test_every_connection_busy_refuses_the_new_one_with_503(tmp_path: Path) -> None:
    async with running_service(tmp_path, server_extra="max_connections = 3") as svc:
        busy = [await slow_body(svc.port, key) for key in (INGEST_KEY, INGEST_KEY, OTHER_KEY)]
        try:
            await asyncio.sleep(0.5)
            reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
            status, headers, body = await read_response(reader)
            writer.close()
            assert status == 503 and headers["retry-after"] == "1"
            assert orjson.loads(body)["detail"].startswith("connection limit reached")
            # a finished request frees its connection for an idle keep-alive, which is shed
            reader, writer = busy[0]
            writer.write(b'"path": "/"}]'.ljust(100000 - 2))
            assert (await read_response(reader))[0] == 202
            assert await timed_healthz(svc) < 2.0
        finally:
            close_all(busy)
        assert "all busy: refused a connection" in svc.log()


async def test_default_cap_follows_a_low_open_file_limit(tmp_path: Path) -> None:
    """No max_connections set and 1,024 descriptors: the cap is 512 and 1,500 idle connections
    never make accept() fail with EMFILE; the engine keeps its descriptors and still stores."""
    async with running_service(tmp_path, wrapper=("prlimit", "--nofile=1024:1024")) as svc:
        conns = await open_idle(svc.port, IDLE_CONNECTIONS)
        try:
            assert await timed_healthz(svc) < 2.0
            async with (
                aiohttp.ClientSession() as s,
                s.post(svc.url + "/v1/logs", json=[{"path": "/"}], headers=svc.headers()) as r,
            ):
                assert r.status == 202
        finally:
            close_all(conns)
        log = svc.log()
    assert "at most 512 connections (open-file limit 1024)" in log
    assert "out of system resource" not in log and "Too many open files" not in log


HOST = b"Host: x\r\n"
MALFORMED: dict[str, tuple[bytes, int]] = {
    "duplicate Content-Length": (
        b"POST /v1/logs HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\nContent-Length: 3\r\n"
        b"X-Key: %M\r\n\r\n[]",
        400,
    ),
    "Content-Length and Transfer-Encoding": (
        b"POST /v1/logs HTTP/1.1\r\n" + HOST + b"Content-Length: 2\r\n"
        b"Transfer-Encoding: chunked\r\nX-Key: %M\r\n\r\n0\r\n\r\n",
        400,
    ),
    "header field over max_field_size": (
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"Cookie: %M" + b"c" * 9000 + b"\r\n\r\n",
        431,
    ),
    "request line over max_line_size": (
        b"GET /healthz?q=%U" + b"q" * 9000 + b" HTTP/1.1\r\n" + HOST + b"\r\n",
        414,
    ),
    "too many headers": (
        b"GET /healthz HTTP/1.1\r\n"
        + HOST
        + b"".join(b"X-%d: %%M\r\n" % i for i in range(80))
        + b"\r\n",
        431,
    ),
    "head over max_head_bytes": (
        b"GET /healthz HTTP/1.1\r\n"
        + HOST
        + b"".join(b"X-%d: %%M" % i + b"h" * 1500 + b"\r\n" for i in range(50))
        + b"\r\n",
        431,
    ),
    "Expect other than 100-continue": (
        b"POST /v1/logs HTTP/1.1\r\n" + HOST + b"Expect: %M\r\nContent-Length: 2\r\n\r\n[]",
        417,
    ),
    "bad method": (b"GE(%U)T /healthz HTTP/1.1\r\n" + HOST + b"\r\n", 400),
    "HTTP/2.0 request line": (b"GET /healthz HTTP/2.0\r\n" + HOST + b"X-Key: %M\r\n\r\n", 505),
    "HTTP/3.0 request line": (b"GET /healthz HTTP/3.0\r\n" + HOST + b"X-Key: %M\r\n\r\n", 505),
    "HTTP version garbage": (b"GET /healthz HTTP/1.%U\r\n" + HOST + b"\r\n", 400),
    "control bytes in a header name": (
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-%M\x01: v\r\n\r\n",
        400,
    ),
    "NUL in a header value": (b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-K: %M\x00\r\n\r\n", 400),
    "invalid Content-Length": (
        b"POST /v1/logs HTTP/1.1\r\n" + HOST + b"Content-Length: 1%M\r\n\r\n",
        400,
    ),
    "invalid Transfer-Encoding": (
        b"POST /v1/logs HTTP/1.1\r\n" + HOST + b"Transfer-Encoding: %M\r\n\r\n",
        400,
    ),
    "non-UTF-8 bytes in a header": (
        b"GET /healthz HTTP/1.1\r\n" + HOST + b"X-K: \xff\xfe%M\r\n\r\n",
        None,  # a value aiohttp accepts: the request is served; nothing is echoed either way
    ),
}


async def test_malformed_requests_get_json_errors_that_echo_nothing(tmp_path: Path) -> None:
    marker = MARKER.encode()
    in_url = marker.replace(b" ", b"+")
    secrets = [part.encode() for part in MARKER.split()]
    async with running_service(tmp_path) as svc:
        for name, (request, expected) in MALFORMED.items():
            reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
            try:
                writer.write(request.replace(b"%M", marker).replace(b"%U", in_url))
                status, headers, body = await read_response(reader)
            finally:
                writer.close()
            if expected is not None:
                assert status == expected, (name, status, body)
                assert headers["content-type"].startswith("application/json"), name
                answer = orjson.loads(body)
                assert set(answer) == {"error", "detail"} and answer["error"], (name, answer)
            for secret in secrets:
                assert secret not in body, name
                assert all(secret not in v.encode("latin-1") for v in headers.values()), name
        # a bad chunk inside a body already being read: the handler's read fails (400) instead
        # of waiting for the rest forever in its slot, and the connection closes
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        writer.write(
            b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + INGEST_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
            b"2\r\n[{\r\n"
        )
        await asyncio.sleep(0.3)
        writer.write(b"zz" + marker + b"\r\n")
        status, headers, body = await read_response(reader)
        assert status == 400 and set(orjson.loads(body)) == {"error", "detail"}
        assert all(secret not in body for secret in secrets)
        assert await closed_by_server(reader, 5)
        writer.close()
        # the one Expect that is served
        reader, writer = await asyncio.open_connection("127.0.0.1", svc.port)
        writer.write(
            b"POST /v1/logs HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer "
            + INGEST_KEY.encode()
            + b"\r\nContent-Type: application/json\r\nExpect: 100-continue\r\n"
            b"Content-Length: 2\r\n\r\n"
        )
        assert (await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)).startswith(
            b"HTTP/1.1 100 Continue"
        )
        writer.write(b"[]")
        assert (await read_response(reader))[0] == 202
        writer.close()
        assert await timed_healthz(svc) < 2.0
        log = svc.log()
    assert "rejected a request before routing" in log
    for secret in MARKER.split():
        assert secret not in log
    assert "Error handling request" not in log
