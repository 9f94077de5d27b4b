"""OTLP/HTTP log exports (`POST /otlp/v1/logs`) -> the collector's raw records.

Any OpenTelemetry SDK or collector can post to us, so the wire format is the official one: an
`ExportLogsServiceRequest`, as protobuf or as OTLP/JSON. Each LogRecord is mapped by the
semantic-convention attribute names onto one of our record kinds; the result is the same raw dict
a sender of that kind would post to its own endpoint, so validation and anonymization stay in one
place and an OTLP record gets no rule the native endpoints do not have.

Attribute values are copied as they come (string, int, double or bool): a value of the wrong type
reaches the validator, which rejects the record and names the field. Arrays, kvlists and bytes
carry nothing we map and count as absent. Nothing here ever puts a value into a message: they are
personal data.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError, Message
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import (
    ExportLogsServiceRequest,
    ExportLogsServiceResponse,
)
from opentelemetry.proto.common.v1.common_pb2 import AnyValue, KeyValue
from opentelemetry.proto.logs.v1.logs_pb2 import LogRecord, ResourceLogs, ScopeLogs

from collector.decode import check_count, check_json_values
from collector.errors import BadRequest, PayloadTooLarge, UnsupportedMediaType

PROTOBUF = "application/x-protobuf"
JSON = "application/json"

Scalar = str | int | float | bool
Attributes = dict[str, AnyValue]

UNMAPPED = (
    "log record has none of the attributes that map it to a record kind "
    "(client.address, http.request.method or http.method, device.id, event.name, mail.imb)"
)
_PROPERTY_PREFIX = "app.property."
# OTLP/JSON sends these as hex, which protobuf's JSON mapping would read as base64; we do not use
# them, so they are dropped before parsing rather than allowed to fail a whole request.
_ID_FIELDS = ("traceId", "trace_id", "spanId", "span_id")


@dataclass(frozen=True, slots=True)
class OtlpItem:
    """One mapped log record; `record` is validated later like a record posted natively."""

    kind: str  # "access_log" | "device" | "event" | "mail_scan"
    record: dict[str, Any]


@dataclass(frozen=True, slots=True)
class OtlpFailure:
    """A log record that could not be mapped; it costs only itself, not the request."""

    error: str  # names attributes and reasons, never values


class _Unmappable(Exception):
    """Raised while mapping one record; becomes that record's `OtlpFailure`."""


def _media_type(content_type: str) -> str:
    """The bare media type: senders add `; charset=utf-8` and vary the case."""
    media = content_type.partition(";")[0].strip().lower()
    if media not in (PROTOBUF, JSON):
        raise UnsupportedMediaType(f"Content-Type must be {PROTOBUF} or {JSON}")
    return media


def decode_otlp_logs(
    body: bytes, content_type: str, max_records: int = 10_000
) -> list[OtlpItem | OtlpFailure]:
    """Raises collector.errors.BadRequest when the body is not a valid ExportLogsServiceRequest
    in that encoding; UnsupportedMediaType for another content type; PayloadTooLarge when it holds
    more than `max_records` log records (counted before the body is parsed)."""
    return list(decode_otlp_lazily(body, content_type, max_records)[1])


def decode_otlp_lazily(
    body: bytes, content_type: str, max_records: int
) -> tuple[int, Iterator[OtlpItem | OtlpFailure]]:
    """The number of log records, and the records mapped one by one as they are taken (so the
    mapping can be sliced between yields to the event loop). Errors as `decode_otlp_logs`."""
    media = _media_type(content_type)
    if media == PROTOBUF:
        count = count_protobuf_records(body, max_records)
        request = _parse_protobuf(body)
    else:
        request, count = _parse_json(body, max_records)
    return count, _mapped(request)


def _mapped(request: ExportLogsServiceRequest) -> Iterator[OtlpItem | OtlpFailure]:
    for resource_logs in request.resource_logs:
        resource = _attributes(resource_logs.resource.attributes)
        for scope_logs in resource_logs.scope_logs:
            for log_record in scope_logs.log_records:
                try:
                    yield _map(log_record, resource)
                except _Unmappable as e:
                    yield OtlpFailure(str(e))


