"""`GET /v1/reports/{name}`: aggregated, k-anonymous reports from the daily rollups.

A group (a day and the report's dimensions) is shown only when it holds at least k distinct
subjects (daily visitors, else pseudonymous users; mail pieces for the funnel). Smaller groups of
a day are merged into one `(other)` group, itself shown only when it reaches k. A group with no
subject measure at all (no visitor id, no pseudonym) counts as 0: it is never shown on its own.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from collector.appkeys import DB, PIPELINE, TENANT
from collector.errors import BadRequest, NotFound
from collector.params import DATE_MIN, UINT32_MAX, check_names, day, uint

# the k-anonymity floor: no report shows a group of fewer distinct subjects, whatever k is asked
PARAMS = ("from", "to", "k")
MAX_DAYS = 366
OTHER = "(other)"


@dataclass(frozen=True, slots=True)
class Report:
    name: str
    table: str
    description: str
    dims: tuple[str, ...]
    sums: tuple[str, ...]  # SimpleAggregateFunction(sum) columns
    sketches: tuple[str, ...]  # uniqCombined64 sketch columns, reported as distinct counts
    quantiles: tuple[str, ...] = ()  # quantiles(0.5, 0.9, 0.99) columns -> p50, p90, p99
    measure: str = ""  # SQL over the sketch counts: the group's number of distinct subjects


REPORTS = {
    r.name: r
    for r in (
        Report(
            "traffic", "access_daily", "requests per route and status class, with latency",
            ("service", "host", "route", "status_class"), ("requests", "bytes"),
            ("visitors", "users"), ("duration_ms",), "if(visitors > 0, visitors, users)",
        ),
        Report(
            "clients", "access_daily", "requests by browser, OS, device and country",
            ("browser_family", "os_family", "device_family", "geo_country", "is_bot"),
            ("requests",), ("visitors", "users"), (), "if(visitors > 0, visitors, users)",
        ),
        Report(
            "events", "events_daily", "product-usage events per event, feature and action",
            ("event", "feature", "action"), ("events", "identified"), ("users",), (), "users",
        ),
        Report(
            "mail_funnel", "mail_daily", "mail-scan events per mailer id and ZIP3",
            ("mailer_id", "zip3", "event"), ("scans",), ("pieces",), (), "pieces",
        ),
    )
}  # fmt: skip


def _measure(report: Report, name_of: dict[str, str]) -> str:
    expr = report.measure
    for c in sorted(report.sketches, key=len, reverse=True):
        expr = expr.replace(c, name_of[c])
    return f"({expr})"


def report_sql(report: Report) -> str:
    """Two levels: per group; then the small groups of a day merged into (other); then only
    what reaches k is kept. Inner names carry a `g_` prefix so no outer alias shadows them."""
    inner = ["day", *(f"{d} AS g_{d}" for d in report.dims)]
    inner += [f"sum({c}) AS g_{c}" for c in report.sums]
    for c in report.sketches:
        inner += [
            f"uniqCombined64MergeState({c}) AS g_{c}_state",
            f"ifNull(uniqCombined64Merge({c}), 0) AS g_{c}_n",
        ]
    inner += [f"quantilesMergeState(0.5, 0.9, 0.99)({c}) AS g_{c}_state" for c in report.quantiles]
    small = _measure(report, {c: f"g_{c}_n" for c in report.sketches}) + " < {k:UInt32}"
    merged = {c: f"ifNull(uniqCombined64Merge(g_{c}_state), 0)" for c in report.sketches}
    outer = ["day"]
    outer += [f"if({small}, '{OTHER}', toString(g_{d})) AS {d}" for d in report.dims]
    outer += [f"sum(g_{c}) AS {c}" for c in report.sums]
    outer += [f"{merged[c]} AS {c}" for c in report.sketches]
    outer += [f"quantilesMerge(0.5, 0.9, 0.99)(g_{c}_state) AS {c}" for c in report.quantiles]
    outer.append(f"countIf({small}) AS merged_groups")
    return (
        f"SELECT {', '.join(outer)} FROM ("
        f"SELECT {', '.join(inner)} FROM `{report.table}` "
        "WHERE tenant_id = {tenant:String} AND day BETWEEN {from:Date} AND {to:Date} "
        f"GROUP BY day, {', '.join('g_' + d for d in report.dims)}"
        f") GROUP BY day, {', '.join(report.dims)} "
        f"HAVING {_measure(report, merged)} >= {{k:UInt32}} "
        f"ORDER BY day, {report.sums[0]} DESC"
    )


async def get_report(request: web.Request) -> web.Response:
    report = REPORTS.get(request.match_info["name"])
    if report is None:
        raise NotFound(f"no such report; reports: {', '.join(REPORTS)}")
    query = request.query
    check_names(query, PARAMS)
    today = datetime.now(UTC).date()
    to = day(query, "to", today)
    frm = day(query, "from", max(to - timedelta(days=6), DATE_MIN))
    if frm > to or (to - frm).days >= MAX_DAYS:
        raise BadRequest(f"from..to must be in order and span at most {MAX_DAYS} days")
    # k is bound as UInt32: anything wider would wrap (2**32 -> 0) and show every group
    # the tenant's policy sets the smallest k anyone may ask for (and the default)
    min_k = request.app[PIPELINE].policies.for_tenant(request[TENANT].id).reports.min_k
    k = uint(query, "k", min_k, min_k, UINT32_MAX)
    params: dict[str, Any] = {
        "tenant": request[TENANT].id,
        "from": frm.isoformat(),
        "to": to.isoformat(),
        "k": k,
    }
    rows = await request.app[DB].query(report_sql(report), params)
    for row in rows:
        for c in report.quantiles:
            p50, p90, p99 = row.pop(c)
            row[f"{c}_p50"], row[f"{c}_p90"], row[f"{c}_p99"] = p50, p90, p99
    return web.json_response(
        {
            "report": report.name,
            "description": report.description,
            "from": frm.isoformat(),
            "to": to.isoformat(),
            "k": k,
            "rows": rows,
        }
    )
