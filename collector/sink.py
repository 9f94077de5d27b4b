"""What the pipeline needs from storage. The embedded chDB sink implements it; a ClickHouse server
sink (clickhouse-connect) will implement the same five calls.

All calls are blocking: the service runs them on one worker thread (chDB releases the GIL while a
query runs), so the event loop stays responsive.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import Executor
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")


class Sink(Protocol):
    # `[storage] cluster`, "" for one server or the embedded engine: statements that change stored
    # rows are rendered for it (collector.statements)
    cluster: str

    def migrate(self) -> list[str]:
        """Apply pending `sql/` migrations; returns the names applied."""

    def insert(self, table: str, rows: bytes, token: str) -> None:
        """Insert newline-separated JSON rows; a retry with the same `token` is not stored twice."""

    def insert_file(self, table: str, path: Path, token: str) -> None:
        """`insert` of the rows in a file (a spool segment's: never held in memory whole by the
        embedded engine, which reads the file itself)."""

    def probe(self, table: str) -> None:
        """Raises unless an insert into `table` can work now (disk space, scratch folder)."""

    def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a query; rows as dicts."""

    def close(self) -> None: ...


class AsyncSink:
    """A sink driven from the event loop: every call runs on the sink's one worker thread."""

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """Any blocking sink work (several statements in a row) on the sink's thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, fn, *args)

    def __init__(self, sink: Sink, executor: Executor) -> None:
        self.sink = sink
        self._executor = executor

    async def insert(self, table: str, rows: bytes, token: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.sink.insert, table, rows, token)

    async def insert_file(self, table: str, path: Path, token: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.sink.insert_file, table, path, token)

    async def probe(self, table: str) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(self._executor, self.sink.probe, table)

    async def query(self, sql: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._executor, self.sink.query, sql, params)
