"""The shipper: spool segments -> engine inserts, one task per table, oldest segment first.

Each sealed segment is inserted whole, with an `insert_deduplication_token` made of the segment's
identity (table, sequence number, the random nonce in its name) and a hash of its content: a retry
after an insert whose outcome is unknown (a timeout, a crash after the engine stored it) carries
the same token and is dropped by the engine (every table keeps `non_replicated_deduplication_
window` tokens). The segment file is deleted only after the insert returned.

A failed insert is retried, the same segment again (order is kept per table), after an
exponential backoff with full jitter, capped at `[spool] retry_max_s`. The spool keeps accepting
meanwhile, up to its high-water mark. Memory: whatever the backlog, one segment's insert body at
most; the embedded engine's is written to a scratch file record by record (one request's rows in
hand), which the engine reads itself.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import io
import logging
import random
import time
from collections import deque
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from prometheus_client.metrics_core import HistogramMetricFamily, Metric
from prometheus_client.registry import Collector

from collector.config import SpoolConfig
from collector.failures import describe
from collector.metrics import Samples, counter, gauge
from collector.spool import Segment, Spool, iter_records, scan_workers

log = logging.getLogger(__name__)

InsertFn = Callable[[str, bytes, str], Awaitable[None]]  # table, body, token
InsertFileFn = Callable[[str, Path, str], Awaitable[None]]  # table, body file, token
SCRATCH_PREFIX = "ship-"
RETRY_FIRST_S = 0.1
SCAN_S = 0.25  # how often the primary looks for segments sealed by the ingest workers
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def segment_token(seg: Segment, digest: str) -> str:
    """The segment's deduplication token: its identity and a hash of what is inserted."""
    return f"spool_{seg.table}_{seg.name.replace('-', '_')}_{digest}"


@dataclass(frozen=True, slots=True)
class Prepared:
    """A segment's rows, written out as one insert body."""

    records: int  # intact records (requests)
    intact: bool  # every durable byte of the segment was intact
    token: str
    rows: int


def _prepare(seg: Segment, out: BinaryIO) -> Prepared:
    """Blocking, on a worker thread: a segment's intact records written to `out` as one insert
    body (rows joined by "\n"), its deduplication token hashed over the same bytes on the way.
    Record by record: the segment (up to `segment_bytes`, 32 MiB) is never held in memory as
    well as its body. Kept off the event loop: joining and hashing a segment there held it
    ~10-20 ms per 8 MiB."""
    hasher = hashlib.blake2b(digest_size=12)
    records = rows = good = 0
    with open(seg.path, "rb") as f:
        for record, at in iter_records(f, seg.size):
            records += 1
            good = at
            if not record.rows:
                continue
            if rows:
                out.write(b"\n")
                hasher.update(b"\n")
            out.write(record.rows)
            hasher.update(record.rows)
            rows += record.row_count()
    return Prepared(records, good == seg.size, segment_token(seg, hasher.hexdigest()), rows)


def _prepare_file(seg: Segment, path: Path) -> Prepared:
    path.parent.mkdir(parents=True, exist_ok=True)  # made again if someone removed it
    with open(path, "wb") as out:
        return _prepare(seg, out)


def _prepare_bytes(seg: Segment) -> tuple[Prepared, bytes]:
    out = io.BytesIO()
    got = _prepare(seg, out)
    return got, out.getvalue()


@dataclass
class TableStats:
    """Per-table figures for /metrics."""

    shipped_segments: int = 0
    shipped_rows: int = 0
    shipped_bytes: int = 0
    retries: int = 0
    failing: str | None = None
    failing_since: float = 0.0
    latency_buckets: list[int] = field(default_factory=lambda: [0] * len(LATENCY_BUCKETS))
    latency_count: int = 0
    latency_sum: float = 0.0

    def observe(self, seconds: float) -> None:
        self.latency_count += 1
        self.latency_sum += seconds
        for i, bound in enumerate(LATENCY_BUCKETS):
            if seconds <= bound:
                self.latency_buckets[i] += 1


