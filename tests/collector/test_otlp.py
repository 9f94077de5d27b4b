"""OTLP/HTTP log decoding: requests built with the official proto classes, a hand-written OTLP/JSON
document as the spec writes one, and the real OpenTelemetry Python SDK exporter over real HTTP."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable
from typing import Any

import pytest
from aiohttp import web
from aiohttp.test_utils import TestServer
from google.protobuf import json_format
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import (
    AnyValue,
    ArrayValue,
    KeyValue,
    KeyValueList,
)
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs
from opentelemetry.proto.resource.v1.resource_pb2 import Resource

from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType
from collector.otlp import (
    JSON,
    PROTOBUF,
    UNMAPPED,
    OtlpFailure,
    OtlpItem,
    decode_otlp_logs,
    encode_response,
)

T_NS = 1_767_225_600_123_456_789  # 2026-01-01T00:00:00.123456789Z
T_MS = 1_767_225_600_123
SECRET = "alice@example.com"  # a value that must never show up in an error

ServerFactory = Callable[[web.Application], Awaitable[TestServer]]


def any_value(value: Any) -> AnyValue:
    if isinstance(value, bool):
        return AnyValue(bool_value=value)
    if isinstance(value, int):
        return AnyValue(int_value=value)
    if isinstance(value, float):
        return AnyValue(double_value=value)
    if isinstance(value, str):
        return AnyValue(string_value=value)
    if isinstance(value, bytes):
        return AnyValue(bytes_value=value)
    if isinstance(value, list):
        return AnyValue(array_value=ArrayValue(values=[any_value(v) for v in value]))
    if isinstance(value, dict):
        return AnyValue(kvlist_value=KeyValueList(values=attributes(value)))
    raise TypeError(type(value))


def attributes(attrs: dict[str, Any]) -> list[KeyValue]:
    return [KeyValue(key=k, value=any_value(v)) for k, v in attrs.items()]


def log(
    attrs: dict[str, Any],
    time_ns: int = T_NS,
    observed_ns: int = 0,
    event_name: str = "",
) -> LogRecord:
    return LogRecord(
        time_unix_nano=time_ns,
        observed_time_unix_nano=observed_ns,
        severity_number=9,
        body=AnyValue(string_value="a log line"),
        attributes=attributes(attrs),
        trace_id=bytes(range(16)),
        span_id=bytes(range(8)),
        event_name=event_name,
    )


def request(
    *records: LogRecord, resource: dict[str, Any] | None = None
) -> ExportLogsServiceRequest:
    return ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=attributes(resource or {})),
                scope_logs=[ScopeLogs(log_records=list(records))],
            )
        ]
    )


def encode(req: ExportLogsServiceRequest, media: str) -> bytes:
    if media == PROTOBUF:
        return req.SerializeToString()
    return json_format.MessageToJson(req).encode()


def decode(req: ExportLogsServiceRequest, media: str = PROTOBUF) -> list[OtlpItem | OtlpFailure]:
    return decode_otlp_logs(encode(req, media), media)


def one(req: ExportLogsServiceRequest, media: str = PROTOBUF) -> OtlpItem | OtlpFailure:
    (item,) = decode(req, media)
    return item


ACCESS_ATTRS = {
    "client.address": "203.0.113.7",
    "http.request.method": "GET",
    "server.address": "shop.example",
    "url.path": "/pricing",
    "url.query": "utm_source=ad&email=a@b.c",
    "http.response.status_code": 200,
    "http.response.body.size": 5120,
    "http.server.request.duration": 0.25,
    "http.request.header.referer": ["https://ref.example/page"],
    "user_agent.original": "Mozilla/5.0",
    "enduser.id": "u-42",
    "session.id": "s-1",
    "service.name": "shop-frontend",
}
ACCESS_RECORD = {
    "time": T_MS,
    "ip": "203.0.113.7",
    "method": "GET",
    "host": "shop.example",
    "path": "/pricing?utm_source=ad&email=a@b.c",
    "status": 200,
    "bytes": 5120,
    "duration_ms": 250.0,
    "referrer": "https://ref.example/page",
    "user_agent": "Mozilla/5.0",
    "user_id": "u-42",
    "session_id": "s-1",
    "service": "shop-frontend",
}

KIND_CASES = [
    pytest.param(log(ACCESS_ATTRS), "access_log", ACCESS_RECORD, id="access_log"),
    pytest.param(
        log({"http.request.method": "POST", "http.request.header.referer": "https://r.example/"}),
        "access_log",
        {"time": T_MS, "method": "POST", "referrer": "https://r.example/"},
        id="access_log-method-only",
    ),
    pytest.param(
        log(
            {
                "device.id": "d-9",
                "enduser.id": 42,
                "device.manufacturer": "Google",
                "device.model.identifier": "Pixel 8",
                "os.name": "Android",
                "os.version": "15",
                "service.version": "3.4.1",
                "app.locale": "de-DE",
                "app.screen": "1080x2400",
                "client.address": "2001:db8::1",
                "user_agent.original": "ShopApp/3.4.1",
            }
        ),
        "device",
        {
            "time": T_MS,
            "device_id": "d-9",
            "user_id": 42,
            "manufacturer": "Google",
            "model": "Pixel 8",
            "os": "Android",
            "os_version": "15",
            "app_version": "3.4.1",
            "locale": "de-DE",
            "screen": "1080x2400",
            "ip": "2001:db8::1",
            "user_agent": "ShopApp/3.4.1",
        },
        id="device",
    ),
    pytest.param(
        log(
            {
                "event.name": "checkout",
                "app.feature": "cart",
                "app.action": "click",
                "enduser.id": "u-42",
                "session.id": "s-1",
                "url.full": "https://shop.example/cart?x=1",
                "url.path": "/cart",
                "consent": "analytics, marketing,,",
                "gpc": True,
                "dnt": False,
                "client.address": "203.0.113.7",
                "app.property.plan": "pro",
                "app.property.items": 3,
                "app.property.total": 19.5,
                "app.property.gift": False,
                "app.property.tags": ["a", "b"],
                "app.property.": "no name",
            }
        ),
        "event",
        {
            "time": T_MS,
            "event": "checkout",
            "feature": "cart",
            "action": "click",
            "user_id": "u-42",
            "session_id": "s-1",
            "url": "https://shop.example/cart?x=1",
            "consent": ["analytics", "marketing"],
            "gpc": True,
            "dnt": False,
            "properties": {"plan": "pro", "items": 3, "total": 19.5, "gift": False},
        },
        id="event-attribute",
    ),
    pytest.param(
        log({"url.path": "/signup", "consent": ["analytics"]}, event_name="signup"),
        "event",
        {"time": T_MS, "event": "signup", "url": "/signup", "consent": ["analytics"]},
        id="event-field",
    ),
    pytest.param(
        log(
            {
                "mail.imb": "0123456709498765432101234567891",
                "mail.event": "delivered",
                "mail.facility_zip": "20260",
                "mail.operation_code": "918",
                "mail.class": "first_class",
                "mail.delivery_status": "delivered",
                "client.address": "203.0.113.7",
                "device.id": "scanner-1",
            }
        ),
        "mail_scan",
        {
            "time": T_MS,
            "imb": "0123456709498765432101234567891",
            "event": "delivered",
            "facility_zip": "20260",
            "operation_code": "918",
            "mail_class": "first_class",
            "delivery_status": "delivered",
        },
        id="mail_scan",
    ),
    pytest.param(
        log({"mail.imb": "ADFT" * 16 + "A", "event.name": "processed", "mail.event": "x"}),
        "mail_scan",
        {"time": T_MS, "imb": "ADFT" * 16 + "A", "event": "processed"},
        id="mail_scan-event-name-first",
    ),
]


@pytest.mark.parametrize("media", [PROTOBUF, JSON])
@pytest.mark.parametrize(("record", "kind", "expected"), KIND_CASES)
def test_each_kind_in_both_encodings(
    record: LogRecord, kind: str, expected: dict[str, Any], media: str
) -> None:
    assert one(request(record), media) == OtlpItem(kind, expected)


def test_kind_precedence_mail_then_event_then_device_then_access() -> None:
    everything = {"mail.imb": "1", "event.name": "e", "device.id": "d", "client.address": "::1"}
    kinds = []
    for drop in ("", "mail.imb", "event.name", "device.id"):
        everything.pop(drop, None)
        item = one(request(log(everything)))
        assert isinstance(item, OtlpItem)
        kinds.append(item.kind)
    assert kinds == ["mail_scan", "event", "device", "access_log"]


def test_event_name_field_wins_over_attribute() -> None:
    item = one(request(log({"event.name": "old"}, event_name="new")))
    assert item == OtlpItem("event", {"time": T_MS, "event": "new"})


def test_record_attributes_override_resource_attributes() -> None:
    resource = {
        "service.name": "shop",
        "service.version": "1.0",
        "client.address": "198.51.100.1",
        "enduser.id": "from-resource",
        "app.property.region": "eu",  # properties come from the record only
    }
    req = request(
        log({"client.address": "203.0.113.7", "url.path": "/a"}),
        log({"device.id": "d-1", "service.version": "2.0"}),
        log({"event.name": "e", "app.property.plan": "pro"}),
        log({}),  # the resource alone says what it is
        resource=resource,
    )
    assert decode(req) == [
        OtlpItem(
            "access_log",
            {
                "time": T_MS,
                "ip": "203.0.113.7",
                "path": "/a",
                "user_id": "from-resource",
                "service": "shop",
            },
        ),
        OtlpItem(
            "device",
            {
                "time": T_MS,
                "device_id": "d-1",
                "user_id": "from-resource",
                "app_version": "2.0",
                "ip": "198.51.100.1",
            },
        ),
        OtlpItem(
            "event",
            {"time": T_MS, "event": "e", "user_id": "from-resource", "properties": {"plan": "pro"}},
        ),
        OtlpItem(
            "access_log",
            {"time": T_MS, "ip": "198.51.100.1", "user_id": "from-resource", "service": "shop"},
        ),
    ]


def test_several_resources_and_scopes_keep_their_order() -> None:
    req = ExportLogsServiceRequest(
        resource_logs=[
            ResourceLogs(
                resource=Resource(attributes=attributes({"service.name": name})),
                scope_logs=[
                    ScopeLogs(log_records=[log({"client.address": f"10.0.0.{i}"})]) for i in (1, 2)
                ],
            )
            for name in ("a", "b")
        ]
    )
    got = [(i.record["service"], i.record["ip"]) for i in decode(req) if isinstance(i, OtlpItem)]
    assert got == [("a", "10.0.0.1"), ("a", "10.0.0.2"), ("b", "10.0.0.1"), ("b", "10.0.0.2")]


@pytest.mark.parametrize("media", [PROTOBUF, JSON])
@pytest.mark.parametrize(
    ("time_ns", "observed_ns", "expected"),
    [
        (T_NS, 1_000_000_000_000_000_000, T_MS),  # the event time wins
        (0, T_NS, T_MS),  # then when the SDK observed it
        (0, 0, None),  # then the receive time, set later by the collector
        (1_999_999, 0, 1),  # milliseconds are cut, not rounded
    ],
)
def test_time_fallbacks(time_ns: int, observed_ns: int, expected: int | None, media: str) -> None:
    item = one(request(log({"client.address": "::1"}, time_ns, observed_ns)), media)
    assert isinstance(item, OtlpItem)
    assert item.record.get("time") == expected
    assert ("time" in item.record) is (expected is not None)


def test_unmapped_record_is_a_failure_beside_good_ones() -> None:
    req = request(
        log({"client.address": "::1"}),
        log({"user_agent.original": SECRET, "url.path": "/x"}),
        log({"device.id": "d"}),
    )
    items = decode(req)
    assert items[1] == OtlpFailure(UNMAPPED)
    assert [type(i) for i in items] == [OtlpItem, OtlpFailure, OtlpItem]
    assert UNMAPPED == (
        "log record has none of the attributes that map it to a record kind "
        "(client.address, http.request.method or http.method, device.id, event.name, mail.imb)"
    )


@pytest.mark.parametrize(
    "value",
    [[SECRET], {"ip": SECRET}, SECRET.encode(), None],
    ids=["array", "kvlist", "bytes", "empty"],
)
def test_non_scalar_values_count_as_absent(value: Any) -> None:
    record = log({"url.path": "/x"})
    record.attributes.append(
        KeyValue(key="client.address", value=AnyValue() if value is None else any_value(value))
    )
    assert one(request(record)) == OtlpFailure(UNMAPPED)


def test_wrong_typed_values_pass_through_for_the_validator_to_name() -> None:
    item = one(
        request(
            log(
                {
                    "client.address": 2130706433,
                    "http.response.status_code": "200",
                    "http.server.request.duration": "fast",
                    "http.request.header.referer": 7,
                    "url.path": True,
                }
            )
        )
    )
    assert item == OtlpItem(
        "access_log",
        {
            "time": T_MS,
            "ip": 2130706433,
            "status": "200",
            "duration_ms": "fast",
            "referrer": 7,
            "path": True,
        },
    )


@pytest.mark.parametrize(
    ("attrs", "error"),
    [
        ({"url.path": "/p", "url.query": 7}, "attribute url.query must be a string"),
        ({"url.path": 7, "url.query": "q"}, "attribute url.path must be a string"),
        (
            {"http.server.request.duration": float("inf")},
            "attribute http.server.request.duration must be a finite number",
        ),
        (
            {"http.server.request.duration": float("nan")},
            "attribute http.server.request.duration must be a finite number",
        ),
    ],
)
def test_attributes_that_cannot_be_converted_fail_that_record(
    attrs: dict[str, Any], error: str
) -> None:
    item = one(request(log({"client.address": SECRET, **attrs})))
    assert item == OtlpFailure(error)
    assert SECRET not in item.error


@pytest.mark.parametrize(
    ("attrs", "fields"),
    [
        ({"url.query": "a=1"}, {}),  # a query without a path is not kept
        ({"url.path": "/p", "url.query": "?a=1"}, {"path": "/p?a=1"}),
        ({"url.path": "/p", "url.query": ""}, {"path": "/p?"}),
        ({"http.server.request.duration": 2}, {"duration_ms": 2000.0}),
        ({"http.request.header.referer": []}, {}),
        ({"http.request.header.referer": ["https://a/", "https://b/"]}, {"referrer": "https://a/"}),
    ],
)
def test_access_log_conversions(attrs: dict[str, Any], fields: dict[str, Any]) -> None:
    item = one(request(log({"client.address": "::1", **attrs})))
    assert item == OtlpItem("access_log", {"time": T_MS, "ip": "::1", **fields})


def test_consent_forms() -> None:
    def consent(value: Any) -> Any:
        item = one(request(log({"event.name": "e", "consent": value})))
        assert isinstance(item, OtlpItem)
        return item.record["consent"]

    assert consent("analytics") == ["analytics"]
    assert consent(" a ,b,, c ") == ["a", "b", "c"]
    assert consent("") == []
    assert consent(["a", "b"]) == ["a", "b"]
    assert consent(True) is True  # the wrong type, for the validator to reject


def test_url_full_then_url_path_for_events() -> None:
    item = one(request(log({"event.name": "e", "url.path": "/only-path"})))
    assert item == OtlpItem("event", {"time": T_MS, "event": "e", "url": "/only-path"})


# The OTLP/JSON example of the spec: hex ids (upper case, and one of an odd length that protobuf's
# base64 reading would refuse), 64-bit ints as strings, enums as integers, fields we do not know.
SPEC_JSON = """
{
  "resourceLogs": [
    {
      "resource": {
        "attributes": [
          {"key": "service.name", "value": {"stringValue": "my.service"}},
          {"key": "service.version", "value": {"stringValue": "1.2.3"}}
        ],
        "entityRefs": [{"type": "service"}]
      },
      "scopeLogs": [
        {
          "scope": {
            "name": "my.library",
            "version": "1.0.0",
            "attributes": [{"key": "my.scope.attribute", "value": {"stringValue": "s"}}]
          },
          "logRecords": [
            {
              "timeUnixNano": "1767225600123456789",
              "observedTimeUnixNano": "1767225600999999999",
              "severityNumber": 10,
              "severityText": "Information",
              "traceId": "5B8EFFF798038103D269B633813FC60C",
              "spanId": "EEE19B7EC3C1B174",
              "flags": 1,
              "body": {"stringValue": "Example log record"},
              "attributes": [
                {"key": "client.address", "value": {"stringValue": "203.0.113.9"}},
                {"key": "http.request.method", "value": {"stringValue": "GET"}},
                {"key": "url.path", "value": {"stringValue": "/docs"}},
                {"key": "http.response.status_code", "value": {"intValue": "404"}},
                {"key": "http.response.body.size", "value": {"intValue": 17}},
                {"key": "http.server.request.duration", "value": {"doubleValue": 0.0125}},
                {"key": "enduser.id", "value": {"intValue": "9007199254740993"}},
                {"key": "array.attribute", "value": {"arrayValue": {"values": [
                  {"stringValue": "many"}, {"intValue": "2"}]}}},
                {"key": "map.attribute", "value": {"kvlistValue": {"values": [
                  {"key": "some.map.key", "value": {"stringValue": "some value"}}]}}},
                {"key": "new.kind", "value": {"someFutureValue": 1}}
              ],
              "futureField": {"x": 1}
            },
            {
              "observedTimeUnixNano": 1767225600123999999,
              "severityNumber": 9,
              "trace_id": "abc",
              "span_id": "0",
              "eventName": "signup",
              "attributes": [
                {"key": "gpc", "value": {"boolValue": true}},
                {"key": "app.property.step", "value": {"intValue": "2"}}
              ]
            },
            {
              "timeUnixNano": "1767225600123456789",
              "traceId": "",
              "attributes": [{"key": "mail.imb", "value": {"stringValue": "00270123456200800001"}}]
            },
            {
              "attributes": [{"key": "note", "value": {"stringValue": "nothing to map"}}]
            }
          ]
        }
      ]
    }
  ]
}
"""


@pytest.mark.parametrize(
    "content_type", [JSON, "application/json; charset=utf-8", "Application/JSON"]
)
def test_hand_written_otlp_json(content_type: str) -> None:
    assert decode_otlp_logs(SPEC_JSON.encode(), content_type) == [
        OtlpItem(
            "access_log",
            {
                "time": T_MS,
                "ip": "203.0.113.9",
                "method": "GET",
                "path": "/docs",
                "status": 404,
                "bytes": 17,
                "duration_ms": 12.5,
                "user_id": 9007199254740993,
                "service": "my.service",
            },
        ),
        OtlpItem(
            "event",
            {"time": T_MS, "event": "signup", "gpc": True, "properties": {"step": 2}},
        ),
        OtlpItem("mail_scan", {"time": T_MS, "imb": "00270123456200800001"}),
        OtlpFailure(UNMAPPED),
    ]


def test_proto_field_names_are_read_in_json_too() -> None:
    body = json_format.MessageToJson(
        request(log({"client.address": "::1"})), preserving_proto_field_name=True
    )
    assert '"resource_logs"' in body
    assert decode_otlp_logs(body.encode(), JSON) == [
        OtlpItem("access_log", {"time": T_MS, "ip": "::1"})
    ]


def test_unknown_enum_names_are_ignored_like_unknown_fields() -> None:
    body = (
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"severityNumber": "LOUD", '
        b'"attributes": [{"key": "client.address", "value": {"stringValue": "::1"}}]}]}]}]}'
    )
    assert decode_otlp_logs(body, JSON) == [OtlpItem("access_log", {"ip": "::1"})]


@pytest.mark.parametrize(("body", "media"), [(b"", PROTOBUF), (b"{}", JSON)])
def test_empty_request_has_no_records(body: bytes, media: str) -> None:
    assert decode_otlp_logs(body, media) == []


def _field(number: int, payload: bytes) -> bytes:
    """A length-delimited protobuf field, written by hand to build what the classes would not."""
    size = bytearray()
    n = len(payload)
    while n >= 0x80:
        size.append(n & 0x7F | 0x80)
        n >>= 7
    size.append(n)
    return bytes([number << 3 | 2]) + bytes(size) + payload


def _nested_body(depth: int) -> bytes:
    """A request whose one log record has a body of arrays `depth` deep."""
    value = AnyValue(string_value="x").SerializeToString()
    for _ in range(depth):
        value = _field(5, _field(1, value))  # AnyValue.array_value -> ArrayValue.values
    return _field(1, _field(2, _field(2, _field(5, value))))  # resource, scope, record, body


def test_moderately_nested_protobuf_is_fine() -> None:
    assert decode_otlp_logs(_nested_body(20), PROTOBUF) == [OtlpFailure(UNMAPPED)]


@pytest.mark.parametrize(
    "body",
    [
        b"not a protobuf",
        b"\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff\xff",
        b"\x0a\x05\x12\x03",  # a length that runs past the end
        b"\x0a\x04\x1a\x02\xc3\x28",  # resource_logs.schema_url that is not UTF-8
        b"\x0a\x04\x12\x02\x0a\x00" + b"\x0a\x02\xc3\x28",  # a field tag that is not one
        _nested_body(200),  # over the parser's nesting limit
    ],
    ids=["text", "varint", "truncated", "utf8", "tag", "deep"],
)
def test_garbage_protobuf_is_400(body: bytes) -> None:
    with pytest.raises(BadRequest):
        decode_otlp_logs(body, PROTOBUF)


@pytest.mark.parametrize(
    "body",
    [
        b"",
        b"not json",
        b"\xff\xfe{}",
        b"[]",
        b'"resourceLogs"',
        b'{"resourceLogs": {}}',
        b'{"resourceLogs": [1]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": -1}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": "soon"}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": {"a": 1}}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k", '
        b'"value": {"intValue": "alice@example.com"}}]}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"attributes": [{"key": "k", '
        b'"value": {"stringValue": "a", "intValue": 1}}]}]}]}]}',
        b'{"resourceLogs": [{"scopeLogs": [{"logRecords": [{"body": '
        + b'{"arrayValue": {"values": [' * 200
        + b"]}}" * 200
        + b"}]}]}]}",
    ],
)
def test_garbage_json_is_400_without_values_in_the_detail(body: bytes) -> None:
    with pytest.raises(BadRequest) as e:
        decode_otlp_logs(body, JSON)
    assert SECRET not in str(e.value) and SECRET not in e.value.detail


@pytest.mark.parametrize(
    "content_type",
    ["", "application/octet-stream", "text/plain", "application/x-ndjson", "application/protobuf"],
)
def test_other_content_types_are_415(content_type: str) -> None:
    body = request(log({"client.address": "::1"})).SerializeToString()
    with pytest.raises(UnsupportedMediaType):
        decode_otlp_logs(body, content_type)
    with pytest.raises(UnsupportedMediaType):
        encode_response(content_type, 0, "")


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(body=st.binary(max_size=200), media=st.sampled_from([PROTOBUF, JSON]))
def test_any_bytes_decode_or_400(body: bytes, media: str) -> None:
    try:
        items = decode_otlp_logs(body, media)
    except BadRequest:
        return
    assert all(isinstance(i, OtlpItem | OtlpFailure) for i in items)


_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=8),
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=12), inner, max_size=3)
    ),
    max_leaves=12,
)
_json_record = st.fixed_dictionaries(
    {},
    optional={
        "timeUnixNano": _json_values,
        "traceId": _json_values,
        "eventName": _json_values,
        "attributes": st.lists(
            st.fixed_dictionaries({"key": _json_values, "value": _json_values}), max_size=3
        ),
    },
)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    record=_json_record | _json_values,
    doc=st.sampled_from(["resourceLogs", "resource_logs"]),
)
def test_any_json_shape_decodes_or_400(record: Any, doc: str) -> None:
    body = json.dumps({doc: [{"scopeLogs": [{"logRecords": [record]}]}]}).encode()
    try:
        items = decode_otlp_logs(body, JSON)
    except BadRequest:
        return
    assert all(isinstance(i, OtlpItem | OtlpFailure) for i in items)


@pytest.mark.parametrize("content_type", [PROTOBUF, JSON])
@pytest.mark.parametrize(("rejected", "message"), [(0, ""), (0, "ignored"), (3, "3 records: ip")])
def test_encode_response_round_trips(content_type: str, rejected: int, message: str) -> None:
    body = encode_response(content_type, rejected, message)
    response = ExportLogsServiceResponse()
    if content_type == PROTOBUF:
        response.ParseFromString(body)
    else:
        json_format.Parse(body, response)
        assert json.loads(body) == (
            {"partialSuccess": {"rejectedLogRecords": "3", "errorMessage": message}}
            if rejected
            else {}
        )
    assert response.HasField("partial_success") is (rejected > 0)
    assert response.partial_success.rejected_log_records == rejected
    assert response.partial_success.error_message == (message if rejected else "")
    if not rejected and content_type == PROTOBUF:
        assert body == b""  # a full success is the empty message


# --- the real OpenTelemetry Python SDK, exporting over HTTP to a local server ---


def _emit_with_sdk(endpoint: str, compression: str) -> None:
    """The SDK's exporter is synchronous (requests), so this runs in a thread beside the server."""
    from opentelemetry._logs import SeverityNumber
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import BatchLogRecordProcessor
    from opentelemetry.sdk.resources import Resource as SdkResource

    exporter = OTLPLogExporter(endpoint=endpoint, compression=Compression(compression), timeout=5)
    provider = LoggerProvider(
        resource=SdkResource.create({"service.name": "shop", "service.version": "2.1.0"}),
        shutdown_on_exit=False,
    )
    provider.add_log_record_processor(BatchLogRecordProcessor(exporter))
    logger = provider.get_logger("tests.otlp", "1.0")
    logger.emit(
        timestamp=T_NS,
        severity_number=SeverityNumber.INFO,
        body="GET /pricing 200",
        attributes={
            "client.address": "203.0.113.7",
            "http.request.method": "GET",
            "url.path": "/pricing",
            "url.query": "plan=pro",
            "http.response.status_code": 200,
            "http.server.request.duration": 0.5,
            "http.request.header.referer": ("https://ref.example/",),
            "enduser.id": "u-42",
            "user_agent.original": "Mozilla/5.0",
        },
    )
    logger.emit(  # no timestamp: the SDK sets only the observed time
        event_name="signup",
        attributes={"enduser.id": "u-42", "app.feature": "onboarding", "app.property.step": 2},
    )
    logger.emit(body="a plain log line without attributes we map")
    assert provider.force_flush(5_000)
    provider.shutdown()


