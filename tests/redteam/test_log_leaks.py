"""The log scan: malformed and hostile requests carrying a bearer key, a cookie, a user id and an
email (in headers, query strings and bodies) leave none of them in the service's log.

aiohttp's parser errors quote the offending raw header line in the exception it logs; the
scrubbing formatter must keep every such byte out, whatever the parser complains about.
"""

from __future__ import annotations

import asyncio
from pathlib import Path

import aiohttp
import pytest

from tests.redteam.service import ALL_KEYS, INGEST_KEY, PRIVACY_KEY, running_service

pytestmark = pytest.mark.slow

COOKIE = "sid=CookieSecret7Hq2Zp"
USER_ID = "user-4711-quetzal"
EMAIL = "alice.leakcheck@example.com"
FAKE_KEY = "tck_not-a-real-key-9Xq7Lm2Pz"
IP = "198.51.100.77"
SECRETS = (*ALL_KEYS, "CookieSecret7Hq2Zp", USER_ID, "alice.leakcheck", EMAIL, FAKE_KEY, IP)
BEARER = INGEST_KEY.encode()


def raw_requests() -> list[bytes]:
    """Requests the HTTP parser refuses, each quoting a secret in the line it chokes on."""
    h = b"Host: 127.0.0.1\r\n"
    return [
        b"GET /healthz HTTP/1.1\r\n" + h + b"Authorization: Bearer " + BEARER + b"\x01\r\n\r\n",
        b"POST /v1/logs HTTP/1.1\r\n" + h + b"Authorization: Bearer " + BEARER + b"\x7f\r\n"
        b"Content-Length: 2\r\n\r\n[]",
        b"GET /healthz HTTP/1.1\r\n" + h + b"Cookie: " + COOKIE.encode() + b"\x00\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"X-User-Id: " + USER_ID.encode() + b"\x01\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"From: " + EMAIL.encode() + b"\x02\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"Bad Header: " + USER_ID.encode() + b"\r\n\r\n",
        b"GET /healthz HTTP/1.1\r\n" + h + b"Authorization: Bearer " + BEARER + b"\r\n"
        b" X-Folded: " + EMAIL.encode() + b"\r\n\r\n",
        b"POST /v1/logs HTTP/1.1\r\n" + h + b"Content-Length: 5\r\nContent-Length: 6\r\n"
        b"Authorization: Bearer " + BEARER + b"\r\n\r\nhello",
        b"POST /v1/logs HTTP/1.1\r\n" + h + b"Transfer-Encoding: chunked\r\n"
        b"Content-Length: 3\r\nCookie: " + COOKIE.encode() + b"\r\n\r\n",
        b"GET /he\x01lthz?user=" + USER_ID.encode() + b" HTTP/1.1\r\n" + h + b"\r\n",
        b"GET /healthz?email=" + EMAIL.encode() + b"&k=" + BEARER + b" HTTP/1.1\r\n" + h
        + b"X-Long: " + b"A" * 9000 + b"\r\n\r\n",
        b"GET /v1/reports/traffic HTTP/1.1\r\n" + h + b"Authorization: Basic "
        + b"dXNlci00NzExLXF1ZXR6YWw6cGFzcw==\x01\r\n\r\n",
        BEARER + b" " + EMAIL.encode() + b"\r\n\r\n",  # not HTTP at all
        b"GET /healthz HTTP/1.1\r\n" + h + b"Expect: " + USER_ID.encode() + b"\r\n\r\n",
        b"POST /v1/logs HTTP/1.1\r\n" + h + b"Authorization: Bearer " + BEARER + b"\r\n"
        b"Transfer-Encoding: chunked\r\n\r\nZZ;" + EMAIL.encode() + b"\r\n\r\n",
    ]  # fmt: skip


async def send_raw(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        await writer.drain()
        return await asyncio.wait_for(reader.read(65536), 5)
    except (ConnectionError, TimeoutError):
        return b""
    finally:
        writer.close()


async def test_no_secret_reaches_the_log(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc:
        answered = [await send_raw(svc.port, raw) for raw in raw_requests()]
        assert sum(a.startswith(b"HTTP/1.") for a in answered) >= 12
        async with aiohttp.ClientSession() as s:
            hostile = [
                # well-formed requests whose bodies and headers quote the same values
                ("POST", "/v1/logs", INGEST_KEY, b'[{"ip": "' + IP.encode() + b'", "user_id": "'
                 + USER_ID.encode() + b'", "email": "' + EMAIL.encode() + b'"}]'),
                ("POST", "/v1/logs", INGEST_KEY, b'{"ip": "' + EMAIL.encode() + b'"'),
                ("POST", "/v1/events", FAKE_KEY, b'[{"event": "' + EMAIL.encode() + b'"}]'),
                ("POST", "/v1/subjects/export", PRIVACY_KEY, b'{"user_id": "' + USER_ID.encode() + b'"}'),
                ("POST", "/v1/subjects/export", PRIVACY_KEY, b'{"imb": "' + USER_ID.encode() + b'"}'),
                ("PUT", "/v1/policy", PRIVACY_KEY, b"version = 9\n[ip]\nnope = '" + EMAIL.encode() + b"'\n"),
                ("GET", f"/v1/reports/traffic?k={USER_ID}&from={EMAIL}", PRIVACY_KEY, b""),
                ("GET", f"/v1/nothing/{EMAIL}?token={INGEST_KEY}", INGEST_KEY, b""),
                ("POST", "/otlp/v1/logs", INGEST_KEY, b'{"resourceLogs": "' + EMAIL.encode() + b'"}'),
            ]  # fmt: skip
            for method, path, key, body in hostile:
                headers = {
                    "Authorization": f"Bearer {key}",
                    "Cookie": COOKIE,
                    "X-User-Id": USER_ID,
                    "Idempotency-Key": f"{USER_ID}-{EMAIL}",
                    "Content-Type": "application/json",
                    "User-Agent": f"probe ({EMAIL})",
                    "Referer": f"https://example.org/u/{USER_ID}",
                }
                async with s.request(method, svc.url + path, data=body, headers=headers) as r:
                    text = await r.text()
                    assert r.status < 500 or r.status == 503, (path, r.status, text)
                    for secret in SECRETS:
                        assert secret not in text, (path, secret)
        await asyncio.sleep(0.3)
        log = svc.log()
    assert "rejected a request before routing" in log  # the parser errors were logged...
    leaks = [secret for secret in SECRETS if secret in log]
    assert leaks == [], leaks  # ...and nothing they quoted
    assert "Bearer tck_" not in log and "Cookie: sid" not in log
