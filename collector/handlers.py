"""HTTP handlers. Ingest: auth (middleware) -> limits -> decode -> pipeline -> batch -> 202."""

from __future__ import annotations

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from collector.appkeys import ACCESS_BATCHER, CONFIG, METRICS, PIPELINE, TENANT
from collector.decode import check_count, check_encoding, decoder_for
from collector.errors import BadRequest, PayloadTooLarge


async def read_body(request: web.Request) -> bytes:
    """The decompressed body, with the wire and decompressed limits applied."""
    limits = request.app[CONFIG].server
    check_encoding(request.headers.get("Content-Encoding", ""))
    if request.content_length is not None and request.content_length > limits.max_body_bytes:
        raise PayloadTooLarge(
            f"body of {request.content_length} bytes; the limit is {limits.max_body_bytes}"
        )
    try:
        return await request.read()
    except web.HTTPRequestEntityTooLarge:
        raise PayloadTooLarge(
            f"decompressed body over the limit of {limits.max_decompressed_bytes} bytes"
        ) from None
    except RequestPayloadError:  # aiohttp's report of a corrupt gzip/zstd/br stream
        raise BadRequest("body cannot be decompressed with its Content-Encoding") from None


async def ingest_logs(request: web.Request) -> web.Response:
    app = request.app
    tenant = request[TENANT]
    decode = decoder_for(request.content_type, allow_text=True)
    body = await read_body(request)
    items = decode(body)
    check_count(items, app[CONFIG].server.max_records)
    outcome = app[PIPELINE].process(tenant, items)
    metrics = app[METRICS]
    metrics.received["access_log"] += len(items)
    for f in outcome.rejected_fields:
        metrics.rejected[("access_log", f)] += 1
    await app[ACCESS_BATCHER].submit(outcome.rows)
    metrics.accepted["access_log"] += len(outcome.rows)
    return web.json_response(outcome.body(), status=202)


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    batcher = request.app[ACCESS_BATCHER]
    limit = request.app[CONFIG].batch.max_pending_rows
    if batcher.queued_rows >= limit:
        return web.json_response({"status": "busy", "queued_rows": batcher.queued_rows}, status=503)
    return web.json_response({"status": "ready", "queued_rows": batcher.queued_rows})


async def metrics(request: web.Request) -> web.Response:
    batcher = request.app[ACCESS_BATCHER]
    text = request.app[METRICS].render(
        {
            "collector_queued_rows": batcher.queued_rows,
            "collector_flushed_batches": batcher.flushed_batches,
        }
    )
    return web.Response(text=text, content_type="text/plain")
