"""`GET /v1/reports/summary`, `/timeseries` and `/breakdown`: what an analyst looks at.

Numbers come from the rollups of sql/0011_report_rollups.sql when no filter is given (one row per
day and dimension value, or per hour), and from the anonymized `access_log` when one is (a filter
crosses dimensions, which the per-dimension rollups do not hold). Event dimensions always read
`events_daily`. Both paths build the same aggregate states, so the numbers agree.

Definitions (README, "Reports"):
- visitors: distinct daily visitor ids of non-bot requests (else user pseudonyms), merged from
  sketches across days and hours, never summed; a visitor id lives one day, so one person on two
  days counts twice, as in any cookieless analytics.
- pageviews: non-bot requests whose path does not end in an extension of the policy's
  `[reports] asset_extensions`; requests: every request; bot_requests: requests of bots.
- error rate: the share of requests answered 5xx; durations: median and 95th percentile.

k-anonymity: a breakdown value with fewer than k distinct subjects (visitors, else users) is
merged into `(other)`, itself shown only when it reaches k; a summary period or a time bucket
under k shows no numbers. Every answer says how many groups it withheld (`suppressed`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

from aiohttp import web

from collector.appkeys import DB, PIPELINE, TENANT
from collector.dimensions import DIMENSIONS, EXTENSION_SQL, Dimension
from collector.errors import BadRequest
from collector.params import DATE_MIN, UINT32_MAX, check_names, day, uint

OTHER = "(other)"
MAX_DAYS = 366
MAX_HOUR_DAYS = 31  # an hourly series spans at most this many days (744 points)
MAX_FILTER_CHARS = 1000
MAX_LIMIT = 1000
METRICS = (
    "visitors", "pageviews", "requests", "bot_requests", "error_rate", "duration_p50",
    "duration_p95",
)  # fmt: skip
_COMMON = ("from", "to", "k")


@dataclass(frozen=True, slots=True)
class Scope:
    """What every report is asked for: the caller's tenant, the days, k, the filters."""

    tenant: str
    frm: date
    to: date
    k: int
    filters: dict[str, str]
    assets: tuple[str, ...]
    raw: bool = False  # read the anonymized table even without filters (the bench compares)

    @property
    def from_table(self) -> bool:
        return self.raw or bool(self.filters)

    def params(self, frm: date | None = None, to: date | None = None) -> dict[str, Any]:
        out: dict[str, Any] = {
            "tenant": self.tenant,
            "from": (frm or self.frm).isoformat(),
            "to": (to or self.to).isoformat(),
            "assets": list(self.assets),
        }
        out.update({f"f_{name}": value for name, value in self.filters.items()})
        return out


def _scope(request: web.Request, extra: tuple[str, ...], max_days: int = MAX_DAYS) -> Scope:
    query = request.query
    check_names(query, (*_COMMON, *extra, *DIMENSIONS))
    today = datetime.now(UTC).date()
    to = day(query, "to", today)
    frm = day(query, "from", max(to - timedelta(days=6), DATE_MIN))
    if frm > to or (to - frm).days >= max_days:
        raise BadRequest(f"from..to must be in order and span at most {max_days} days")
    tenant = request[TENANT].id
    policy = request.app[PIPELINE].policies.for_tenant(tenant)
    k = uint(query, "k", policy.reports.min_k, policy.reports.min_k, UINT32_MAX)
    filters: dict[str, str] = {}
    for name, dim in DIMENSIONS.items():
        value = query.get(name)
        if value is None:
            continue
        if len(value) > MAX_FILTER_CHARS:
            raise BadRequest(f"{name}: a filter value has at most {MAX_FILTER_CHARS} characters")
        _check_kept(dim, policy.url.keep_query_params)
        filters[name] = value
    return Scope(tenant, frm, to, k, filters, policy.reports.asset_extensions)


def _check_kept(dim: Dimension, kept: tuple[str, ...] | list[str] | frozenset[str]) -> None:
    if dim.query_param and dim.query_param not in kept:
        raise BadRequest(
            f"{dim.name}: the policy does not keep this query parameter (url.keep_query_params)"
        )


def _filters_of(scope: Scope, source: str) -> str:
    """` AND expr = {f_name:String}` per filter; a filter on the other source is refused."""
    out = ""
    for name in scope.filters:
        dim = DIMENSIONS[name]
        if dim.source != source:
            raise BadRequest(f"{name}: this filter does not apply to {source} reports")
        out += f" AND ({dim.sql}) = {{f_{name}:String}}"
    return out


