"""Validation: a raw decoded record (dict) -> a typed record, or a `RecordError` naming the field.

Unknown fields are rejected: a field we do not know has no anonymization rule, and a record that
carries one is more likely a sender bug than something we should guess about.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anonymizer import AccessRecord, InvalidValueError
from anonymizer.ip import parse_ip
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


def _string(raw: dict[str, Any], name: str, limit: int) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordError(name, "must be a string")
    if len(value) > limit:
        raise RecordError(name, f"longer than {limit} characters")
    return value


def _identifier(raw: dict[str, Any], name: str) -> str:
    """Identifiers may be sent as strings or whole numbers; both pseudonymize the same."""
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return _string(raw, name, 256)


def _int(raw: dict[str, Any], name: str, lo: int, hi: int) -> int:
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


def validate_access(raw: Any, window: TimeWindow) -> AccessRecord:
    if not isinstance(raw, dict):
        raise RecordError("", "record must be a JSON object")
    if not ACCESS_FIELDS.issuperset(raw):
        unknown = next(name for name in raw if name not in ACCESS_FIELDS)
        raise RecordError(str(unknown)[:64], "unknown field")
    ip_text = raw.get("ip")
    if ip_text is None or ip_text == "":
        raise RecordError("ip", "is required")
    if not isinstance(ip_text, str):
        raise RecordError("ip", "must be a string")
    try:
        ip = parse_ip(ip_text)
    except InvalidValueError:
        raise RecordError("ip", "not an IP address") from None
    method = _string(raw, "method", 16)
    if method and not method.isalpha():
        raise RecordError("method", "must be an HTTP method name")
    path = _string(raw, "path", 8192)
    host = _string(raw, "host", 255)
    if path.startswith(("http://", "https://")):  # absolute-form request target (proxies)
        authority, _, rest = path.partition("://")[2].partition("/")
        host = host or authority
        path = "/" + rest
    duration = raw.get("duration_ms")
    if duration is not None and (
        not isinstance(duration, int | float) or isinstance(duration, bool) or duration < 0
    ):
        raise RecordError("duration_ms", "must be a number >= 0")
    status = _int(raw, "status", 0, 999)
    if status and not 100 <= status <= 599:
        raise RecordError("status", "must be an HTTP status from 100 to 599")
    return AccessRecord(
        time_ms=parse_time(raw.get("time"), window),
        ip=ip,
        method=method.upper(),
        host=host,
        path=path,
        status=status,
        bytes=_int(raw, "bytes", 0, 2**63 - 1),
        duration_ms=float(duration) if duration is not None else None,
        referrer=_string(raw, "referrer", 4096),
        user_agent=_string(raw, "user_agent", 2048),
        user_id=_identifier(raw, "user_id"),
        session_id=_identifier(raw, "session_id"),
        service=_string(raw, "service", 64),
    )
