"""Validation: a raw decoded record (dict) -> a typed record, or a `RecordError` naming the field.

Unknown fields are rejected: a field we do not know has no anonymization rule, and a record that
carries one is more likely a sender bug than something we should guess about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anonymizer import AccessRecord, ClientIp, InvalidValueError
from anonymizer.ip import parse_ip
from anonymizer.url import split_url
from collector.errors import RecordError

DAY_MS = 86_400_000
_EPOCH_SECONDS_LIMIT = 100_000_000_000  # below: seconds (until year 5138); above: milliseconds


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Accepted record times: not older than the tenant's retention, not over a day ahead."""

    now_ms: int
    oldest_ms: int
    newest_ms: int

    @classmethod
    def around(cls, now_ms: int, retention_days: int) -> TimeWindow:
        return cls(now_ms, now_ms - retention_days * DAY_MS, now_ms + DAY_MS)


def parse_time(value: Any, window: TimeWindow) -> int:
    """RFC 3339 with an offset, or epoch seconds / milliseconds -> epoch milliseconds."""
    if value is None:
        return window.now_ms
    if isinstance(value, bool):
        raise RecordError("time", "must be an RFC 3339 string or epoch seconds/milliseconds")
    if isinstance(value, int | float):
        ms = int(value * 1000) if abs(value) < _EPOCH_SECONDS_LIMIT else int(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise RecordError("time", "not an RFC 3339 time") from None
        if dt.tzinfo is None:
            raise RecordError("time", "RFC 3339 time needs an offset (Z or +hh:mm)")
        ms = int(dt.timestamp() * 1000)
    else:
        raise RecordError("time", "must be an RFC 3339 string or epoch seconds/milliseconds")
    if ms < window.oldest_ms:
        days = (window.now_ms - window.oldest_ms) // DAY_MS
        raise RecordError("time", f"older than the retention of {days} days")
    if ms > window.newest_ms:
        raise RecordError("time", "more than 1 day in the future")
    return ms


def string_field(raw: dict[str, Any], name: str, limit: int) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(name, "must be a string")
    if len(value) > limit:
        raise RecordError(name, f"longer than {limit} characters")
    return value


def identifier_field(raw: dict[str, Any], name: str) -> str:
    """Identifiers may be sent as strings or whole numbers; both pseudonymize the same."""
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return string_field(raw, name, 256)


def int_field(raw: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = raw.get(name)
    if value is None:
        return 0
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordError(name, "must be a whole number")
    if not lo <= value <= hi:
        raise RecordError(name, f"must be from {lo} to {hi}")
    return value


ACCESS_FIELDS = frozenset(
    {
        "time", "ip", "method", "host", "path", "status", "bytes", "duration_ms",
        "referrer", "user_agent", "user_id", "session_id", "service",
    }
)  # fmt: skip


def check_fields(raw: Any, known: frozenset[str]) -> dict[str, Any]:
    """The record as a dict with only known fields, or the error naming the first unknown one."""
    if not isinstance(raw, dict):
        raise RecordError("", "record must be a JSON object")
    if not known.issuperset(raw):
        unknown = next(name for name in raw if name not in known)
        raise RecordError(str(unknown)[:64], "unknown field")
    return raw


def required_string(raw: dict[str, Any], name: str, limit: int) -> str:
    value = string_field(raw, name, limit)
    if not value:
        raise RecordError(name, "is required")
    return value


def ip_field(raw: dict[str, Any], name: str = "ip", required: bool = False) -> ClientIp | None:
    text = raw.get(name)
    if text is None or text == "":
        if required:
            raise RecordError(name, "is required")
        return None
    if not isinstance(text, str):
        raise RecordError(name, "must be a string")
    try:
        return parse_ip(text)
    except InvalidValueError:
        raise RecordError(name, "not an IP address") from None


def validate_access(raw: Any, window: TimeWindow) -> AccessRecord:
    raw = check_fields(raw, ACCESS_FIELDS)
    ip = ip_field(raw, required=True)
    assert ip is not None
    method = string_field(raw, "method", 16)
    if method and not (method.isascii() and method.replace("-", "").isalpha()):
        raise RecordError("method", "must be an HTTP method name")
    path = string_field(raw, "path", 8192)
    host = string_field(raw, "host", 255)
    if "://" in path:  # absolute-form request target (proxies)
        authority, path = split_url(path)
        host = host or authority
    duration = raw.get("duration_ms")
    if duration is not None and (
        not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0
    ):
        raise RecordError("duration_ms", "must be a number >= 0")
    status = int_field(raw, "status", 0, 999)
    if status and not 100 <= status <= 599:
        raise RecordError("status", "must be an HTTP status from 100 to 599")
    return AccessRecord(
        time_ms=parse_time(raw.get("time"), window),
        ip=ip,
        method=method.upper(),
        host=host,
        path=path,
        status=status,
        bytes=int_field(raw, "bytes", 0, 2**63 - 1),
        duration_ms=float(duration) if duration is not None else None,
        referrer=string_field(raw, "referrer", 4096),
        user_agent=string_field(raw, "user_agent", 2048),
        user_id=identifier_field(raw, "user_id"),
        session_id=identifier_field(raw, "session_id"),
        service=string_field(raw, "service", 64),
    )
