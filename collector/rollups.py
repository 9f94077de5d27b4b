"""The daily rollups and how to (re)build them.

Each rollup is fed by a materialized view (sql/0008_rollups.sql). Rows stored before the view
existed, and days touched by a data-subject deletion, are (re)built with the view's own SELECT,
read back from the engine, so a rebuild can never drift from the view. Calls are blocking, like
the sink's.
"""

from __future__ import annotations

from anonymizer.rules import ROLLUPS as _ROLLUPS
from anonymizer.rules import Rollup
from collector.sink import Sink

ROLLUP_MIGRATION = "0008_rollups.sql"
# the migrations that create rollups, and the rollup tables each creates
ROLLUP_MIGRATIONS = {
    ROLLUP_MIGRATION: ("access_daily", "events_daily", "mail_daily"),
    "0011_report_rollups.sql": ("access_dims_daily", "access_hourly"),
}
DAY_OF = {"access_hourly": "toDate(hour)"}  # a rollup's day, when it has no `day` column
ROLLUPS = tuple(_ROLLUPS.values())  # declared once, with the privacy rules of their columns
# the rollup tables keep a deduplication window (sql/0009, 0011) for retried source inserts; a
# rebuild may produce the very block an earlier one did, and must never be dropped for that
NO_DEDUP = "insert_deduplicate = 0"


def _view_select(sink: Sink, rollup: Rollup) -> str:
    rows = sink.query(
        "SELECT as_select FROM system.tables WHERE database = currentDatabase() "
        "AND name = {v:String}",
        {"v": rollup.view},
    )
    return str(rows[0]["as_select"])


def migrate(sink: Sink) -> list[str]:
    """Apply pending migrations; when the rollups are new, fill them from the rows already
    stored (a view only sees inserts made after it exists)."""
    applied = sink.migrate()
    new = {t for m in applied for t in ROLLUP_MIGRATIONS.get(m, ())}
    if new:
        backfill(sink, new)
    return applied


def backfill(sink: Sink, tables: set[str] | None = None) -> None:
    """Fill every rollup (or those named) from all the rows of its source table."""
    for rollup in ROLLUPS:
        if tables is not None and rollup.table not in tables:
            continue
        sink.query(
            f"INSERT INTO `{rollup.table}` SELECT * FROM ({_view_select(sink, rollup)}) "
            f"SETTINGS {NO_DEDUP}"
        )


def rebuild_days(sink: Sink, source: str, tenant_id: str, days: list[str]) -> None:
    """Recompute the tenant's rollup rows of `days` from `source` (after rows were deleted)."""
    if not days:
        return
    params = {"t": tenant_id, "days": days}
    for rollup in ROLLUPS:
        if rollup.source == source:
            day = DAY_OF.get(rollup.table, "day")
            where = f"tenant_id = {{t:String}} AND {day} IN {{days:Array(Date)}}"
            sink.query(f"DELETE FROM `{rollup.table}` WHERE {where}", params)
            select = _view_select(sink, rollup)
            sink.query(
                f"INSERT INTO `{rollup.table}` SELECT * FROM ({select}) WHERE {where} "
                f"SETTINGS {NO_DEDUP}",
                params,
            )
