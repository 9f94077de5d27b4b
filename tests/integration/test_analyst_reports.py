"""Summary, time series and breakdowns (issue 13) against SQL truth on the stored rows.

The corpus (10,000 real access-log lines, dates moved to the last four days) is ingested once per
test; the truth is computed with `uniqExact` and `count` over `access_log` itself, so a rollup
that undercounts, a sum of daily visitors or a value lost in "(other)" shows up as a difference.
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from anonymizer.policy import DEFAULT_ASSET_EXTENSIONS
from collector import analyst_reports
from collector.analyst_reports import Scope, breakdown_sql
from collector.appkeys import SINK
from collector.dimensions import DIMENSIONS
from tests.conftest import (
    ANALYST_KEY,
    API_KEY,
    PRIVACY_KEY,
    AppFactory,
    auth,
    corpus_lines_today,
    query,
)
from tests.integration.test_openapi import check

TODAY = datetime.now(UTC).date()
FROM = (TODAY - timedelta(days=3)).isoformat()
TO = TODAY.isoformat()
ASSETS = "(" + ", ".join(f"'{e}'" for e in DEFAULT_ASSET_EXTENSIONS) + ")"
EXT = r"lower(extract(path, '\\.([A-Za-z0-9]{1,8})$'))"
UA = "Mozilla/5.0 (X11; Linux x86_64; rv:120.0) Gecko/20100101 Firefox/120.0"


async def ingest_corpus(client: Any) -> None:
    lines = corpus_lines_today()
    for i in range(0, len(lines), 2500):
        body = gzip.compress(("\n".join(lines[i : i + 2500]) + "\n").encode())
        headers = auth(**{"Content-Type": "text/plain", "Content-Encoding": "gzip"})
        r = await client.post("/v1/logs", data=body, headers=headers)
        assert r.status == 202, await r.text()


async def get(client: Any, report: str, status: int = 200, **params: str) -> Any:
    r = await client.get(f"/v1/reports/{report}", params=params, headers=auth(ANALYST_KEY))
    body = await check(r, f"/v1/reports/{report}", "get")
    assert r.status == status, body
    return body


def one(client: Any, sql: str) -> Any:
    return next(iter(query(client, sql)[0].values()))


async def test_summary_and_series_equal_sql_truth_on_the_corpus(start: AppFactory) -> None:
    client = await start()
    await ingest_corpus(client)
    where = f"toDate(time) BETWEEN '{FROM}' AND '{TO}'"
    visitors = one(
        client, f"SELECT uniqExact(visitor_id) FROM access_log WHERE {where} AND visitor_id != '' "
        "AND NOT is_bot",
    )  # fmt: skip
    assert visitors > 500  # the corpus has visitors, so the comparison means something
    body = await get(client, "summary", **{"from": FROM, "to": TO})
    s = body["summary"]
    assert s["visitors"]["value"] == visitors  # merged sketches, not a sum of days
    daily_sum = sum(
        r["n"]
        for r in query(
            client,
            "SELECT uniqExact(visitor_id) AS n FROM access_log WHERE visitor_id != '' "
            "AND NOT is_bot GROUP BY toDate(time)",
        )
    )
    assert daily_sum == visitors  # a visitor id lives one day: sums agree, and only then
    assert s["requests"]["value"] == one(client, f"SELECT count() FROM access_log WHERE {where}")
    assert s["bot_requests"]["value"] == one(
        client, f"SELECT countIf(is_bot) FROM access_log WHERE {where}"
    )
    pageviews = one(
        client,
        f"SELECT countIf(NOT is_bot AND {EXT} NOT IN {ASSETS}) FROM access_log WHERE {where}",
    )
    assert s["pageviews"]["value"] == pageviews < s["requests"]["value"]
    errors = one(client, f"SELECT countIf(status >= 500) / count() FROM access_log WHERE {where}")
    assert s["error_rate"]["value"] == pytest.approx(errors, abs=1e-6)
    assert s["visitors"]["previous"] == 0 and body["suppressed"] == 0 and body["k"] == 5

    series = await get(client, "timeseries", metric="requests", **{"from": FROM, "to": TO})
    assert [r["time"] for r in series["rows"]] == [
        (TODAY - timedelta(days=d)).isoformat() for d in (3, 2, 1, 0)
    ]
    truth = {
        str(r["d"]): r["n"]
        for r in query(client, "SELECT toDate(time) AS d, count() AS n FROM access_log GROUP BY d")
    }
    assert {r["time"]: r["value"] for r in series["rows"] if r["value"]} == truth
    hourly = await get(
        client, "timeseries", interval="hour", metric="pageviews", to=TO, **{"from": TO}
    )
    assert len(hourly["rows"]) == 24 and hourly["rows"][0]["time"] == f"{TO}T00:00:00Z"
    pv_today = one(
        client, f"SELECT countIf(NOT is_bot AND {EXT} NOT IN {ASSETS}) FROM access_log "
        f"WHERE toDate(time) = '{TO}'",
    )  # fmt: skip
    shown = [r for r in hourly["rows"] if r["value"] is not None]
    assert sum(r["value"] for r in shown) + 0 <= pv_today
    if hourly["suppressed"] == 0:
        assert sum(r["value"] for r in shown) == pv_today


async def test_breakdowns_equal_sql_truth_and_keep_small_values_apart(start: AppFactory) -> None:
    client = await start()
    await ingest_corpus(client)
    where = f"toDate(time) BETWEEN '{FROM}' AND '{TO}' AND NOT is_bot"
    body = await get(client, "breakdown", dimension="browsers", **{"from": FROM, "to": TO})
    rows = {r["value"]: r for r in body["rows"]}
    firefox = one(
        client,
        f"SELECT uniqExact(visitor_id) FROM access_log WHERE {where} AND visitor_id != '' "
        "AND browser_family = 'Firefox'",
    )
    assert rows["Firefox"]["visitors"] == firefox > 100
    assert rows["Firefox"]["requests"] == one(
        client, f"SELECT count() FROM access_log WHERE {where} AND browser_family = 'Firefox'"
    )
    # every value under k is withheld, and the answer says how many there were
    truth = query(
        client,
        f"SELECT browser_family AS b, uniqExact(nullIf(visitor_id, '')) AS v FROM access_log "
        f"WHERE {where} GROUP BY b",
    )
    small = {r["b"] for r in truth if r["v"] < 5}
    assert body["suppressed"] == len(small) and not small & set(rows)
    assert {r["b"] for r in truth if r["v"] >= 5} == set(rows) - {"(other)"}
    assert all(r["visitors"] >= 5 for r in body["rows"])

    pages = await get(client, "breakdown", dimension="pages", **{"from": FROM, "to": TO})
    assert pages["rows"] and not any(
        r["value"].endswith((".css", ".ico", ".png", ".js")) for r in pages["rows"]
    )
    refs = await get(client, "breakdown", dimension="referrers", **{"from": FROM, "to": TO})
    assert any(r["value"] for r in refs["rows"])  # referrer hosts are reported

    # a filter crosses dimensions: read from the table, same truth
    ff = await get(
        client, "breakdown", dimension="os", browsers="Firefox", **{"from": FROM, "to": TO}
    )
    os_truth = {
        r["o"]: r["v"]
        for r in query(
            client,
            f"SELECT os_family AS o, uniqExact(visitor_id) AS v FROM access_log WHERE {where} "
            "AND visitor_id != '' AND browser_family = 'Firefox' GROUP BY o HAVING v >= 5",
        )
    }
    assert {r["value"]: r["visitors"] for r in ff["rows"] if r["value"] != "(other)"} == os_truth
    summary = await get(client, "summary", browsers="Firefox", **{"from": FROM, "to": TO})
    assert summary["summary"]["visitors"]["value"] == firefox


async def test_rollup_and_table_paths_agree_for_every_dimension(start: AppFactory) -> None:
    """The rollup view and dimensions.py spell each dimension twice: both must give the same."""
    client = await start()
    await ingest_corpus(client)
    tail = [
        {"ip": f"10.1.{i}.1", "path": f"/p?utm_source=news&utm_medium=mail&utm_campaign=c{i % 2}",
         "user_agent": UA, "status": 500, "service": "web", "referrer": "https://example.org/x"}
        for i in range(12)
    ]  # fmt: skip
    assert (await (await client.post("/v1/logs", json=tail, headers=auth())).json())["accepted"]
    sink = client.app[SINK]
    for name, dim in DIMENSIONS.items():
        if dim.source != "access":
            continue
        scope = Scope("acme", TODAY - timedelta(days=3), TODAY, 5, {}, DEFAULT_ASSET_EXTENSIONS)
        params = scope.params() | {"dimension": name, "k": 5}

        def rows(s: Scope, params: dict[str, Any] = params, name: str = name) -> list[Any]:
            return sorted(map(str, sink.query(breakdown_sql(s, DIMENSIONS[name]), params)))

        from_rollup = rows(scope)
        assert from_rollup, name
        assert from_rollup == rows(
            Scope(scope.tenant, scope.frm, scope.to, 5, {}, scope.assets, raw=True)
        ), name


async def test_events_breakdown_filters_and_k(start: AppFactory) -> None:
    client = await start()
    events = [
        {"event": "export", "feature": "reports", "user_id": f"u{i}", "consent": ["analytics"]}
        for i in range(6)
    ]
    events += [{"event": "export", "feature": "admin", "user_id": "u0", "consent": ["analytics"]}]
    events += [{"event": "delete_account", "user_id": "lonely", "consent": ["analytics"]}]
    r = await client.post("/v1/events", json=events, headers=auth())
    assert (await r.json())["accepted"] == 8
    body = await get(client, "breakdown", dimension="events")
    assert [(r["value"], r["visitors"], r["events"]) for r in body["rows"]] == [("export", 6, 7)]
    assert body["suppressed"] == 1 and body["other_shown"] is False
    body = await get(client, "breakdown", dimension="features", events="export")
    assert [(r["value"], r["visitors"]) for r in body["rows"]] == [("reports", 6)]
    await get(client, "breakdown", 400, dimension="events", browsers="Firefox")


async def test_small_groups_merge_into_other_and_summary_withholds(start: AppFactory) -> None:
    client = await start()
    records = [{"ip": f"198.51.100.{i}", "path": "/popular", "user_agent": UA} for i in range(8)]
    records += [{"ip": f"203.0.113.{i}", "path": f"/rare-{i}", "user_agent": UA} for i in range(6)]
    records += [{"ip": "192.0.2.1", "path": "/style.css", "user_agent": UA}]
    r = await client.post("/v1/logs", json=records, headers=auth())
    assert (await r.json())["accepted"] == 15
    body = await get(client, "breakdown", dimension="pages")
    rows = {r["value"]: r for r in body["rows"]}
    assert set(rows) == {"/popular", "(other)"} and rows["(other)"]["visitors"] == 6
    assert body["suppressed"] == 6 and body["other_shown"] is True
    assert rows["/popular"]["pageviews"] == 8
    summary = await get(client, "summary")
    assert summary["summary"]["pageviews"]["value"] == 14  # the stylesheet is not a pageview
    assert summary["summary"]["requests"]["value"] == 15
    # a filter down to one visitor: the period holds fewer than k subjects, no number is shown
    few = await get(client, "summary", pages="/rare-1")
    assert few["summary"]["visitors"]["value"] is None and few["suppressed"] >= 1
    assert few["summary"]["requests"]["value"] is None


@pytest.mark.parametrize(
    ("report", "params"),
    [("breakdown", {}), ("breakdown", {"dimension": "nope"}),
     ("breakdown", {"dimension": "pages", "colour": "red"}),
     ("breakdown", {"dimension": "pages", "browsers": "x" * 1001}),
     ("breakdown", {"dimension": "pages", "limit": "0"}),
     ("summary", {"k": "2"}), ("summary", {"events": "export"}),
     ("timeseries", {"interval": "minute"}), ("timeseries", {"metric": "bytes"}),
     ("timeseries", {"interval": "hour", "from": "2026-01-01", "to": "2026-03-01"}),
     ("summary", {"from": "2026-02-30"})],
)  # fmt: skip
async def test_bad_parameters_are_refused(
    start: AppFactory, report: str, params: dict[str, str]
) -> None:
    client = await start()
    body = await get(client, report, 400, **params)
    assert set(body) == {"error", "detail"} and "x" * 20 not in body["detail"]


async def test_utm_dimensions_need_the_policy_to_keep_them(
    start: AppFactory, tmp_path: Any
) -> None:
    policy = tmp_path / "policy.toml"
    policy.write_text('version = 1\n[url]\nkeep_query_params = ["utm_source"]\n')
    client = await start(policy_file=policy)
    await get(client, "breakdown", dimension="utm_source")
    await get(client, "breakdown", 400, dimension="utm_campaign")
    await get(client, "summary", 400, utm_medium="x")


async def test_scopes_and_routes(start: AppFactory) -> None:
    client = await start()
    r = await client.get("/v1/reports/summary", headers=auth(API_KEY))
    assert r.status == 403
    assert set(analyst_reports.ROUTES) == {
        "/v1/reports/summary", "/v1/reports/timeseries", "/v1/reports/breakdown"
    }  # fmt: skip
    r = await client.get("/v1/reports/traffic", headers=auth(ANALYST_KEY))
    assert r.status == 200 and (await r.json())["report"] == "traffic"  # the named reports stay


async def test_subject_deletion_rebuilds_the_report_rollups(start: AppFactory) -> None:
    client = await start()
    records = [
        {"ip": f"198.51.100.{i}", "path": "/a", "user_agent": UA, "user_id": f"u{i}"}
        for i in range(7)
    ]
    await client.post("/v1/logs", json=records, headers=auth())
    before = (await get(client, "breakdown", dimension="pages"))["rows"]
    assert [(r["value"], r["visitors"]) for r in before] == [("/a", 7)]
    r = await client.post("/v1/subjects/delete", json={"user_id": "u0"}, headers=auth(PRIVACY_KEY))
    assert (await r.json())["verified"] is True
    after = await get(client, "breakdown", dimension="pages")
    assert [(r["value"], r["visitors"]) for r in after["rows"]] == [("/a", 6)]
    summary = await get(client, "summary")
    assert summary["summary"]["requests"]["value"] == 6  # access_hourly rebuilt too
