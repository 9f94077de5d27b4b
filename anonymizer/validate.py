"""Validation: a raw decoded record (a JSON object) -> a typed record, or `RecordInvalid`
naming the field and the reason (never the value).

The rules live here, in the pure library, so the collector and `anonymizer explain` build the
very same records from the same input. The `parse_*` functions check the values of the fields a
kind knows; which fields those are is not written here but read from the rules
(`anonymizer.kinds.Kind.validate` rejects any other first: a field we do not know has no
anonymization rule; the collector can drop them instead when the policy says so).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from anonymizer.consent import CATEGORIES
from anonymizer.errors import InvalidValueError, RecordInvalid
from anonymizer.imb import ImbError, parse_imb
from anonymizer.ip import parse_ip
from anonymizer.pseudonym import DAY_MS
from anonymizer.types import (
    AccessRecord,
    ClientIp,
    Consent,
    DeviceRecord,
    EventRecord,
    MailScanRecord,
    positional_constructor,
)
from anonymizer.url import split_url

DATETIME64_MIN_MS = -2_208_988_800_000  # 1900-01-01T00:00:00Z, the first DateTime64 time
DATETIME64_MAX_MS = 10_413_791_999_999  # 2299-12-31T23:59:59.999Z, the last
# `duration_ms` is a Float32 column (max ~3.4e38): a larger value would be stored as +inf. No
# request takes longer than a year, so the bound is far inside what the column holds.
MAX_DURATION_MS = 3.2e10
_EPOCH_SECONDS_LIMIT = 100_000_000_000  # below: seconds (until year 5138); above: milliseconds


@dataclass(frozen=True, slots=True)
class TimeWindow:
    """Accepted record times: not older than the tenant's retention, not over a day ahead."""

    now_ms: int
    oldest_ms: int
    newest_ms: int

    @classmethod
    def around(cls, now_ms: int, retention_days: int) -> TimeWindow:
        """Never wider than the DateTime64(3) columns hold (1900-01-01 .. 2299-12-31)."""
        return cls(
            now_ms,
            max(now_ms - retention_days * DAY_MS, DATETIME64_MIN_MS),
            min(now_ms + DAY_MS, DATETIME64_MAX_MS),
        )


def parse_time(value: Any, window: TimeWindow) -> int:
    """RFC 3339 with an offset, or epoch seconds / milliseconds -> epoch milliseconds."""
    if value is None:
        return window.now_ms
    if isinstance(value, bool):
        raise RecordInvalid("time", "must be an RFC 3339 string or epoch seconds/milliseconds")
    if isinstance(value, int | float):
        if isinstance(value, float) and not math.isfinite(value):
            raise RecordInvalid("time", "must be a finite number")
        ms = int(value * 1000) if abs(value) < _EPOCH_SECONDS_LIMIT else int(value)
    elif isinstance(value, str):
        try:
            dt = datetime.fromisoformat(value)
        except ValueError:
            raise RecordInvalid("time", "not an RFC 3339 time") from None
        if dt.tzinfo is None:
            raise RecordInvalid("time", "RFC 3339 time needs an offset (Z or +hh:mm)")
        try:
            ms = int(dt.timestamp() * 1000)
        except (OverflowError, ValueError):  # year 1 or 9999 pushed out of range by the offset
            raise RecordInvalid("time", "out of range") from None
    else:
        raise RecordInvalid("time", "must be an RFC 3339 string or epoch seconds/milliseconds")
    if ms < window.oldest_ms:
        days = (window.now_ms - window.oldest_ms) // DAY_MS
        raise RecordInvalid("time", f"older than the retention of {days} days")
    if ms > window.newest_ms:
        raise RecordInvalid("time", "more than 1 day in the future")
    return ms


def string_field(raw: dict[str, Any], name: str, limit: int) -> str:
    value = raw.get(name)
    if value is None:
        return ""
    if not isinstance(value, str):
        raise RecordInvalid(name, "must be a string")
    if len(value) > limit:
        raise RecordInvalid(name, f"longer than {limit} characters")
    return value


def identifier_field(raw: dict[str, Any], name: str) -> str:
    """Identifiers may be sent as strings or whole numbers; both pseudonymize the same."""
    value = raw.get(name)
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return string_field(raw, name, 256)


# A whole number sent as a string (`"status": "200"`, as many shippers stringify every field):
# ASCII digits only, as JSON writes them (no sign, no leading zero, no space, no fraction).
_NUMERIC_STRING = re.compile(r"0|[1-9][0-9]{0,19}")


