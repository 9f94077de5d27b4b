"""Property: whatever arrives, the answer is never a 500 and every error body is JSON.

Hypothesis drives real HTTP requests from a worker thread into the test's event loop, where the
app runs: random bytes, random JSON shaped like records (known field names, arbitrary values),
and both compressed and raw bodies."""

import asyncio
import gzip
from typing import Any

import orjson
import zstandard
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from anonymizer.kinds import KINDS
from tests.conftest import AppFactory, auth

ROUTES = ["/v1/logs", "/v1/devices", "/v1/events", "/v1/mail-scans", "/otlp/v1/logs"]
TYPES = [
    "application/json",
    "application/x-ndjson",
    "text/plain",
    "application/x-protobuf",
    "image/png",
]
FIELDS = [*sorted(set().union(*(k.fields for k in KINDS.values()))), "x", "", "é"]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-(2**63), 2**64 - 1) | st.floats(allow_nan=False)
    | st.text(max_size=40)
    | st.sampled_from(["192.0.2.1", "::1", "2026-11-25T10:00:00Z", "0123456709498765432101234567891", "1.2.3"]),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=12,
)  # fmt: skip
records = st.dictionaries(st.sampled_from(FIELDS), json_values, max_size=8)
bodies = (
    st.binary(max_size=600)
    | st.lists(records, max_size=5).map(orjson.dumps)
    | records.map(orjson.dumps)
    | st.lists(records, max_size=5).map(lambda rs: b"\n".join(orjson.dumps(r) for r in rs))
    | st.lists(st.text(max_size=120), max_size=5).map(lambda ls: "\n".join(ls).encode())
)


def compress(body: bytes, encoding: str) -> bytes:
    if encoding == "gzip":
        return gzip.compress(body)
    if encoding == "zstd":
        return zstandard.ZstdCompressor().compress(body)
    return body


async def test_no_input_gives_a_500(start: AppFactory) -> None:
    client = await start()
    loop = asyncio.get_running_loop()

    async def post(route: str, body: bytes, headers: dict[str, str]) -> tuple[int, str, bytes]:
        r = await client.post(route, data=body, headers=headers)
        return r.status, r.content_type, await r.read()

    @settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        route=st.sampled_from(ROUTES),
        content_type=st.sampled_from(TYPES),
        encoding=st.sampled_from(["", "gzip", "zstd", "gzip-lie"]),
        body=bodies,
    )
    def never_500(route: str, content_type: str, encoding: str, body: bytes) -> None:
        headers = auth(**{"Content-Type": content_type})
        if encoding:
            headers["Content-Encoding"] = "gzip" if encoding == "gzip-lie" else encoding
        data = body if encoding == "gzip-lie" else compress(body, encoding)
        status, ctype, payload = asyncio.run_coroutine_threadsafe(
            post(route, data, headers), loop
        ).result(60)
        assert status < 500, payload
        if status >= 400:
            assert ctype == "application/json"
            err: Any = orjson.loads(payload)
            assert set(err) == {"error", "detail"}

    await asyncio.to_thread(never_500)
