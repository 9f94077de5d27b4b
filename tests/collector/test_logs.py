import logging

import pytest
from aiohttp.http_exceptions import BadHttpMessage, InvalidHeader, LineTooLong
from hypothesis import given, settings
from hypothesis import strategies as st

from collector.logs import ScrubbingFormatter, scrub


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        ("Error handling request from 203.0.113.7", "Error handling request from {ip}"),
        ("peer ('2001:db8::1', 443)", "peer ('{ip}', 443)"),
        ("peer ::ffff:198.51.100.2 closed", "peer ::ffff:{ip} closed"),
        ("user bob@example.com failed", "user {email} failed"),
        (
            "kept 203.0.113.0/24 and 2001:db8::/48",
            "kept 203.0.113.0/24 and 2001:db8::/48",
        ),  # prefixes
        ("at 12:30:45 version 1.2.3", "at 12:30:45 version 1.2.3"),
        ("POST /v1/logs 202 3.1ms", "POST /v1/logs 202 3.1ms"),
    ],
)
def test_scrub(line: str, scrubbed: str) -> None:
    assert scrub(line) == scrubbed


def test_tracebacks_are_scrubbed_too() -> None:
    try:
        raise ValueError("bad value 192.0.2.55")
    except ValueError:
        record = logging.LogRecord(
            "x", logging.ERROR, __file__, 1, "failed for %s", ("192.0.2.55",), True
        )
        import sys

        record.exc_info = sys.exc_info()
    text = ScrubbingFormatter("%(message)s").format(record)
    assert "192.0.2.55" not in text and text.count("{ip}") >= 2 and "ValueError" in text


# ---- secrets and header values (issue 8): by class, with hypothesis searching the class


@pytest.mark.parametrize(
    ("line", "scrubbed"),
    [
        ("DB::Exception: Code: 241. Memory limit", "DB::Exception: Code: 241. Memory limit"),
        ("std::vector<std::string>::iterator", "std::vector<std::string>::iterator"),
        ("Poco::Exception at 12:30:45.123", "Poco::Exception at 12:30:45.123"),
        ("b'Authorization: Bearer tck_x\\x01'", "b'{redacted}'"),
        ("b\"Cookie: a='1'\"", "b'{redacted}'"),
        ("Authorization: Bearer abc.def", "Authorization: {redacted}"),
        ("using Bearer abcdef123 now", "using Bearer {redacted} now"),
        ("key tck_live_abcdef-123 refused", "key {key} refused"),
        ("Set-Cookie: sid=1; HttpOnly", "Set-Cookie: {redacted}"),
        ("  X-User-Id: user-4711", "  X-User-Id: {redacted}"),
        ("GET /u?token=abc&q=1 HTTP/1.1", "GET /u?{query} HTTP/1.1"),
        ("login password=hunter2 user_id=42", "login password={redacted} user_id={redacted}"),
        ("policy of tenant acme: version 1 -> 2", "policy of tenant acme: version 1 -> 2"),
    ],
)
def test_scrub_secrets_and_text(line: str, scrubbed: str) -> None:
    assert scrub(line) == scrubbed


SECRET = st.text(
    alphabet="ABCDEFGHJKLMNPQRSTUVWXYZabcdefghijkmnopqrstuvwxyz23456789", min_size=10, max_size=40
).filter(lambda s: any(c.isdigit() for c in s))  # a digit: never a word of the template itself
TEMPLATES = [
    "Authorization: Bearer {s}",
    "authorization: bearer tck_{s}",
    "Authorization: Basic {s}==",
    "Proxy-Authorization: Digest {s}",
    "Cookie: session={s}; theme=dark",
    "Set-Cookie: sid={s}; Path=/; HttpOnly",
    "X-User-Id: {s}",
    "X-Api-Key: {s}",
    "Idempotency-Key: order-{s}",
    "the key tck_{s} is unknown",
    "GET /v1/logs?user={s}&x=1 HTTP/1.1",
    "GET /u/{s}@example.com HTTP/1.1",
    "token={s}",
    "Referer: https://shop.example/{s}",
    "sent eyJ{s}.eyJ{s}.{s} as token",
]


@settings(max_examples=300)
@given(
    secret=SECRET,
    template=st.sampled_from(TEMPLATES),
    wrap=st.sampled_from(
        [
            "{x}",
            "b'{x}'",
            "b'{x}\\x01'",
            "400, message:\n  Invalid header value char:\n\n    b'{x}'\n      ^",
            "Error: {x}",
            "<BadHttpMessage: 400, message=\"Invalid HTTP header: b'{x}'\">",
            "request headers:\n{x}\nHost: example.org",
        ]
    ),
)
def test_generated_secrets_never_survive(secret: str, template: str, wrap: str) -> None:
    line = wrap.replace("{x}", template.replace("{s}", secret))
    assert secret not in scrub(line), line


ORDINARY = [
    "DB::Exception", "std::vector", "Poco::Net::HTTPException", "12:30:45", "23:59:59.999",
    "version 1.2.3", "v10.0.1", "POST /v1/logs 202 3.1ms", "applied migrations: 0001_a.sql",
    "tenant acme: version 1 -> 2", "took 1.5s", "queued_rows 0", "route /v1/reports/{name}",
    "a -> b", "ratio 3:1", "IPv6 prefix /48", "key id 1a2b3c4d5e6f", "token bucket refilled",
    "basic auth refused", "Basic auth", 'Bearer realm="telemetry-collector"', "cache max-age 5",
]  # fmt: skip


@settings(max_examples=300)
@given(
    parts=st.lists(
        st.sampled_from(ORDINARY) | st.from_regex(r"[a-z]{1,12}", fullmatch=True),
        min_size=1,
        max_size=8,
    )
)
def test_ordinary_text_survives_unchanged(parts: list[str]) -> None:
    line = " ".join(parts)
    assert scrub(line) == line


def _formatted(exc: BaseException) -> str:
    try:
        raise exc
    except BaseException:
        import sys

        record = logging.LogRecord(
            "aiohttp.server", logging.ERROR, __file__, 1, "Error handling request from %s",
            ("203.0.113.9",), sys.exc_info(),
        )  # fmt: skip
    return ScrubbingFormatter("%(message)s").format(record)


@pytest.mark.parametrize(
    "exc",
    [
        BadHttpMessage("Invalid header value char:\n\n  b'Cookie: sid=SECRETVALUE1'\n      ^"),
        InvalidHeader(b"X-User-Id: SECRETVALUE1"),
        LineTooLong(b"Authorization: Bearer SECRETVALUE1...", 8190),
        BadHttpMessage("Bad status line 'GET /x?SECRETVALUE1 HTTP/1.1'"),
    ],
)
def test_parser_errors_are_logged_without_the_request_bytes(exc: BaseException) -> None:
    text = _formatted(exc)
    assert "SECRETVALUE1" not in text and "203.0.113.9" not in text
    assert type(exc).__name__ + ": 400" in text and "Traceback" in text
