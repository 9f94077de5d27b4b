"""`POST /v1/admin/sql`: read-only SQL on the running service's engine (`collector sql` uses it,
so that operators can query while the service holds the embedded engine).

Scope `admin` only. An admin key is operator-level: its statement reads every tenant's rows,
like the operator who holds the config and the data folder; the key's tenant only names who
asked, in the log. Tenant-bound reads are the reports' (`analyst` keys) or, on a ClickHouse
server, the `collector grants --tenant` users'. The statement is checked and run read-only
(`collector.admin_sql`), bounded by `[server] admin_sql_max_rows` and `admin_sql_timeout_s`;
the log names the key and the row count, never the statement (it may quote values). The
statement runs on the sink's one thread, so ingest inserts wait behind it: the time bound is
also the longest an operator's query can hold them up.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import orjson
from aiohttp import web
from aiohttp.web_protocol import RequestPayloadError

from collector import admin_sql
from collector.appkeys import CONFIG, DB, SINK, TENANT
from collector.errors import BadRequest, PayloadTooLarge
from collector.params import check_names

log = logging.getLogger(__name__)
MAX_BODY_BYTES = 64 * 1024  # one statement
MAX_RESULT_BYTES = 64 * 1024 * 1024
SLACK_S = 5  # past the engine's own max_execution_time, the answer is a 504


async def post_sql(request: web.Request) -> web.Response:
    check_names(request.query, ())
    body = await _read_body(request)
    try:
        doc = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise BadRequest('body must be JSON: {"query": "SELECT ..."}') from None
    if not isinstance(doc, dict) or set(doc) != {"query"} or not isinstance(doc["query"], str):
        raise BadRequest('body must be {"query": "<one read statement>"}')
    server = request.app[CONFIG].server
    sink = request.app[SINK]
    max_rows, timeout_s = server.admin_sql_max_rows, server.admin_sql_timeout_s

    def run() -> list[dict[str, Any]]:
        functions = admin_sql.table_functions(sink)
        return admin_sql.run(sink, doc["query"], functions, max_rows, MAX_RESULT_BYTES, timeout_s)

    try:
        rows = await asyncio.wait_for(request.app[DB].run(run), timeout_s + SLACK_S)
    except TimeoutError:
        raise admin_sql.ResultTooLarge(f"no answer within {timeout_s} s") from None
    tenant = request[TENANT]
    log.info("admin sql by key %s of tenant %s: %d rows", tenant.key_id, tenant.id, len(rows))
    return web.json_response({"rows": rows, "count": len(rows)}, dumps=_dumps)


async def _read_body(request: web.Request) -> bytes:
    """The whole body, in however many pieces it comes, never more than MAX_BODY_BYTES held."""
    too_large = PayloadTooLarge(f"a statement is at most {MAX_BODY_BYTES} bytes")
    if request.content_length is not None and request.content_length > MAX_BODY_BYTES:
        raise too_large
    body = bytearray()
    try:
        while chunk := await request.content.read(MAX_BODY_BYTES + 1 - len(body)):
            body += chunk
            if len(body) > MAX_BODY_BYTES:
                raise too_large
    except RequestPayloadError:
        raise BadRequest("the body cannot be read with its Content-Encoding") from None
    return bytes(body)


def _dumps(value: Any) -> str:
    return orjson.dumps(value).decode()