@pytest.mark.parametrize("compression", ["none", "gzip"])
async def test_real_sdk_exporter(aiohttp_server: ServerFactory, compression: str) -> None:
    captured: list[tuple[str, bytes]] = []

    async def receive(request: web.Request) -> web.Response:
        body = await request.read()  # aiohttp inflates a gzip body, as in the service
        captured.append((request.content_type, body))
        return web.Response(
            body=encode_response(request.content_type, 0, ""), content_type=PROTOBUF
        )

    app = web.Application()
    app.router.add_post("/otlp/v1/logs", receive)
    server = await aiohttp_server(app)
    before_ms = time.time_ns() // 1_000_000
    await asyncio.to_thread(_emit_with_sdk, str(server.make_url("/otlp/v1/logs")), compression)
    after_ms = time.time_ns() // 1_000_000

    assert captured and {content_type for content_type, _ in captured} == {PROTOBUF}
    items = [item for ct, body in captured for item in decode_otlp_logs(body, ct)]
    assert len(items) == 3
    access, event, plain = items
    assert access == OtlpItem(
        "access_log",
        {
            "time": T_MS,
            "ip": "203.0.113.7",
            "method": "GET",
            "path": "/pricing?plan=pro",
            "status": 200,
            "duration_ms": 500.0,
            "referrer": "https://ref.example/",
            "user_agent": "Mozilla/5.0",
            "user_id": "u-42",
            "service": "shop",
        },
    )
    assert isinstance(event, OtlpItem) and event.kind == "event"
    assert before_ms <= event.record.pop("time") <= after_ms
    assert event.record == {
        "event": "signup",
        "feature": "onboarding",
        "user_id": "u-42",
        "properties": {"step": 2},
    }
    assert plain == OtlpFailure(UNMAPPED)


