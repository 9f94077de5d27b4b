"""Access-log formats and OpenTelemetry traces into the running app: text parameters, declared
formats per tenant and per request, json-seq, numeric strings, the 415 message, OTLP traces
from the real OpenTelemetry SDK exporter (current and older attribute names), OTLP metrics."""

from __future__ import annotations

import asyncio
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any
from urllib.parse import quote

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceResponse

from tests.conftest import API_KEY, AppFactory, auth, query, tenants


def clf_now() -> str:
    return datetime.now(UTC).strftime("%d/%b/%Y:%H:%M:%S +0000")


def combined_line(ip: str = "198.51.100.20", tail: str = "") -> str:
    return (
        f'{ip} - - [{clf_now()}] "GET /pricing?utm_source=x HTTP/1.1" 200 512 '
        f'"https://www.example.org/" "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Firefox/128.0"{tail}'
    )


async def post_text(client: Any, body: str, path: str = "/v1/logs", **headers: str) -> Any:
    r = await client.post(
        path, data=body.encode(), headers=auth(**{"Content-Type": "text/plain", **headers})
    )
    return r.status, await r.json()


async def test_text_lines_take_service_and_host_from_the_request(start: AppFactory) -> None:
    client = await start()
    lines = [
        combined_line(),
        combined_line(tail=' "203.0.113.9, 10.0.0.2"').replace("198.51.100.20", "10.0.0.3", 1),
    ]
    status, body = await post_text(
        client, "\n".join(lines) + "\n", "/v1/logs?service=shop&host=www.example.com"
    )
    assert (status, body["accepted"], body["rejected"]) == (202, 2, 0)
    rows = query(client, "SELECT service, host, ip_prefix FROM access_log ORDER BY ip_prefix")
    assert rows == [
        {"service": "shop", "host": "www.example.com", "ip_prefix": "198.51.100.0/24"},
        {"service": "shop", "host": "www.example.com", "ip_prefix": "203.0.113.0/24"},
    ]  # the nginx `main` chain gave the client, never the proxy 10.0.0.3
    status, _ = await post_text(client, lines[0], "/v1/logs", **{"X-Log-Service": "api"})
    assert status == 202
    assert query(client, "SELECT count() AS n FROM access_log WHERE service = 'api'") == [{"n": 1}]


async def test_text_parameters_are_checked_and_never_echoed(start: AppFactory) -> None:
    client = await start()
    line = combined_line() + "\n"
    for params, name in (
        ("service=" + quote("a b<script>"), "service"),
        ("host=" + quote("x" * 300), "host"),
        ("format=syslog", "format"),
        ("nginx_format=" + quote("$a$b"), "nginx_format"),
        ("nginx_format=x&apache_format=y", "nginx_format"),
        ("service=a&service=b", "service"),
    ):
        status, body = await post_text(client, line, f"/v1/logs?{params}")
        assert status == 400 and body["detail"].startswith(name), (params, body)
        assert "script" not in body["detail"] and "xxxx" not in body["detail"]
    r = await client.post(
        "/v1/logs?service=shop",
        data=b'{"ip":"192.0.2.1"}',
        headers=auth(**{"Content-Type": "application/json"}),
    )
    assert r.status == 400 and "text/plain" in (await r.json())["detail"]


async def test_declared_formats_per_request_and_per_tenant(start: AppFactory) -> None:
    fmt = '$remote_addr [$time_local] "$request" $status $request_time'
    line = f'192.0.2.50 [{clf_now()}] "GET /a HTTP/1.1" 200 0.042\n'
    client = await start()
    status, body = await post_text(client, line, "/v1/logs?nginx_format=" + quote(fmt))
    assert (status, body["accepted"]) == (202, 1)
    status, body = await post_text(client, line)  # detected: none of the formats
    assert body["rejected"] == 1 and "tried: combined" in body["errors"][0]["error"]
    assert "192.0.2" not in orjson.dumps(body).decode()
    acme, globex = tenants()
    client2 = await start(tenants=(replace(acme, nginx_log_format=fmt), globex))
    status, body = await post_text(client2, line)
    assert (status, body["accepted"]) == (202, 1)
    # both apps share one data dir: the per-request and the per-tenant format stored the same
    assert query(client2, "SELECT duration_ms FROM access_log") == [{"duration_ms": 42.0}] * 2