class _Malformed(Exception):
    """The protobuf wire format is broken where the counter walked."""


# Every parsed protobuf message costs ~50-100 bytes however few bytes it took on the wire (an
# empty LogRecord or KeyValue is 2 bytes): 10 MiB of empty attributes parse into ~300 MB. So the
# messages are counted on the wire first, within this budget per allowed record (a record with 30
# attributes is ~60 messages).
MESSAGES_PER_RECORD = 64
# Every field the walk reads costs a turn of a Python loop (~1 us), scalars and unknown fields
# too: 64 MiB of `0x20` (an unknown varint field, repeated) walked 32M fields in ~30 s. A real
# record reads about two fields per message (a KeyValue's key and value) plus a dozen scalars.
FIELDS_PER_RECORD = 2 * MESSAGES_PER_RECORD + 32


def _message_fields(descriptor: Any, table: dict[str, dict[int, str]]) -> dict[str, dict[int, str]]:
    """For each message type reachable from `descriptor`: field number -> message type, for its
    message-typed fields (taken from the installed schema, so a newer field is counted too)."""
    if descriptor.full_name not in table:
        fields = table[descriptor.full_name] = {}
        for f in descriptor.fields:
            if f.message_type is not None:
                fields[f.number] = f.message_type.full_name
                _message_fields(f.message_type, table)
    return table


@dataclass(frozen=True, slots=True)
class Signal:
    """The wire shape of one OTLP export request: its root message, the path down to its
    records (resource -> scope -> record, fields 1, 2, 2 for every signal), and the names used
    in messages."""

    schema: dict[str, dict[int, str]]  # every message type reachable from the root
    outer: dict[str, dict[int, str]]  # only the path down to the records
    root: str
    record: str
    what: str  # "log records", "spans"
    request: str  # "ExportLogsServiceRequest"

    @classmethod
    def of(cls, request: Any, resource: Any, scope: Any, record: Any, what: str) -> Signal:
        root = request.DESCRIPTOR.full_name
        leaf = record.DESCRIPTOR.full_name
        outer = {
            root: {1: resource.DESCRIPTOR.full_name},
            resource.DESCRIPTOR.full_name: {2: scope.DESCRIPTOR.full_name},
            scope.DESCRIPTOR.full_name: {2: leaf},
            leaf: {},
        }
        schema = _message_fields(request.DESCRIPTOR, {})
        return cls(schema, outer, root, leaf, what, request.DESCRIPTOR.name)


LOGS = Signal.of(ExportLogsServiceRequest, ResourceLogs, ScopeLogs, LogRecord, "log records")


def count_protobuf_records(body: bytes, max_records: int, signal: Signal = LOGS) -> int:
    """The records (log records, spans) of an export request, counted on the wire format before
    it is parsed, with every nested message on the way: 413 as soon as the records pass
    `max_records` or the messages pass `MESSAGES_PER_RECORD * max_records`; the walk stops
    there, so its cost is bounded too. 400 for a wire format broken where the walk goes. Only
    the path down to the records is walked when the body is too short to hold more messages
    than the budget (each takes at least 2 bytes), which saves the walk through every
    attribute."""
    budget = MESSAGES_PER_RECORD * max_records
    field_budget = FIELDS_PER_RECORD * max_records
    records = messages = fields = 0
    stack = [(0, len(body), signal.root)]
    size = len(body)
    schema = signal.schema if size // 2 > budget else signal.outer  # 10,000 records: over 1.25 MiB
    try:
        while stack:
            i, end, kind = stack.pop()
            children = schema[kind]
            while i < end:
                fields += 1
                if fields > field_budget:
                    raise PayloadTooLarge(
                        f"more than {field_budget} protobuf fields in one request "
                        f"({FIELDS_PER_RECORD} per record)"
                    )
                key, i = _varint(body, i)
                wire = key & 7
                if wire == 2:
                    n, i = _varint(body, i)
                    child = children.get(key >> 3)
                    if child is not None:
                        if i + n > end:
                            raise _Malformed
                        messages += 1
                        if messages > budget:
                            raise PayloadTooLarge(
                                f"more than {budget} protobuf messages in one request "
                                f"({MESSAGES_PER_RECORD} per record)"
                            )
                        if child == signal.record:
                            records += 1
                            if records > max_records:
                                raise PayloadTooLarge(
                                    f"more than {max_records} {signal.what} in one request; "
                                    f"the limit is {max_records}"
                                )
                        if schema[child]:  # a message with message fields: walk it
                            stack.append((i, i + n, child))
                    i += n
                elif wire == 0:
                    _, i = _varint(body, i)
                elif wire == 1:
                    i += 8
                elif wire == 5:
                    i += 4
                else:
                    raise _Malformed
            if i != end or end > size:
                raise _Malformed
    except _Malformed:
        raise BadRequest(f"body is not a protobuf {signal.request}") from None
    return records


