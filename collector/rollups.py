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
ROLLUPS = tuple(_ROLLUPS.values())
# the rollup tables keep a deduplication window (sql/0009) for retried source inserts; a rebuild
# may produce the very block an earlier one did, and must never be dropped for that
NO_DEDUP = "insert_deduplicate = 0"  # declared once, with the privacy rules of their columns


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
    if ROLLUP_MIGRATION in applied:
        backfill(sink)
    return applied


def backfill(sink: Sink) -> None:
    """Fill every rollup from all the rows of its source table."""
    for rollup in ROLLUPS:
        sink.query(
            f"INSERT INTO `{rollup.table}` SELECT * FROM ({_view_select(sink, rollup)}) "
            f"SETTINGS {NO_DEDUP}"
        )


def rebuild_days(sink: Sink, source: str, tenant_id: str, days: list[str]) -> None:
    """Recompute the tenant's rollup rows of `days` from `source` (after rows were deleted)."""
    if not days:
        return
    params = {"t": tenant_id, "days": days}
    where = "tenant_id = {t:String} AND day IN {days:Array(Date)}"
    for rollup in ROLLUPS:
        if rollup.source == source:
            sink.query(f"DELETE FROM `{rollup.table}` WHERE {where}", params)
            select = _view_select(sink, rollup)
            sink.query(
                f"INSERT INTO `{rollup.table}` SELECT * FROM ({select}) WHERE {where} "
                f"SETTINGS {NO_DEDUP}",
                params,
            )