class Shipper:
    """Ships this process's spool; with `workers_root` (the primary of `serve --workers N`) also
    the sealed segments the ingest workers leave in `<workers_root>/w<k>/<table>/`."""

    def __init__(
        self,
        spool: Spool,
        insert: InsertFn,
        insert_file: InsertFileFn,
        config: SpoolConfig,
        scratch: Path | None,
        workers_root: Path | None = None,
    ) -> None:
        self.spool = spool
        self._insert = insert
        self._insert_file = insert_file
        self.config = config
        self.workers_root = workers_root
        # where a segment's insert body is written (then deleted) for an engine that reads it
        # from a file; None: the body is built in memory
        self.scratch = scratch
        self.stats = {t: TableStats() for t in spool.tables}
        self.foreign: dict[str, deque[Segment]] = {t: deque() for t in spool.tables}
        self._known: set[Path] = set()
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._progress = asyncio.Event()  # set after every shipped segment

    def start(self) -> None:
        """Bodies a crash left in the scratch folder are deleted (their segments are still in
        the spool), then one task per table ships."""
        if self.scratch is not None:
            self.scratch.mkdir(parents=True, exist_ok=True)
            for leftover in self.scratch.glob(SCRATCH_PREFIX + "*"):
                with contextlib.suppress(OSError):
                    leftover.unlink()
        for t in self.spool.tables:
            self._tasks[t] = asyncio.create_task(self._run(t), name=f"shipper-{t}")
        if self.workers_root is not None:
            self._tasks[""] = asyncio.create_task(self._scan_forever(), name="shipper-scan")

    def foreign_bytes(self, table: str) -> int:
        return sum(s.size for s in self.foreign[table])

    def lag_s(self, table: str, now: float | None = None) -> float:
        """Age of the oldest row of `table` not yet inserted (0 when none waits)."""
        ages = [self.spool.oldest(table)] + [s.created for s in self.foreign[table]]
        oldest = min((a for a in ages if a is not None), default=None)
        return 0.0 if oldest is None else max(0.0, (now or time.time()) - oldest)

    async def _scan_forever(self) -> None:
        """The workers' sealed segments, found by name (`.seg`: complete), oldest first per
        worker; a failed listing is retried at the next scan."""
        assert self.workers_root is not None
        while True:
            try:
                found = await asyncio.to_thread(scan_workers, self.workers_root, self.spool.tables)
            except OSError as e:
                log.error("listing the workers' spool segments failed: %s", describe(e))
                found = []
            for seg in found:
                if seg.path in self._known:
                    continue
                self._known.add(seg.path)
                queue = self.foreign[seg.table]
                queue.append(seg)
                ordered = sorted(queue, key=lambda s: (s.path.parent.parent.name, s.seq))
                queue.clear()
                queue.extend(ordered)
                self.spool.shippable(seg.table)
            await asyncio.sleep(SCAN_S)

    def failures(self) -> list[str]:
        return [
            f"shipping to table {t} failing for {time.monotonic() - s.failing_since:.0f} s: "
            f"{s.failing}"
            for t, s in self.stats.items()
            if s.failing is not None
        ]

    async def _run(self, table: str) -> None:
        ready = self.spool.ready_events[table]
        queue = self.spool.sealed[table]
        foreign = self.foreign[table]
        delay = RETRY_FIRST_S
        while True:
            if queue and queue[0].holds == 0:
                seg = queue[0]
            elif foreign:
                seg = foreign[0]
            else:
                ready.clear()
                await ready.wait()
                continue
            try:
                await self._ship(seg)
            except asyncio.CancelledError:
                raise
            except Exception as e:  # any failure: the same segment again, later
                stats = self.stats[table]
                stats.retries += 1
                reason = describe(e)
                if stats.failing is None:
                    stats.failing_since = time.monotonic()
                    log.error("shipping to %s failing: %s", table, reason)
                stats.failing = reason
                await asyncio.sleep(random.uniform(0, delay))
                delay = min(delay * 2, self.config.retry_max_s)
                continue
            delay = RETRY_FIRST_S
            stats = self.stats[table]
            if stats.failing is not None:
                log.warning(
                    "shipping to %s works again after %.1f s",
                    table, time.monotonic() - stats.failing_since,
                )  # fmt: skip
                stats.failing = None

    async def _ship(self, seg: Segment) -> None:
        try:
            got, t0 = await self._insert_segment(seg)
        except FileNotFoundError:
            if seg.path.exists():
                raise
            # removed by hand: nothing left to ship, do not block the table
            log.error("spool segment %s/%s vanished before it was shipped", seg.table, seg.name)
            self._done(seg)
            return
        stats = self.stats[seg.table]
        stats.observe(time.monotonic() - t0)
        stats.shipped_segments += 1
        stats.shipped_rows += got.rows
        stats.shipped_bytes += seg.size
        self._done(seg)
        self._progress.set()

    async def _insert_segment(self, seg: Segment) -> tuple[Prepared, float]:
        """The segment's rows inserted; what was inserted, and when the insert started. The
        embedded engine reads the body from a scratch file it shares the disk with anyway; a
        server gets it from memory (a full disk here must not stop the spool's drain)."""
        if self.scratch is None:
            got, body = await asyncio.to_thread(_prepare_bytes, seg)
            self._warn_damaged(seg, got)
            t0 = time.monotonic()
            if got.rows:
                await self._insert(seg.table, body, got.token)
            return got, t0
        path = self.scratch / f"{SCRATCH_PREFIX}{seg.table}-{seg.name}.ndjson"
        try:
            got = await asyncio.to_thread(_prepare_file, seg, path)
            self._warn_damaged(seg, got)
            t0 = time.monotonic()
            if got.rows:
                await self._insert_file(seg.table, path, got.token)
            return got, t0
        finally:
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @staticmethod
    def _warn_damaged(seg: Segment, got: Prepared) -> None:
        if not got.intact:
            log.error(
                "spool segment %s/%s is damaged: shipping the %d intact records before the damage",
                seg.table, seg.name, got.records,
            )  # fmt: skip

    def _done(self, seg: Segment) -> None:
        foreign = self.foreign[seg.table]
        if foreign and foreign[0] is seg:
            foreign.popleft()
            self._known.discard(seg.path)
            with contextlib.suppress(FileNotFoundError):
                seg.path.unlink()  # the worker notices, and counts it out of its spool
        else:
            self.spool.shipped(seg)

    def pending(self) -> list[Segment]:
        own = [s for q in self.spool.sealed.values() for s in q]
        return own + [s for q in self.foreign.values() for s in q]

    async def flush(self, timeout_s: float, *, workers_running: bool = True) -> bool:
        """Seal what is open and wait until every segment sealed so far is inserted; False when
        that did not happen within `timeout_s` (the engine is failing). With workers still
        running, their segments are sealed by age: what they committed before this call is
        waited for too. Stopping (`workers_running=False`), the supervisor has already stopped
        them and they sealed theirs: one scan finds them (waiting for the age, up to
        `segment_age_ms`, would outlast the drain time and leave them for the next start)."""
        deadline = time.monotonic() + timeout_s
        await self.spool.seal_open()
        if self.workers_root is not None:
            wait_s = 2 * SCAN_S + (self.config.segment_age_ms / 1000 if workers_running else 0)
            await asyncio.sleep(max(0.0, min(wait_s, deadline - time.monotonic())))
        waiting = set(self.pending())
        while waiting:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return False
            self._progress.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._progress.wait(), remaining)
            live = set(self.pending())
            waiting &= live
        return True

    async def close(self, timeout_s: float) -> None:
        """Ship for at most `timeout_s` (what is left stays in the spool for the next start),
        then stop. Never raises. Under `serve --workers N` the primary stops last, after the
        ingest workers sealed their spools."""
        done = await self.flush(timeout_s, workers_running=False)
        left = self.pending()
        if not done:
            log.warning(
                "stopping with %d spool segments (%d bytes) not yet inserted: shipped at the "
                "next start",
                len(left), sum(s.size for s in left),
            )  # fmt: skip
        for task in self._tasks.values():
            task.cancel()
        for task in self._tasks.values():
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks.clear()


