"""HTTP handlers. Ingest: auth (middleware) -> limits -> decode -> pipeline -> batch -> 202."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from collector.appkeys import BATCHERS, CONFIG, METRICS, PIPELINE, TENANT
from collector.decode import check_count, check_encoding, decoder_for
from collector.errors import BadRequest, PayloadTooLarge
from collector.kinds import Kind
from collector.pipeline import Outcome

Handler = Callable[[web.Request], Awaitable[web.Response]]


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


async def store(request: web.Request, outcome: Outcome) -> None:
    """Count, then wait until the accepted rows are inserted (raises 503 if they cannot be)."""
    metrics = request.app[METRICS]
    metrics.received.update(outcome.received)
    metrics.rejected.update(outcome.rejected)
    metrics.consent.update(outcome.consent)
    await request.app[BATCHERS].submit(outcome.rows)
    metrics.accepted.update(outcome.accepted)


def ingest_handler(kind: Kind) -> Handler:
    async def ingest(request: web.Request) -> web.Response:
        app = request.app
        decode = decoder_for(request.content_type, allow_text=kind.allow_text)
        items = decode(await read_body(request))
        check_count(items, app[CONFIG].server.max_records)
        outcome = app[PIPELINE].process(request[TENANT], [(kind, item) for item in items])
        await store(request, outcome)
        return web.json_response(outcome.body(), status=202)

    ingest.__name__ = f"ingest_{kind.name}"
    return ingest


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    queued = request.app[BATCHERS].queued_rows
    if queued >= request.app[CONFIG].batch.max_pending_rows:
        return web.json_response({"status": "busy", "queued_rows": queued}, status=503)
    return web.json_response({"status": "ready", "queued_rows": queued})


async def metrics(request: web.Request) -> web.Response:
    batchers = request.app[BATCHERS]
    text = request.app[METRICS].render(
        {
            "collector_queued_rows": batchers.queued_rows,
            "collector_flushed_batches": batchers.flushed_batches,
        }
    )
    return web.Response(text=text, content_type="text/plain")
