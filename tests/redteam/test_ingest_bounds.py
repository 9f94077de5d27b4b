"""Bounded work and memory per ingest request, against the real service in a subprocess.

A hostile body is refused while it streams in, with the service's peak resident memory (VmHWM
from /proc) barely moving, and another client's `/healthz` keeps answering meanwhile. A full
10,000-record request never holds the event loop long: `/healthz` latency polled during it is
the longest block another tenant sees. Bounds are generous (a shared 2-core machine); the
figures measured are printed (`pytest -s`) for the notes.
"""

from __future__ import annotations

import asyncio
import gzip
import io
import os
import time
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from tests.conftest import corpus_lines
from tests.redteam.service import OTHER_KEY, Service, running_service

pytestmark = pytest.mark.slow

MIB = 1024 * 1024
MAX_GROWTH = 200 * MIB  # peak RSS growth allowed for one hostile request
MAX_SECONDS = 5.0  # until its 413
MAX_HEALTHZ_S = 1.0  # the longest /healthz answer during it (generous: shared CPUs)


def gz(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9)


class HealthProbe:
    """Polls /healthz on its own connection; the longest answer is the longest loop block."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.latencies: list[float] = []
        self._task: asyncio.Task[None] | None = None

    async def _run(self) -> None:
        async with aiohttp.ClientSession() as s:
            while True:
                t = time.perf_counter()
                async with s.get(self.url + "/healthz") as r:
                    assert r.status == 200
                    await r.read()
                self.latencies.append(time.perf_counter() - t)
                await asyncio.sleep(0.005)

    async def __aenter__(self) -> HealthProbe:
        self._task = asyncio.create_task(self._run())
        await asyncio.sleep(0.05)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self._task is not None
        await asyncio.sleep(0.05)
        if self._task.done():
            self._task.result()  # re-raise what broke the probe
        self._task.cancel()
        self._task.cancel()

    @property
    def worst(self) -> float:
        return max(self.latencies)


async def post(
    svc: Service, path: str, body: bytes | Callable[[], AsyncIterator[bytes]], **headers: str
) -> tuple[int, str, Any, float]:
    data: Any = io.BytesIO(body) if isinstance(body, bytes) else body()
    t = time.perf_counter()
    async with (
        aiohttp.ClientSession() as s,
        s.post(svc.url + path, data=data, headers=svc.headers(**headers)) as r,
    ):
        payload = await r.json(content_type=None)
        return r.status, r.content_type, payload, time.perf_counter() - t


async def hostile(
    svc: Service, path: str, body: bytes, expect: int, **headers: str
) -> dict[str, float]:
    """Post one hostile body with a /healthz probe beside it; the figures of the run."""
    before = svc.peak_rss_bytes()
    async with HealthProbe(svc.url) as probe:
        status, ctype, payload, seconds = await post(svc, path, body, **headers)
    grown = svc.peak_rss_bytes() - before
    assert status == expect, payload
    assert ctype == "application/json" and set(payload) == {"error", "detail"}
    assert seconds < MAX_SECONDS
    assert grown < MAX_GROWTH
    assert probe.worst < MAX_HEALTHZ_S
    return {"seconds": seconds, "grown_mib": grown / MIB, "healthz_max_ms": probe.worst * 1000}


NEWLINES = gz(b"\n" * (16 * MIB))  # ~16 KB on the wire


def json_bombs() -> dict[str, bytes]:
    zeros = b"[" + b"0," * (32 * MIB - 1) + b"0]"  # 64 MiB, 32M values
    dicts = b"[" + b"{}," * (21 * MIB) + b"{}]"  # 63 MiB, 21M values
    deep = b"[" * (64 * MIB - 1)  # over the value budget: refused unparsed
    shallower = b"[" * MIB  # within the budget: orjson stops at depth 1024 (400)
    # the costliest body still within the value budget (1.6M): ~790k dicts parsed, then 413
    costliest = b"[" + b"{}," * 790_000 + b"{}]"
    return {
        "zeros": gz(zeros),
        "dicts": gz(dicts),
        "deep": gz(deep),
        "deep 1M": gz(shallower),
        "dicts within budget": gz(costliest),
    }


def otlp_bomb(attributes: bool = False) -> bytes:
    """ExportLogsServiceRequest{resource_logs{scope_logs{log_records: 8M empty}}}, ~16 MiB; or
    one log record with 8M empty attributes (unparsed, ~400 MB of protobuf messages)."""
    scope_logs = b"\x12\x00" * (8 * MIB)  # field 2: log_records
    if attributes:
        log_record = b"\x32\x00" * (8 * MIB)  # field 6: attributes
        scope_logs = b"\x12" + _varint(len(log_record)) + log_record
    resource_logs = b"\x12" + _varint(len(scope_logs)) + scope_logs  # field 2: scope_logs
    return gz(b"\x0a" + _varint(len(resource_logs)) + resource_logs)  # field 1: resource_logs


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


async def test_newline_and_json_bombs_are_refused_while_decoding(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc:
        figures: dict[str, dict[str, float]] = {}
        gzip_headers = {"Content-Encoding": "gzip"}
        for ctype in ("text/plain", "application/x-ndjson"):
            figures[f"newlines {ctype}"] = await hostile(
                svc, "/v1/logs", NEWLINES, 413, **{"Content-Type": ctype}, **gzip_headers
            )
        for name, body in json_bombs().items():
            figures[f"json {name}"] = await hostile(
                svc,
                "/v1/logs",
                body,
                400 if name == "deep 1M" else 413,
                **{"Content-Type": "application/json"},
                **gzip_headers,
            )
        figures["otlp empty records"] = await hostile(
            svc,
            "/otlp/v1/logs",
            otlp_bomb(),
            413,
            **{"Content-Type": "application/x-protobuf"},
            **gzip_headers,
        )
        figures["otlp empty attributes"] = await hostile(
            svc,
            "/otlp/v1/logs",
            otlp_bomb(attributes=True),
            413,
            **{"Content-Type": "application/x-protobuf"},
            **gzip_headers,
        )
        figures["otlp json zeros"] = await hostile(
            svc,
            "/otlp/v1/logs",
            json_bombs()["zeros"],
            413,
            **{"Content-Type": "application/json"},
            **gzip_headers,
        )
        # the service is unharmed: a normal request of another tenant goes through
        status, _, payload, _ = await post(
            svc,
            "/v1/events",
            b'[{"event":"ok"}]',
            **{"Authorization": f"Bearer {OTHER_KEY}", "Content-Type": "application/json"},
        )
        assert status == 202 and payload["accepted"] == 1, payload
    for name, f in figures.items():
        print(f"{name:28s} {f['seconds']:.2f} s  +{f['grown_mib']:.0f} MiB peak  "
              f"healthz max {f['healthz_max_ms']:.0f} ms")  # fmt: skip


async def test_memory_per_mib_of_a_large_valid_body(tmp_path: Path) -> None:
    """10,000 corpus lines (~2.3 MiB, dates moved into retention) through the whole pipeline:
    peak growth per MiB of body, and the longest /healthz answer while it is processed."""
    body = ("\n".join(corpus_lines()) + "\n").encode()
    assert body.count(b"\n") == 10_000
    async with running_service(tmp_path) as svc:
        # warm-up: imports, UA cache and first inserts are not what a request costs
        warm = await post(
            svc, "/v1/logs", body[: len(body) // 10], **{"Content-Type": "text/plain"}
        )
        assert warm[0] == 202
        before = svc.peak_rss_bytes()
        async with HealthProbe(svc.url) as probe:
            status, _, payload, seconds = await post(
                svc, "/v1/logs", body, **{"Content-Type": "text/plain"}
            )
        assert status == 202 and payload["accepted"] == 10_000, payload
        grown = svc.peak_rss_bytes() - before
    per_mib = grown / (len(body) / MIB)
    print(f"10k corpus lines ({len(body) / MIB:.1f} MiB): {seconds:.2f} s, +{grown / MIB:.0f} MiB "
          f"peak ({per_mib / MIB:.1f} MiB per MiB of body), healthz max {probe.worst * 1000:.0f} ms "
          f"over {len(probe.latencies)} probes")  # fmt: skip
    assert per_mib < 100 * MIB
    assert probe.worst < MAX_HEALTHZ_S


async def _stall(port: int, head: bytes, then_s: float) -> bytes:
    """Send `head`, wait `then_s` without sending more, return what the server answered."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(head)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), then_s)
    finally:
        writer.close()


