"""OTLP/HTTP into the real service: the OpenTelemetry Python SDK's exporter posts, rows land in
the tables of their kinds, and unmapped records come back as a partial success."""

import asyncio
import time
from typing import Any

import orjson
from google.protobuf import json_format
from opentelemetry.proto.collector.logs.v1.logs_service_pb2 import ExportLogsServiceResponse

from tests.conftest import API_KEY, AppFactory, auth, query
from tests.integration.test_ingest import stored_strings

TRACKING_ROUTING = "0123456709498765432101234567891"


def export_with_sdk(endpoint: str, now_ns: int) -> list[Any]:
    """Runs the real SDK exporter (synchronous) and returns its export results."""
    from opentelemetry.exporter.otlp.proto.http import Compression
    from opentelemetry.exporter.otlp.proto.http._log_exporter import OTLPLogExporter
    from opentelemetry.sdk._logs import LoggerProvider
    from opentelemetry.sdk._logs.export import SimpleLogRecordProcessor
    from opentelemetry.sdk.resources import Resource

    results: list[Any] = []

    class Recording(OTLPLogExporter):  # type: ignore[misc]
        def export(self, batch: Any) -> Any:
            results.append(super().export(batch))
            return results[-1]

    exporter = Recording(
        endpoint=endpoint,
        headers={"Authorization": f"Bearer {API_KEY}"},
        compression=Compression.Gzip,
        timeout=10,
    )
    provider = LoggerProvider(
        resource=Resource.create({"service.name": "shop"}), shutdown_on_exit=False
    )
    provider.add_log_record_processor(SimpleLogRecordProcessor(exporter))
    logger = provider.get_logger("tests.otlp_ingest")
    logger.emit(timestamp=now_ns, attributes={
        "client.address": "203.0.113.77", "http.request.method": "GET", "url.path": "/pricing",
        "url.query": "utm_source=otel&email=x@y.z", "http.response.status_code": 200,
        "user_agent.original": "curl/8.5.0", "enduser.id": "olga", "session.id": "sess-1"})  # fmt: skip
    logger.emit(timestamp=now_ns, event_name="export_clicked", attributes={
        "enduser.id": "olga", "app.feature": "reports", "consent": "essential,analytics",
        "app.property.format": "csv", "app.property.to": "olga@example.com"})  # fmt: skip
    logger.emit(timestamp=now_ns, attributes={
        "device.id": "dev-olga-1", "device.model.name": "Pixel 8", "os.name": "Android", "os.version": "14"})  # fmt: skip
    logger.emit(
        timestamp=now_ns, attributes={"mail.imb": TRACKING_ROUTING, "mail.event": "delivered"}
    )
    logger.emit(timestamp=now_ns, attributes={"mail.imb": "1234"})  # bad barcode: rejected
    logger.emit(timestamp=now_ns, body="no mapping attributes")  # unmapped: rejected
    provider.shutdown()
    return results


async def test_sdk_exporter_end_to_end(start: AppFactory) -> None:
    client = await start()
    results = await asyncio.to_thread(
        export_with_sdk, str(client.make_url("/otlp/v1/logs")), time.time_ns()
    )
    assert results and all(
        r.name == "SUCCESS" for r in results
    )  # partial success is success in OTLP
    assert query(client, "SELECT method, path, query, ip_prefix, service FROM access_log") == [
        {
            "method": "GET",
            "path": "/pricing",
            "query": "utm_source=otel",
            "ip_prefix": "203.0.113.0/24",
            "service": "shop",
        }
    ]
    event = query(
        client, "SELECT event, feature, properties, identifiers_stripped FROM usage_events"
    )
    assert event == [{"event": "export_clicked", "feature": "reports",
                      "properties": {"format": "csv", "to": "{email}"}, "identifiers_stripped": False}]  # fmt: skip
    assert query(client, "SELECT model, os FROM device_info") == [
        {"model": "Pixel 8", "os": "Android"}
    ]
    assert query(client, "SELECT event, routing_zip FROM mail_scans") == [
        {"event": "delivered", "routing_zip": "01234"}
    ]
    blob = " ".join(
        s
        for t in ("access_log", "usage_events", "device_info", "mail_scans")
        for s in stored_strings(client, t)
    )
    for raw in ("olga", "203.0.113.77", "sess-1", "dev-olga-1", TRACKING_ROUTING):
        assert raw not in blob
    metrics = await (await client.get("/metrics")).text()
    assert 'collector_records_rejected_total{field="",kind="otlp_unmapped"} 1' in metrics
    assert 'collector_records_rejected_total{field="imb",kind="mail_scan"} 1' in metrics


async def test_partial_success_in_otlp_json(start: AppFactory) -> None:
    client = await start()
    now = str(time.time_ns())
    doc = {"resourceLogs": [{"resource": {"attributes": [{"key": "service.name", "value": {"stringValue": "api"}}]},
           "scopeLogs": [{"logRecords": [
               {"timeUnixNano": now, "attributes": [{"key": "client.address", "value": {"stringValue": "192.0.2.9"}}]},
               {"timeUnixNano": now, "attributes": [{"key": "client.address", "value": {"stringValue": "not-an-ip"}}]},
               {"timeUnixNano": now, "body": {"stringValue": "x"}},
           ]}]}]}  # fmt: skip
    r = await client.post(
        "/otlp/v1/logs",
        data=orjson.dumps(doc),
        headers=auth(**{"Content-Type": "application/json"}),
    )
    assert r.status == 200 and r.content_type == "application/json"
    reply = json_format.Parse(await r.text(), ExportLogsServiceResponse())
    assert reply.partial_success.rejected_log_records == 2
    assert (
        reply.partial_success.error_message
        == "2 log records rejected; first: index 1, field ip: not an IP address"
    )
    assert query(client, "SELECT service FROM access_log") == [{"service": "api"}]


async def test_otlp_protobuf_garbage_is_400_json(start: AppFactory) -> None:
    client = await start()
    r = await client.post(
        "/otlp/v1/logs",
        data=b"\xff\x00garbage",
        headers=auth(**{"Content-Type": "application/x-protobuf"}),
    )
    assert r.status == 400 and (await r.json())["error"] == "bad request"
