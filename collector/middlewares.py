"""Errors as JSON, and access control on every route that is not explicitly public.

Every error body comes from `error_response`: `{"error": ..., "detail": ...}`. Each dependency's
errors are translated here, once, for every handler: the storage engine failing (`SinkError`) or
the disk under our files (`OSError`) is a 503 with Retry-After. Unexpected exceptions are logged
by type and traceback only (their messages may quote input) and answered as a bare 500.
"""

from __future__ import annotations

import logging
import traceback
from collections.abc import Awaitable, Callable

from aiohttp import web
from aiohttp.web_request import BaseRequest

from collector.appkeys import AUTH, TENANT
from collector.errors import HttpError, SinkError
from collector.failures import describe

log = logging.getLogger(__name__)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]  # every handler and middleware
PUBLIC_PATHS = frozenset({"/healthz", "/readyz", "/metrics", "/openapi.json"})


def error_response(
    status: int, error: str, detail: str = "", retry_after: int | None = None
) -> web.Response:
    headers = {"Retry-After": str(retry_after)} if retry_after is not None else None
    return web.json_response({"error": error, "detail": detail}, status=status, headers=headers)


@web.middleware
async def errors_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except HttpError as e:
        response = error_response(e.status, e.error, e.detail, e.retry_after)
        if e.status == 401:
            response.headers["WWW-Authenticate"] = 'Bearer realm="telemetry-collector"'
        return response
    except web.HTTPRequestEntityTooLarge:
        return error_response(413, "payload too large", "body over the size limit")
    except web.HTTPException as e:
        if e.status < 400:
            raise
        response = error_response(e.status, e.reason.lower(), "")
        if "Allow" in e.headers:  # 405 must say which methods are allowed
            response.headers["Allow"] = e.headers["Allow"]
        return response
    except ConnectionResetError:
        # the client went away mid-request (aiohttp fails the body read): nobody reads this
        # answer and nothing went wrong here, so nothing is logged
        return error_response(400, "bad request", "connection lost")
    except (OSError, SinkError) as e:
        # the engine refusing a statement, a full or read-only disk, too many open files: not the
        # request's fault, and it may succeed later (the engine, the scratch folder, a salt or
        # key file, the idempotency log); logged by kind only (`describe`), never the message
        log.error("%s on %s %s", describe(e), request.method, route_of(request))
        return error_response(503, "service unavailable", "storage is failing", retry_after=5)
    except Exception as e:
        tb = "".join(traceback.format_tb(e.__traceback__))
        log.error(
            "unhandled %s on %s %s\n%s", type(e).__name__, request.method, route_of(request), tb
        )
        return error_response(500, "internal error", "")


@web.middleware
async def auth_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    # the dashboard signs in with a session cookie of its own (collector/dashboard.py)
    if request.path not in PUBLIC_PATHS and not _dashboard(request.path):
        request[TENANT] = request.app[AUTH].authenticate(request.headers.get("Authorization"))
    return await handler(request)


def _dashboard(path: str) -> bool:
    return path == "/dashboard" or path.startswith("/dashboard/")


def route_of(request: BaseRequest) -> str:
    """The route template, never the raw path: paths of unmatched requests can carry anything."""
    if not isinstance(request, web.Request):  # the access log is also given bare requests
        return "<unmatched>"
    try:
        resource = request.match_info.route.resource
    except AssertionError:  # the request failed in the HTTP parser, before routing
        return "<unmatched>"
    return resource.canonical if resource is not None else "<unmatched>"
