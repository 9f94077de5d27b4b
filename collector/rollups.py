"""The daily rollups and how to (re)build them.

Each rollup is fed by a materialized view (sql/0008_rollups.sql). Rows stored before the view
existed, and days touched by a data-subject deletion, are (re)built with the view's own SELECT,
read back from the engine, so a rebuild can never drift from the view. Calls are blocking, like
the sink's. The statements are rendered by `collector.statements` for the sink's cluster (on a
cluster the view reads one shard's rows: a rebuild or a backfill reads them all).
"""

from __future__ import annotations

from anonymizer.rules import ROLLUPS as _ROLLUPS
from anonymizer.rules import Rollup
from collector.sink import Sink
from collector.statements import Statements

ROLLUP_MIGRATION = "0008_rollups.sql"
# the migrations that create rollups, and the rollup tables each creates
ROLLUP_MIGRATIONS = {
    ROLLUP_MIGRATION: ("access_daily", "events_daily", "mail_daily"),
    "0011_report_rollups.sql": ("access_dims_daily", "access_hourly"),
}
DAY_OF = {"access_hourly": "toDate(hour)"}  # a rollup's day, when it has no `day` column
ROLLUPS = tuple(_ROLLUPS.values())  # declared once, with the privacy rules of their columns


def _view_select(sink: Sink, rollup: Rollup) -> str:
    """The view's SELECT, reading every shard's rows of its source on a cluster."""
    rows = sink.query(
        "SELECT as_select FROM system.tables WHERE database = currentDatabase() "
        "AND name = {v:String}",
        {"v": rollup.view},
    )
    return Statements(sink.cluster).view_select(str(rows[0]["as_select"]), rollup.source)


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
            Statements(sink.cluster).rebuild_insert(rollup.table, _view_select(sink, rollup))
        )


def rebuild_days(sink: Sink, source: str, tenant_id: str, days: list[str]) -> None:
    """Recompute the tenant's rollup rows of `days` from `source` (after rows were deleted)."""
    if not days:
        return
    params = {"t": tenant_id, "days": days}
    statements = Statements(sink.cluster)
    for rollup in ROLLUPS:
        if rollup.source == source:
            day = DAY_OF.get(rollup.table, "day")
            where = f"tenant_id = {{t:String}} AND {day} IN {{days:Array(Date)}}"
            # on a cluster the day's partial states are on every shard's local rollup: all go
            sink.query(statements.delete(rollup.table, where), params)
            select = _view_select(sink, rollup)
            sink.query(statements.rebuild_insert(rollup.table, select, where), params)
