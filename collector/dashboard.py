"""`/dashboard`: the analysts' web page, served by the collector itself.

Sign-in (`POST /dashboard/login`, form field `key`) takes an analyst, privacy or admin key and
sets a session cookie: HttpOnly, SameSite=Strict, Path=/dashboard, Secure over TLS, holding only a
random token (sessions.py keeps the rest server-side, with an expiry). CSRF: every POST must come
from this origin (`Origin`, else `Referer`, equal to the request's own), the cookie is never sent
cross-site (SameSite=Strict), and sign-out also needs the session's CSRF token. The page reads the
same reports as the API, through `/dashboard/api/...` under the session. Every dashboard answer
carries a Content-Security-Policy that allows this origin only (scripts, styles, images, fetches),
no inline script, no framing; the chart library (uPlot, MIT) is vendored in collector/static.
"""

from __future__ import annotations

import csv
import html
import io
from collections.abc import Awaitable, Callable
from pathlib import Path

from aiohttp import web

from collector import analyst_reports, privacy_view
from collector.appkeys import AUTH, CONFIG, TENANT
from collector.auth import Tenant
from collector.config import is_loopback
from collector.errors import Forbidden, HttpError, Unauthorized
from collector.sessions import Session, SessionStore

PREFIX = "/dashboard"
COOKIE = "tc_session"
STATIC = Path(__file__).resolve().parent / "static"
ASSETS = {
    "dashboard.js": "text/javascript",
    "dashboard.css": "text/css",
    "uPlot.iife.min.js": "text/javascript",
    "uPlot.min.css": "text/css",
}
READERS = frozenset({"analyst", "privacy"})
CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; font-src 'self'; form-action 'self'; frame-ancestors 'none'; "
    "base-uri 'none'"
)
SESSIONS = web.AppKey("dashboard_sessions", SessionStore)
Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


def is_dashboard(path: str) -> bool:
    """Dashboard paths authenticate by session cookie, not by bearer key."""
    return path == PREFIX or path.startswith(PREFIX + "/")


@web.middleware
async def security_headers(request: web.Request, handler: Handler) -> web.StreamResponse:
    response = await handler(request)
    if is_dashboard(request.path):
        response.headers["Content-Security-Policy"] = CSP
        response.headers["X-Content-Type-Options"] = "nosniff"
        response.headers["Referrer-Policy"] = "same-origin"
        response.headers["X-Frame-Options"] = "DENY"
        response.headers.setdefault("Cache-Control", "no-store")
    return response


def _see_other(location: str) -> web.Response:
    return web.Response(status=303, headers={"Location": location})


def _page(name: str, **values: str) -> web.Response:
    text = (STATIC / name).read_text()
    for key, value in values.items():
        text = text.replace("{{" + key + "}}", html.escape(value, quote=True))
    return web.Response(text=text, content_type="text/html")


def _same_origin(request: web.Request) -> None:
    """A POST from another site is refused: the host of its Origin (or Referer) must be this
    one. The scheme is not compared: behind a TLS-terminating proxy the browser says https while
    the collector hears http; another site can never send this host."""
    origin = request.headers.get("Origin") or request.headers.get("Referer") or ""
    scheme, sep, rest = origin.partition("://")
    host = rest.split("/", 1)[0]
    if not sep or scheme not in ("http", "https") or not host or host != request.host:
        raise Forbidden("a dashboard form must be posted from the dashboard itself")


def _secure(request: web.Request) -> bool:
    """Secure cookies over TLS, and off loopback too: plain HTTP is served there only behind a
    TLS-terminating proxy (`allow_plaintext`), so the browser speaks https."""
    return request.secure or not is_loopback(request.app[CONFIG].server.host)


def _session(request: web.Request) -> tuple[Session, Tenant] | None:
    session = request.app[SESSIONS].get(request.cookies.get(COOKIE))
    if session is None:
        return None
    tenant = request.app[AUTH].by_key_id(session.key_id)
    if tenant is None or not ("admin" in tenant.scopes or tenant.scopes & READERS):
        return None
    return session, tenant


async def page(request: web.Request) -> web.StreamResponse:
    found = _session(request)
    if found is None:
        return _see_other(f"{PREFIX}/login")
    session, tenant = found
    privacy = "admin" in tenant.scopes or "privacy" in tenant.scopes
    return _page(
        "dashboard.html",
        csrf=session.csrf,
        tenant=tenant.id,
        who=tenant.actor,
        privacy="yes" if privacy else "no",
    )