async def test_json_seq_numeric_strings_and_the_415_message(start: AppFactory) -> None:
    client = await start()
    body = b'\x1e{"ip":"192.0.2.1","status":"404","bytes":"12"}\n\x1e{"ip":"192.0.2.2","status":"4o4"}\n'
    r = await client.post(
        "/v1/logs", data=body, headers=auth(**{"Content-Type": "application/json-seq"})
    )
    reply = await r.json()
    assert r.status == 202 and (reply["accepted"], reply["rejected"]) == (1, 1)
    assert reply["errors"][0]["field"] == "status"
    assert query(client, "SELECT status, bytes FROM access_log") == [{"status": 404, "bytes": 12}]
    r = await client.post("/v1/logs", data=b"x", headers=auth(**{"Content-Type": "text/csv"}))
    detail = (await r.json())["detail"]
    assert r.status == 415
    for media in ("application/json", "application/x-ndjson", "application/jsonl",
                  "application/json-seq", "text/plain"):  # fmt: skip
        assert media in detail
    r = await client.post("/v1/events", data=b"x", headers=auth(**{"Content-Type": "text/csv"}))
    assert "application/json-seq" in (await r.json())["detail"]


def export_spans_with_sdk(endpoint: str, now_ns: int) -> list[Any]:
    """The real SDK span exporter: server spans with current and with older attribute names,
    an internal span and a client span."""
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import SimpleSpanProcessor
    from opentelemetry.trace import SpanKind

    results: list[Any] = []

    class Recording(OTLPSpanExporter):  # type: ignore[misc]
        def export(self, spans: Any) -> Any:
            results.append(super().export(spans))
            return results[-1]

    exporter = Recording(
        endpoint=endpoint, headers={"Authorization": f"Bearer {API_KEY}"}, timeout=10
    )
    provider = TracerProvider(resource=Resource.create({"service.name": "shop"}))
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    tracer = provider.get_tracer("tests.formats")
    new = {
        "http.request.method": "GET", "url.path": "/orders/42", "url.query": "email=a@b.c&page=2",
        "http.route": "/orders/{id}", "http.response.status_code": 200,
        "client.address": "203.0.113.77", "server.address": "shop.example", "server.port": 443,
        "user_agent.original": "curl/8.5.0", "user.id": "olga",
    }  # fmt: skip
    old = {
        "http.method": "POST", "http.target": "/cart?coupon=x", "http.status_code": 201,
        "http.client_ip": "198.51.100.66", "net.peer.ip": "10.0.0.9", "http.host": "old.example:8080",
        "http.user_agent": "Mozilla/5.0", "enduser.id": "piotr",
    }  # fmt: skip
    span = tracer.start_span("GET /orders/{id}", kind=SpanKind.SERVER, attributes=new,
                             start_time=now_ns)  # fmt: skip
    span.end(end_time=now_ns + 12_500_000)
    span = tracer.start_span("POST /cart", kind=SpanKind.SERVER, attributes=old, start_time=now_ns)
    span.end(end_time=now_ns + 3_000_000)
    tracer.start_span("render", kind=SpanKind.INTERNAL, start_time=now_ns).end(end_time=now_ns + 1)
    client_span = tracer.start_span(
        "GET upstream", kind=SpanKind.CLIENT, attributes={"http.request.method": "GET"}
    )
    client_span.end()
    provider.shutdown()
    return results


async def test_sdk_span_exporter_old_and_new_attribute_names(start: AppFactory) -> None:
    client = await start()
    results = await asyncio.to_thread(
        export_spans_with_sdk, str(client.make_url("/otlp/v1/traces")), time.time_ns()
    )
    assert results and all(r.name == "SUCCESS" for r in results)
    rows = query(
        client,
        "SELECT method, host, path, status, duration_ms, ip_prefix, service, "
        "toUInt8(user_pseudonym != '') AS has_user FROM access_log ORDER BY method",
    )
    # the old span: http.client_ip is the client, never the peer (net.peer.ip)
    assert rows == [
        {"method": "GET", "host": "shop.example", "path": "/orders/42", "status": 200,
         "duration_ms": 12.5, "ip_prefix": "203.0.113.0/24", "service": "shop", "has_user": 1},
        {"method": "POST", "host": "old.example", "path": "/cart", "status": 201,
         "duration_ms": 3.0, "ip_prefix": "198.51.100.0/24", "service": "shop", "has_user": 1},
    ]  # fmt: skip


