"""Report query times over 1M access-log rows: from the rollups vs the same report on the raw table.

Builds a throwaway chDB database, inserts N synthetic access-log rows spread over 30 days (with the
materialized views on, so the rollups fill as in production), then runs each report's SQL as the
API builds it (collector/analyst_reports.py) twice: from the rollups (`access_hourly`,
`access_dims_daily`) and from `access_log` (what a filtered report reads). Median of 5 runs after
a warm-up. Prints a Markdown table; `--write` also writes it to bench/REPORTS.md.

    .venv/bin/python bench/report_bench.py [--rows 1000000] [--write]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from anonymizer.policy import DEFAULT_ASSET_EXTENSIONS
from collector import rollups
from collector.analyst_reports import Scope, breakdown_sql, totals_sql
from collector.config import StorageConfig
from collector.dimensions import DIMENSIONS
from collector.storage import open_sink

DAYS = 30
FILL = """
INSERT INTO access_log (tenant_id, time, service, host, method, path, route, query, status, bytes,
  duration_ms, referrer_host, geo_country, geo_region, browser_family, os_family, device_family,
  is_mobile, is_pc, is_bot, visitor_id, policy_version, key_epoch, retention_days)
SELECT 'acme', now64(3) - toIntervalSecond(rand(1) % ({days} * 86400)), 'web', 'example.org', 'GET',
  concat('/p/', toString(rand(2) % 2000), if(rand(3) % 4 = 0, '.css', '')),
  concat('/p/', toString(rand(2) % 2000), if(rand(3) % 4 = 0, '.css', '')),
  if(rand(4) % 10 = 0, 'utm_source=news', ''), [200, 200, 200, 404, 500, 301][rand(5) % 6 + 1],
  rand(6) % 50000, toFloat32(rand(7) % 1000) / 10,
  ['', 'google.com', 'bing.com', 'news.example'][rand(8) % 4 + 1],
  ['US', 'DE', 'FR', 'JP', 'BR', 'IN'][rand(9) % 6 + 1],
  ['CA', 'BE', 'IDF', '13', 'SP', 'MH'][rand(9) % 6 + 1],
  ['Firefox', 'Chrome', 'Safari', 'Edge', 'Opera', 'Googlebot'][rand(10) % 6 + 1],
  ['Windows', 'Mac OS X', 'Linux', 'Android', 'iOS'][rand(11) % 5 + 1], 'Other',
  rand(11) % 5 >= 3, rand(11) % 5 < 3, rand(10) % 6 = 5,
  hex(cityHash64(rand(12) % 60000)), 1, '2026-11', 395
FROM numbers({rows})
"""


def insert_cost(sink: Any) -> list[str]:
    """What the views cost on the write path: 40 inserts of 5,000 rows (a minute of traffic
    each, like the batcher's), with every view, without the 0009 views, without any view."""
    fill = FILL.replace("rand(1) % ({days} * 86400)", "rand(1) % 60")
    out = ["", "| insert, 40 x 5,000 rows | µs per row |", "| --- | ---: |"]
    steps = (
        ("every view (0008 + 0009)", ()),
        ("without the 0009 views", ("access_dims_daily_mv", "access_hourly_mv")),
        ("no view at all", ("access_daily_mv", "events_daily_mv", "mail_daily_mv")),
    )
    for label, drop in steps:
        for view in drop:
            sink.query(f"DROP VIEW IF EXISTS {view}")
        sink.query("TRUNCATE TABLE access_log")
        t0 = time.perf_counter()
        for _ in range(40):
            sink.query(fill.format(days=1, rows=5000))
        out.append(f"| {label} | {(time.perf_counter() - t0) / 200_000 * 1e6:.1f} |")
    return out


def timed(sink: Any, sql: str, params: dict[str, Any], runs: int = 5) -> tuple[float, Any]:
    rows = sink.query(sql, params)  # warm-up
    times = []
    for _ in range(runs):
        t0 = time.perf_counter()
        sink.query(sql, params)
        times.append((time.perf_counter() - t0) * 1000)
    return statistics.median(times), rows


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    ap.add_argument("--write", action="store_true")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        sink = open_sink(StorageConfig(path=Path(tmp)))
        try:
            rollups.migrate(sink)
            t0 = time.perf_counter()
            sink.query(FILL.format(days=DAYS, rows=args.rows))
            fill_s = time.perf_counter() - t0
            sizes = {
                r["table"]: int(r["rows"])
                for r in sink.query(
                    "SELECT table, sum(rows) AS rows FROM system.parts WHERE active "
                    "AND database = currentDatabase() GROUP BY table"
                )
            }
            today = datetime.now(UTC).date()
            frm = today - timedelta(days=DAYS - 1)
            lines = run(sink, frm, today) + insert_cost(sink)
        finally:
            sink.close()
    head = [
        f"Report queries over {args.rows:,} access-log rows ({DAYS} days, synthetic: 60,000 "
        f"visitors, 2,000 routes), chDB, median of 5 runs after a warm-up. Insert with the "
        f"views on: {fill_s:.1f} s. Rollup rows: access_hourly "
        f"{sizes.get('access_hourly', 0):,}, access_dims_daily "
        f"{sizes.get('access_dims_daily', 0):,}.",
        "",
        "| report | rollup ms | raw table ms | speed-up | same numbers |",
        "| --- | ---: | ---: | ---: | --- |",
    ]
    text = "\n".join(head + lines) + "\n"
    print(text)
    if args.write:
        (Path(__file__).parent / "REPORTS.md").write_text("# Report query times\n\n" + text)


def _comparable(rows: list[dict[str, Any]]) -> list[str]:
    return sorted(str({k: v for k, v in r.items() if k != "t_duration"}) for r in rows)


def run(sink: Any, frm: Any, to: Any) -> list[str]:
    base, _ = timed(sink, "SELECT 1", {})
    out = [f"| (a trivial query: the engine's per-query cost) | {base:.1f} | {base:.1f} | | |"]
    cases: list[tuple[str, Any]] = [
        ("summary (30 days)", totals_sql),
        ("timeseries, hourly (30 days)", lambda s: totals_sql(s, "hour")),
    ]
    for name in ("browsers", "pages", "countries", "referrers"):
        cases.append(
            (f"breakdown {name} (30 days)", lambda s, d=DIMENSIONS[name]: breakdown_sql(s, d))
        )
    for label, build in cases:
        results = []
        for raw in (False, True):
            scope = Scope("acme", frm, to, 5, {}, DEFAULT_ASSET_EXTENSIONS, raw=raw)
            params = scope.params() | {"k": 5, "dimension": label.split()[1]}
            results.append(timed(sink, build(scope), params))
        (fast, a), (slow, b) = results
        # durations are quantile estimates (a reservoir of 8,192 values per state): merged
        # states and one pass over the rows may pick slightly different samples
        same = _comparable(a) == _comparable(b)
        verdict = "yes" if same else "NO"
        out.append(f"| {label} | {fast:.1f} | {slow:.1f} | {slow / fast:.1f}x | {verdict} |")
    return out


if __name__ == "__main__":
    main()