_RAW_WHERE = "tenant_id = {tenant:String} AND toDate(time) BETWEEN {from:Date} AND {to:Date}"
_RAW_SKETCHED = {"visitors": "nullIf(visitor_id, '')", "users": "nullIf(user_pseudonym, '')"}


@dataclass(frozen=True, slots=True)
class _Read:
    """Where a report's rows come from, one level deep: a rollup (its states are merged) or the
    anonymized table (states are built from the rows). Both give the same aggregate states."""

    table: str
    where: str
    extension: str  # SQL of the request path's extension
    raw: bool

    def count(self, cond: str = "") -> str:
        if self.raw:
            return f"countIf({cond})" if cond else "count()"
        return f"sumIf(requests, {cond})" if cond else "sum(requests)"

    def distinct(self, sketch: str, cond: str, state: bool = False) -> str:
        """Distinct visitors or users where `cond` (as a number, or as a mergeable state)."""
        if self.raw:
            call = f"uniqCombined64{'State' if state else ''}If({_RAW_SKETCHED[sketch]}, {cond})"
        else:
            call = f"uniqCombined64Merge{'State' if state else ''}If({sketch}, {cond})"
        return call if state else f"ifNull({call}, 0)"

    def pageview(self) -> str:
        return f"NOT is_bot AND {self.extension} NOT IN {{assets:Array(String)}}"


def _totals_read(scope: Scope) -> _Read:
    if scope.from_table:
        where = _RAW_WHERE + _filters_of(scope, "access")
        return _Read("access_log", where, EXTENSION_SQL, raw=True)
    where = "tenant_id = {tenant:String} AND toDate(hour) BETWEEN {from:Date} AND {to:Date}"
    return _Read("access_hourly", where, "extension", raw=False)


def totals_sql(scope: Scope, bucket: str = "") -> str:
    """The summary metrics over the range, or per `day` / `hour` bucket, from the hourly rollup
    or (filtered) the table. `t_` names: an alias equal to a column would shadow it."""
    r = _totals_read(scope)
    errors = "countIf(status >= 500)" if r.raw else "sum(errors)"
    duration = "quantiles" if r.raw else "quantilesMerge"
    cols = (
        f"{r.distinct('visitors', 'NOT is_bot')} AS t_visitors, "
        f"{r.distinct('users', 'NOT is_bot')} AS t_users, "
        f"{r.count(r.pageview())} AS t_pageviews, {r.count()} AS t_requests, "
        f"{r.count('is_bot')} AS t_bot_requests, {errors} AS t_errors, "
        f"{duration}(0.5, 0.95)(duration_ms) AS t_duration"
    )
    if not bucket:
        return f"SELECT {cols} FROM {r.table} WHERE {r.where}"
    if r.raw:
        b = "toDate(time)" if bucket == "day" else "toStartOfHour(time, 'UTC')"
    else:
        b = "toDate(hour)" if bucket == "day" else "hour"
    return (
        f"SELECT {b} AS bucket, {cols} FROM {r.table} WHERE {r.where} "
        "GROUP BY bucket ORDER BY bucket"
    )


def _subjects(row: dict[str, Any]) -> int:
    return int(row["t_visitors"]) or int(row["t_users"])


def _finite(x: Any) -> float | None:
    return None if x is None or (isinstance(x, float) and math.isnan(x)) else float(x)


def _metrics(row: dict[str, Any]) -> dict[str, Any]:
    requests = int(row["t_requests"])
    duration = row.get("t_duration") or [None, None]
    return {
        "visitors": int(row["t_visitors"]),
        "pageviews": int(row["t_pageviews"]),
        "requests": requests,
        "bot_requests": int(row["t_bot_requests"]),
        "error_rate": round(int(row["t_errors"]) / requests, 6) if requests else None,
        "duration_p50": _finite(duration[0]),
        "duration_p95": _finite(duration[1]),
    }


async def _period(request: web.Request, scope: Scope, frm: date, to: date) -> dict[str, Any]:
    """The totals of one period, or None for each metric when it holds fewer than k subjects."""
    sql = totals_sql(scope)
    rows = await request.app[DB].query(sql, scope.params(frm, to))
    row = rows[0] if rows else {}
    if not row or int(row["t_requests"]) == 0:
        empty = {"error_rate": None, "duration_p50": None, "duration_p95": None}
        return dict.fromkeys(METRICS, 0) | empty | {"_withheld": False}
    if _subjects(row) < scope.k:
        return dict.fromkeys(METRICS) | {"_withheld": True}
    return _metrics(row) | {"_withheld": False}


