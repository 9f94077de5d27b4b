"""The dimensions an analyst can break reports down by, or filter them on.

Each access-log dimension is one column (or a small expression over columns) of `access_log`.
The SQL text here is the same as in the `access_dims_daily_mv` view of
sql/0011_report_rollups.sql: an unfiltered breakdown reads that rollup, a filtered one reads the
anonymized table with these expressions, and a test checks that both give the same numbers.
Event dimensions are columns of the `events_daily` rollup (and of `usage_events`).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Source = Literal["access", "events"]
# the lower-cased file extension of a stored path, as the rollups keep it
EXTENSION_SQL = r"lower(extract(path, '\\.([A-Za-z0-9]{1,8})$'))"


@dataclass(frozen=True, slots=True)
class Dimension:
    name: str
    source: Source
    sql: str  # over access_log (access) or events_daily / usage_events (events)
    label: str
    query_param: str = ""  # a utm_* dimension exists only when the policy keeps this parameter
    pageviews_only: bool = False  # pages: static assets are not pages


def _utm(name: str) -> Dimension:
    return Dimension(
        name, "access", f"extractURLParameter(concat('?', query), '{name}')",
        name.replace("_", " "), query_param=name,
    )  # fmt: skip


DIMENSIONS: dict[str, Dimension] = {
    d.name: d
    for d in (
        Dimension("pages", "access", "toString(route)", "pages", pageviews_only=True),
        Dimension("referrers", "access", "toString(referrer_host)", "referrers"),
        _utm("utm_source"),
        _utm("utm_medium"),
        _utm("utm_campaign"),
        Dimension("countries", "access", "toString(geo_country)", "countries"),
        Dimension(
            "regions", "access",
            "if(geo_region = '', '', concat(geo_country, '-', geo_region))", "regions",
        ),
        Dimension("browsers", "access", "toString(browser_family)", "browsers"),
        Dimension("os", "access", "toString(os_family)", "operating systems"),
        Dimension(
            "devices", "access",
            "multiIf(is_bot, 'bot', is_tablet, 'tablet', is_mobile, 'mobile', is_pc, 'desktop', "
            "'other')",
            "device types",
        ),
        Dimension("status", "access", "if(status = 0, '', toString(status))", "status codes"),
        Dimension("services", "access", "toString(service)", "services"),
        Dimension("events", "events", "toString(event)", "events"),
        Dimension("features", "events", "toString(feature)", "features"),
    )
}  # fmt: skip
