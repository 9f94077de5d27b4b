"""What the pipeline needs from storage. The embedded chDB sink implements it; a ClickHouse server
sink (clickhouse-connect) will implement the same four calls.

All calls are blocking: the service runs them on one worker thread (chDB releases the GIL while a
query runs), so the event loop stays responsive.
"""

from __future__ import annotations

from typing import Any, Protocol


class Sink(Protocol):
    def migrate(self) -> list[str]:
        """Apply pending `sql/` migrations; returns the names applied."""

    def insert(self, table: str, rows: bytes, token: str) -> None:
        """Insert newline-separated JSON rows; a retry with the same `token` is not stored twice."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts."""

    def close(self) -> None: ...