class SpoolCollector(Collector):
    """The spool and the shipper at scrape time, by table (labels are table names only)."""

    def __init__(self, shipper: Shipper) -> None:
        self.shipper = shipper

    def collect(self) -> Iterator[Metric]:
        sh, spool = self.shipper, self.shipper.spool
        tables = spool.tables
        now = time.time()

        def per_table(value: Callable[[str], float]) -> Samples:
            return [((t,), value(t)) for t in tables]

        yield gauge(
            "collector_spool_bytes", "Bytes waiting in the spool.", ["table"],
            per_table(lambda t: spool.bytes_by_table[t] + sh.foreign_bytes(t)),
        )  # fmt: skip
        yield gauge(
            "collector_spool_segments", "Spool segments not yet inserted (open one included).",
            ["table"], per_table(lambda t: spool.segments(t) + len(sh.foreign[t])),
        )  # fmt: skip
        yield gauge(
            "collector_spool_high_water_bytes", "Spool size above which ingest answers 503.",
            [], [((), spool.config.max_bytes)],
        )  # fmt: skip
        yield gauge(
            "collector_spool_failing", "1 while spool writes fail.", [],
            [((), int(spool.failing is not None))],
        )  # fmt: skip
        yield counter(
            "collector_spool_commits_total", "Group commits (one write + fsync per table).", [],
            [((), spool.commits)],
        )  # fmt: skip
        yield counter(
            "collector_spool_committed_requests_total", "Requests made durable by the commits.",
            [], [((), spool.committed_requests)],
        )  # fmt: skip
        yield gauge(
            "collector_spool_largest_commit_requests", "Most requests covered by one commit.",
            [], [((), spool.largest_group)],
        )  # fmt: skip
        yield counter(
            "collector_spool_commit_errors_total", "Group commits that failed (answered 503).",
            [], [((), spool.commit_errors)],
        )  # fmt: skip
        yield gauge(
            "collector_ship_lag_seconds", "Age of the oldest row not yet inserted.", ["table"],
            per_table(lambda t: sh.lag_s(t, now)),
        )  # fmt: skip
        yield counter(
            "collector_ship_retries_total", "Segment inserts that failed and are retried.",
            ["table"], per_table(lambda t: sh.stats[t].retries),
        )  # fmt: skip
        yield counter(
            "collector_shipped_rows_total", "Rows inserted from the spool.", ["table"],
            per_table(lambda t: sh.stats[t].shipped_rows),
        )  # fmt: skip
        yield counter(
            "collector_shipped_segments_total", "Segments inserted and deleted.", ["table"],
            per_table(lambda t: sh.stats[t].shipped_segments),
        )  # fmt: skip
        yield gauge(
            "collector_ship_failing", "1 while inserts of the table's segments fail.", ["table"],
            per_table(lambda t: int(sh.stats[t].failing is not None)),
        )  # fmt: skip
        latency = HistogramMetricFamily(
            "collector_ship_insert_seconds", "Insert time of one spool segment.",
            labels=["table"],
        )  # fmt: skip
        for t in tables:
            s = sh.stats[t]
            pairs = zip(LATENCY_BUCKETS, s.latency_buckets, strict=True)
            buckets = [(str(b), float(n)) for b, n in pairs]
            buckets.append(("+Inf", float(s.latency_count)))
            latency.add_metric([t], buckets, s.latency_sum)
        yield latency
