"""Whether the schema is migrated, and migrating it in the background until it is.

The embedded engine is in this process and migrates at start or the service does not start. A
ClickHouse server may be unreachable when the collector starts (a deploy, a restart of the
server, a network partition): the collector starts and listens anyway (DESIGN §10), `/readyz`
says why it is not ready, every insert is answered 503 at once, and the migration is retried with
backoff until it succeeds. A schema error (as opposed to an unreachable server) is logged loudly
each time and also retried: an operator may fix the grant or the table while it waits.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

from collector import rollups
from collector.errors import SinkError, SinkUnavailable
from collector.failures import describe
from collector.sink import AsyncSink

log = logging.getLogger(__name__)
RETRY_FIRST_S = 0.5
RETRY_MAX_S = 15.0


class Schema:
    def __init__(self) -> None:
        self.migrated = asyncio.Event()
        self.failing: str | None = None
        self._since = time.monotonic()
        self._task: asyncio.Task[None] | None = None
        self._on_ready: list[Callable[[], Awaitable[None]]] = []

    def failures(self) -> list[str]:
        """For `/readyz`: kinds of failures, never data."""
        if self.migrated.is_set():
            return []
        waited = time.monotonic() - self._since
        return [f"schema not migrated for {waited:.0f} s: {self.failing or 'starting'}"]

    def check(self) -> None:
        """Raises `SinkUnavailable` until the schema is migrated (inserts wait for it)."""
        if not self.migrated.is_set():
            raise SinkUnavailable("schema not migrated yet: storage unreachable")

    async def when_ready(self, fn: Callable[[], Awaitable[None]]) -> None:
        """Run `fn` now if the schema is migrated (its errors raised), else once it is."""
        if self.migrated.is_set():
            await fn()
        else:
            self._on_ready.append(fn)

    async def migrate(self, db: AsyncSink) -> None:
        """Migrate now; when the storage is unreachable, go on retrying in a task and return. A
        schema error at the first attempt is raised: the service does not start on it."""
        try:
            await self._attempt(db)
        except SinkUnavailable as e:
            self.failing = describe(e)
            log.warning("storage unreachable at start (%s): migrating once it can", self.failing)
            self._task = asyncio.create_task(self._retry(db), name="schema-migrate")

    async def _attempt(self, db: AsyncSink) -> None:
        applied = await db.run(rollups.migrate, db.sink)
        if applied:
            log.info("applied migrations: %s", ", ".join(applied))
        self.failing = None
        self.migrated.set()
        pending, self._on_ready = self._on_ready, []
        for fn in pending:
            try:
                await fn()
            except SinkError as e:  # a start-up chore (the policy audit) must not stop ingest
                log.error("after migrating: %s", describe(e))

    async def _retry(self, db: AsyncSink) -> None:
        delay = RETRY_FIRST_S
        while not self.migrated.is_set():
            await asyncio.sleep(delay)
            try:
                await self._attempt(db)
            except SinkUnavailable as e:
                self.failing = describe(e)
                delay = min(delay * 2, RETRY_MAX_S)
            except SinkError as e:
                self.failing = describe(e)
                log.error("migration failed: %s; retrying in %.0f s", self.failing, RETRY_MAX_S)
                delay = RETRY_MAX_S

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
