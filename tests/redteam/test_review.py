"""Found in the adversarial review of issue 8, through the real service: a corrupt compressed
body on a keep-alive connection, and a tiny compressed OTLP protobuf body of unknown fields."""

import time
from pathlib import Path

import aiohttp
import brotli
import pytest

from tests.redteam.service import running_service

pytestmark = pytest.mark.slow


async def test_a_corrupt_body_closes_its_connection_cleanly(tmp_path: Path) -> None:
    """The 400 says `Connection: close` (the next request on that connection was reset), and
    the lingering read of the rest logs one INFO line, not an ERROR with a traceback."""
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        json_h = svc.headers(**{"Content-Type": "application/json"})
        for _ in range(3):
            corrupt = {**json_h, "Content-Encoding": "gzip"}
            async with s.post(svc.url + "/v1/events", data=b'{"event":"e"}', headers=corrupt) as r:
                assert r.status == 400 and r.headers.get("Connection") == "close"
                assert (await r.json())["error"] == "bad request"
            async with s.post(svc.url + "/v1/events", data=b'{"event":"e"}', headers=json_h) as r:
                assert r.status == 202  # no reset
        log = svc.log()
    assert "Traceback" not in log and "Unhandled exception" not in log
    assert "the rest of a request body could not be read" in log


async def test_a_protobuf_body_of_unknown_fields_is_refused_quickly(tmp_path: Path) -> None:
    """106 bytes of br inflating to 64 MiB of an unknown varint field: ~30 s of CPU, then 200."""
    body = brotli.compress(b"\x20" * ((64 << 20) - 1), quality=11)
    assert len(body) < 1024
    headers = {"Content-Type": "application/x-protobuf", "Content-Encoding": "br"}
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        started = time.monotonic()
        async with s.post(
            svc.url + "/otlp/v1/logs", data=body, headers=svc.headers(**headers)
        ) as r:
            assert r.status == 413
            assert "protobuf fields" in (await r.json())["detail"]
        assert time.monotonic() - started < 10  # ~1.5 s here on a loaded machine
