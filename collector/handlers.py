"""HTTP handlers. Ingest: auth (middleware) -> limits -> decode -> pipeline -> batch -> 202."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path

import orjson
from aiohttp import web

from anonymizer.errors import RecordInvalid
from collector import otlp, otlp_traces
from collector.appkeys import (
    BATCHERS,
    CONFIG,
    IDEMPOTENCY,
    METRICS,
    OUTCOMES,
    PIPELINE,
    RATES,
    SCHEMA,
    SHIPPER,
    SPOOL,
    SPOOL_TICKET,
    TENANT,
)
from collector.body import BodyLimits, read_body
from collector.decode import JSON_VALUES_PER_RECORD, TEXT, Failed, Item, format_for
from collector.errors import HttpError, NotFound, TooManyRequests
from collector.idempotency import Answer
from collector.kinds import KINDS, OTLP_UNMAPPED, Kind
from collector.metrics import CONTENT_TYPE
from collector.metrics_access import visible_tenants
from collector.middlewares import route_of
from collector.outcomes import REFUSED, count_refused, count_request
from collector.pipeline import Outcome, Run
from collector.reasons import REFUSALS
from collector.salts import wall_clock_ms
from collector.text_params import refuse_for_non_text, text_options

Handler = Callable[[web.Request], Awaitable[web.Response]]
SLICE_S = 0.01  # pipeline work between two yields (another request waits ~3 slices)


def body_limits(request: web.Request, *, lines: bool, json: bool) -> BodyLimits:
    """The server's limits; records counted while the body streams in when the format allows."""
    server = request.app[CONFIG].server
    return BodyLimits(
        server.max_body_bytes,
        server.max_decompressed_bytes,
        server.body_read_timeout_s,
        max_lines=server.max_records if lines else None,
        max_json_values=JSON_VALUES_PER_RECORD * server.max_records if json else None,
    )


async def run_sliced(run: Run, pairs: Iterator[tuple[Kind, Item]]) -> Outcome:
    """The pipeline in slices of about SLICE_S, yielding to the loop between them: a request of
    10,000 records never holds the event loop (and every other tenant) for its whole length."""
    while not run.feed(pairs, SLICE_S):  # noqa: ASYNC110 - yields to the loop, waits for nothing
        await asyncio.sleep(0)
    return run.out


async def store(request: web.Request, outcome: Outcome, body: bytes, answer: Answer) -> None:
    """Count, then wait until the accepted rows are durable: fsync'd in the spool, or inserted
    without it (raises 503 if they cannot be). `answer` is what the request will answer: with
    an Idempotency-Key the spool keeps it beside the rows."""
    metrics = request.app[METRICS]
    metrics.received.update(outcome.received)
    metrics.rejected.update(outcome.rejected)
    tenant = request[TENANT].id
    for (kind, reason), n in outcome.consent.items():
        metrics.consent[(tenant, kind, reason)] += n
    metrics.dropped_fields.update(outcome.dropped_fields)
    recorder, path = request.app[OUTCOMES], route_of(request)
    try:
        spool = request.app.get(SPOOL)
        if spool is None:
            await request.app[BATCHERS].submit(outcome.rows)
        else:
            key = request.headers.get("Idempotency-Key")
            note = (
                request.app[IDEMPOTENCY].note(tenant, path, key, body, answer)
                if key is not None and any(outcome.rows.values())
                else b""
            )
            request[SPOOL_TICKET] = await spool.submit(outcome.rows, note)
    except BaseException:
        count_request(recorder, metrics.outcomes, tenant, path, outcome, stored=False)
        raise
    metrics.accepted.update(outcome.accepted)
    count_request(recorder, metrics.outcomes, tenant, path, outcome, stored=True)


def admit(request: web.Request, kind: str, records: int) -> None:
    """The tenant's rate limit; records refused by it are counted as `rate_limited`."""
    tenant = request[TENANT].id
    try:
        request.app[RATES].admit(tenant, records)
    except TooManyRequests:
        metrics = request.app[METRICS].outcomes
        count_refused(request.app[OUTCOMES], metrics, tenant, kind, records, "rate_limited")
        raise