def _request(port: int, headers: dict[str, str], body: bytes = b"") -> bytes:
    lines = ["POST /v1/logs HTTP/1.1", f"Host: 127.0.0.1:{port}"]
    lines += [f"{k}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def test_slow_body_gets_408_and_frees_its_slot(tmp_path: Path) -> None:
    server_extra = "body_read_timeout_s = 1\nmax_inflight_requests = 1"
    async with running_service(tmp_path, server_extra=server_extra) as svc:
        head = _request(
            svc.port,
            {**svc.headers(), "Content-Type": "application/json", "Content-Length": "1000"},
            b"[",
        )
        t = time.perf_counter()
        answer = await _stall(svc.port, head, 10)
        waited = time.perf_counter() - t
        status_line, _, rest = answer.partition(b"\r\n")
        assert b" 408 " in status_line, answer[:200]
        assert b"application/json" in rest and b'"request timeout"' in rest
        assert 0.9 < waited < 5
        # its one in-flight slot is free again
        status, _, payload, _ = await post(
            svc, "/v1/logs", b'[{"ip":"192.0.2.1"}]', **{"Content-Type": "application/json"}
        )
        assert status == 202, payload


async def test_chunked_body_is_counted_on_the_wire(tmp_path: Path) -> None:
    """No Content-Length: the wire bytes are counted as they arrive (raw and gzip'd)."""
    server_extra = f"max_body_bytes = {MIB}"
    async with running_service(tmp_path, server_extra=server_extra) as svc:

        def chunks(data: bytes) -> Callable[[], AsyncIterator[bytes]]:
            async def gen() -> AsyncIterator[bytes]:
                for i in range(0, len(data), 64 * 1024):
                    yield data[i : i + 64 * 1024]

            return gen

        plain = b"[" + b'{"ip":"192.0.2.1"},' * 200_000 + b'{"ip":"192.0.2.1"}]'  # 3.8 MiB
        random_text = os.urandom(2 * MIB).hex().encode()  # 4 MiB of hex: ~2 MiB gzip'd
        compressed = gz(b'[{"ip":"192.0.2.1","path":"/' + random_text + b'"}]')
        assert len(compressed) > MIB
        for body, extra in ((plain, {}), (compressed, {"Content-Encoding": "gzip"})):
            status, ctype, payload, _ = await post(
                svc, "/v1/logs", chunks(body), **{"Content-Type": "application/json"}, **extra
            )
            assert status == 413, payload
            assert ctype == "application/json" and str(MIB) in payload["detail"]
        status, _, payload, _ = await post(
            svc,
            "/v1/logs",
            chunks(b'[{"ip":"192.0.2.1"}]'),
            **{"Content-Type": "application/json"},
        )
        assert status == 202, payload