def _varint(buf: bytes, i: int) -> tuple[int, int]:
    b = buf[i] if i < len(buf) else 0x100  # one byte: the common case
    if b < 0x80:
        return b, i + 1
    value = shift = 0
    while True:
        if i >= len(buf) or shift > 63:
            raise _Malformed
        b = buf[i]
        i += 1
        value |= (b & 0x7F) << shift
        if b < 0x80:
            return value, i
        shift += 7


def encode_response(content_type: str, rejected: int, error_message: str) -> bytes:
    """ExportLogsServiceResponse; partial_success set only when rejected > 0 (per OTLP/HTTP spec),
    encoded as protobuf or OTLP/JSON to match the request's content type."""
    media = _media_type(content_type)
    response = ExportLogsServiceResponse()
    if rejected > 0:
        response.partial_success.rejected_log_records = rejected
        response.partial_success.error_message = error_message
    body: bytes = (
        response.SerializeToString()
        if media == PROTOBUF
        else orjson.dumps(json_format.MessageToDict(response))
    )
    return body


def _parse_protobuf(body: bytes) -> ExportLogsServiceRequest:
    request = ExportLogsServiceRequest()
    try:
        request.ParseFromString(body)
    except DecodeError:
        # The parser's message is not passed on: it may quote bytes of the body.
        raise BadRequest("body is not a protobuf ExportLogsServiceRequest") from None
    return request


M = TypeVar("M", bound=Message)


def json_object(body: bytes, max_records: int, message: str) -> dict[str, Any]:
    """An OTLP/JSON body as its top-level object (logs and traces alike), its JSON values
    counted against the budget before anything is parsed."""
    check_json_values(body, max_records)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest("body is not valid JSON (or not UTF-8)") from None
    if not isinstance(doc, dict):
        raise BadRequest(f"OTLP/JSON body must be an {message} object")
    return doc


def json_message(doc: dict[str, Any], message: M) -> M:
    """`doc` parsed into `message` (unknown fields ignored, as OTLP/JSON receivers must)."""
    try:
        json_format.ParseDict(doc, message, ignore_unknown_fields=True)
    except (json_format.ParseError, ValueError, TypeError):
        # ParseError messages quote the offending value, so they are not passed on.
        name = type(message).__name__
        raise BadRequest(f"body is not an OTLP/JSON {name}") from None
    return message


def _parse_json(body: bytes, max_records: int) -> tuple[ExportLogsServiceRequest, int]:
    doc = json_object(body, max_records, "ExportLogsServiceRequest")
    count = _drop_ids(doc)
    check_count(count, max_records)
    return json_message(doc, ExportLogsServiceRequest()), count


def children(parent: Any, *names: str) -> Iterable[dict[str, Any]]:
    """The objects of a list field, under its JSON or its proto name; anything malformed is left
    to the real parser to reject."""
    if not isinstance(parent, dict):
        return ()
    for name in names:
        value = parent.get(name)
        if isinstance(value, list):
            return (item for item in value if isinstance(item, dict))
    return ()


def _drop_ids(doc: dict[str, Any]) -> int:
    """Drops the ids; the number of log records."""
    count = 0
    for resource_logs in children(doc, "resourceLogs", "resource_logs"):
        for scope_logs in children(resource_logs, "scopeLogs", "scope_logs"):
            for log_record in children(scope_logs, "logRecords", "log_records"):
                count += 1
                for name in _ID_FIELDS:
                    log_record.pop(name, None)
    return count


