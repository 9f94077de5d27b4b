"""Group commit: requests hand in their rows and wait; one task flushes a batch when it reaches
`max_rows` or `max_delay_ms` after its first row, whichever comes first.

A request is answered 202 only when the insert holding its rows has succeeded, so an accepted
record is stored even if the process stops right after. A failed insert is retried with the same
deduplication token (a retry after an insert that did land is not stored twice); when retries run
out, every waiting request gets `ServiceUnavailable` and nothing was accepted.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from collector.config import BatchConfig
from collector.errors import ServiceUnavailable, SinkError

log = logging.getLogger(__name__)

InsertFn = Callable[[str, bytes, str], Awaitable[None]]


@dataclass
class _Pending:
    rows: list[bytes] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Batcher:
    """One per table; owns the only task that inserts into it."""

    def __init__(self, table: str, insert: InsertFn, config: BatchConfig) -> None:
        self.table = table
        self._insert = insert
        self._config = config
        self._pending = _Pending()
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._hurry = False  # shutting down: flush at once, wait for no delay
        self._task: asyncio.Task[None] | None = None
        self.in_flight_rows = 0
        self.flushed_batches = 0

    @property
    def queued_rows(self) -> int:
        return len(self._pending.rows) + self.in_flight_rows

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self.table}")

    async def submit(self, rows: list[bytes]) -> None:
        """Returns once `rows` are inserted; raises `ServiceUnavailable` if they could not be."""
        if not rows:
            return
        if self._closing:
            raise ServiceUnavailable("shutting down", retry_after=5)
        if self.queued_rows + len(rows) > self._config.max_pending_rows:
            raise ServiceUnavailable("ingest queue is full", retry_after=1)
        fut: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._pending.rows.extend(rows)
        self._pending.waiters.append(fut)
        self._wake.set()
        if len(self._pending.rows) >= self._config.max_rows:
            self._full.set()
        await fut

    async def _run(self) -> None:
        delay = self._config.max_delay_ms / 1000
        while True:
            await self._wake.wait()
            if (
                not (self._closing or self._hurry)
                and len(self._pending.rows) < self._config.max_rows
            ):
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(self._full.wait(), timeout=delay)
            batch, self._pending = self._pending, _Pending()
            self._wake.clear()
            self._full.clear()
            if batch.rows:
                await self._flush(batch)
            if self._closing and not self._pending.rows:
                return

    async def _flush(self, batch: _Pending) -> None:
        token = uuid.uuid4().hex
        body = b"\n".join(batch.rows)
        self.in_flight_rows = len(batch.rows)
        error: Exception | None = None
        try:
            for attempt in range(self._config.insert_retries + 1):
                try:
                    await self._insert(self.table, body, token)
                    error = None
                    break
                except SinkError as e:
                    error = e
                    log.warning(
                        "insert into %s failed (attempt %d): %s", self.table, attempt + 1, e
                    )
                    await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        finally:
            self.in_flight_rows = 0
        self.flushed_batches += 1
        for fut in batch.waiters:
            if fut.done():  # the request was cancelled (client went away); its rows were sent
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(ServiceUnavailable("storage is failing", retry_after=5))

    def hurry(self) -> None:
        """From now on flush without waiting for `max_delay_ms`: the service is stopping, and
        the requests still in flight should get their answers now."""
        self._hurry = True
        self._full.set()

    async def close(self) -> None:
        """Flush everything pending, then stop."""
        self._closing = True
        self._wake.set()
        self._full.set()
        if self._task is not None:
            await self._task
            self._task = None


class Batchers:
    """One batcher per table, started and closed together; a request's rows may span tables."""

    def __init__(self, tables: list[str], insert: InsertFn, config: BatchConfig) -> None:
        self.by_table = {t: Batcher(t, insert, config) for t in tables}

    @property
    def queued_rows(self) -> int:
        return sum(b.queued_rows for b in self.by_table.values())

    @property
    def flushed_batches(self) -> int:
        return sum(b.flushed_batches for b in self.by_table.values())

    def start(self) -> None:
        for b in self.by_table.values():
            b.start()

    def hurry(self) -> None:
        for b in self.by_table.values():
            b.hurry()

    async def submit(self, rows: dict[str, list[bytes]]) -> None:
        """Returns when every table's rows are inserted; the first failure is raised."""
        await asyncio.gather(*(self.by_table[t].submit(r) for t, r in rows.items() if r))

    async def close(self) -> None:
        await asyncio.gather(*(b.close() for b in self.by_table.values()))