# ---- bounded work: log records counted on the wire before the body is parsed


def test_protobuf_records_are_counted_without_parsing() -> None:
    from collector.otlp import count_protobuf_records

    req = request(*[log({"client.address": "::1"})] * 3, resource={"service.name": "s"})
    req.resource_logs.add().scope_logs.add().log_records.add()  # a second resource, one record
    body = req.SerializeToString()
    assert count_protobuf_records(body, 4) == 4
    with pytest.raises(PayloadTooLarge, match="more than 3 log records"):
        count_protobuf_records(body, 3)
    with pytest.raises(PayloadTooLarge, match="log records"):
        decode_otlp_logs(body, PROTOBUF, max_records=3)


def test_every_nested_message_counts_against_the_budget() -> None:
    """A parsed message costs ~50-100 bytes however short on the wire: empty containers,
    attributes and nested values all count (64 per allowed record)."""
    from collector.otlp import MESSAGES_PER_RECORD, count_protobuf_records

    assert MESSAGES_PER_RECORD == 64
    empty_resources = b"\x0a\x00" * 64  # 64 empty ResourceLogs: no records, but work
    assert count_protobuf_records(empty_resources, 1) == 0
    with pytest.raises(PayloadTooLarge, match="more than 64 protobuf messages"):
        count_protobuf_records(empty_resources + b"\x0a\x00", 1)
    one = request(log({f"a{i}": "" for i in range(59)}))  # 3 containers + 59 x (KeyValue, AnyValue)
    with pytest.raises(PayloadTooLarge, match="protobuf messages"):
        count_protobuf_records(one.SerializeToString(), 1)
    assert count_protobuf_records(one.SerializeToString(), 2) == 1
    nested = request(log({"client.address": "::1"}))
    value: Any = "x"
    for _ in range(40):
        value = [value]
    nested.resource_logs[0].scope_logs[0].log_records[0].body.CopyFrom(any_value(value))
    with pytest.raises(PayloadTooLarge, match="protobuf messages"):
        count_protobuf_records(nested.SerializeToString(), 1)


