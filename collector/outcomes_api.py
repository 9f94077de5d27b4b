"""`GET /v1/outcomes?from=YYYY-MM-DD&to=YYYY-MM-DD[&interval=day|hour]`: what became of the
records the caller's tenant sent (the tenant comes from the key; no parameter names another)."""

from __future__ import annotations

from aiohttp import web

from collector.appkeys import DB, OUTCOMES, TENANT
from collector.outcomes import read_outcomes


async def get_outcomes(request: web.Request) -> web.Response:
    app = request.app
    body = await read_outcomes(app[OUTCOMES], app[DB].query, request[TENANT].id, request.query)
    return web.json_response(body)