def refusals_counted(kind: str, handler: Handler) -> Handler:
    """A request refused as a whole once its tenant is known (400, 408, 413, 415, 422) counted
    in outcomes as one `refused` request: a shipper that only checks the status (or drops a 4xx)
    shows nothing, so the operator and the tenant see the refusals here."""

    @functools.wraps(handler)
    async def counted(request: web.Request) -> web.Response:
        try:
            return await handler(request)
        except (HttpError, web.HTTPRequestEntityTooLarge) as e:
            reason = REFUSALS.get(e.status)
            recorder = request.app.get(OUTCOMES)
            if reason is not None and recorder is not None:
                metrics = request.app[METRICS].outcomes
                count_refused(recorder, metrics, request[TENANT].id, kind, 1, REFUSED, reason)
            raise

    return counted


async def answer_once(
    request: web.Request, body: bytes, compute: Callable[[], Awaitable[Answer]]
) -> web.Response:
    """`compute()`'s answer, or with an Idempotency-Key the first answer to that key."""
    key = request.headers.get("Idempotency-Key")
    try:
        if key is None:
            answer = await compute()
        else:
            answer = await request.app[IDEMPOTENCY].run(
                request[TENANT].id, route_of(request), key, body, compute
            )
    finally:  # the key (if any) is stored: the spool may ship this request's rows
        ticket = request.get(SPOOL_TICKET)
        if ticket is not None:
            ticket.release()
    return web.Response(status=answer.status, body=answer.body, content_type=answer.content_type)


def ingest_handler(kind: Kind) -> Handler:
    async def ingest(request: web.Request) -> web.Response:
        app = request.app
        text = None
        if kind.allow_text and request.content_type == TEXT:
            text = text_options(request)
        elif kind.allow_text:
            refuse_for_non_text(request)
        fmt = format_for(request.content_type, allow_text=kind.allow_text, text=text)
        max_records = app[CONFIG].server.max_records
        limits = body_limits(request, lines=fmt.line_based, json=fmt.json)
        body = await read_body(request, limits)

        async def compute() -> Answer:
            decoded = fmt.decode(body, max_records)
            admit(request, kind.name, decoded.count)
            run = app[PIPELINE].start(request[TENANT])
            outcome = await run_sliced(run, ((kind, item) for item in decoded.items))
            answer = Answer(202, "application/json", orjson.dumps(outcome.body()))
            await store(request, outcome, body, answer)
            return answer

        return await answer_once(request, body, compute)

    ingest.__name__ = f"ingest_{kind.name}"
    return refusals_counted(kind.name, ingest)


def _rejected(outcome: Outcome, what: str) -> str:
    """An OTLP partial_success message: how many were rejected, and the first one's index,
    field and reason (never a value)."""
    first = outcome.errors[0]
    return (
        f"{outcome.rejected_total} {what} rejected; first: index {first['index']}"
        + (f", field {first['field']}" if first["field"] else "")
        + f": {first['error']}"
    )


async def _ingest_otlp(request: web.Request) -> web.Response:
    """OTLP/HTTP logs: each log record maps onto a kind by its semantic-convention attributes.
    Answers 200 with an ExportLogsServiceResponse (partial success when records were rejected),
    in the request's encoding."""
    app = request.app
    content_type = request.content_type
    limits = body_limits(request, lines=False, json=content_type != otlp.PROTOBUF)
    body = await read_body(request, limits)

    async def compute() -> Answer:
        # parsing runs on a worker thread: protobuf's JSON mapping is pure Python (~1.3 s for
        # 10,000 records) and would hold the loop; a thread gives the GIL back every 5 ms
        count, decoded = await asyncio.to_thread(
            otlp.decode_otlp_lazily, body, content_type, app[CONFIG].server.max_records
        )
        admit(request, "otlp", count)
        pairs = (
            (KINDS[d.kind], d.record)
            if isinstance(d, otlp.OtlpItem)
            else (OTLP_UNMAPPED, Failed(RecordInvalid("", d.error)))
            for d in decoded
        )
        outcome = await run_sliced(app[PIPELINE].start(request[TENANT]), pairs)
        message = ""
        if outcome.errors:
            message = _rejected(outcome, "log records")
        reply = otlp.encode_response(content_type, outcome.rejected_total, message)
        answer = Answer(200, otlp.PROTOBUF if content_type == otlp.PROTOBUF else otlp.JSON, reply)
        await store(request, outcome, body, answer)
        return answer

    return await answer_once(request, body, compute)


