"""Group commit: requests hand in their rows and wait; one task flushes a batch when it reaches
`max_rows` or `max_delay_ms` after its first row, whichever comes first.

A request is answered 202 only when the insert holding its rows has succeeded, so an accepted
record is stored even if the process stops right after. A failed insert is retried with the same
deduplication token (a retry after an insert that did land is not stored twice); when retries run
out, every waiting request gets `ServiceUnavailable` and nothing was accepted.

Any failure of the insert (an engine error, a full or read-only disk, anything raised) is answered
to the batch's requests, logged by its kind only, counted, and shown by `failing` (`/readyz`)
until an insert or a probe succeeds again. While failing, a batch gets a single attempt (requests
get their 503 at once) and an idle batcher probes the storage with backoff, so it recovers when
the cause goes away even with no traffic. The task itself is supervised: should its loop ever
raise, the batch in hand is answered 503 and the loop restarts; a request never waits on a dead
task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from collector.config import BatchConfig
from collector.errors import ServiceUnavailable
from collector.failures import describe

log = logging.getLogger(__name__)

InsertFn = Callable[[str, bytes, str], Awaitable[None]]
ProbeFn = Callable[[str], Awaitable[None]]  # raises while an insert into the table cannot work

PROBE_FIRST_S = 0.5
PROBE_MAX_S = 15.0
RESTART_MAX_S = 5.0
RETRY_AFTER_S = 5


@dataclass
class _Pending:
    rows: list[bytes] = field(default_factory=list)
    waiters: list[asyncio.Future[None]] = field(default_factory=list)


class Batcher:
    """One per table; owns the only task that inserts into it."""

    def __init__(
        self,
        table: str,
        insert: InsertFn,
        config: BatchConfig,
        probe: ProbeFn | None = None,
        *,
        probe_first_s: float = PROBE_FIRST_S,
        probe_max_s: float = PROBE_MAX_S,
    ) -> None:
        self.table = table
        self._insert = insert
        self._probe = probe
        self._config = config
        self._pending = _Pending()
        self._in_hand: _Pending | None = None  # the batch being inserted
        self._wake = asyncio.Event()
        self._full = asyncio.Event()
        self._closing = False
        self._hurry = False  # shutting down: flush at once, wait for no delay
        self._task: asyncio.Task[None] | None = None
        self._probe_first_s = probe_first_s
        self._probe_max_s = probe_max_s
        self._probe_delay_s = probe_first_s
        self._restart_delay_s = 0.1
        self.in_flight_rows = 0
        self.flushed_batches = 0
        # health, for /readyz and /metrics
        self.insert_errors = 0  # failed insert attempts
        self.failed_batches = 0  # batches whose requests were answered 503
        self.task_errors = 0  # failures of the task's own loop (it was restarted)
        self.failing: str | None = None  # the kind of the last failure, until a success
        self._failing_since = 0.0

    @property
    def queued_rows(self) -> int:
        return len(self._pending.rows) + self.in_flight_rows

    @property
    def failing_for_s(self) -> float:
        return time.monotonic() - self._failing_since if self.failing is not None else 0.0

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name=f"batcher-{self.table}")
        self._task.add_done_callback(lambda _: self._answer_all("storage is not running"))

    async def submit(self, rows: list[bytes]) -> None:
        """Returns once `rows` are inserted; raises `ServiceUnavailable` if they could not be."""
        if not rows:
            return
        if self._closing:
            raise ServiceUnavailable("shutting down", retry_after=RETRY_AFTER_S)
        if self._task is None or self._task.done():
            raise ServiceUnavailable("storage is not running", retry_after=RETRY_AFTER_S)
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
        """The supervisor: `_loop` never should raise, but if it does, nobody is left waiting."""
        while True:
            try:
                await self._loop()
                return
            except Exception as e:
                self.task_errors += 1
                log.error(
                    "batcher for %s failed (%s); restarting in %.1f s",
                    self.table, describe(e), self._restart_delay_s,
                )  # fmt: skip
                self._set_failing(e)
                if self._in_hand is not None:
                    self._answer(self._in_hand, "storage is failing")
                    self._in_hand = None
                self.in_flight_rows = 0
                await asyncio.sleep(self._restart_delay_s)
                self._restart_delay_s = min(self._restart_delay_s * 2, RESTART_MAX_S)

    async def _loop(self) -> None:
        delay = self._config.max_delay_ms / 1000
        while True:
            if self.failing is not None and self._probe is not None and not self._closing:
                if not await self._woken_within(self._probe_delay_s):
                    await self._probe_once()
                    continue
            else:
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
                self._in_hand = batch
                await self._flush(batch)
                self._in_hand = None
            if self._closing and not self._pending.rows:
                return

    async def _woken_within(self, seconds: float) -> bool:
        try:
            await asyncio.wait_for(self._wake.wait(), timeout=seconds)
        except TimeoutError:
            return False
        return True

    async def _probe_once(self) -> None:
        assert self._probe is not None
        try:
            await self._probe(self.table)
        except Exception as e:
            reason = describe(e)
            if reason != self.failing:
                log.warning("storage for %s still failing: %s", self.table, reason)
                self.failing = reason
            self._probe_delay_s = min(self._probe_delay_s * 2, self._probe_max_s)
        else:
            self._recovered()

    async def _flush(self, batch: _Pending) -> None:
        token = uuid.uuid4().hex
        body = b"\n".join(batch.rows)
        self.in_flight_rows = len(batch.rows)
        # already failing: one attempt, so the requests hear at once instead of after retries
        attempts = 1 if self.failing is not None else self._config.insert_retries + 1
        error: Exception | None = None
        try:
            for attempt in range(attempts):
                try:
                    await self._insert(self.table, body, token)
                    error = None
                    break
                except Exception as e:  # any failure is the batch's: answered, never the task's
                    error = e
                    self.insert_errors += 1
                    log.warning(
                        "insert into %s failed (attempt %d of %d): %s",
                        self.table, attempt + 1, attempts, describe(e),
                    )  # fmt: skip
                    if attempt + 1 < attempts:
                        await asyncio.sleep(min(0.1 * 2**attempt, 2.0))
        finally:
            self.in_flight_rows = 0
        self.flushed_batches += 1
        if error is None:
            self._recovered()
            self._answer(batch, None)
        else:
            self.failed_batches += 1
            self._set_failing(error)
            self._answer(batch, "storage is failing")

    def _set_failing(self, e: BaseException) -> None:
        if self.failing is None:
            self._failing_since = time.monotonic()
            self._probe_delay_s = self._probe_first_s
            log.error("storage for %s is failing: %s", self.table, describe(e))
        self.failing = describe(e)

    def _recovered(self) -> None:
        if self.failing is not None:
            log.warning("storage for %s recovered after %.1f s", self.table, self.failing_for_s)
        self.failing = None
        self._restart_delay_s = 0.1

    @staticmethod
    def _answer(batch: _Pending, error: str | None) -> None:
        """Resolve every waiter of `batch`: done, or 503 with `error` as the detail."""
        for fut in batch.waiters:
            if fut.done():  # the request was cancelled (client went away); its rows were sent
                continue
            if error is None:
                fut.set_result(None)
            else:
                fut.set_exception(ServiceUnavailable(error, retry_after=RETRY_AFTER_S))
        batch.waiters.clear()

    def _answer_all(self, error: str) -> None:
        """No task will answer them any more: every request still waiting gets 503."""
        for batch in (self._in_hand, self._pending):
            if batch is not None:
                self._answer(batch, error)

    def hurry(self) -> None:
        """From now on flush without waiting for `max_delay_ms`: the service is stopping, and
        the requests still in flight should get their answers now."""
        self._hurry = True
        self._full.set()

    async def close(self, timeout_s: float | None = None) -> None:
        """Flush everything pending, then stop; within `timeout_s`, after which the requests
        still waiting get 503. Never raises: the service must stop cleanly while storage fails."""
        self._closing = True
        self._wake.set()
        self._full.set()
        task, self._task = self._task, None
        if task is not None:
            done, _ = await asyncio.wait({task}, timeout=timeout_s)
            if not done:
                log.error("batcher for %s did not finish within %s s", self.table, timeout_s)
                task.cancel()
                await asyncio.wait({task})
            elif not task.cancelled() and (e := task.exception()) is not None:
                log.error("batcher for %s ended with %s", self.table, describe(e))  # unexpected
        self._answer_all("shutting down")


class Batchers:
    """One batcher per table, started and closed together; a request's rows may span tables."""

    def __init__(
        self,
        tables: list[str],
        insert: InsertFn,
        config: BatchConfig,
        probe: ProbeFn | None = None,
    ) -> None:
        self.by_table = {t: Batcher(t, insert, config, probe) for t in tables}

    @property
    def queued_rows(self) -> int:
        return sum(b.queued_rows for b in self.by_table.values())

    @property
    def flushed_batches(self) -> int:
        return sum(b.flushed_batches for b in self.by_table.values())

    def failures(self) -> list[str]:
        """One reason per failing table, for `/readyz`; kinds of failures, never data."""
        return [
            f"storage failing for table {b.table} for {b.failing_for_s:.0f} s: {b.failing}"
            for b in self.by_table.values()
            if b.failing is not None
        ]

    def start(self) -> None:
        for b in self.by_table.values():
            b.start()

    def hurry(self) -> None:
        for b in self.by_table.values():
            b.hurry()

    async def submit(self, rows: dict[str, list[bytes]]) -> None:
        """Returns when every table's rows are inserted; the first failure is raised."""
        await asyncio.gather(*(self.by_table[t].submit(r) for t, r in rows.items() if r))

    async def close(self, timeout_s: float | None = None) -> None:
        await asyncio.gather(*(b.close(timeout_s) for b in self.by_table.values()))
