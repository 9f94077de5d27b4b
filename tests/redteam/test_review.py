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


async def test_long_values_cost_linear_detector_time(tmp_path: Path) -> None:
    """The email and URL-credential patterns were quadratic on a long run with no `@` or with
    many (`a@a@a@...`): an 8 KB path cost ~0.4-3 s of one record, on the loop, unsliceable.
    Twenty such records (each distinct, so no memo helps) now take well under a second."""
    shapes = ("a@", "a", "a.", "b(at)", '"a"@', "a:b@", "a@b.")
    records = []
    for i in range(20):
        shape = shapes[i % len(shapes)]
        segment = (shape * (8000 // len(shape)))[: 8000 - 8] + f"{i:08d}"
        records.append({"ip": "203.0.113.5", "path": "/" + segment, "user_agent": segment[:2048]})
    async with running_service(tmp_path) as svc, aiohttp.ClientSession() as s:
        headers = svc.headers(**{"Content-Type": "application/json"})
        started = time.monotonic()
        async with s.post(svc.url + "/v1/logs", json=records, headers=headers) as r:
            assert r.status == 202 and (await r.json())["accepted"] == 20
        elapsed = time.monotonic() - started
    assert elapsed < 8, elapsed  # quadratic: ~20-30 s here; linear: ~0.2 s