def int_field(raw: dict[str, Any], name: str, lo: int, hi: int) -> int:
    value = raw.get(name)
    if value is None:
        return 0
    if isinstance(value, str) and _NUMERIC_STRING.fullmatch(value):
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool):
        raise RecordInvalid(name, "must be a whole number")
    if not lo <= value <= hi:
        raise RecordInvalid(name, f"must be from {lo} to {hi}")
    return value


def check_fields(raw: Any, known: frozenset[str]) -> dict[str, Any]:
    """The record as a dict with only known fields, or the error naming the first unknown one."""
    if not isinstance(raw, dict):
        raise RecordInvalid("", "record must be a JSON object")
    if not known.issuperset(raw):
        unknown = next(name for name in raw if name not in known)
        raise RecordInvalid(str(unknown)[:64], "unknown field")
    return raw


def required_string(raw: dict[str, Any], name: str, limit: int) -> str:
    value = string_field(raw, name, limit)
    if not value:
        raise RecordInvalid(name, "is required")
    return value


def ip_field(raw: dict[str, Any], name: str = "ip", required: bool = False) -> ClientIp | None:
    text = raw.get(name)
    if text is None or text == "":
        if required:
            raise RecordInvalid(name, "is required")
        return None
    if not isinstance(text, str):
        raise RecordInvalid(name, "must be a string")
    try:
        return parse_ip(text)
    except InvalidValueError:
        raise RecordInvalid(name, "not an IP address") from None


def parse_access(raw: dict[str, Any], window: TimeWindow) -> AccessRecord:
    """Every access-log record passes here: a field holding what it usually holds (a `str`
    within its limit, an `int` within its range) is taken on one type test; anything else
    (absent, another type, too long) goes to the general field function, which decides exactly
    as before, so the answers and the order of the errors are unchanged."""
    get = raw.get
    ip = ip_field(raw, required=True)
    assert ip is not None
    method = get("method")
    if method.__class__ is not str or len(method) > 16:
        method = string_field(raw, "method", 16)
    if method and not (method.isascii() and method.replace("-", "").isalpha()):
        raise RecordInvalid("method", "must be an HTTP method name")
    path = get("path")
    if path.__class__ is not str or len(path) > 8192:
        path = string_field(raw, "path", 8192)
    host = get("host")
    if host.__class__ is not str or len(host) > 255:
        host = string_field(raw, "host", 255)
    if "://" in path:  # absolute-form request target (proxies)
        authority, path = split_url(path)
        host = host or authority
    duration = get("duration_ms")
    if duration is not None and (
        not isinstance(duration, int | float)
        or isinstance(duration, bool)
        or not 0 <= duration <= MAX_DURATION_MS  # also refuses nan and inf
    ):
        raise RecordInvalid("duration_ms", f"must be a number from 0 to {MAX_DURATION_MS:.0e}")
    status = get("status")
    if status.__class__ is not int or not 0 <= status <= 999:
        status = int_field(raw, "status", 0, 999)
    if status and not 100 <= status <= 599:
        raise RecordInvalid("status", "must be an HTTP status from 100 to 599")
    time_ms = parse_time(get("time"), window)
    size = get("bytes")
    if size.__class__ is not int or not 0 <= size <= _UINT64_MAX:
        size = int_field(raw, "bytes", 0, _UINT64_MAX)
    referrer = get("referrer")
    if referrer.__class__ is not str or len(referrer) > 4096:
        referrer = string_field(raw, "referrer", 4096)
    user_agent = get("user_agent")
    if user_agent.__class__ is not str or len(user_agent) > 2048:
        user_agent = string_field(raw, "user_agent", 2048)
    user_id = get("user_id")
    if user_id.__class__ is not str or len(user_id) > 256:
        user_id = identifier_field(raw, "user_id")
    session_id = get("session_id")
    if session_id.__class__ is not str or len(session_id) > 256:
        session_id = identifier_field(raw, "session_id")
    service = get("service")
    if service.__class__ is not str or len(service) > 64:
        service = string_field(raw, "service", 64)
    return _new_access(
        time_ms, ip, method.upper(), host, path, status, size,
        float(duration) if duration is not None else None,
        referrer, user_agent, user_id, session_id, service,
    )  # fmt: skip


_UINT64_MAX = 2**64 - 1  # the `bytes` column
_new_access = positional_constructor(AccessRecord)  # `AccessRecord(*fields)`, faster


# --- devices -------------------------------------------------------------------------