def _echo(scope: Scope) -> dict[str, Any]:
    return {
        "from": scope.frm.isoformat(),
        "to": scope.to.isoformat(),
        "k": scope.k,
        "filters": scope.filters,
    }


async def get_summary(request: web.Request) -> web.Response:
    scope = _scope(request, ())
    _filters_of(scope, "access")
    length = (scope.to - scope.frm).days + 1
    prev_to = scope.frm - timedelta(days=1)
    prev_from = max(prev_to - timedelta(days=length - 1), DATE_MIN)
    current = await _period(request, scope, scope.frm, scope.to)
    if prev_to < DATE_MIN:
        previous: dict[str, Any] = dict.fromkeys(METRICS) | {"_withheld": False}
    else:
        previous = await _period(request, scope, prev_from, prev_to)
    suppressed = int(current.pop("_withheld")) + int(previous.pop("_withheld"))
    rows = [{"metric": m, "value": current[m], "previous": previous[m]} for m in METRICS]
    return web.json_response(
        {
            "report": "summary",
            **_echo(scope),
            "previous_from": prev_from.isoformat(),
            "previous_to": prev_to.isoformat(),
            "suppressed": suppressed,
            "rows": rows,
            "summary": {
                r["metric"]: {"value": r["value"], "previous": r["previous"]} for r in rows
            },
        }
    )


def _buckets(scope: Scope, interval: str) -> list[str]:
    start = datetime(scope.frm.year, scope.frm.month, scope.frm.day, tzinfo=UTC)
    if interval == "day":
        return [
            (scope.frm + timedelta(days=i)).isoformat()
            for i in range((scope.to - scope.frm).days + 1)
        ]
    hours = ((scope.to - scope.frm).days + 1) * 24
    return [(start + timedelta(hours=i)).strftime("%Y-%m-%dT%H:00:00Z") for i in range(hours)]


def _bucket_key(value: Any, interval: str) -> str:
    text = str(value)
    return text[:10] if interval == "day" else text[:13].replace(" ", "T") + ":00:00Z"


async def get_timeseries(request: web.Request) -> web.Response:
    interval = request.query.get("interval", "day")
    if interval not in ("day", "hour"):
        raise BadRequest("interval: must be day or hour")
    metric = request.query.get("metric", "visitors")
    if metric not in METRICS:
        raise BadRequest(f"metric: must be one of {', '.join(METRICS)}")
    scope = _scope(
        request, ("interval", "metric"), MAX_HOUR_DAYS if interval == "hour" else MAX_DAYS
    )
    _filters_of(scope, "access")
    sql = totals_sql(scope, interval)
    found = {
        _bucket_key(r["bucket"], interval): r
        for r in await request.app[DB].query(sql, scope.params())
    }
    rows, suppressed = [], 0
    for bucket in _buckets(scope, interval):
        row = found.get(bucket)
        if row is None or int(row["t_requests"]) == 0:
            zero = metric not in ("error_rate", "duration_p50", "duration_p95")
            rows.append({"time": bucket, "value": 0 if zero else None, "visitors": 0})
        elif _subjects(row) < scope.k:
            suppressed += 1
            rows.append({"time": bucket, "value": None, "visitors": None})
        else:
            m = _metrics(row)
            rows.append({"time": bucket, "value": m[metric], "visitors": m["visitors"]})
    return web.json_response(
        {
            "report": "timeseries",
            **_echo(scope),
            "interval": interval,
            "metric": metric,
            "suppressed": suppressed,
            "rows": rows,
        }
    )


def _access_groups(scope: Scope, dim: Dimension) -> str:
    """One row per value of `dim` with human traffic: the counts and the value's visitor and
    user states (merged again into `(other)` by `breakdown_sql`)."""
    if scope.from_table:
        where = _RAW_WHERE + _filters_of(scope, "access")
        r, value = _Read("access_log", where, EXTENSION_SQL, raw=True), f"({dim.sql})"
    else:
        where = (
            "tenant_id = {tenant:String} AND dimension = {dimension:String} "
            "AND day BETWEEN {from:Date} AND {to:Date}"
        )
        r, value = _Read("access_dims_daily", where, "extension", raw=False), "value"
    if dim.pageviews_only:
        where += f" AND {r.extension} NOT IN {{assets:Array(String)}}"
    human = "NOT is_bot"
    return (
        f"SELECT {value} AS value, {r.distinct('visitors', human)} AS n_visitors, "
        f"{r.distinct('users', human)} AS n_users, "
        f"{r.distinct('visitors', human, state=True)} AS s_visitors, "
        f"{r.distinct('users', human, state=True)} AS s_users, "
        f"{r.count(r.pageview())} AS g_pageviews, {r.count(human)} AS g_requests, "
        f"{r.count('is_bot')} AS g_bot_requests FROM {r.table} WHERE {where} GROUP BY value "
        "HAVING g_requests > 0"  # values seen only from bots are not people's traffic
    )