@pytest.mark.parametrize("where", ["collector.otlp:LOGS", "collector.otlp_traces:TRACES"])
def test_the_short_walk_follows_the_schema_down_to_the_records(where: str) -> None:
    import importlib

    module, name = where.split(":")
    signal = getattr(importlib.import_module(module), name)
    for kind, fields in signal.outer.items():
        assert all(signal.schema[kind][number] == child for number, child in fields.items()), kind
    assert signal.record in signal.outer
    assert "opentelemetry.proto.common.v1.KeyValue" in signal.schema


def test_an_attribute_bomb_is_refused_before_parsing() -> None:
    """10 MiB of empty attributes in one LogRecord would parse into ~300 MB."""
    from collector.otlp import count_protobuf_records

    log_record = b"\x32\x00" * 5_000_000
    scope_logs = b"\x12" + _varint(len(log_record)) + log_record
    resource_logs = b"\x12" + _varint(len(scope_logs)) + scope_logs
    body = b"\x0a" + _varint(len(resource_logs)) + resource_logs
    with pytest.raises(PayloadTooLarge, match="more than 640000 protobuf messages"):
        count_protobuf_records(body, 10_000)


def test_a_bomb_of_empty_log_records_stops_at_the_limit() -> None:
    from collector.otlp import count_protobuf_records

    records = b"\x12\x00" * 2_000_000  # 4 MB: two million empty LogRecords
    resource_logs = b"\x12" + _varint(len(records)) + records  # one ScopeLogs holding them
    body = b"\x0a" + _varint(len(resource_logs)) + resource_logs
    with pytest.raises(PayloadTooLarge, match="more than 10000 log records"):
        count_protobuf_records(body, 10_000)