async def login_form(request: web.Request) -> web.Response:
    return _page("login.html", message="")


async def login(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    form = await request.post()
    key = form.get("key")
    try:
        if not isinstance(key, str) or not key.strip():
            raise Unauthorized("no key")
        tenant = request.app[AUTH].authenticate(f"Bearer {key.strip()}")
        tenant.require(READERS)
    except (Unauthorized, Forbidden) as e:
        response = _page("login.html", message=_refusal(e))
        response.set_status(e.status)
        return response
    token, _ = request.app[SESSIONS].create(tenant.key_id)
    response = _see_other(PREFIX)
    response.set_cookie(
        COOKIE,
        token,
        path=PREFIX,
        max_age=request.app[SESSIONS].ttl_s,
        httponly=True,
        secure=_secure(request),
        samesite="Strict",
    )
    return response


def _refusal(e: HttpError) -> str:
    if e.status == 403:
        return "This key may not read reports (it needs the analyst or privacy scope)."
    return "Unknown key."


async def logout(request: web.Request) -> web.StreamResponse:
    _same_origin(request)
    form = await request.post()
    found = _session(request)
    if found is not None and form.get("csrf") != found[0].csrf:
        raise Forbidden("the sign-out form is stale; reload the page")
    request.app[SESSIONS].delete(request.cookies.get(COOKIE))
    response = _see_other(f"{PREFIX}/login")
    response.del_cookie(COOKIE, path=PREFIX)
    return response


async def asset(request: web.Request) -> web.Response:
    name = request.match_info["name"]
    if name not in ASSETS:
        raise web.HTTPNotFound()
    response = web.Response(body=(STATIC / name).read_bytes(), content_type=ASSETS[name])
    response.headers["Cache-Control"] = "private, max-age=300"
    return response


def _api(handler: Handler, scopes: frozenset[str]) -> Handler:
    """A report under the session instead of a bearer key: same handler, same tenant rules."""

    async def with_session(request: web.Request) -> web.StreamResponse:
        found = _session(request)
        if found is None:
            raise Unauthorized("not signed in, or the session expired")
        found[1].require(scopes)
        request[TENANT] = found[1]
        return await handler(request)

    return with_session


async def breakdown_csv(request: web.Request) -> web.Response:
    report = await analyst_reports.breakdown_report(request)
    columns = ["value", "visitors", "pageviews", "requests", "bot_requests", "events"]
    columns = [c for c in columns if any(c in r for r in report["rows"]) or c == "value"]
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(columns)
    for row in report["rows"]:
        writer.writerow([_cell(row.get(c, "")) for c in columns])
    name = f"{report['dimension']}_{report['from']}_{report['to']}.csv"
    response = web.Response(text=out.getvalue(), content_type="text/csv")
    response.headers["Content-Disposition"] = f'attachment; filename="{name}"'
    return response


def _cell(value: object) -> str:
    """A spreadsheet would run a cell starting with = + - @ as a formula: quote it."""
    text = str(value)
    return "'" + text if text[:1] in ("=", "+", "-", "@", "\t", "\r") else text


def setup(app: web.Application) -> None:
    app[SESSIONS] = SessionStore(
        app[CONFIG].storage.path / "sessions", app[CONFIG].dashboard.session_ttl_s
    )
    app.router.add_get(PREFIX, page)
    app.router.add_get(f"{PREFIX}/login", login_form)
    app.router.add_post(f"{PREFIX}/login", login)
    app.router.add_post(f"{PREFIX}/logout", logout)
    app.router.add_get(PREFIX + "/static/{name}", asset)
    api = {
        "summary": analyst_reports.get_summary,
        "timeseries": analyst_reports.get_timeseries,
        "breakdown": analyst_reports.get_breakdown,
        "breakdown.csv": breakdown_csv,
    }
    for name, handler in api.items():
        app.router.add_get(f"{PREFIX}/api/{name}", _api(handler, READERS))
    app.router.add_get(
        f"{PREFIX}/api/privacy", _api(privacy_view.privacy_overview, frozenset({"privacy"}))
    )