def _event_groups(scope: Scope, dim: Dimension) -> str:
    return (
        f"SELECT ({dim.sql}) AS value, ifNull(uniqCombined64Merge(users), 0) AS n_users, "
        "0 AS n_visitors, "
        "uniqCombined64MergeState(users) AS s_users, sum(events) AS g_events FROM events_daily "
        "WHERE tenant_id = {tenant:String} AND day BETWEEN {from:Date} AND {to:Date}"
        f"{_filters_of(scope, 'events')} GROUP BY value"
    )


def breakdown_sql(scope: Scope, dim: Dimension) -> str:
    """Values under k become `(other)`; the (other) row's measure is merged from their states,
    so it is a distinct count too. `merged` counts the values each row stands for."""
    small = "if(n_visitors > 0, n_visitors, n_users) < {k:UInt32}"
    label = f"if({small}, '{OTHER}', value)"
    if dim.source == "events":
        return (
            f"SELECT {label} AS label, ifNull(uniqCombined64Merge(s_users), 0) AS visitors, "
            "ifNull(uniqCombined64Merge(s_users), 0) AS users, sum(g_events) AS events, "
            f"count() AS merged FROM ({_event_groups(scope, dim)}) GROUP BY label"
        )
    return (
        f"SELECT {label} AS label, ifNull(uniqCombined64Merge(s_visitors), 0) AS visitors, "
        "ifNull(uniqCombined64Merge(s_users), 0) AS users, sum(g_pageviews) AS pageviews, "
        "sum(g_requests) AS requests, sum(g_bot_requests) AS bot_requests, count() AS merged "
        f"FROM ({_access_groups(scope, dim)}) GROUP BY label"
    )


async def get_breakdown(request: web.Request) -> web.Response:
    return web.json_response(await breakdown_report(request))


async def breakdown_report(request: web.Request) -> dict[str, Any]:
    """The breakdown's answer (also rendered as CSV by the dashboard)."""
    name = request.query.get("dimension")
    dim = DIMENSIONS.get(name or "")
    if dim is None:
        raise BadRequest(f"dimension: must be one of {', '.join(DIMENSIONS)}")
    scope = _scope(request, ("dimension", "limit"))
    policy = request.app[PIPELINE].policies.for_tenant(scope.tenant)
    _check_kept(dim, policy.url.keep_query_params)
    limit = uint(request.query, "limit", 100, 1, MAX_LIMIT)
    params = scope.params() | {"dimension": dim.name, "k": scope.k}
    found = await request.app[DB].query(breakdown_sql(scope, dim), params)
    rows, other, suppressed = [], None, 0
    for r in found:
        merged = int(r.pop("merged"))
        label = r.pop("label")
        subjects = int(r["visitors"]) or int(r["users"])
        if label == OTHER:
            suppressed = merged
            if subjects >= scope.k:
                other = {"value": OTHER, **r}
            continue
        rows.append({"value": label, **r})
    order = "events" if dim.source == "events" else "pageviews"
    rows.sort(key=lambda r: (-int(r["visitors"]) or -int(r["users"]), -int(r[order]), r["value"]))
    truncated = len(rows) > limit
    rows = rows[:limit] + ([other] if other else [])
    for r in rows:
        if dim.source == "events" or not int(r["visitors"]):
            r["visitors"] = int(r["visitors"]) or int(r["users"])
        r.pop("users")
    return {
        "report": "breakdown",
        "dimension": dim.name,
        **_echo(scope),
        "suppressed": suppressed,
        "other_shown": other is not None,
        "truncated": truncated,
        "rows": rows,
    }


ROUTES = {
    "/v1/reports/summary": get_summary,
    "/v1/reports/timeseries": get_timeseries,
    "/v1/reports/breakdown": get_breakdown,
}
