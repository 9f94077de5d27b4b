"""The dashboard over real HTTP: sign-in, the session cookie, CSRF, CSP, its API and CSV, and the
privacy overview. (The page itself in a real browser: tests/redteam/test_dashboard_browser.py.)"""

from __future__ import annotations

import csv
import io
from dataclasses import replace
from pathlib import Path
from typing import Any

from collector.config import ApiKeyConfig
from collector.scan_pii import Finding, save_last
from tests.conftest import (
    ADMIN_KEY,
    ANALYST_KEY,
    API_KEY,
    PRIVACY_KEY,
    AppFactory,
    auth,
    hash_key,
    tenants,
)
from tests.integration.test_openapi import check

UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


async def sign_in(client: Any, key: str, origin: str | None = None) -> Any:
    origin = origin if origin is not None else str(client.make_url("")).rstrip("/")
    return await client.post(
        "/dashboard/login", data={"key": key}, headers={"Origin": origin}, allow_redirects=False
    )


def cookie_of(client: Any) -> Any:
    return next(c for c in client.session.cookie_jar if c.key == "tc_session")


async def test_sign_in_sets_a_strict_httponly_session_and_never_the_key(
    start: AppFactory, data_dir: Path
) -> None:
    client = await start()
    r = await client.get("/dashboard", allow_redirects=False)
    assert r.status == 303 and r.headers["Location"] == "/dashboard/login"
    r = await client.get("/dashboard/login")
    assert r.status == 200 and 'name="key"' in await r.text()
    assert "default-src 'none'" in r.headers["Content-Security-Policy"]
    r = await sign_in(client, ANALYST_KEY)
    assert r.status == 303 and r.headers["Location"] == "/dashboard"
    raw = r.headers["Set-Cookie"]
    assert "HttpOnly" in raw and "SameSite=Strict" in raw and "Path=/dashboard" in raw
    assert "Secure" not in raw  # plain HTTP here; over TLS the cookie is Secure
    token = cookie_of(client).value
    assert ANALYST_KEY not in raw and hash_key(ANALYST_KEY) not in raw and len(token) >= 40
    stored = b"".join(p.read_bytes() for p in (data_dir / "sessions").glob("*"))
    assert token.encode() not in stored and ANALYST_KEY.encode() not in stored
    r = await client.get("/dashboard")
    page = await r.text()
    assert r.status == 200 and 'content="no"' in page and "acme" in page
    csp = r.headers["Content-Security-Policy"]
    assert "script-src 'self'" in csp and "frame-ancestors 'none'" in csp and "http" not in csp
    assert "<script>" not in page and "https://" not in page  # no inline script, no CDN
    for asset in ("dashboard.js", "uPlot.iife.min.js", "dashboard.css", "uPlot.min.css"):
        assert (await client.get(f"/dashboard/static/{asset}")).status == 200
    assert (await client.get("/dashboard/static/..%2Fdashboard.py")).status == 404


async def test_bad_keys_cross_site_posts_and_sign_out(start: AppFactory) -> None:
    client = await start()
    r = await sign_in(client, "tck_wrong-key-0123456789")
    assert r.status == 401 and "tck_wrong" not in await r.text()
    r = await sign_in(client, API_KEY)  # an ingest key cannot read reports
    assert r.status == 403
    r = await sign_in(client, ANALYST_KEY, origin="https://evil.example")
    assert r.status == 403 and not list(client.session.cookie_jar)
    r = await client.post("/dashboard/login", data={"key": ANALYST_KEY}, allow_redirects=False)
    assert r.status == 403  # neither Origin nor Referer: refused
    assert (await sign_in(client, ANALYST_KEY)).status == 303
    assert (await client.get("/dashboard/api/summary")).status == 200
    page = await (await client.get("/dashboard")).text()
    csrf = page.split('name="csrf-token" content="')[1].split('"')[0]
    origin = {"Origin": str(client.make_url("")).rstrip("/")}
    r = await client.post("/dashboard/logout", data={"csrf": "nope"}, headers=origin)
    assert r.status == 403
    r = await client.post(
        "/dashboard/logout", data={"csrf": csrf}, headers=origin, allow_redirects=False
    )
    assert r.status == 303
    assert (await client.get("/dashboard/api/summary")).status == 401
    # the bearer API does not take the session, nor the dashboard API a bearer key
    assert (await client.get("/dashboard/api/summary", headers=auth(ANALYST_KEY))).status == 401