async def test_traces_partial_success_in_json_and_protobuf(start: AppFactory) -> None:
    client = await start()
    now = time.time_ns()

    def span(kind: int, attrs: dict[str, str]) -> dict[str, Any]:
        return {"traceId": "5b8efff798038103d269b633813fc60c", "spanId": "eee19b7ec3c1b174",
                "name": "s", "kind": kind, "startTimeUnixNano": str(now),
                "endTimeUnixNano": str(now + 1_000_000),
                "attributes": [{"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}  # fmt: skip

    doc = {"resourceSpans": [{"scopeSpans": [{"spans": [
        span(2, {"http.request.method": "GET", "client.address": "192.0.2.9", "url.path": "/"}),
        span(2, {"http.request.method": "GET", "client.address": "not-an-ip"}),
        span(1, {"http.request.method": "GET", "client.address": "192.0.2.9"}),
        span(2, {"db.system": "postgresql"}),
    ]}]}]}  # fmt: skip
    r = await client.post(
        "/otlp/v1/traces",
        data=orjson.dumps(doc),
        headers=auth(**{"Content-Type": "application/json"}),
    )
    assert r.status == 200
    reply = json_format.Parse(await r.text(), ExportTraceServiceResponse())
    assert reply.partial_success.rejected_spans == 3
    message = reply.partial_success.error_message
    assert "2 spans not an HTTP server span" in message and "field ip" in message
    assert "not-an-ip" not in message
    from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import ExportTraceServiceRequest
    from opentelemetry.proto.trace.v1.trace_pb2 import Span

    pb = ExportTraceServiceRequest()
    s = pb.resource_spans.add().scope_spans.add().spans.add()
    s.kind = Span.SPAN_KIND_CLIENT
    s.start_time_unix_nano = now
    r = await client.post(
        "/otlp/v1/traces",
        data=pb.SerializeToString(),
        headers=auth(**{"Content-Type": "application/x-protobuf"}),
    )
    reply = ExportTraceServiceResponse.FromString(await r.read())
    assert r.status == 200 and reply.partial_success.rejected_spans == 1
    assert query(client, "SELECT count() AS n FROM access_log") == [{"n": 1}]


async def test_otlp_logs_with_older_attribute_names(start: AppFactory) -> None:
    client = await start()
    now = str(time.time_ns())
    attrs = {"http.method": "GET", "http.client_ip": "198.51.100.5", "http.target": "/a?b=1",
             "http.status_code": "404", "http.user_agent": "curl/8", "user.id": "u1"}  # fmt: skip
    doc = {"resourceLogs": [{"scopeLogs": [{"logRecords": [{"timeUnixNano": now, "attributes": [
        {"key": k, "value": {"stringValue": v}} for k, v in attrs.items()]}]}]}]}  # fmt: skip
    r = await client.post(
        "/otlp/v1/logs",
        data=orjson.dumps(doc),
        headers=auth(**{"Content-Type": "application/json"}),
    )
    assert r.status == 200 and await r.json() == {}
    assert query(client, "SELECT method, path, status, ip_prefix FROM access_log") == [
        {"method": "GET", "path": "/a", "status": 404, "ip_prefix": "198.51.100.0/24"}
    ]


async def test_otlp_metrics_are_refused_with_a_reason(start: AppFactory) -> None:
    client = await start()
    r = await client.post(
        "/otlp/v1/metrics",
        data=b"\x00" * 10,
        headers=auth(**{"Content-Type": "application/x-protobuf"}),
    )
    body = await r.json()
    assert r.status == 404 and "metrics are not accepted" in body["detail"]
    assert "/otlp/v1/traces" in body["detail"]