def _attributes(pairs: Iterable[KeyValue]) -> Attributes:
    return {kv.key: kv.value for kv in pairs}


def _scalar(value: AnyValue | None) -> Scalar | None:
    if value is None:
        return None
    which = value.WhichOneof("value")
    if which == "string_value":
        return value.string_value
    if which == "int_value":
        return value.int_value
    if which == "bool_value":
        return value.bool_value
    if which == "double_value":
        return value.double_value
    return None


class _View:
    """The attributes one record sees: its own over its resource's, as the OTel data model says."""

    __slots__ = ("attrs",)

    def __init__(self, resource: Attributes, own: Attributes) -> None:
        self.attrs = {**resource, **own} if resource else own

    def get(self, *keys: str) -> Scalar | None:
        """The first of `keys` present: the fallbacks are older or rarer convention names."""
        for key in keys:
            value = _scalar(self.attrs.get(key))
            if value is not None:
                return value
        return None

    def has(self, key: str) -> bool:
        return self.get(key) is not None

    def first(self, key: str) -> Scalar | None:
        """A scalar, or the first item of an array: HTTP header attributes are string arrays."""
        value = self.attrs.get(key)
        if value is not None and value.WhichOneof("value") == "array_value":
            items = value.array_value.values
            return _scalar(items[0]) if items else None
        return _scalar(value)


def _put(record: dict[str, Any], field: str, value: Any) -> None:
    if value is not None:
        record[field] = value


def _map(log_record: LogRecord, resource: Attributes) -> OtlpItem:
    view = _View(resource, _attributes(log_record.attributes))
    # `event_name` is a LogRecord field since proto 1.5; older senders use the attribute.
    event_name: str = getattr(log_record, "event_name", "") or ""
    if view.has("mail.imb"):
        kind, record = "mail_scan", _mail_scan(view, event_name)
    elif event_name or view.has("event.name"):
        kind, record = "event", _event(view, event_name, log_record)
    elif view.has("device.id"):
        kind, record = "device", _device(view)
    elif any(view.has(name) for name in ACCESS_MARKERS):
        kind, record = "access_log", access_record(view)
    else:
        raise _Unmappable(UNMAPPED)
    # Record time is when it happened; observed time (when the SDK saw it) is the best stand-in.
    nanos = log_record.time_unix_nano or log_record.observed_time_unix_nano
    if nanos:
        record["time"] = nanos // 1_000_000
    return OtlpItem(kind, record)


def _mail_scan(view: _View, event_name: str) -> dict[str, Any]:
    record: dict[str, Any] = {"imb": view.get("mail.imb")}
    _put(record, "event", event_name or view.get("event.name", "mail.event"))
    _put(record, "facility_zip", view.get("mail.facility_zip"))
    _put(record, "operation_code", view.get("mail.operation_code"))
    _put(record, "mail_class", view.get("mail.class"))
    _put(record, "delivery_status", view.get("mail.delivery_status"))
    return record


def _event(view: _View, event_name: str, log_record: LogRecord) -> dict[str, Any]:
    record: dict[str, Any] = {"event": event_name or view.get("event.name")}
    _put(record, "feature", view.get("app.feature"))
    _put(record, "action", view.get("app.action"))
    _put(record, "user_id", view.get("user.id", "enduser.id"))
    _put(record, "session_id", view.get("session.id"))
    _put(record, "url", view.get("url.full", "url.path"))
    _put(record, "consent", _consent(view))
    _put(record, "gpc", view.get("gpc"))
    _put(record, "dnt", view.get("dnt"))
    # Only the record's own attributes: a resource describes the sender, not this event.
    properties: dict[str, Scalar] = {}
    for kv in log_record.attributes:
        name = kv.key.removeprefix(_PROPERTY_PREFIX)
        value = _scalar(kv.value)
        if name and name != kv.key and value is not None:
            properties[name] = value
    if properties:
        record["properties"] = properties
    return record


