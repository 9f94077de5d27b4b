import time
from typing import Any

import pytest

from anonymizer.errors import RecordInvalid
from anonymizer.kinds import KINDS
from anonymizer.validate import DAY_MS, TimeWindow, parse_time

validate_access = KINDS["access_log"].validate  # the field check, then the values
NOW = 1_764_000_000_000  # 2025-11-24T16:00Z
WINDOW = TimeWindow.around(NOW, 30)


def test_minimal_record() -> None:
    r = validate_access({"ip": "83.149.9.216"}, WINDOW)
    assert r.time_ms == NOW and r.ip.text == "83.149.9.216" and r.path == ""


def test_full_record() -> None:
    r = validate_access(
        {
            "time": "2025-11-24T15:00:00.250Z",
            "ip": "[2001:db8::1]:443",
            "method": "get",
            "host": "example.com",
            "path": "/x?y=1",
            "status": 404,
            "bytes": 10,
            "duration_ms": 3,
            "referrer": "https://a.example/",
            "user_agent": "curl/8",
            "user_id": 42,
            "session_id": "abc",
            "service": "web",
        },
        WINDOW,
    )
    assert r.time_ms == NOW - 3_600_000 + 250
    assert (r.method, r.status, r.user_id, r.duration_ms, r.ip.version) == (
        "GET",
        404,
        "42",
        3.0,
        6,
    )


def test_absolute_form_target_splits_host() -> None:
    r = validate_access({"ip": "1.1.1.1", "path": "http://proxy.example/a/b?c=1"}, WINDOW)
    assert (r.host, r.path) == ("proxy.example", "/a/b?c=1")


@pytest.mark.parametrize(
    ("raw", "field", "error"),
    [
        ([1], "", "record must be a JSON object"),
        ({}, "ip", "is required"),
        ({"ip": 5}, "ip", "must be a string"),
        ({"ip": "1.2.3.999"}, "ip", "not an IP address"),
        ({"ip": "1.1.1.1", "colour": "red"}, "colour", "unknown field"),
        ({"ip": "1.1.1.1", "status": "200.0"}, "status", "must be a whole number"),
        ({"ip": "1.1.1.1", "status": 700}, "status", "must be an HTTP status from 100 to 599"),
        ({"ip": "1.1.1.1", "bytes": -1}, "bytes", "must be from 0 to 18446744073709551615"),
        ({"ip": "1.1.1.1", "bytes": 2**64}, "bytes", "must be from 0 to 18446744073709551615"),
        ({"ip": "1.1.1.1", "bytes": True}, "bytes", "must be a whole number"),
        ({"ip": "1.1.1.1", "duration_ms": -2}, "duration_ms", "must be a number from 0 to 3e+10"),
        ({"ip": "1.1.1.1", "duration_ms": 1e39}, "duration_ms", "must be a number from 0 to 3e+10"),
        ({"ip": "1.1.1.1", "duration_ms": float("inf")}, "duration_ms", "must be a number from 0 to 3e+10"),
        ({"ip": "1.1.1.1", "duration_ms": float("nan")}, "duration_ms", "must be a number from 0 to 3e+10"),
        ({"ip": "1.1.1.1", "status": 65536}, "status", "must be from 0 to 999"),
        ({"ip": "1.1.1.1", "method": "GET /"}, "method", "must be an HTTP method name"),
        ({"ip": "1.1.1.1", "path": 1}, "path", "must be a string"),
        ({"ip": "1.1.1.1", "user_id": "x" * 300}, "user_id", "longer than 256 characters"),
        ({"ip": "1.1.1.1", "user_id": {"a": 1}}, "user_id", "must be a string"),
        ({"ip": "1.1.1.1", "time": "yesterday"}, "time", "not an RFC 3339 time"),
        ({"ip": "1.1.1.1", "time": "2025-11-24T10:00:00"}, "time", "RFC 3339 time needs an offset (Z or +hh:mm)"),
        ({"ip": "1.1.1.1", "time": True}, "time", "must be an RFC 3339 string or epoch seconds/milliseconds"),
        ({"ip": "1.1.1.1", "time": NOW - 31 * DAY_MS}, "time", "older than the retention of 30 days"),
        ({"ip": "1.1.1.1", "time": NOW + 2 * DAY_MS}, "time", "more than 1 day in the future"),
    ],
)  # fmt: skip
def test_errors_name_the_field(raw: Any, field: str, error: str) -> None:
    with pytest.raises(RecordInvalid) as e:
        validate_access(raw, WINDOW)
    assert (e.value.field, e.value.error) == (field, error)


def test_error_never_quotes_the_value() -> None:
    with pytest.raises(RecordInvalid) as e:
        validate_access({"ip": "alice@example.com"}, WINDOW)
    assert "alice" not in str(e.value)


@pytest.mark.parametrize(
    "value",
    [NOW, NOW / 1000, int(NOW / 1000), "2025-11-24T16:00:00Z", "2025-11-24T17:00:00+01:00"],
)
def test_time_forms(value: Any) -> None:
    assert parse_time(value, WINDOW) == NOW


def test_missing_time_is_receive_time() -> None:
    w = TimeWindow.around(int(time.time() * 1000), 1)
    assert parse_time(None, w) == w.now_ms