def _varint(n: int) -> bytes:
    out = bytearray()
    while n >= 0x80:
        out.append(n & 0x7F | 0x80)
        n >>= 7
    return bytes(out) + bytes([n])


@pytest.mark.parametrize("body", [b"\x0a\x05\x12\x03", b"\x0f", b"\x0a\x02\x12\x05"])
def test_broken_wire_format_is_400_from_the_counter(body: bytes) -> None:
    from collector.otlp import count_protobuf_records

    with pytest.raises(BadRequest):
        count_protobuf_records(body, 10)


def test_json_records_are_counted_before_parse_dict() -> None:
    body = encode(request(*[log({"client.address": "::1"})] * 3), JSON)
    assert len(decode_otlp_logs(body, JSON, max_records=3)) == 3
    with pytest.raises(PayloadTooLarge, match="3 records"):
        decode_otlp_logs(body, JSON, max_records=2)


def test_a_bomb_of_unknown_scalar_fields_stops_at_the_field_budget() -> None:
    """`0x20 0x20 ...` is an unknown varint field repeated: no message, no record, but a turn
    of the walk each (64 MiB of it was ~30 s of CPU and then a 200)."""
    from collector.otlp import FIELDS_PER_RECORD, count_protobuf_records

    assert count_protobuf_records(b"\x20\x20" * FIELDS_PER_RECORD, 1) == 0
    with pytest.raises(PayloadTooLarge, match=f"more than {FIELDS_PER_RECORD} protobuf fields"):
        count_protobuf_records(b"\x20\x20" * (FIELDS_PER_RECORD + 1), 1)
    with pytest.raises(PayloadTooLarge, match="protobuf fields"):
        decode_otlp_logs(b"\x20\x20" * 2_000_000, PROTOBUF, max_records=10_000)
    # a record at the message budget with string attributes still fits
    full = request(log({f"a{i}": "v" for i in range(29)}))
    assert count_protobuf_records(full.SerializeToString(), 1) == 1
