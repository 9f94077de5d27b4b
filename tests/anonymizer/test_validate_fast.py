"""`parse_access` takes the usual field (a `str` within its limit, an `int` in range) on one type
test and hands everything else to the general field functions: it must answer exactly as the
plain composition of those functions (kept here as the reference) on any record, the same
record or the same error (field and reason), in the same order. And the positional constructor
it uses must build the very object the dataclass's own constructor builds."""

import dataclasses
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from anonymizer.errors import RecordInvalid
from anonymizer.types import AccessRecord, ClientIp, DeviceRecord, positional_constructor
from anonymizer.url import split_url
from anonymizer.validate import (
    MAX_DURATION_MS,
    TimeWindow,
    identifier_field,
    int_field,
    ip_field,
    parse_access,
    parse_time,
    string_field,
)

NOW = 1_795_341_903_000
WINDOW = TimeWindow.around(NOW, 30)


def reference(raw: dict[str, Any], window: TimeWindow) -> AccessRecord:
    """`parse_access` as it was written before the fast paths."""
    ip = ip_field(raw, required=True)
    assert ip is not None
    method = string_field(raw, "method", 16)
    if method and not (method.isascii() and method.replace("-", "").isalpha()):
        raise RecordInvalid("method", "must be an HTTP method name")
    path = string_field(raw, "path", 8192)
    host = string_field(raw, "host", 255)
    if "://" in path:
        authority, path = split_url(path)
        host = host or authority
    duration = raw.get("duration_ms")
    if duration is not None and (
        not isinstance(duration, int | float)
        or isinstance(duration, bool)
        or not 0 <= duration <= MAX_DURATION_MS
    ):
        raise RecordInvalid("duration_ms", f"must be a number from 0 to {MAX_DURATION_MS:.0e}")
    status = int_field(raw, "status", 0, 999)
    if status and not 100 <= status <= 599:
        raise RecordInvalid("status", "must be an HTTP status from 100 to 599")
    return AccessRecord(
        time_ms=parse_time(raw.get("time"), window),
        ip=ip,
        method=method.upper(),
        host=host,
        path=path,
        status=status,
        bytes=int_field(raw, "bytes", 0, 2**64 - 1),
        duration_ms=float(duration) if duration is not None else None,
        referrer=string_field(raw, "referrer", 4096),
        user_agent=string_field(raw, "user_agent", 2048),
        user_id=identifier_field(raw, "user_id"),
        session_id=identifier_field(raw, "session_id"),
        service=string_field(raw, "service", 64),
    )


class Text(str):
    """A `str` subclass: not the exact type the fast path takes, still a string."""


def _text(limit: int) -> st.SearchStrategy[Any]:
    near = st.integers(limit - 2, limit + 2).map(lambda n: "a" * max(n, 0))
    return st.one_of(st.text(max_size=20), near, st.text(max_size=8).map(Text))


def _number(hi: int) -> st.SearchStrategy[Any]:
    return st.one_of(
        st.integers(-5, hi + 5), st.sampled_from([0, 99, 100, 599, 600, 2**64 - 1, 2**64]),
        st.booleans(), st.floats(allow_nan=True), st.sampled_from(["200", "0200", "x", ""]),
    )  # fmt: skip


ANY = st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(max_size=5))
FIELDS: dict[str, st.SearchStrategy[Any]] = {
    "ip": st.sampled_from(["83.149.9.216", "2001:db8::1", "10.0.0.1:80", "nope", "", None, 4]),
    "method": st.one_of(st.sampled_from(["GET", "m-search", "G T", "a" * 17]), _text(16)),
    "path": st.one_of(st.sampled_from(["/a?b=1", "http://h.example/x", "https://"]), _text(8192)),
    "host": _text(255),
    "duration_ms": st.one_of(st.none(), st.floats(), st.integers(-1, 10), st.booleans()),
    "status": _number(999),
    "time": st.sampled_from([None, NOW, NOW // 1000, "2026-11-23T10:05:03Z", "x", True]),
    "bytes": _number(2**64),
    "referrer": _text(4096),
    "user_agent": _text(2048),
    "user_id": st.one_of(_text(256), st.integers(), st.booleans()),
    "session_id": st.one_of(_text(256), st.integers()),
    "service": _text(64),
}


def _outcome(parse: Any, raw: dict[str, Any]) -> tuple[str, Any]:
    try:
        record = parse(raw, WINDOW)
    except RecordInvalid as e:
        return "invalid", (e.field, e.error)
    return "record", [(f.name, getattr(record, f.name)) for f in dataclasses.fields(record)]


@settings(max_examples=400, deadline=None)
@given(st.fixed_dictionaries({}, optional={**FIELDS, "method": FIELDS["method"]}), st.data())
def test_parse_access_answers_as_the_field_functions(raw: dict[str, Any], data: Any) -> None:
    raw.setdefault("ip", "83.149.9.216")
    if data.draw(st.booleans()):
        raw[data.draw(st.sampled_from(sorted(FIELDS)))] = data.draw(ANY)
    assert _outcome(parse_access, raw) == _outcome(reference, raw)


def test_a_usual_record_is_the_same_object_either_way() -> None:
    raw = {
        "ip": "83.149.9.216", "method": "get", "path": "/x", "status": 200, "bytes": 5,
        "time": NOW, "user_agent": "ua", "user_id": 7, "duration_ms": 3, "service": "web",
    }  # fmt: skip
    got = parse_access(raw, WINDOW)
    assert got == reference(raw, WINDOW)
    assert type(got) is AccessRecord and got.method == "GET" and got.user_id == "7"


def test_positional_constructor_builds_the_dataclass_object() -> None:
    make = positional_constructor(AccessRecord)
    ip = ClientIp(4, bytes(4), "0.0.0.0")
    values = (1, ip, "GET", "h", "/p", 200, 5, 1.5, "r", "ua", "u", "s", "svc")
    made = make(*values)
    assert made == AccessRecord(*values) and hash(made) == hash(AccessRecord(*values))
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.method = "POST"  # type: ignore[misc]
    with pytest.raises(TypeError):
        make(*values[:-1])
    assert positional_constructor(DeviceRecord)(*range(12)) == DeviceRecord(*range(12))  # type: ignore[arg-type]
