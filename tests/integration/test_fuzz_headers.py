"""Property: no header value and no log-line time gives a 500; every error body is JSON.

Header values are sent as raw bytes on a socket (an HTTP client would refuse or re-encode them):
any byte an HTTP/1.1 parser lets through in a field value (tab, visible ASCII, obs-text 0x80-0xff,
so invalid UTF-8 too) in each header the service reads. Combined log lines carry random
calendar dates (years 0001-9999, any offset) and random text; JSON records carry random times."""

import asyncio
from typing import Any

import orjson
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.conftest import API_KEY, AppFactory, auth

FIELD_BYTES = st.binary(max_size=80).map(
    lambda b: bytes(c for c in b if c == 9 or 0x20 <= c <= 0x7E or c >= 0x80)
)
HEADERS = ["Authorization", "Content-Type", "Content-Encoding", "Idempotency-Key"]
ROUTES = ["/v1/logs", "/v1/devices", "/v1/events", "/v1/mail-scans", "/otlp/v1/logs"]
MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec", "Foo"]

stamps = st.builds(
    lambda d, mon, y, h, m, s, sign, oh, om: (
        f"{d:02d}/{mon}/{y:04d}:{h:02d}:{m:02d}:{s:02d} {sign}{oh:02d}{om:02d}"
    ),
    st.integers(0, 99), st.sampled_from(MONTHS), st.integers(0, 9999), st.integers(0, 99),
    st.integers(0, 99), st.integers(0, 99), st.sampled_from("+-"), st.integers(0, 99),
    st.integers(0, 99),
)  # fmt: skip
lines = st.one_of(
    st.builds(
        lambda ip, user, stamp, tail: f'{ip} - {user} [{stamp}] "GET /x HTTP/1.1" 200 1{tail}',
        st.sampled_from(["192.0.2.1", "::1", "x", "1.2.3.4%eth0"]),
        st.sampled_from(["-", "bob", "\u00e9"]),
        stamps,
        st.sampled_from(["", ' "-" "Mozilla/5.0"', ' "http://r/" "UA', " trailing"]),
    ),
    st.text(max_size=120).filter(lambda t: "\n" not in t),
)


def is_record(line: str) -> bool:
    line = line.removesuffix("\r")
    if line.startswith("#Fields:"):
        return not 1 <= len(line[len("#Fields:") :].split()) <= 128
    return not line.startswith("#") and bool(line.strip())


times = st.one_of(
    st.integers(-(2**63), 2**64 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.builds(
        lambda y, sign, oh: f"{y:04d}-12-31T23:59:59{sign}{oh:02d}:00",
        st.sampled_from([1, 2, 1899, 1900, 2299, 2300, 9999]),
        st.sampled_from("+-"),
        st.integers(0, 23),
    ),
    st.text(max_size=30),
)


def raw_request(port: int, path: str, headers: list[tuple[str, bytes]], body: bytes) -> bytes:
    head = [b"POST " + path.encode() + b" HTTP/1.1", b"Host: 127.0.0.1:%d" % port]
    head += [name.encode() + b": " + value for name, value in headers]
    head += [b"Content-Length: %d" % len(body), b"Connection: close"]
    return b"\r\n".join(head) + b"\r\n\r\n" + body


async def exchange(port: int, request: bytes) -> tuple[int, bytes, bytes]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(request)
        await writer.drain()
        data = await reader.read()
    finally:
        writer.close()
    head, _, body = data.partition(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    return status, head, body


def check(status: int, head: bytes, body: bytes) -> None:
    assert status < 500, body
    if status >= 400:
        assert b"content-type: application/json" in head.lower(), head
        err: Any = orjson.loads(body)
        assert set(err) == {"error", "detail"}


async def test_no_header_value_gives_a_500(start: AppFactory) -> None:
    client = await start()
    port = client.server.port
    assert port is not None
    loop = asyncio.get_running_loop()

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        route=st.sampled_from(ROUTES),
        name=st.sampled_from(HEADERS),
        value=FIELD_BYTES,
        prefix=st.sampled_from([b"", b"Bearer ", b"Bearer " + API_KEY.encode()]),
    )
    def never_500(route: str, name: str, value: bytes, prefix: bytes) -> None:
        headers = {
            "Authorization": b"Bearer " + API_KEY.encode(),
            "Content-Type": b"application/json",
        }
        headers[name] = (prefix if name == "Authorization" else b"") + value
        request = raw_request(port, route, list(headers.items()), b'[{"ip":"192.0.2.1"}]')
        check(*asyncio.run_coroutine_threadsafe(exchange(port, request), loop).result(60))

    await asyncio.to_thread(never_500)


async def test_no_time_gives_a_500(start: AppFactory) -> None:
    client = await start()
    loop = asyncio.get_running_loop()

    async def post(route: str, body: bytes, ctype: str) -> tuple[int, bytes]:
        r = await client.post(route, data=body, headers=auth(**{"Content-Type": ctype}))
        return r.status, await r.read()

    @settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
    @given(
        text=st.lists(lines, min_size=1, max_size=6),
        route=st.sampled_from(ROUTES[:4]),
        time_values=st.lists(times, min_size=1, max_size=4),
    )
    def never_500(text: list[str], route: str, time_values: list[Any]) -> None:
        body = "\n".join(text).encode()
        status, payload = asyncio.run_coroutine_threadsafe(
            post("/v1/logs", body, "text/plain"), loop
        ).result(60)
        assert status == 202, payload
        answer = orjson.loads(payload)
        # a last empty line is the body's final newline; blank lines and W3C directives (`#...`)
        # are no records (a `#Fields:` directive that cannot be read is a rejected one)
        expected = sum(is_record(t) for t in text[: len(text) - (text[-1] == "")])
        assert answer["accepted"] + answer["rejected"] == expected
        records = [
            {"ip": "192.0.2.1", "event": "e", "device_id": "d", "time": t} for t in time_values
        ]
        status, payload = asyncio.run_coroutine_threadsafe(
            post(route, orjson.dumps(records), "application/json"), loop
        ).result(60)
        assert status == 202, payload
        answer = orjson.loads(payload)
        assert answer["accepted"] + answer["rejected"] == len(records)

    await asyncio.to_thread(never_500)