async def _ingest_otlp_traces(request: web.Request) -> web.Response:
    """OTLP/HTTP traces: HTTP server spans become access records; every other span is counted
    in partial_success (collector/otlp_traces.py). 200 with an ExportTraceServiceResponse."""
    app = request.app
    content_type = request.content_type
    limits = body_limits(request, lines=False, json=content_type != otlp.PROTOBUF)
    body = await read_body(request, limits)

    async def compute() -> Answer:
        count, decoded = await asyncio.to_thread(
            otlp_traces.decode_traces_lazily,
            body,
            content_type,
            app[CONFIG].server.max_records,
        )
        admit(request, "access_log", count)
        skipped = 0

        def pairs() -> Iterator[tuple[Kind, Item]]:
            nonlocal skipped
            for d in decoded:
                if isinstance(d, otlp.OtlpItem):
                    yield KINDS[d.kind], d.record
                elif isinstance(d, otlp.OtlpFailure):
                    yield KINDS["access_log"], Failed(RecordInvalid("", d.error))
                else:
                    skipped += 1

        outcome = await run_sliced(app[PIPELINE].start(request[TENANT]), pairs())
        parts = []
        if skipped:
            parts.append(f"{skipped} spans {otlp_traces.NOT_HTTP_SERVER}")
        if outcome.errors:
            parts.append(_rejected(outcome, "spans"))
        reply = otlp_traces.encode_response(
            content_type, outcome.rejected_total + skipped, "; ".join(parts)
        )
        answer = Answer(200, otlp.PROTOBUF if content_type == otlp.PROTOBUF else otlp.JSON, reply)
        await store(request, outcome, body, answer)  # the answer is kept beside the spooled rows
        return answer

    return await answer_once(request, body, compute)


ingest_otlp = refusals_counted("otlp", _ingest_otlp)
ingest_otlp_traces = refusals_counted("access_log", _ingest_otlp_traces)


async def otlp_metrics(request: web.Request) -> web.Response:
    """OTLP metrics carry aggregates, not the per-request records this collector anonymizes and
    stores: refused without reading the body, so an exporter stops instead of retrying."""
    raise NotFound(
        "OTLP metrics are not accepted: this collector stores access logs, devices, events and "
        "mail scans; send logs to /otlp/v1/logs and HTTP server spans to /otlp/v1/traces"
    )


OPENAPI = Path(__file__).resolve().parent.parent / "openapi.json"


async def openapi(request: web.Request) -> web.Response:
    """The API contract, checked in at the repository root and validated against real answers."""
    return web.Response(body=OPENAPI.read_bytes(), content_type="application/json")


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def readyz(request: web.Request) -> web.Response:
    """Not ready (503, with reasons) while a background task fails: a table's inserts, or the
    destruction of visitor salts; busy while the ingest queue is full. With the spool, an engine
    that cannot take inserts (down, or its schema not migrated yet) is not a reason: the spool
    accepts meanwhile, and `shipping` says what waits."""
    salts = request.app[PIPELINE].salts.health(wall_clock_ms())
    schema = request.app[SCHEMA].failures()
    spool = request.app.get(SPOOL)
    if spool is not None:  # ready: the spool takes writes and is below its high-water mark
        state = {
            "queued_rows": spool.queued_rows,
            "spool_bytes": spool.total_bytes,
            "shipping": schema + request.app[SHIPPER].failures(),
        }
        if reasons := spool.health() + salts:
            status = "failing" if spool.failing is not None or salts else "busy"
            return web.json_response({"status": status, **state, "reasons": reasons}, status=503)
        return web.json_response({"status": "ready", **state})
    batchers = request.app[BATCHERS]
    queued = batchers.queued_rows
    reasons = schema + batchers.failures() + salts
    if reasons:
        body = {"status": "failing", "queued_rows": queued, "reasons": reasons}
        return web.json_response(body, status=503)
    if queued >= request.app[CONFIG].batch.max_pending_rows:
        return web.json_response({"status": "busy", "queued_rows": queued}, status=503)
    return web.json_response({"status": "ready", "queued_rows": queued})


async def metrics(request: web.Request) -> web.Response:
    """Public aggregates; per-tenant series only for a caller allowed to see them."""
    body = request.app[METRICS].render(visible_tenants(request))
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE})