def _consent(view: _View) -> Any:
    """Consent categories: a comma-separated string, or (the natural OTel form) a string array."""
    value = view.attrs.get("consent")
    if value is None:
        return None
    if value.WhichOneof("value") == "array_value":
        items = (_scalar(item) for item in value.array_value.values)
        return [item for item in items if item is not None]
    scalar = _scalar(value)
    if isinstance(scalar, str):
        return [part.strip() for part in scalar.split(",") if part.strip()]
    return scalar  # the wrong type: the validator rejects it by name


def _device(view: _View) -> dict[str, Any]:
    record: dict[str, Any] = {"device_id": view.get("device.id")}
    _put(record, "user_id", view.get("user.id", "enduser.id"))
    _put(record, "manufacturer", view.get("device.manufacturer"))
    _put(record, "model", view.get("device.model.name", "device.model.identifier"))
    _put(record, "os", view.get("os.name"))
    _put(record, "os_version", view.get("os.version"))
    _put(record, "app_version", view.get("service.version"))
    _put(record, "locale", view.get("app.locale"))
    _put(record, "screen", view.get("app.screen"))
    _put(record, "ip", view.get(*CLIENT_ADDRESS))
    _put(record, "user_agent", view.get("user_agent.original", "http.user_agent"))
    return record


# Current semantic-convention names first, then the older ones senders still emit (HTTP semconv
# before 1.21: http.method, http.target, http.url, http.status_code, http.user_agent, net.*).
CLIENT_ADDRESS = (
    "client.address",
    "http.client_ip",  # old: the original client (from X-Forwarded-For)
    "network.peer.address",  # the connecting peer: a proxy's address when there is one
    "net.sock.peer.addr",
    "net.peer.ip",
)
HTTP_METHOD = ("http.request.method", "http.method")
ACCESS_MARKERS = ("client.address", "http.client_ip", *HTTP_METHOD)


def access_record(view: _View) -> dict[str, Any]:
    """An access record from HTTP semantic-convention attributes (log record or server span)."""
    record: dict[str, Any] = {}
    _put(record, "ip", view.get(*CLIENT_ADDRESS))
    _put(record, "method", view.get(*HTTP_METHOD))
    _put(record, "host", _host(view))
    _put(record, "path", _path(view))
    _put(record, "status", view.get("http.response.status_code", "http.status_code"))
    _put(record, "bytes", view.get("http.response.body.size", "http.response_content_length"))
    _put(record, "duration_ms", _duration_ms(view))
    _put(record, "referrer", view.first("http.request.header.referer"))
    _put(record, "user_agent", view.get("user_agent.original", "http.user_agent"))
    _put(record, "user_id", view.get("user.id", "enduser.id"))
    _put(record, "session_id", view.get("session.id"))
    _put(record, "service", view.get("service.name"))
    return record


def _host(view: _View) -> Scalar | None:
    """`server.address` (its port is `server.port`), else the old `http.host` / `net.host.name`
    (which may carry a port: it is cut off)."""
    host = view.get("server.address", "http.host", "net.host.name")
    if isinstance(host, str) and not host.startswith("[") and host.count(":") == 1:
        host = host.partition(":")[0]
    return host


def _path(view: _View) -> Scalar | None:
    """Our `path` carries the query (the anonymizer filters its parameters); OTel splits them.
    Fallbacks: the old `http.target`, the full URL (`url.full`, old `http.url`: the validator
    takes its host), and last the route template (`http.route`, no personal data in it), which
    is all a server span may say about its path."""
    path = view.get("url.path")
    query = view.get("url.query")
    if path is None:
        return view.get("http.target", "url.full", "http.url", "http.route")
    if query is None:
        return path  # a query without a path has nothing to attach to and is not kept
    if not isinstance(path, str):
        raise _Unmappable("attribute url.path must be a string")
    if not isinstance(query, str):
        raise _Unmappable("attribute url.query must be a string")
    return f"{path}?{query.removeprefix('?')}"


def _duration_ms(view: _View) -> Scalar | None:
    """OTel measures durations in seconds, we store milliseconds."""
    seconds = view.get("http.server.request.duration")
    if seconds is None or isinstance(seconds, bool) or not isinstance(seconds, int | float):
        return seconds  # absent, or the wrong type for the validator to reject by name
    if not math.isfinite(seconds):
        raise _Unmappable("attribute http.server.request.duration must be a finite number")
    return seconds * 1000.0
