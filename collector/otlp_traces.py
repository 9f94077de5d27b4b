"""OTLP/HTTP trace exports (`POST /otlp/v1/traces`) -> access records.

A server span of an HTTP request (kind SERVER, with `http.request.method` or the older
`http.method`) says what an access-log line says: who asked (client.address...), what
(url.path, http.route...), the answer (http.response.status_code) and how long it took (the
span's end minus its start). Those spans become access records through the same attribute
mapping as OTLP log records (collector/otlp.py, current and older semantic-convention names);
every other span (internal, client, producer, consumer, or a server span of no HTTP request) is
not stored, and is counted in the answer's `partial_success.rejected_spans` with a message
saying why, as the OTLP specification asks of a receiver that drops part of an export.

The same bounds as logs apply: spans are counted on the wire before the body is parsed (413
beyond `max_records`, or beyond the message and field budgets per span), OTLP/JSON is counted
by its structural characters first, and nothing here echoes a value.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import orjson
from google.protobuf import json_format
from google.protobuf.message import DecodeError
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.proto.trace.v1.trace_pb2 import ResourceSpans, ScopeSpans, Span

from collector.decode import check_count
from collector.errors import BadRequest
from collector.otlp import (
    HTTP_METHOD,
    JSON,
    PROTOBUF,
    OtlpFailure,
    OtlpItem,
    Signal,
    _attributes,
    _media_type,
    _Unmappable,
    _View,
    access_record,
    children,
    count_protobuf_records,
    json_message,
    json_object,
)

TRACES = Signal.of(ExportTraceServiceRequest, ResourceSpans, ScopeSpans, Span, "spans")
NOT_HTTP_SERVER = "not an HTTP server span (kind SERVER with http.request.method): not stored"
# hex ids (read as base64 by protobuf's JSON mapping) and parts we do not use: dropped unparsed
_DROPPED = (
    "traceId",
    "trace_id",
    "spanId",
    "span_id",
    "parentSpanId",
    "parent_span_id",
    "links",
    "events",
)


@dataclass(frozen=True, slots=True)
class NotHttpServer:
    """A span that is not an HTTP server span: counted, not stored."""


NOT_SERVER = NotHttpServer()
SpanItem = OtlpItem | OtlpFailure | NotHttpServer


def decode_traces_lazily(
    body: bytes, content_type: str, max_records: int
) -> tuple[int, Iterator[SpanItem]]:
    """The number of spans, and the spans mapped one by one as they are taken."""
    media = _media_type(content_type)
    if media == PROTOBUF:
        count = count_protobuf_records(body, max_records, TRACES)
        request = ExportTraceServiceRequest()
        try:
            request.ParseFromString(body)
        except DecodeError:
            raise BadRequest("body is not a protobuf ExportTraceServiceRequest") from None
    else:
        request, count = _parse_json(body, max_records)
    return count, _mapped(request)


def _parse_json(body: bytes, max_records: int) -> tuple[ExportTraceServiceRequest, int]:
    doc = json_object(body, max_records, "ExportTraceServiceRequest")
    count = 0
    for resource_spans in children(doc, "resourceSpans", "resource_spans"):
        for scope_spans in children(resource_spans, "scopeSpans", "scope_spans"):
            for span in children(scope_spans, "spans"):
                count += 1
                for name in _DROPPED:
                    span.pop(name, None)
    check_count(count, max_records)
    return json_message(doc, ExportTraceServiceRequest()), count


def _mapped(request: ExportTraceServiceRequest) -> Iterator[SpanItem]:
    for resource_spans in request.resource_spans:
        resource = _attributes(resource_spans.resource.attributes)
        for scope_spans in resource_spans.scope_spans:
            for span in scope_spans.spans:
                if span.kind != Span.SPAN_KIND_SERVER:
                    yield NOT_SERVER
                    continue
                view = _View(resource, _attributes(span.attributes))
                if not any(view.has(name) for name in HTTP_METHOD):
                    yield NOT_SERVER
                    continue
                try:
                    yield OtlpItem("access_log", _span_record(span, view))
                except _Unmappable as e:
                    yield OtlpFailure(str(e))


def _span_record(span: Span, view: _View) -> dict[str, Any]:
    record = access_record(view)
    if span.start_time_unix_nano:
        record["time"] = span.start_time_unix_nano // 1_000_000
        if span.end_time_unix_nano >= span.start_time_unix_nano:
            record["duration_ms"] = (span.end_time_unix_nano - span.start_time_unix_nano) / 1e6
    return record


def encode_response(content_type: str, rejected: int, error_message: str) -> bytes:
    """ExportTraceServiceResponse; partial_success only when spans were rejected or not stored."""
    media = _media_type(content_type)
    response = ExportTraceServiceResponse()
    if rejected > 0:
        response.partial_success.rejected_spans = rejected
        response.partial_success.error_message = error_message
    if media == PROTOBUF:
        return response.SerializeToString()
    return orjson.dumps(json_format.MessageToDict(response))


__all__ = ["JSON", "NOT_HTTP_SERVER", "PROTOBUF", "TRACES", "decode_traces_lazily"]
