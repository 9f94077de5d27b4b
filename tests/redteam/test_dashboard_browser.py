"""The dashboard in a real browser (Debian's headless Chromium over the DevTools Protocol) against
the real service: sign in with an analyst key, load the page on the corpus, and check that the
numbers in the DOM equal SQL truth on the stored rows, that the page asked nothing of any origin
but the collector's, and that no script error or CSP violation happened. Screenshots are saved
in the test's tmp dir (paths printed). Skipped, with the reason, when chromium is missing."""

from __future__ import annotations

import asyncio
import gzip
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import aiohttp
import orjson
import pytest

from tests.conftest import corpus_lines_today
from tests.redteam.browser import CHROMIUM, SKIP_REASON, headless_chromium
from tests.redteam.service import ANALYST_KEY, PRIVACY_KEY, running_service

pytestmark = [pytest.mark.slow, pytest.mark.skipif(CHROMIUM is None, reason=SKIP_REASON)]
REPO = Path(__file__).resolve().parents[2]
WINDOW = "toDate(time) >= today() - 6"  # the dashboard's default range: the last 7 days


async def ingest(url: str, headers: dict[str, str]) -> None:
    lines = corpus_lines_today()
    async with aiohttp.ClientSession() as s:
        for i in range(0, len(lines), 2500):
            body = gzip.compress(("\n".join(lines[i : i + 2500]) + "\n").encode())
            h = {**headers, "Content-Type": "text/plain", "Content-Encoding": "gzip"}
            async with s.post(url + "/v1/logs", data=body, headers=h) as r:
                assert r.status == 202, await r.text()


def sql(config: Path, query: str) -> list[dict[str, Any]]:
    """Truth from the stored rows, read by `collector sql` once the service has stopped."""
    out = subprocess.run(
        [sys.executable, "-m", "collector", "sql", "--config", str(config), query],
        check=True, capture_output=True, timeout=120, cwd=config.parent,
    ).stdout  # fmt: skip
    return [orjson.loads(line) for line in out.splitlines() if line]


async def sign_in(page: Any, url: str, key: str) -> None:
    await page.goto(url + "/dashboard")
    assert await page.eval("location.pathname") == "/dashboard/login"  # not signed in yet
    await page.eval(
        f"document.getElementById('key').value = {orjson.dumps(key).decode()};"
        "document.getElementById('sign-in').click(); true"
    )
    await page.wait_for("location.pathname === '/dashboard' && document.readyState === 'complete'")
    await page.wait_for("document.body.getAttribute('data-loaded') === 'yes'")


DOM = """(() => {
  const metric = (m) => document.getElementById('metric-' + m).getAttribute('data-value');
  const rows = (d) => Object.fromEntries([...document.querySelectorAll(
      '#breakdown-' + d + ' tr[data-value]')].map((tr) => [tr.getAttribute('data-value'),
      Number(tr.querySelector('td.visitors').getAttribute('data-n'))]));
  return {visitors: metric('visitors'), pageviews: metric('pageviews'),
          requests: metric('requests'), bots: metric('bot_requests'),
          browsers: rows('browsers'), pages: rows('pages'),
          points: document.getElementById('chart').getAttribute('data-points'),
          canvas: document.querySelectorAll('#chart canvas').length,
          bars: document.querySelectorAll('#breakdown-browsers .bar').length,
          csv: document.querySelector('#breakdown-pages a.csv').getAttribute('href')};
})()"""


async def test_dashboard_in_chromium_shows_sql_truth(tmp_path: Path) -> None:
    async with running_service(tmp_path) as svc:
        await ingest(svc.url, svc.headers())
        async with headless_chromium(tmp_path) as page:
            await sign_in(page, svc.url, ANALYST_KEY)
            cookies = (await page.send("Network.getCookies"))["cookies"]
            session = [c for c in cookies if c["name"] == "tc_session"]
            assert session and session[0]["httpOnly"] and session[0]["sameSite"] == "Strict"
            assert await page.eval("document.cookie") == ""  # HttpOnly: no script sees it
            shown = await page.eval(DOM)
            errors = list(page.errors)  # none while signing in and loading every report
            shot = await page.screenshot(tmp_path / "dashboard.png")
            print(f"\nscreenshot: {shot}")
            csv = await page.eval(
                f"fetch({orjson.dumps(shown['csv']).decode()}).then(r => r.text())"
            )
            assert csv.startswith("value,visitors,pageviews")
            # sign out: the session is gone server-side, the API answers 401
            await page.eval("document.getElementById('sign-out').click(); true")
            await page.wait_for("location.pathname === '/dashboard/login'")
            status = await page.eval("fetch('/dashboard/api/summary').then(r => r.status)")
            assert status == 401
            # the privacy view, for a privacy key
            page.errors.clear()  # (the 401 above was asked for)
            await sign_in(page, svc.url, PRIVACY_KEY)
            await page.eval("document.getElementById('tab-privacy').click(); true")
            await page.wait_for("document.querySelectorAll('#privacy-audit tr').length > 1")
            assert "collector start" in await page.eval(
                "document.getElementById('privacy-audit').textContent"
            )
            print(f"screenshot: {await page.screenshot(tmp_path / 'privacy.png')}")
            requests, errors = list(page.requests), errors + page.errors
    assert await svc.stop() == 0
    if os.environ.get("DASHBOARD_SCREENSHOT"):  # refresh docs/dashboard.png
        shutil.copy(tmp_path / "dashboard.png", REPO / "docs" / "dashboard.png")

    # nothing asked of any other origin, no script error, no CSP violation
    foreign = [u for u in requests if not u.startswith((svc.url + "/", "data:", "about:"))]
    assert not foreign, foreign
    assert not errors, errors
    assert any(u.endswith("/dashboard/static/uPlot.iife.min.js") for u in requests)

    def one(query: str) -> int:
        return int(next(iter(sql(svc.config, query)[0].values())))

    human = f"{WINDOW} AND NOT is_bot"
    visitors = one(
        f"SELECT uniqExact(visitor_id) FROM access_log WHERE {human} AND visitor_id != ''"
    )
    assert visitors > 1000
    assert int(shown["visitors"]) == visitors
    assert int(shown["requests"]) == one(f"SELECT count() FROM access_log WHERE {WINDOW}")
    assert int(shown["bots"]) == one(f"SELECT countIf(is_bot) FROM access_log WHERE {WINDOW}")
    assert int(shown["pageviews"]) < int(shown["requests"])
    truth = {
        r["b"]: int(r["v"])
        for r in sql(
            svc.config,
            f"SELECT browser_family AS b, uniqExact(visitor_id) AS v FROM access_log "
            f"WHERE {human} AND visitor_id != '' GROUP BY b HAVING v >= 5",
        )
    }
    assert shown["browsers"].pop("(other)", 0) >= 0
    assert shown["browsers"] == truth and shown["browsers"]["Firefox"] > 100
    assert not any(p.endswith((".css", ".png", ".ico", ".js")) for p in shown["pages"])
    assert shown["canvas"] >= 1 and int(shown["points"]) == 7 and shown["bars"] >= 3
    await asyncio.sleep(0)