def parse_device(raw: dict[str, Any], window: TimeWindow) -> DeviceRecord:
    device_id = identifier_field(raw, "device_id")
    if not device_id:
        raise RecordInvalid("device_id", "is required")
    return DeviceRecord(
        time_ms=parse_time(raw.get("time"), window),
        device_id=device_id,
        user_id=identifier_field(raw, "user_id"),
        manufacturer=string_field(raw, "manufacturer", 64),
        model=string_field(raw, "model", 128),
        os=string_field(raw, "os", 64),
        os_version=string_field(raw, "os_version", 32),
        app_version=string_field(raw, "app_version", 32),
        screen=string_field(raw, "screen", 32),
        locale=string_field(raw, "locale", 35),
        ip=ip_field(raw),
        user_agent=string_field(raw, "user_agent", 2048),
    )


# --- usage events -------------------------------------------------------------------

MAX_PROPERTIES = 64
_KEY = re.compile(r"^[A-Za-z_][A-Za-z0-9_.:-]{0,63}$")


def _properties(raw: dict[str, Any]) -> tuple[tuple[str, str | int | float | bool], ...]:
    props = raw.get("properties")
    if props is None:
        return ()
    if not isinstance(props, dict):
        raise RecordInvalid("properties", "must be an object of string, number or boolean values")
    if len(props) > MAX_PROPERTIES:
        raise RecordInvalid("properties", f"more than {MAX_PROPERTIES} properties")
    out = []
    for key, value in props.items():
        if not _KEY.fullmatch(key):
            raise RecordInvalid(
                "properties", "keys must be names of letters, digits and _.:- (<= 64)"
            )
        if isinstance(value, dict | list):
            raise RecordInvalid(
                f"properties.{key}", "nested values are not allowed: flatten the map"
            )
        if value is None:
            continue
        if not isinstance(value, str | int | float | bool):
            raise RecordInvalid(f"properties.{key}", "must be a string, number or boolean")
        if isinstance(value, str) and len(value) > 512:
            raise RecordInvalid(f"properties.{key}", "longer than 512 characters")
        out.append((key, value))
    return tuple(out)


def _flag(raw: dict[str, Any], name: str) -> bool:
    value = raw.get(name)
    if value is None:
        return False
    if isinstance(value, bool):
        return value
    if value in (0, 1, "0", "1"):  # the DNT and Sec-GPC headers are "1"
        return value in (1, "1")
    raise RecordInvalid(name, "must be true or false")


def _consent(raw: dict[str, Any]) -> Consent:
    value = raw.get("consent")
    categories: frozenset[str] | None = None
    if value is not None:
        if isinstance(value, str):
            value = [c.strip() for c in value.split(",") if c.strip()]
        if not isinstance(value, list) or not all(isinstance(c, str) for c in value):
            raise RecordInvalid("consent", "must be a list of categories")
        unknown = set(value) - CATEGORIES
        if unknown:
            raise RecordInvalid("consent", "categories are essential, analytics, preference")
        categories = frozenset(value)
    return Consent(categories, _flag(raw, "gpc"), _flag(raw, "dnt"))


def parse_event(raw: dict[str, Any], window: TimeWindow) -> EventRecord:
    return EventRecord(
        time_ms=parse_time(raw.get("time"), window),
        event=required_string(raw, "event", 128),
        feature=string_field(raw, "feature", 128),
        action=string_field(raw, "action", 128),
        user_id=identifier_field(raw, "user_id"),
        session_id=identifier_field(raw, "session_id"),
        url=string_field(raw, "url", 8192),
        properties=_properties(raw),
        consent=_consent(raw),
    )


# --- mail scans ---------------------------------------------------------------------


def parse_mail_scan(raw: dict[str, Any], window: TimeWindow) -> MailScanRecord:
    try:
        imb = parse_imb(required_string(raw, "imb", 80))
    except ImbError as e:
        raise RecordInvalid("imb", str(e)) from None
    facility = string_field(raw, "facility_zip", 10).replace("-", "")
    if facility and not (facility.isascii() and facility.isdigit() and len(facility) in (5, 9)):
        raise RecordInvalid("facility_zip", "must be a 5-digit ZIP or ZIP+4")
    return MailScanRecord(
        time_ms=parse_time(raw.get("time"), window),
        imb=imb,
        event=string_field(raw, "event", 64),
        facility_zip=facility[:5],
        operation_code=string_field(raw, "operation_code", 16),
        mail_class=string_field(raw, "mail_class", 32),
        delivery_status=string_field(raw, "delivery_status", 64),
    )
