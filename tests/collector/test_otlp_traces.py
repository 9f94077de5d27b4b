"""OTLP traces -> access records: which spans map, the duration, and the same request bounds
as logs (spans counted on the wire before parsing)."""

from __future__ import annotations

import orjson
import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
from opentelemetry.proto.common.v1.common_pb2 import KeyValue
from opentelemetry.proto.trace.v1.trace_pb2 import Span

from collector.errors import BadRequest, PayloadTooLarge
from collector.otlp import OtlpItem
from collector.otlp_traces import NOT_SERVER, decode_traces_lazily

PB = "application/x-protobuf"


def request(*spans: tuple[int, dict[str, str]]) -> ExportTraceServiceRequest:
    out = ExportTraceServiceRequest()
    scope = out.resource_spans.add().scope_spans.add()
    for kind, attrs in spans:
        span = scope.spans.add(kind=kind, start_time_unix_nano=10**18, end_time_unix_nano=10**18 + 2_500_000)  # fmt: skip
        for key, value in attrs.items():
            span.attributes.append(KeyValue(key=key))
            span.attributes[-1].value.string_value = value
    return out


def test_server_spans_map_and_others_are_counted() -> None:
    body = request(
        (Span.SPAN_KIND_SERVER, {"http.method": "GET", "net.peer.ip": "192.0.2.4", "http.target": "/a"}),
        (Span.SPAN_KIND_SERVER, {"rpc.system": "grpc"}),
        (Span.SPAN_KIND_INTERNAL, {"http.request.method": "GET"}),
        (Span.SPAN_KIND_CLIENT, {"http.request.method": "GET"}),
    ).SerializeToString()  # fmt: skip
    count, items = decode_traces_lazily(body, PB, 10)
    mapped = list(items)
    assert count == 4 and mapped[1:] == [NOT_SERVER] * 3
    first = mapped[0]
    assert isinstance(first, OtlpItem) and first.kind == "access_log"
    assert first.record == {
        "ip": "192.0.2.4", "method": "GET", "path": "/a", "time": 10**12, "duration_ms": 2.5,
    }  # fmt: skip


def test_span_bounds_are_the_logs_bounds() -> None:
    many = request(*[(Span.SPAN_KIND_SERVER, {})] * 11).SerializeToString()
    with pytest.raises(PayloadTooLarge, match="more than 10 spans"):
        decode_traces_lazily(many, PB, 10)
    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [{"kind": 2}] * 11}]}]}
    with pytest.raises(PayloadTooLarge):
        decode_traces_lazily(orjson.dumps(doc), "application/json", 10)
    with pytest.raises(BadRequest, match="ExportTraceServiceRequest"):
        decode_traces_lazily(b"\x0a\xff\xff", PB, 10)
    with pytest.raises(BadRequest):
        decode_traces_lazily(b"[]", "application/json", 10)