async def test_dashboard_api_and_csv_match_the_reports_api(start: AppFactory) -> None:
    client = await start()
    records = [
        {"ip": f"198.51.100.{i}", "path": "/a", "user_agent": UA, "status": 200} for i in range(7)
    ]
    records += [{"ip": "192.0.2.1", "path": "/=cmd", "user_agent": UA}]
    await client.post("/v1/logs", json=records, headers=auth())
    await sign_in(client, ANALYST_KEY)
    for report, params in (("summary", {}), ("breakdown", {"dimension": "pages"})):
        mine = await (await client.get(f"/dashboard/api/{report}", params=params)).json()
        r = await client.get(f"/v1/reports/{report}", params=params, headers=auth(ANALYST_KEY))
        assert mine == await check(r, f"/v1/reports/{report}", "get")
    r = await client.get("/dashboard/api/breakdown.csv", params={"dimension": "pages", "k": "5"})
    assert r.status == 200 and r.content_type == "text/csv"
    assert "attachment" in r.headers["Content-Disposition"]
    rows = list(csv.DictReader(io.StringIO(await r.text())))
    assert [(x["value"], x["visitors"], x["pageviews"]) for x in rows] == [("/a", "7", "7")]
    assert (await client.get("/dashboard/api/privacy")).status == 403  # analyst only


async def test_privacy_overview_names_the_actor(start: AppFactory, config: Any) -> None:
    named = []
    for t in tenants():
        keys = tuple(
            replace(k, name="Priya (privacy)") if k.sha256 == hash_key(PRIVACY_KEY) else k
            for k in t.keys
        )
        named.append(replace(t, keys=keys))
    client = await start(tenants=tuple(named))
    assert isinstance(named[0].keys[0], ApiKeyConfig)
    r = await client.put(
        "/v1/policy", data="version = 2\n[reports]\nmin_k = 7\n", headers=auth(PRIVACY_KEY)
    )
    assert r.status == 200, await r.text()
    save_last(config.storage.path, [Finding("access_log", "path", "email", 2)], 40)
    r = await client.get("/v1/privacy/overview", headers=auth(PRIVACY_KEY))
    body = await check(r, "/v1/privacy/overview", "get")
    assert r.status == 200
    names = {e["actor_name"] for e in body["audit"]}
    assert "Priya (privacy)" in names
    assert body["policy"]["settings"]["reports.min_k"] == 7
    assert body["scan_pii"]["clean"] is False and body["scan_pii"]["findings"][0]["rows"] == 2
    assert isinstance(body["keys"]["held"], list) and body["keys"]["shredded"] == []
    assert (await client.get("/v1/privacy/overview", headers=auth(ANALYST_KEY))).status == 403
    assert (await sign_in(client, ADMIN_KEY)).status == 303
    r = await client.get("/dashboard/api/privacy")
    assert r.status == 200 and (await r.json())["tenant_id"] == "acme"


async def test_behind_a_tls_proxy_the_cookie_is_secure(start: AppFactory, config: Any) -> None:
    """Off loopback, plain HTTP is served only behind a TLS-terminating proxy: the browser sees
    https (its Origin says so) and the cookie must be Secure."""
    server = replace(config.server, host="0.0.0.0", allow_plaintext=True)
    client = await start(server=server)
    host = str(client.make_url("")).split("://")[1].rstrip("/")
    r = await sign_in(client, ANALYST_KEY, origin=f"https://{host}")
    assert r.status == 303 and "Secure" in r.headers["Set-Cookie"]
    r = await sign_in(client, ANALYST_KEY, origin=f"https://{host}.evil.example")
    assert r.status == 403
